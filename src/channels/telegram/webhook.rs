//! The Telegram bridge's webhook mode: `POST /channels/telegram/{account}/webhook` on the
//! daemon's HTTP listener takes one update as Telegram sends it, and [`register_loop`]
//! tells Telegram the URL (`setWebhook` with the secret token) until it has taken it.
//!
//! Checks, in order, each refusal in words (Telegram retries anything but 2xx, so an
//! update refused by a transient failure comes again and its dedup key absorbs copies):
//!
//! | status | when |
//! | --- | --- |
//! | 404 | no such bot, or the bot polls instead |
//! | 413 | the body is over `max_body_mb` (refused before reading past it) |
//! | 401 | `X-Telegram-Bot-Api-Secret-Token` is missing or wrong (constant-time compare) |
//! | 400 | the body is not UTF-8 (the offset is given) or not JSON (line and column) |
//! | 200 | stored, a copy, or skipped (an update type postdesk does not take, a bot's message) |
//! | 500 | postdesk could not store it or fetch its file; Telegram sends it again |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::json;
use subtle::ConstantTimeEq as _;
use tokio_util::sync::CancellationToken;

use super::client::{Api, ApiError};
use super::source::{self, PollState};
use super::wire;
use crate::config::TelegramChannelConfig;
use crate::intake::pipeline::Pipeline;
use crate::store::Store;

/// The header Telegram puts the secret token in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

struct Bot {
    cfg: TelegramChannelConfig,
    api: Api,
}

struct WebhookState {
    store: Store,
    pipeline: Arc<Pipeline>,
    bots: HashMap<String, Bot>,
    wake_outbox: Arc<tokio::sync::Notify>,
}

/// The webhook endpoints of the bots in webhook mode (no fallback: it is merged into the
/// listener's router, which has one).
pub fn router(
    store: Store,
    pipeline: Arc<Pipeline>,
    bots: &[TelegramChannelConfig],
    wake_outbox: Arc<tokio::sync::Notify>,
) -> anyhow::Result<Router> {
    let mut map = HashMap::new();
    for b in bots.iter().filter(|b| b.webhook_url.is_some()) {
        map.insert(
            b.account.clone(),
            Bot {
                cfg: b.clone(),
                api: Api::new(b)?,
            },
        );
    }
    let state = Arc::new(WebhookState {
        store,
        pipeline,
        bots: map,
        wake_outbox,
    });
    Ok(Router::new()
        .route("/channels/telegram/{account}/webhook", post(receive))
        .with_state(state))
}

fn answer(status: StatusCode, description: impl Into<String>) -> Response {
    let ok = status.is_success();
    (
        status,
        axum::Json(json!({"ok": ok, "description": description.into()})),
    )
        .into_response()
}

async fn receive(
    State(state): State<Arc<WebhookState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(bot) = state.bots.get(&account) else {
        let shown: String = account.chars().take(64).collect();
        return answer(
            StatusCode::NOT_FOUND,
            format!("no Telegram bot {shown:?} in webhook mode"),
        );
    };
    let limit = bot.cfg.max_body_bytes;
    let too_large = || {
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than this bot's limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let expected = bot.cfg.webhook_secret.expose().as_bytes();
    if given.is_empty() || !bool::from(given.ct_eq(expected)) {
        return answer(
            StatusCode::UNAUTHORIZED,
            "the X-Telegram-Bot-Api-Secret-Token header is missing or wrong",
        );
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {e}"),
            );
        }
    };
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ),
            );
        }
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not JSON (line {}, column {}: {e})",
                    e.line(),
                    e.column()
                ),
            );
        }
    };
    let (updates, dropped) = match wire::parse_updates(&serde_json::Value::Array(vec![value])) {
        Ok(u) => u,
        Err(e) => return answer(StatusCode::BAD_REQUEST, e),
    };
    if dropped > 0 {
        return answer(
            StatusCode::BAD_REQUEST,
            "the update has no numeric update_id",
        );
    }
    let mut poll = PollState::default();
    match source::store_updates(
        &state.store,
        &state.pipeline,
        &bot.cfg,
        &bot.api,
        &updates,
        0,
        &mut poll,
    )
    .await
    {
        Ok(stats) => {
            if stats.new > 0 {
                state.wake_outbox.notify_one();
            }
            let what = if stats.new > 0 {
                "stored"
            } else if stats.duplicates > 0 {
                "already stored"
            } else {
                "skipped"
            };
            answer(StatusCode::OK, what)
        }
        Err(e) => {
            tracing::error!("Telegram bot {account:?}: a webhook update was not stored: {e:#}");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "postdesk could not store the update; send it again",
            )
        }
    }
}

/// Registers the webhook with `setWebhook` until Telegram takes it: transient failures
/// back off (2 s doubling to 5 minutes), `retry_after` is honoured, a refused token
/// disables the bot and tells the admins.
pub async fn register_loop(
    store: Store,
    pipeline: Arc<Pipeline>,
    cfg: TelegramChannelConfig,
    cancel: CancellationToken,
    wake_outbox: Arc<tokio::sync::Notify>,
) {
    let Some(url) = cfg.webhook_url.clone() else {
        return;
    };
    match source::is_disabled(&store, &cfg).await {
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
    let api = match Api::new(&cfg) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("Telegram bot {:?}: {e:#}", cfg.account);
            return;
        }
    };
    let mut failures = 0u32;
    loop {
        let wait = match api.set_webhook(&url, cfg.webhook_secret.expose()).await {
            Ok(()) => {
                tracing::info!(
                    "Telegram bot {:?}: webhook registered; updates arrive at /channels/telegram/{}/webhook.",
                    cfg.account,
                    cfg.account
                );
                return;
            }
            Err(ApiError::Unauthorized(why)) => {
                match source::disable_and_alert(&store, &pipeline, &cfg, &why).await {
                    Ok(()) => wake_outbox.notify_one(),
                    Err(e) => tracing::error!("Telegram bot {:?}: {e:#}", cfg.account),
                }
                return;
            }
            Err(ApiError::RetryAfter(after, _)) => after,
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = Duration::from_secs(2u64.saturating_pow(failures.min(8)))
                    .min(Duration::from_secs(300));
                tracing::warn!(
                    "Telegram bot {:?}: setWebhook failed ({e}); next try in {}s.",
                    cfg.account,
                    wait.as_secs()
                );
                wait
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
