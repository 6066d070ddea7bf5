//! Reply-by-email commands from agents. `table` defines every command once (name, short
//! forms, arguments, help, repeat rule, argument reader); `parse` turns the new text of an
//! agent's reply into commands by it (pure); `plan` decides what a reply's commands will
//! do to a ticket from a snapshot of it (pure); `apply` loads that snapshot, writes the
//! plan and logs it for `#undo`.

pub mod apply;
pub mod parse;
pub mod plan;
pub mod table;
