//! The JSON channel's HTTP endpoints (and `/healthz`) as an axum [`Router`]. It owns the
//! checks every request goes through, in this order: the account exists (404), the body
//! fits the account's `max_body_mb` (413, refused before more than the limit is read), the
//! signature is valid (401), it was not seen before (409), the body parses (400/422).
//! Only then is the [`JsonBackend`] called; its failures are logged and answered with a
//! generic 500.
//!
//! It does not touch the database or know about tickets: that is the backend's job, which
//! the daemon implements over the store. Serving the router (the listener, shutdown) is the
//! daemon's too.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;

use super::sign::{self, MAX_SKEW_SECS, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::wire::{
    self, AckAnswer, Delivery, JsonMessage, OutboxPage, PushAnswer, PushResult, WireError,
    WireErrorKind,
};
use crate::clock::{Clock, SystemClock};
use crate::config::{JsonChannelConfig, Secret};

pub use futures::future::BoxFuture;

/// Most deliveries one `GET .../outbox` lists (and the default of its `limit`).
pub const OUTBOX_PAGE: usize = 100;
/// Signatures remembered for replay detection, all accounts together. A signature is
/// remembered only once it verified, so only a holder of a secret can fill this; when it
/// is full of signatures still inside their window, requests get 429 until some expire.
pub const REPLAY_CAPACITY: usize = 65_536;

/// What `/healthz` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub database_ok: bool,
    /// Each source (mailbox folder, feed...) by name, with its last successful poll.
    pub sources: BTreeMap<String, Option<DateTime<Utc>>>,
}

/// The database side of the endpoints, implemented by the daemon over the store.
pub trait JsonBackend: Send + Sync + 'static {
    /// Stores pushed messages, idempotent per (account, external id); answers one
    /// [`PushResult`] per message, in order.
    fn push<'a>(
        &'a self,
        account: &'a str,
        messages: Vec<JsonMessage>,
    ) -> BoxFuture<'a, anyhow::Result<Vec<PushResult>>>;
    /// Up to `limit` deliveries of this account not yet acknowledged with id > `after`,
    /// by ascending id.
    fn outbox_after<'a>(
        &'a self,
        account: &'a str,
        after: i64,
        limit: usize,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Delivery>>>;
    /// Marks this account's deliveries with id <= `up_to` delivered; answers how many were
    /// newly acknowledged.
    fn ack<'a>(&'a self, account: &'a str, up_to: i64) -> BoxFuture<'a, anyhow::Result<u64>>;
    fn health(&self) -> BoxFuture<'_, Health>;
}

struct Account {
    secret: Secret,
    max_body_bytes: usize,
}

struct AppState {
    backend: Arc<dyn JsonBackend>,
    accounts: HashMap<String, Account>,
    clock: Arc<dyn Clock>,
    replay: Mutex<ReplayCache>,
}

/// The router for these accounts, on the system clock.
pub fn router(backend: Arc<dyn JsonBackend>, accounts: &[JsonChannelConfig]) -> Router {
    router_with_clock(backend, accounts, Arc::new(SystemClock))
}

