//! # postdesk: a mail-first helpdesk daemon
//!
//! The path of one message, and which module owns each step. Everything in a message is
//! written by strangers; `SECURITY.md` says what is trusted and why.
//!
//! 1. **Fetch** (`ingest::imap`). One task per configured mailbox folder connects to IMAP,
//!    compares the folder's UIDVALIDITY with the stored one (RFC 9051 §2.3.1.1), asks for
//!    every UID above the stored watermark (and not quarantined) and fetches them with
//!    `BODY.PEEK[]`, so `\Seen` never matters. Maildir and mbox imports (`ingest::maildir`,
//!    `ingest::mbox`) feed the same pipeline. The UID being parsed and decided is kept in
//!    the folder's in-flight record (`ingest::inflight`): after a crash the suspects are
//!    retried one at a time, each suspect alone, and a message that kills the process
//!    twice, the second time alone, is quarantined.
//! 2. **Parse** (`ingest::parse`). mail-parser turns raw bytes into a [`ingest::parse::Inbound`]:
//!    normalised Message-ID (or a stable synthetic one), threading headers, addresses
//!    (bare quoted local parts read by `ingest::address`; no From address falls back to
//!    Reply-To, then Return-Path), decoded subject, the text parts (HTML rewritten and
//!    rendered to text within bounds by `ingest::html`, `format=flowed` rejoined, raw
//!    8-bit headers and unlabelled text decoded by charset detection in
//!    `ingest::charset`, the first part kept apart for agents' commands), loop/bounce
//!    signals. Parsing never fails: hostile input yields a best-effort result, and the raw
//!    bytes are always kept.
//! 3. **Decide** (`threading`, `ingest::unit`). Pure functions normalise subjects and
//!    recognise courtesy replies. A batch of messages is a unit of work: `store::bulk`
//!    loads every candidate the batch can need in a few set-based queries, then each
//!    message is decided in memory in arrival order, in a fixed rule order (reply token,
//!    References/In-Reply-To in either direction *from a sender who takes part in the
//!    ticket*, `[#N]` from a participant, same subject from the same sender within a
//!    window), with the reason recorded on the message. A message claiming one of our own
//!    Message-IDs, or reaching a ticket only through headers, is held; tickets of
//!    different customers are linked, never merged. Mail from agents (`ingest::agent`) is
//!    claimed by its token, checked (`commands::authres`, `commands::token`), read
//!    (`ingest::quote` cuts at our own marker line, `commands::parse`), and either acted
//!    on (`commands::apply`; an unassigned ticket goes to the agent who answers; the text
//!    and attachments relayed to the customer, once) or held with a capped notice.
//! 4. **Commit** (`ingest::pipeline`, `store`). The raw bytes, the parsed messages, the
//!    ticket changes, the outbox rows they cause (acknowledgements and agents' mail,
//!    composed by `outbound::compose` from `templates/` with every outside value cleaned)
//!    and the folder's new UID watermark are written in one SQLite transaction with a few
//!    multi-row statements. A failing batch (or a panic while deciding) is replayed message
//!    by message under savepoints. Only after COMMIT is the server touched (flag or move),
//!    from a durable `pending_actions` queue.
//! 5. **Send** (`outbound::worker`). The outbox worker sends queued mail over SMTP with
//!    lettre, retrying 4xx and timeouts with backoff under a global rate limit (governor),
//!    stopping on 5xx, and keeping the same Message-ID on every attempt.
//!
//! `daemon` supervises the long-running loops (folders, outbox, housekeeping: held-notice
//! digests and the admin's daily summary of unfiled messages), holds the single-instance
//! lock and handles SIGTERM; `cli` holds one file per subcommand (text views escape
//! terminal controls); `config` reads the TOML file (every problem at once, in words) and
//! validates it, secrets included (systemd credentials too).

pub mod agent;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod events;
pub mod intake;
pub mod lock;
pub mod outbound;
pub mod store;
pub mod threading;

/// Peak resident memory of this process in KiB (VmHWM), where the platform tells it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
