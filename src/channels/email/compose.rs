//! Composes outgoing mail: template → subject and body → a complete RFC 5322 message with
//! our own Message-ID and the threading headers, built with lettre.
//!
//! The raw bytes are produced once, here, and stored in the outbox: every send attempt
//! sends exactly the same bytes, so the Message-ID never changes between retries.
//!
//! Five kinds of mail, all pure functions of their input:
//!
//! - to customers: the [`acknowledgement`] of a new ticket and an agent's answer
//!   ([`customer_reply`]), Reply-To the ticket's customer token address;
//! - to agents: the [`agent_notification`] of a new ticket or message, the [`receipt`] of
//!   the commands in an agent's reply and the [`held_notice`] of a message that claimed to
//!   come from an agent but was not trusted.
//!
//! Everything sent to one agent about one ticket forms one thread in their mail client:
//! each mail has a fresh Message-ID but points at the same, never sent, thread root
//! ([`thread_root_id`]) in `In-Reply-To`/`References` (RFC 5322 §3.6.4; Thunderbird and
//! Gmail), and carries the same `Thread-Topic` and `Thread-Index` (Outlook and Exchange
//! group a conversation by the first 22 bytes of `Thread-Index`, MS-OXOMSG 2.2.1.3).
//! Gmail also wants the same subject, so the notification subject depends only on the
//! ticket's number and subject.
//!
//! Every value that came from outside (names, subjects, message text, claimed senders) is
//! cleaned here before it reaches a template or a header: single-line values lose control
//! and bidirectional-override characters and are cut; message text keeps only `\n` and `\t`.
//! Values are template *data*, never template source (see `templates`).

use anyhow::{Context, Result};
use base64::Engine as _;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox as LettreMailbox, Message, MultiPart, SinglePart};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::commands::table::cheat_sheet;
use crate::config::Config;
use crate::domain::address::{Mailbox, token_address};
use crate::domain::{INTERNAL_MARKER, Priority, REPLY_ABOVE_MARKER, Status, TicketId};
use crate::outbound::templates::{ScriptKey, Templates};

/// A mail ready for the outbox.
#[derive(Debug, Clone)]
pub struct Composed {
    /// Normalised (no angle brackets), as stored in `messages.message_id`.
    pub message_id: String,
    pub subject: String,
    pub body: String,
    pub to: Vec<String>,
    pub raw: Vec<u8>,
}

/// Prefix of every Message-ID we generate; lets us recognise our own mail coming back.
pub const OWN_ID_PREFIX: &str = "pd.";

/// Longest customer message quoted in a notification, in characters; the rest is counted.
pub const MAX_NOTIFY_TEXT_CHARS: usize = 20_000;

/// Message-IDs kept in `References`: the root and the newest are what threading needs.
const MAX_REFERENCES: usize = 20;

/// Longest single-line value (a name, a reason, a claimed sender) shown in a body.
const MAX_LINE_CHARS: usize = 250;

/// Entries shown per list in a receipt or a held notice; the rest are counted.
pub const MAX_LIST_ENTRIES: usize = 100;

/// A new Message-ID of ours for `ticket`: `pd.<ticket>.<random>@<domain>`, normalised.
pub fn new_message_id(ticket: TicketId, domain: &str) -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{OWN_ID_PREFIX}{ticket}.{}@{}",
        hex::encode(bytes),
        domain.to_lowercase()
    )
}

/// The Message-ID every mail to agents about `ticket` points at, so that they form one
/// thread: `pd.<ticket>.thread@<domain>`, normalised. No message carries it as its own id.
pub fn thread_root_id(ticket: TicketId, domain: &str) -> String {
    format!("{OWN_ID_PREFIX}{ticket}.thread@{}", domain.to_lowercase())
}

/// True when `message_id` (normalised) is one we generated.
pub fn is_own_message_id(message_id: &str, domain: &str) -> bool {
    is_own_message_id_of(message_id, std::slice::from_ref(&domain))
}

/// True when `message_id` (normalised) has the form of ours (`pd.…@domain`) in one of
/// `domains`.
pub fn is_own_message_id_of<D: AsRef<str>>(message_id: &str, domains: &[D]) -> bool {
    message_id.starts_with(OWN_ID_PREFIX)
        && message_id.rsplit_once('@').is_some_and(|(_, d)| {
            domains
                .iter()
                .any(|own| d.eq_ignore_ascii_case(own.as_ref()))
        })
}

fn lettre_mailbox(m: &Mailbox) -> Result<LettreMailbox> {
    let addr = m
        .address
        .parse()
        .with_context(|| format!("{:?} is not an address lettre accepts", m.address))?;
    Ok(LettreMailbox::new(
        m.name.as_ref().map(|n| n.replace(['\r', '\n'], " ")),
        addr,
    ))
}

/// Characters that reorder the text around them (Unicode bidi embeddings, overrides and
/// isolates); shown to a person they can make a hostile value read as something else.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text from outside as one clean line of at most `max` characters: what team mails show
/// of a subject or an address (control and bidi characters removed).
pub fn plain_line(s: &str, max: usize) -> String {
    one_line(s, max)
}

/// A value from outside as one line: controls and line or paragraph separators become
/// spaces, format characters (bidi controls, zero-width and invisible marks) vanish, at
/// most `max` characters, trimmed. Every outside value a template gets goes through this
/// (or, for message text, [`clean_text`]).
fn one_line(s: &str, max: usize) -> String {
    let cut: String = s
        .chars()
        .filter(|c| !is_bidi_control(*c) && !crate::domain::is_format_char(*c))
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{0085}') {
                ' '
            } else {
                c
            }
        })
        .take(max)
        .collect();
    cut.trim().to_string()
}

/// Subjects are one line: strip controls and cut very long ones (RFC 5322 §2.1.1 wants
/// lines under 998 characters; encoded words take care of folding).
fn clean_subject(s: &str) -> String {
    one_line(s, 250)
}

/// `subject` with the ticket tag `[#N]` in front, unless it already holds it.
fn tagged_subject(ticket: TicketId, subject: String) -> String {
    if subject.contains(&format!("[#{ticket}]")) {
        subject
    } else {
        format!("[#{ticket}] {subject}")
    }
}

