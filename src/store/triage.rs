//! Triage state (issue 13): what rules decided for a ticket, agents' availability, team
//! round-robin cursors, red alerts, SLA notices sent and daily digests sent.
//!
//! Every "send once" record here (`sla_notices`, `alerts.escalated_at`, `digests_sent`) is
//! claimed by a statement that succeeds only for its first caller, in the transaction that
//! queues the mail: a tick that runs twice, or a restart, cannot send it again.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::Result;
use super::events::{self, NewEvent};
use crate::domain::{EventKind, Priority, Status, TicketId};

/// Agents who said `#away`.
pub async fn away_agents(conn: &mut SqliteConnection) -> Result<HashSet<String>> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT name FROM agent_state WHERE away = 1")
            .fetch_all(conn)
            .await?
            .into_iter()
            .collect(),
    )
}

/// Records `#away` (true) or `#back` (false). Returns whether it changed anything.
pub async fn set_away(
    conn: &mut SqliteConnection,
    name: &str,
    away: bool,
    now: &str,
) -> Result<bool> {
    let before: Option<i64> = sqlx::query_scalar("SELECT away FROM agent_state WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO agent_state (name, away, changed_at) VALUES (?, ?, ?) \
         ON CONFLICT(name) DO UPDATE SET away = excluded.away, changed_at = excluded.changed_at",
    )
    .bind(name)
    .bind(i64::from(away))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(before.unwrap_or(0) != i64::from(away))
}

/// Open and pending tickets per assignee.
pub async fn open_counts(conn: &mut SqliteConnection) -> Result<HashMap<String, i64>> {
    let rows = sqlx::query(
        "SELECT assignee, COUNT(*) AS n FROM tickets \
         WHERE assignee IS NOT NULL AND status IN ('open', 'pending') AND merged_into IS NULL \
         GROUP BY assignee",
    )
    .fetch_all(conn)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        out.insert(r.try_get::<String, _>("assignee")?, r.try_get("n")?);
    }
    Ok(out)
}

/// Each team's round-robin cursor: the member who got its last ticket.
pub async fn team_cursors(conn: &mut SqliteConnection) -> Result<HashMap<String, String>> {
    let rows = sqlx::query("SELECT team, last_agent FROM team_cursors")
        .fetch_all(conn)
        .await?;
    let mut out = HashMap::new();
    for r in rows {
        out.insert(r.try_get("team")?, r.try_get("last_agent")?);
    }
    Ok(out)
}

pub async fn set_team_cursor(
    conn: &mut SqliteConnection,
    team: &str,
    agent: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO team_cursors (team, last_agent, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT(team) DO UPDATE SET last_agent = excluded.last_agent, \
         updated_at = excluded.updated_at",
    )
    .bind(team)
    .bind(agent)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// What triage decided for a ticket.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TicketTriage {
    pub category: Option<String>,
    pub team: Option<String>,
    /// `{"topic": .., "term": ..}` of the first sensitive match.
    pub forced_human: Option<serde_json::Value>,
    pub sla_policy: Option<String>,
}

pub async fn get_triage(conn: &mut SqliteConnection, id: TicketId) -> Result<Option<TicketTriage>> {
    let row =
        sqlx::query("SELECT category, team, forced_human, sla_policy FROM tickets WHERE id = ?")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    let Some(r) = row else { return Ok(None) };
    let forced: Option<String> = r.try_get("forced_human")?;
    Ok(Some(TicketTriage {
        category: r.try_get("category")?,
        team: r.try_get("team")?,
        forced_human: forced.and_then(|f| serde_json::from_str(&f).ok()),
        sla_policy: r.try_get("sla_policy")?,
    }))
}

/// Sets the category (`#category`), with its event.
pub async fn set_category(
    conn: &mut SqliteConnection,
    id: TicketId,
    category: Option<&str>,
    now: &str,
) -> Result<()> {
    set_column(conn, id, Column::Category, category, now).await
}

/// Sets the team (`#transfer`), with its event.
pub async fn set_team(
    conn: &mut SqliteConnection,
    id: TicketId,
    team: Option<&str>,
    now: &str,
) -> Result<()> {
    set_column(conn, id, Column::Team, team, now).await
}

/// A text column of `tickets` that commands set, with the event that records it.
#[derive(Clone, Copy)]
enum Column {
    Category,
    Team,
}

