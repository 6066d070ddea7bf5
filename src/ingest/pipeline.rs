//! One message in, one database change out: dedup, threading, the ticket change, the
//! acknowledgement, all inside the caller's transaction.
//!
//! [`Pipeline::ingest`] never commits: the caller (IMAP sync, Maildir/mbox import) owns the
//! transaction and also writes the UID watermark and server actions in it, so a message,
//! its effects and the progress marker commit together or not at all. Each message runs
//! inside a SAVEPOINT ([`Pipeline::ingest_isolated`]): if anything fails for one message,
//! only its savepoint rolls back and the message is stored as unprocessable with its raw
//! bytes instead, so one bad message never stops a batch.

use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Duration as ChronoDuration;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use sqlx::{Connection, SqliteConnection};

use super::address::Mailbox;
use super::loops::{autoreply_suppression, looks_like_legacy_bounce};
use super::parse::{self, MAX_TEXT_BYTES, Parsed, clean_text};
use crate::clock::{Clock, db_time};
use crate::config::Config;
use crate::domain::{Direction, MatchReason, MessageKind, Status, TicketId};
use crate::outbound::compose::{self, AckInput};
use crate::outbound::templates::Templates;
use crate::store::{imap_state, messages, outbox, tickets};
use crate::threading::{courtesy, subject};

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
}

impl Outcome {
    /// Whether the server-side after-ingest action (flag/move) may be applied.
    pub fn allows_server_action(&self) -> bool {
        !matches!(self, Outcome::Rejected { .. })
    }
}

/// Raw bytes kept for a rejected (oversize) message: enough for every header.
const REJECTED_KEEP_BYTES: usize = 256 * 1024;

pub struct Pipeline {
    cfg: Arc<Config>,
    templates: Arc<Templates>,
    clock: Arc<dyn Clock>,
    own: Vec<String>,
    ack_limiter: DefaultKeyedRateLimiter<String>,
}

impl Pipeline {
    pub fn new(cfg: Arc<Config>, templates: Arc<Templates>, clock: Arc<dyn Clock>) -> Pipeline {
        let per_hour =
            NonZeroU32::new(cfg.autoreply.max_per_sender_per_hour).unwrap_or(NonZeroU32::MIN);
        Pipeline {
            own: cfg.own_addresses(),
            cfg,
            templates,
            clock,
            ack_limiter: RateLimiter::keyed(Quota::per_hour(per_hour)),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Ingests one message inside a savepoint of `conn`'s transaction. On any error the
    /// savepoint is rolled back and the message is stored as unprocessable instead.
    pub async fn ingest_isolated(
        &self,
        conn: &mut SqliteConnection,
        raw: &[u8],
        parsed: Option<&Parsed>,
        source: Option<Source<'_>>,
    ) -> Result<Outcome> {
        let attempt = {
            let mut sp = conn.begin().await.context("Opening a savepoint")?;
            match self.ingest(&mut sp, raw, parsed, source).await {
                Ok(o) => {
                    sp.commit().await.context("Releasing the savepoint")?;
                    Ok(o)
                }
                Err(e) => {
                    sp.rollback().await.context("Rolling back the savepoint")?;
                    Err(e)
                }
            }
        };
        match attempt {
            Ok(o) => Ok(o),
            Err(e) => {
                let where_ = source
                    .map(|s| {
                        format!(
                            "mailbox {:?} folder {:?} UID {}",
                            s.mailbox, s.folder, s.uid
                        )
                    })
                    .unwrap_or_else(|| "import".to_string());
                tracing::error!(
                    "Message at {where_} could not be processed, stored as unprocessable: {e:#}"
                );
                self.store_unprocessable(conn, raw, &format!("{e:#}"), source)
                    .await
            }
        }
    }

    /// Stores a message that could not be processed, with its raw bytes, without a ticket.
    pub async fn store_unprocessable(
        &self,
        conn: &mut SqliteConnection,
        raw: &[u8],
        error: &str,
        source: Option<Source<'_>>,
    ) -> Result<Outcome> {
        let now = db_time(self.clock.now());
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw));
        let message_id = format!(
            "unprocessable.{}@postdesk.invalid",
            sha.get(..40).unwrap_or(&sha)
        );
        if let Some(existing) = messages::find_by_message_id(conn, &message_id).await? {
            return Ok(Outcome::Duplicate { row: existing.row });
        }
        let raw_id = messages::insert_raw(conn, &sha, raw, raw.len(), &now).await?;
        let problems = serde_json::to_string(&[error]).unwrap_or_default();
        let row = messages::insert_message(
            conn,
            &messages::NewMessage {
                ticket_id: None,
                raw_id: Some(raw_id),
                message_id: &message_id,
                synthetic_id: true,
                body_sha256: &sha,
                direction: Direction::Inbound,
                kind: MessageKind::Unprocessable,
                from_addr: None,
                from_name: None,
                to_json: "[]",
                cc_json: "[]",
                subject: "",
                body_text: "",
                channel: "email",
                match_reason: MatchReason::None,
                problems_json: &problems,
                attachments_json: "[]",
                date_header: None,
                now: &now,
            },
        )
        .await?;
        if let Some(s) = source {
            imap_state::insert_source(conn, s.mailbox, s.folder, s.uidvalidity, s.uid, row, &now)
                .await?;
        }
        Ok(Outcome::Unprocessable { row })
    }

