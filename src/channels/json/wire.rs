//! The JSON channel's wire format: what a relay pushes (or serves from its feed), what we
//! deliver, and the small answers in between. Pure: bytes in, validated values or a
//! [`WireError`] out, no I/O. The protocol as a whole is described in the parent module.
//!
//! Everything here comes from outside. Parsing never panics and bounds every size before
//! keeping it: a push of 100 messages of 1 MiB text and 10 MB of attachments each is the
//! most one request can make us hold, and the HTTP layer's body limit (`max_body_mb`)
//! caps it further.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_path_to_error::Segment;

/// Most messages in one push or one feed page.
pub const MAX_MESSAGES: usize = 100;
/// Longest `external_id`, `conversation_id`, `sender.id`, `sender.name`, `sender.email`,
/// attachment name and content type, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest `text` (and `html`), in bytes.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 20;
/// Most decoded attachment bytes on one message, all attachments together.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;
/// Longest feed cursor, in bytes.
pub const MAX_CURSOR_BYTES: usize = 1024;

/// A validated inbound message, ready for the backend: the chat message every chat
/// channel hands to intake (`channels::chat`).
pub use crate::channels::chat::{
    ChatAttachment as JsonAttachment, ChatMessage as JsonMessage, ChatSender as JsonSender,
};

/// Whether a [`WireError`] is about the shape of the JSON or about its values; the HTTP
/// layer answers 400 for the first and 422 for the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireErrorKind {
    /// Not UTF-8, not JSON, a missing field, a field of the wrong type, an unknown field.
    Malformed,
    /// Well-formed, but a value breaks a rule: empty, too long, too many, bad base64.
    Invalid,
}

/// What is wrong with a body, and where: `field` is a path like `messages[0].sender.id`
/// (None when the problem is the body as a whole). Serialises to
/// `{"error": message, "field": field}`, the error body of every JSON-channel answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WireError {
    #[serde(skip)]
    pub kind: WireErrorKind,
    #[serde(rename = "error")]
    pub message: String,
    pub field: Option<String>,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for WireError {}

impl WireError {
    pub fn malformed(field: Option<String>, message: impl Into<String>) -> Self {
        WireError {
            kind: WireErrorKind::Malformed,
            field,
            message: message.into(),
        }
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        WireError {
            kind: WireErrorKind::Invalid,
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// One message to deliver to the relay: POSTed to `deliver_url`, or listed by the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The outbox row's id; the outbox lists and acknowledges by it, in ascending order.
    pub id: i64,
    /// `postdesk-outbox-<id>`: the same on every attempt, so a relay can drop a repeat
    /// that crossed a lost answer. Also sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    pub ticket_id: i64,
    pub conversation_id: String,
    /// The relay's id of the person to send to (the `sender.id` they wrote from).
    pub recipient: String,
    pub text: String,
}

impl Delivery {
    /// A delivery for outbox row `id`, with its [`idempotency_key`].
    pub fn new(
        id: i64,
        ticket_id: i64,
        conversation_id: impl Into<String>,
        recipient: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Delivery {
            id,
            idempotency_key: idempotency_key(id),
            ticket_id,
            conversation_id: conversation_id.into(),
            recipient: recipient.into(),
            text: text.into(),
        }
    }
}

/// The idempotency key of outbox row `id`: `postdesk-outbox-<id>`. The prefix keeps it
/// distinct from whatever other keys a relay stores beside ours.
pub fn idempotency_key(id: i64) -> String {
    format!("postdesk-outbox-{id}")
}

/// `GET .../outbox` answers `{"deliveries": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxPage {
    pub deliveries: Vec<Delivery>,
}

/// `POST .../outbox/ack` takes `{"up_to": N}`: every delivery with id <= N is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub up_to: i64,
}

/// ... and answers `{"acknowledged": count}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckAnswer {
    pub acknowledged: u64,
}

