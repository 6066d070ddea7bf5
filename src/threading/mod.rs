//! Pure threading logic: which ticket a message belongs to, and why. No I/O.
//!
//! `subject` normalises subjects (reply/forward prefixes in many languages, ticket tags);
//! `courtesy` recognises short "thanks" replies that must not reopen a ticket. The rules
//! that use them to pick a ticket are `intake::matching`'s.

pub mod courtesy;
pub mod rating;
pub mod subject;