    /// Ingests one message into `conn`'s open transaction. `parsed` may be supplied when
    /// the caller parsed ahead (on another thread); otherwise it is parsed here.
    pub async fn ingest(
        &self,
        conn: &mut SqliteConnection,
        raw: &[u8],
        parsed: Option<&Parsed>,
        source: Option<Source<'_>>,
    ) -> Result<Outcome> {
        let now_dt = self.clock.now();
        let now = db_time(now_dt);

        if raw.len() > self.cfg.ingest.max_message_bytes {
            let head = raw.get(..REJECTED_KEEP_BYTES).unwrap_or(raw);
            return self
                .store_rejected(conn, head, raw.len(), source, &now)
                .await;
        }
        let owned;
        let p = match parsed {
            Some(p) => p,
            None => {
                owned = parse::parse(raw);
                &owned
            }
        };

        // 1. Dedup: the same Message-ID with the same body (or the same raw bytes) is a copy.
        let mut message_id = p.message_id.clone();
        if let Some(existing) = messages::find_by_message_id(conn, &message_id).await? {
            if existing.body_sha256 == p.body_sha256 || existing.direction == Direction::Outbound {
                self.record_source(conn, source, existing.row, &now).await?;
                return Ok(Outcome::Duplicate { row: existing.row });
            }
            // Same Message-ID, different content: a broken or hostile sender. Keep both.
            message_id = format!(
                "{message_id}#{}",
                p.body_sha256.get(..16).unwrap_or(&p.body_sha256)
            );
            if let Some(existing) = messages::find_by_message_id(conn, &message_id).await? {
                self.record_source(conn, source, existing.row, &now).await?;
                return Ok(Outcome::Duplicate { row: existing.row });
            }
            tracing::warn!(
                "Message-ID <{}> reused with different content; storing the new one as <{message_id}>",
                p.message_id
            );
        }
        // (Identical raw bytes always have the same Message-ID and body hash, so the check
        // above also covers exact copies; raw_messages stores each byte string once by its
        // SHA-256.)

        let raw_id = messages::insert_raw(conn, &p.raw_sha256, raw, raw.len(), &now).await?;
        let mut problems = p.problems.clone();

        // 2. Bounces never open tickets: attach to the message they report on.
        if p.report.is_some() || looks_like_legacy_bounce(p) {
            return self
                .store_bounce(conn, p, &message_id, raw_id, source, &now)
                .await;
        }

        let Some(from) = p.from.clone() else {
            problems.push("no From address".to_string());
            let row = self
                .insert_inbound(
                    conn,
                    p,
                    &message_id,
                    raw_id,
                    None,
                    MessageKind::Unprocessable,
                    MatchReason::None,
                    &problems,
                    &now,
                )
                .await?;
            self.record_source(conn, source, row, &now).await?;
            return Ok(Outcome::Unprocessable { row });
        };
        if p.from_count > 1 {
            problems.push(format!(
                "{} From addresses; the first one is used",
                p.from_count
            ));
        }
        let suppression = autoreply_suppression(p, &self.own, &self.cfg.message_id_domain);
        let kind = if p
            .auto
            .auto_submitted
            .as_deref()
            .is_some_and(|v| !v.starts_with("no"))
            || p.auto.x_autoreply
        {
            MessageKind::AutoSubmitted
        } else {
            MessageKind::Customer
        };

        // 3. Threading, in the documented order.
        let customer_id =
            tickets::upsert_customer(conn, &from.address, from.name.as_deref(), &now).await?;
        let found = self
            .find_ticket(conn, p, &message_id, &from, customer_id, now_dt)
            .await?;

        let (ticket_id, reason, is_new) = match found {
            Some((t, reason)) if t.status == Status::Closed => {
                // A reply to a closed ticket opens a new ticket linked to the old one.
                let id = self
                    .open_ticket(conn, p, customer_id, Some(t.id), &now)
                    .await?;
                tracing::info!(
                    "Ticket #{}: reply to closed ticket #{} (matched by {reason}) opens a new ticket",
                    id,
                    t.id
                );
                (id, MatchReason::NewTicketAfterClosed, true)
            }
            Some((t, reason)) => {
                if kind == MessageKind::Customer {
                    self.reopen_if_needed(conn, &t, p, &now).await?;
                }
                tickets::touch_ticket(conn, t.id, &now).await?;
                (t.id, reason, false)
            }
            None => {
                let id = self.open_ticket(conn, p, customer_id, None, &now).await?;
                (id, MatchReason::NewTicket, true)
            }
        };

        let row = self
            .insert_inbound(
                conn,
                p,
                &message_id,
                raw_id,
                Some(ticket_id),
                kind,
                reason,
                &problems,
                &now,
            )
            .await?;
        self.record_source(conn, source, row, &now).await?;
        tickets::add_participant(
            conn,
            ticket_id,
            &from.address,
            if is_new { "customer" } else { "participant" },
        )
        .await?;
        for cc in p.cc.iter().chain(p.to.iter()) {
            if !self.is_own(&cc.address) {
                tickets::add_participant(conn, ticket_id, &cc.address, "cc").await?;
            }
        }

        if !is_new {
            return Ok(Outcome::Joined {
                ticket: ticket_id,
                row,
                reason,
            });
        }

        // 4. Acknowledge a new ticket, unless RFC 3834 or the caps say no.
        let acknowledged = self
            .maybe_acknowledge(conn, p, &message_id, &from, ticket_id, suppression, now_dt)
            .await?;
        Ok(Outcome::NewTicket {
            ticket: ticket_id,
            row,
            acknowledged,
        })
    }