async fn set_column(
    conn: &mut SqliteConnection,
    id: TicketId,
    column: Column,
    value: Option<&str>,
    now: &str,
) -> Result<()> {
    let (select, update, kind) = match column {
        Column::Category => (
            "SELECT category FROM tickets WHERE id = ?",
            "UPDATE tickets SET category = ? WHERE id = ?",
            EventKind::CategoryChanged,
        ),
        Column::Team => (
            "SELECT team FROM tickets WHERE id = ?",
            "UPDATE tickets SET team = ? WHERE id = ?",
            EventKind::TeamChanged,
        ),
    };
    let before: Option<Option<String>> = sqlx::query_scalar(select)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let before = before.flatten();
    sqlx::query(update)
        .bind(value)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if before.as_deref() != value {
        let data = serde_json::json!({"from": before, "to": value});
        events::append(conn, NewEvent::new(kind, id, data), now).await?;
    }
    Ok(())
}

/// A red alert.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    pub id: i64,
    pub ticket_id: TicketId,
    /// `urgent`, `forced_human:<topic>` or `negative_public`.
    pub reason: String,
    pub term: Option<String>,
    pub raised_at: String,
    pub report_due: String,
    pub first_human_at: Option<String>,
    pub report_at: Option<String>,
    pub report_by: Option<String>,
    pub report: Option<String>,
    pub escalated_at: Option<String>,
}

fn alert_row(r: &sqlx::sqlite::SqliteRow) -> Result<Alert> {
    Ok(Alert {
        id: r.try_get("id")?,
        ticket_id: r.try_get("ticket_id")?,
        reason: r.try_get("reason")?,
        term: r.try_get("term")?,
        raised_at: r.try_get("raised_at")?,
        report_due: r.try_get("report_due")?,
        first_human_at: r.try_get("first_human_at")?,
        report_at: r.try_get("report_at")?,
        report_by: r.try_get("report_by")?,
        report: r.try_get("report")?,
        escalated_at: r.try_get("escalated_at")?,
    })
}

const ALERT_COLUMNS: &str = "id, ticket_id, reason, term, raised_at, report_due, first_human_at, \
     report_at, report_by, report, escalated_at";

/// The alerts of a ticket, oldest first.
pub async fn alerts_of(conn: &mut SqliteConnection, ticket: TicketId) -> Result<Vec<Alert>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE ticket_id = ? ORDER BY id"
    )))
    .bind(ticket)
    .fetch_all(conn)
    .await?;
    rows.iter().map(alert_row).collect()
}

/// Alerts still waiting for their report, oldest first, at most `limit`.
pub async fn list_open_alerts(conn: &mut SqliteConnection, limit: i64) -> Result<Vec<Alert>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE report_at IS NULL ORDER BY id LIMIT ?"
    )))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(alert_row).collect()
}

/// The ticket's oldest alert still waiting for its report.
pub async fn open_alert(conn: &mut SqliteConnection, ticket: TicketId) -> Result<Option<Alert>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE ticket_id = ? AND report_at IS NULL \
         ORDER BY id LIMIT 1"
    )))
    .bind(ticket)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(alert_row).transpose()
}

/// Alerts whose report is overdue and not yet escalated.
pub async fn overdue_alerts(conn: &mut SqliteConnection, now: &str) -> Result<Vec<Alert>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ALERT_COLUMNS} FROM alerts \
         WHERE report_at IS NULL AND escalated_at IS NULL AND report_due <= ? ORDER BY id"
    )))
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.iter().map(alert_row).collect()
}

/// Alerts not yet answered by a report, every ticket.
pub async fn unreported_alerts(conn: &mut SqliteConnection) -> Result<Vec<Alert>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE report_at IS NULL ORDER BY id"
    )))
    .fetch_all(conn)
    .await?;
    rows.iter().map(alert_row).collect()
}

/// Records a handling report on alert `id`, with its event.
pub async fn record_report(
    conn: &mut SqliteConnection,
    alert: &Alert,
    by: &str,
    text: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE alerts SET report_at = ?, report_by = ?, report = ?, \
         first_human_at = COALESCE(first_human_at, ?) WHERE id = ?",
    )
    .bind(now)
    .bind(by)
    .bind(text)
    .bind(now)
    .bind(alert.id)
    .execute(&mut *conn)
    .await?;
    let data =
        serde_json::json!({"alert": alert.id, "by": by, "late": now > alert.report_due.as_str()});
    events::append(
        conn,
        NewEvent::new(EventKind::AlertReported, alert.ticket_id, data),
        now,
    )
    .await
}

