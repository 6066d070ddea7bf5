//! The outbox: mail waiting to be sent, its attempts, and the acknowledgement log used for
//! the per-sender cap.

use sqlx::{Row, SqliteConnection};

use super::Result;
use crate::domain::TicketId;

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

pub async fn insert_outbox(conn: &mut SqliteConnection, o: &NewOutbox<'_>) -> Result<i64> {
    let rcpt = serde_json::to_string(o.rcpt_to).unwrap_or_else(|_| "[]".to_string());
    Ok(sqlx::query_scalar::<_, i64>(
        "INSERT INTO outbox (message_row, ticket_id, kind, message_id, mail_from, rcpt_to, raw, \
         status, attempts, next_attempt_at, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) RETURNING id",
    )
    .bind(o.message_row)
    .bind(o.ticket_id)
    .bind(o.kind)
    .bind(o.message_id)
    .bind(o.mail_from)
    .bind(rcpt)
    .bind(o.raw)
    .bind(o.now)
    .bind(o.now)
    .fetch_one(conn)
    .await?)
}

/// A queued mail ready to be sent.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
    pub attempts: u32,
}

/// Pending mail whose next attempt is due at `now`, oldest first.
pub async fn list_due(
    conn: &mut SqliteConnection,
    now: &str,
    limit: i64,
) -> Result<Vec<OutboxItem>> {
    let rows = sqlx::query(
        "SELECT id, message_id, mail_from, rcpt_to, raw, attempts FROM outbox \
         WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let rcpt: String = r.try_get("rcpt_to")?;
            Ok(OutboxItem {
                id: r.try_get("id")?,
                message_id: r.try_get("message_id")?,
                mail_from: r.try_get("mail_from")?,
                rcpt_to: serde_json::from_str(&rcpt).unwrap_or_default(),
                raw: r.try_get("raw")?,
                attempts: r.try_get::<i64, _>("attempts")? as u32,
            })
        })
        .collect()
}

/// The earliest next attempt of any pending mail, to know how long to sleep.
pub async fn next_due(conn: &mut SqliteConnection) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'",
    )
    .fetch_one(conn)
    .await?)
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
