//! Composes outgoing mail: template → subject and body → a complete RFC 5322 message with
//! our own Message-ID and the threading headers, built with lettre.
//!
//! The raw bytes are produced once, here, and stored in the outbox: every send attempt
//! sends exactly the same bytes, so the Message-ID never changes between retries.

use anyhow::{Context, Result};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox as LettreMailbox, Message};
use rand::RngCore;

use super::templates::Templates;
use crate::config::Config;
use crate::domain::TicketId;
use crate::ingest::address::{Mailbox, token_address};

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

/// True when `message_id` (normalised) is one we generated.
pub fn is_own_message_id(message_id: &str, domain: &str) -> bool {
    message_id.starts_with(OWN_ID_PREFIX)
        && message_id
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
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

/// Subjects are one line: strip controls and cut very long ones (RFC 5322 §2.1.1 wants
/// lines under 998 characters; encoded words take care of folding).
fn clean_subject(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line
        .chars()
        .take(250)
        .collect::<String>()
        .trim()
        .to_string()
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
}

/// Builds the acknowledgement of a new ticket.
pub fn acknowledgement(cfg: &Config, templates: &Templates, a: &AckInput<'_>) -> Result<Composed> {
    let support_name = cfg
        .smtp
        .from
        .name
        .clone()
        .unwrap_or_else(|| cfg.smtp.from.address.clone());
    let data = serde_json::json!({
        "ticket": { "id": a.ticket_id, "subject": a.ticket_subject, "token": a.token },
        "customer": { "name": a.customer.name, "email": a.customer.address },
        "support": { "name": support_name, "address": cfg.smtp.from.address },
    });
    let subject = clean_subject(&templates.render("ack.subject", &data)?);
    let subject = if subject.contains(&format!("[#{}]", a.ticket_id)) {
        subject
    } else {
        format!("[#{}] {subject}", a.ticket_id)
    };
    let body = templates.render("ack.txt", &data)?;

    let message_id = new_message_id(a.ticket_id, &cfg.message_id_domain);
    let reply_to = Mailbox {
        name: cfg.smtp.from.name.clone(),
        address: token_address(&cfg.primary_address(), a.token),
    };
    let mut builder = Message::builder()
        .from(lettre_mailbox(&cfg.smtp.from)?)
        .reply_to(lettre_mailbox(&reply_to)?)
        .to(lettre_mailbox(a.customer)?)
        .subject(subject.clone())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-replied".to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Postdesk-Ticket"),
            a.ticket_id.to_string(),
        ));
    let mut refs: Vec<String> = a.references.to_vec();
    if let Some(parent) = a.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
        if !refs.iter().any(|r| r == parent) {
            refs.push(parent.to_string());
        }
    }
    if !refs.is_empty() {
        // Keep the header bounded: the root and the newest ids are what threading needs.
        let len = refs.len();
        let kept: Vec<&String> = if len > 20 {
            refs.iter()
                .take(1)
                .chain(refs.iter().skip(len - 19))
                .collect()
        } else {
            refs.iter().collect()
        };
        builder = builder.references(
            kept.iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    let msg = builder
        .header(ContentType::TEXT_PLAIN)
        .body(body.clone())
        .context("Building the acknowledgement")?;
    Ok(Composed {
        message_id,
        subject,
        body,
        to: vec![a.customer.address.clone()],
        raw: msg.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_message_ids_are_recognised() {
        let id = new_message_id(42, "Example.com");
        assert!(id.starts_with("pd.42."));
        assert!(is_own_message_id(&id, "example.com"));
        assert!(!is_own_message_id("pd.1.abc@evil.org", "example.com"));
        assert!(!is_own_message_id("abc@example.com", "example.com"));
    }

    #[test]
    fn ack_has_loop_and_threading_headers() {
        let cfg = crate::config::parse(
            include_str!("../../config/postdesk.example.toml"),
            std::path::Path::new(""),
            &|_| None,
        )
        .unwrap();
        let t = Templates::load(None).unwrap();
        let customer = Mailbox {
            name: Some("李雷".into()),
            address: "li@example.cn".into(),
        };
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
            },
        )
        .unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&c.raw).unwrap();
        assert_eq!(parsed.subject(), Some("[#5] 打印机坏了"));
        assert_eq!(parsed.message_id(), Some(c.message_id.as_str()));
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        assert_eq!(
            parsed.header_raw("X-Auto-Response-Suppress").map(str::trim),
            Some("All")
        );
        assert_eq!(
            parsed.reply_to().unwrap().first().unwrap().address(),
            Some("support+tok123@example.com")
        );
        assert_eq!(parsed.in_reply_to().as_text(), Some("cust@x"));
        let r = parsed.references().as_text_list().unwrap();
        assert_eq!(r.len(), 2);
    }
}