/// Multi-line text from outside: line breaks become `\n`, `\t` stays, every other control
/// and bidi control character goes.
fn clean_text(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .filter(|c| !is_bidi_control(*c))
        .filter_map(|c| match c {
            '\r' | '\u{2028}' | '\u{2029}' | '\u{0085}' => Some('\n'),
            '\n' | '\t' => Some(c),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// The customer's message for a notification: cleaned, cut to `max` characters and indented
/// by two spaces, so that none of its lines can pass for a line of ours (a context line, a
/// command). Returns the text and how many characters were left out.
fn indented_excerpt(text: &str, max: usize) -> (String, usize) {
    let clean = clean_text(text);
    let clean = clean.trim_matches('\n');
    let kept: String = clean.chars().take(max).collect();
    let omitted = clean.chars().count().saturating_sub(max);
    let indented = kept
        .lines()
        .map(|l| format!("  {l}").trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    (indented, omitted)
}

/// Up to [`MAX_LIST_ENTRIES`] values as single lines, plus a line counting the rest.
fn bounded_lines(values: &[String]) -> Vec<String> {
    let mut v: Vec<String> = values
        .iter()
        .take(MAX_LIST_ENTRIES)
        .map(|s| one_line(s, MAX_LINE_CHARS))
        .collect();
    if values.len() > MAX_LIST_ENTRIES {
        v.push(format!("… and {} more", values.len() - MAX_LIST_ENTRIES));
    }
    v
}

/// `Name <address>` (or the address) as one line, for bodies; headers use lettre.
fn display_line(m: &Mailbox) -> String {
    let address = one_line(&m.address, MAX_LINE_CHARS);
    match m.name.as_deref().map(|n| one_line(n, MAX_LINE_CHARS)) {
        Some(name) if !name.is_empty() => format!("{name} <{address}>"),
        _ => address,
    }
}

/// A mailbox's display name, cleaned; `None` when it has none worth showing.
fn clean_name(m: &Mailbox) -> Option<String> {
    m.name
        .as_deref()
        .map(|n| one_line(n, MAX_LINE_CHARS))
        .filter(|n| !n.is_empty())
}

fn support_name(cfg: &Config) -> String {
    cfg.smtp
        .from
        .name
        .clone()
        .unwrap_or_else(|| cfg.smtp.from.address.clone())
}

/// `support` in every template's data: {name, address}.
pub fn support_json(cfg: &Config) -> serde_json::Value {
    serde_json::json!({ "name": support_name(cfg), "address": cfg.smtp.from.address })
}

/// A Message-ID we are willing to write into `In-Reply-To` or `References`: printable
/// ASCII without spaces or angle brackets, of a sane length. Anything else (ids of hostile
/// mail are copied from its headers) is left out rather than encoded into the header.
fn is_writable_id(id: &str) -> bool {
    (1..=250).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

/// The threading headers of a mail (RFC 5322 §3.6.4), ids normalised.
struct Thread {
    in_reply_to: Option<String>,
    references: Vec<String>,
}

impl Thread {
    /// A reply to `parent`, whose own `References` were `references` (oldest first):
    /// References is theirs plus the parent, bounded to the first and the newest ids.
    fn reply_to(parent: Option<&str>, references: &[String]) -> Thread {
        let parent = parent.filter(|p| is_writable_id(p));
        let mut refs: Vec<String> = references
            .iter()
            .filter(|r| is_writable_id(r))
            .cloned()
            .collect();
        if let Some(p) = parent
            && !refs.iter().any(|r| r == p)
        {
            refs.push(p.to_string());
        }
        let len = refs.len();
        if len > MAX_REFERENCES {
            let newest = refs.split_off(len - (MAX_REFERENCES - 1));
            refs.truncate(1);
            refs.extend(newest);
        }
        Thread {
            in_reply_to: parent.map(str::to_string),
            references: refs,
        }
    }

    /// A mail to an agent about `ticket`: a child of the ticket's thread root, or of
    /// `parent` (an agent's message, itself in that thread) when given.
    fn agent_thread(cfg: &Config, ticket: TicketId, parent: Option<&str>) -> Thread {
        let root = thread_root_id(ticket, &cfg.message_id_domain);
        match parent.filter(|p| is_writable_id(p)) {
            Some(p) => Thread::reply_to(Some(p), &[root]),
            None => Thread::reply_to(Some(&root), &[]),
        }
    }
}

/// RFC 3834 §5: `auto-replied` answers a message, `auto-generated` is sent on our own.
#[derive(Clone, Copy)]
enum AutoSubmitted {
    Replied,
    Generated,
}

/// Everything that differs between the mails we send; [`build`] adds the rest.
struct Envelope<'a> {
    /// What is built, for the error message ("the receipt").
    what: &'static str,
    ticket_id: TicketId,
    /// The first is To, the others Cc; all of them are the envelope recipients.
    recipients: &'a [Mailbox],
    /// Reply-To `support+token@…` under the support display name.
    reply_token: Option<&'a str>,
    subject: String,
    body: String,
    /// Also sets `X-Auto-Response-Suppress: All`, so that Exchange does not answer
    /// automatic mail with an out-of-office reply.
    auto_submitted: Option<AutoSubmitted>,
    thread: Thread,
    /// For agents' mail: the ticket's conversation topic, written as `Thread-Topic` with
    /// the ticket's `Thread-Index`.
    outlook_topic: Option<String>,
    /// Further headers, values not yet encoded.
    extra: Vec<(&'static str, String)>,
    /// A segment for our Message-ID after the ticket (`pd.<ticket>.<tag>.<random>`).
    id_tag: Option<String>,
    /// Files sent with the text (an agent's attachments, relayed).
    attachments: &'a [OutAttachment],
}

/// A file attached to a mail we send.
#[derive(Debug, Clone)]
pub struct OutAttachment {
    pub filename: String,
    /// `type/subtype`; anything unparseable is sent as application/octet-stream.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl<'a> Envelope<'a> {
    /// A plain mail: no Reply-To, not automatic, not threaded, no extra headers.
    fn new(
        what: &'static str,
        ticket_id: TicketId,
        recipients: &'a [Mailbox],
        (subject, body): (String, String),
    ) -> Self {
        Envelope {
            what,
            ticket_id,
            recipients,
            reply_token: None,
            subject,
            body,
            auto_submitted: None,
            thread: Thread {
                in_reply_to: None,
                references: Vec::new(),
            },
            outlook_topic: None,
            extra: Vec::new(),
            id_tag: None,
            attachments: &[],
        }
    }

    /// Puts a mail to an agent into the ticket's agent thread (see the module
    /// documentation), as an answer to `parent` when given.
    fn in_agent_thread(
        self,
        cfg: &Config,
        templates: &Templates,
        ticket_subject: &str,
        parent: Option<&str>,
    ) -> Result<Self> {
        // Between our two marker lines: a reply is cut at the first whatever the client
        // does, and text still holding either is never relayed to a customer.
        let body = format!(
            "{REPLY_ABOVE_MARKER}\n\n{}\n\n{INTERNAL_MARKER}\n",
            self.body.trim_end()
        );
        Ok(Envelope {
            body,
            thread: Thread::agent_thread(cfg, self.ticket_id, parent),
            outlook_topic: Some(ticket_topic(
                cfg,
                templates,
                self.ticket_id,
                ticket_subject,
            )?),
            ..self
        })
    }
}

/// Renders `NAME.subject` (one line, with the ticket tag) and `NAME.txt`.
fn render_mail(
    templates: &Templates,
    name: &str,
    ticket: TicketId,
    data: &serde_json::Value,
) -> Result<(String, String)> {
    let subject = templates.render(&format!("{name}.subject"), data)?;
    let body = templates.render(&format!("{name}.txt"), data)?;
    Ok((tagged_subject(ticket, clean_subject(&subject)), body))
}

fn raw_header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// The `Thread-Index` shared by every agent mail about `ticket`: the 22-byte header block
/// of MS-OXOMSG 2.2.1.3 (a reserved 0x01, a 5-byte time and a 16-byte GUID), here derived
/// from the thread root id so it is the same every time without being stored.
fn thread_index(ticket: TicketId, domain: &str) -> String {
    let digest = Sha256::digest(thread_root_id(ticket, domain).as_bytes());
    let block: Vec<u8> = std::iter::once(1u8)
        .chain(digest.iter().copied().take(21))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(block)
}

/// Builds the message: From the support address, our Message-ID, the ticket header, then
/// what `e` asks for.
fn build(cfg: &Config, e: Envelope<'_>) -> Result<Composed> {
    let (first, rest) = e
        .recipients
        .split_first()
        .with_context(|| format!("Building {}: no recipient", e.what))?;
    let message_id = match &e.id_tag {
        Some(tag) => {
            let plain = new_message_id(e.ticket_id, &cfg.message_id_domain);
            let prefix = format!("{OWN_ID_PREFIX}{}.", e.ticket_id);
            match plain.strip_prefix(&prefix) {
                Some(rest) => format!("{prefix}{tag}.{rest}"),
                None => plain,
            }
        }
        None => new_message_id(e.ticket_id, &cfg.message_id_domain),
    };
    let mut builder = Message::builder()
        .from(lettre_mailbox(&cfg.smtp.from)?)
        .to(lettre_mailbox(first)?)
        .subject(e.subject.clone())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(raw_header("X-Postdesk-Ticket", e.ticket_id.to_string()));
    for cc in rest {
        builder = builder.cc(lettre_mailbox(cc)?);
    }
    if let Some(token) = e.reply_token {
        builder = builder.reply_to(lettre_mailbox(&Mailbox {
            name: cfg.smtp.from.name.clone(),
            address: token_address(&cfg.primary_address(), token),
        })?);
    }
    if let Some(kind) = e.auto_submitted {
        let value = match kind {
            AutoSubmitted::Replied => "auto-replied",
            AutoSubmitted::Generated => "auto-generated",
        };
        builder = builder
            .raw_header(raw_header("Auto-Submitted", value.to_string()))
            .raw_header(raw_header("X-Auto-Response-Suppress", "All".to_string()));
    }
    if let Some(parent) = &e.thread.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    if !e.thread.references.is_empty() {
        builder = builder.references(
            e.thread
                .references
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    if let Some(topic) = e.outlook_topic {
        builder = builder
            .raw_header(raw_header("Thread-Topic", topic))
            .raw_header(raw_header(
                "Thread-Index",
                thread_index(e.ticket_id, &cfg.message_id_domain),
            ));
    }
    for (name, value) in e.extra {
        builder = builder.raw_header(raw_header(name, value));
    }
    let msg = if e.attachments.is_empty() {
        builder
            .header(ContentType::TEXT_PLAIN)
            .body(e.body.clone())
            .with_context(|| format!("Building {}", e.what))?
    } else {
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(e.body.clone()));
        for a in e.attachments {
            let ct = ContentType::parse(&a.content_type).unwrap_or_else(|_| {
                ContentType::parse("application/octet-stream").unwrap_or(ContentType::TEXT_PLAIN)
            });
            parts = parts
                .singlepart(Attachment::new(one_line(&a.filename, 200)).body(a.bytes.clone(), ct));
        }
        builder
            .multipart(parts)
            .with_context(|| format!("Building {}", e.what))?
    };
    Ok(Composed {
        message_id,
        subject: e.subject,
        body: e.body,
        to: e.recipients.iter().map(|m| m.address.clone()).collect(),
        raw: msg.formatted(),
    })
}

/// The parts of a customer message an acknowledgement replies to.
pub struct AckInput<'a> {
    pub ticket_id: TicketId,
    pub ticket_subject: &'a str,
    pub token: &'a str,
    pub customer: &'a Mailbox,
    /// The customer's Message-ID (normalised), unless it was synthetic.
    pub in_reply_to: Option<&'a str>,
    /// The customer's References (normalised), oldest first.
    pub references: &'a [String],
    /// What picks the variant of `ack` (see `Templates::chain`): the customer's language
    /// and tier, the channel, and `negative` for a strongly negative message
    /// (`templates::mood_of`). `None` where unknown.
    pub language: Option<&'a str>,
    pub tier: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub mood: Option<&'a str>,
    /// The time now (RFC 3339), for the `greeting` helper.
    pub now: &'a str,
}

/// Builds the acknowledgement of a new ticket from the variant of `ack.subject` / `ack.txt`
/// that the customer's language, tier, channel and mood pick (`Templates::render_script`).
///
/// Template data: `ticket` {id, subject, token}, `customer` {name, email, language, tier,
/// timezone} (null where unknown), `support` {name, address}, `now` (RFC 3339).
pub fn acknowledgement(cfg: &Config, templates: &Templates, a: &AckInput<'_>) -> Result<Composed> {
    let word = |v: Option<&str>| {
        v.map(|v| one_line(v, MAX_LINE_CHARS))
            .filter(|v| !v.is_empty())
    };
    let data = serde_json::json!({
        "ticket": { "id": a.ticket_id, "subject": clean_subject(a.ticket_subject), "token": a.token },
        "customer": {
            "name": clean_name(a.customer),
            "email": one_line(&a.customer.address, MAX_LINE_CHARS),
            "language": word(a.language),
            "tier": word(a.tier),
            "timezone": null,
        },
        "support": support_json(cfg),
        "now": one_line(a.now, 64),
    });
    let key = ScriptKey {
        language: a.language,
        tier: a.tier,
        channel: a.channel,
        mood: a.mood,
    };
    let subject = templates.render_script("ack.subject", &key, &data)?;
    let body = templates.render_script("ack.txt", &key, &data)?;
    let mail = (tagged_subject(a.ticket_id, clean_subject(&subject)), body);
    let recipients = std::slice::from_ref(a.customer);
    build(
        cfg,
        Envelope {
            reply_token: Some(a.token),
            auto_submitted: Some(AutoSubmitted::Replied),
            thread: Thread::reply_to(a.in_reply_to, a.references),
            ..Envelope::new("the acknowledgement", a.ticket_id, recipients, mail)
        },
    )
}

/// What the answer bot sends: the article that answers a new ticket.
pub struct BotAnswerInput<'a> {
    pub ticket_id: TicketId,
    pub ticket_subject: &'a str,
    pub token: &'a str,
    pub customer: &'a Mailbox,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
    /// The customer's language (the article's): picks the template variant
    /// (`bot-answer.zh.txt`...) and its wording.
    pub language: &'a str,
    pub tier: &'a str,
    /// The channel the customer wrote on (`email`...): a qualifier of the variant too.
    pub channel: Option<&'a str>,
    pub article_id: i64,
    pub article_title: &'a str,
    /// The article as plain text (Markdown rendered).
    pub article_text: &'a str,
    pub links: &'a [String],
    /// Files sent along (images, PDFs); names of those left out for size are listed.
    pub attachments: &'a [OutAttachment],
    pub score: f32,
    /// The time now (RFC 3339), for the `greeting` helper.
    pub now: &'a str,
}

/// Template data for `bot-answer.subject` / `bot-answer.txt`: `ticket` {id, subject,
/// token}, `customer` {name, email, language, tier, timezone}, `article` {id, title, text,
/// links, files}, `score` (two decimals), `handoff_words` (`[bot] handoff_words`, which
/// always hold "human", "agent" and "人工"), `now`, `support` {name, address}. Every value
/// from outside is cleaned (one line; the article text keeps its lines).
pub fn bot_answer_data(cfg: &Config, b: &BotAnswerInput<'_>) -> serde_json::Value {
    let word = |v: &str| Some(one_line(v, MAX_LINE_CHARS)).filter(|v| !v.is_empty());
    let lines = |l: &mut dyn Iterator<Item = &str>| {
        l.take(MAX_LIST_ENTRIES)
            .map(|x| one_line(x, MAX_LINE_CHARS))
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
    };
    serde_json::json!({
        "ticket": {
            "id": b.ticket_id,
            "subject": clean_subject(b.ticket_subject),
            "token": one_line(b.token, MAX_LINE_CHARS),
        },
        "customer": {
            "name": clean_name(b.customer),
            "email": one_line(&b.customer.address, MAX_LINE_CHARS),
            "language": word(b.language),
            "tier": word(b.tier),
            "timezone": null,
        },
        "article": {
            "id": b.article_id,
            "title": one_line(b.article_title, MAX_LINE_CHARS),
            "text": clean_text(b.article_text).trim().to_string(),
            "links": lines(&mut b.links.iter().map(String::as_str)),
            "files": lines(&mut b.attachments.iter().map(|a| a.filename.as_str())),
        },
        "score": format!("{:.2}", b.score),
        "handoff_words": lines(&mut cfg.bot.handoff_words.iter().map(String::as_str)),
        "now": one_line(b.now, 64),
        "support": support_json(cfg),
    })
}

/// The bot's answer as (subject with the ticket tag, body), from the variant of
/// `bot-answer` that the customer's language, tier and channel pick
/// (`Templates::render_script`).
pub fn bot_answer_text(
    cfg: &Config,
    templates: &Templates,
    b: &BotAnswerInput<'_>,
) -> Result<(String, String)> {
    let data = bot_answer_data(cfg, b);
    let key = ScriptKey {
        language: Some(b.language),
        tier: Some(b.tier),
        channel: b.channel,
        mood: None,
    };
    let subject = templates.render_script("bot-answer.subject", &key, &data)?;
    let body = templates.render_script("bot-answer.txt", &key, &data)?;
    Ok((tagged_subject(b.ticket_id, clean_subject(&subject)), body))
}

/// Builds the bot's answer ([`bot_answer_text`]): the article's text inline, its links
/// listed, its files attached, and how to reach a person. Automatic (`Auto-Submitted:
/// auto-replied`), threaded under the customer's message, with the ticket's reply address,
/// so a reply ("human", "人工") comes back to the ticket.
pub fn bot_answer(cfg: &Config, templates: &Templates, b: &BotAnswerInput<'_>) -> Result<Composed> {
    let mail = bot_answer_text(cfg, templates, b)?;
    let recipients = std::slice::from_ref(b.customer);
    build(
        cfg,
        Envelope {
            reply_token: Some(b.token),
            auto_submitted: Some(AutoSubmitted::Replied),
            thread: Thread::reply_to(b.in_reply_to, b.references),
            attachments: b.attachments,
            ..Envelope::new("the bot's answer", b.ticket_id, recipients, mail)
        },
    )
}

/// The subject of every notification about `ticket`, which is also the conversation topic
/// of all agent mail about it. Rendered from `notify.subject` with the ticket's number and
/// subject only, so it cannot change between notifications (Gmail splits a thread when the
/// subject changes).
fn ticket_topic(
    cfg: &Config,
    templates: &Templates,
    ticket: TicketId,
    ticket_subject: &str,
) -> Result<String> {
    let data = serde_json::json!({
        "ticket": { "id": ticket, "subject": clean_subject(ticket_subject) },
        "support": support_json(cfg),
    });
    Ok(tagged_subject(
        ticket,
        clean_subject(&templates.render("notify.subject", &data)?),
    ))
}

/// Why an agent is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyEvent {
    /// A ticket was opened.
    NewTicket,
    /// The customer (or a Cc'd customer) wrote on a ticket.
    CustomerReply,
    /// An invited collaborator wrote on a ticket.
    Collaborator,
    /// Someone who takes no part in the ticket reached it through threading headers; the
    /// message was held, and the agent decides whether to admit the sender.
    HeldStranger,
}

impl NotifyEvent {
    /// The name templates see as `event.name`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::NewTicket => "new_ticket",
            NotifyEvent::CustomerReply => "customer_reply",
            NotifyEvent::Collaborator => "collaborator",
            NotifyEvent::HeldStranger => "held_stranger",
        }
    }
}

/// What a notification shows of the customer beyond tier and language (issue 14).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerExtra {
    pub company: Option<String>,
    pub plan: Option<String>,
    /// Agents' notes on the customer, newest first: (text, agent, day).
    pub notes: Vec<(String, String, String)>,
    /// The tier's plan prompt (`profile::plan_prompt`).
    pub plan_prompt: Option<String>,
}

