//! The JSON channel's way in and out of the database: pushed and polled messages go
//! through intake by way of `channels::chat` (the same unit of work as mail), and the pull outbox is
//! read and acknowledged through the store. [`StoreBackend`] is what the HTTP router calls;
//! [`feed_loop`] polls a relay's feed.
//!
//! A chat sender is a customer identity of its own, `json:<account>:<sender id>`; the email
//! address a relay gives is recorded on it and never used to merge it with a mail customer
//! (that takes a verified signal, which the social bridges bring). Messages are idempotent
//! per (account, external id): the Message-ID intake dedups by is derived from both.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine as _;
use tokio_util::sync::CancellationToken;

use super::client::{self, DeliveryOutcome};
use super::http::{BoxFuture, Health, JsonBackend};
use super::wire::{Delivery, JsonMessage, PushResult};
use crate::channels::chat;
use crate::clock::db_time;
use crate::config::JsonChannelConfig;
use crate::domain::{Channel, TicketId};
use crate::intake::pipeline::Pipeline;
use crate::store::{Store, cursors, outbox};

/// The customer identity of a chat sender.
pub fn identity(account: &str, sender_id: &str) -> String {
    chat::identity(Channel::Json, account, sender_id)
}

/// The Message-ID a JSON-channel message is stored under (see [`chat::message_id`]).
pub fn message_id(account: &str, external_id: &str) -> String {
    chat::message_id(Channel::Json, account, external_id)
}

/// The raw record kept for a chat message (what `message raw` shows): the message as the
/// relay sent it, attachments in base64.
pub fn raw_record(account: &str, m: &JsonMessage) -> Vec<u8> {
    let attachments: Vec<serde_json::Value> = m
        .attachments
        .iter()
        .map(|a| {
            serde_json::json!({
                "name": a.name,
                "content_type": a.content_type,
                "data_base64": base64::engine::general_purpose::STANDARD.encode(&a.data),
            })
        })
        .collect();
    let v = serde_json::json!({
        "channel": "json",
        "account": account,
        "external_id": m.external_id,
        "conversation_id": m.conversation_id,
        "sender": {"id": m.sender.id, "name": m.sender.name, "email": m.sender.email},
        "text": m.text,
        "html": m.html,
        "sent_at": m.sent_at.map(|t| t.to_rfc3339()),
        "attachments": attachments,
    });
    serde_json::to_vec_pretty(&v).unwrap_or_default()
}

/// Stores `messages` of `account` in the caller's transaction, through intake: one
/// [`PushResult`] per message, in order.
pub async fn ingest(
    pipeline: &Pipeline,
    conn: &mut crate::store::Conn,
    account: &str,
    batch: &[JsonMessage],
) -> Result<Vec<PushResult>> {
    let with_raw: Vec<(JsonMessage, Vec<u8>)> = batch
        .iter()
        .map(|m| (m.clone(), raw_record(account, m)))
        .collect();
    Ok(
        chat::ingest(pipeline, conn, Channel::Json, account, &with_raw)
            .await?
            .into_iter()
            .map(|r| PushResult {
                external_id: r.external_id,
                ticket_id: r.ticket_id,
                duplicate: r.duplicate,
            })
            .collect(),
    )
}

/// The router's backend over the store.
pub struct StoreBackend {
    pub store: Store,
    pub pipeline: Arc<Pipeline>,
    /// Woken after a push that may have queued mail (agents' notifications).
    pub wake_outbox: Arc<tokio::sync::Notify>,
}

impl JsonBackend for StoreBackend {
    fn push<'a>(
        &'a self,
        account: &'a str,
        batch: Vec<JsonMessage>,
    ) -> BoxFuture<'a, Result<Vec<PushResult>>> {
        Box::pin(async move {
            let mut tx = self.store.begin_write().await?;
            let results = ingest(&self.pipeline, &mut tx, account, &batch).await?;
            tx.commit().await.context("Committing pushed messages")?;
            let new = results.iter().filter(|r| !r.duplicate).count();
            tracing::info!(
                "JSON channel {account:?}: {} message(s) pushed, {new} new.",
                results.len()
            );
            if new > 0 {
                self.wake_outbox.notify_one();
            }
            Ok(results)
        })
    }

    fn outbox_after<'a>(
        &'a self,
        account: &'a str,
        after: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>>> {
        Box::pin(async move {
            let mut conn = self.store.pool().acquire().await?;
            let rows =
                outbox::list_pull(&mut conn, Channel::Json, account, after, limit as i64).await?;
            rows.into_iter()
                .map(|(id, ticket, payload)| delivery_of(id, ticket, &payload))
                .collect()
        })
    }

    fn ack<'a>(&'a self, account: &'a str, up_to: i64) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let mut tx = self.store.begin_write().await?;
            let n = outbox::ack_pull(
                &mut tx,
                Channel::Json,
                account,
                up_to,
                &db_time(self.pipeline.clock().now()),
            )
            .await?;
            tx.commit().await?;
            tracing::info!(
                "JSON channel {account:?}: relay acknowledged {n} delivery(ies) up to {up_to}."
            );
            Ok(n)
        })
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(async move {
            let mut health = Health {
                database_ok: false,
                sources: Default::default(),
            };
            let Ok(mut conn) = self.store.pool().acquire().await else {
                return health;
            };
            health.database_ok = cursors::ping(&mut conn).await.is_ok();
            if let Ok(polls) = cursors::list_polls(&mut conn).await {
                for (channel, account, at) in polls {
                    let at = at.and_then(|t| {
                        chrono::DateTime::parse_from_rfc3339(&t)
                            .ok()
                            .map(|t| t.with_timezone(&chrono::Utc))
                    });
                    health.sources.insert(format!("{channel}:{account}"), at);
                }
            }
            health
        })
    }
}

