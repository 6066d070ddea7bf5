//! What every chat channel (the JSON relays, Telegram) shares on the way in: the
//! channel-neutral [`ChatMessage`], a sender's identity, the Message-ID a chat message is
//! stored under, the [`Inbound`] intake sees, and [`ingest`], which runs a batch through
//! intake in the caller's transaction. No protocol lives here; each channel turns its own
//! payloads into [`ChatMessage`]s first.
//!
//! A chat sender is a customer identity of its own, `<channel>:<account>:<sender id>`; an
//! email address the platform or relay gives is recorded on it and never used to merge it
//! with a mail customer (that takes a verified signal). Messages are idempotent per
//! (channel, account, external id): the Message-ID intake dedups by is derived from them.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::channels::email::compose;
use crate::channels::email::parse::{AttachmentMeta, MAX_TEXT_BYTES, clean_text, html_to_text};
use crate::clock::db_time;
use crate::domain::MessageKind;
use crate::domain::address::Mailbox;
use crate::domain::inbound::Inbound;
use crate::domain::{Channel, TicketId};
use crate::intake::pipeline::Pipeline;
use crate::intake::{BatchItem, Outcome};
use crate::store::messages;
use crate::store::{Store, cursors, outbox};

/// Longest ticket subject taken from a chat message's first line.
const SUBJECT_CHARS: usize = 120;

/// A chat message, validated by its channel, ready for intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The channel's id of this message; unique per (channel, account).
    pub external_id: String,
    /// The channel's id of the conversation (phone number, chat id...): one ticket thread.
    pub conversation_id: String,
    pub sender: ChatSender,
    pub text: String,
    pub html: Option<String>,
    /// When the message was sent, if the channel says.
    pub sent_at: Option<DateTime<Utc>>,
    pub attachments: Vec<ChatAttachment>,
    /// The sender's phone number as the platform verified it (never from a relay's JSON).
    pub verified_phone: Option<String>,
    /// The channel's id of the message this one answers (in the form of `external_id`),
    /// when the platform says: a reply to one of our sent messages joins its ticket.
    pub reply_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSender {
    pub id: String,
    pub name: String,
    /// Lower-cased; checked to look like an address (one `@`, no spaces or brackets).
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatAttachment {
    pub name: String,
    pub content_type: String,
    /// The decoded bytes.
    pub data: Vec<u8>,
}

/// What became of one chat message in intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub external_id: String,
    /// The ticket it joined or opened (None: not on a ticket, e.g. unprocessable).
    pub ticket_id: Option<TicketId>,
    /// It was stored before (a retry or a re-poll).
    pub duplicate: bool,
}

/// Whether `t` is a bare media type (`image/png`) of RFC 6838 §4.2 names: what a platform
/// says a file is, from a stranger's message, goes into stored data and mail headers.
pub fn is_media_type(t: &str) -> bool {
    let name = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    t.split_once('/').is_some_and(|(a, b)| name(a) && name(b))
}

/// The customer identity of a chat sender: control characters (a bell, an escape
/// sequence) are left out, so that an identity is safe to show anywhere.
pub fn identity(channel: Channel, account: &str, sender_id: &str) -> String {
    let id: String = clean_text(sender_id, 512)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    format!("{channel}:{account}:{id}")
}

/// The Message-ID a chat message is stored under: a digest of (account, external id) at
/// `<channel>.postdesk.invalid` (never one of ours, never a mail's), so that a retry is
/// found as a copy and no outside text ends up in a Message-ID.
pub fn message_id(channel: Channel, account: &str, external_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(account.as_bytes());
    h.update([0]);
    h.update(external_id.as_bytes());
    let hex = hex::encode(h.finalize());
    format!(
        "{}@{channel}.postdesk.invalid",
        hex.get(..40).unwrap_or(&hex)
    )
}

/// A chat message as intake sees it; `raw` is the record kept for it.
pub fn to_inbound(channel: Channel, account: &str, m: &ChatMessage, raw: &[u8]) -> Inbound {
    let mut text = m.text.clone();
    if text.trim().is_empty()
        && let Some(html) = &m.html
    {
        text = html_to_text(html);
    }
    let body_text = clean_text(&text, MAX_TEXT_BYTES);
    let first_line = body_text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut subject: String = first_line.chars().take(SUBJECT_CHARS).collect();
    if subject.is_empty() && !m.attachments.is_empty() {
        subject = format!("({} attachment(s))", m.attachments.len());
    }
    let name = clean_text(&m.sender.name, 256);
    Inbound {
        channel,
        account: Some(account.to_string()),
        external_id: Some(m.external_id.clone()),
        conversation: Some(m.conversation_id.clone()),
        reply_to_external: m.reply_to.clone(),
        verified_phone: m
            .verified_phone
            .as_deref()
            .and_then(crate::profile::phone_number),
        sender_email: m.sender.email.clone(),
        message_id: message_id(channel, account, &m.external_id),
        from: Some(Mailbox {
            name: (!name.is_empty()).then_some(name),
            address: identity(channel, account, &m.sender.id),
        }),
        from_count: 1,
        subject,
        date: m.sent_at.map(|t| t.timestamp()),
        first_text_len: body_text.len(),
        text_parts: 1,
        html_only: m.text.trim().is_empty() && m.html.is_some(),
        body_text,
        attachments: m
            .attachments
            .iter()
            .map(|a| AttachmentMeta {
                filename: Some(clean_text(&a.name, 256)),
                content_type: clean_text(&a.content_type, 256),
                size: a.data.len(),
            })
            .collect(),
        raw_sha256: hex::encode(Sha256::digest(raw)),
        body_sha256: hex::encode(Sha256::digest(m.text.as_bytes())),
        ..Inbound::default()
    }
}

