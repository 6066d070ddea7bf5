//! Held messages (mail that claimed to come from an agent, or reached a ticket through
//! threading headers alone, and was kept without effect) and the notices about them.
//!
//! SQL only: when to hold, whom to tell and what `#release` does is `agent`'s job.

use sqlx::{Row, SqliteConnection};

use super::Result;
use crate::domain::TicketId;

/// A held message as the notice and `#release` need it.
#[derive(Debug, Clone)]
pub struct HeldMessage {
    pub row: i64,
    pub ticket: Option<TicketId>,
    pub kind: String,
    pub from_addr: Option<String>,
    /// To and Cc addresses, lower-cased.
    pub recipients: Vec<String>,
    pub subject: String,
    pub held_reason: String,
    /// The agent it claimed to come from (configured name), if any.
    pub agent: Option<String>,
    pub created_at: String,
}

/// The message in row `row`, held or not (the caller checks `kind`).
pub async fn find_message(conn: &mut SqliteConnection, row: i64) -> Result<Option<HeldMessage>> {
    let r = sqlx::query(
        "SELECT id, ticket_id, kind, from_addr, to_addrs, cc_addrs, subject, \
         COALESCE(held_reason, '') AS held_reason, agent, created_at FROM messages WHERE id = ?",
    )
    .bind(row)
    .fetch_optional(conn)
    .await?;
    let Some(r) = r else { return Ok(None) };
    let mut recipients: Vec<String> = Vec::new();
    for col in ["to_addrs", "cc_addrs"] {
        let json: String = r.try_get(col)?;
        let list: Vec<String> = serde_json::from_str(&json).unwrap_or_default();
        recipients.extend(list.into_iter().map(|a| a.to_lowercase()));
    }
    Ok(Some(HeldMessage {
        row: r.try_get("id")?,
        ticket: r.try_get("ticket_id")?,
        kind: r.try_get("kind")?,
        from_addr: r.try_get("from_addr")?,
        recipients,
        subject: r.try_get("subject")?,
        held_reason: r.try_get("held_reason")?,
        agent: r.try_get("agent")?,
        created_at: r.try_get("created_at")?,
    }))
}

/// When the newest held notice to `email` was queued.
pub async fn last_notice_at(conn: &mut SqliteConnection, email: &str) -> Result<Option<String>> {
    let to = serde_json::to_string(&[email]).unwrap_or_default();
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT MAX(created_at) FROM messages WHERE kind = 'held_notice' AND to_addrs = ?",
    )
    .bind(to)
    .fetch_one(conn)
    .await?)
}

/// Messages held as `agent`'s (configured name) that no notice announced yet, from the
/// last week, other than `except`: (row, ticket, when, subject), oldest first.
pub async fn list_unannounced(
    conn: &mut SqliteConnection,
    agent: &str,
    week_ago: &str,
    except: i64,
) -> Result<Vec<(i64, TicketId, String, String)>> {
    let rows: Vec<(i64, Option<i64>, String, String)> = sqlx::query_as(
        "SELECT id, ticket_id, created_at, subject FROM messages \
         WHERE held_reason IS NOT NULL AND kind = 'held' AND agent = ? AND held_announced = 0 \
         AND created_at > ? AND id <> ? ORDER BY id LIMIT 200",
    )
    .bind(agent)
    .bind(week_ago)
    .bind(except)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(row, t, at, s)| Some((row, t?, at, s)))
        .collect())
}

/// Records that a notice told its agent about these held messages.
pub async fn mark_announced(conn: &mut SqliteConnection, rows: &[i64]) -> Result<()> {
    for row in rows {
        sqlx::query("UPDATE messages SET held_announced = 1 WHERE id = ?")
            .bind(row)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Turns held message `row` into what acting on it made of it (`#release`): its kind,
/// text and agent, no longer held, with a line in its problems saying who released it.
pub async fn mark_released(
    conn: &mut SqliteConnection,
    row: i64,
    kind: &str,
    body_text: &str,
    agent: &str,
    note: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE messages SET kind = ?, body_text = ?, agent = ?, held_reason = NULL, \
         problems = json_insert(problems, '$[#]', ?) WHERE id = ? AND kind = 'held'",
    )
    .bind(kind)
    .bind(body_text)
    .bind(agent)
    .bind(note)
    .bind(row)
    .execute(conn)
    .await?;
    Ok(())
}
