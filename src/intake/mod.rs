//! Intake: the channel-neutral unit of work. A source (an IMAP folder, an import, a
//! channel's push or feed) hands a batch of messages to [`pipeline::Pipeline`], which
//! loads a snapshot of what the batch can touch in a few set-based queries
//! ([`unit::Unit::load`]), decides every message in memory in arrival order, and writes
//! the result as a few multi-row statements inside the caller's transaction. Mail from
//! agents is handed to `agent`.

pub mod bot;
pub mod matching;
pub mod pipeline;
mod services;
pub mod triage;
pub mod unit;

pub use services::Services;

use crate::domain::inbound::Inbound;
use crate::domain::{MatchReason, TicketId};

/// A batch is closed early once it holds this many bytes of mail (IMAP and imports alike),
/// so that a run of large messages does not multiply the memory the batches in flight take
/// (one committing, one fetched or read ahead).
pub const BATCH_BYTES: usize = 2 << 20;

/// Where a message was found, for the `message_sources` record.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub mailbox: &'a str,
    pub folder: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new ticket was opened (with or without an acknowledgement).
    NewTicket {
        ticket: TicketId,
        row: i64,
        acknowledged: bool,
    },
    /// The message joined an existing ticket.
    Joined {
        ticket: TicketId,
        row: i64,
        reason: MatchReason,
    },
    /// A copy of a message already stored.
    Duplicate { row: i64 },
    /// A bounce or other report (read receipt, feedback), attached to the ticket of the
    /// mail it reports on; it never opens a ticket.
    Bounce { row: i64, ticket: Option<TicketId> },
    /// Stored without a ticket because it could not be processed; raw bytes kept.
    Unprocessable { row: i64 },
    /// Over the size cap: headers kept, left on the server.
    Rejected { row: i64 },
    /// An authenticated agent's mail: commands applied, text relayed or kept as a note.
    /// No ticket: agent-wide commands (`#away`, `#back`) sent to the commands address.
    AgentMail { ticket: Option<TicketId>, row: i64 },
    /// Claimed to be an agent's and failed a check: kept, not executed, not relayed.
    Held { row: i64, ticket: Option<TicketId> },
}

impl Outcome {
    /// Whether the server-side after-ingest action (flag/move) may be applied.
    pub fn allows_server_action(&self) -> bool {
        !matches!(self, Outcome::Rejected { .. })
    }
}

/// One message handed to the pipeline: its bytes (the first bytes or the header block of
/// an oversize message), its real size, a parse done ahead if any, and where it came from.
#[derive(Clone, Copy)]
pub struct BatchItem<'a> {
    pub raw: &'a [u8],
    pub size: u64,
    pub parsed: Option<&'a Inbound>,
    pub source: Option<Source<'a>>,
}

impl<'a> BatchItem<'a> {
    /// A whole message.
    pub fn new(raw: &'a [u8], parsed: Option<&'a Inbound>, source: Option<Source<'a>>) -> Self {
        BatchItem {
            raw,
            size: raw.len() as u64,
            parsed,
            source,
        }
    }
}

/// One message of a batch, already parsed.
#[derive(Clone, Copy)]
pub struct Item<'a> {
    pub raw: &'a [u8],
    pub parsed: &'a Inbound,
    pub source: Option<Source<'a>>,
}