/// Notes the first human answer on the ticket's unreported alerts.
pub async fn record_first_human(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE alerts SET first_human_at = ? WHERE ticket_id = ? AND first_human_at IS NULL",
    )
    .bind(now)
    .bind(ticket)
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims the escalation of alert `id`: true for the one caller that gets it.
pub async fn claim_escalation(
    conn: &mut SqliteConnection,
    alert: &Alert,
    now: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE alerts SET escalated_at = ? WHERE id = ? AND escalated_at IS NULL AND report_at IS NULL",
    )
    .bind(now)
    .bind(alert.id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if done {
        let data = serde_json::json!({"alert": alert.id});
        events::append(
            conn,
            NewEvent::new(EventKind::AlertEscalated, alert.ticket_id, data),
            now,
        )
        .await?;
    }
    Ok(done)
}

/// A ticket as the scheduler and digests see it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenTicket {
    pub id: TicketId,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub assignee: Option<String>,
    pub team: Option<String>,
    pub category: Option<String>,
    pub sla_policy: Option<String>,
    pub forced_human: bool,
    pub tier: String,
    pub customer_email: String,
    pub created_at: String,
    pub updated_at: String,
}

fn open_ticket_row(r: &sqlx::sqlite::SqliteRow) -> Result<OpenTicket> {
    let status: String = r.try_get("status")?;
    let priority: String = r.try_get("priority")?;
    let forced: Option<String> = r.try_get("forced_human")?;
    Ok(OpenTicket {
        id: r.try_get("id")?,
        subject: r.try_get("subject")?,
        status: status.parse().unwrap_or(Status::Open),
        priority: priority.parse().unwrap_or(Priority::Normal),
        assignee: r.try_get("assignee")?,
        team: r.try_get("team")?,
        category: r.try_get("category")?,
        sla_policy: r.try_get("sla_policy")?,
        forced_human: forced.is_some(),
        tier: r.try_get("tier")?,
        customer_email: r.try_get("email")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const OPEN_TICKET_SQL: &str = "SELECT t.id, t.subject, t.status, t.priority, t.assignee, t.team, \
     t.category, t.sla_policy, t.forced_human, c.tier, c.email, t.created_at, t.updated_at \
     FROM tickets t JOIN customers c ON c.id = t.customer_id \
     WHERE t.status IN ('open', 'pending') AND t.merged_into IS NULL";

/// Open and pending tickets that carry an SLA policy.
pub async fn sla_tickets(conn: &mut SqliteConnection) -> Result<Vec<OpenTicket>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{OPEN_TICKET_SQL} AND t.sla_policy IS NOT NULL ORDER BY t.id"
    )))
    .fetch_all(conn)
    .await?;
    rows.iter().map(open_ticket_row).collect()
}

/// Open and pending tickets assigned to `agent`, or unassigned ones (`None`).
pub async fn open_tickets_of(
    conn: &mut SqliteConnection,
    agent: Option<&str>,
) -> Result<Vec<OpenTicket>> {
    let rows = match agent {
        Some(a) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{OPEN_TICKET_SQL} AND t.assignee = ? ORDER BY t.id"
            )))
            .bind(a)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{OPEN_TICKET_SQL} AND t.assignee IS NULL ORDER BY t.id"
            )))
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter().map(open_ticket_row).collect()
}

/// One open ticket by id (None: no such ticket, or not open/pending).
pub async fn open_ticket(conn: &mut SqliteConnection, id: TicketId) -> Result<Option<OpenTicket>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{OPEN_TICKET_SQL} AND t.id = ?"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(open_ticket_row).transpose()
}

/// A ticket's events in order: (kind, data, created_at), what SLA timers are computed from.
pub async fn timeline(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<Vec<(String, String, String)>> {
    let rows =
        sqlx::query("SELECT kind, data, created_at FROM events WHERE ticket_id = ? ORDER BY id")
            .bind(ticket)
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("kind")?,
                r.try_get("data")?,
                r.try_get("created_at")?,
            ))
        })
        .collect()
}