/// [`router`] on a given clock (signature windows are checked against it).
pub fn router_with_clock(
    backend: Arc<dyn JsonBackend>,
    accounts: &[JsonChannelConfig],
    clock: Arc<dyn Clock>,
) -> Router {
    let state = Arc::new(AppState {
        backend,
        accounts: accounts
            .iter()
            .map(|a| {
                (
                    a.account.clone(),
                    Account {
                        secret: a.secret.clone(),
                        max_body_bytes: a.max_body_bytes,
                    },
                )
            })
            .collect(),
        clock,
        replay: Mutex::new(ReplayCache::new(REPLAY_CAPACITY)),
    });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/channels/json/{account}/messages", post(push))
        .route("/channels/json/{account}/outbox", get(outbox))
        .route("/channels/json/{account}/outbox/ack", post(ack))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, None, "no such endpoint").into_response()
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                "this endpoint does not take that method",
            )
            .into_response()
        })
        // The limit is per account and enforced in `accept`; axum's global one must not cut
        // in first with a different answer.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// An error answer: a status and `{"error": ..., "field": ...}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    body: WireError,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, field: Option<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: WireError::malformed(field, message),
            retry_after_secs: None,
        }
    }

    fn wire(e: WireError) -> Self {
        let status = match e.kind {
            WireErrorKind::Malformed => StatusCode::BAD_REQUEST,
            WireErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError {
            status,
            body: e,
            retry_after_secs: None,
        }
    }

    fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "internal error; try again later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body)).into_response();
        if let Some(s) = self.retry_after_secs {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// A request that passed the account, size, signature and replay checks.
struct Accepted {
    body: Bytes,
    signature: String,
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    // A header that is not visible ASCII is there but malformed, not missing.
    headers.get(name).map(|v| v.to_str().unwrap_or("?"))
}

/// `replay`: refuse a request seen before. Reads (the outbox listing) skip it: repeating
/// one changes nothing, and a relay polling twice within a second signs the same empty
/// body with the same timestamp.
async fn accept(
    state: &AppState,
    account: &Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
    replay: Check,
) -> Result<(String, Accepted), ApiError> {
    let Ok(Path(name)) = account else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            None,
            "unknown account",
        ));
    };
    let Some(acc) = state.accounts.get(name) else {
        // The name is echoed escaped (Debug), bounded: it came from the request line.
        let shown: String = name.chars().take(64).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("unknown account {shown:?}"),
        ));
    };
    let limit = acc.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!("the body is larger than this account's limit of {limit} bytes"),
        )
    };
    // A declared length over the limit is refused before reading a byte; a body without
    // one (or lying about it) is cut off by `Limited` at the limit.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => {
            tracing::info!("JSON channel {name:?}: could not read a request body: {e}");
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                None,
                "the body could not be read",
            ));
        }
    };
    let now = state.clock.now().timestamp();
    let timestamp = header_text(headers, TIMESTAMP_HEADER);
    let signature = header_text(headers, SIGNATURE_HEADER);
    if let Err(e) = sign::verify(
        acc.secret.expose().as_bytes(),
        timestamp,
        signature,
        &body,
        now,
    ) {
        tracing::info!("JSON channel {name:?}: refused a request: {e}.");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, None, e.to_string()));
    }
    // Both are present and well-formed once verified.
    let signature = signature.unwrap_or_default().trim().to_string();
    let ts: i64 = timestamp.unwrap_or_default().trim().parse().unwrap_or(now);
    if replay == Check::Skip {
        return Ok((name.clone(), Accepted { body, signature }));
    }
    let seen = state
        .replay
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name, &signature, ts, now);
    match seen {
        Ok(()) => {}
        Err(Replay::Seen) => {
            tracing::info!("JSON channel {name:?}: refused a replayed request.");
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                None,
                "this request was already received; sign a retry with a new timestamp",
            ));
        }
        Err(Replay::Full) => {
            tracing::warn!(
                "JSON channel {name:?}: the replay cache is full ({REPLAY_CAPACITY} signatures within {MAX_SKEW_SECS} s); refusing requests until some expire."
            );
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "too many requests; try again later",
            );
            e.retry_after_secs = Some(10);
            return Err(e);
        }
    }
    Ok((name.clone(), Accepted { body, signature }))
}

/// Whether [`accept`] checks for replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Replay,
    Skip,
}

/// After a failure of ours the client may retry the very same request: forget it.
fn forget(state: &AppState, account: &str, accepted: &Accepted) {
    state
        .replay
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .forget(account, &accepted.signature);
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    #[derive(Serialize)]
    struct Answer {
        status: &'static str,
        #[serde(flatten)]
        health: Health,
    }
    let health = state.backend.health().await;
    let (status, word) = if health.database_ok {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        axum::Json(Answer {
            status: word,
            health,
        }),
    )
        .into_response()
}

