//! The `events` table: what happened to tickets, written in the same transaction as the
//! change itself, and the durable cursors of the workers that follow it.
//!
//! Every write path of a ticket change appends its event here (the unit of work in bulk,
//! the agent commands row by row), so a worker that reads events after its cursor sees
//! every committed change exactly once, and none that rolled back.

use serde::Serialize;
use sqlx::SqliteConnection;

use super::Result;
use super::bulk::insert_rows;
use crate::domain::{EventKind, TicketId};

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventKind,
    pub ticket_id: Option<TicketId>,
    pub message_row: Option<i64>,
    /// A small JSON object with what changed (`{"from": .., "to": ..}`, a channel ...).
    pub data: String,
}

impl NewEvent {
    pub fn new(kind: EventKind, ticket: TicketId, data: serde_json::Value) -> NewEvent {
        NewEvent {
            kind,
            ticket_id: Some(ticket),
            message_row: None,
            data: data.to_string(),
        }
    }

    /// An event whose `data` is already JSON text (the unit of work writes thousands).
    pub fn with_data(kind: EventKind, ticket: TicketId, data: String) -> NewEvent {
        NewEvent {
            kind,
            ticket_id: Some(ticket),
            message_row: None,
            data,
        }
    }

    /// `message_added` for message `row` on `ticket`. The three words are our own fixed
    /// spellings (`Direction`, `MessageKind`, `Channel`): no escaping is needed.
    pub fn message_added(
        ticket: TicketId,
        row: i64,
        direction: &str,
        kind: &str,
        channel: &str,
    ) -> NewEvent {
        let data =
            format!(r#"{{"direction":"{direction}","kind":"{kind}","channel":"{channel}"}}"#);
        NewEvent::with_data(EventKind::MessageAdded, ticket, data).with_message(row)
    }

    pub fn with_message(mut self, row: i64) -> NewEvent {
        self.message_row = Some(row);
        self
    }
}

/// Appends events in order (one multi-row statement per chunk).
pub async fn insert_events(
    conn: &mut SqliteConnection,
    rows: &[NewEvent],
    now: &str,
) -> Result<()> {
    let now = now.to_string();
    insert_rows(
        conn,
        "INSERT INTO events (kind, ticket_id, message_row, data, created_at) ",
        5,
        rows,
        |b, e| {
            b.push_bind(e.kind.as_str())
                .push_bind(e.ticket_id)
                .push_bind(e.message_row)
                .push_bind(e.data.clone())
                .push_bind(now.clone());
        },
    )
    .await
}

/// Appends one event.
pub async fn append(conn: &mut SqliteConnection, e: NewEvent, now: &str) -> Result<()> {
    insert_events(conn, std::slice::from_ref(&e), now).await
}

/// A stored event.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub kind: String,
    pub ticket_id: Option<TicketId>,
    pub message_row: Option<i64>,
    pub data: String,
    pub created_at: String,
}

/// Events after `after`, oldest first, at most `limit`.
pub async fn list_after(conn: &mut SqliteConnection, after: i64, limit: i64) -> Result<Vec<Event>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, ticket_id, message_row, data, created_at FROM events \
         WHERE id > ? ORDER BY id LIMIT ?",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The id of the newest event (0 when there is none).
pub async fn last_id(conn: &mut SqliteConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
            .fetch_one(conn)
            .await?,
    )
}

/// Where the worker `name` stands (0 when it never ran).
pub async fn cursor(conn: &mut SqliteConnection, name: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT last_id FROM event_cursors WHERE name = ?")
            .bind(name)
            .fetch_optional(conn)
            .await?
            .unwrap_or(0),
    )
}

/// Places a new worker `name` at the newest event, so that it handles only what comes
/// after its first start; a worker that has a cursor keeps it. Returns where it starts.
pub async fn start_at_newest(conn: &mut SqliteConnection, name: &str, now: &str) -> Result<i64> {
    sqlx::query(
        "INSERT OR IGNORE INTO event_cursors (name, last_id, updated_at) \
         VALUES (?, (SELECT COALESCE(MAX(id), 0) FROM events), ?)",
    )
    .bind(name)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    cursor(conn, name).await
}

/// Moves the worker `name` to `last_id`, in the caller's transaction (with the effects of
/// handling the events up to it).
pub async fn set_cursor(
    conn: &mut SqliteConnection,
    name: &str,
    last_id: i64,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO event_cursors (name, last_id, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT(name) DO UPDATE SET last_id = MAX(last_id, ?2), updated_at = ?3",
    )
    .bind(name)
    .bind(last_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