/// What a notification to one agent says.
pub struct NotifyInput<'a> {
    pub ticket_id: TicketId,
    pub ticket_subject: &'a str,
    pub status: Status,
    pub priority: Priority,
    pub tags: &'a [String],
    /// The assigned agent's name; `None` when nobody is.
    pub assignee: Option<&'a str>,
    /// The recipient.
    pub agent: &'a Mailbox,
    /// This agent's reply token for this ticket: Reply-To is `support+token@…`.
    pub reply_token: &'a str,
    /// The ticket's customer: who the agent's reply goes to.
    pub customer: &'a Mailbox,
    /// Who wrote the message (the customer, someone copied, a stranger).
    pub sender: &'a Mailbox,
    /// Why the message was held ([`NotifyEvent::HeldStranger`]).
    pub held_reason: Option<&'a str>,
    pub customer_language: Option<&'a str>,
    pub customer_tier: &'a str,
    /// Company, plan, notes and the plan prompt.
    pub customer_extra: &'a CustomerExtra,
    pub open_tickets: i64,
    pub past_tickets: i64,
    /// Why the message joined (or opened) this ticket, in words.
    pub match_reason: &'a str,
    /// When the SLA is due, formatted for people; the line is left out when `None`.
    pub sla_due: Option<&'a str>,
    /// Why a team's new ticket is unassigned (nobody available), said on top.
    pub routing_note: Option<&'a str>,
    /// What triage decided: the category, the team, the forced-human topic.
    pub category: Option<&'a str>,
    pub team: Option<&'a str>,
    pub forced_human: Option<&'a str>,
    /// Macros the rules suggest, shown as ready-to-paste `#macro NAME` lines.
    pub suggested_macros: &'a [String],
    /// Why the answer bot handed the ticket over, with what it knew (issue 14): every key
    /// present, see `intake::unit`'s `handoff_summary`.
    pub handoff: Option<&'a serde_json::Value>,
    /// Open tickets that look like the same problem (issue 15), most similar first.
    pub similar: &'a [SimilarTicket],
    pub event: NotifyEvent,
    /// The message as plain text (HTML already rendered); cleaned, cut and indented here.
    pub message_text: &'a str,
    /// The customer's Message-ID (normalised), written as `X-Postdesk-Customer-Message-Id`
    /// for whoever has to trace a notification back; not a threading header, because the
    /// agent's thread must not depend on the customer's.
    pub customer_message_id: Option<&'a str>,
}

/// An open ticket that looks like the same problem as the notified one.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarTicket {
    pub id: TicketId,
    pub subject: String,
    /// The customer's address or chat identity.
    pub customer: String,
    /// The channel of its customer's latest message.
    pub channel: String,
    pub status: String,
    /// `kb::similar`'s score, 0-1.
    pub score: f32,
    /// The problem ticket it is linked to (`#problem`), if any.
    pub problem: Option<TicketId>,
    /// The start of its latest agent answer, if any.
    pub latest_answer: Option<String>,
}

/// The `#problem N` line that would group the notified ticket with `similar`: the
/// problem one of them is already linked to, else the oldest of them.
pub fn problem_hint(similar: &[SimilarTicket]) -> Option<TicketId> {
    similar
        .iter()
        .find_map(|s| s.problem)
        .or_else(|| similar.iter().map(|s| s.id).min())
}

/// Builds the notification of a new ticket or message to one agent. Reply-To is the
/// agent's token address, so their reply (text and commands) comes back to this ticket.
///
/// Template data for `notify.txt`: `ticket` {id, subject, status, priority, tags (list),
/// tags_text, assignee}, `event` {name, new_ticket, customer_reply, collaborator,
/// held_stranger}, `agent` {name, email}, `customer` (the ticket's, who gets the reply)
/// {name, email, display, language, tier, company, plan, open_tickets, past_tickets},
/// `customer_notes` [{text, agent, day}], `plan_prompt`, `similar` [{id, subject,
/// customer, channel, status, score, problem, latest_answer}], `similar_problem` (the
/// ticket a `#problem` line would name), `sender` (who
/// wrote) {name, email, display, is_customer}, `held_reason`, `match_reason`, `sla_due`
/// (absent when unknown), `message` {text, omitted}, `support` {name, address},
/// `cheat_sheet`.
pub fn agent_notification(
    cfg: &Config,
    templates: &Templates,
    n: &NotifyInput<'_>,
) -> Result<Composed> {
    let subject = ticket_topic(cfg, templates, n.ticket_id, n.ticket_subject)?;
    let tags: Vec<String> = n
        .tags
        .iter()
        .take(MAX_LIST_ENTRIES)
        .map(|t| one_line(t, MAX_LINE_CHARS))
        .filter(|t| !t.is_empty())
        .collect();
    let tags_text = if tags.is_empty() {
        "none".to_string()
    } else {
        tags.join(", ")
    };
    let (text, omitted) = indented_excerpt(n.message_text, MAX_NOTIFY_TEXT_CHARS);
    let data = serde_json::json!({
        "ticket": {
            "id": n.ticket_id,
            "subject": clean_subject(n.ticket_subject),
            "status": n.status.as_str(),
            "priority": n.priority.as_str(),
            "tags": tags,
            "tags_text": tags_text,
            "assignee": n.assignee
                .map(|a| one_line(a, MAX_LINE_CHARS))
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| "nobody".to_string()),
        },
        "event": {
            "name": n.event.as_str(),
            "new_ticket": n.event == NotifyEvent::NewTicket,
            "customer_reply": n.event == NotifyEvent::CustomerReply,
            "collaborator": n.event == NotifyEvent::Collaborator,
            "held_stranger": n.event == NotifyEvent::HeldStranger,
        },
        "sender": {
            "name": clean_name(n.sender),
            "email": one_line(&n.sender.address, MAX_LINE_CHARS),
            "display": display_line(n.sender),
            "is_customer": n.sender.address.eq_ignore_ascii_case(&n.customer.address),
        },
        "held_reason": n.held_reason.map(|r| one_line(r, 2 * MAX_LINE_CHARS)),
        "agent": { "name": clean_name(n.agent), "email": n.agent.address },
        "customer": {
            "name": clean_name(n.customer),
            "email": one_line(&n.customer.address, MAX_LINE_CHARS),
            "display": display_line(n.customer),
            "language": n.customer_language
                .map(|l| one_line(l, MAX_LINE_CHARS))
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| "unknown".to_string()),
            "tier": one_line(n.customer_tier, MAX_LINE_CHARS),
            "company": n.customer_extra.company.as_deref().map(|s| one_line(s, MAX_LINE_CHARS)).filter(|s| !s.is_empty()),
            "plan": n.customer_extra.plan.as_deref().map(|s| one_line(s, MAX_LINE_CHARS)).filter(|s| !s.is_empty()),
            "open_tickets": n.open_tickets,
            "past_tickets": n.past_tickets,
        },
        "match_reason": one_line(n.match_reason, MAX_LINE_CHARS),
        "sla_due": n.sla_due.map(|s| one_line(s, MAX_LINE_CHARS)).filter(|s| !s.is_empty()),
        "category": n.category.map(|s| one_line(s, MAX_LINE_CHARS)),
        "routing_note": n.routing_note.map(|s| one_line(s, MAX_LINE_CHARS)),
        "team": n.team.map(|s| one_line(s, MAX_LINE_CHARS)),
        "forced_human": n.forced_human.map(|s| one_line(s, MAX_LINE_CHARS)),
        "customer_notes": n.customer_extra.notes.iter().take(MAX_LIST_ENTRIES).map(|(text, agent, day)| serde_json::json!({
            "text": neutralised(text, 2 * MAX_LINE_CHARS),
            "agent": one_line(agent, MAX_LINE_CHARS),
            "day": one_line(day, MAX_LINE_CHARS),
        })).collect::<Vec<_>>(),
        "plan_prompt": n.customer_extra.plan_prompt.as_deref().map(|s| one_line(s, 2 * MAX_LINE_CHARS)),
        "suggested_macros": n.suggested_macros.iter().map(|m| format!("#macro {}", one_line(m, MAX_LINE_CHARS))).collect::<Vec<_>>(),
        "handoff": n.handoff,
        "similar": n.similar.iter().take(MAX_LIST_ENTRIES).map(|s| serde_json::json!({
            "id": s.id,
            "subject": clean_subject(&s.subject),
            "customer": one_line(&s.customer, MAX_LINE_CHARS),
            "channel": one_line(&s.channel, MAX_LINE_CHARS),
            "status": one_line(&s.status, MAX_LINE_CHARS),
            "score": format!("{:.2}", s.score),
            "problem": s.problem,
            "latest_answer": s.latest_answer.as_deref().map(|a| neutralised(a, 2 * MAX_LINE_CHARS)).filter(|a| !a.is_empty()),
        })).collect::<Vec<_>>(),
        "similar_problem": problem_hint(n.similar),
        "message": { "text": text, "omitted": omitted },
        "support": support_json(cfg),
        "cheat_sheet": cheat_sheet(),
    });
    let body = templates.render("notify.txt", &data)?;
    let mut extra = Vec::new();
    if let Some(id) = n.customer_message_id.filter(|id| is_writable_id(id)) {
        extra.push(("X-Postdesk-Customer-Message-Id", format!("<{id}>")));
    }
    let recipients = std::slice::from_ref(n.agent);
    let envelope = Envelope {
        reply_token: Some(n.reply_token),
        auto_submitted: Some(AutoSubmitted::Generated),
        extra,
        ..Envelope::new(
            "the agent notification",
            n.ticket_id,
            recipients,
            (subject, body),
        )
    };
    build(
        cfg,
        envelope.in_agent_thread(cfg, templates, n.ticket_subject, None)?,
    )
}

