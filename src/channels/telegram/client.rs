//! The Bot API over HTTP: `getUpdates`, `sendMessage`, `getFile` and the file download,
//! each one request. What an answer means for the caller is an [`ApiError`]; schedules,
//! cursors and the outbox belong to the source loop and the outbound worker.
//!
//! Requests go to `<api_base>/bot<token>/<method>`; the token is in the path, so no URL is
//! ever logged (reqwest's errors are stripped of theirs).

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::wire::{self, ApiFailure};
use crate::config::TelegramChannelConfig;

/// Largest `getUpdates` answer read (100 updates of 4096 characters are far less).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Longest `retry_after` honoured as given; a larger one is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Bound on one request other than the long poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request failed, in the terms that decide what happens next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 401 or 404 on the bot's own path: the token is wrong or revoked. Retrying cannot
    /// help; the account is disabled and the admin told.
    Unauthorized(String),
    /// 429 (or another answer with `retry_after`): not before this long.
    RetryAfter(Duration, String),
    /// Worth retrying with backoff: 5xx, a connection refused or reset before the
    /// request went out, an answer that is not the Bot API's JSON.
    Transient(String),
    /// The request may or may not have been carried out: it went out and no answer came
    /// (a timeout, a connection lost mid-answer). A send is never repeated blindly.
    Ambiguous(String),
    /// The Bot API refused this request for good (400, 403: chat not found, bot blocked).
    Permanent(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unauthorized(s) => write!(f, "the token was refused: {s}"),
            ApiError::RetryAfter(d, s) => write!(f, "{s} (retry after {}s)", d.as_secs()),
            ApiError::Transient(s) | ApiError::Ambiguous(s) | ApiError::Permanent(s) => {
                f.write_str(s)
            }
        }
    }
}

impl std::error::Error for ApiError {}

/// A file fetched through `getFile`.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub data: Vec<u8>,
}

/// One bot's client.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: crate::config::Secret,
    max_file_bytes: usize,
}

impl Api {
    pub fn new(cfg: &TelegramChannelConfig) -> anyhow::Result<Api> {
        let http = crate::channels::http_client_builder()
            .build()
            .context("Building the Telegram HTTP client")?;
        Ok(Api {
            http,
            base: cfg.api_base.clone(),
            token: cfg.token.clone(),
            max_file_bytes: cfg.max_file_bytes,
        })
    }

    fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.base, self.token.expose())
    }

    /// `getUpdates`: `offset` confirms every update below it (None: confirm nothing, the
    /// oldest unconfirmed come first); waits up to `timeout` for one to arrive.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        timeout: Duration,
        limit: u32,
    ) -> Result<(Vec<wire::Update>, usize), ApiError> {
        let mut body = json!({
            "timeout": timeout.as_secs(),
            "limit": limit.clamp(1, 100),
            "allowed_updates": ["message"],
        });
        // No offset at all (not null): confirm nothing.
        if let (Some(o), Some(map)) = (offset, body.as_object_mut()) {
            map.insert("offset".into(), json!(o));
        }
        let result = self
            .call(
                "getUpdates",
                &body,
                timeout + Duration::from_secs(15),
                false,
            )
            .await?;
        wire::parse_updates(&result).map_err(ApiError::Transient)
    }

    /// `sendMessage` into `chat_id`, as an answer to `reply_to` when given (sent even if
    /// that message is gone). The new message's id.
    pub async fn send_message(
        &self,
        chat_id: &str,
        text: &str,
        reply_to: Option<i64>,
    ) -> Result<i64, ApiError> {
        let body = match reply_to {
            Some(r) => json!({"chat_id": chat_id, "text": text,
                "reply_to_message_id": r, "allow_sending_without_reply": true}),
            None => json!({"chat_id": chat_id, "text": text}),
        };
        let result = self
            .call("sendMessage", &body, REQUEST_TIMEOUT, true)
            .await?;
        Ok(result
            .get("message_id")
            .and_then(Value::as_i64)
            .unwrap_or(0))
    }

    /// `setWebhook`: Telegram POSTs updates (only messages) to `url` from now on, with
    /// `secret` in `X-Telegram-Bot-Api-Secret-Token`; pending updates are kept.
    pub async fn set_webhook(&self, url: &str, secret: &str) -> Result<(), ApiError> {
        self.call(
            "setWebhook",
            &json!({"url": url, "secret_token": secret, "allowed_updates": ["message"]}),
            REQUEST_TIMEOUT,
            false,
        )
        .await
        .map(|_| ())
    }

    /// `getFile`, then the download from `<api_base>/file/bot<token>/<file_path>`, refused
    /// past `max_file_mb`.
    pub async fn fetch_file(&self, file_id: &str) -> Result<Fetched, ApiError> {
        let result = self
            .call(
                "getFile",
                &json!({"file_id": file_id}),
                REQUEST_TIMEOUT,
                false,
            )
            .await?;
        let path = result
            .get("file_path")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Permanent("getFile gave no file_path".into()))?;
        if path.contains("..") || path.starts_with('/') || path.contains(['?', '#']) {
            return Err(ApiError::Permanent(format!(
                "getFile gave an odd file_path {:?}",
                path.chars().take(80).collect::<String>()
            )));
        }
        let url = format!("{}/file/bot{}/{path}", self.base, self.token.expose());
        let resp = self
            .http
            .get(url)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| transport_error(e, false))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(status_error(status.as_u16(), None, "downloading a file"));
        }
        let data = read_capped(resp, self.max_file_bytes, "the file").await?;
        Ok(Fetched { data })
    }

    /// One method call: POST with a JSON body, the answer read within [`MAX_ANSWER_BYTES`].
    async fn call(
        &self,
        method: &str,
        body: &Value,
        timeout: Duration,
        sends: bool,
    ) -> Result<Value, ApiError> {
        let resp = self
            .http
            .post(self.method_url(method))
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| transport_error(e, sends))?;
        let status = resp.status().as_u16();
        let bytes = read_capped(resp, MAX_ANSWER_BYTES, &format!("{method}'s answer"))
            .await
            .map_err(|e| match e {
                // The request was carried out (or refused) already; only the answer is lost.
                ApiError::Transient(s) if sends && (200..300).contains(&status) => {
                    ApiError::Ambiguous(s)
                }
                e => e,
            })?;
        match wire::parse_answer(&bytes) {
            Ok(result) if (200..300).contains(&status) => Ok(result),
            Ok(_) => Err(status_error(status, None, method)),
            Err(Ok(failure)) => Err(status_error(status, Some(&failure), method)),
            Err(Err(why)) if (200..300).contains(&status) && sends => Err(ApiError::Ambiguous(
                format!("{method}: answered {status}, but {why}"),
            )),
            Err(Err(why)) => Err(status_error(status, None, method).with_detail(&why)),
        }
    }
}

