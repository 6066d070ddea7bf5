//! One-time codes that link a chat identity to an email address (issue 15): asked for in
//! the chat, mailed to the address, sent back in the chat. Only a hash of each code is
//! kept.

use sqlx::{FromRow, SqliteConnection};

use super::Result;
use crate::domain::TicketId;

/// Codes asked for since `since` by `identity`, and for `email` by anyone.
pub async fn recent_counts(
    conn: &mut SqliteConnection,
    identity: &str,
    email: &str,
    since: &str,
) -> Result<(i64, i64)> {
    let by_identity: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM link_codes WHERE identity = ? AND created_at >= ?",
    )
    .bind(identity)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    let by_email: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM link_codes WHERE email = ? COLLATE NOCASE AND created_at >= ?",
    )
    .bind(email)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    Ok((by_identity, by_email))
}

/// Records a new code; earlier unused codes of the identity stop counting.
pub async fn insert(
    conn: &mut SqliteConnection,
    identity: &str,
    email: &str,
    code_hash: &str,
    ticket: Option<TicketId>,
    now: &str,
    expires: &str,
) -> Result<()> {
    sqlx::query("UPDATE link_codes SET used_at = ? WHERE identity = ? AND used_at IS NULL")
        .bind(now)
        .bind(identity)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO link_codes (identity, email, code_hash, ticket_id, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(identity)
    .bind(email)
    .bind(code_hash)
    .bind(ticket)
    .bind(now)
    .bind(expires)
    .execute(conn)
    .await?;
    Ok(())
}

/// A code waiting to be sent back.
#[derive(Debug, Clone, FromRow)]
pub struct Pending {
    pub id: i64,
    pub email: String,
    pub code_hash: String,
    pub attempts: i64,
}

/// The identity's unused, unexpired code, if any.
pub async fn pending(
    conn: &mut SqliteConnection,
    identity: &str,
    now: &str,
) -> Result<Option<Pending>> {
    Ok(sqlx::query_as(
        "SELECT id, email, code_hash, attempts FROM link_codes \
         WHERE identity = ? AND used_at IS NULL AND expires_at > ? ORDER BY id DESC LIMIT 1",
    )
    .bind(identity)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

/// Counts one more try of code `id`.
pub async fn count_attempt(conn: &mut SqliteConnection, id: i64) -> Result<()> {
    sqlx::query("UPDATE link_codes SET attempts = attempts + 1 WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Code `id` is done with (used, or burnt by too many tries).
pub async fn finish(conn: &mut SqliteConnection, id: i64, now: &str) -> Result<()> {
    sqlx::query("UPDATE link_codes SET used_at = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What the code linker needs of a stored chat message.
#[derive(Debug, Clone, FromRow)]
pub struct ChatMessage {
    pub ticket_id: Option<TicketId>,
    /// The sender's identity (`telegram:shop_bot:42`).
    pub from_addr: Option<String>,
    pub from_name: Option<String>,
    pub channel: String,
    pub body_text: String,
    /// The phone number the platform verified for the sender, if it sent one.
    pub verified_phone: Option<String>,
}

/// Message `row`, if it is an inbound customer message of a chat channel.
pub async fn chat_message(conn: &mut SqliteConnection, row: i64) -> Result<Option<ChatMessage>> {
    Ok(sqlx::query_as(
        "SELECT ticket_id, from_addr, from_name, channel, body_text, verified_phone FROM messages \
         WHERE id = ? AND direction = 'inbound' AND kind = 'customer' AND channel <> 'email'",
    )
    .bind(row)
    .fetch_optional(conn)
    .await?)
}

/// The customer row of identity (or address) `key`, and the address it is linked to.
pub async fn customer_of(
    conn: &mut SqliteConnection,
    key: &str,
) -> Result<(Option<i64>, Option<String>)> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM customers WHERE email = ?")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    let linked: Option<String> = sqlx::query_scalar(
        "SELECT c.email FROM customer_links l JOIN customers c ON c.id = l.customer_id \
         WHERE l.identity = ?",
    )
    .bind(key)
    .fetch_optional(conn)
    .await?;
    Ok((id, linked))
}