/// The render context of a customer-facing text (an agent's reply, a macro): `ticket`
/// {id, subject}, `customer` {name, email}, `agent` {name}, `support` {name, address}.
/// Every value is cleaned to one line; give it to `Templates::render_macro`.
pub fn macro_data(
    cfg: &Config,
    ticket_id: TicketId,
    ticket_subject: &str,
    customer: &Mailbox,
    agent_name: &str,
) -> serde_json::Value {
    serde_json::json!({
        "ticket": { "id": ticket_id, "subject": clean_subject(ticket_subject) },
        "customer": { "name": clean_name(customer), "email": customer.address },
        "agent": { "name": one_line(agent_name, MAX_LINE_CHARS) },
        "support": support_json(cfg),
    })
}

/// Openings that make a first line a greeting, lower-case.
const GREETINGS: &[&str] = &[
    "hello",
    "hi",
    "hey",
    "dear",
    "good morning",
    "good afternoon",
    "good evening",
    "greetings",
    "bonjour",
    "salut",
    "hallo",
    "guten tag",
    "moin",
    "hola",
    "buenos días",
    "ciao",
    "buongiorno",
    "olá",
    "hej",
    "hei",
    "dzień dobry",
    "merhaba",
    "dobrý den",
    "您好",
    "你好",
    "こんにちは",
    "안녕하세요",
];

/// Closings that make a line a sign-off, lower-case.
const CLOSINGS: &[&str] = &[
    "best",
    "regards",
    "kind regards",
    "thanks",
    "thank you",
    "cheers",
    "sincerely",
    "yours",
    "cordialement",
    "bien à vous",
    "viele grüße",
    "mit freundlichen",
    "lg",
    "saludos",
    "un saluto",
    "cordiali saluti",
    "pozdrawiam",
    "s pozdravem",
    "mvh",
    "med vänlig hälsning",
    "祝好",
    "此致",
    "よろしくお願いします",
    "--",
];

/// `line` starts with `word` as a whole word (case-insensitive).
fn starts_with_word(line: &str, word: &str) -> bool {
    let lower = line.trim_start().to_lowercase();
    lower.strip_prefix(word).is_some_and(|rest| {
        !word.chars().all(|c| c.is_alphabetic())
            || !rest.chars().next().is_some_and(char::is_alphabetic)
    })
}

/// The agent's text already opens with a greeting, so the reply template adds none.
pub fn greets(body: &str) -> bool {
    body.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|first| GREETINGS.iter().any(|g| starts_with_word(first, g)))
}

/// The agent's text already ends with a sign-off or their name, so the reply template
/// does not sign again.
pub fn signs(body: &str, agent_name: &str) -> bool {
    let first_name = agent_name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_lowercase();
    body.lines()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(4)
        .any(|l| {
            CLOSINGS.iter().any(|c| starts_with_word(l, c))
                || (first_name.chars().count() >= 2
                    && l.to_lowercase()
                        .split(|c: char| !c.is_alphanumeric())
                        .any(|w| w == first_name))
        })
}

/// An agent's answer to the customer.
pub struct ReplyInput<'a> {
    pub ticket_id: TicketId,
    pub ticket_subject: &'a str,
    /// The ticket's customer token: Reply-To is `support+token@…`.
    pub customer_token: &'a str,
    /// The customer first (To), then Cc'd customers (Cc). Repeated addresses are sent once.
    pub to: &'a [Mailbox],
    /// The agent's display name, for the signature.
    pub agent_name: &'a str,
    /// The agent's new text, macro text already appended.
    pub body_text: &'a str,
    /// The Message-ID (normalised) this answers, usually the customer's latest.
    pub in_reply_to: Option<&'a str>,
    /// That message's References (normalised), oldest first.
    pub references: &'a [String],
    /// The agent's attachments, relayed with the text.
    pub attachments: &'a [OutAttachment],
    /// The answer resolves the ticket: the rating invitation for the template
    /// (`analytics::rating::invitation`).
    pub rating: Option<serde_json::Value>,
}

/// Builds an agent's answer to the customer, sent from the support address through the
/// `reply.txt` template (the data of [`macro_data`] for the first recipient, plus `body`).
/// A person wrote it, so it is not marked `Auto-Submitted`.
pub fn customer_reply(cfg: &Config, templates: &Templates, r: &ReplyInput<'_>) -> Result<Composed> {
    let mut recipients: Vec<Mailbox> = Vec::with_capacity(r.to.len());
    for m in r.to {
        if !recipients
            .iter()
            .any(|seen| seen.address.eq_ignore_ascii_case(&m.address))
        {
            recipients.push(m.clone());
        }
    }
    let customer = recipients
        .first()
        .context("Building the reply to the customer: no recipient")?;
    let mut data = macro_data(cfg, r.ticket_id, r.ticket_subject, customer, r.agent_name);
    let body_text = clean_text(r.body_text).trim().to_string();
    if let Some(obj) = data.as_object_mut() {
        obj.insert("greeted".into(), greets(&body_text).into());
        obj.insert("signed".into(), signs(&body_text, r.agent_name).into());
        obj.insert("body".to_string(), serde_json::Value::String(body_text));
        if let Some(rating) = &r.rating {
            obj.insert("rating".to_string(), rating.clone());
        }
    }
    let tagged = tagged_subject(r.ticket_id, clean_subject(r.ticket_subject));
    let subject = if tagged
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("re:"))
    {
        tagged
    } else {
        format!("Re: {tagged}")
    };
    let body = templates.render("reply.txt", &data)?;
    build(
        cfg,
        Envelope {
            reply_token: Some(r.customer_token),
            thread: Thread::reply_to(r.in_reply_to, r.references),
            attachments: r.attachments,
            ..Envelope::new(
                "the reply to the customer",
                r.ticket_id,
                &recipients,
                (subject, body),
            )
        },
    )
}

/// What became of the text of an agent's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    SentToCustomer,
    InternalNote,
    /// The reply held only commands (or nothing was sendable).
    NothingSent,
    /// The same text went to the customer moments ago (a double send, a client's retry):
    /// not sent again. The earlier message's row.
    AlreadySent(i64),
}

/// What a receipt tells an agent about their reply.
pub struct ReceiptInput<'a> {
    pub ticket_id: TicketId,
    pub ticket_subject: &'a str,
    pub agent: &'a Mailbox,
    /// This agent's reply token for this ticket, so that answering the receipt (to correct
    /// a rejected command) reaches the ticket like answering a notification does.
    pub reply_token: &'a str,
    /// One line per applied command, e.g. "#status pending: status is now pending".
    pub applied: &'a [String],
    /// (the line as written, why it was rejected).
    pub rejected: &'a [(String, String)],
    /// Command-looking lines below the text, which were therefore not executed.
    pub ignored: &'a [String],
    pub outcome: ReplyOutcome,
    /// Include the full command list (`#help`).
    pub help: bool,
    /// The agent's Message-ID (normalised).
    pub in_reply_to: Option<&'a str>,
}

/// Commands named in a receipt's subject, at most; the rest are counted.
const SUMMARY_COMMANDS: usize = 3;

/// One line saying what a reply did, so receipts differ in a mail client's index:
/// "sent to the customer, #priority high, #assign bob", "note added", "1 rejected".
fn receipt_summary(r: &ReceiptInput<'_>) -> String {
    let mut parts: Vec<String> = Vec::new();
    match r.outcome {
        ReplyOutcome::SentToCustomer => parts.push("sent to the customer".into()),
        ReplyOutcome::InternalNote => parts.push("note added".into()),
        ReplyOutcome::NothingSent => {}
        ReplyOutcome::AlreadySent(_) => parts.push("not sent twice".into()),
    }
    for a in r.applied.iter().take(SUMMARY_COMMANDS) {
        let command = a.split(": ").next().unwrap_or(a);
        parts.push(one_line(command, 60));
    }
    if r.applied.len() > SUMMARY_COMMANDS {
        parts.push(format!("{} more", r.applied.len() - SUMMARY_COMMANDS));
    }
    if !r.rejected.is_empty() {
        parts.push(format!("{} rejected", r.rejected.len()));
    }
    if parts.is_empty() {
        "nothing changed".into()
    } else {
        parts.join(", ")
    }
}

/// Builds the receipt of an agent's reply: what was applied, what was rejected and why.
/// It answers the agent's message inside the ticket's agent thread.
///
/// Template data for `receipt.subject` and `receipt.txt`: `ticket` {id, subject}, `agent`
/// {name, email}, `applied` (list), `applied_count`, `rejected` (list of {line, reason}),
/// `rejected_count`, `ignored` (list), `outcome` {sent, note, nothing, already_sent
/// (false, or {row})}, `summary` (one
/// line of what happened, for the subject), `help`, `cheat_sheet`, `support` {name,
/// address}.
pub fn receipt(cfg: &Config, templates: &Templates, r: &ReceiptInput<'_>) -> Result<Composed> {
    let rejected: Vec<serde_json::Value> = r
        .rejected
        .iter()
        .take(MAX_LIST_ENTRIES)
        .map(|(line, reason)| {
            serde_json::json!({
                "line": one_line(line, MAX_LINE_CHARS),
                "reason": one_line(reason, MAX_LINE_CHARS),
            })
        })
        .chain((r.rejected.len() > MAX_LIST_ENTRIES).then(|| {
            serde_json::json!({
                "line": format!("… and {} more", r.rejected.len() - MAX_LIST_ENTRIES),
                "reason": "not shown",
            })
        }))
        .collect();
    let data = serde_json::json!({
        "ticket": { "id": r.ticket_id, "subject": clean_subject(r.ticket_subject) },
        "agent": { "name": clean_name(r.agent), "email": r.agent.address },
        "applied": bounded_lines(r.applied),
        "applied_count": r.applied.len(),
        "rejected": rejected,
        "rejected_count": r.rejected.len(),
        "summary": receipt_summary(r),
        "ignored": bounded_lines(r.ignored),
        "outcome": {
            "sent": r.outcome == ReplyOutcome::SentToCustomer,
            "note": r.outcome == ReplyOutcome::InternalNote,
            "nothing": r.outcome == ReplyOutcome::NothingSent,
            "already_sent": match r.outcome {
                ReplyOutcome::AlreadySent(row) => serde_json::json!({ "row": row }),
                _ => serde_json::Value::Bool(false),
            },
        },
        "help": r.help,
        "cheat_sheet": cheat_sheet(),
        "support": support_json(cfg),
    });
    let mail = render_mail(templates, "receipt", r.ticket_id, &data)?;
    let recipients = std::slice::from_ref(r.agent);
    let envelope = Envelope {
        reply_token: Some(r.reply_token),
        auto_submitted: Some(AutoSubmitted::Replied),
        ..Envelope::new("the receipt", r.ticket_id, recipients, mail)
    };
    build(
        cfg,
        envelope.in_agent_thread(cfg, templates, r.ticket_subject, r.in_reply_to)?,
    )
}

