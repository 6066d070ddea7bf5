//! Agents' feedback (`#feedback`), and what the monthly admin report reads: feedback by
//! theme, knowledge-base requests by topic, the bot's corrections, forced-human matches by
//! topic; and `reports_sent`, which makes each report go out once per admin and period.

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::Result;
use super::events::{self, NewEvent};
use crate::domain::{EventKind, TicketId};

/// One piece of feedback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feedback {
    pub id: i64,
    pub agent: String,
    pub ticket_id: Option<TicketId>,
    pub text: String,
    pub theme: String,
    pub created_at: String,
}

/// Records `#feedback`, with a `feedback_given` event.
pub async fn add_feedback(
    conn: &mut SqliteConnection,
    agent: &str,
    ticket: Option<TicketId>,
    text: &str,
    theme: &str,
    now: &str,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO feedback (agent, ticket_id, text, theme, created_at) \
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(agent)
    .bind(ticket)
    .bind(text)
    .bind(theme)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let mut e = NewEvent::new(
        EventKind::FeedbackGiven,
        0,
        serde_json::json!({"feedback": id, "agent": agent, "theme": theme}),
    );
    e.ticket_id = ticket;
    events::append(conn, e, now).await?;
    Ok(id)
}

/// Feedback given at or after `since` and before `until` (RFC 3339), oldest first.
pub async fn list_feedback(
    conn: &mut SqliteConnection,
    since: &str,
    until: &str,
) -> Result<Vec<Feedback>> {
    let rows = sqlx::query(
        "SELECT id, agent, ticket_id, text, theme, created_at FROM feedback \
         WHERE created_at >= ? AND created_at < ? ORDER BY id",
    )
    .bind(since)
    .bind(until)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Feedback {
                id: r.try_get("id")?,
                agent: r.try_get("agent")?,
                ticket_id: r.try_get("ticket_id")?,
                text: r.try_get("text")?,
                theme: r.try_get("theme")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// A key and how often it came up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub key: String,
    pub count: i64,
}

/// The bot's corrections of one kind: it said `predicted`, an agent said `correct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorrectionCount {
    pub predicted: String,
    pub correct: String,
    pub count: i64,
}

/// `#kb request` topics of the period, grouped as `store::kb::request_counts` groups them
/// (by `topic_key`, shown as first spelt), most frequent first. Unlike that function it
/// has an end: a past month's report counts that month only.
pub async fn kb_requests_by_topic(
    conn: &mut SqliteConnection,
    since: &str,
    until: &str,
) -> Result<Vec<Count>> {
    counts(
        conn,
        "SELECT MIN(topic) AS key, COUNT(*) AS n FROM kb_requests \
         WHERE created_at >= ? AND created_at < ? GROUP BY topic_key \
         ORDER BY n DESC, topic_key",
        since,
        until,
    )
    .await
}

/// Forced-human matches of the period (`forced_human` events) by topic, most first.
pub async fn forced_human_by_topic(
    conn: &mut SqliteConnection,
    since: &str,
    until: &str,
) -> Result<Vec<Count>> {
    counts(
        conn,
        "SELECT COALESCE(json_extract(data, '$.topic'), 'unknown') AS key, COUNT(*) AS n \
         FROM events WHERE kind = 'forced_human' AND created_at >= ? AND created_at < ? \
         GROUP BY key ORDER BY n DESC, key",
        since,
        until,
    )
    .await
}

async fn counts(
    conn: &mut SqliteConnection,
    sql: &'static str,
    since: &str,
    until: &str,
) -> Result<Vec<Count>> {
    let rows = sqlx::query(sql)
        .bind(since)
        .bind(until)
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Count {
                key: r.try_get("key")?,
                count: r.try_get("n")?,
            })
        })
        .collect()
}

/// The bot's corrections of the period by predicted → correct, most first.
pub async fn corrections_by_pair(
    conn: &mut SqliteConnection,
    since: &str,
    until: &str,
) -> Result<Vec<CorrectionCount>> {
    let rows = sqlx::query(
        "SELECT COALESCE(predicted, 'none') AS predicted, correct, COUNT(*) AS n \
         FROM corrections WHERE created_at >= ? AND created_at < ? \
         GROUP BY 1, 2 ORDER BY n DESC, 1, 2",
    )
    .bind(since)
    .bind(until)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(CorrectionCount {
                predicted: r.try_get("predicted")?,
                correct: r.try_get("correct")?,
                count: r.try_get("n")?,
            })
        })
        .collect()
}

/// Claims report `kind` for `recipient` and `period`: true for the one caller that sends it.
pub async fn claim_report(
    conn: &mut SqliteConnection,
    kind: &str,
    recipient: &str,
    period: &str,
    now: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO reports_sent (kind, recipient, period, sent_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(kind)
    .bind(recipient)
    .bind(period)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The recipients who have had report `kind` for `period`.
pub async fn reports_sent_to(
    conn: &mut SqliteConnection,
    kind: &str,
    period: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT recipient FROM reports_sent WHERE kind = ? AND period = ? ORDER BY recipient",
    )
    .bind(kind)
    .bind(period)
    .fetch_all(conn)
    .await?)
}
