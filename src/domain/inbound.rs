//! The channel-neutral inbound message: what every channel hands to intake. No I/O.

use serde::Serialize;

use super::Channel;
use super::address::Mailbox;

/// Signals used by the RFC 3834 auto-reply rules and loop protection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AutoSignals {
    /// The Auto-Submitted value, lowercased, when present.
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: bool,
    pub list_unsubscribe: bool,
    /// `Return-Path: <>`.
    pub return_path_null: bool,
    /// X-Autoreply, X-Autorespond, X-Auto-Response-Suppress: All/OOF on an incoming mail.
    pub x_autoreply: bool,
    pub feedback_report: bool,
}

/// What a `multipart/report` (RFC 6522) says: a delivery status notification (RFC 3464),
/// a read receipt (RFC 8098 disposition-notification) or an abuse feedback report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryReport {
    /// The report-type parameter, lowercased: `delivery-status`, `disposition-notification`,
    /// `feedback-report`...
    pub report_type: String,
    /// Message-ID of the message the report is about, normalised.
    pub original_message_id: Option<String>,
    /// Failed recipients with their status code, e.g. ("bob@example.com", "5.1.1").
    pub failed: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentMeta {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: usize,
}

/// One of our sent chat messages: (channel, account, conversation, external id).
pub type ChatSentKey = (String, String, String, String);

/// A message as intake sees it, whatever channel brought it. Email fills it from MIME
/// (`channels::email::parse`); other channels from their own payloads, leaving the
/// mail-only parts (threading headers, loop signals, reports) empty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inbound {
    /// The channel it came through.
    pub channel: Channel,
    /// The channel account (a `[[channel.json]]` account); None for email.
    pub account: Option<String>,
    /// The channel's own id for the message (unique per channel and account); None for
    /// email, whose Message-ID is the key.
    pub external_id: Option<String>,
    /// The channel's conversation (chat, thread) the message belongs to, if it has one:
    /// the same conversation of the same account means the same open ticket.
    pub conversation: Option<String>,
    /// The phone number the platform verified for the sender (Telegram's own contact
    /// card), normalised by `profile::phone_number`.
    pub verified_phone: Option<String>,
    /// The channel's id of the message this one answers (chat channels): one of ours
    /// names the ticket it was sent on.
    pub reply_to_external: Option<String>,
    /// The email address a chat channel says the sender has: recorded on the identity,
    /// never trusted to merge it with a mail customer.
    pub sender_email: Option<String>,
    pub message_id: String,
    pub synthetic_id: bool,
    pub in_reply_to: Vec<String>,
    /// References then In-Reply-To, oldest first, without duplicates.
    pub references: Vec<String>,
    pub from: Option<Mailbox>,
    /// How many From mailboxes (across all From headers) the message has.
    pub from_count: usize,
    pub sender: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    /// Delivered-To, X-Original-To and Envelope-To, lowercased.
    pub envelope_to: Vec<String>,
    pub subject: String,
    /// Date header as unix seconds, when present and sane.
    pub date: Option<i64>,
    /// The text of every text part, in order, separated by a line break (HTML parts
    /// rendered to text).
    pub body_text: String,
    /// Every text part is HTML (rendered to text).
    pub html_only: bool,
    /// How many bytes at the start of `body_text` are the first text part: agents'
    /// commands are read from it alone.
    pub first_text_len: usize,
    /// The first text part is HTML (rendered to text).
    pub first_part_html: bool,
    /// How many text parts `body_text` joins.
    pub text_parts: usize,
    pub attachments: Vec<AttachmentMeta>,
    pub auto: AutoSignals,
    pub report: Option<DeliveryReport>,
    /// SHA-256 of the raw message, hex.
    pub raw_sha256: String,
    /// SHA-256 of the body (everything after the header block), hex: copies of one mail
    /// delivered to two mailboxes differ in their trace headers but not here.
    pub body_sha256: String,
    /// Anything odd noticed while parsing, in words.
    pub problems: Vec<String>,
}

impl Inbound {
    /// The first text part: where agents' commands are read from.
    pub fn first_text(&self) -> &str {
        let mut end = self.first_text_len.min(self.body_text.len());
        while !self.body_text.is_char_boundary(end) {
            end -= 1;
        }
        self.body_text.get(..end).unwrap_or_default()
    }

    /// Every recipient address: To, Cc and the envelope headers.
    pub fn all_recipients(&self) -> impl Iterator<Item = &str> {
        self.to
            .iter()
            .chain(self.cc.iter())
            .map(|m| m.address.as_str())
            .chain(self.envelope_to.iter().map(String::as_str))
    }
}
