//! Tickets, customers, participants, tags, and the bounce status of addresses.

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::events::{self, NewEvent};
use super::{Result, StoreError};
use crate::domain::{EventKind, Priority, Status, TicketId};

/// A ticket row as the pipeline needs it.
#[derive(Debug, Clone)]
pub struct TicketRow {
    pub id: TicketId,
    pub status: Status,
    pub customer_id: i64,
    pub token: String,
    pub subject: String,
}

fn ticket_row(r: &sqlx::sqlite::SqliteRow) -> Result<TicketRow> {
    let status: String = r.try_get("status")?;
    Ok(TicketRow {
        id: r.try_get("id")?,
        status: status.parse().unwrap_or(Status::Open),
        customer_id: r.try_get("customer_id")?,
        token: r.try_get("token")?,
        subject: r.try_get("subject")?,
    })
}

/// Test fixtures only: production writes customers and tickets through the unit of work
/// (`bulk::insert_customers`, `bulk::insert_tickets`), the one write path of each.
#[cfg(test)]
/// Finds the customer by address, creating them on first contact. Returns the row id.
pub async fn upsert_customer(
    conn: &mut SqliteConnection,
    email: &str,
    name: Option<&str>,
    now: &str,
) -> Result<i64> {
    // One statement: insert, or keep the row and fill in a name we did not know yet.
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO customers (email, name, created_at) VALUES (?, ?, ?) \
         ON CONFLICT(email) DO UPDATE SET name = COALESCE(customers.name, excluded.name) \
         RETURNING id",
    )
    .bind(email)
    .bind(name)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Test fixtures only: production writes customers and tickets through the unit of work
/// (`bulk::insert_customers`, `bulk::insert_tickets`), the one write path of each.
#[cfg(test)]
/// Fields of a new ticket.
pub struct NewTicket<'a> {
    pub subject: &'a str,
    pub subject_key: &'a str,
    pub customer_id: i64,
    pub token: &'a str,
    pub linked_ticket_id: Option<TicketId>,
    pub now: &'a str,
}

