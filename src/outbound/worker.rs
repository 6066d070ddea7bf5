//! The outbox worker: sends queued mail over SMTP with lettre.
//!
//! RFC 5321 reply codes decide what happens: 4xx and timeouts/connection failures are
//! transient and retried with exponential backoff (1 minute doubling to 1 hour) up to
//! `max_attempts`; 5xx is permanent and the mail is marked failed at once. The stored raw
//! bytes are sent as they are, so every attempt carries the same Message-ID. A global
//! governor rate limit protects the relay.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio_util::sync::CancellationToken;

use crate::channels::json::client::DeliveryOutcome;
use crate::clock::{Clock, db_time};
use crate::config::{JsonChannelConfig, Security, SmtpConfig};
use crate::domain::Channel;
use crate::store::{Store, outbox};

/// How a send attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    Sent,
    Transient(String),
    /// Transient, and the other side said when to come back (`Retry-After`): not sooner.
    TransientAfter(String, Duration),
    Permanent(String),
    /// It may have been delivered and cannot be repeated safely (a chat send that got no
    /// answer): failed, not retried, and the ticket's agent is told.
    Parked(String),
}

/// What one flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

pub struct Outbox {
    store: Store,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    limiter: DefaultDirectRateLimiter,
    clock: Arc<dyn Clock>,
    max_attempts: u32,
    retry_base: Duration,
    /// Bound on one whole SMTP conversation.
    timeout: Duration,
    /// The channel accounts this worker pushes to (`json:sms`); see `outbox::list_due`.
    pushed: Vec<String>,
    /// The JSON channel's push accounts, by name, and the HTTP client they share.
    json: std::collections::HashMap<String, JsonChannelConfig>,
    http: Option<reqwest::Client>,
    /// The Matrix accounts' senders, by account.
    matrix: std::collections::HashMap<String, crate::channels::matrix::send::Transport>,
    /// The Telegram bots' senders, by account.
    telegram: std::collections::HashMap<String, crate::channels::telegram::send::Transport>,
    /// What the notice about a parked send is composed with (None: it is only logged).
    notices: Option<(
        Arc<crate::config::Config>,
        Arc<crate::outbound::templates::Templates>,
    )>,
}

/// Delay before attempt `attempts + 1`: `base` (a minute by default) doubling, at most
/// one hour.
pub fn retry_delay(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1u32 << attempts.min(12))
        .min(Duration::from_secs(3600))
}

fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(path) = &cfg.tls_ca_file {
        let pem = std::fs::read(path).with_context(|| format!("Reading {}", path.display()))?;
        let cert = lettre::transport::smtp::client::Certificate::from_pem(&pem)
            .with_context(|| format!("Parsing {}", path.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls().context("TLS parameters for SMTP")
}

fn build_transport(cfg: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
        .port(cfg.port)
        .timeout(Some(cfg.timeout));
    match cfg.security {
        Security::Plain => b = b.tls(Tls::None),
        Security::StartTls => b = b.tls(Tls::Required(tls_parameters(cfg)?)),
        Security::Tls => b = b.tls(Tls::Wrapper(tls_parameters(cfg)?)),
    }
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        b = b.credentials(Credentials::new(u.clone(), p.expose().to_string()));
    }
    Ok(b.build())
}

impl Outbox {
    pub fn new(store: Store, cfg: &SmtpConfig, clock: Arc<dyn Clock>) -> Result<Outbox> {
        let per_min = NonZeroU32::new(cfg.rate_per_minute).unwrap_or(NonZeroU32::MIN);
        Ok(Outbox {
            store,
            transport: build_transport(cfg)?,
            limiter: RateLimiter::direct(Quota::per_minute(per_min).allow_burst(per_min)),
            clock,
            max_attempts: cfg.max_attempts,
            retry_base: cfg.retry_base,
            // The configured timeout bounds each step; a whole conversation gets a few.
            timeout: cfg.timeout.saturating_mul(4),
            pushed: Vec::new(),
            json: Default::default(),
            http: None,
            telegram: Default::default(),
            matrix: Default::default(),
            notices: None,
        })
    }

    /// Adds the JSON channel's transport for the accounts that have a `deliver_url`; the
    /// others' rows wait in the outbox for their relay to pull them.
    pub fn with_json_channels(mut self, accounts: &[JsonChannelConfig]) -> Result<Outbox> {
        for a in accounts.iter().filter(|a| a.deliver_url.is_some()) {
            self.pushed.push(format!("{}:{}", Channel::Json, a.account));
            self.json.insert(a.account.clone(), a.clone());
        }
        if !self.json.is_empty() {
            self.http = Some(crate::channels::json::client::http_client()?);
        }
        Ok(self)
    }

    /// Adds the Telegram transport for `bots`.
    pub fn with_telegram(
        mut self,
        bots: &[crate::config::TelegramChannelConfig],
    ) -> Result<Outbox> {
        for b in bots {
            self.pushed
                .push(format!("{}:{}", Channel::Telegram, b.account));
            self.telegram.insert(
                b.account.clone(),
                crate::channels::telegram::send::Transport::new(b)?,
            );
        }
        Ok(self)
    }

    /// Lets the worker mail the ticket's agent (or the admins) about a parked send.
    pub fn with_notices(
        mut self,
        cfg: Arc<crate::config::Config>,
        templates: Arc<crate::outbound::templates::Templates>,
    ) -> Outbox {
        self.notices = Some((cfg, templates));
        self
    }

    /// One attempt on the transport of the row's channel, and the row's payload to keep
    /// when the transport moved on through it.
    async fn send(&self, item: &outbox::OutboxItem) -> (SendResult, Option<String>) {
        match item.channel {
            Channel::Email => (self.send_mail(item).await, None),
            Channel::Json => (self.send_json(item).await, None),
            Channel::Telegram => self.send_telegram(item).await,
            Channel::Matrix => self.send_matrix(item).await,
        }
    }

    async fn send_matrix(&self, item: &outbox::OutboxItem) -> (SendResult, Option<String>) {
        use crate::channels::matrix::send::Sent;
        let account = item.account.as_deref().unwrap_or_default();
        let Some(t) = self.matrix.get(account) else {
            return (
                SendResult::Permanent(format!("no Matrix account {account:?} is configured")),
                None,
            );
        };
        let payload = item.payload.as_deref().unwrap_or("{}");
        let result = match t.send(item.id, payload).await {
            // The event id is kept in the payload (`sent_ids`), from which `record` notes
            // it for the customer's replies.
            Sent::DoneAs(event) => {
                let mut v: serde_json::Value =
                    serde_json::from_str(payload).unwrap_or_else(|_| serde_json::json!({}));
                if let Some(o) = v.as_object_mut() {
                    o.insert("sent_ids".into(), serde_json::json!([event]));
                }
                return (SendResult::Sent, Some(v.to_string()));
            }
            Sent::Done => SendResult::Sent,
            Sent::Retry {
                reason,
                after: Some(after),
            } => SendResult::TransientAfter(reason, after),
            Sent::Retry { reason, .. } => SendResult::Transient(reason),
            Sent::Failed(reason) => SendResult::Permanent(reason),
        };
        (result, None)
    }

    /// Adds the Matrix transport for `accounts`.
    pub fn with_matrix(mut self, accounts: &[crate::config::MatrixChannelConfig]) -> Outbox {
        for a in accounts {
            self.pushed
                .push(format!("{}:{}", Channel::Matrix, a.account));
            self.matrix.insert(
                a.account.clone(),
                crate::channels::matrix::send::Transport::new(a),
            );
        }
        self
    }

    async fn send_telegram(&self, item: &outbox::OutboxItem) -> (SendResult, Option<String>) {
        use crate::channels::telegram::send::Sent;
        let account = item.account.as_deref().unwrap_or_default();
        let Some(t) = self.telegram.get(account) else {
            return (
                SendResult::Permanent(format!("no Telegram bot {account:?} is configured")),
                None,
            );
        };
        let (sent, progress) = t.send(item.payload.as_deref().unwrap_or("{}")).await;
        let result = match sent {
            Sent::Done => SendResult::Sent,
            Sent::Retry {
                reason,
                after: Some(after),
            } => SendResult::TransientAfter(reason, after),
            Sent::Retry { reason, .. } => SendResult::Transient(reason),
            Sent::Failed(reason) => SendResult::Permanent(reason),
            Sent::Parked(reason) => SendResult::Parked(reason),
            // The poll loop disables the bot and tells the admins; the answer waits.
            Sent::Unauthorized(reason) => SendResult::TransientAfter(
                format!("the bot's token was refused: {reason}"),
                Duration::from_secs(900),
            ),
        };
        (result, progress)
    }

    async fn send_json(&self, item: &outbox::OutboxItem) -> SendResult {
        let account = item.account.as_deref().unwrap_or_default();
        let (Some(cfg), Some(http)) = (self.json.get(account), &self.http) else {
            return SendResult::Permanent(format!(
                "no push account {account:?} for the JSON channel"
            ));
        };
        let payload = item.payload.as_deref().unwrap_or("{}");
        let now = self.clock.now().timestamp();
        match crate::channels::json::source::send(http, cfg, item.id, payload, now).await {
            DeliveryOutcome::Delivered => SendResult::Sent,
            DeliveryOutcome::Retry {
                reason,
                retry_after: Some(after),
            } => SendResult::TransientAfter(reason, after),
            DeliveryOutcome::Retry { reason, .. } => SendResult::Transient(reason),
            DeliveryOutcome::Failed(reason) => SendResult::Permanent(reason),
        }
    }

    async fn send_mail(&self, item: &outbox::OutboxItem) -> SendResult {
        let from = item.mail_from.parse().ok();
        let to: Vec<_> = item.rcpt_to.iter().filter_map(|r| r.parse().ok()).collect();
        let envelope = match Envelope::new(from, to) {
            Ok(e) => e,
            Err(e) => return SendResult::Permanent(format!("invalid envelope: {e}")),
        };
        // lettre bounds only the TCP connect with its timeout; the TLS handshake and the
        // replies are not, so the whole conversation is bounded here (a stalled relay is a
        // transient failure, retried later).
        match tokio::time::timeout(self.timeout, self.transport.send_raw(&envelope, &item.raw))
            .await
        {
            Err(_) => SendResult::Transient(format!(
                "SMTP conversation timed out after {}s",
                self.timeout.as_secs()
            )),
            Ok(Ok(_)) => SendResult::Sent,
            Ok(Err(e)) if e.is_permanent() => SendResult::Permanent(e.to_string()),
            Ok(Err(e)) => SendResult::Transient(e.to_string()),
        }
    }

    /// Sends every mail that is due now, once each. Stops early when cancelled (the mail in
    /// flight is finished and recorded first).
    pub async fn flush(&self, cancel: &CancellationToken) -> Result<FlushStats> {
        let mut stats = FlushStats::default();
        // Each mail gets at most one attempt per flush, even when its retry is due at once.
        let mut attempted = std::collections::HashSet::new();
        loop {
            let now = db_time(self.clock.now());
            let mut conn = self.store.pool().acquire().await?;
            let due: Vec<_> =
                outbox::list_due(&mut conn, &now, 50 + attempted.len() as i64, &self.pushed)
                    .await?
                    .into_iter()
                    .filter(|i| !attempted.contains(&i.id))
                    .collect();
            drop(conn);
            if due.is_empty() {
                return Ok(stats);
            }
            for item in &due {
                attempted.insert(item.id);
                if cancel.is_cancelled() {
                    return Ok(stats);
                }
                self.limiter.until_ready().await;
                let (result, progress) = self.send(item).await;
                // Recording the result is retried: a mail the relay accepted but we failed to
                // mark as sent would otherwise go out a second time on the next flush.
                let mut tries = 0;
                loop {
                    match self.record(item, &result, progress.as_deref()).await {
                        Ok(()) => {
                            match &result {
                                SendResult::Sent => stats.sent += 1,
                                SendResult::Transient(_) | SendResult::TransientAfter(..)
                                    if item.attempts + 1 < self.max_attempts =>
                                {
                                    stats.retrying += 1
                                }
                                _ => stats.failed += 1,
                            }
                            break;
                        }
                        Err(e) if tries < 5 => {
                            tries += 1;
                            tracing::warn!(
                                "Outbox: recording <{}> failed, retrying: {e:#}",
                                item.message_id
                            );
                            tokio::time::sleep(Duration::from_secs(1 << tries)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Writes the outcome of one attempt.
    async fn record(
        &self,
        item: &outbox::OutboxItem,
        result: &SendResult,
        progress: Option<&str>,
    ) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.store.begin_write().await?;
        if let Some(payload) = progress {
            outbox::set_payload(&mut tx, item.id, payload).await?;
            // Our chat messages' ids, so that a customer's reply to one finds its ticket.
            let v: serde_json::Value =
                serde_json::from_str(payload).unwrap_or(serde_json::Value::Null);
            let ids: Vec<String> = v
                .get("sent_ids")
                .cloned()
                .and_then(|ids| serde_json::from_value(ids).ok())
                .unwrap_or_default();
            if let (Some(account), Some(conversation)) = (
                item.account.as_deref(),
                v.get("conversation_id").and_then(serde_json::Value::as_str),
            ) && !ids.is_empty()
            {
                outbox::record_chat_sent(&mut tx, item, account, conversation, &ids).await?;
            }
        }
        let failure = match result {
            SendResult::Sent => None,
            SendResult::Parked(_) => Some("parked"),
            SendResult::Permanent(_) => Some("permanent"),
            SendResult::Transient(_) | SendResult::TransientAfter(..) => Some("transient"),
        };
        if let Some(kind) = failure {
            metrics::counter!(
                "postdesk_send_failures_total",
                "channel" => item.channel.to_string(),
                "kind" => kind
            )
            .increment(1);
        }
        match result {
            SendResult::Sent => {
                outbox::mark_sent(&mut tx, item.id, &db_time(now)).await?;
                tracing::info!(
                    "Outbox: sent <{}> to {}.",
                    item.message_id,
                    item.rcpt_to.join(", ")
                );
            }
            SendResult::Parked(e) => {
                outbox::mark_failed(&mut tx, item.id, &format!("parked, not resent: {e}")).await?;
                tracing::error!(
                    "Outbox: <{}> parked for an agent (not resent blindly): {e}",
                    item.message_id
                );
                self.notice_parked(&mut tx, item, e, &db_time(now)).await?;
            }
            SendResult::Permanent(e) => {
                outbox::mark_failed(&mut tx, item.id, e).await?;
                tracing::error!("Outbox: <{}> failed permanently: {e}", item.message_id);
            }
            SendResult::Transient(e) | SendResult::TransientAfter(e, _)
                if item.attempts + 1 >= self.max_attempts =>
            {
                outbox::mark_failed(
                    &mut tx,
                    item.id,
                    &format!("gave up after {} attempts: {e}", item.attempts + 1),
                )
                .await?;
                tracing::error!(
                    "Outbox: <{}> given up after {} attempts: {e}",
                    item.message_id,
                    item.attempts + 1
                );
            }
            SendResult::Transient(e) | SendResult::TransientAfter(e, _) => {
                let mut delay = retry_delay(self.retry_base, item.attempts);
                if let SendResult::TransientAfter(_, after) = result {
                    delay = delay.max(*after);
                }
                let next = now
                    + chrono::Duration::from_std(delay)
                        .unwrap_or_else(|_| chrono::Duration::hours(1));
                outbox::mark_retry(&mut tx, item.id, e, &db_time(next)).await?;
                tracing::warn!(
                    "Outbox: <{}> will be retried in {}s: {e}",
                    item.message_id,
                    delay.as_secs()
                );
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Tells the ticket's agent (or, with none, the admins) that an answer may not have
    /// reached the customer, in the transaction that parks it.
    async fn notice_parked(
        &self,
        conn: &mut crate::store::Conn,
        item: &outbox::OutboxItem,
        why: &str,
        now: &str,
    ) -> Result<()> {
        let Some((cfg, templates)) = &self.notices else {
            return Ok(());
        };
        let assignee = match item.ticket_id {
            Some(t) => crate::store::agent::find_assignee(conn, t).await?,
            None => None,
        };
        let email_of = |name: &str| {
            cfg.agents
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.email.clone())
        };
        let mut to: Vec<String> = assignee.as_deref().and_then(email_of).into_iter().collect();
        if to.is_empty() {
            to.extend(cfg.admin_email.iter().cloned());
            to.extend(
                cfg.agents
                    .iter()
                    .filter(|a| a.admin)
                    .map(|a| a.email.clone()),
            );
        }
        if to.is_empty() {
            return Ok(());
        }
        let text = item
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default();
        let mut lines = vec![
            format!(
                "An answer on ticket #{} may or may not have reached the customer on {}.",
                item.ticket_id.unwrap_or(0),
                item.channel
            ),
            crate::channels::email::compose::neutralised(why, 500),
            String::new(),
            "It is not sent again by itself: the platform takes no idempotency key, so a blind resend could reach the customer twice."
                .to_string(),
            "Look at the chat; if it is not there, reply to the ticket again.".to_string(),
            String::new(),
            "The answer:".to_string(),
        ];
        lines.extend(
            text.lines()
                .take(200)
                .map(|l| crate::channels::email::compose::neutralised(l, 2000)),
        );
        let mail = crate::channels::email::compose::internal_mail(
            cfg,
            templates,
            &crate::channels::email::compose::InternalMail {
                template: "agent-notice",
                ticket: item.ticket_id,
                to: &to,
                data: serde_json::json!({
                    "what": format!("an answer on ticket #{} was parked", item.ticket_id.unwrap_or(0)),
                    "lines": lines,
                }),
                urgent: false,
            },
        )?;
        outbox::insert_outbox(
            conn,
            &outbox::NewOutbox {
                message_row: None,
                ticket_id: item.ticket_id,
                kind: crate::domain::MessageKind::Receipt.as_str(),
                message_id: &mail.message_id,
                mail_from: &cfg.smtp.from.address,
                rcpt_to: &mail.to,
                raw: &mail.raw,
                now,
            },
        )
        .await?;
        Ok(())
    }

    /// Runs until cancelled: flush, then sleep until the next due mail, a wake-up from the
    /// ingest loops, or at most a minute.
    pub async fn run_loop(
        self: Arc<Self>,
        wake: Arc<tokio::sync::Notify>,
        cancel: CancellationToken,
    ) {
        while !cancel.is_cancelled() {
            // A flush runs in its own task: even a panic (a bug) only costs this round.
            let (me, c) = (self.clone(), cancel.clone());
            match tokio::spawn(async move { me.flush(&c).await }).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!("Outbox: {e:#}"),
                Err(e) => tracing::error!("Outbox: the flush task failed: {e}"),
            }
            let sleep = self
                .time_to_next_due()
                .await
                .unwrap_or(Duration::from_secs(60));
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        tracing::info!("Outbox: stopped.");
    }

    async fn time_to_next_due(&self) -> Option<Duration> {
        let mut conn = self.store.pool().acquire().await.ok()?;
        let next = outbox::next_due(&mut conn, &self.pushed).await.ok()??;
        let next = chrono::DateTime::parse_from_rfc3339(&next).ok()?;
        let d = next.with_timezone(&chrono::Utc) - self.clock.now();
        Some(
            d.to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(50), Duration::from_secs(60)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_an_hour() {
        let m = Duration::from_secs(60);
        assert_eq!(retry_delay(m, 0), Duration::from_secs(60));
        assert_eq!(retry_delay(m, 1), Duration::from_secs(120));
        assert_eq!(retry_delay(m, 10), Duration::from_secs(3600));
        assert_eq!(retry_delay(Duration::ZERO, 3), Duration::ZERO);
    }
}
