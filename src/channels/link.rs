//! A chat sender proves an email address is theirs with a one-time code (issue 15).
//!
//! 1. In the chat, the customer sends `/link ann@example.com` (`!link` works too, for
//!    Matrix clients that keep `/` for themselves).
//! 2. A six-digit code from the system's CSPRNG is mailed to that address (template
//!    `link-code`), and the chat is told where it went, the address masked
//!    (`a•••@example.com`). Only a SHA-256 of identity and code is stored.
//! 3. The customer sends `/link 123456` back in the same chat within
//!    [`CODE_MINUTES`]: the identity is linked to the address with signal `code`
//!    (`store::profiles::link_identity`: profiles, tickets and notes become one), and the
//!    chat says so.
//!
//! Against guessing and abuse: [`MAX_TRIES`] wrong codes burn the code; an identity may
//! ask for [`PER_IDENTITY_PER_DAY`] codes a day and an address may receive
//! [`PER_ADDRESS_PER_DAY`], so the desk cannot be made to mail someone over and over; a
//! new request voids the identity's earlier code; a code only counts from the identity
//! it was made for. The mail carries no link or reply address to act on, and says that
//! nothing changes without the code. Names and handles never link anyone.
//!
//! The messages themselves are filed like any other (they stay on the ticket; nothing is
//! lost). [`CodeLinker`] follows the event log for new inbound chat messages, after
//! their commit, in its own transaction with its cursor; a message it cannot act on is
//! logged and skipped. A new follower starts at the newest event, so old chat history is
//! never taken for fresh requests.

use std::sync::Arc;

use anyhow::Result;
use futures::future::BoxFuture;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::channels::email::compose;
use crate::clock::db_time;
use crate::domain::{EventKind, MessageKind, TicketId};
use crate::events::Handler;
use crate::intake::pipeline::Pipeline;
use crate::store::events::Event;
use crate::store::{Conn, link_codes, messages, profiles, tickets};

/// The follower's cursor name.
pub const FOLLOWER: &str = "chat-link";
/// How long a code works.
pub const CODE_MINUTES: i64 = 15;
/// Wrong codes before the code is burnt.
pub const MAX_TRIES: i64 = 5;
/// Codes one chat identity may ask for in 24 hours.
pub const PER_IDENTITY_PER_DAY: i64 = 3;
/// Codes one address may receive in 24 hours, whoever asks.
pub const PER_ADDRESS_PER_DAY: i64 = 5;

/// What a chat message asks of the linker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkText {
    /// `/link ann@example.com`: mail a code there.
    Request(String),
    /// `/link 123456`: the code.
    Code(String),
    /// `/link` with anything else: say how.
    Usage,
}

/// Reads a chat message: its first non-empty line must be `/link` or `!link` (any case)
/// and at most one argument. Anything else is no request (`None`).
pub fn parse(text: &str) -> Option<LinkText> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut words = line.split_whitespace();
    let head = words.next()?;
    let command = head.strip_prefix('/').or_else(|| head.strip_prefix('!'))?;
    // Telegram adds the bot's name in groups: /link@shop_bot.
    let command = command.split('@').next().unwrap_or(command);
    if !command.eq_ignore_ascii_case("link") {
        return None;
    }
    let (Some(arg), None) = (words.next(), words.next()) else {
        return Some(LinkText::Usage);
    };
    if arg.len() == 6 && arg.bytes().all(|b| b.is_ascii_digit()) {
        return Some(LinkText::Code(arg.to_string()));
    }
    Some(match crate::commands::table::email_address(arg) {
        Some(email) => LinkText::Request(email),
        None => LinkText::Usage,
    })
}

/// `ann@example.com` as `a•••@example.com`: enough for the customer to recognise, little
/// for a bystander in a group chat.
pub fn mask(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_string(),
    }
}

/// What is stored of a code: it only counts for the identity it was made for.
pub fn code_hash(identity: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{identity}\n{code}").as_bytes()))
}

/// A new six-digit code.
fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// Follows new inbound chat messages and acts on `/link` ones.
pub struct CodeLinker {
    pub pipeline: Arc<Pipeline>,
    /// Woken when an answer or a code mail was queued, once its batch committed.
    pub wake_outbox: Option<Arc<tokio::sync::Notify>>,
    /// Something was queued in the batch being handled.
    queued: std::sync::atomic::AtomicBool,
}

