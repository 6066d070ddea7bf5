//! Messages in, database changes out: dedup, threading, the ticket change, the
//! acknowledgement, all inside the caller's transaction.
//!
//! [`Pipeline::ingest_many`] never commits: the caller (IMAP sync, Maildir/mbox import)
//! owns the transaction and also writes the UID watermark and server actions in it, so the
//! messages, their effects and the progress marker commit together or not at all.
//!
//! A batch is decided by a [`unit::Unit`](crate::intake::unit::Unit): a few set-based lookups, every
//! decision in memory in arrival order, a few multi-row writes. The batch runs inside a
//! SAVEPOINT; if anything fails, the savepoint rolls back and the batch is replayed one
//! message at a time ([`Pipeline::ingest_isolated`]), each in its own savepoint, so the
//! message at fault is stored as unprocessable with its raw bytes and the rest go on: one
//! bad message never stops a batch.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

use crate::store::Conn;
use anyhow::{Context, Result};

use crate::agent::authres::DkimVerifier;
use crate::agent::token::Keyring;
use crate::channels::email::inflight::InFlight;
use crate::channels::email::parse::{self, Inbound};
use crate::clock::{Clock, db_time};
use crate::config::Config;
use crate::domain::{Channel, Direction, MatchReason, MessageKind};
use crate::intake::unit::Unit;
use crate::intake::{BatchItem, Item, Outcome, Services, Source};
use crate::outbound::templates::Templates;
use crate::store::rawstore::RawStore;
use crate::store::{imap_state, messages};

/// Raw bytes kept for a rejected (oversize) message: enough for every header.
const REJECTED_KEEP_BYTES: usize = 256 * 1024;

/// The batch runner: [`Services`] plus the savepoints, replay and oversize handling
/// around the unit of work. Dereferences to its services.
pub struct Pipeline {
    sv: Services,
}

impl std::ops::Deref for Pipeline {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.sv
    }
}

impl Pipeline {
    pub fn new(
        cfg: Arc<Config>,
        templates: Arc<Templates>,
        clock: Arc<dyn Clock>,
        keyring: Keyring,
        raw: Arc<RawStore>,
    ) -> Pipeline {
        Pipeline {
            sv: Services::new(cfg, templates, clock, keyring, raw),
        }
    }

    /// A pipeline for `store`: see [`Services::open`].
    pub async fn open(
        cfg: Arc<Config>,
        templates: Arc<Templates>,
        clock: Arc<dyn Clock>,
        store: &crate::store::Store,
    ) -> Result<Pipeline> {
        Ok(Pipeline {
            sv: Services::open(cfg, templates, clock, store).await?,
        })
    }

    /// Gives the answer bot its search index (the daemon; imports never answer).
    pub fn with_kb(self, kb: Option<Arc<crate::kb::index::KbIndex>>) -> Pipeline {
        Pipeline {
            sv: self.sv.with_kb(kb),
        }
    }

    /// Replaces the DKIM verifier (tests pin keys with an offline one).
    pub fn with_dkim(self, dkim: Option<DkimVerifier>) -> Pipeline {
        Pipeline {
            sv: self.sv.with_dkim(dkim),
        }
    }

