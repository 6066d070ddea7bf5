//! The JSON channel's outgoing HTTP: delivering a reply to a relay's `deliver_url`, and
//! polling a relay's `feed_url` in pull mode. Each call is one signed request; retry
//! schedules, cursors and the outbox belong to the caller (the outbound worker and the
//! source loop), which decide from the [`DeliveryOutcome`] or the error.

use std::time::Duration;

use anyhow::Context as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::sign::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::wire::{self, Delivery, FeedPage};

/// Bound on connecting (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a whole request, answer body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest feed page read; the most a page may hold under the wire rules is far less in
/// practice, and a relay has no business sending more than an account could push.
pub const MAX_FEED_BYTES: usize = 100 * 1024 * 1024;
/// How much of an error answer's body is quoted in a failure reason.
const SNIPPET_BYTES: usize = 300;
/// Longest wait a `Retry-After` may ask for; a larger one is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The relay answered 2xx.
    Delivered,
    /// Worth trying again later: 5xx, 429, 408, a timeout, a connection error.
    /// `retry_after` is the relay's `Retry-After` (seconds or an HTTP date), when given.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Will not get better by retrying: any other answer (4xx, an unfollowed redirect),
    /// or a request that could not be built.
    Failed(String),
}

/// The HTTP client for deliveries and feeds: rustls with the ring provider, system
/// roots, connect timeout 10 s, 30 s per request, redirects not followed (a signed request
/// goes where it was configured to, or nowhere).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    crate::channels::http_client_builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("Building the HTTP client")
}

/// POSTs `delivery` as JSON to `url`, signed with `secret` at `now_unix`, with its
/// idempotency key also in the `Idempotency-Key` header.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    secret: &[u8],
    delivery: &Delivery,
    now_unix: i64,
) -> DeliveryOutcome {
    let body = match serde_json::to_vec(delivery) {
        Ok(b) => b,
        Err(e) => return DeliveryOutcome::Failed(format!("cannot encode the delivery: {e}")),
    };
    let signature = sign::sign(secret, now_unix, &body);
    let sent = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, now_unix.to_string())
        .header(SIGNATURE_HEADER, signature)
        .header("Idempotency-Key", &delivery.idempotency_key)
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) if e.is_builder() => return DeliveryOutcome::Failed(chain(&e)),
        Err(e) => {
            return DeliveryOutcome::Retry {
                reason: chain(&e),
                retry_after: None,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return DeliveryOutcome::Delivered;
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now_unix));
    let reason = format!("{url} answered {status}{}", snippet(response).await);
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        DeliveryOutcome::Retry {
            reason,
            retry_after,
        }
    } else {
        DeliveryOutcome::Failed(reason)
    }
}

/// Fetches one page of a relay's feed: `GET url` (with `?cursor=` once there is one),
/// signed over the empty body, the answer checked by the same rules as a push (but an
/// empty `messages` list is fine: nothing new).
pub async fn poll_feed(
    client: &reqwest::Client,
    url: &str,
    secret: &[u8],
    cursor: Option<&str>,
    now_unix: i64,
) -> anyhow::Result<FeedPage> {
    let mut target = reqwest::Url::parse(url).with_context(|| format!("Feed URL {url:?}"))?;
    if let Some(c) = cursor {
        target.query_pairs_mut().append_pair("cursor", c);
    }
    let mut response = client
        .get(target)
        .header(TIMESTAMP_HEADER, now_unix.to_string())
        .header(SIGNATURE_HEADER, sign::sign(secret, now_unix, b""))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("Polling feed {url}: {}", chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("Feed {url} answered {status}{}", snippet(response).await);
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_FEED_BYTES as u64)
    {
        anyhow::bail!("Feed {url} sent a page larger than {MAX_FEED_BYTES} bytes");
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| anyhow::anyhow!("Reading feed {url}: {}", chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_FEED_BYTES {
            anyhow::bail!("Feed {url} sent a page larger than {MAX_FEED_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    wire::parse_feed(&body).with_context(|| format!("Feed {url} sent a page we cannot use"))
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), at most a day.
fn parse_retry_after(v: &str, now_unix: i64) -> Option<Duration> {
    let v = v.trim();
    let secs = match v.parse::<u64>() {
        Ok(s) => s,
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(v).ok()?.timestamp();
            u64::try_from(at.saturating_sub(now_unix)).unwrap_or(0)
        }
    };
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// `: <the start of the answer's body>`, one line, control characters dropped; empty
/// when there is no body.
async fn snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < SNIPPET_BYTES {
        match response.chunk().await {
            Ok(Some(c)) => bytes.extend_from_slice(&c),
            _ => break,
        }
    }
    bytes.truncate(SNIPPET_BYTES);
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// An error and its causes on one line (reqwest's own message rarely says why).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