/// Claims an SLA notice: true for the one caller that gets to send it.
pub async fn claim_sla_notice(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    target: &str,
    kind: &str,
    cycle: &str,
    now: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO sla_notices (ticket_id, target, kind, cycle, sent_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(ticket)
    .bind(target)
    .bind(kind)
    .bind(cycle)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if done {
        let event = if kind == "breach" {
            EventKind::SlaBreached
        } else {
            EventKind::SlaWarning
        };
        let data = serde_json::json!({"target": target, "cycle": cycle});
        events::append(conn, NewEvent::new(event, ticket, data), now).await?;
    }
    Ok(done)
}

/// The SLA notices sent for a ticket: (target, kind, cycle, sent_at).
pub async fn sla_notices(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<Vec<(String, String, String, String)>> {
    let rows = sqlx::query(
        "SELECT target, kind, cycle, sent_at FROM sla_notices WHERE ticket_id = ? ORDER BY sent_at",
    )
    .bind(ticket)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("target")?,
                r.try_get("kind")?,
                r.try_get("cycle")?,
                r.try_get("sent_at")?,
            ))
        })
        .collect()
}

/// Claims the digest of `agent` for local day `day`: true for the one caller that sends it.
pub async fn claim_digest(
    conn: &mut SqliteConnection,
    agent: &str,
    day: &str,
    now: &str,
) -> Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO digests_sent (agent, day, sent_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(agent)
    .bind(day)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// The rules that fired, language and sentiment of each message of a ticket, by row.
pub async fn message_signals(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<HashMap<i64, (Vec<String>, Option<String>, Option<f64>)>> {
    let rows = sqlx::query(
        "SELECT id, rules_fired, language, sentiment FROM messages WHERE ticket_id = ?",
    )
    .bind(ticket)
    .fetch_all(conn)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        let fired: Option<String> = r.try_get("rules_fired")?;
        let fired: Vec<String> = fired
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or_default();
        out.insert(
            r.try_get("id")?,
            (fired, r.try_get("language")?, r.try_get("sentiment")?),
        );
    }
    Ok(out)
}

/// What triage decided for an existing ticket from a follow-up message: it only gains
/// what it lacks (a category if it has none, a higher priority, the forced-human mark,
/// never cleared). A new ticket's triage is written with its row.
#[derive(Debug, Clone)]
pub struct TicketTriageRow {
    pub id: TicketId,
    pub category: Option<String>,
    pub priority: Option<Priority>,
    /// JSON `{"topic": .., "term": ..}`.
    pub forced_human: Option<String>,
}

/// A red alert to raise.
#[derive(Debug, Clone)]
pub struct NewAlertRow {
    pub ticket: TicketId,
    pub reason: String,
    pub term: Option<String>,
    pub report_due: String,
}

/// Everything triage writes for one batch, after the unit's rows.
#[derive(Debug, Clone, Default)]
pub struct TriageWrites {
    /// Follow-up messages' tickets (new tickets are written with their rows).
    pub tickets: Vec<TicketTriageRow>,
    /// Known customers whose language changed: (customer, language).
    pub languages: Vec<(i64, String)>,
    pub tags: Vec<(TicketId, String)>,
    /// Round-robin cursors: (team, member).
    pub cursors: Vec<(String, String)>,
    pub alerts: Vec<NewAlertRow>,
}

impl TriageWrites {
    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
            && self.languages.is_empty()
            && self.tags.is_empty()
            && self.cursors.is_empty()
            && self.alerts.is_empty()
    }
}

