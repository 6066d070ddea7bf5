//! The client-server API over HTTP: login, `/sync`, join, `/messages` and send, each one
//! request, with errors in the terms that decide what happens next.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::config::MatrixChannelConfig;

/// Largest answer read (a sync of busy rooms can be large, but not this).
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxError {
    /// 401/403 on login, or `M_UNKNOWN_TOKEN`/`M_MISSING_TOKEN`: the credentials.
    Unauthorized(String),
    /// 429 with `retry_after_ms`, or a `Retry-After`.
    RetryAfter(Duration, String),
    /// 5xx, no answer, an answer that is not JSON: try again later.
    Transient(String),
    /// Refused for good (another 4xx).
    Permanent(String),
}

impl std::fmt::Display for MxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MxError::Unauthorized(s) => write!(f, "the credentials were refused: {s}"),
            MxError::RetryAfter(d, s) => write!(f, "{s} (retry after {} ms)", d.as_millis()),
            MxError::Transient(s) | MxError::Permanent(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for MxError {}

/// Percent-encodes a path segment (room ids carry `!` and `:`, event ids `$`).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How long one media download may take.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(60);

/// The server name and media id of an `mxc://` address, each checked to be one path
/// segment of safe characters (the address comes from a stranger's event).
pub fn mxc_parts(mxc: &str) -> Option<(&str, &str)> {
    let (server, id) = mxc.strip_prefix("mxc://")?.split_once('/')?;
    let safe = |s: &str, extra: &str| {
        s.len() <= 255
            && s.chars().any(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c) || extra.contains(c))
    };
    (safe(server, ":[]") && safe(id, "")).then_some((server, id))
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(cfg: &MatrixChannelConfig) -> anyhow::Result<Client> {
        let http = crate::channels::http_client_builder()
            .build()
            .context("Building the Matrix HTTP client")?;
        Ok(Client {
            http,
            base: cfg.homeserver.clone(),
            token: cfg.access_token.as_ref().map(|t| t.expose().to_string()),
        })
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Downloads the content at `mxc` (`mxc://server/id`) through the authenticated media
    /// API (`/_matrix/client/v1/media/download`, Matrix 1.11), at most `max` bytes.
    /// Errors are sentences for the message's text.
    pub async fn download(&self, mxc: &str, max: usize) -> Result<Vec<u8>, String> {
        let (server, id) = mxc_parts(mxc).ok_or_else(|| format!("{mxc:?} is no mxc:// address"))?;
        let url = format!(
            "{}/_matrix/client/v1/media/download/{server}/{id}",
            self.base
        );
        let mut req = self.http.get(url).timeout(MEDIA_TIMEOUT);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| format!("the homeserver did not answer: {}", e.without_url()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("the homeserver answered {status}"));
        }
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(format!("it is over {} MB", max / (1024 * 1024)));
        }
        let mut data = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("the download broke off: {}", e.without_url()))?
        {
            if data.len() + chunk.len() > max {
                return Err(format!("it is over {} MB", max / (1024 * 1024)));
            }
            data.extend_from_slice(&chunk);
        }
        Ok(data)
    }

    /// `POST /login` with the password, as `device_id`; keeps the access token.
    pub async fn login(
        &mut self,
        user: &str,
        password: &str,
        device_id: &str,
    ) -> Result<String, MxError> {
        let body = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            "device_id": device_id,
            "initial_device_display_name": "postdesk",
        });
        let v = self
            .call(
                reqwest::Method::POST,
                "/login",
                Some(&body),
                REQUEST_TIMEOUT,
                true,
            )
            .await?;
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| MxError::Transient("the login answer has no access_token".into()))?;
        self.token = Some(token.to_string());
        Ok(v.get("user_id")
            .and_then(Value::as_str)
            .unwrap_or(user)
            .to_string())
    }

    /// `GET /sync`: `since` (None: an initial sync), a long-poll `timeout`, and a filter.
    pub async fn sync(
        &self,
        since: Option<&str>,
        timeout: Duration,
        filter: &Value,
    ) -> Result<Value, MxError> {
        let mut path = format!(
            "/sync?timeout={}&filter={}",
            timeout.as_millis(),
            segment(&filter.to_string())
        );
        if let Some(s) = since {
            path.push_str(&format!("&since={}", segment(s)));
        }
        self.call(
            reqwest::Method::GET,
            &path,
            None,
            timeout + Duration::from_secs(15),
            false,
        )
        .await
    }

    pub async fn join(&self, room: &str) -> Result<(), MxError> {
        self.call(
            reqwest::Method::POST,
            &format!("/rooms/{}/join", segment(room)),
            Some(&json!({})),
            REQUEST_TIMEOUT,
            false,
        )
        .await
        .map(|_| ())
    }

    /// `GET /rooms/{room}/messages`, backwards from `from`.
    pub async fn messages_before(&self, room: &str, from: &str) -> Result<Value, MxError> {
        self.call(
            reqwest::Method::GET,
            &format!(
                "/rooms/{}/messages?dir=b&limit=100&from={}",
                segment(room),
                segment(from)
            ),
            None,
            REQUEST_TIMEOUT,
            false,
        )
        .await
    }

    /// `PUT /rooms/{room}/send/m.room.message/{txn}`: the event id.
    pub async fn send(&self, room: &str, txn: &str, content: &Value) -> Result<String, MxError> {
        let v = self
            .call(
                reqwest::Method::PUT,
                &format!(
                    "/rooms/{}/send/m.room.message/{}",
                    segment(room),
                    segment(txn)
                ),
                Some(content),
                REQUEST_TIMEOUT,
                false,
            )
            .await?;
        Ok(v.get("event_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string())
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
        login: bool,
    ) -> Result<Value, MxError> {
        let url = format!("{}/_matrix/client/v3{path}", self.base);
        let mut req = self.http.request(method, url).timeout(timeout);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| MxError::Transient(format!("no answer: {}", e.without_url())))?;
        let status = resp.status().as_u16();
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(MxError::Transient(format!(
                "the answer is over {MAX_ANSWER_BYTES} bytes"
            )));
        }
        let bytes = resp.bytes().await.map_err(|e| {
            MxError::Transient(format!("the answer broke off: {}", e.without_url()))
        })?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            MxError::Transient(format!("HTTP {status}, and the answer is not JSON: {e}"))
        })?;
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let code = v.get("errcode").and_then(Value::as_str).unwrap_or("");
        let text = format!(
            "HTTP {status} {code}: {}",
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .take(300)
                .collect::<String>()
        );
        Err(match (status, code) {
            (_, "M_UNKNOWN_TOKEN" | "M_MISSING_TOKEN") => MxError::Unauthorized(text),
            (401 | 403, _) if login => MxError::Unauthorized(text),
            (429, _) | (_, "M_LIMIT_EXCEEDED") => MxError::RetryAfter(
                Duration::from_millis(
                    v.get("retry_after_ms")
                        .and_then(Value::as_u64)
                        .unwrap_or(5_000)
                        .min(3_600_000),
                ),
                text,
            ),
            (500..=599, _) | (408, _) => MxError::Transient(text),
            _ => MxError::Permanent(text),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_one_server_and_one_id_of_safe_characters_make_an_mxc_address() {
        use super::mxc_parts;
        assert_eq!(
            mxc_parts("mxc://matrix.org:8448/AbC_12-x.y"),
            Some(("matrix.org:8448", "AbC_12-x.y"))
        );
        assert_eq!(mxc_parts("mxc://[::1]/id"), Some(("[::1]", "id")));
        assert_eq!(mxc_parts("mxc://localhost/../../admin"), None);
        assert_eq!(mxc_parts("mxc://localhost/a/b"), None);
        assert_eq!(mxc_parts("mxc://localhost/a?b=1"), None);
        assert_eq!(mxc_parts("mxc://localhost/"), None);
        assert_eq!(mxc_parts("mxc://localhost/.."), None);
        assert_eq!(mxc_parts("mxc://../id"), None);
        assert_eq!(mxc_parts("https://evil.example/x"), None);
        assert_eq!(mxc_parts("mxc://local host/x"), None);
    }

    use super::*;

    #[test]
    fn room_and_event_ids_are_encoded_for_a_path() {
        assert_eq!(segment("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(segment("$ev/1"), "%24ev%2F1");
    }
}