/// A message that claimed to come from an agent but was held.
pub struct HeldInput<'a> {
    pub ticket_id: TicketId,
    pub ticket_subject: &'a str,
    /// The agent as configured: the notice goes here, never to the claimed sender.
    pub agent: &'a Mailbox,
    /// The agent's reply token for this ticket: one reply to the notice (`#release`)
    /// acts on the held message.
    pub reply_token: &'a str,
    /// Why it was held, in words.
    pub reasons: &'a [String],
    /// Its number (`messages.id`): `#release N`, and `#N` in `ticket show`.
    pub held_row: i64,
    /// Its From was exactly the agent's configured address.
    pub from_is_agent: bool,
    /// The held message's subject (hostile, perhaps: neutralised here).
    pub subject: &'a str,
    /// The ticket's customer was among its recipients: they already have it.
    pub customer_had_it: bool,
    /// Other messages held for this agent since the last notice (a notice is sent at most
    /// once an hour per agent): (message number, ticket, time, subject).
    pub earlier: &'a [(i64, TicketId, String, String)],
}

/// The segment of a held notice's Message-ID that names the held message:
/// `pd.<ticket>.h<row>.<random>@domain`.
fn held_tag(row: i64) -> String {
    format!("h{row}")
}

/// The held message a held notice is about, from the notice's Message-ID (normalised),
/// when it is one of ours.
pub fn held_row_of_notice(message_id: &str, domain: &str) -> Option<i64> {
    if !is_own_message_id(message_id, domain) {
        return None;
    }
    let mut parts = message_id.strip_prefix(OWN_ID_PREFIX)?.split('.');
    let _ticket = parts.next()?;
    parts.next()?.strip_prefix('h')?.parse().ok()
}

/// Text from outside made harmless to show: one line, no links (`scheme://…` and
/// `www.…` words become `[link]`), host names defanged (`evil.example` becomes
/// `evil[.]example`, so no client turns it into a link), cut to `max` characters.
pub fn neutralised(s: &str, max: usize) -> String {
    let line = one_line(s, 4 * max);
    let words: Vec<String> = line
        .split(' ')
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            if lower.contains("://") || lower.starts_with("www.") || lower.contains("mailto:") {
                return "[link]".to_string();
            }
            defang_dots(w)
        })
        .collect();
    let joined = words.join(" ");
    let cut: String = joined.chars().take(max).collect();
    if joined.chars().count() > max {
        format!("{cut}…")
    } else {
        cut
    }
}

/// `a.b` → `a[.]b` where a dot sits between two letters or digits (a host name, a
/// file name), so that no mail client makes a link of it.
fn defang_dots(w: &str) -> String {
    let chars: Vec<char> = w.chars().collect();
    let mut out = String::with_capacity(w.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        let between = *c == '.'
            && i > 0
            && chars.get(i - 1).is_some_and(|p| p.is_alphanumeric())
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if between {
            out.push_str("[.]");
        } else {
            out.push(*c);
        }
    }
    out
}

/// Builds the notice to an agent that a message claiming to come from them was held: its
/// commands were not executed and its text was not relayed. It never quotes what the
/// sender wrote beyond a neutralised subject (no display name, no body, no links), so a
/// forger cannot use it to phish the agent. Reply-To is the agent's token: replying
/// `#release` acts on the held message (its commands, and its text unless the customer
/// already has it).
///
/// Template data for `held.subject` and `held.txt`: `ticket` {id, subject}, `agent` {name,
/// email}, `reasons` (list), `held` {row, from_you, subject, customer_had_it}, `earlier`
/// (list of lines), `earlier_count`, `support` {name, address}.
pub fn held_notice(cfg: &Config, templates: &Templates, h: &HeldInput<'_>) -> Result<Composed> {
    let reasons: Vec<String> = h.reasons.iter().map(|r| neutralised(r, 300)).collect();
    let earlier: Vec<String> = h
        .earlier
        .iter()
        .take(MAX_LIST_ENTRIES)
        .map(|(row, ticket, at, subject)| {
            format!(
                "#{row} on ticket #{ticket}, {}: {}",
                one_line(at, 40),
                neutralised(subject, 80)
            )
        })
        .collect();
    let data = serde_json::json!({
        "ticket": { "id": h.ticket_id, "subject": clean_subject(h.ticket_subject) },
        "agent": { "name": clean_name(h.agent), "email": h.agent.address },
        "reasons": bounded_lines(&reasons),
        "held": {
            "row": h.held_row,
            "from_you": h.from_is_agent,
            "subject": neutralised(h.subject, 80),
            "customer_had_it": h.customer_had_it,
        },
        "earlier": earlier,
        "earlier_count": h.earlier.len(),
        "support": support_json(cfg),
    });
    let mail = render_mail(templates, "held", h.ticket_id, &data)?;
    let recipients = std::slice::from_ref(h.agent);
    let envelope = Envelope {
        reply_token: Some(h.reply_token),
        auto_submitted: Some(AutoSubmitted::Generated),
        id_tag: Some(held_tag(h.held_row)),
        ..Envelope::new("the held-message notice", h.ticket_id, recipients, mail)
    };
    build(
        cfg,
        envelope.in_agent_thread(cfg, templates, h.ticket_subject, None)?,
    )
}

/// One message of the admin's daily summary.
pub struct ProblemEntry<'a> {
    pub row: i64,
    pub at: &'a str,
    pub kind: &'a str,
    pub ticket: Option<TicketId>,
    pub from: Option<&'a str>,
    pub subject: &'a str,
    pub why: Option<&'a str>,
}

/// The daily summary to the admin of messages that could not be filed (unprocessable,
/// rejected, held). Everything in it came from outside, so every value is neutralised
/// (one line, links defanged), as in a held notice.
///
/// Template data for `problems.subject` and `problems.txt`: `count`, `since`, `entries`
/// (list of {row, at, kind, ticket, from, subject, why}), `more`, `support` {name, address}.
pub fn problems_summary(
    cfg: &Config,
    templates: &Templates,
    admin: &str,
    since: &str,
    entries: &[ProblemEntry<'_>],
) -> Result<Composed> {
    let shown: Vec<serde_json::Value> = entries
        .iter()
        .take(MAX_LIST_ENTRIES)
        .map(|e| {
            serde_json::json!({
                "row": e.row,
                "at": one_line(e.at, 40),
                "kind": e.kind,
                "ticket": e.ticket,
                "from": neutralised(e.from.unwrap_or("(no address)"), 120),
                "subject": neutralised(e.subject, 80),
                "why": neutralised(e.why.unwrap_or("(no reason recorded)"), 300),
            })
        })
        .collect();
    let data = serde_json::json!({
        "count": entries.len(),
        "since": one_line(since, 40),
        "entries": shown,
        "more": entries.len().saturating_sub(MAX_LIST_ENTRIES),
        "support": support_json(cfg),
    });
    let subject = clean_subject(&templates.render("problems.subject", &data)?);
    let body = templates.render("problems.txt", &data)?;
    let to = Mailbox {
        name: None,
        address: admin.to_string(),
    };
    let mut rand_part = [0u8; 8];
    rand::rng().fill_bytes(&mut rand_part);
    let message_id = format!(
        "{OWN_ID_PREFIX}admin.{}@{}",
        hex::encode(rand_part),
        cfg.message_id_domain
    );
    let msg = Message::builder()
        .from(lettre_mailbox(&cfg.smtp.from)?)
        .to(lettre_mailbox(&to)?)
        .subject(subject.clone())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(raw_header("Auto-Submitted", "auto-generated".to_string()))
        .raw_header(raw_header("X-Auto-Response-Suppress", "All".to_string()))
        .header(ContentType::TEXT_PLAIN)
        .body(body.clone())
        .context("Building the problems summary")?;
    Ok(Composed {
        message_id,
        subject,
        body,
        to: vec![to.address],
        raw: msg.formatted(),
    })
}

/// A mail of ours to people inside the team that is not an answer to their mail: red
/// alerts, SLA warnings and breaches, escalations, digests, notices.
pub struct InternalMail<'a> {
    /// The template pair `NAME.subject` / `NAME.txt`.
    pub template: &'static str,
    /// The ticket it is about: the mail joins the agents' thread of that ticket.
    pub ticket: Option<TicketId>,
    pub to: &'a [String],
    pub data: serde_json::Value,
    /// `Importance: high` and `X-Priority: 1` (red alerts).
    pub urgent: bool,
}

/// The headers of a mail to agents: From us, To the first address and Cc the others, a
/// fresh Message-ID (in the ticket's agent thread when there is one), `Auto-Submitted`.
fn internal_builder(
    cfg: &Config,
    what: &str,
    to: &[String],
    subject: &str,
    ticket: Option<TicketId>,
    urgent: bool,
) -> Result<(lettre::message::MessageBuilder, String)> {
    let (first, rest) = to
        .split_first()
        .with_context(|| format!("Building the {} mail: no recipient", what))?;
    let mut rand_part = [0u8; 8];
    rand::rng().fill_bytes(&mut rand_part);
    let message_id = match ticket {
        Some(t) => new_message_id(t, &cfg.message_id_domain),
        None => format!(
            "{OWN_ID_PREFIX}team.{}@{}",
            hex::encode(rand_part),
            cfg.message_id_domain
        ),
    };
    let address = |a: &str| {
        lettre_mailbox(&Mailbox {
            name: None,
            address: a.to_string(),
        })
    };
    let mut builder = Message::builder()
        .from(lettre_mailbox(&cfg.smtp.from)?)
        .to(address(first)?)
        .subject(subject.to_string())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(raw_header("Auto-Submitted", "auto-generated".to_string()))
        .raw_header(raw_header("X-Auto-Response-Suppress", "All".to_string()));
    for r in rest {
        builder = builder.cc(address(r)?);
    }
    if let Some(t) = ticket {
        let root = thread_root_id(t, &cfg.message_id_domain);
        builder = builder
            .in_reply_to(format!("<{root}>"))
            .references(format!("<{root}>"));
    }
    if urgent {
        builder = builder
            .raw_header(raw_header("Importance", "high".to_string()))
            .raw_header(raw_header("X-Priority", "1 (Highest)".to_string()));
    }
    Ok((builder, message_id))
}

/// An inline image of a mail (`cid:<content_id>` in its HTML).
#[derive(Debug, Clone)]
pub struct InlineImage {
    pub content_id: String,
    pub filename: String,
    pub png: Vec<u8>,
}

