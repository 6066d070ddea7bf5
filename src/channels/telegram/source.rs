//! The Telegram bridge's way in: [`poll_loop`] runs `getUpdates` for one bot until
//! cancelled, [`poll_once`] is one page of it (also what `postdesk run --once` does), and
//! a refused token disables the bot and tells the admins ([`disable_and_alert`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine as _;
use chrono::TimeZone as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::client::{Api, ApiError};
use super::wire::{self, TgMessage, UpdateKind};
use crate::channels::chat::{self, ChatAttachment, ChatMessage, ChatSender};

use crate::clock::db_time;
use crate::config::TelegramChannelConfig;
use crate::domain::Channel;
use crate::intake::pipeline::Pipeline;
use crate::store::{Store, cursors};

/// Updates asked for per page.
const PAGE: u32 = 100;
/// Pages that fail on a file fetch before the messages go in without that file.
const FILE_ATTEMPTS: u32 = 5;

/// Where a bot's loop stands between pages.
#[derive(Debug, Default)]
pub struct PollState {
    /// The offset to send: None until this process has stored a page.
    pub offset: Option<i64>,
    /// Consecutive failed attempts at the current page because of a file.
    file_failures: u32,
}

/// What one page did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageStats {
    /// The offset that confirms these updates (None: there were none).
    pub next_offset: Option<i64>,
    pub updates: usize,
    pub new: usize,
    pub duplicates: usize,
    pub skipped: usize,
}

/// The fingerprint a disablement remembers: enough to tell a changed token, nothing to
/// recover it.
pub fn token_fingerprint(cfg: &TelegramChannelConfig) -> String {
    let d = Sha256::digest(cfg.token.expose().as_bytes());
    hex::encode(d).chars().take(16).collect()
}