impl ApiError {
    fn with_detail(self, why: &str) -> ApiError {
        match self {
            ApiError::Transient(s) => ApiError::Transient(format!("{s}: {why}")),
            ApiError::Permanent(s) => ApiError::Permanent(format!("{s}: {why}")),
            ApiError::Unauthorized(s) => ApiError::Unauthorized(format!("{s}: {why}")),
            other => other,
        }
    }
}

/// What an HTTP status (and the Bot API's failure, when the body had one) means.
fn status_error(status: u16, failure: Option<&ApiFailure>, what: &str) -> ApiError {
    let text = match failure {
        Some(f) => format!("{what}: {status} {}", f.description),
        None => format!("{what}: HTTP {status}"),
    };
    if let Some(after) = failure.and_then(|f| f.retry_after) {
        return ApiError::RetryAfter(Duration::from_secs(after).min(MAX_RETRY_AFTER), text);
    }
    match status {
        401 | 404 => ApiError::Unauthorized(text),
        429 => ApiError::RetryAfter(Duration::from_secs(5), text),
        408 | 500..=599 => ApiError::Transient(text),
        200..=299 => ApiError::Transient(format!("{text}, but \"ok\" was false")),
        _ => ApiError::Permanent(text),
    }
}

/// A request that got no HTTP answer. Before the request went out (connecting) it is
/// transient; after, a send is ambiguous.
fn transport_error(e: reqwest::Error, sends: bool) -> ApiError {
    let connect = e.is_connect();
    let what = e.without_url().to_string();
    if connect || !sends {
        ApiError::Transient(format!("no answer: {what}"))
    } else {
        ApiError::Ambiguous(format!("no answer after sending: {what}"))
    }
}

/// Reads a body of at most `max` bytes; more is an error that names the limit.
async fn read_capped(
    mut resp: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, ApiError> {
    if let Some(len) = resp.content_length()
        && len > max as u64
    {
        return Err(ApiError::Permanent(format!(
            "{what} is {len} bytes, over the {max}-byte limit"
        )));
    }
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > max {
                    return Err(ApiError::Permanent(format!(
                        "{what} is over the {max}-byte limit"
                    )));
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => {
                return Err(ApiError::Transient(format!(
                    "{what} broke off: {}",
                    e.without_url()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_mean_what_the_bot_api_says() {
        assert!(matches!(
            status_error(401, None, "getUpdates"),
            ApiError::Unauthorized(_)
        ));
        assert!(matches!(
            status_error(502, None, "getUpdates"),
            ApiError::Transient(_)
        ));
        assert!(matches!(
            status_error(403, None, "sendMessage"),
            ApiError::Permanent(_)
        ));
        let f = ApiFailure {
            error_code: Some(429),
            description: "Too Many Requests".into(),
            retry_after: Some(999_999),
            migrate_to_chat_id: None,
        };
        assert_eq!(
            status_error(429, Some(&f), "sendMessage"),
            ApiError::RetryAfter(MAX_RETRY_AFTER, "sendMessage: 429 Too Many Requests".into())
        );
    }
}