/// A report to agents with text, HTML and inline PNG charts: `multipart/alternative` of
/// the plain text and a `multipart/related` of the HTML and its images, the structure
/// Gmail, Outlook and Thunderbird all show inline (the text part for clients that show no
/// HTML). `NAME.subject`, `NAME.txt` and `NAME.html` are rendered with `data` and
/// `html_data` (the same values, HTML-escaped by the caller).
pub fn report_mail(
    cfg: &Config,
    templates: &Templates,
    template: &'static str,
    to: &[String],
    data: &serde_json::Value,
    html_data: &serde_json::Value,
    images: &[InlineImage],
) -> Result<Composed> {
    let with_support = |d: &serde_json::Value| {
        let mut d = d.clone();
        if let Some(obj) = d.as_object_mut() {
            obj.insert("support".into(), support_json(cfg));
        }
        d
    };
    let (data, html_data) = (with_support(data), with_support(html_data));
    let subject = clean_subject(&templates.render(&format!("{template}.subject"), &data)?);
    let body = templates.render(&format!("{template}.txt"), &data)?;
    let html = templates.render(&format!("{template}.html"), &html_data)?;
    let (builder, message_id) = internal_builder(cfg, template, to, &subject, None, false)?;
    let mut related = MultiPart::related().singlepart(SinglePart::html(html));
    for img in images {
        let ct = ContentType::parse("image/png").unwrap_or(ContentType::TEXT_PLAIN);
        related = related.singlepart(
            Attachment::new_inline_with_name(img.content_id.clone(), img.filename.clone())
                .body(img.png.clone(), ct),
        );
    }
    let msg = builder
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(body.clone()))
                .multipart(related),
        )
        .with_context(|| format!("Building the {template} mail"))?;
    Ok(Composed {
        message_id,
        subject,
        body,
        to: to.to_vec(),
        raw: msg.formatted(),
    })
}