    /// Ingests a batch into `conn`'s open transaction, in order. Messages over the size
    /// cap are recorded as rejected. If the batch fails as a whole it is replayed message
    /// by message, so a bad message costs only itself.
    pub async fn ingest_many(
        &self,
        conn: &mut Conn,
        items: &[BatchItem<'_>],
    ) -> Result<Vec<Outcome>> {
        self.ingest_many_watched(conn, items, None).await
    }

    /// [`Pipeline::ingest_many`], recording in `watch` which message is being decided, so
    /// that a message that kills the process can be quarantined (`inflight`).
    pub async fn ingest_many_watched(
        &self,
        conn: &mut Conn,
        items: &[BatchItem<'_>],
        watch: Option<&InFlight>,
    ) -> Result<Vec<Outcome>> {
        let result = match self.batch_in_savepoint(conn, items, watch).await? {
            Ok(o) => Ok(o),
            Err(e) => {
                tracing::warn!(
                    "A batch of {} messages failed ({e:#}); replaying it one message at a time",
                    items.len()
                );
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    out.push(self.ingest_isolated_watched(conn, it, watch).await?);
                }
                Ok(out)
            }
        };
        if let Some(w) = watch {
            w.deciding(0);
        }
        result
    }

    /// Ingests one message inside a savepoint of `conn`'s transaction. On any error the
    /// savepoint is rolled back and the message is stored as unprocessable instead.
    pub async fn ingest_isolated(&self, conn: &mut Conn, item: &BatchItem<'_>) -> Result<Outcome> {
        self.ingest_isolated_watched(conn, item, None).await
    }

    async fn ingest_isolated_watched(
        &self,
        conn: &mut Conn,
        item: &BatchItem<'_>,
        watch: Option<&InFlight>,
    ) -> Result<Outcome> {
        let attempt = self
            .batch_in_savepoint(conn, std::slice::from_ref(item), watch)
            .await?
            .and_then(|mut o| o.pop().ok_or_else(|| anyhow::anyhow!("no outcome")));
        match attempt {
            Ok(o) => Ok(o),
            Err(e) => {
                let where_ = item
                    .source
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
                self.store_unprocessable(conn, item.raw, &format!("{e:#}"), item.source)
                    .await
            }
        }
    }

    /// Runs the batch inside a savepoint. The outer error is a database failure that must
    /// end the transaction; the inner one means the batch was rolled back and may be
    /// retried another way.
    async fn batch_in_savepoint(
        &self,
        conn: &mut Conn,
        items: &[BatchItem<'_>],
        watch: Option<&InFlight>,
    ) -> Result<Result<Vec<Outcome>>> {
        let mut sp = crate::store::savepoint(conn)
            .await
            .context("Opening a savepoint")?;
        match self.ingest_batch(&mut sp, items, watch).await {
            Ok(o) => {
                sp.commit().await.context("Releasing the savepoint")?;
                Ok(Ok(o))
            }
            Err(e) => {
                sp.rollback().await.context("Rolling back the savepoint")?;
                Ok(Err(e))
            }
        }
    }

    /// The batch itself, without isolation: load, decide each message in memory, write.
    async fn ingest_batch(
        &self,
        conn: &mut Conn,
        items: &[BatchItem<'_>],
        watch: Option<&InFlight>,
    ) -> Result<Vec<Outcome>> {
        let now = self.clock().now();
        let max = self.config().ingest.max_message_bytes;
        // Parse what the caller did not parse ahead.
        let mut owned: Vec<Option<Inbound>> = Vec::with_capacity(items.len());
        for it in items {
            let oversize = it.size > max as u64 || it.raw.len() > max;
            owned.push((it.parsed.is_none() && !oversize).then(|| parse::parse(it.raw)));
        }
        let mut regular: Vec<(usize, Item<'_>)> = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            if it.size > max as u64 || it.raw.len() > max {
                continue;
            }
            let parsed = match (it.parsed, owned.get(i).and_then(Option::as_ref)) {
                (Some(p), _) => p,
                (None, Some(p)) => p,
                (None, None) => continue,
            };
            regular.push((
                i,
                Item {
                    raw: it.raw,
                    parsed,
                    source: it.source,
                },
            ));
        }
        let only_items: Vec<Item<'_>> = regular.iter().map(|(_, it)| *it).collect();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; items.len()];
        // Customer mail is decided in runs by a unit of work; agents' mail (rare) is
        // handled one message at a time between the runs, so arrival order holds.
        let mut run: Vec<(usize, Item<'_>)> = Vec::new();
        for ((i, _), it) in regular.iter().zip(only_items) {
            if crate::agent::is_agent_mail(self, it.parsed) {
                self.decide_run(conn, &mut run, &mut outcomes, now, watch)
                    .await?;
                mark(watch, &it);
                // A panic (a bug) on one message must cost only that message: it becomes
                // an error, the batch is replayed message by message, and this one is
                // stored as unprocessable.
                let handled = AssertUnwindSafe(crate::agent::handle(self, conn, &it, now))
                    .catch_unwind()
                    .await
                    .map_err(|p| {
                        anyhow::anyhow!("agent mail handling panicked: {}", panic_text(&p))
                    })??;
                if let Some(o) = handled {
                    if let Some(slot) = outcomes.get_mut(*i) {
                        *slot = Some(o);
                    }
                    continue;
                }
            }
            run.push((*i, it));
        }
        self.decide_run(conn, &mut run, &mut outcomes, now, watch)
            .await?;
        // Oversize messages: headers kept, row numbers after the batch's own.
        let now_s = db_time(now);
        for (i, it) in items.iter().enumerate() {
            if it.size > max as u64 || it.raw.len() > max {
                let head = it.raw.get(..REJECTED_KEEP_BYTES).unwrap_or(it.raw);
                let o = self
                    .store_rejected(
                        conn,
                        head,
                        it.size.max(it.raw.len() as u64) as usize,
                        it.source,
                        &now_s,
                    )
                    .await?;
                if let Some(slot) = outcomes.get_mut(i) {
                    *slot = Some(o);
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| anyhow::anyhow!("a message of the batch got no outcome")))
            .collect()
    }

    /// Decides and writes a run of customer mail with one unit of work, then empties it.
    async fn decide_run<'a>(
        &self,
        conn: &mut Conn,
        run: &mut Vec<(usize, Item<'a>)>,
        outcomes: &mut [Option<Outcome>],
        now: chrono::DateTime<chrono::Utc>,
        watch: Option<&InFlight>,
    ) -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        let items: Vec<Item<'a>> = run.iter().map(|(_, it)| *it).collect();
        let mut unit = Unit::load(conn, self, &items, now).await?;
        for ((i, _), it) in run.iter().zip(&items) {
            mark(watch, it);
            let o = std::panic::catch_unwind(AssertUnwindSafe(|| unit.decide(self, it))).map_err(
                |p| anyhow::anyhow!("deciding the message panicked: {}", panic_text(&p)),
            )??;
            if let Some(slot) = outcomes.get_mut(*i) {
                *slot = Some(o);
            }
        }
        unit.flush(conn, self.raw()).await?;
        run.clear();
        Ok(())
    }

    /// Stores a message that could not be processed, with its raw bytes, without a ticket.
    pub async fn store_unprocessable(
        &self,
        conn: &mut Conn,
        raw: &[u8],
        error: &str,
        source: Option<Source<'_>>,
    ) -> Result<Outcome> {
        let now = db_time(self.clock().now());
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw));
        let message_id = format!(
            "unprocessable.{}@postdesk.invalid",
            sha.get(..40).unwrap_or(&sha)
        );
        if let Some(existing) = messages::find_by_message_id(conn, &message_id).await? {
            return Ok(Outcome::Duplicate { row: existing.row });
        }
        let raw_id = messages::insert_raw(conn, self.raw(), &sha, raw, raw.len(), &now).await?;
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
                channel: Channel::Email,
                match_reason: MatchReason::None,
                problems_json: &problems,
                attachments_json: "[]",
                date_header: None,
                now: &now,
            },
        )
        .await?;
        self.record_source(conn, source, row, &now).await?;
        Ok(Outcome::Unprocessable { row })
    }

    async fn record_source(
        &self,
        conn: &mut Conn,
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

    /// Records a message over the size cap from its first bytes (or its header) and its
    /// real size. It is left on the server (no flag, no move).
    async fn store_rejected(
        &self,
        conn: &mut Conn,
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
            self.config().ingest.max_message_bytes,
            head.len()
        );
        tracing::warn!("Rejected message <{}>: {reason}", p.message_id);
        let raw_id = messages::insert_raw(conn, self.raw(), &sha, head, size, now).await?;
        let to: Vec<&str> = p.to.iter().map(|m| m.address.as_str()).collect();
        let row = messages::insert_message(
            conn,
            &messages::NewMessage {
                ticket_id: None,
                raw_id: Some(raw_id),
                message_id: &message_id,
                synthetic_id: p.synthetic_id,
                body_sha256: &p.body_sha256,
                direction: Direction::Inbound,
                kind: MessageKind::Rejected,
                from_addr: p.from.as_ref().map(|f| f.address.as_str()),
                from_name: p.from.as_ref().and_then(|f| f.name.as_deref()),
                to_json: &serde_json::to_string(&to)?,
                cc_json: "[]",
                subject: &p.subject,
                body_text: "",
                channel: Channel::Email,
                match_reason: MatchReason::None,
                problems_json: &serde_json::to_string(&[reason])?,
                attachments_json: "[]",
                date_header: p.date,
                now,
            },
        )
        .await?;
        self.record_source(conn, source, row, now).await?;
        Ok(Outcome::Rejected { row })
    }
}

/// Records in `watch` that `it` is about to be decided.
fn mark(watch: Option<&InFlight>, it: &Item<'_>) {
    if let (Some(w), Some(s)) = (watch, it.source) {
        w.deciding(s.uid);
    }
}

/// The message of a caught panic.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
