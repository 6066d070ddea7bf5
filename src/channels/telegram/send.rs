//! The Telegram bridge's way out: one agent answer (an outbox row's payload) sent with
//! `sendMessage`, in parts of at most [`MAX_PART_CHARS`] characters, paced per bot and per
//! chat. The outbound worker records what [`Transport::send`] says.
//!
//! The payload, written by `agent::act::queue_on_channel`:
//! `{"ticket_id": 42, "conversation_id": "<chat id>", "recipient": "<user id>",
//! "text": "...", "reply_to": "<chat id>:<message id>", "parts_sent": 0}`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::Value;

use super::client::{Api, ApiError};
use super::wire;
use crate::config::TelegramChannelConfig;

/// Telegram's limit on one message's text.
pub const MAX_PART_CHARS: usize = 4096;
/// The longest a send waits for the chat's limiter before it is put off instead.
const MAX_PACING_WAIT: Duration = Duration::from_secs(5);

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Every part is in the chat.
    Done,
    /// Try again later (not before `after`, when given).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Will not get better: the chat is gone, the bot was blocked, the payload is wrong.
    Failed(String),
    /// A part went out and no answer came: it may be in the chat. Not resent.
    Parked(String),
    /// The token was refused: the bot is to be disabled.
    Unauthorized(String),
}

/// One bot's sender.
pub struct Transport {
    api: Api,
    bot: DefaultDirectRateLimiter,
    chats: DefaultKeyedRateLimiter<String>,
}

impl Transport {
    pub fn new(cfg: &TelegramChannelConfig) -> anyhow::Result<Transport> {
        let per_second = NonZeroU32::new(cfg.rate_per_second).unwrap_or(NonZeroU32::MIN);
        let per_chat = NonZeroU32::new(cfg.per_chat_per_minute).unwrap_or(NonZeroU32::MIN);
        Ok(Transport {
            api: Api::new(cfg)?,
            bot: RateLimiter::direct(Quota::per_second(per_second)),
            chats: RateLimiter::keyed(Quota::per_minute(per_chat)),
        })
    }

    /// Sends what is left of `payload`; the payload to store afterwards (with
    /// `parts_sent` moved on) when any part went out.
    pub async fn send(&self, payload: &str) -> (Sent, Option<String>) {
        let mut v: Value = match serde_json::from_str(payload) {
            Ok(v) => v,
            Err(e) => return (Sent::Failed(format!("the payload is not JSON: {e}")), None),
        };
        let chat = v
            .get("conversation_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if chat.is_empty() || chat.parse::<i64>().is_err() {
            return (
                Sent::Failed(format!("the payload names no chat id ({chat:?})")),
                None,
            );
        }
        let text = v.get("text").and_then(Value::as_str).unwrap_or("");
        let parts = wire::split_text(text, MAX_PART_CHARS);
        let reply_to = v
            .get("reply_to")
            .and_then(Value::as_str)
            .and_then(wire::message_id_of);
        let already = v
            .get("parts_sent")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(parts.len() as u64) as usize;
        let mut done = already;
        let mut outcome = Sent::Done;
        // The ids Telegram gave the parts: kept in the payload (`sent_ids`), from which the
        // worker records them for the customer's replies.
        let mut sent_ids: Vec<Value> = v
            .get("sent_ids")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for part in parts.iter().skip(already) {
            match self.chats.check_key(&chat) {
                Ok(()) => {}
                Err(not_until) => {
                    let wait = not_until.wait_time_from(governor::clock::Clock::now(
                        &governor::clock::DefaultClock::default(),
                    ));
                    if wait > MAX_PACING_WAIT {
                        outcome = Sent::Retry {
                            reason: format!(
                                "chat {chat} is at its limit of per_chat_per_minute sends"
                            ),
                            after: Some(wait),
                        };
                        break;
                    }
                    self.chats.until_key_ready(&chat).await;
                }
            }
            self.bot.until_ready().await;
            let answer_to = (done == 0).then_some(reply_to).flatten();
            match self.api.send_message(&chat, part, answer_to).await {
                Ok(id) => {
                    done += 1;
                    if id > 0 {
                        sent_ids.push(Value::from(format!("{chat}:{id}")));
                    }
                }
                Err(e) => {
                    outcome = match e {
                        ApiError::Unauthorized(s) => Sent::Unauthorized(s),
                        ApiError::RetryAfter(after, s) => Sent::Retry {
                            reason: s,
                            after: Some(after),
                        },
                        ApiError::Transient(s) => Sent::Retry {
                            reason: s,
                            after: None,
                        },
                        ApiError::Ambiguous(s) => Sent::Parked(format!(
                            "part {} of {} may have reached the chat: {s}",
                            done + 1,
                            parts.len()
                        )),
                        ApiError::Permanent(s) => Sent::Failed(s),
                    };
                    break;
                }
            }
        }
        let progress = (done > already).then(|| {
            if let Some(o) = v.as_object_mut() {
                o.insert("parts_sent".into(), Value::from(done as u64));
                o.insert("sent_ids".into(), Value::Array(sent_ids));
            }
            v.to_string()
        });
        (outcome, progress)
    }
}
