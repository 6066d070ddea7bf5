//! Intake: the channel-neutral unit of work. A source (an IMAP folder, an import, a
//! channel's push or feed) hands a batch of messages to [`pipeline::Pipeline`], which
//! loads a snapshot of what the batch can touch in a few set-based queries
//! ([`unit::Unit::load`]), decides every message in memory in arrival order, and writes
//! the result as a few multi-row statements inside the caller's transaction. Mail from
//! agents is handed to `agent`.

pub mod matching;
pub mod pipeline;
pub mod unit;

/// A batch is closed early once it holds this many bytes of mail (IMAP and imports alike),
/// so that a run of large messages does not multiply the memory the batches in flight take
/// (one committing, one fetched or read ahead).
pub const BATCH_BYTES: usize = 2 << 20;