impl CodeLinker {
    pub fn new(pipeline: Arc<Pipeline>, wake_outbox: Option<Arc<tokio::sync::Notify>>) -> Self {
        CodeLinker {
            pipeline,
            wake_outbox,
            queued: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Handler for CodeLinker {
    fn name(&self) -> &'static str {
        FOLLOWER
    }

    fn handle<'a>(&'a self, conn: &'a mut Conn, events: &'a [Event]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for e in events {
                if e.kind != EventKind::MessageAdded.as_str()
                    || !e.data.contains(r#""kind":"customer""#)
                    || e.data.contains(r#""channel":"email""#)
                {
                    continue;
                }
                let Some(row) = e.message_row else {
                    continue;
                };
                if self.one(conn, row).await? {
                    self.queued.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            Ok(())
        })
    }

    fn committed(&self) {
        if self.queued.swap(false, std::sync::atomic::Ordering::SeqCst)
            && let Some(w) = &self.wake_outbox
        {
            w.notify_one();
        }
    }
}

impl CodeLinker {
    /// Acts on message `row` if it is a `/link` line; true when something was queued.
    async fn one(&self, conn: &mut Conn, row: i64) -> Result<bool> {
        let Some(m) = link_codes::chat_message(conn, row).await? else {
            return Ok(false);
        };
        let (Some(identity), Some(ticket)) = (m.from_addr.clone(), m.ticket_id) else {
            return Ok(false);
        };
        let now = self.pipeline.clock().now();
        if let Some(phone) = m.verified_phone.clone() {
            let (chat_customer, linked) = link_codes::customer_of(conn, &identity).await?;
            let answer = match (linked, chat_customer) {
                (Some(l), _) => format!("This chat is already linked to {}.", mask(&l)),
                (None, Some(customer)) => {
                    self.by_phone(conn, &identity, customer, &phone, ticket, now)
                        .await?
                }
                (None, None) => return Ok(false),
            };
            self.answer(conn, ticket, &answer, now).await?;
            return Ok(true);
        }
        let Some(what) = parse(&m.body_text) else {
            return Ok(false);
        };
        let (chat_customer, linked) = link_codes::customer_of(conn, &identity).await?;
        let answer = match (&what, &linked) {
            (LinkText::Usage, _) => format!(
                "To link this chat to your email address, send /link and the address, for example: /link ann@example.com. We mail you a code to send back here; it works for {CODE_MINUTES} minutes."
            ),
            (_, Some(l)) => format!("This chat is already linked to {}.", mask(l)),
            (LinkText::Request(email), None) => {
                self.request(conn, &identity, &m, email, ticket, now)
                    .await?
            }
            (LinkText::Code(code), None) => match chat_customer {
                Some(customer) => {
                    self.verify(conn, &identity, customer, code, ticket, now)
                        .await?
                }
                None => "No code is waiting for this chat.".to_string(),
            },
        };
        self.answer(conn, ticket, &answer, now).await?;
        Ok(true)
    }

    async fn request(
        &self,
        conn: &mut Conn,
        identity: &str,
        m: &link_codes::ChatMessage,
        email: &str,
        ticket: TicketId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String> {
        let now_s = db_time(now);
        let since = db_time(now - chrono::Duration::hours(24));
        let (by_identity, by_email) =
            link_codes::recent_counts(conn, identity, email, &since).await?;
        if by_identity >= PER_IDENTITY_PER_DAY || by_email >= PER_ADDRESS_PER_DAY {
            tracing::warn!(
                "Ticket #{ticket}: no link code mailed for {identity}: {by_identity} asked by it, {by_email} for the address in 24 hours"
            );
            return Ok(
                "Too many codes were asked for today. Please try again tomorrow, or ask the agent on this ticket to link you."
                    .to_string(),
            );
        }
        let code = new_code();
        let expires = db_time(now + chrono::Duration::minutes(CODE_MINUTES));
        link_codes::insert(
            conn,
            identity,
            email,
            &code_hash(identity, &code),
            Some(ticket),
            &now_s,
            &expires,
        )
        .await?;
        let cfg = self.pipeline.config();
        let platform = crate::domain::Channel::of_identity(identity)
            .map_or("chat".to_string(), |c| platform_name(c).to_string());
        let composed = compose::internal_mail(
            cfg,
            self.pipeline.templates(),
            &compose::InternalMail {
                template: "link-code",
                ticket: None,
                to: &[email.to_string()],
                data: serde_json::json!({
                    "platform": platform,
                    "chat_name": m.from_name.as_deref().map(|n| compose::neutralised(n, 80)),
                    "code": code,
                    "minutes": CODE_MINUTES,
                }),
                urgent: false,
            },
        )?;
        // Not stored as a ticket message: the code must not sit in the ticket's history.
        crate::agent::queue_internal(
            &self.pipeline,
            conn,
            None,
            MessageKind::AutoReply,
            &composed,
            &now_s,
        )
        .await?;
        tracing::info!("Ticket #{ticket}: a link code for {identity} mailed to {email}");
        Ok(format!(
            "We mailed a code to {}. Send it here as /link and the six digits within {CODE_MINUTES} minutes. Nothing changes without it.",
            mask(email)
        ))
    }

    async fn verify(
        &self,
        conn: &mut Conn,
        identity: &str,
        customer: i64,
        code: &str,
        ticket: TicketId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String> {
        let now_s = db_time(now);
        let Some(p) = link_codes::pending(conn, identity, &now_s).await? else {
            return Ok(format!(
                "No code is waiting for this chat (a code works for {CODE_MINUTES} minutes). Send /link and your email address for a new one."
            ));
        };
        link_codes::count_attempt(conn, p.id).await?;
        if p.code_hash != code_hash(identity, code) {
            let left = MAX_TRIES - (p.attempts + 1);
            if left <= 0 {
                link_codes::finish(conn, p.id, &now_s).await?;
                tracing::warn!(
                    "Ticket #{ticket}: the link code for {identity} was burnt after {MAX_TRIES} wrong tries"
                );
                return Ok(
                    "That code is wrong, and it was the last try: the code no longer works. Send /link and your email address for a new one."
                        .to_string(),
                );
            }
            return Ok(format!("That code is wrong. {left} tries left."));
        }
        link_codes::finish(conn, p.id, &now_s).await?;
        profiles::link_identity(conn, customer, &p.email, "code", None, Some(ticket), &now_s)
            .await?;
        tracing::info!(
            "Ticket #{ticket}: {identity} linked to {} by a mailed code",
            p.email
        );
        Ok(format!(
            "Thank you: this chat is now linked to {}. We will treat your messages here and by mail as one conversation.",
            mask(&p.email)
        ))
    }

    /// The sender shared the phone number the platform verified: linked to the one email
    /// customer whose profile has it; none or several, nothing is linked.
    async fn by_phone(
        &self,
        conn: &mut Conn,
        identity: &str,
        customer: i64,
        phone: &str,
        ticket: TicketId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String> {
        let found = profiles::customers_with_phone(conn, phone).await?;
        let [(_, email)] = found.as_slice() else {
            if found.len() > 1 {
                tracing::warn!(
                    "Ticket #{ticket}: {identity}'s verified number is on {} profiles; nothing linked",
                    found.len()
                );
            }
            return Ok(
                "Thank you. We could not match this number to one customer account; send /link and your email address to link this chat by a code instead."
                    .to_string(),
            );
        };
        profiles::link_identity(
            conn,
            customer,
            email,
            "phone",
            None,
            Some(ticket),
            &db_time(now),
        )
        .await?;
        tracing::info!(
            "Ticket #{ticket}: {identity} linked to {email} by its verified phone number"
        );
        Ok(format!(
            "Thank you: your number matches {}, and this chat is now linked to it.",
            mask(email)
        ))
    }

    /// The linker's answer, into the chat the message came from.
    async fn answer(
        &self,
        conn: &mut Conn,
        ticket: TicketId,
        text: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let Some(t) = tickets::find_ticket(conn, ticket).await? else {
            return Ok(());
        };
        let ctx = messages::get_reply_context(conn, t.id).await?;
        if ctx.channel == crate::domain::Channel::Email {
            return Ok(());
        }
        if let Err(e) = crate::agent::queue_on_channel(
            &self.pipeline,
            conn,
            &t,
            &ctx,
            text,
            MessageKind::AutoReply,
            &db_time(now),
        )
        .await
        {
            tracing::warn!("Ticket #{ticket}: the link answer cannot be queued: {e:#}");
        }
        Ok(())
    }
}

/// The platform's name as customers know it.
fn platform_name(c: crate::domain::Channel) -> &'static str {
    match c {
        crate::domain::Channel::Telegram => "Telegram",
        crate::domain::Channel::Matrix => "Matrix",
        crate::domain::Channel::Json => "chat",
        crate::domain::Channel::Email => "email",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_lines_are_read_and_everything_else_is_not() {
        assert_eq!(
            parse("/link Ann@Example.COM"),
            Some(LinkText::Request("Ann@example.com".into()))
        );
        assert_eq!(
            parse("  \n!LINK ann@example.com\nthanks"),
            Some(LinkText::Request("ann@example.com".into()))
        );
        assert_eq!(
            parse("/link@shop_bot 042317"),
            Some(LinkText::Code("042317".into()))
        );
        assert_eq!(parse("/link"), Some(LinkText::Usage));
        assert_eq!(parse("/link 12345"), Some(LinkText::Usage));
        assert_eq!(
            parse("/link a@b.example c@d.example"),
            Some(LinkText::Usage)
        );
        assert_eq!(parse("/link not-an-address"), Some(LinkText::Usage));
        assert_eq!(parse("please link ann@example.com"), None);
        assert_eq!(parse("/linked 123456"), None);
        assert_eq!(parse("123456"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn an_address_is_masked_and_a_code_counts_only_for_its_identity() {
        assert_eq!(mask("ann@example.com"), "a•••@example.com");
        assert_eq!(mask("李@例子.中国"), "李•••@例子.中国");
        assert_eq!(mask("nonsense"), "•••");
        let h = code_hash("telegram:shop_bot:1", "123456");
        assert_eq!(h, code_hash("telegram:shop_bot:1", "123456"));
        assert_ne!(h, code_hash("telegram:shop_bot:2", "123456"));
        assert_ne!(h, code_hash("telegram:shop_bot:1", "123457"));
    }

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let c = new_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
