//! The email channel: everything that knows what a mail is. `imap` speaks IMAP (with
//! `inflight`, the crash record of the UIDs being decided), `maildir` and `mbox` read local
//! files for `import`, `parse` turns bytes into a [`parse::Inbound`] (with `html`, `charset`
//! and the address reader in `domain::address`), `quote` finds the new text of a reply,
//! `loops` holds the RFC 3834 rules, `compose` writes our RFC 5322 mail from templates, and
//! `outbound::worker` sends it over SMTP.

pub mod charset;
pub mod compose;
pub mod html;
pub mod imap;
pub mod import;
pub mod inflight;
pub mod loops;
pub mod maildir;
pub mod mbox;
pub mod parse;
pub mod quote;
