//! The Matrix bridge's way in: [`sync_loop`] runs `/sync` for one account until cancelled,
//! [`sync_once`] is one round of it (also what `postdesk run --once` does).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine as _;
use chrono::TimeZone as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::client::{Client, MxError};
use crate::channels::chat::{self, ChatMessage, ChatSender};
use crate::clock::db_time;
use crate::config::MatrixChannelConfig;
use crate::domain::Channel;
use crate::intake::pipeline::Pipeline;
use crate::store::{Store, cursors};

/// Backfill pages fetched for one limited timeline.
const BACKFILL_PAGES: usize = 5;

/// The sync filter: room timelines of messages only, no presence or account data.
fn filter(initial: bool) -> Value {
    json!({
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": if initial { 0 } else { 100 }, "types": ["m.room.message"]},
            "state": {"types": []},
            "ephemeral": {"types": []},
            "account_data": {"types": []}
        }
    })
}

/// A logged-in account.
pub struct Session {
    pub client: Client,
    pub user_id: String,
}

/// The fingerprint of the credentials a disablement remembers.
pub fn credential_fingerprint(cfg: &MatrixChannelConfig) -> String {
    let secret = cfg
        .password
        .as_ref()
        .or(cfg.access_token.as_ref())
        .map(|s| s.expose().to_string())
        .unwrap_or_default();
    let d = Sha256::digest(format!("{}\0{secret}", cfg.user).as_bytes());
    hex::encode(d).chars().take(16).collect()
}

/// Logs in (with the password) or takes the access token as given.
pub async fn connect(cfg: &MatrixChannelConfig) -> Result<Session, MxError> {
    let mut client = Client::new(cfg).map_err(|e| MxError::Permanent(format!("{e:#}")))?;
    let user_id = match &cfg.password {
        Some(p) => {
            let device = format!("POSTDESK_{}", cfg.account.to_ascii_uppercase());
            client.login(&cfg.user, p.expose(), &device).await?
        }
        None => cfg.user.clone(),
    };
    Ok(Session { client, user_id })
}

/// Whether the account is disabled for its current credentials (lifted when they changed).
pub async fn is_disabled(store: &Store, cfg: &MatrixChannelConfig) -> Result<Option<String>> {
    let mut conn = store.pool().acquire().await?;
    match cursors::find_disabled(&mut conn, Channel::Matrix, &cfg.account).await? {
        Some(d) if d.token_fp == credential_fingerprint(cfg) => Ok(Some(d.reason)),
        Some(_) => {
            drop(conn);
            let mut tx = store.begin_write().await?;
            cursors::enable(&mut tx, Channel::Matrix, &cfg.account).await?;
            tx.commit().await?;
            Ok(None)
        }
        None => Ok(None),
    }
}

async fn disable(store: &Store, pipeline: &Pipeline, cfg: &MatrixChannelConfig, why: &str) {
    if let Err(e) = chat::disable_and_alert(
        store,
        pipeline,
        Channel::Matrix,
        &cfg.account,
        &credential_fingerprint(cfg),
        &format!("the homeserver refused the credentials: {why}"),
        "Put a valid password or access token in the configuration and restart postdesk: the account is enabled again when its credentials change.",
    )
    .await
    {
        tracing::error!("Matrix account {:?}: {e:#}", cfg.account);
    }
}