/// Test fixtures only: production writes customers and tickets through the unit of work
/// (`bulk::insert_customers`, `bulk::insert_tickets`), the one write path of each.
#[cfg(test)]
pub async fn insert_ticket(conn: &mut SqliteConnection, t: &NewTicket<'_>) -> Result<TicketId> {
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO tickets (subject, subject_key, status, priority, customer_id, token, \
         linked_ticket_id, created_at, updated_at) \
         VALUES (?, ?, 'open', 'normal', ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(t.subject)
    .bind(t.subject_key)
    .bind(t.customer_id)
    .bind(t.token)
    .bind(t.linked_ticket_id)
    .bind(t.now)
    .bind(t.now)
    .fetch_one(conn)
    .await
    .map_err(|e| StoreError::from_sqlx(e, "ticket"))?;
    Ok(id)
}

pub async fn find_ticket(conn: &mut SqliteConnection, id: TicketId) -> Result<Option<TicketRow>> {
    // Follow merges: a ticket merged into another answers as the one it lives on in.
    let mut id = id;
    for _ in 0..16 {
        let row = sqlx::query(
            "SELECT id, status, customer_id, token, subject, merged_into FROM tickets WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        match row.try_get::<Option<i64>, _>("merged_into")? {
            Some(next) if next != id => id = next,
            _ => return ticket_row(&row).map(Some),
        }
    }
    Ok(None)
}

/// Merges ticket `from` into `into`: messages, participants, tags, outbox and log rows move;
/// `from` is closed and remembers where it went, so its token and number still lead there.
pub async fn merge_ticket(
    conn: &mut SqliteConnection,
    into: TicketId,
    from: TicketId,
    now: &str,
) -> Result<()> {
    if into == from {
        return Ok(());
    }
    for sql in [
        "UPDATE messages SET ticket_id = ?1 WHERE ticket_id = ?2",
        "UPDATE outbox SET ticket_id = ?1 WHERE ticket_id = ?2",
        "UPDATE autoreply_log SET ticket_id = ?1 WHERE ticket_id = ?2",
        "INSERT OR IGNORE INTO participants (ticket_id, email, role) \
         SELECT ?1, email, role FROM participants WHERE ticket_id = ?2",
        "DELETE FROM participants WHERE ticket_id = ?2",
        "INSERT OR IGNORE INTO ticket_tags (ticket_id, tag) SELECT ?1, tag FROM ticket_tags WHERE ticket_id = ?2",
        "DELETE FROM ticket_tags WHERE ticket_id = ?2",
    ] {
        sqlx::query(sql)
            .bind(into)
            .bind(from)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "UPDATE tickets SET status = 'closed', merged_into = ?, updated_at = ? WHERE id = ?",
    )
    .bind(into)
    .bind(now)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    let data = serde_json::json!({"merged": from});
    events::append(
        &mut *conn,
        NewEvent::new(EventKind::TicketMerged, into, data),
        now,
    )
    .await?;
    touch_ticket(conn, into, now).await
}

pub async fn find_ticket_by_token(
    conn: &mut SqliteConnection,
    token: &str,
) -> Result<Option<TicketRow>> {
    let id = sqlx::query_scalar::<_, i64>("SELECT id FROM tickets WHERE token = ?")
        .bind(token)
        .fetch_optional(&mut *conn)
        .await?;
    match id {
        Some(id) => find_ticket(conn, id).await,
        None => Ok(None),
    }
}

/// The newest ticket of this customer with this subject key, updated since `since`, that
/// is not closed.
pub async fn find_recent_ticket_by_subject(
    conn: &mut SqliteConnection,
    customer_id: i64,
    subject_key: &str,
    since: &str,
) -> Result<Option<TicketRow>> {
    let row = sqlx::query(
        "SELECT id, status, customer_id, token, subject FROM tickets \
         WHERE customer_id = ? AND subject_key = ? AND updated_at >= ? AND status != 'closed' \
         AND merged_into IS NULL \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(customer_id)
    .bind(subject_key)
    .bind(since)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(ticket_row).transpose()
}

pub async fn set_status(
    conn: &mut SqliteConnection,
    id: TicketId,
    status: Status,
    now: &str,
) -> Result<()> {
    let before: Option<String> = sqlx::query_scalar("SELECT status FROM tickets WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    sqlx::query("UPDATE tickets SET status = ?, updated_at = ? WHERE id = ?")
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if before.as_deref() != Some(status.as_str()) {
        let data = serde_json::json!({"from": before, "to": status.as_str()});
        events::append(conn, NewEvent::new(EventKind::StatusChanged, id, data), now).await?;
    }
    Ok(())
}

/// Sets `updated_at` (an agent's action on the ticket).
pub async fn set_updated_at(conn: &mut SqliteConnection, id: TicketId, now: &str) -> Result<()> {
    sqlx::query("UPDATE tickets SET updated_at = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn touch_ticket(conn: &mut SqliteConnection, id: TicketId, now: &str) -> Result<()> {
    sqlx::query("UPDATE tickets SET updated_at = ? WHERE id = ? AND updated_at < ?")
        .bind(now)
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn add_participant(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    email: &str,
    role: &str,
) -> Result<()> {
    sqlx::query("INSERT OR IGNORE INTO participants (ticket_id, email, role) VALUES (?, ?, ?)")
        .bind(ticket)
        .bind(email)
        .bind(role)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn is_participant(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    email: &str,
) -> Result<bool> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM participants WHERE ticket_id = ? AND email = ?",
    )
    .bind(ticket)
    .bind(email)
    .fetch_one(conn)
    .await?
        > 0)
}

/// Marks an address as bouncing (a delivery status notification reported it failed).
pub async fn mark_bouncing(
    conn: &mut SqliteConnection,
    email: &str,
    status: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO address_status (email, bouncing, last_bounce_at, last_status, bounce_count) \
         VALUES (?, 1, ?, ?, 1) ON CONFLICT(email) DO UPDATE SET bouncing = 1, \
         last_bounce_at = excluded.last_bounce_at, last_status = excluded.last_status, \
         bounce_count = bounce_count + 1",
    )
    .bind(email)
    .bind(now)
    .bind(status)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn is_bouncing(conn: &mut SqliteConnection, email: &str) -> Result<bool> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM address_status WHERE email = ? AND bouncing = 1",
    )
    .bind(email)
    .fetch_one(conn)
    .await?
        > 0)
}

/// The customer as shown by `ticket show`.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerView {
    pub email: String,
    pub name: Option<String>,
    pub bouncing: bool,
}