/// The delivery an outbox row of the JSON channel stands for.
pub fn delivery_of(id: i64, ticket: Option<TicketId>, payload: &str) -> Result<Delivery> {
    let v: serde_json::Value =
        serde_json::from_str(payload).with_context(|| format!("Outbox row {id}: payload"))?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    Ok(Delivery::new(
        id,
        ticket
            .or_else(|| v.get("ticket_id").and_then(serde_json::Value::as_i64))
            .unwrap_or(0),
        s("conversation_id"),
        s("recipient"),
        s("text"),
    ))
}

/// Sends one outbox row to a push account's `deliver_url`.
pub async fn send(
    http: &reqwest::Client,
    account: &JsonChannelConfig,
    id: i64,
    payload: &str,
    now_unix: i64,
) -> DeliveryOutcome {
    let Some(url) = &account.deliver_url else {
        return DeliveryOutcome::Failed(format!(
            "account {:?} has no deliver_url (its relay pulls the outbox)",
            account.account
        ));
    };
    match delivery_of(id, None, payload) {
        Ok(d) => client::deliver(http, url, account.secret.expose().as_bytes(), &d, now_unix).await,
        Err(e) => DeliveryOutcome::Failed(format!("{e:#}")),
    }
}

/// Polls `account`'s feed until cancelled: each page's messages, and the cursor after
/// them, commit in one transaction, so a crash repeats at most a page, which the external
/// ids absorb. An empty page waits `poll_interval`; errors back off up to five minutes.
pub async fn feed_loop(
    store: Store,
    pipeline: Arc<Pipeline>,
    account: JsonChannelConfig,
    cancel: CancellationToken,
    wake_outbox: Arc<tokio::sync::Notify>,
) {
    let Some(url) = account.feed_url.clone() else {
        return;
    };
    let http = match client::http_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("JSON channel {:?}: no HTTP client: {e:#}", account.account);
            return;
        }
    };
    let mut failures = 0u32;
    loop {
        let wait = match poll_once(&store, &pipeline, &account, &url, &http).await {
            Ok(n) => {
                failures = 0;
                if n > 0 {
                    wake_outbox.notify_one();
                    Duration::ZERO
                } else {
                    account.poll_interval
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = Duration::from_secs(2u64.saturating_pow(failures.min(8)))
                    .min(Duration::from_secs(300));
                tracing::warn!(
                    "JSON channel {:?}: polling the feed failed ({e:#}); next try in {}s.",
                    account.account,
                    wait.as_secs()
                );
                if let Ok(mut tx) = store.begin_write().await
                    && cursors::record_poll_error(
                        &mut tx,
                        Channel::Json,
                        &account.account,
                        &format!("{e:#}"),
                    )
                    .await
                    .is_ok()
                {
                    let _ = tx.commit().await;
                }
                wait
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One page of the feed; the number of messages it brought.
pub async fn poll_once(
    store: &Store,
    pipeline: &Pipeline,
    account: &JsonChannelConfig,
    url: &str,
    http: &reqwest::Client,
) -> Result<usize> {
    let cursor = {
        let mut conn = store.pool().acquire().await?;
        cursors::find_cursor(&mut conn, Channel::Json, &account.account).await?
    };
    let now = pipeline.clock().now();
    let page = client::poll_feed(
        http,
        url,
        account.secret.expose().as_bytes(),
        cursor.as_deref(),
        now.timestamp(),
    )
    .await?;
    let mut tx = store.begin_write().await?;
    let results = if page.messages.is_empty() {
        Vec::new()
    } else {
        ingest(pipeline, &mut tx, &account.account, &page.messages).await?
    };
    cursors::record_poll(
        &mut tx,
        Channel::Json,
        &account.account,
        page.cursor.as_deref(),
        &db_time(now),
    )
    .await?;
    tx.commit().await.context("Committing a feed page")?;
    if !results.is_empty() {
        tracing::info!(
            "JSON channel {:?}: {} message(s) from the feed, {} new.",
            account.account,
            results.len(),
            results.iter().filter(|r| !r.duplicate).count()
        );
    }
    Ok(results.len())
}
