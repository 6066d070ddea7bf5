//! The outbox: mail waiting to be sent, its attempts, and the acknowledgement log used for
//! the per-sender cap.

use sqlx::{Row, SqliteConnection};

use std::str::FromStr as _;

use super::{Result, bulk};
use crate::domain::{Channel, MessageKind, TicketId};

pub struct NewOutbox<'a> {
    pub message_row: Option<i64>,
    pub ticket_id: Option<TicketId>,
    pub kind: &'a str,
    pub message_id: &'a str,
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
    pub raw: &'a [u8],
    pub now: &'a str,
}

/// Queues one mail: the same statement as a unit of work's rows ([`bulk::insert_outbox`]).
pub async fn insert_outbox(conn: &mut SqliteConnection, o: &NewOutbox<'_>) -> Result<()> {
    let kind = MessageKind::from_str(o.kind).map_or("mail", MessageKind::as_str);
    let row = bulk::OutboxRow {
        message_row: o.message_row,
        ticket_id: o.ticket_id,
        kind,
        message_id: o.message_id.to_string(),
        channel: Channel::Email.as_str(),
        account: None,
        payload: None,
        mail_from: o.mail_from.to_string(),
        rcpt_json: serde_json::to_string(o.rcpt_to).unwrap_or_else(|_| "[]".to_string()),
        raw: o.raw.to_vec(),
    };
    bulk::insert_outbox(conn, std::slice::from_ref(&row), o.now).await
}

/// Queues a reply for a channel other than email: `payload` is what its transport sends.
#[allow(clippy::too_many_arguments)]
pub async fn insert_channel_outbox(
    conn: &mut SqliteConnection,
    message_row: i64,
    ticket: TicketId,
    channel: Channel,
    account: &str,
    message_id: &str,
    payload: &serde_json::Value,
    now: &str,
) -> Result<()> {
    let row = bulk::OutboxRow {
        message_row: Some(message_row),
        ticket_id: Some(ticket),
        kind: MessageKind::AgentReply.as_str(),
        message_id: message_id.to_string(),
        channel: channel.as_str(),
        account: Some(account.to_string()),
        payload: Some(payload.to_string()),
        mail_from: String::new(),
        rcpt_json: "[]".to_string(),
        raw: Vec::new(),
    };
    bulk::insert_outbox(conn, std::slice::from_ref(&row), now).await
}

/// A queued mail ready to be sent.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub ticket_id: Option<TicketId>,
    pub channel: Channel,
    pub account: Option<String>,
    /// The payload of a channel other than email (JSON).
    pub payload: Option<String>,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
    pub attempts: u32,
}

/// Which rows the worker sends: all email, and the channel accounts it pushes to
/// (`channel:account`). A pull account's rows wait for its relay to fetch them.
macro_rules! worker_rows {
    () => {
        "status = 'pending' AND (channel = 'email' OR \
         channel || ':' || COALESCE(account, '') IN (SELECT value FROM json_each(?)))"
    };
}

/// Pending rows the worker sends whose next attempt is due at `now`, oldest first.
/// `pushed` names the channel accounts (`json:sms`) that have a push transport.
pub async fn list_due(
    conn: &mut SqliteConnection,
    now: &str,
    limit: i64,
    pushed: &[String],
) -> Result<Vec<OutboxItem>> {
    let rows = sqlx::query(concat!(
        "SELECT id, ticket_id, message_id, mail_from, rcpt_to, raw, attempts, channel, account, \
         payload FROM outbox WHERE ",
        worker_rows!(),
        " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"
    ))
    .bind(serde_json::to_string(pushed).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let rcpt: String = r.try_get("rcpt_to")?;
            let channel: String = r.try_get("channel")?;
            Ok(OutboxItem {
                id: r.try_get("id")?,
                ticket_id: r.try_get("ticket_id")?,
                channel: channel.parse().unwrap_or_default(),
                account: r.try_get("account")?,
                payload: r.try_get("payload")?,
                message_id: r.try_get("message_id")?,
                mail_from: r.try_get("mail_from")?,
                rcpt_to: serde_json::from_str(&rcpt).unwrap_or_default(),
                raw: r.try_get("raw")?,
                attempts: r.try_get::<i64, _>("attempts")? as u32,
            })
        })
        .collect()
}

/// The earliest next attempt of any row the worker sends, to know how long to sleep.
pub async fn next_due(conn: &mut SqliteConnection, pushed: &[String]) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, Option<String>>(concat!(
        "SELECT MIN(next_attempt_at) FROM outbox WHERE ",
        worker_rows!()
    ))
    .bind(serde_json::to_string(pushed).unwrap_or_else(|_| "[]".into()))
    .fetch_one(conn)
    .await?)
}

