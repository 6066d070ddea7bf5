//! The Bot API's JSON, read defensively: every answer is `{"ok": ..., "result": ...}` or
//! `{"ok": false, "error_code": N, "description": "...", "parameters": {"retry_after": S}}`
//! (<https://core.telegram.org/bots/api#making-requests>). Updates are read one by one
//! from `serde_json::Value`s, so that one update of a shape we do not know (a new update
//! type, a field of an unexpected type) is skipped with its reason and never stops the
//! ones behind it. No I/O.

use serde_json::Value;

/// The Bot API's error answer, or a failed `ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub error_code: Option<i64>,
    pub description: String,
    /// `parameters.retry_after`: seconds to wait before the next request (429).
    pub retry_after: Option<u64>,
    /// `parameters.migrate_to_chat_id`: the group became this supergroup.
    pub migrate_to_chat_id: Option<i64>,
}

/// Reads an answer: `Ok(result)` when `ok` is true, `Err` with the failure otherwise.
/// `Err(None)` means the body is not an answer at all (not UTF-8, not JSON, no `ok`).
pub fn parse_answer(body: &[u8]) -> Result<Value, Result<ApiFailure, String>> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Err(format!(
            "the answer is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let v: Value = serde_json::from_str(text).map_err(|e| {
        Err(format!(
            "the answer is not JSON (line {}, column {}: {e})",
            e.line(),
            e.column()
        ))
    })?;
    match v.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
        Some(false) => {
            let params = v.get("parameters");
            Err(Ok(ApiFailure {
                error_code: v.get("error_code").and_then(Value::as_i64),
                description: v
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("no description")
                    .chars()
                    .take(300)
                    .collect(),
                retry_after: params
                    .and_then(|p| p.get("retry_after"))
                    .and_then(Value::as_u64),
                migrate_to_chat_id: params
                    .and_then(|p| p.get("migrate_to_chat_id"))
                    .and_then(Value::as_i64),
            }))
        }
        None => Err(Err("the answer has no boolean \"ok\"".into())),
    }
}

/// A file a message carries, to fetch through `getFile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub file_id: String,
    pub name: String,
    pub content_type: String,
    /// What the message says the size is, if it does.
    pub size: Option<u64>,
}

/// A chat message, as much of it as postdesk uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgMessage {
    pub chat_id: i64,
    /// Unique within the chat only: the dedup key is (chat id, message id).
    pub message_id: i64,
    pub date: Option<i64>,
    /// The sender's user id; the chat's id when there is no `from` (a channel post).
    pub sender_id: i64,
    pub sender_name: String,
    pub sender_is_bot: bool,
    /// `text`, or a media message's `caption`.
    pub text: String,
    pub files: Vec<FileRef>,
    /// The message this one answers, in the same chat.
    pub reply_to: Option<i64>,
    /// A phone number the sender shared as their own contact card: Telegram verified it
    /// belongs to this account (`contact.user_id` is the sender).
    pub own_phone: Option<String>,
}

/// What one update is.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateKind {
    Message(TgMessage),
    /// A type postdesk does not take (edited messages, callback queries, a type newer
    /// than this code): named here, skipped.
    Other(String),
    /// A `message` whose shape is wrong: why.
    Unreadable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub update_id: i64,
    pub kind: UpdateKind,
    /// The update as Telegram sent it: the raw record kept for its message.
    pub raw: Value,
}

/// Longest text taken from one message (Telegram's own limit is 4096 characters).
const MAX_TEXT_CHARS: usize = 65_536;