/// Syncs `cfg`'s account until cancelled or disabled.
pub async fn sync_loop(
    store: Store,
    pipeline: Arc<Pipeline>,
    cfg: MatrixChannelConfig,
    cancel: CancellationToken,
    wake_outbox: Arc<tokio::sync::Notify>,
) {
    if let Ok(Some(reason)) = is_disabled(&store, &cfg).await {
        tracing::error!(
            "Matrix account {:?} is disabled ({reason}); put in new credentials and restart.",
            cfg.account
        );
        return;
    }
    let mut failures = 0u32;
    let mut session: Option<Session> = None;
    loop {
        let round = async {
            if session.is_none() {
                session = Some(connect(&cfg).await?);
                tracing::info!(
                    "Matrix account {:?}: logged in to {}.",
                    cfg.account,
                    cfg.homeserver
                );
            }
            let Some(s) = session.as_ref() else {
                return Err(MxError::Transient("no session".into()));
            };
            sync_once(&store, &pipeline, &cfg, s, cfg.poll_timeout)
                .await
                .map_err(|e| match e.downcast::<MxError>() {
                    Ok(mx) => mx,
                    Err(e) => MxError::Transient(format!("{e:#}")),
                })
        };
        let outcome = tokio::select! {
            _ = cancel.cancelled() => return,
            r = round => r,
        };
        let wait = match outcome {
            Ok(new) => {
                failures = 0;
                if new > 0 {
                    wake_outbox.notify_one();
                }
                Duration::ZERO
            }
            Err(MxError::Unauthorized(why)) => {
                // A token that expired: log in again once, if there is a password.
                if session.take().is_some() && cfg.password.is_some() && failures == 0 {
                    failures = 1;
                    Duration::ZERO
                } else {
                    disable(&store, &pipeline, &cfg, &why).await;
                    wake_outbox.notify_one();
                    return;
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = match &e {
                    MxError::RetryAfter(d, _) => *d,
                    _ => Duration::from_secs(2u64.saturating_pow(failures.min(8)))
                        .min(Duration::from_secs(300)),
                };
                tracing::warn!(
                    "Matrix account {:?}: sync failed ({e}); next try in {}s.",
                    cfg.account,
                    wait.as_secs()
                );
                if let Ok(mut tx) = store.begin_write().await
                    && cursors::record_poll_error(
                        &mut tx,
                        Channel::Matrix,
                        &cfg.account,
                        &e.to_string(),
                    )
                    .await
                    .is_ok()
                {
                    let _ = tx.commit().await;
                }
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

/// One `/sync`: joins the rooms the account is invited to, stores the messages (after a
/// backfill of any limited timeline) with the next batch token in one transaction. The
/// first sync of an account stores only the token. Returns how many messages were new.
pub async fn sync_once(
    store: &Store,
    pipeline: &Pipeline,
    cfg: &MatrixChannelConfig,
    session: &Session,
    timeout: Duration,
) -> Result<usize> {
    let since = {
        let mut conn = store.pool().acquire().await?;
        cursors::find_cursor(&mut conn, Channel::Matrix, &cfg.account).await?
    };
    let initial = since.is_none();
    let v = session
        .client
        .sync(
            since.as_deref(),
            if initial { Duration::ZERO } else { timeout },
            &filter(initial),
        )
        .await?;
    let next = v
        .get("next_batch")
        .and_then(Value::as_str)
        .context("the sync answer has no next_batch")?
        .to_string();
    if let Some(invites) = v.pointer("/rooms/invite").and_then(Value::as_object) {
        for room in invites.keys() {
            match session.client.join(room).await {
                Ok(()) => {
                    tracing::info!("Matrix account {:?}: joined {room} (invited).", cfg.account)
                }
                Err(e) => tracing::warn!(
                    "Matrix account {:?}: joining {room} failed: {e}",
                    cfg.account
                ),
            }
        }
    }
    let mut batch: Vec<(ChatMessage, Vec<u8>)> = Vec::new();
    // Downloads this sync may still make: a flood of files (or slow remote media) must
    // not hold up the messages behind them.
    let mut downloads_left = MAX_DOWNLOADS_PER_SYNC;
    if !initial && let Some(joined) = v.pointer("/rooms/join").and_then(Value::as_object) {
        for (room, r) in joined {
            let mut events: Vec<Value> = r
                .pointer("/timeline/events")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let limited = r.pointer("/timeline/limited").and_then(Value::as_bool) == Some(true);
            if limited
                && let Some(mut from) = r
                    .pointer("/timeline/prev_batch")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            {
                // The gap before this timeline, newest first: fetched back a few pages;
                // events already stored are recognised as copies.
                let mut older: Vec<Value> = Vec::new();
                for _ in 0..BACKFILL_PAGES {
                    let page = session.client.messages_before(room, &from).await?;
                    let chunk = page
                        .get("chunk")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    if chunk.is_empty() {
                        break;
                    }
                    older.extend(chunk);
                    match page.get("end").and_then(Value::as_str) {
                        Some(end) if end != from => from = end.to_string(),
                        _ => break,
                    }
                }
                tracing::info!(
                    "Matrix account {:?}: room {room}'s timeline was limited; {} earlier event(s) fetched.",
                    cfg.account,
                    older.len()
                );
                older.reverse();
                older.extend(events);
                events = older;
            }
            let mut seen = std::collections::HashSet::new();
            for ev in events {
                let Some(id) = ev.get("event_id").and_then(Value::as_str) else {
                    continue;
                };
                if !seen.insert(id.to_string()) {
                    continue;
                }
                if let Some((mut m, mut raw, media)) = to_chat(cfg, &session.user_id, room, &ev) {
                    if let Some(media) = media {
                        if downloads_left > 0 {
                            downloads_left -= 1;
                            fetch_media(&session.client, cfg, &media, &mut m, &mut raw).await;
                        } else {
                            m.text.push_str(&format!(
                                "\n[the file was not kept: more than {MAX_DOWNLOADS_PER_SYNC} files came at once]"
                            ));
                        }
                    }
                    batch.push((m, serde_json::to_vec_pretty(&raw).unwrap_or_default()));
                }
            }
        }
    }
    let now = pipeline.clock().now();
    let mut tx = store.begin_write().await?;
    let results = if batch.is_empty() {
        Vec::new()
    } else {
        chat::ingest(pipeline, &mut tx, Channel::Matrix, &cfg.account, &batch).await?
    };
    cursors::record_poll(
        &mut tx,
        Channel::Matrix,
        &cfg.account,
        Some(&next),
        &db_time(now),
    )
    .await?;
    tx.commit().await.context("Committing a Matrix sync")?;
    let new = results.iter().filter(|r| !r.duplicate).count();
    if initial {
        tracing::info!(
            "Matrix account {:?}: first sync; starting from now (no history taken).",
            cfg.account
        );
    } else if !results.is_empty() {
        tracing::info!(
            "Matrix account {:?}: {} message(s), {new} new.",
            cfg.account,
            results.len()
        );
    }
    Ok(new)
}

/// Files one sync downloads at most; the rest are named in their message's text.
pub const MAX_DOWNLOADS_PER_SYNC: usize = 10;

/// An image or file an event names, to download.
struct Media {
    mxc: String,
    name: String,
    content_type: String,
}

/// Downloads `media` into `m`'s attachments and the raw record's `files` (base64, as the
/// Telegram bridge keeps them); when it cannot be had, a line in the text says why.
async fn fetch_media(
    client: &super::client::Client,
    cfg: &MatrixChannelConfig,
    media: &Media,
    m: &mut ChatMessage,
    raw: &mut Value,
) {
    match client.download(&media.mxc, cfg.max_file_bytes).await {
        Ok(data) => {
            if let Some(o) = raw.as_object_mut() {
                o.insert(
                    "files".into(),
                    json!([{
                        "name": media.name,
                        "content_type": media.content_type,
                        "data_base64": base64::engine::general_purpose::STANDARD.encode(&data),
                    }]),
                );
            }
            m.attachments.push(crate::channels::chat::ChatAttachment {
                name: media.name.clone(),
                content_type: media.content_type.clone(),
                data,
            });
        }
        Err(why) => {
            tracing::warn!(
                "Matrix account {:?}: {} not downloaded: {why}",
                cfg.account,
                media.mxc
            );
            m.text
                .push_str(&format!("\n[the file was not kept: {why}]"));
        }
    }
}

/// A room message as a chat message with its raw record, and the media it names, or
/// None for what is skipped: our own events, notices (bots), redacted or bodiless events,
/// other event types.
fn to_chat(
    cfg: &MatrixChannelConfig,
    own: &str,
    room: &str,
    ev: &Value,
) -> Option<(ChatMessage, Value, Option<Media>)> {
    if ev.get("type").and_then(Value::as_str) != Some("m.room.message") {
        return None;
    }
    let sender = ev.get("sender").and_then(Value::as_str)?;
    if sender == own {
        return None;
    }
    let content = ev.get("content")?;
    let msgtype = content.get("msgtype").and_then(Value::as_str).unwrap_or("");
    if msgtype == "m.notice" {
        return None;
    }
    let mut text: String = content
        .get("body")
        .and_then(Value::as_str)?
        .chars()
        .take(65_536)
        .collect();
    let mut media = None;
    if let Some(url) = content.get("url").and_then(Value::as_str)
        && matches!(msgtype, "m.image" | "m.file" | "m.video" | "m.audio")
    {
        let name: String = content
            .get("filename")
            .and_then(Value::as_str)
            .unwrap_or(&text)
            .chars()
            .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
            .take(200)
            .collect();
        media = Some(Media {
            mxc: url.to_string(),
            name: if name.trim().is_empty() {
                "file".to_string()
            } else {
                name
            },
            content_type: content
                .pointer("/info/mimetype")
                .and_then(Value::as_str)
                .filter(|t| chat::is_media_type(t))
                .unwrap_or("application/octet-stream")
                .to_string(),
        });
        text = format!("[{msgtype} {text}]");
    }
    let event_id = ev.get("event_id").and_then(Value::as_str)?;
    let name = sender
        .strip_prefix('@')
        .and_then(|s| s.split(':').next())
        .unwrap_or(sender);
    let raw = json!({
        "channel": "matrix",
        "account": cfg.account,
        "room_id": room,
        "event": ev,
    });
    Some((
        ChatMessage {
            external_id: event_id.to_string(),
            conversation_id: room.to_string(),
            sender: ChatSender {
                id: sender.to_string(),
                name: name.to_string(),
                email: None,
            },
            text,
            html: None,
            sent_at: ev
                .get("origin_server_ts")
                .and_then(Value::as_i64)
                .and_then(|ms| chrono::Utc.timestamp_millis_opt(ms).single()),
            attachments: Vec::new(),
            verified_phone: None,
            reply_to: content
                .pointer("/m.relates_to/m.in_reply_to/event_id")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        raw,
        media,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MatrixChannelConfig {
        MatrixChannelConfig {
            account: "support".into(),
            homeserver: "http://127.0.0.1:1".into(),
            user: "@support:hs".into(),
            password: None,
            access_token: None,
            poll_timeout: Duration::from_secs(1),
            per_room_per_minute: 20,
            rate_per_second: 5,
            max_file_bytes: 1024,
        }
    }

    fn chat(ev: Value) -> Option<(ChatMessage, Value, Option<Media>)> {
        to_chat(&cfg(), "@support:hs", "!room:hs", &ev)
    }

    fn message(content: Value) -> Value {
        json!({"type": "m.room.message", "sender": "@ann:hs", "event_id": "$e1",
            "origin_server_ts": 1_796_000_000_000i64, "content": content})
    }

    #[test]
    fn a_text_message_becomes_a_chat_message_with_its_reply_and_raw_event() {
        let (m, raw, media) = chat(message(json!({"msgtype": "m.text", "body": "Hello",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$ours"}}})))
        .unwrap();
        assert_eq!(m.text, "Hello");
        assert_eq!(m.external_id, "$e1");
        assert_eq!(m.conversation_id, "!room:hs");
        assert_eq!(m.sender.id, "@ann:hs");
        assert_eq!(m.sender.name, "ann");
        assert_eq!(m.reply_to.as_deref(), Some("$ours"));
        assert_eq!(m.verified_phone, None);
        assert!(media.is_none());
        assert_eq!(raw["event"]["event_id"], "$e1");
    }

    #[test]
    fn own_events_notices_other_types_and_malformed_events_are_skipped() {
        let mut own = message(json!({"msgtype": "m.text", "body": "ours"}));
        own["sender"] = json!("@support:hs");
        assert!(chat(own).is_none());
        assert!(chat(message(json!({"msgtype": "m.notice", "body": "a bot"}))).is_none());
        assert!(
            chat(
                json!({"type": "m.room.member", "sender": "@ann:hs", "event_id": "$x",
            "content": {"membership": "join"}})
            )
            .is_none()
        );
        // Redacted (no body), a body of the wrong type, no sender, no event id, no content.
        assert!(chat(message(json!({}))).is_none());
        assert!(chat(message(json!({"msgtype": "m.text", "body": 42}))).is_none());
        let mut no_sender = message(json!({"msgtype": "m.text", "body": "x"}));
        no_sender.as_object_mut().unwrap().remove("sender");
        assert!(chat(no_sender).is_none());
        let mut no_id = message(json!({"msgtype": "m.text", "body": "x"}));
        no_id.as_object_mut().unwrap().remove("event_id");
        assert!(chat(no_id).is_none());
        assert!(
            chat(json!({"type": "m.room.message", "sender": "@ann:hs", "event_id": "$y"}))
                .is_none()
        );
        assert!(chat(json!("not an object")).is_none());
    }

    #[test]
    fn a_huge_body_is_cut_and_a_hostile_file_name_and_type_are_tamed() {
        let (m, _, _) = chat(message(
            json!({"msgtype": "m.text", "body": "x".repeat(200_000)}),
        ))
        .unwrap();
        assert_eq!(m.text.chars().count(), 65_536);
        let (m, _, media) = chat(message(json!({"msgtype": "m.file", "body": "f",
            "filename": "../../etc/passwd\u{7}", "url": "mxc://hs/abc",
            "info": {"mimetype": "text/html\r\nX-Evil: 1"}})))
        .unwrap();
        let media = media.unwrap();
        assert_eq!(media.name, "....etcpasswd");
        assert_eq!(media.content_type, "application/octet-stream");
        assert_eq!(media.mxc, "mxc://hs/abc");
        assert_eq!(m.text, "[m.file f]");
        // A text message naming a url is no file.
        let (_, _, media) = chat(message(
            json!({"msgtype": "m.text", "body": "t", "url": "mxc://hs/abc"}),
        ))
        .unwrap();
        assert!(media.is_none());
    }
}