/// Writes a batch's triage, with an event per change.
pub async fn write_batch(conn: &mut SqliteConnection, w: &TriageWrites, now: &str) -> Result<()> {
    // A language a person set (`#profile lang`, an import) is theirs, not detection's.
    for (customer, language) in &w.languages {
        sqlx::query("UPDATE customers SET language = ? WHERE id = ? AND language_source IS NULL")
            .bind(language)
            .bind(customer)
            .execute(&mut *conn)
            .await?;
    }
    for t in &w.tickets {
        let before: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT priority, forced_human FROM tickets WHERE id = ?")
                .bind(t.id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((before_priority, before_forced)) = before else {
            continue;
        };
        let before_priority: Priority = before_priority.parse().unwrap_or(Priority::Normal);
        let priority = t.priority.filter(|p| rank(*p) > rank(before_priority));
        sqlx::query(
            "UPDATE tickets SET category = COALESCE(category, ?), \
                 priority = COALESCE(?, priority), forced_human = COALESCE(forced_human, ?) \
                 WHERE id = ?",
        )
        .bind(t.category.as_deref())
        .bind(priority.map(|p| p.as_str()))
        .bind(t.forced_human.as_deref())
        .bind(t.id)
        .execute(&mut *conn)
        .await?;
        if let Some(p) = priority {
            let data = serde_json::json!({"from": before_priority.as_str(), "to": p.as_str()});
            events::append(
                conn,
                NewEvent::new(EventKind::PriorityChanged, t.id, data),
                now,
            )
            .await?;
        }
        if before_forced.is_some() {
            continue;
        }
        if let Some(f) = &t.forced_human {
            let data: serde_json::Value = serde_json::from_str(f).unwrap_or_default();
            events::append(conn, NewEvent::new(EventKind::ForcedHuman, t.id, data), now).await?;
        }
    }
    super::bulk::insert_rows(
        conn,
        "INSERT OR IGNORE INTO ticket_tags (ticket_id, tag) ",
        2,
        &w.tags,
        |b, (ticket, tag)| {
            b.push_bind(*ticket).push_bind(tag.clone());
        },
    )
    .await?;
    // Only each team's last member matters.
    let mut last: HashMap<&str, &str> = HashMap::new();
    for (team, agent) in &w.cursors {
        last.insert(team, agent);
    }
    for (team, agent) in last {
        set_team_cursor(conn, team, agent, now).await?;
    }
    for a in &w.alerts {
        // One unreported alert per ticket at a time.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO alerts (ticket_id, reason, term, raised_at, report_due) \
             SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS \
             (SELECT 1 FROM alerts WHERE ticket_id = ? AND report_at IS NULL) RETURNING id",
        )
        .bind(a.ticket)
        .bind(&a.reason)
        .bind(a.term.as_deref())
        .bind(now)
        .bind(&a.report_due)
        .bind(a.ticket)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = id {
            let data = serde_json::json!({"alert": id, "reason": a.reason, "term": a.term});
            events::append(
                conn,
                NewEvent::new(EventKind::AlertRaised, a.ticket, data),
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// Priorities in order of urgency.
pub fn rank(p: Priority) -> u8 {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

/// (priority, category, forced-human) of these tickets: what a follow-up message's
/// triage may add to.
pub async fn ticket_triage_of(
    conn: &mut SqliteConnection,
    ids: &[i64],
) -> Result<HashMap<TicketId, (Priority, Option<String>, bool)>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT id, priority, category, forced_human IS NOT NULL AS forced FROM tickets WHERE id IN (",
        );
        let mut sep = qb.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        qb.push(")");
        for r in qb.build().fetch_all(&mut *conn).await? {
            let p: String = r.try_get("priority")?;
            out.insert(
                r.try_get("id")?,
                (
                    p.parse().unwrap_or(Priority::Normal),
                    r.try_get("category")?,
                    r.try_get::<bool, _>("forced")?,
                ),
            );
        }
    }
    Ok(out)
}

/// The tier and language of these customers.
pub async fn tiers_of(
    conn: &mut SqliteConnection,
    ids: &[i64],
) -> Result<HashMap<i64, (String, Option<String>)>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let mut qb =
            sqlx::QueryBuilder::new("SELECT id, tier, language FROM customers WHERE id IN (");
        let mut sep = qb.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        qb.push(")");
        for r in qb.build().fetch_all(&mut *conn).await? {
            out.insert(
                r.try_get("id")?,
                (r.try_get("tier")?, r.try_get("language")?),
            );
        }
    }
    Ok(out)
}

/// Red alerts raised since `since` on tickets of these customers, per customer.
pub async fn alerts_since(
    conn: &mut SqliteConnection,
    customers: &[i64],
    since: &str,
) -> Result<HashMap<i64, i64>> {
    let mut out = HashMap::new();
    for chunk in customers.chunks(500) {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT t.customer_id AS customer, COUNT(*) AS n FROM alerts a \
             JOIN tickets t ON t.id = a.ticket_id WHERE a.raised_at >= ",
        );
        qb.push_bind(since.to_string());
        qb.push(" AND t.customer_id IN (");
        let mut sep = qb.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        qb.push(") GROUP BY t.customer_id");
        for r in qb.build().fetch_all(&mut *conn).await? {
            out.insert(r.try_get("customer")?, r.try_get("n")?);
        }
    }
    Ok(out)
}