/// Reads `getUpdates`' result. Entries without a numeric `update_id` cannot be confirmed
/// or told apart and are dropped, counted in the second value.
pub fn parse_updates(result: &Value) -> Result<(Vec<Update>, usize), String> {
    let list = result
        .as_array()
        .ok_or("getUpdates' result is not a list")?;
    let mut out = Vec::with_capacity(list.len());
    let mut dropped = 0;
    for v in list {
        let Some(update_id) = v.get("update_id").and_then(Value::as_i64) else {
            dropped += 1;
            continue;
        };
        let kind = match v.get("message") {
            Some(m) => match read_message(m) {
                Ok(m) => UpdateKind::Message(m),
                Err(why) => UpdateKind::Unreadable(why),
            },
            None => UpdateKind::Other(
                v.as_object()
                    .and_then(|o| o.keys().find(|k| *k != "update_id").cloned())
                    .unwrap_or_else(|| "empty".into())
                    .chars()
                    .take(64)
                    .collect(),
            ),
        };
        out.push(Update {
            update_id,
            kind,
            raw: v.clone(),
        });
    }
    Ok((out, dropped))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// One `Message` object.
pub fn read_message(m: &Value) -> Result<TgMessage, String> {
    let chat = m.get("chat").ok_or("the message has no chat")?;
    let chat_id = chat
        .get("id")
        .and_then(Value::as_i64)
        .ok_or("the message's chat has no numeric id")?;
    let message_id = m
        .get("message_id")
        .and_then(Value::as_i64)
        .ok_or("the message has no numeric message_id")?;
    let from = m.get("from");
    let sender_id = from
        .and_then(|f| f.get("id"))
        .and_then(Value::as_i64)
        .unwrap_or(chat_id);
    let who = from.unwrap_or(chat);
    let mut name = [str_of(who, "first_name"), str_of(who, "last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if name.trim().is_empty() {
        name = str_of(who, "title")
            .or_else(|| str_of(who, "username"))
            .unwrap_or("")
            .to_string();
    }
    let text: String = str_of(m, "text")
        .or_else(|| str_of(m, "caption"))
        .unwrap_or("")
        .chars()
        .take(MAX_TEXT_CHARS)
        .collect();
    let mut files = Vec::new();
    if let Some(d) = m.get("document")
        && let Some(id) = str_of(d, "file_id")
    {
        files.push(FileRef {
            file_id: id.to_string(),
            name: str_of(d, "file_name").unwrap_or("document").to_string(),
            content_type: str_of(d, "mime_type")
                .filter(|t| crate::channels::chat::is_media_type(t))
                .unwrap_or("application/octet-stream")
                .to_string(),
            size: d.get("file_size").and_then(Value::as_u64),
        });
    }
    // A photo comes in several sizes, smallest first: the largest is the photo.
    if let Some(best) = m
        .get("photo")
        .and_then(Value::as_array)
        .and_then(|sizes| sizes.iter().rfind(|p| str_of(p, "file_id").is_some()))
        && let Some(id) = str_of(best, "file_id")
    {
        files.push(FileRef {
            file_id: id.to_string(),
            name: format!("photo-{message_id}.jpg"),
            content_type: "image/jpeg".into(),
            size: best.get("file_size").and_then(Value::as_u64),
        });
    }
    let own_phone = m.get("contact").and_then(|c| {
        let user = c.get("user_id").and_then(Value::as_i64)?;
        (from.is_some() && user == sender_id)
            .then(|| str_of(c, "phone_number").map(str::to_string))
            .flatten()
    });
    Ok(TgMessage {
        chat_id,
        message_id,
        date: m.get("date").and_then(Value::as_i64),
        sender_id,
        sender_name: name.trim().to_string(),
        sender_is_bot: from
            .and_then(|f| f.get("is_bot"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        text,
        files,
        reply_to: m
            .get("reply_to_message")
            .and_then(|r| r.get("message_id"))
            .and_then(Value::as_i64),
        own_phone,
    })
}

/// The external id of a message: chat-scoped, so the chat is part of it.
pub fn external_id(chat_id: i64, message_id: i64) -> String {
    format!("{chat_id}:{message_id}")
}

/// The message id inside an external id made by [`external_id`].
pub fn message_id_of(external_id: &str) -> Option<i64> {
    external_id.rsplit_once(':')?.1.parse().ok()
}

/// Splits a reply into parts Telegram takes (4096 characters at most), at a paragraph,
/// a line or a space where one is near, never inside a character.
pub fn split_text(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(16);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > max_chars {
        let hard = rest
            .char_indices()
            .nth(max_chars)
            .map_or(rest.len(), |(i, _)| i);
        let head = rest.get(..hard).unwrap_or(rest);
        let floor = head.len() / 2;
        let cut = ["\n\n", "\n", " "]
            .iter()
            .find_map(|sep| head.rfind(sep).filter(|&i| i > floor))
            .unwrap_or(hard);
        let (part, tail) = rest.split_at(cut);
        parts.push(part.trim_end().to_string());
        rest = tail.trim_start();
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_error_answer_gives_its_code_and_retry_after() {
        let body = br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        let f = parse_answer(body).unwrap_err().unwrap();
        assert_eq!(f.error_code, Some(429));
        assert_eq!(f.retry_after, Some(7));
        assert!(f.description.starts_with("Too Many"));
    }

    #[test]
    fn a_body_that_is_no_answer_says_why() {
        let e = parse_answer(b"\xff\xfe{").unwrap_err().unwrap_err();
        assert!(e.contains("not UTF-8") && e.contains("offset 0"), "{e}");
        let e = parse_answer(b"{\"ok\": tru").unwrap_err().unwrap_err();
        assert!(e.contains("not JSON") && e.contains("line 1"), "{e}");
        let e = parse_answer(b"[1,2]").unwrap_err().unwrap_err();
        assert!(e.contains("\"ok\""), "{e}");
        assert_eq!(
            parse_answer(br#"{"ok":true,"result":[]}"#).unwrap(),
            json!([])
        );
    }

    #[test]
    fn updates_of_other_types_and_bad_shapes_are_named_not_fatal() {
        let result = json!([
            {"update_id": 10, "message": {"message_id": 5, "date": 1700000000,
                "chat": {"id": 42, "type": "private"},
                "from": {"id": 42, "is_bot": false, "first_name": "Wang", "last_name": "Fang"},
                "text": "退款怎么办"}},
            {"update_id": 11, "edited_message": {"message_id": 5}},
            {"update_id": 12, "message": {"message_id": "five", "chat": {"id": 42}}},
            {"message": {"message_id": 6}},
            {"update_id": 13, "future_kind_of_update": {}}
        ]);
        let (ups, dropped) = parse_updates(&result).unwrap();
        assert_eq!(dropped, 1);
        assert_eq!(ups.len(), 4);
        let UpdateKind::Message(m) = &ups[0].kind else {
            panic!("{:?}", ups[0]);
        };
        assert_eq!((m.chat_id, m.message_id), (42, 5));
        assert_eq!(m.sender_name, "Wang Fang");
        assert_eq!(m.text, "退款怎么办");
        assert_eq!(ups[1].kind, UpdateKind::Other("edited_message".into()));
        assert!(matches!(&ups[2].kind, UpdateKind::Unreadable(w) if w.contains("message_id")));
        assert_eq!(
            ups[3].kind,
            UpdateKind::Other("future_kind_of_update".into())
        );
        assert!(parse_updates(&json!({"a": 1})).is_err());
    }

    #[test]
    fn the_largest_photo_and_a_document_are_the_files() {
        let m = read_message(&json!({
            "message_id": 9, "chat": {"id": -100}, "from": {"id": 7, "first_name": "A"},
            "caption": "see attached",
            "document": {"file_id": "DOC", "file_name": "invoice.pdf", "mime_type": "application/pdf", "file_size": 1234},
            "photo": [{"file_id": "S", "file_size": 10}, {"file_id": "L", "file_size": 999}]
        }))
        .unwrap();
        assert_eq!(m.text, "see attached");
        let ids: Vec<&str> = m.files.iter().map(|f| f.file_id.as_str()).collect();
        assert_eq!(ids, ["DOC", "L"]);
        assert_eq!(m.files[0].name, "invoice.pdf");
        assert_eq!(m.sender_id, 7);
    }

    #[test]
    fn only_a_contact_of_the_sender_themself_gives_a_phone() {
        let own = read_message(
            &json!({"message_id": 1, "chat": {"id": 7}, "from": {"id": 7},
            "contact": {"phone_number": "+4915112345678", "user_id": 7}}),
        )
        .unwrap();
        assert_eq!(own.own_phone.as_deref(), Some("+4915112345678"));
        let other = read_message(
            &json!({"message_id": 2, "chat": {"id": 7}, "from": {"id": 7},
            "contact": {"phone_number": "+4915100000000", "user_id": 8}}),
        )
        .unwrap();
        assert_eq!(other.own_phone, None);
    }

    #[test]
    fn external_ids_are_chat_scoped() {
        assert_eq!(external_id(-100123, 5), "-100123:5");
        assert_eq!(message_id_of("-100123:5"), Some(5));
        assert_eq!(message_id_of("garbage"), None);
    }

    #[test]
    fn long_replies_split_at_paragraphs_and_never_inside_a_character() {
        let text = format!("{}\n\n{}", "a".repeat(30), "é".repeat(40));
        let parts = split_text(&text, 32);
        assert_eq!(parts[0], "a".repeat(30));
        assert!(parts.iter().all(|p| p.chars().count() <= 32), "{parts:?}");
        assert_eq!(
            parts.concat(),
            format!("{}{}", "a".repeat(30), "é".repeat(40))
        );
        assert_eq!(split_text("short", 4096), ["short"]);
        assert_eq!(split_text("", 4096), [""]);
    }
}