/// A channel account's pending rows after `after`, for a relay that pulls them:
/// (id, ticket, payload).
pub async fn list_pull(
    conn: &mut SqliteConnection,
    channel: Channel,
    account: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, Option<TicketId>, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, ticket_id, COALESCE(payload, '{}') FROM outbox \
         WHERE channel = ? AND account = ? AND status = 'pending' AND id > ? ORDER BY id LIMIT ?",
    )
    .bind(channel.as_str())
    .bind(account)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Marks a pulling relay's rows up to `up_to` as delivered; returns how many.
pub async fn ack_pull(
    conn: &mut SqliteConnection,
    channel: Channel,
    account: &str,
    up_to: i64,
    now: &str,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1 \
         WHERE channel = ? AND account = ? AND status = 'pending' AND id <= ?",
    )
    .bind(now)
    .bind(channel.as_str())
    .bind(account)
    .bind(up_to)
    .execute(conn)
    .await?
    .rows_affected())
}

pub async fn mark_sent(conn: &mut SqliteConnection, id: i64, now: &str) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL \
         WHERE id = ?",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_retry(
    conn: &mut SqliteConnection,
    id: i64,
    error: &str,
    next_attempt_at: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
    )
    .bind(error)
    .bind(next_attempt_at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a channel row's payload (a transport's progress through a reply sent in
/// parts), so that a retry continues where the last attempt stopped.
pub async fn set_payload(conn: &mut SqliteConnection, id: i64, payload: &str) -> Result<()> {
    sqlx::query("UPDATE outbox SET payload = ? WHERE id = ?")
        .bind(payload)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the channel's ids of what outbox row `item` sent (`chat_sent`); ids already
/// known are kept as they are.
pub async fn record_chat_sent(
    conn: &mut SqliteConnection,
    item: &OutboxItem,
    account: &str,
    conversation: &str,
    ids: &[String],
) -> Result<()> {
    for id in ids {
        sqlx::query(
            "INSERT OR IGNORE INTO chat_sent \
             (channel, account, external_id, conversation, ticket_id, outbox_id) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(item.channel.as_str())
        .bind(account)
        .bind(id)
        .bind(conversation)
        .bind(item.ticket_id)
        .bind(item.id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub use crate::domain::inbound::ChatSentKey;

/// The tickets of our sent chat messages among `keys`; an id sent to another
/// conversation than the key's is not found.
pub async fn chat_sent_tickets(
    conn: &mut SqliteConnection,
    keys: &[ChatSentKey],
) -> Result<Vec<(ChatSentKey, TicketId)>> {
    let mut out = Vec::new();
    for key in keys {
        let (channel, account, conversation, id) = key;
        let t: Option<Option<TicketId>> = sqlx::query_scalar(
            "SELECT ticket_id FROM chat_sent WHERE channel = ? AND account = ? \
             AND external_id = ? AND conversation = ?",
        )
        .bind(channel)
        .bind(account)
        .bind(id)
        .bind(conversation)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(Some(t)) = t {
            out.push((key.clone(), t));
        }
    }
    Ok(out)
}

pub async fn mark_failed(conn: &mut SqliteConnection, id: i64, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?",
    )
    .bind(error)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The outbox row and ticket of a mail we sent, by its Message-ID (for bounces).
pub async fn find_outbox_by_message_id(
    conn: &mut SqliteConnection,
    message_id: &str,
) -> Result<Option<(i64, Option<TicketId>, Option<i64>)>> {
    Ok(sqlx::query_as::<_, (i64, Option<i64>, Option<i64>)>(
        "SELECT id, ticket_id, message_row FROM outbox WHERE message_id = ?",
    )
    .bind(message_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn count_autoreplies_since(
    conn: &mut SqliteConnection,
    recipient: &str,
    since: &str,
) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM autoreply_log WHERE recipient = ? AND created_at >= ?",
    )
    .bind(recipient)
    .bind(since)
    .fetch_one(conn)
    .await?)
}

pub async fn log_autoreply(
    conn: &mut SqliteConnection,
    recipient: &str,
    ticket: TicketId,
    now: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO autoreply_log (recipient, ticket_id, created_at) VALUES (?, ?, ?)")
        .bind(recipient)
        .bind(ticket)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Counts by status: (pending, sent, failed).
pub async fn counts(conn: &mut SqliteConnection) -> Result<(i64, i64, i64)> {
    Ok(sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'sent'), 0), \
         COALESCE(SUM(status = 'failed'), 0) FROM outbox",
    )
    .fetch_one(conn)
    .await?)
}