async fn push(
    State(state): State<Arc<AppState>>,
    account: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (account, accepted) = accept(&state, &account, &headers, body, Check::Replay).await?;
    let messages = wire::parse_push(&accepted.body).map_err(ApiError::wire)?;
    let count = messages.len();
    match state.backend.push(&account, messages).await {
        Ok(results) => {
            tracing::debug!("JSON channel {account:?}: stored a push of {count} message(s).");
            Ok(axum::Json(PushAnswer { results }).into_response())
        }
        Err(e) => {
            tracing::error!(
                "JSON channel {account:?}: storing a push of {count} message(s) failed: {e:#}"
            );
            forget(&state, &account, &accepted);
            Err(ApiError::internal())
        }
    }
}

/// `after` (default 0) and `limit` (1 to [`OUTBOX_PAGE`], default [`OUTBOX_PAGE`]).
fn outbox_query(query: Option<&str>) -> Result<(i64, usize), ApiError> {
    let mut after = 0i64;
    let mut limit = OUTBOX_PAGE;
    for pair in query.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "after" => {
                after = v.parse().map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        Some("after".into()),
                        "must be a whole number (the last delivery id you have)",
                    )
                })?;
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=OUTBOX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            Some("limit".into()),
                            format!("must be a whole number from 1 to {OUTBOX_PAGE}"),
                        )
                    })?;
            }
            _ => {}
        }
    }
    Ok((after, limit))
}

async fn outbox(
    State(state): State<Arc<AppState>>,
    account: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (account, accepted) = accept(&state, &account, &headers, body, Check::Skip).await?;
    let (after, limit) = outbox_query(query.as_deref())?;
    match state.backend.outbox_after(&account, after, limit).await {
        Ok(deliveries) => Ok(axum::Json(OutboxPage { deliveries }).into_response()),
        Err(e) => {
            tracing::error!(
                "JSON channel {account:?}: listing the outbox after {after} failed: {e:#}"
            );
            forget(&state, &account, &accepted);
            Err(ApiError::internal())
        }
    }
}

async fn ack(
    State(state): State<Arc<AppState>>,
    account: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (account, accepted) = accept(&state, &account, &headers, body, Check::Replay).await?;
    let up_to = wire::parse_ack(&accepted.body)
        .map_err(ApiError::wire)?
        .up_to;
    match state.backend.ack(&account, up_to).await {
        Ok(acknowledged) => {
            tracing::debug!(
                "JSON channel {account:?}: {acknowledged} delivery(ies) acknowledged up to {up_to}."
            );
            Ok(axum::Json(AckAnswer { acknowledged }).into_response())
        }
        Err(e) => {
            tracing::error!(
                "JSON channel {account:?}: acknowledging deliveries up to {up_to} failed: {e:#}"
            );
            forget(&state, &account, &accepted);
            Err(ApiError::internal())
        }
    }
}

/// Why a verified request is refused by the replay cache.
#[derive(Debug, PartialEq, Eq)]
enum Replay {
    Seen,
    Full,
}

/// The (account, signature) pairs verified within the last signature window, each with
/// the time after which its timestamp is too old to verify anyway (then it is dropped).
struct ReplayCache {
    capacity: usize,
    seen: HashMap<(String, String), i64>,
}

impl ReplayCache {
    fn new(capacity: usize) -> Self {
        ReplayCache {
            capacity,
            seen: HashMap::new(),
        }
    }

    fn insert(
        &mut self,
        account: &str,
        signature: &str,
        timestamp: i64,
        now: i64,
    ) -> Result<(), Replay> {
        let key = (account.to_string(), signature.to_string());
        if self.seen.get(&key).is_some_and(|until| *until >= now) {
            return Err(Replay::Seen);
        }
        if self.seen.len() >= self.capacity {
            self.seen.retain(|_, until| *until >= now);
            if self.seen.len() >= self.capacity {
                return Err(Replay::Full);
            }
        }
        self.seen
            .insert(key, timestamp.saturating_add(MAX_SKEW_SECS));
        Ok(())
    }

    fn forget(&mut self, account: &str, signature: &str) {
        self.seen
            .remove(&(account.to_string(), signature.to_string()));
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