/// Builds an [`InternalMail`]. The subject is used as the template renders it (the red
/// alert's must start with `[RED ALERT]`); text from outside in `data` must already be
/// neutralised by the caller.
pub fn internal_mail(
    cfg: &Config,
    templates: &Templates,
    m: &InternalMail<'_>,
) -> Result<Composed> {
    let mut data = m.data.clone();
    if let Some(obj) = data.as_object_mut() {
        obj.insert("support".into(), support_json(cfg));
    }
    let subject = clean_subject(&templates.render(&format!("{}.subject", m.template), &data)?);
    let body = templates.render(&format!("{}.txt", m.template), &data)?;
    let (builder, message_id) =
        internal_builder(cfg, m.template, m.to, &subject, m.ticket, m.urgent)?;
    let msg = builder
        .header(ContentType::TEXT_PLAIN)
        .body(body.clone())
        .with_context(|| format!("Building the {} mail", m.template))?;
    Ok(Composed {
        message_id,
        subject,
        body,
        to: m.to.to_vec(),
        raw: msg.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        crate::config::parse(
            include_str!("../../../config/postdesk.example.toml"),
            std::path::Path::new(""),
            &|_| None,
        )
        .unwrap()
    }

    fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(raw).unwrap()
    }

    fn header<'a>(m: &'a mail_parser::Message<'_>, name: &'a str) -> Option<&'a str> {
        m.header_raw(name).map(str::trim)
    }

    /// An unstructured header value with its RFC 2047 encoded words decoded.
    fn decoded(raw: &str) -> String {
        let msg = format!("Subject: {raw}\r\n\r\n");
        parse(msg.as_bytes()).subject().unwrap().to_string()
    }

    fn text(m: &mail_parser::Message<'_>) -> String {
        m.body_text(0).unwrap().replace("\r\n", "\n")
    }

    /// The names of every header, lower-cased, in order.
    fn header_names(m: &mail_parser::Message<'_>) -> Vec<String> {
        m.headers()
            .iter()
            .map(|h| h.name().to_ascii_lowercase())
            .collect()
    }

    fn agent() -> Mailbox {
        Mailbox {
            name: Some("Alice".into()),
            address: "alice@example.com".into(),
        }
    }

    fn customer() -> Mailbox {
        Mailbox {
            name: Some("李雷".into()),
            address: "li@example.cn".into(),
        }
    }

    static NO_EXTRA: CustomerExtra = CustomerExtra {
        company: None,
        plan: None,
        notes: Vec::new(),
        plan_prompt: None,
    };

    #[test]
    fn notification_shows_company_plan_notes_and_the_plan_prompt() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let (agent, customer) = (agent(), customer());
        let plain = agent_notification(&cfg, &t, &notify_input(&agent, &customer, &[], "hi"))
            .unwrap()
            .body;
        assert!(
            !plain.contains("Company:") && !plain.contains("Notes on"),
            "{plain}"
        );
        let extra = CustomerExtra {
            company: Some("ACME Ltd".into()),
            plan: Some("enterprise".into()),
            notes: vec![(
                "prefers phone callback\nsecond line".into(),
                "alice".into(),
                "2026-12-07".into(),
            )],
            plan_prompt: Some(
                "VIP customer: offer the dedicated service plan with #macro plan-vip".into(),
            ),
        };
        let mut input = notify_input(&agent, &customer, &[], "hi");
        input.customer_extra = &extra;
        let body = agent_notification(&cfg, &t, &input).unwrap().body;
        assert!(body.contains("Company:       ACME Ltd"), "{body}");
        assert!(body.contains("Plan:          enterprise"), "{body}");
        assert!(
            body.contains("  - prefers phone callback second line (alice, 2026-12-07)"),
            "{body}"
        );
        assert!(
            body.contains("VIP customer: offer the dedicated service plan with #macro plan-vip"),
            "{body}"
        );
    }

    fn notify_input<'a>(
        agent: &'a Mailbox,
        customer: &'a Mailbox,
        tags: &'a [String],
        text: &'a str,
    ) -> NotifyInput<'a> {
        NotifyInput {
            ticket_id: 42,
            ticket_subject: "打印机坏了",
            status: Status::Open,
            priority: Priority::High,
            tags,
            assignee: Some("bob"),
            agent,
            reply_token: "agenttok",
            customer,
            sender: customer,
            held_reason: None,
            customer_language: Some("zh"),
            customer_tier: "vip",
            customer_extra: &NO_EXTRA,
            open_tickets: 2,
            past_tickets: 7,
            match_reason: "reply token",
            sla_due: Some("2025-06-01 12:00 UTC"),
            routing_note: None,
            category: None,
            team: None,
            forced_human: None,
            suggested_macros: &[],
            handoff: None,
            similar: &[],
            event: NotifyEvent::CustomerReply,
            message_text: text,
            customer_message_id: Some("cust-1@example.cn"),
        }
    }

    #[test]
    fn own_message_ids_are_recognised() {
        let id = new_message_id(42, "Example.com");
        assert!(id.starts_with("pd.42."));
        assert!(is_own_message_id(&id, "example.com"));
        assert!(!is_own_message_id("pd.1.abc@evil.org", "example.com"));
        assert!(!is_own_message_id("abc@example.com", "example.com"));
        let ours = ["example.com", "example.org"];
        assert!(is_own_message_id_of("pd.7.thread@EXAMPLE.org", &ours));
        assert!(!is_own_message_id_of("pd.7.thread@example.net", &ours));
        assert!(!is_own_message_id_of("xpd.7.thread@example.com", &ours));
        let root = thread_root_id(42, "Example.COM");
        assert_eq!(root, "pd.42.thread@example.com");
        assert!(is_own_message_id(&root, "example.com"));
    }

    #[test]
    fn ack_has_loop_and_threading_headers() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let customer = customer();
        let refs = vec!["root@x".to_string()];
        let c = acknowledgement(
            &cfg,
            &t,
            &AckInput {
                ticket_id: 5,
                ticket_subject: "打印机坏了",
                token: "tok123",
                customer: &customer,
                in_reply_to: Some("cust@x"),
                references: &refs,
                language: None,
                tier: None,
                channel: None,
                mood: None,
                now: "2026-12-07T09:30:00Z",
            },
        )
        .unwrap();
        let parsed = parse(&c.raw);
        assert_eq!(parsed.subject(), Some("[#5] 打印机坏了"));
        assert_eq!(parsed.message_id(), Some(c.message_id.as_str()));
        assert_eq!(header(&parsed, "Auto-Submitted"), Some("auto-replied"));
        assert_eq!(header(&parsed, "X-Auto-Response-Suppress"), Some("All"));
        assert_eq!(header(&parsed, "X-Postdesk-Ticket"), Some("5"));
        assert_eq!(
            parsed.reply_to().unwrap().first().unwrap().address(),
            Some("support+tok123@example.com")
        );
        assert_eq!(parsed.in_reply_to().as_text(), Some("cust@x"));
        let r = parsed.references().as_text_list().unwrap();
        assert_eq!(r, ["root@x", "cust@x"]);
        assert_eq!(c.to, ["li@example.cn"]);
        assert!(parsed.header_raw("Thread-Index").is_none());
    }

    #[test]
    fn references_keep_the_root_and_the_newest() {
        let refs: Vec<String> = (0..30).map(|i| format!("m{i}@x")).collect();
        let t = Thread::reply_to(Some("parent@x"), &refs);
        assert_eq!(t.references.len(), MAX_REFERENCES);
        assert_eq!(t.references.first().map(String::as_str), Some("m0@x"));
        assert_eq!(t.references.last().map(String::as_str), Some("parent@x"));
        assert_eq!(t.references.get(1).map(String::as_str), Some("m12@x"));
        // Ids that cannot be written into the header as they are are left out.
        let t = Thread::reply_to(
            Some("evil@x>\r\nBcc: a@b"),
            &["ok@x".to_string(), "with space@x".to_string()],
        );
        assert_eq!(t.in_reply_to, None);
        assert_eq!(t.references, ["ok@x"]);
    }

    #[test]
    fn notification_threads_per_ticket_and_carries_context() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let (agent, customer) = (agent(), customer());
        let tags = vec!["billing".to_string(), "打印".to_string()];
        let input = notify_input(
            &agent,
            &customer,
            &tags,
            "Hello,\r\nit is broken.\n#close\n",
        );
        let first = agent_notification(&cfg, &t, &input).unwrap();
        let second = agent_notification(&cfg, &t, &input).unwrap();
        let (p1, p2) = (parse(&first.raw), parse(&second.raw));

        // One thread: fresh ids, the same root, the same subject and Outlook topic/index.
        assert_ne!(first.message_id, second.message_id);
        assert_eq!(p1.message_id(), Some(first.message_id.as_str()));
        let root = "pd.42.thread@example.com";
        for p in [&p1, &p2] {
            assert_eq!(p.in_reply_to().as_text(), Some(root));
            assert_eq!(p.references().as_text_list().unwrap(), [root]);
            assert_eq!(p.subject(), Some("[#42] 打印机坏了"));
            assert_eq!(
                decoded(header(p, "Thread-Topic").unwrap()),
                "[#42] 打印机坏了"
            );
        }
        assert_eq!(header(&p1, "Thread-Index"), header(&p2, "Thread-Index"));
        let index = base64::engine::general_purpose::STANDARD
            .decode(header(&p1, "Thread-Index").unwrap())
            .unwrap();
        assert_eq!(index.len(), 22);
        assert_eq!(index.first(), Some(&1));
        assert_ne!(
            thread_index(42, "example.com"),
            thread_index(43, "example.com")
        );

        // Headers: who, where replies go, loop protection.
        assert_eq!(
            p1.to().unwrap().first().unwrap().address(),
            Some("alice@example.com")
        );
        assert_eq!(
            p1.from().unwrap().first().unwrap().address(),
            Some("support@example.com")
        );
        let reply_to = p1.reply_to().unwrap().first().unwrap();
        assert_eq!(reply_to.address(), Some("support+agenttok@example.com"));
        assert_eq!(reply_to.name(), Some("Example Support"));
        assert_eq!(header(&p1, "Auto-Submitted"), Some("auto-generated"));
        assert_eq!(header(&p1, "X-Auto-Response-Suppress"), Some("All"));
        assert_eq!(header(&p1, "X-Postdesk-Ticket"), Some("42"));
        assert_eq!(
            header(&p1, "X-Postdesk-Customer-Message-Id"),
            Some("<cust-1@example.cn>")
        );
        assert!(p1.header_raw("Precedence").is_none());
        assert_eq!(first.to, ["alice@example.com"]);

        let body = text(&p1);
        // Between our marker lines, which no template can drop.
        assert!(body.starts_with(REPLY_ABOVE_MARKER), "{body}");
        assert!(body.trim_end().ends_with(INTERNAL_MARKER), "{body}");
        assert!(body.contains("\nReply above the quoted part"), "{body}");
        for line in [
            "New message from the customer on ticket #42: 打印机坏了",
            "Customer:      李雷 <li@example.cn>",
            "Language:      zh",
            "Tier:          vip",
            "Open tickets:  2",
            "Past tickets:  7",
            "Status:        open",
            "Priority:      high",
            "Tags:          billing, 打印",
            "Assignee:      bob",
            "SLA due:       2025-06-01 12:00 UTC",
            "Matched by:    reply token",
            "  Hello,\n  it is broken.\n  #close\n",
        ] {
            assert!(body.contains(line), "{line:?} missing in:\n{body}");
        }
        assert!(
            body.trim_end()
                .trim_end_matches(INTERNAL_MARKER)
                .trim_end()
                .ends_with(cheat_sheet().lines().last().unwrap()),
            "{body}"
        );
        assert!(body.contains(cheat_sheet()), "{body}");
        // The customer's "#close" is never at the start of a line.
        assert!(!body.lines().any(|l| l.starts_with("#close")), "{body}");
        assert!(!body.contains("New ticket #42"));
        assert!(!body.contains("more characters"));
    }

    #[test]
    fn notification_leaves_out_unknown_sla_and_shows_defaults() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let (agent, customer) = (
            agent(),
            Mailbox {
                name: None,
                address: "x@example.org".into(),
            },
        );
        let mut input = notify_input(&agent, &customer, &[], "hi");
        input.sla_due = None;
        input.assignee = None;
        input.customer_language = None;
        input.event = NotifyEvent::NewTicket;
        let c = agent_notification(&cfg, &t, &input).unwrap();
        let body = text(&parse(&c.raw));
        assert!(!body.contains("SLA due"), "{body}");
        assert!(body.contains("New ticket #42: 打印机坏了"), "{body}");
        assert!(body.contains("Customer:      x@example.org\n"), "{body}");
        assert!(body.contains("Assignee:      nobody"), "{body}");
        assert!(body.contains("Language:      unknown"), "{body}");
        assert!(body.contains("Tags:          none"), "{body}");
        // No blank line is left where the SLA line would be.
        assert!(
            body.contains("Assignee:      nobody\nMatched by:"),
            "{body}"
        );
        input.event = NotifyEvent::Collaborator;
        let c = agent_notification(&cfg, &t, &input).unwrap();
        let body = text(&parse(&c.raw));
        assert!(
            body.contains("\nNew message from a collaborator on ticket #42: 打印机坏了\n"),
            "{body}"
        );
        assert!(!body.contains("New ticket"), "{body}");
    }

    #[test]
    fn notification_text_is_cleaned_and_capped() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let (agent, customer) = (agent(), customer());
        let hostile = format!(
            "a\u{0}b\u{1b}[31mc\u{202E}d\te\r\nsecond\rthird\n{}",
            "字".repeat(MAX_NOTIFY_TEXT_CHARS + 500)
        );
        let input = notify_input(&agent, &customer, &[], &hostile);
        let c = agent_notification(&cfg, &t, &input).unwrap();
        let body = text(&parse(&c.raw));
        assert!(
            body.contains("  ab[31mcd\te\n  second\n  third\n"),
            "{body}"
        );
        assert!(!body.contains('\u{1b}') && !body.contains('\u{202E}'));
        // 20,000 characters kept: the first 24 are "ab[31mcd\te", "second", "third" and
        // their line breaks; the other 524 are counted.
        let kept = MAX_NOTIFY_TEXT_CHARS - "ab[31mcd\te\nsecond\nthird\n".chars().count();
        assert_eq!(body.matches('字').count(), kept);
        assert!(body.contains("  [… 524 more characters]"), "{body}");
    }

    #[test]
    fn hostile_names_and_subjects_make_no_headers_or_lines() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let agent = Mailbox {
            name: Some("Alice\r\nBcc: victim@example.org".into()),
            address: "alice@example.com".into(),
        };
        let customer = Mailbox {
            name: Some("Eve\r\nTier: platinum\r\nX-Evil: 1".into()),
            address: "eve@example.org".into(),
        };
        let mut input = notify_input(&agent, &customer, &[], "hi");
        input.ticket_subject = "Help\r\nBcc: victim@example.org\r\n\r\nbody";
        input.match_reason = "subject\nStatus: closed";
        let c = agent_notification(&cfg, &t, &input).unwrap();
        let p = parse(&c.raw);
        let names = header_names(&p);
        assert!(
            !names.iter().any(|n| n == "bcc" || n == "x-evil"),
            "{names:?}"
        );
        assert_eq!(
            p.subject(),
            Some("[#42] Help  Bcc: victim@example.org    body")
        );
        assert_eq!(p.to().unwrap().iter().count(), 1);
        let body = text(&p);
        assert!(
            !body.lines().any(|l| l.starts_with("Tier: platinum")),
            "{body}"
        );
        assert!(
            !body.lines().any(|l| l.starts_with("Status: closed")),
            "{body}"
        );
        assert!(body.contains("Customer:      Eve  Tier: platinum  X-Evil: 1 <eve@example.org>"));
        assert_eq!(c.to, ["alice@example.com"]);
    }

    #[test]
    fn a_reply_that_greets_and_signs_is_not_greeted_or_signed_again() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let to = vec![Mailbox {
            name: Some("Carol Customer".into()),
            address: "carol@example.org".into(),
        }];
        let reply = |body: &str| {
            let c = customer_reply(
                &cfg,
                &t,
                &ReplyInput {
                    ticket_id: 1,
                    ticket_subject: "Refund",
                    customer_token: "tok",
                    to: &to,
                    agent_name: "Alice Martin",
                    body_text: body,
                    in_reply_to: None,
                    references: &[],
                    attachments: &[],
                    rating: None,
                },
            )
            .unwrap();
            parse(&c.raw).body_text(0).unwrap().replace("\r\n", "\n")
        };
        let both = reply("Hi Carol,\n\nYour refund is on its way.\n\nBest,\nAlice");
        assert!(!both.contains("Hello"), "{both}");
        assert_eq!(both.matches("Alice").count(), 1, "{both}");
        assert!(both.trim_end().ends_with("Example Support"), "{both}");
        // Bare text gets the template's greeting and the display name.
        let bare = reply("Your refund is on its way.");
        assert!(bare.starts_with("Hello Carol Customer,"), "{bare}");
        assert!(bare.contains("Alice Martin\nExample Support"), "{bare}");
        // "Hilton" is no greeting; "Bestellung" no closing.
        assert!(!greets("Hilton confirmed the booking."));
        assert!(!signs("Bestellung 42 is shipped.", "Bob"));
        assert!(greets("\n  您好，\n退款已处理。"));
        assert!(signs("Done.\n\n-- \nBob from support", "Zed"));
    }

    #[test]
    fn customer_reply_is_human_and_reaches_every_customer() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let to = vec![
            customer(),
            Mailbox {
                name: Some("Han Meimei".into()),
                address: "han@example.cn".into(),
            },
            Mailbox {
                name: None,
                address: "LI@example.cn".into(),
            },
        ];
        let refs = vec!["first@example.cn".to_string()];
        let c = customer_reply(
            &cfg,
            &t,
            &ReplyInput {
                ticket_id: 42,
                ticket_subject: "打印机坏了",
                customer_token: "custtok",
                to: &to,
                agent_name: "Alice",
                body_text: "Please restart it.\r\n\r\nAbout refunds: …\n",
                in_reply_to: Some("latest@example.cn"),
                references: &refs,
                attachments: &[],
                rating: None,
            },
        )
        .unwrap();
        let p = parse(&c.raw);
        assert_eq!(p.subject(), Some("Re: [#42] 打印机坏了"));
        assert_eq!(c.to, ["li@example.cn", "han@example.cn"]);
        assert_eq!(p.to().unwrap().iter().count(), 1);
        assert_eq!(
            p.to().unwrap().first().unwrap().address(),
            Some("li@example.cn")
        );
        assert_eq!(
            p.cc().unwrap().first().unwrap().address(),
            Some("han@example.cn")
        );
        assert_eq!(
            p.reply_to().unwrap().first().unwrap().address(),
            Some("support+custtok@example.com")
        );
        assert!(p.header_raw("Auto-Submitted").is_none());
        assert!(p.header_raw("X-Auto-Response-Suppress").is_none());
        assert!(p.header_raw("Thread-Index").is_none());
        assert_eq!(p.in_reply_to().as_text(), Some("latest@example.cn"));
        assert_eq!(
            p.references().as_text_list().unwrap(),
            ["first@example.cn", "latest@example.cn"]
        );
        assert_eq!(
            text(&p),
            "Hello 李雷,\n\nPlease restart it.\n\nAbout refunds: …\n\nAlice\nExample Support"
        );
    }

    #[test]
    fn customer_reply_keeps_an_existing_tag_and_needs_a_recipient() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let to = vec![Mailbox {
            name: None,
            address: "x@example.org".into(),
        }];
        let mut input = ReplyInput {
            ticket_id: 7,
            ticket_subject: "RE: [#7] Invoice",
            customer_token: "tok",
            to: &to,
            agent_name: "Bob",
            body_text: "Done.",
            in_reply_to: None,
            references: &[],
            attachments: &[],
            rating: None,
        };
        let c = customer_reply(&cfg, &t, &input).unwrap();
        let p = parse(&c.raw);
        assert_eq!(p.subject(), Some("RE: [#7] Invoice"));
        assert!(text(&p).starts_with("Hello,\n\nDone."));
        assert!(p.header_raw("In-Reply-To").is_none());
        input.to = &[];
        assert!(customer_reply(&cfg, &t, &input).is_err());
    }

    #[test]
    fn receipt_lists_what_happened_inside_the_ticket_thread() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let agent = agent();
        let applied = vec!["#status pending: status is now pending".to_string()];
        let rejected = vec![(
            "#stauts closed".to_string(),
            "unknown command #stauts; did you mean #status?".to_string(),
        )];
        let ignored = vec!["#close".to_string()];
        let mut input = ReceiptInput {
            ticket_id: 42,
            ticket_subject: "打印机坏了",
            agent: &agent,
            reply_token: "agenttok",
            applied: &applied,
            rejected: &rejected,
            ignored: &ignored,
            outcome: ReplyOutcome::InternalNote,
            help: false,
            in_reply_to: Some("agent-reply@example.com"),
        };
        let c = receipt(&cfg, &t, &input).unwrap();
        let p = parse(&c.raw);
        assert_eq!(
            p.subject(),
            Some("[#42] Receipt: note added, #status pending, 1 rejected")
        );
        assert_eq!(header(&p, "Auto-Submitted"), Some("auto-replied"));
        assert_eq!(p.in_reply_to().as_text(), Some("agent-reply@example.com"));
        assert_eq!(
            p.references().as_text_list().unwrap(),
            ["pd.42.thread@example.com", "agent-reply@example.com"]
        );
        assert_eq!(
            header(&p, "Thread-Index").map(str::to_string),
            Some(thread_index(42, "example.com"))
        );
        assert_eq!(
            p.reply_to().unwrap().first().unwrap().address(),
            Some("support+agenttok@example.com")
        );
        let body = text(&p);
        for line in [
            "kept as an internal note",
            "Applied (1):\n  #status pending: status is now pending\n",
            "Rejected (1):\n  #stauts closed\n    because: unknown command #stauts; did you mean #status?\n",
            "Not executed, because they came after your text (commands must be the first lines):\n  #close",
            "Write #help at the top of a reply",
        ] {
            assert!(body.contains(line), "{line:?} missing in:\n{body}");
        }
        assert!(!body.contains(cheat_sheet()));
        assert!(!body.contains("sent to the customer"));

        input.help = true;
        input.rejected = &[];
        input.ignored = &[];
        input.outcome = ReplyOutcome::SentToCustomer;
        input.in_reply_to = None;
        let c = receipt(&cfg, &t, &input).unwrap();
        let p = parse(&c.raw);
        assert_eq!(
            p.subject(),
            Some("[#42] Receipt: sent to the customer, #status pending")
        );
        assert_eq!(p.in_reply_to().as_text(), Some("pd.42.thread@example.com"));
        let body = text(&p);
        assert!(body.contains(cheat_sheet()), "{body}");
        assert!(
            body.contains("Your text was sent to the customer."),
            "{body}"
        );
        assert!(body.contains("Rejected (0):\n  nothing\n"), "{body}");
        assert!(!body.contains("Not executed"), "{body}");
        assert!(!body.contains("Write #help"), "{body}");
    }

    #[test]
    fn held_notice_names_but_never_quotes_the_held_message() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let agent = agent();
        let reasons = vec![
            "DKIM failed for example.com".to_string(),
            "From is it@evil.example but the token belongs to alice@example.com".to_string(),
        ];
        let earlier = vec![(
            7,
            42,
            "2026-11-24T10:00:00Z".to_string(),
            "IT: reset at http://evil.example/login".to_string(),
        )];
        let c = held_notice(
            &cfg,
            &t,
            &HeldInput {
                ticket_id: 42,
                ticket_subject: "打印机坏了",
                agent: &agent,
                reply_token: "agenttok",
                reasons: &reasons,
                held_row: 9,
                from_is_agent: false,
                subject: "Re: [#42] 打印机坏了 visit www.evil.example\r\n#assign mallory",
                customer_had_it: false,
                earlier: &earlier,
            },
        )
        .unwrap();
        let p = parse(&c.raw);
        assert_eq!(
            p.subject(),
            Some("[#42] Held: a message claiming to be from you")
        );
        assert_eq!(
            p.to().unwrap().first().unwrap().address(),
            Some("alice@example.com")
        );
        assert_eq!(c.to, ["alice@example.com"]);
        assert_eq!(header(&p, "Auto-Submitted"), Some("auto-generated"));
        // One reply to the notice (#release) comes back to this ticket as alice.
        let reply_to = p.reply_to().unwrap().first().unwrap();
        assert_eq!(reply_to.address(), Some("support+agenttok@example.com"));
        assert_eq!(p.in_reply_to().as_text(), Some("pd.42.thread@example.com"));
        assert_eq!(
            held_row_of_notice(&c.message_id, "example.com"),
            Some(9),
            "{}",
            c.message_id
        );
        assert!(!header_names(&p).iter().any(|n| n == "bcc"));
        let body = text(&p);
        for line in [
            "A message claiming to come from you about ticket #42 was held.",
            "  - DKIM failed for example[.]com\n",
            "  - From is it@evil[.]example but the token belongs to alice@example[.]com\n",
            "The held message is #9 on ticket #42",
            "an address that is not yours",
            "  Subject:  Re: [#42] 打印机坏了 visit [link]  #assign mallory\n",
            "reply to this mail with #release",
            "  - #7 on ticket #42, 2026-11-24T10:00:00Z: IT: reset at [link]\n",
        ] {
            assert!(body.contains(line), "{line:?} missing in:\n{body}");
        }
        assert!(!body.contains("evil.example"), "{body}");
        // Our marker lines start with "##-", which no command does.
        assert!(
            !body
                .lines()
                .any(|l| l.starts_with('#') && !l.starts_with("##-")),
            "{body}"
        );
    }

    #[test]
    fn macro_data_feeds_macros_with_clean_values() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let customer = Mailbox {
            name: Some("{{agent.name}}\r\n".into()),
            address: "li@example.cn".into(),
        };
        let data = macro_data(&cfg, 9, "x", &customer, "Alice");
        assert_eq!(data["customer"]["name"], "{{agent.name}}");
        let text = t.render_macro("password-reset", &data).unwrap().unwrap();
        assert!(text.contains("enter\nli@example.cn."), "{text}");
    }

    fn ack_input<'a>(
        subject: &'a str,
        customer: &'a Mailbox,
        language: Option<&'a str>,
        tier: Option<&'a str>,
    ) -> AckInput<'a> {
        AckInput {
            ticket_id: 9,
            ticket_subject: subject,
            token: "tok9",
            customer,
            in_reply_to: None,
            references: &[],
            language,
            tier,
            channel: Some("email"),
            mood: None,
            now: "2026-12-07T09:30:00Z",
        }
    }

    #[test]
    fn ack_variant_follows_language_and_tier() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let customer = customer();
        let vip = acknowledgement(
            &cfg,
            &t,
            &ack_input("打印机坏了", &customer, Some("zh"), Some("vip")),
        )
        .unwrap();
        assert_eq!(vip.subject, "[#9] 已收到：打印机坏了");
        assert!(vip.body.starts_with("尊敬的李雷您好，"), "{}", vip.body);
        assert!(vip.body.contains("重要客户"), "{}", vip.body);
        let zh = acknowledgement(
            &cfg,
            &t,
            &ack_input("打印机坏了", &customer, Some("zh"), Some("standard")),
        )
        .unwrap();
        assert!(zh.body.contains("感谢您联系"), "{}", zh.body);
        assert!(!zh.body.contains("重要客户"), "{}", zh.body);
        let fr = acknowledgement(
            &cfg,
            &t,
            &ack_input("Imprimante", &customer, Some("fr"), None),
        )
        .unwrap();
        assert_eq!(fr.subject, "[#9] Imprimante");
        assert!(fr.body.starts_with("Hello 李雷,"), "{}", fr.body);
    }

    #[test]
    fn template_syntax_in_a_subject_stays_literal() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let customer = Mailbox {
            name: Some("{{support.name}} {{> ack.txt}}".into()),
            address: "x@example.net".into(),
        };
        for (subject, lang) in [
            ("{{7*7}}", None),
            ("{{> ack.txt}}", Some("zh")),
            ("{{#each this}}{{@key}}{{/each}}", Some("en")),
            ("{{{ticket.token}}}", Some("zh")),
        ] {
            let c = acknowledgement(&cfg, &t, &ack_input(subject, &customer, lang, Some("vip")))
                .unwrap();
            let parsed = parse(&c.raw);
            let shown = parsed.subject().unwrap();
            assert!(shown.contains(subject), "{shown}");
            assert!(!shown.contains("49"), "{shown}");
            let body = text(&parsed);
            assert!(body.contains(subject), "{body}");
            assert!(body.contains("{{support.name}} {{> ack.txt}}"), "{body}");
            // The partial was not expanded: the acknowledgement's text appears once.
            assert_eq!(body.matches("[#9]").count(), 1, "{body}");
        }
    }

    #[test]
    fn line_breaks_in_a_subject_cannot_add_headers() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let customer = customer();
        for subject in [
            "Hi\r\nBcc: victim@example.org",
            "Hi\nX-Injected: 1\n\nbody",
            "Hi\rBcc: victim@example.org",
            "Hi\u{2028}Bcc: victim@example.org\u{85}X-Injected: 1",
        ] {
            for lang in [None, Some("zh")] {
                let c =
                    acknowledgement(&cfg, &t, &ack_input(subject, &customer, lang, Some("vip")))
                        .unwrap();
                let parsed = parse(&c.raw);
                let names = header_names(&parsed);
                assert!(
                    !names.iter().any(|n| n == "bcc" || n == "x-injected"),
                    "{names:?}"
                );
                assert_eq!(names.iter().filter(|n| *n == "subject").count(), 1);
                let shown = parsed.subject().unwrap();
                assert!(!shown.contains(['\r', '\n']), "{shown:?}");
                assert!(
                    shown.contains("Bcc: victim@example.org") || shown.contains("X-Injected: 1"),
                    "{shown:?}"
                );
                assert_eq!(c.to, ["li@example.cn"]);
            }
        }
    }

    #[test]
    fn bot_answer_is_cleaned_and_picks_the_language() {
        let cfg = cfg();
        let t = Templates::load(None).unwrap();
        let customer = customer();
        let links = ["https://example.com/kb/1\r\nBcc: x@y".to_string()];
        let files = [OutAttachment {
            filename: "步骤.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: b"%PDF-1.4".to_vec(),
        }];
        let refs = ["cust-0@example.cn".to_string()];
        let mut b = BotAnswerInput {
            ticket_id: 9,
            ticket_subject: "{{7*7}} 密码\r\nBcc: x@y",
            token: "tok9",
            customer: &customer,
            in_reply_to: Some("cust-1@example.cn"),
            references: &refs,
            language: "zh",
            tier: "standard",
            channel: Some("email"),
            article_id: 1,
            article_title: "重置密码 {{> ack.txt}}",
            article_text: "第一步\n第二步 {{ticket.token}}",
            links: &links,
            attachments: &files,
            score: 0.9,
            now: "2026-12-07T12:00:00Z",
        };
        let (subject, body) = bot_answer_text(&cfg, &t, &b).unwrap();
        assert_eq!(subject, "[#9] 自动解答：{{7*7}} 密码  Bcc: x@y");
        // 12:00 UTC, the customer's time zone unknown: afternoon.
        assert!(body.starts_with("下午好，李雷！"), "{body}");
        assert!(body.contains("重置密码 {{> ack.txt}}"), "{body}");
        assert!(body.contains("第一步\n第二步 {{ticket.token}}"), "{body}");
        assert!(body.contains("附件：步骤.pdf"), "{body}");
        for word in ["“人工”", "“human”", "“agent”"] {
            assert!(body.contains(word), "{body}");
        }
        // The whole mail: automatic, threaded, attached, no injected header.
        let c = bot_answer(&cfg, &t, &b).unwrap();
        let parsed = parse(&c.raw);
        let names = header_names(&parsed);
        assert!(!names.iter().any(|n| n == "bcc"), "{names:?}");
        assert_eq!(header(&parsed, "Auto-Submitted"), Some("auto-replied"));
        assert_eq!(header(&parsed, "In-Reply-To"), Some("<cust-1@example.cn>"));
        assert_eq!(parsed.attachment_count(), 1);
        assert_eq!(c.to, ["li@example.cn"]);
        b.language = "en";
        let (subject, body) = bot_answer_text(&cfg, &t, &b).unwrap();
        assert_eq!(subject, "[#9] {{7*7}} 密码  Bcc: x@y");
        assert!(body.starts_with("Good afternoon 李雷,"), "{body}");
        assert!(
            body.contains("Reply with the word \"human\" or \"agent\""),
            "{body}"
        );
        assert!(body.contains(" or \"人工\""), "{body}");
        assert!(body.contains("Attached: 步骤.pdf"), "{body}");
        assert!(!body.contains("49"), "{body}");
    }
}