/// A ticket as shown by `ticket list` / `ticket show`.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub id: TicketId,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub assignee: Option<String>,
    pub customer: CustomerView,
    pub linked_ticket_id: Option<TicketId>,
    /// The ticket this one was merged into, if any.
    pub merged_into: Option<TicketId>,
    /// Every message on the ticket, whoever wrote it.
    pub message_count: i64,
    /// Messages the customer (or a participant) wrote.
    pub customer_messages: i64,
    /// Agents' answers, notes and command mails (each counted once, as received).
    pub agent_messages: i64,
    /// postdesk's own mail: acknowledgements, notifications, receipts, held notices.
    pub automatic_messages: i64,
    pub created_at: String,
    pub updated_at: String,
}

const VIEW_SELECT: &str = "SELECT t.id, t.subject, t.status, t.priority, t.assignee, \
    t.linked_ticket_id, t.merged_into, t.created_at, t.updated_at, c.email, c.name, \
    COALESCE((SELECT bouncing FROM address_status a WHERE a.email = c.email), 0) AS bouncing, \
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS message_count, \
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id AND m.kind = 'customer') \
        AS customer_messages, \
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id AND m.direction = 'inbound' \
        AND m.kind IN ('agent_reply', 'note', 'command')) AS agent_messages, \
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id AND m.direction = 'outbound' \
        AND m.kind <> 'agent_reply') AS automatic_messages, \
    COALESCE((SELECT group_concat(tag, char(31)) FROM \
        (SELECT tag FROM ticket_tags g WHERE g.ticket_id = t.id ORDER BY tag)), '') AS tags \
    FROM tickets t JOIN customers c ON c.id = t.customer_id";

fn view_row(r: &sqlx::sqlite::SqliteRow) -> Result<TicketView> {
    let status: String = r.try_get("status")?;
    let priority: String = r.try_get("priority")?;
    let tags: String = r.try_get("tags")?;
    Ok(TicketView {
        id: r.try_get("id")?,
        subject: r.try_get("subject")?,
        status: status.parse().unwrap_or(Status::Open),
        priority: priority.parse().unwrap_or(Priority::Normal),
        tags: tags
            .split('\u{1f}')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        assignee: r.try_get("assignee")?,
        customer: CustomerView {
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            bouncing: r.try_get::<i64, _>("bouncing")? != 0,
        },
        linked_ticket_id: r.try_get("linked_ticket_id")?,
        merged_into: r.try_get("merged_into")?,
        message_count: r.try_get("message_count")?,
        customer_messages: r.try_get("customer_messages")?,
        agent_messages: r.try_get("agent_messages")?,
        automatic_messages: r.try_get("automatic_messages")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn get_ticket_view(conn: &mut SqliteConnection, id: TicketId) -> Result<TicketView> {
    let sql = sqlx::AssertSqlSafe(format!("{VIEW_SELECT} WHERE t.id = ?"));
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {id}")))?;
    view_row(&row)
}

pub async fn list_ticket_views(
    conn: &mut SqliteConnection,
    status: Option<Status>,
    limit: i64,
) -> Result<Vec<TicketView>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{VIEW_SELECT} WHERE (?1 IS NULL OR t.status = ?1) ORDER BY t.id DESC LIMIT ?2"
    ));
    let rows = sqlx::query(sql)
        .bind(status.map(|s| s.as_str()))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(view_row).collect()
}

/// Counts of tickets by status, for summaries.
pub async fn count_tickets(conn: &mut SqliteConnection) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tickets")
        .fetch_one(conn)
        .await?)
}

/// A ticket linked to another (see `ticket_links`), as `ticket show` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    /// The other ticket.
    pub ticket: TicketId,
    pub reason: String,
    pub created_at: String,
}

/// The tickets linked to `id`, oldest link first.
pub async fn list_links(conn: &mut SqliteConnection, id: TicketId) -> Result<Vec<LinkView>> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT CASE WHEN ticket_id = ?1 THEN linked_id ELSE ticket_id END, reason, created_at \
         FROM ticket_links WHERE ticket_id = ?1 OR linked_id = ?1 ORDER BY created_at, 1",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(ticket, reason, created_at)| LinkView {
            ticket,
            reason,
            created_at,
        })
        .collect())
}
