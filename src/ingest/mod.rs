//! Ingest: everything between a mail source and the database. `imap` speaks IMAP,
//! `maildir` and `mbox` read local files, `parse` turns bytes into a `Parsed`, `loops`
//! holds the RFC 3834 rules, `pipeline` decides and commits, and `agent` handles mail from
//! agents (replies to notifications, the commands address).

pub mod address;
pub mod agent;
pub mod charset;
pub mod html;
pub mod imap;
pub mod import;
pub mod inflight;
pub mod loops;
pub mod maildir;
pub mod mbox;
pub mod parse;
pub mod pipeline;
pub mod quote;
pub mod unit;

/// A batch is closed early once it holds this many bytes of mail (IMAP and imports alike),
/// so that a run of large messages does not multiply the memory the batches in flight take
/// (one committing, one fetched or read ahead).
pub const BATCH_BYTES: usize = 2 << 20;
