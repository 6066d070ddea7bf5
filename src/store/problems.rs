//! Similar tickets and problems (issue 15): each ticket's analyzed terms, the pool of
//! recent open tickets a new one is compared with, `#problem` links between a problem
//! ticket and its reports, and which answer of a problem went to which report.

use sqlx::{FromRow, SqliteConnection};

use super::Result;
use crate::domain::TicketId;

/// Characters of a ticket's latest answer kept for a notification.
pub const ANSWER_CHARS: i64 = 600;

/// A recent open ticket, as the similar-ticket listing needs it.
#[derive(Debug, Clone, FromRow)]
pub struct PoolTicket {
    pub id: TicketId,
    pub customer_id: i64,
    /// The customer's address or chat identity.
    pub customer: String,
    pub subject: String,
    pub category: Option<String>,
    pub status: String,
    /// Space-separated analyzed terms (`kb::similar::terms`).
    pub terms: String,
    /// The channel of the customer's latest message.
    pub channel: Option<String>,
    /// The problem ticket this one is linked to, if any.
    pub problem: Option<TicketId>,
    /// The start of the latest agent answer, if any.
    pub latest_answer: Option<String>,
}

/// The open and pending tickets created at or after `since` that have terms, newest
/// first, at most `limit`.
pub async fn similar_pool(
    conn: &mut SqliteConnection,
    since: &str,
    limit: i64,
) -> Result<Vec<PoolTicket>> {
    Ok(sqlx::query_as(
        "SELECT t.id, t.customer_id, c.email AS customer, t.subject, t.category, t.status, \
                tt.terms, \
                (SELECT m.channel FROM messages m WHERE m.ticket_id = t.id AND m.kind = 'customer' \
                 ORDER BY m.id DESC LIMIT 1) AS channel, \
                (SELECT p.problem_id FROM problem_links p WHERE p.ticket_id = t.id) AS problem, \
                (SELECT substr(m.body_text, 1, ?) FROM messages m \
                 WHERE m.ticket_id = t.id AND m.kind = 'agent_reply' \
                 ORDER BY m.id DESC LIMIT 1) AS latest_answer \
         FROM tickets t JOIN ticket_terms tt ON tt.ticket_id = t.id \
         JOIN customers c ON c.id = t.customer_id \
         WHERE t.created_at >= ? AND t.merged_into IS NULL AND t.status IN ('open', 'pending') \
         ORDER BY t.created_at DESC, t.id DESC LIMIT ?",
    )
    .bind(ANSWER_CHARS)
    .bind(since)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Records new tickets' terms (space-separated).
pub async fn insert_terms(conn: &mut SqliteConnection, rows: &[(TicketId, String)]) -> Result<()> {
    super::bulk::insert_rows(
        conn,
        "INSERT OR IGNORE INTO ticket_terms (ticket_id, terms) ",
        2,
        rows,
        |b, (t, terms)| {
            b.push_bind(*t).push_bind(terms.clone());
        },
    )
    .await
}

/// The problem ticket `ticket` is linked to, if any.
pub async fn problem_of(conn: &mut SqliteConnection, ticket: TicketId) -> Result<Option<TicketId>> {
    Ok(
        sqlx::query_scalar("SELECT problem_id FROM problem_links WHERE ticket_id = ?")
            .bind(ticket)
            .fetch_optional(conn)
            .await?,
    )
}

/// A ticket linked to a problem, with where its answers go.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct Report {
    pub ticket_id: TicketId,
    pub subject: String,
    pub status: String,
    /// The customer's address or chat identity.
    pub customer: String,
    /// The channel of the customer's latest message.
    pub channel: Option<String>,
    pub agent: String,
    pub linked_at: String,
}

/// The tickets linked to problem `problem`, oldest link first; merged-away ones left out.
pub async fn reports_of(conn: &mut SqliteConnection, problem: TicketId) -> Result<Vec<Report>> {
    Ok(sqlx::query_as(
        "SELECT p.ticket_id, t.subject, t.status, c.email AS customer, \
                (SELECT m.channel FROM messages m WHERE m.ticket_id = t.id AND m.kind = 'customer' \
                 ORDER BY m.id DESC LIMIT 1) AS channel, p.agent, p.linked_at \
         FROM problem_links p JOIN tickets t ON t.id = p.ticket_id \
         JOIN customers c ON c.id = t.customer_id \
         WHERE p.problem_id = ? AND t.merged_into IS NULL ORDER BY p.linked_at, p.ticket_id",
    )
    .bind(problem)
    .fetch_all(conn)
    .await?)
}

/// Links `ticket` to `problem` (replacing an earlier link), and moves the reports of
/// `ticket`, if it was a problem itself, to `problem`: problems do not nest. Returns how
/// many reports moved.
pub async fn link(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    problem: TicketId,
    agent: &str,
    now: &str,
) -> Result<u64> {
    sqlx::query(
        "INSERT INTO problem_links (ticket_id, problem_id, agent, linked_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT(ticket_id) DO UPDATE SET problem_id = excluded.problem_id, \
         agent = excluded.agent, linked_at = excluded.linked_at",
    )
    .bind(ticket)
    .bind(problem)
    .bind(agent)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // The problem itself is no report of anything.
    sqlx::query("DELETE FROM problem_links WHERE ticket_id = ?")
        .bind(problem)
        .execute(&mut *conn)
        .await?;
    let moved = sqlx::query(
        "UPDATE problem_links SET problem_id = ? WHERE problem_id = ? AND ticket_id <> ?",
    )
    .bind(problem)
    .bind(ticket)
    .bind(problem)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(moved)
}

/// Removes `ticket`'s link to its problem. Returns the problem it was linked to.
pub async fn unlink(conn: &mut SqliteConnection, ticket: TicketId) -> Result<Option<TicketId>> {
    let was = problem_of(conn, ticket).await?;
    sqlx::query("DELETE FROM problem_links WHERE ticket_id = ?")
        .bind(ticket)
        .execute(conn)
        .await?;
    Ok(was)
}

/// Claims the sending of answer `answer` to report `ticket`: true the first time only.
pub async fn claim_send(
    conn: &mut SqliteConnection,
    answer: i64,
    ticket: TicketId,
    agent: &str,
    now: &str,
) -> Result<bool> {
    Ok(sqlx::query(
        "INSERT OR IGNORE INTO problem_sends (answer_id, ticket_id, agent, sent_at) \
         VALUES (?, ?, ?, ?)",
    )
    .bind(answer)
    .bind(ticket)
    .bind(agent)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Takes back a claim whose send failed, so that the line can be sent again.
pub async fn unclaim_send(
    conn: &mut SqliteConnection,
    answer: i64,
    ticket: TicketId,
) -> Result<()> {
    sqlx::query("DELETE FROM problem_sends WHERE answer_id = ? AND ticket_id = ?")
        .bind(answer)
        .bind(ticket)
        .execute(conn)
        .await?;
    Ok(())
}

/// The text of agent answer `answer` on ticket `ticket`, if it is one.
pub async fn answer_text(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    answer: i64,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT body_text FROM messages WHERE id = ? AND ticket_id = ? AND kind = 'agent_reply'",
    )
    .bind(answer)
    .bind(ticket)
    .fetch_optional(conn)
    .await?)
}
