//! What the threading rules know of stored messages and tickets: plain rows, loaded in
//! bulk by the store and read by the pure matcher (`intake::matching`), which must not
//! depend on the store.

use super::{Direction, Status, TicketId};

/// A stored message, as dedup and threading need it.
#[derive(Debug, Clone)]
pub struct KnownMessage {
    pub row: i64,
    pub ticket: Option<TicketId>,
    pub body_sha256: String,
    pub direction: Direction,
    /// The message may lead a reply to its ticket. Held, unprocessable and rejected
    /// messages never do: their Message-ID and References came from someone we do not
    /// trust (a forged agent mail, a stranger) or from nothing we could read.
    pub threads: bool,
}

/// A ticket as batch threading needs it.
#[derive(Debug, Clone)]
pub struct KnownTicket {
    pub id: TicketId,
    pub status: Status,
    pub customer_id: i64,
    pub token: String,
    pub subject: String,
    pub subject_key: String,
    pub updated_at: String,
    pub merged_into: Option<TicketId>,
}