    fn is_own(&self, address: &str) -> bool {
        self.own.iter().any(|o| o == address)
            || super::address::split_plus(address).is_some_and(|(base, _)| self.own.contains(&base))
    }

    async fn record_source(
        &self,
        conn: &mut SqliteConnection,
        source: Option<Source<'_>>,
        row: i64,
        now: &str,
    ) -> Result<()> {
        if let Some(s) = source {
            imap_state::insert_source(conn, s.mailbox, s.folder, s.uidvalidity, s.uid, row, now)
                .await?;
        }
        Ok(())
    }

    async fn find_ticket(
        &self,
        conn: &mut SqliteConnection,
        p: &Parsed,
        message_id: &str,
        from: &Mailbox,
        customer_id: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<(tickets::TicketRow, MatchReason)>> {
        // 1. A reply token in a recipient address.
        for rcpt in p.all_recipients() {
            if let Some(token) = super::address::reply_token(rcpt, &self.own)
                && let Some(t) = tickets::find_ticket_by_token(conn, token).await?
            {
                return Ok(Some((t, MatchReason::ReplyToken)));
            }
        }
        // 2. In-Reply-To / References matching any stored message, ours included, or a
        // stored message that references this one (the reply arrived first). When the
        // thread already spans several tickets (replies that came before their parent),
        // they are merged, so arrival order never changes the outcome.
        let thread = messages::list_thread_tickets(conn, message_id, &p.references).await?;
        let mut found: Vec<(tickets::TicketRow, bool)> = Vec::new();
        for (id, via_refs) in thread {
            if let Some(t) = tickets::find_ticket(conn, id).await?
                && !found.iter().any(|(f, _)| f.id == t.id)
            {
                found.push((t, via_refs));
            }
        }
        if !found.is_empty() {
            let open: Vec<&(tickets::TicketRow, bool)> = found
                .iter()
                .filter(|(t, _)| t.status != Status::Closed)
                .collect();
            let chosen = open
                .iter()
                .min_by_key(|(t, _)| t.id)
                .copied()
                .or_else(|| found.first())
                .cloned();
            if let Some((survivor, via_refs)) = chosen {
                let now_s = db_time(now);
                for (t, _) in &open {
                    if t.id != survivor.id {
                        tickets::merge_ticket(conn, survivor.id, t.id, &now_s).await?;
                        tracing::info!(
                            "Ticket #{} merged into #{}: message <{message_id}> joins their threads",
                            t.id,
                            survivor.id
                        );
                    }
                }
                let reason = if via_refs {
                    MatchReason::References
                } else {
                    MatchReason::ReferencedBy
                };
                return Ok(Some((survivor, reason)));
            }
        }
        // ...or a sibling sharing a parent we never saw, from a participant of that ticket.
        if let Some(id) = messages::find_ticket_sharing_reference(conn, &p.references).await?
            && tickets::is_participant(conn, id, &from.address).await?
            && let Some(t) = tickets::find_ticket(conn, id).await?
        {
            return Ok(Some((t, MatchReason::SharedReference)));
        }
        // 3. A subject tag [#N], only from a participant of ticket N.
        for n in subject::ticket_tags(&p.subject) {
            if let Some(t) = tickets::find_ticket(conn, n).await? {
                if tickets::is_participant(conn, n, &from.address).await? {
                    return Ok(Some((t, MatchReason::SubjectTag)));
                }
                tracing::info!(
                    "Subject tag [#{n}] from {} ignored: not a participant of ticket #{n}",
                    from.address
                );
            }
        }
        // 4. Same normalised subject from the same sender within the window.
        let key = subject::normalize_subject(&p.subject);
        if !key.is_empty() && !self.cfg.threading.subject_window.is_zero() {
            let window = ChronoDuration::from_std(self.cfg.threading.subject_window)
                .unwrap_or_else(|_| ChronoDuration::days(7));
            let since = db_time(now - window);
            if let Some(t) =
                tickets::find_recent_ticket_by_subject(conn, customer_id, &key, &since).await?
            {
                return Ok(Some((t, MatchReason::SubjectSender)));
            }
        }
        Ok(None)
    }

    async fn open_ticket(
        &self,
        conn: &mut SqliteConnection,
        p: &Parsed,
        customer_id: i64,
        linked: Option<TicketId>,
        now: &str,
    ) -> Result<TicketId> {
        let (stripped, _) = subject::strip_reply_prefixes(&p.subject);
        let mut display = clean_text(stripped.trim(), 1000);
        if display.is_empty() {
            display = "(no subject)".to_string();
        }
        let key = subject::normalize_subject(&p.subject);
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        Ok(tickets::insert_ticket(
            conn,
            &tickets::NewTicket {
                subject: &display,
                subject_key: &key,
                customer_id,
                token: &token,
                linked_ticket_id: linked,
                now,
            },
        )
        .await?)
    }

    async fn reopen_if_needed(
        &self,
        conn: &mut SqliteConnection,
        t: &tickets::TicketRow,
        p: &Parsed,
        now: &str,
    ) -> Result<()> {
        let new_status = match t.status {
            Status::Resolved => {
                let text = super::quote::new_text(&p.body_text);
                if courtesy::is_courtesy_reply(text) {
                    tracing::info!(
                        "Ticket #{}: courtesy reply recorded without reopening",
                        t.id
                    );
                    None
                } else {
                    Some(Status::Open)
                }
            }
            Status::Pending => Some(Status::Open),
            Status::Open | Status::Closed => None,
        };
        if let Some(s) = new_status {
            tickets::set_status(conn, t.id, s, now).await?;
            tracing::info!(
                "Ticket #{}: {} -> {} on a customer reply",
                t.id,
                t.status,
                s
            );
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_inbound(
        &self,
        conn: &mut SqliteConnection,
        p: &Parsed,
        message_id: &str,
        raw_id: i64,
        ticket: Option<TicketId>,
        kind: MessageKind,
        reason: MatchReason,
        problems: &[String],
        now: &str,
    ) -> Result<i64> {
        let to: Vec<&str> = p.to.iter().map(|m| m.address.as_str()).collect();
        let cc: Vec<&str> = p.cc.iter().map(|m| m.address.as_str()).collect();
        let row = messages::insert_message(
            conn,
            &messages::NewMessage {
                ticket_id: ticket,
                raw_id: Some(raw_id),
                message_id,
                synthetic_id: p.synthetic_id,
                body_sha256: &p.body_sha256,
                direction: Direction::Inbound,
                kind,
                from_addr: p.from.as_ref().map(|f| f.address.as_str()),
                from_name: p.from.as_ref().and_then(|f| f.name.as_deref()),
                to_json: &serde_json::to_string(&to)?,
                cc_json: &serde_json::to_string(&cc)?,
                subject: &p.subject,
                body_text: &p.body_text,
                channel: "email",
                match_reason: reason,
                problems_json: &serde_json::to_string(problems)?,
                attachments_json: &serde_json::to_string(&p.attachments)?,
                date_header: p.date,
                now,
            },
        )
        .await?;
        messages::insert_refs(conn, row, &p.references).await?;
        Ok(row)
    }

    /// Records a message over the size cap from its first bytes (or its header) and its
    /// real size. It is left on the server (no flag, no move).
    pub async fn ingest_oversize(
        &self,
        conn: &mut SqliteConnection,
        head: &[u8],
        size: u64,
        source: Option<Source<'_>>,
    ) -> Result<Outcome> {
        let now = db_time(self.clock.now());
        let head = head.get(..REJECTED_KEEP_BYTES).unwrap_or(head);
        self.store_rejected(conn, head, size as usize, source, &now)
            .await
    }

    async fn store_rejected(
        &self,
        conn: &mut SqliteConnection,
        head: &[u8],
        size: usize,
        source: Option<Source<'_>>,
        now: &str,
    ) -> Result<Outcome> {
        let p = parse::parse(head);
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(head));
        let message_id = format!("{}#rejected", p.message_id);
        if let Some(existing) = messages::find_by_message_id(conn, &message_id).await? {
            self.record_source(conn, source, existing.row, now).await?;
            return Ok(Outcome::Rejected { row: existing.row });
        }
        let reason = format!(
            "message of {} bytes exceeds max_message_mb ({} bytes); only the first {} bytes are kept and the message is left on the server",
            size,
            self.cfg.ingest.max_message_bytes,
            head.len()
        );
        tracing::warn!("Rejected message <{}>: {reason}", p.message_id);
        let raw_id = messages::insert_raw(conn, &sha, head, size, now).await?;
        let row = self
            .insert_inbound(
                conn,
                &p,
                &message_id,
                raw_id,
                None,
                MessageKind::Rejected,
                MatchReason::None,
                &[reason],
                now,
            )
            .await?;
        self.record_source(conn, source, row, now).await?;
        Ok(Outcome::Rejected { row })
    }

    async fn store_bounce(
        &self,
        conn: &mut SqliteConnection,
        p: &Parsed,
        message_id: &str,
        raw_id: i64,
        source: Option<Source<'_>>,
        now: &str,
    ) -> Result<Outcome> {
        let report = p.report.clone().unwrap_or_default();
        // Legacy bounces have no report at all; everything but a DSN is a receipt or a
        // feedback report, which also never opens a ticket but marks nothing as bouncing.
        let is_bounce = p.report.is_none() || report.report_type == "delivery-status";
        let (kind, reason) = if is_bounce {
            (MessageKind::Bounce, MatchReason::Bounce)
        } else {
            (MessageKind::Report, MatchReason::Report)
        };
        let mut ticket = None;
        if let Some(orig) = report.original_message_id.as_deref() {
            if let Some((_, t, _)) = outbox::find_outbox_by_message_id(conn, orig).await? {
                ticket = t;
            }
            if ticket.is_none() {
                ticket = messages::find_by_message_id(conn, orig)
                    .await?
                    .and_then(|m| m.ticket_id);
            }
        }
        if ticket.is_none() {
            // Legacy bounces often quote our headers in the body, or thread by References.
            ticket = messages::find_ticket_by_message_ids(conn, &p.references).await?;
        }
        for (addr, status) in &report.failed {
            tickets::mark_bouncing(conn, addr, status, now).await?;
            tracing::warn!("Address {addr} bounced with status {status}");
        }
        let mut problems = p.problems.clone();
        if ticket.is_none() {
            problems.push(format!("{kind} for a message we do not know"));
        }
        let row = self
            .insert_inbound(
                conn, p, message_id, raw_id, ticket, kind, reason, &problems, now,
            )
            .await?;
        self.record_source(conn, source, row, now).await?;
        Ok(Outcome::Bounce { row, ticket })
    }

    #[allow(clippy::too_many_arguments)]
    async fn maybe_acknowledge(
        &self,
        conn: &mut SqliteConnection,
        p: &Parsed,
        message_id: &str,
        from: &Mailbox,
        ticket_id: TicketId,
        suppression: Option<String>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        if !self.cfg.autoreply.enabled {
            return Ok(false);
        }
        if let Some(why) = suppression {
            tracing::info!("Ticket #{ticket_id}: no acknowledgement because {why}");
            return Ok(false);
        }
        if tickets::is_bouncing(conn, &from.address).await? {
            tracing::info!(
                "Ticket #{ticket_id}: no acknowledgement because {} bounces",
                from.address
            );
            return Ok(false);
        }
        let since = db_time(now - ChronoDuration::hours(1));
        let sent = outbox::count_autoreplies_since(conn, &from.address, &since).await?;
        if sent >= i64::from(self.cfg.autoreply.max_per_sender_per_hour)
            || self.ack_limiter.check_key(&from.address).is_err()
        {
            tracing::warn!(
                "Ticket #{ticket_id}: no acknowledgement because {} reached the cap of {} per hour",
                from.address,
                self.cfg.autoreply.max_per_sender_per_hour
            );
            return Ok(false);
        }
        let Some(t) = tickets::find_ticket(conn, ticket_id).await? else {
            return Ok(false);
        };
        let composed = compose::acknowledgement(
            &self.cfg,
            &self.templates,
            &AckInput {
                ticket_id,
                ticket_subject: &t.subject,
                token: &t.token,
                customer: from,
                in_reply_to: (!p.synthetic_id).then_some(message_id),
                references: &p.references,
            },
        )?;
        let nows = db_time(now);
        let to_json = serde_json::to_string(&composed.to)?;
        let row = messages::insert_message(
            conn,
            &messages::NewMessage {
                ticket_id: Some(ticket_id),
                raw_id: None,
                message_id: &composed.message_id,
                synthetic_id: false,
                body_sha256: "",
                direction: Direction::Outbound,
                kind: MessageKind::AutoReply,
                from_addr: Some(&self.cfg.smtp.from.address),
                from_name: self.cfg.smtp.from.name.as_deref(),
                to_json: &to_json,
                cc_json: "[]",
                subject: &composed.subject,
                body_text: &clean_text(&composed.body, MAX_TEXT_BYTES),
                channel: "email",
                match_reason: MatchReason::Outbound,
                problems_json: "[]",
                attachments_json: "[]",
                date_header: Some(now.timestamp()),
                now: &nows,
            },
        )
        .await?;
        let mut refs = p.references.clone();
        if !p.synthetic_id {
            refs.push(message_id.to_string());
        }
        messages::insert_refs(conn, row, &refs).await?;
        outbox::insert_outbox(
            conn,
            &outbox::NewOutbox {
                message_row: Some(row),
                ticket_id: Some(ticket_id),
                kind: MessageKind::AutoReply.as_str(),
                message_id: &composed.message_id,
                mail_from: &self.cfg.smtp.from.address,
                rcpt_to: &composed.to,
                raw: &composed.raw,
                now: &nows,
            },
        )
        .await?;
        outbox::log_autoreply(conn, &from.address, ticket_id, &nows).await?;
        Ok(true)
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