/// What became of one pushed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResult {
    pub external_id: String,
    /// The ticket the message is on; null only for a message that could not be processed
    /// (kept, raw, for an admin).
    pub ticket_id: Option<i64>,
    /// The external id was already stored: nothing was changed.
    pub duplicate: bool,
}

/// A push answers `{"results": [...]}`, one per message in the order sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAnswer {
    pub results: Vec<PushResult>,
}

/// One page of a relay's feed (pull mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    pub messages: Vec<JsonMessage>,
    /// Where to continue next time; None when the relay gave none (keep the old one).
    pub cursor: Option<String>,
}

// ---- the raw shapes, as serde reads them ------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPush {
    messages: Vec<RawMessage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    messages: Vec<RawMessage>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    external_id: String,
    conversation_id: String,
    sender: RawSender,
    text: String,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    sent_at: Option<SentAt>,
    #[serde(default)]
    attachments: Option<Vec<RawAttachment>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSender {
    id: String,
    name: String,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttachment {
    name: String,
    content_type: String,
    data_base64: String,
}

/// `sent_at`: an RFC 3339 string or Unix seconds (integer or fractional).
struct SentAt(DateTime<Utc>);

impl<'de> Deserialize<'de> for SentAt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SentAt;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 date-time string or Unix seconds")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SentAt, E> {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| SentAt(t.with_timezone(&Utc)))
                    .map_err(|e| E::custom(format!("{v:?} is not an RFC 3339 date-time: {e}")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SentAt, E> {
                DateTime::from_timestamp(v, 0)
                    .map(SentAt)
                    .ok_or_else(|| E::custom(format!("{v} is out of range for Unix seconds")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SentAt, E> {
                let v = i64::try_from(v)
                    .map_err(|_| E::custom(format!("{v} is out of range for Unix seconds")))?;
                self.visit_i64(v)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SentAt, E> {
                // Finite and within about ±292 000 years, then split into whole seconds and
                // nanoseconds; the casts cannot overflow after that check.
                if !v.is_finite() || v.abs() > 9.0e12 {
                    return Err(E::custom(format!("{v} is out of range for Unix seconds")));
                }
                let secs = v.floor();
                let nanos = ((v - secs) * 1e9).round().clamp(0.0, 999_999_999.0);
                DateTime::from_timestamp(secs as i64, nanos as u32)
                    .map(SentAt)
                    .ok_or_else(|| E::custom(format!("{v} is out of range for Unix seconds")))
            }
        }
        d.deserialize_any(V)
    }
}

// ---- parsing ---------------------------------------------------------------------------

/// Parses and validates a pushed body: 1 to [`MAX_MESSAGES`] messages.
pub fn parse_push(body: &[u8]) -> Result<Vec<JsonMessage>, WireError> {
    let raw: RawPush = parse_json(body)?;
    if raw.messages.is_empty() {
        return Err(WireError::invalid(
            "messages",
            "must hold at least one message",
        ));
    }
    messages(raw.messages)
}

/// Parses and validates a feed page: 0 to [`MAX_MESSAGES`] messages and a cursor.
pub fn parse_feed(body: &[u8]) -> Result<FeedPage, WireError> {
    let raw: RawFeed = parse_json(body)?;
    if let Some(c) = &raw.cursor
        && c.len() > MAX_CURSOR_BYTES
    {
        return Err(WireError::invalid(
            "cursor",
            format!("is longer than {MAX_CURSOR_BYTES} bytes"),
        ));
    }
    Ok(FeedPage {
        messages: messages(raw.messages)?,
        cursor: raw.cursor,
    })
}

/// Parses an acknowledgement body `{"up_to": N}`.
pub fn parse_ack(body: &[u8]) -> Result<Ack, WireError> {
    parse_json(body)
}

fn messages(raw: Vec<RawMessage>) -> Result<Vec<JsonMessage>, WireError> {
    if raw.len() > MAX_MESSAGES {
        return Err(WireError::invalid(
            "messages",
            format!(
                "holds {} messages; at most {MAX_MESSAGES} are allowed at a time",
                raw.len()
            ),
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, m)| message(&format!("messages[{i}]"), m))
        .collect()
}

/// A non-empty, bounded id.
fn id(path: String, v: String) -> Result<String, WireError> {
    if v.is_empty() {
        return Err(WireError::invalid(path, "must not be empty"));
    }
    bounded(path, v, MAX_ID_BYTES)
}

fn bounded(path: String, v: String, max: usize) -> Result<String, WireError> {
    if v.len() > max {
        return Err(WireError::invalid(
            path,
            format!("is {} bytes long; at most {max} are allowed", v.len()),
        ));
    }
    Ok(v)
}

fn message(at: &str, m: RawMessage) -> Result<JsonMessage, WireError> {
    let external_id = id(format!("{at}.external_id"), m.external_id)?;
    let conversation_id = id(format!("{at}.conversation_id"), m.conversation_id)?;
    let sender = JsonSender {
        id: id(format!("{at}.sender.id"), m.sender.id)?,
        name: bounded(format!("{at}.sender.name"), m.sender.name, MAX_ID_BYTES)?,
        email: match m.sender.email.map(|e| e.trim().to_lowercase()) {
            None => None,
            Some(e) if e.is_empty() => None,
            Some(e) => Some(email(format!("{at}.sender.email"), e)?),
        },
    };
    let text = bounded(format!("{at}.text"), m.text, MAX_TEXT_BYTES)?;
    let html = m
        .html
        .map(|h| bounded(format!("{at}.html"), h, MAX_TEXT_BYTES))
        .transpose()?;
    let raw_attachments = m.attachments.unwrap_or_default();
    if raw_attachments.len() > MAX_ATTACHMENTS {
        return Err(WireError::invalid(
            format!("{at}.attachments"),
            format!(
                "holds {} attachments; at most {MAX_ATTACHMENTS} are allowed per message",
                raw_attachments.len()
            ),
        ));
    }
    let mut attachments = Vec::with_capacity(raw_attachments.len());
    let mut total = 0usize;
    for (j, a) in raw_attachments.into_iter().enumerate() {
        let ap = format!("{at}.attachments[{j}]");
        let name = bounded(format!("{ap}.name"), a.name, MAX_ID_BYTES)?;
        let content_type = bounded(format!("{ap}.content_type"), a.content_type, MAX_ID_BYTES)?;
        // Refuse before decoding what cannot fit: 4 base64 characters make at most 3 bytes.
        let room = MAX_ATTACHMENT_BYTES.saturating_sub(total);
        if a.data_base64.len() / 4 * 3 > room.saturating_add(3) {
            return Err(too_big(at));
        }
        let data = BASE64.decode(a.data_base64.trim()).map_err(|e| {
            WireError::invalid(format!("{ap}.data_base64"), format!("is not base64: {e}"))
        })?;
        total = total.saturating_add(data.len());
        if total > MAX_ATTACHMENT_BYTES {
            return Err(too_big(at));
        }
        attachments.push(JsonAttachment {
            name,
            content_type,
            data,
        });
    }
    Ok(JsonMessage {
        external_id,
        conversation_id,
        sender,
        text,
        html,
        sent_at: m.sent_at.map(|s| s.0),
        attachments,
        reply_to: None,
        verified_phone: None,
    })
}

fn too_big(at: &str) -> WireError {
    WireError::invalid(
        format!("{at}.attachments"),
        format!("decode to more than {MAX_ATTACHMENT_BYTES} bytes together"),
    )
}

fn email(path: String, e: String) -> Result<String, WireError> {
    let e = bounded(path.clone(), e, MAX_ID_BYTES)?;
    let ok = match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !e
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ','))
        }
        None => false,
    };
    if ok {
        Ok(e)
    } else {
        Err(WireError::invalid(
            path,
            format!("{e:?} is not an email address"),
        ))
    }
}

/// Standard alphabet; padding optional (some encoders leave it out).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// UTF-8 first (with the offset of the first bad byte), then JSON with the path of the
/// field at fault.
fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, WireError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        WireError::malformed(
            None,
            format!(
                "the body is not valid UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    // serde would read a struct from an array too (by position); a body is an object.
    if text.trim_start().starts_with('[') {
        return Err(WireError::malformed(
            None,
            "the body must be a JSON object, not an array",
        ));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(|e| {
        WireError::malformed(
            None,
            format!(
                "invalid JSON at line {} column {}: trailing characters after the value",
                e.line(),
                e.column()
            ),
        )
    })?;
    Ok(value)
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> WireError {
    let mut segments: Vec<Segment> = e.path().iter().cloned().collect();
    let inner = e.into_inner();
    let location = format!(" at line {} column {}", inner.line(), inner.column());
    match inner.classify() {
        serde_json::error::Category::Data => {
            let full = inner.to_string();
            let message = full.strip_suffix(&location).unwrap_or(&full).to_string();
            // serde stops in the object that lacks the field; name the field itself.
            if let Some(missing) = between(&message, "missing field `", "`") {
                segments.push(Segment::Map {
                    key: missing.to_string(),
                });
            }
            if let Some(unknown) = between(&message, "unknown field `", "`")
                && !matches!(segments.last(), Some(Segment::Map { key }) if key == unknown)
            {
                segments.push(Segment::Map {
                    key: unknown.to_string(),
                });
            }
            let field = path_text(&segments);
            WireError::malformed(field, message)
        }
        // Syntax, an early end, or (never, reading from memory) I/O.
        _ => {
            let full = inner.to_string();
            let message = full.strip_suffix(&location).unwrap_or(&full);
            WireError::malformed(
                None,
                format!(
                    "invalid JSON at line {} column {}: {message}",
                    inner.line(),
                    inner.column()
                ),
            )
        }
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = s.split_once(start)?.1;
    Some(rest.split_once(end)?.0)
}

/// `messages[0].sender.id`; None for the top level.
fn path_text(segments: &[Segment]) -> Option<String> {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg() -> serde_json::Value {
        json!({
            "external_id": "m1",
            "conversation_id": "+15550001",
            "sender": {"id": "+15550001", "name": "Ann", "email": "Ann@Example.com"},
            "text": "Hello",
        })
    }

    fn push(messages: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "messages": messages })).unwrap()
    }

    fn err(body: &[u8]) -> WireError {
        parse_push(body).unwrap_err()
    }

    #[test]
    fn a_minimal_and_a_full_message_parse() {
        let mut full = msg();
        full["html"] = json!("<p>Hello</p>");
        full["sent_at"] = json!("2024-05-01T12:00:00+02:00");
        full["attachments"] = json!([
            {"name": "a.txt", "content_type": "text/plain", "data_base64": "aGk="},
            {"name": "b.bin", "content_type": "application/octet-stream", "data_base64": "aGk"},
        ]);
        let mut plain = msg();
        plain["sender"]["email"] = json!(null);
        let got = parse_push(&push(vec![full, plain])).unwrap();
        assert_eq!(got.len(), 2);
        let m = &got[0];
        assert_eq!(m.external_id, "m1");
        assert_eq!(m.sender.email.as_deref(), Some("ann@example.com"));
        assert_eq!(m.html.as_deref(), Some("<p>Hello</p>"));
        assert_eq!(m.sent_at.unwrap().to_rfc3339(), "2024-05-01T10:00:00+00:00");
        assert_eq!(m.attachments[0].data, b"hi");
        assert_eq!(m.attachments[1].data, b"hi", "padding is optional");
        assert_eq!(got[1].sender.email, None);
        assert!(got[1].attachments.is_empty());
    }

    #[test]
    fn sent_at_may_be_unix_seconds() {
        let mut a = msg();
        a["sent_at"] = json!(1_700_000_000);
        let mut b = msg();
        b["sent_at"] = json!(1_700_000_000.5);
        let got = parse_push(&push(vec![a, b])).unwrap();
        assert_eq!(got[0].sent_at.unwrap().timestamp(), 1_700_000_000);
        assert_eq!(
            got[1].sent_at.unwrap().timestamp_millis(),
            1_700_000_000_500
        );
        let mut c = msg();
        c["sent_at"] = json!("yesterday");
        let e = err(&push(vec![c]));
        assert_eq!(e.field.as_deref(), Some("messages[0].sent_at"));
        assert!(e.message.contains("RFC 3339"), "{e}");
        let mut d = msg();
        d["sent_at"] = json!(1e300);
        assert_eq!(
            err(&push(vec![d])).field.as_deref(),
            Some("messages[0].sent_at")
        );
    }

    #[test]
    fn invalid_utf8_names_the_byte_offset() {
        let e = err(b"{\"messages\": [\"\xff\"]}");
        assert_eq!(e.kind, WireErrorKind::Malformed);
        assert_eq!(e.field, None);
        assert!(
            e.message.contains("UTF-8") && e.message.contains("offset 15"),
            "{e}"
        );
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        let e = err(b"{\"messages\": [\n  {\"external_id\": }\n]}");
        assert_eq!(e.kind, WireErrorKind::Malformed);
        assert!(e.message.contains("invalid JSON at line 2 column"), "{e}");
        let e = err(b"{\"messages\": []} x");
        assert!(e.message.contains("trailing"), "{e}");
        let e = err(b"");
        assert!(e.message.contains("invalid JSON at line 1"), "{e}");
    }

    #[test]
    fn a_missing_field_is_named_by_its_path() {
        let mut m = msg();
        m["sender"].as_object_mut().unwrap().remove("id");
        let e = err(&push(vec![msg(), m]));
        assert_eq!(e.kind, WireErrorKind::Malformed);
        assert_eq!(e.field.as_deref(), Some("messages[1].sender.id"));
        assert!(e.message.contains("missing field"), "{e}");
        let e = err(b"{}");
        assert_eq!(e.field.as_deref(), Some("messages"));
    }

    #[test]
    fn a_wrong_type_or_unknown_field_is_named_by_its_path() {
        let mut m = msg();
        m["text"] = json!(5);
        let e = err(&push(vec![m]));
        assert_eq!(e.field.as_deref(), Some("messages[0].text"));
        assert!(e.message.contains("invalid type"), "{e}");
        let mut m = msg();
        m["sentAt"] = json!(5);
        let e = err(&push(vec![m]));
        assert_eq!(e.field.as_deref(), Some("messages[0].sentAt"));
        assert!(e.message.contains("unknown field"), "{e}");
        let e = err(b"[1]");
        assert_eq!(e.field, None);
        assert!(e.message.contains("JSON object"), "{e}");
    }

    #[test]
    fn message_count_is_bounded() {
        let e = err(&push(vec![]));
        assert_eq!(e.kind, WireErrorKind::Invalid);
        assert_eq!(e.field.as_deref(), Some("messages"));
        assert!(parse_push(&push(vec![msg(); 100])).is_ok());
        let e = err(&push(vec![msg(); 101]));
        assert_eq!(e.field.as_deref(), Some("messages"));
        assert!(e.message.contains("at most 100"), "{e}");
    }

    #[test]
    fn ids_must_be_present_and_short() {
        for (key, path) in [
            ("/external_id", "messages[0].external_id"),
            ("/conversation_id", "messages[0].conversation_id"),
            ("/sender/id", "messages[0].sender.id"),
        ] {
            let mut m = msg();
            *m.pointer_mut(key).unwrap() = json!("");
            let e = err(&push(vec![m]));
            assert_eq!(
                (e.kind, e.field.as_deref()),
                (WireErrorKind::Invalid, Some(path))
            );
            assert!(e.message.contains("empty"), "{e}");
            let mut m = msg();
            *m.pointer_mut(key).unwrap() = json!("x".repeat(257));
            assert_eq!(err(&push(vec![m])).field.as_deref(), Some(path));
            let mut m = msg();
            *m.pointer_mut(key).unwrap() = json!("x".repeat(256));
            assert!(parse_push(&push(vec![m])).is_ok());
        }
    }

    #[test]
    fn text_is_at_most_one_mebibyte() {
        let mut m = msg();
        m["text"] = json!("x".repeat(MAX_TEXT_BYTES));
        assert!(parse_push(&push(vec![m])).is_ok());
        let mut m = msg();
        m["text"] = json!("x".repeat(MAX_TEXT_BYTES + 1));
        let e = err(&push(vec![m]));
        assert_eq!(e.field.as_deref(), Some("messages[0].text"));
    }

    #[test]
    fn a_bad_sender_email_is_refused() {
        let mut m = msg();
        m["sender"]["email"] = json!("not an address");
        assert_eq!(
            err(&push(vec![m])).field.as_deref(),
            Some("messages[0].sender.email")
        );
    }

    #[test]
    fn attachments_are_checked_and_bounded() {
        let att = |data: String| json!({"name": "f", "content_type": "x/y", "data_base64": data});
        let mut m = msg();
        m["attachments"] = json!([att("aGk=".into()), att("not base64!".into())]);
        let e = err(&push(vec![m]));
        assert_eq!(
            e.field.as_deref(),
            Some("messages[0].attachments[1].data_base64")
        );
        assert!(e.message.contains("base64"), "{e}");

        let mut m = msg();
        m["attachments"] = json!(vec![att("aGk=".into()); 21]);
        let e = err(&push(vec![m]));
        assert_eq!(e.field.as_deref(), Some("messages[0].attachments"));

        let five_mb = BASE64.encode(vec![0u8; 5 * 1024 * 1024]);
        let mut m = msg();
        m["attachments"] = json!([att(five_mb.clone()), att(five_mb.clone())]);
        assert!(parse_push(&push(vec![m])).is_ok(), "exactly 10 MiB is fine");
        let mut m = msg();
        m["attachments"] = json!([att(five_mb.clone()), att(five_mb), att("aGk=".into())]);
        let e = err(&push(vec![m]));
        assert_eq!(e.field.as_deref(), Some("messages[0].attachments"));
        assert!(e.message.contains("more than"), "{e}");
    }

    #[test]
    fn the_error_body_is_error_and_field() {
        let e = WireError::invalid("messages[0].text", "too long");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"error": "too long", "field": "messages[0].text"})
        );
        assert_eq!(e.to_string(), "messages[0].text: too long");
        let e = WireError::malformed(None, "not JSON");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"error": "not JSON", "field": null})
        );
    }

    #[test]
    fn a_feed_page_may_be_empty_and_carries_a_cursor() {
        let p = parse_feed(br#"{"messages": [], "cursor": "abc"}"#).unwrap();
        assert!(p.messages.is_empty());
        assert_eq!(p.cursor.as_deref(), Some("abc"));
        let p = parse_feed(br#"{"messages": []}"#).unwrap();
        assert_eq!(p.cursor, None);
        let long = format!(r#"{{"messages": [], "cursor": "{}"}}"#, "c".repeat(1025));
        assert_eq!(
            parse_feed(long.as_bytes()).unwrap_err().field.as_deref(),
            Some("cursor")
        );
    }

    #[test]
    fn deliveries_and_answers_have_their_documented_shape() {
        let d = Delivery::new(42, 7, "+15550001", "+15550001", "Hi");
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"id": 42, "idempotency_key": "postdesk-outbox-42", "ticket_id": 7,
                   "conversation_id": "+15550001", "recipient": "+15550001", "text": "Hi"})
        );
        assert_eq!(parse_ack(br#"{"up_to": 9}"#).unwrap(), Ack { up_to: 9 });
        assert_eq!(
            parse_ack(br#"{"up_to": "9"}"#)
                .unwrap_err()
                .field
                .as_deref(),
            Some("up_to")
        );
    }
}
