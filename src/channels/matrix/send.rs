//! The Matrix bridge's way out: an agent's answer (an outbox row's payload, written by
//! `agent::act::queue_on_channel`) sent as `m.text` with a transaction id the homeserver
//! deduplicates, so any failure is retried without a risk of a double post.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::client::MxError;
use super::source::{Session, connect};
use crate::config::MatrixChannelConfig;

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Done,
    /// Sent, and the homeserver named the event.
    DoneAs(String),
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Failed(String),
}

pub struct Transport {
    cfg: MatrixChannelConfig,
    session: Mutex<Option<Session>>,
    rooms: DefaultKeyedRateLimiter<String>,
    /// The whole account's pace (`rate_per_second`).
    account: DefaultDirectRateLimiter,
}

impl Transport {
    pub fn new(cfg: &MatrixChannelConfig) -> Transport {
        let per_room = NonZeroU32::new(cfg.per_room_per_minute).unwrap_or(NonZeroU32::MIN);
        Transport {
            cfg: cfg.clone(),
            session: Mutex::new(None),
            rooms: RateLimiter::keyed(Quota::per_minute(per_room)),
            account: RateLimiter::direct(Quota::per_second(
                NonZeroU32::new(cfg.rate_per_second).unwrap_or(NonZeroU32::MIN),
            )),
        }
    }

    /// Sends outbox row `id`'s payload.
    pub async fn send(&self, id: i64, payload: &str) -> Sent {
        let v: Value = match serde_json::from_str(payload) {
            Ok(v) => v,
            Err(e) => return Sent::Failed(format!("the payload is not JSON: {e}")),
        };
        let room = v
            .get("conversation_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !room.starts_with('!') {
            return Sent::Failed(format!("the payload names no room ({room:?})"));
        }
        let text = v.get("text").and_then(Value::as_str).unwrap_or("");
        let mut content = json!({"msgtype": "m.text", "body": text});
        if let Some(ev) = v.get("reply_to").and_then(Value::as_str)
            && let Some(obj) = content.as_object_mut()
        {
            obj.insert(
                "m.relates_to".into(),
                json!({"m.in_reply_to": {"event_id": ev}}),
            );
        }
        if self.rooms.check_key(&room).is_err() {
            return Sent::Retry {
                reason: format!("room {room} is at its limit of per_room_per_minute sends"),
                after: Some(Duration::from_secs(10)),
            };
        }
        self.account.until_ready().await;
        let mut guard = self.session.lock().await;
        if guard.is_none() {
            match connect(&self.cfg).await {
                Ok(s) => *guard = Some(s),
                Err(e) => {
                    return Sent::Retry {
                        reason: e.to_string(),
                        after: None,
                    };
                }
            }
        }
        let Some(session) = guard.as_ref() else {
            return Sent::Retry {
                reason: "no session".into(),
                after: None,
            };
        };
        // The same transaction id on every attempt: the homeserver answers a repeat with
        // the event it already made.
        let txn = format!("postdesk-{id}");
        match session.client.send(&room, &txn, &content).await {
            Ok(event) if !event.is_empty() => Sent::DoneAs(event),
            Ok(_) => Sent::Done,
            Err(MxError::RetryAfter(after, reason)) => Sent::Retry {
                reason,
                after: Some(after),
            },
            Err(MxError::Unauthorized(reason)) => {
                *guard = None;
                Sent::Retry {
                    reason,
                    after: Some(Duration::from_secs(60)),
                }
            }
            Err(MxError::Transient(reason)) => Sent::Retry {
                reason,
                after: None,
            },
            Err(MxError::Permanent(reason)) => Sent::Failed(reason),
        }
    }
}