/// Runs `batch` (each message with the raw record kept for it) of `channel`/`account`
/// through intake in the caller's transaction: one [`Ingested`] per message, in order.
pub async fn ingest(
    pipeline: &Pipeline,
    conn: &mut crate::store::Conn,
    channel: Channel,
    account: &str,
    batch: &[(ChatMessage, Vec<u8>)],
) -> anyhow::Result<Vec<Ingested>> {
    let parsed: Vec<Inbound> = batch
        .iter()
        .map(|(m, raw)| to_inbound(channel, account, m, raw))
        .collect();
    let items: Vec<BatchItem<'_>> = batch
        .iter()
        .zip(&parsed)
        .map(|((_, raw), p)| BatchItem::new(raw, Some(p), None))
        .collect();
    let outcomes = pipeline.ingest_many(conn, &items).await?;
    // Counted when decided, inside the caller's transaction: a page that fails to commit
    // comes back and counts again (rare; the cursor did not move).
    metrics::counter!("postdesk_ingested_messages_total", "source" => format!("{channel}:{account}"))
        .increment(batch.len() as u64);
    let mut out = Vec::with_capacity(batch.len());
    for ((m, _), o) in batch.iter().zip(outcomes) {
        let (ticket, duplicate) = match o {
            Outcome::NewTicket { ticket, .. } | Outcome::Joined { ticket, .. } => {
                (Some(ticket), false)
            }
            Outcome::Duplicate { row } => (messages::find_ticket_of_row(conn, row).await?, true),
            Outcome::Bounce { ticket, .. } | Outcome::Held { ticket, .. } => (ticket, false),
            Outcome::AgentMail { ticket, .. } => (ticket, false),
            Outcome::Unprocessable { .. } | Outcome::Rejected { .. } => (None, false),
        };
        out.push(Ingested {
            external_id: m.external_id.clone(),
            ticket_id: ticket,
            duplicate,
        });
    }
    Ok(out)
}

/// Disables a channel account for the credentials with fingerprint `token_fp` and mails
/// the admins (`[admin] email` and the `admin = true` agents) why and what to do
/// (`remedy`), once per refused credential, in one transaction.
pub async fn disable_and_alert(
    store: &Store,
    pipeline: &Pipeline,
    channel: Channel,
    account: &str,
    token_fp: &str,
    reason: &str,
    remedy: &str,
) -> anyhow::Result<()> {
    let now = db_time(pipeline.clock().now());
    let mut tx = store.begin_write().await?;
    let first = cursors::disable(&mut tx, channel, account, reason, token_fp, &now).await?;
    tracing::error!("{channel} account {account:?} disabled: {reason}. {remedy}");
    let config = pipeline.config();
    let mut admins: Vec<String> = config.admin_email.iter().cloned().collect();
    admins.extend(
        config
            .agents
            .iter()
            .filter(|a| a.admin)
            .map(|a| a.email.clone()),
    );
    admins.sort();
    admins.dedup();
    if first && !admins.is_empty() {
        let lines = vec![
            format!("The {channel} account {account:?} has been disabled."),
            compose::neutralised(reason, 500),
            String::new(),
            "Customers' messages wait on the platform and answers wait in the outbox.".to_string(),
            remedy.to_string(),
        ];
        let mail = compose::internal_mail(
            config,
            pipeline.templates(),
            &compose::InternalMail {
                template: "agent-notice",
                ticket: None,
                to: &admins,
                data: serde_json::json!({
                    "what": format!("the {channel} account {account:?} is disabled"),
                    "lines": lines,
                }),
                urgent: true,
            },
        )?;
        outbox::insert_outbox(
            &mut tx,
            &outbox::NewOutbox {
                message_row: None,
                ticket_id: None,
                kind: MessageKind::Receipt.as_str(),
                message_id: &mail.message_id,
                mail_from: &config.smtp.from.address,
                rcpt_to: &mail.to,
                raw: &mail.raw,
                now: &now,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_bare_media_types_pass() {
        assert!(super::is_media_type("image/png"));
        assert!(super::is_media_type("application/vnd.ms-excel"));
        assert!(!super::is_media_type("text/html\r\nX-Evil: 1"));
        assert!(!super::is_media_type("text/plain; charset=utf-8"));
        assert!(!super::is_media_type("image/"));
        assert!(!super::is_media_type("png"));
        assert!(!super::is_media_type("图片/png"));
    }

    use super::*;

    #[test]
    fn a_json_message_id_is_what_it_was_before_the_chat_channels_shared_it() {
        // Stored JSON-channel messages are found as copies by this id: it must not move.
        let id = message_id(Channel::Json, "sms", "sms-1");
        assert!(id.ends_with("@json.postdesk.invalid"), "{id}");
        assert_eq!(id.split('@').next().unwrap().len(), 40);
        assert_ne!(id, message_id(Channel::Json, "sms", "sms-2"));
        assert_ne!(id, message_id(Channel::Json, "sms2", "sms-1"));
    }

    #[test]
    fn an_identity_is_cleaned_of_control_characters() {
        let id = identity(Channel::Json, "sms", "+49\u{7}151");
        assert!(!id.contains('\u{7}'), "{id:?}");
        assert!(id.starts_with("json:sms:"));
    }
}