/// Whether the bot is disabled for its current token. A disablement recorded for another
/// token is lifted (the admin put in a new one).
pub async fn is_disabled(store: &Store, cfg: &TelegramChannelConfig) -> Result<Option<String>> {
    let mut conn = store.pool().acquire().await?;
    match cursors::find_disabled(&mut conn, Channel::Telegram, &cfg.account).await? {
        Some(d) if d.token_fp == token_fingerprint(cfg) => Ok(Some(d.reason)),
        Some(_) => {
            drop(conn);
            let mut tx = store.begin_write().await?;
            cursors::enable(&mut tx, Channel::Telegram, &cfg.account).await?;
            tx.commit().await?;
            tracing::info!(
                "Telegram bot {:?}: its token changed since it was disabled; enabled again.",
                cfg.account
            );
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Polls `cfg`'s bot until cancelled or disabled.
pub async fn poll_loop(
    store: Store,
    pipeline: Arc<Pipeline>,
    cfg: TelegramChannelConfig,
    cancel: CancellationToken,
    wake_outbox: Arc<tokio::sync::Notify>,
) {
    let api = match Api::new(&cfg) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("Telegram bot {:?}: {e:#}", cfg.account);
            return;
        }
    };
    match is_disabled(&store, &cfg).await {
        Ok(Some(reason)) => {
            tracing::error!(
                "Telegram bot {:?} is disabled ({reason}); put in a new token and restart.",
                cfg.account
            );
            return;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("Telegram bot {:?}: {e:#}", cfg.account),
    }
    tracing::info!("Telegram bot {:?}: polling {}.", cfg.account, cfg.api_base);
    let mut state = PollState::default();
    let mut failures = 0u32;
    loop {
        let poll = poll_once(&store, &pipeline, &cfg, &api, &mut state);
        let outcome = tokio::select! {
            _ = cancel.cancelled() => return,
            r = poll => r,
        };
        let wait = match outcome {
            Ok(stats) => {
                failures = 0;
                if stats.new > 0 {
                    wake_outbox.notify_one();
                }
                Duration::ZERO
            }
            Err(e) => {
                let api_error = e.downcast_ref::<ApiError>().cloned();
                if let Some(ApiError::Unauthorized(why)) = &api_error {
                    match disable_and_alert(&store, &pipeline, &cfg, why).await {
                        Ok(()) => wake_outbox.notify_one(),
                        Err(e) => tracing::error!(
                            "Telegram bot {:?}: recording the disablement failed: {e:#}",
                            cfg.account
                        ),
                    }
                    return;
                }
                failures = failures.saturating_add(1);
                let backoff = Duration::from_secs(2u64.saturating_pow(failures.min(8)))
                    .min(Duration::from_secs(300));
                let wait = match &api_error {
                    Some(ApiError::RetryAfter(after, _)) => *after,
                    _ => backoff,
                };
                tracing::warn!(
                    "Telegram bot {:?}: polling failed ({e:#}); next try in {}s.",
                    cfg.account,
                    wait.as_secs()
                );
                record_error(&store, &cfg.account, &format!("{e:#}")).await;
                wait
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

async fn record_error(store: &Store, account: &str, error: &str) {
    if let Ok(mut tx) = store.begin_write().await
        && cursors::record_poll_error(&mut tx, Channel::Telegram, account, error)
            .await
            .is_ok()
    {
        let _ = tx.commit().await;
    }
}

/// One page: fetch, store with the cursor in one transaction, then (on the next call)
/// confirm it to Telegram with the offset.
pub async fn poll_once(
    store: &Store,
    pipeline: &Pipeline,
    cfg: &TelegramChannelConfig,
    api: &Api,
    state: &mut PollState,
) -> Result<PageStats> {
    let (updates, dropped) = api
        .get_updates(state.offset, cfg.poll_timeout, PAGE)
        .await?;
    let stored = {
        let mut conn = store.pool().acquire().await?;
        cursors::find_cursor(&mut conn, Channel::Telegram, &cfg.account).await?
    };
    if dropped > 0 {
        tracing::warn!(
            "Telegram bot {:?}: {dropped} update(s) without a numeric update_id skipped.",
            cfg.account
        );
    }
    if state.offset.is_none()
        && let Some(s) = stored.as_deref().and_then(|s| s.parse::<i64>().ok())
        && let Some(first) = updates.iter().map(|u| u.update_id).min()
        && first < s - 1
    {
        tracing::warn!(
            "Telegram bot {:?}: the server's updates start at {first}, below the stored offset {s}; \
             reading them (the stored cursor is ahead of the server's, copies are recognised).",
            cfg.account
        );
    }

    let stats = store_updates(store, pipeline, cfg, api, &updates, dropped, state).await?;
    if let Some(next) = stats.next_offset {
        // Only now may Telegram forget the page: the next getUpdates carries this offset.
        state.offset = Some(next);
    }
    Ok(stats)
}

/// Stores `updates` (a page, or one webhook delivery) with the cursor after them in one
/// transaction: messages go through intake, the rest is skipped with its reason logged.
pub async fn store_updates(
    store: &Store,
    pipeline: &Pipeline,
    cfg: &TelegramChannelConfig,
    api: &Api,
    updates: &[wire::Update],
    dropped: usize,
    state: &mut PollState,
) -> Result<PageStats> {
    let now = pipeline.clock().now();
    let mut stats = PageStats {
        updates: updates.len(),
        skipped: dropped,
        ..PageStats::default()
    };
    let Some(last) = updates.iter().map(|u| u.update_id).max() else {
        let mut tx = store.begin_write().await?;
        cursors::record_poll(
            &mut tx,
            Channel::Telegram,
            &cfg.account,
            None,
            &db_time(now),
        )
        .await?;
        tx.commit().await?;
        return Ok(stats);
    };
    let mut batch: Vec<(ChatMessage, Vec<u8>)> = Vec::new();
    for u in updates {
        match &u.kind {
            UpdateKind::Message(m) if m.sender_is_bot => {
                stats.skipped += 1;
                tracing::info!(
                    "Telegram bot {:?}: update {} is from a bot; skipped.",
                    cfg.account,
                    u.update_id
                );
            }
            UpdateKind::Message(m) => {
                let files = fetch_files(api, cfg, m, state).await?;
                batch.push(to_chat(&cfg.account, u.update_id, m, &u.raw, files));
            }
            UpdateKind::Other(kind) => {
                stats.skipped += 1;
                tracing::info!(
                    "Telegram bot {:?}: update {} is a {kind:?}, which postdesk does not take; skipped.",
                    cfg.account,
                    u.update_id
                );
            }
            UpdateKind::Unreadable(why) => {
                stats.skipped += 1;
                tracing::warn!(
                    "Telegram bot {:?}: update {} skipped: {why}.",
                    cfg.account,
                    u.update_id
                );
            }
        }
    }
    let next = last.saturating_add(1);
    let mut tx = store.begin_write().await?;
    let results = if batch.is_empty() {
        Vec::new()
    } else {
        chat::ingest(pipeline, &mut tx, Channel::Telegram, &cfg.account, &batch).await?
    };
    cursors::record_poll(
        &mut tx,
        Channel::Telegram,
        &cfg.account,
        Some(&next.to_string()),
        &db_time(now),
    )
    .await?;
    tx.commit().await.context("Committing a Telegram page")?;
    state.file_failures = 0;
    stats.next_offset = Some(next);
    stats.duplicates = results.iter().filter(|r| r.duplicate).count();
    stats.new = results.len() - stats.duplicates;
    tracing::info!(
        "Telegram bot {:?}: {} update(s) up to {last}: {} new message(s), {} copies, {} skipped.",
        cfg.account,
        stats.updates,
        stats.new,
        stats.duplicates,
        stats.skipped
    );
    Ok(stats)
}

/// Fetches a message's files. A file Telegram will not give (too large, gone) is named in
/// the text instead; a transient failure fails the page (it is polled again) until
/// [`FILE_ATTEMPTS`] pages in a row failed, then the file is named instead too.
async fn fetch_files(
    api: &Api,
    cfg: &TelegramChannelConfig,
    m: &TgMessage,
    state: &mut PollState,
) -> Result<Vec<Result<ChatAttachment, String>>> {
    let mut out = Vec::new();
    for f in &m.files {
        if f.size.is_some_and(|s| s > cfg.max_file_bytes as u64) {
            out.push(Err(format!(
                "{} ({} bytes) is over max_file_mb",
                f.name,
                f.size.unwrap_or(0)
            )));
            continue;
        }
        match api.fetch_file(&f.file_id).await {
            Ok(fetched) => out.push(Ok(ChatAttachment {
                name: f.name.clone(),
                content_type: f.content_type.clone(),
                data: fetched.data,
            })),
            Err(e @ (ApiError::Unauthorized(_) | ApiError::RetryAfter(..))) => {
                return Err(e.into());
            }
            Err(ApiError::Transient(why)) if state.file_failures + 1 < FILE_ATTEMPTS => {
                state.file_failures += 1;
                return Err(ApiError::Transient(format!("fetching {}: {why}", f.name)).into());
            }
            Err(e) => out.push(Err(format!("{} could not be fetched: {e}", f.name))),
        }
    }
    Ok(out)
}

/// A Telegram message as a chat message, with the raw record kept for it: the update as
/// Telegram sent it, the files in base64.
fn to_chat(
    account: &str,
    update_id: i64,
    m: &TgMessage,
    raw_update: &Value,
    files: Vec<Result<ChatAttachment, String>>,
) -> (ChatMessage, Vec<u8>) {
    let mut text = m.text.clone();
    if text.is_empty()
        && let Some(phone) = &m.own_phone
    {
        // The number itself goes to the message's verified phone; this is for people.
        text = format!("[shared their own phone number {phone}, verified by Telegram]");
    }
    let mut attachments = Vec::new();
    for f in files {
        match f {
            Ok(a) => attachments.push(a),
            Err(why) => {
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(&format!("[a file was not kept: {why}]"));
            }
        }
    }
    let files_json: Vec<Value> = attachments
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "content_type": a.content_type,
                "data_base64": base64::engine::general_purpose::STANDARD.encode(&a.data),
            })
        })
        .collect();
    let raw = serde_json::to_vec_pretty(&json!({
        "channel": "telegram",
        "account": account,
        "update_id": update_id,
        "update": raw_update,
        "files": files_json,
    }))
    .unwrap_or_default();
    let message = ChatMessage {
        external_id: wire::external_id(m.chat_id, m.message_id),
        conversation_id: m.chat_id.to_string(),
        sender: ChatSender {
            id: m.sender_id.to_string(),
            name: m.sender_name.clone(),
            email: None,
        },
        text,
        html: None,
        sent_at: m
            .date
            .and_then(|d| chrono::Utc.timestamp_opt(d, 0).single()),
        attachments,
        reply_to: m.reply_to.map(|r| wire::external_id(m.chat_id, r)),
        verified_phone: m.own_phone.clone(),
    };
    (message, raw)
}

/// Disables the bot for its current token and mails the admins (see
/// [`chat::disable_and_alert`]).
pub async fn disable_and_alert(
    store: &Store,
    pipeline: &Pipeline,
    cfg: &TelegramChannelConfig,
    why: &str,
) -> Result<()> {
    chat::disable_and_alert(
        store,
        pipeline,
        Channel::Telegram,
        &cfg.account,
        &token_fingerprint(cfg),
        &format!("the Bot API refused the token: {why}"),
        "Put a valid token in the configuration (token, token_file or token_env) and restart postdesk: the bot is enabled again when its token changes.",
    )
    .await
}
