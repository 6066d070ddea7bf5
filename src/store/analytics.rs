//! `ticket_facts` (one row of figures per ticket, kept by `analytics::follower`) and
//! `ratings`, and the sums statistics are read from.
//!
//! A period's tickets are index ranges (`created_at`, `resolved_at`, `last_reopened_at`);
//! each question is one pass over its range, summed per group in SQL. Response and
//! resolution times come back as one comma-separated list per group (`group_concat`), so
//! a million values cross the driver as a handful of strings, not a million rows; the
//! exact medians are then taken in `analytics::figures`. What the sums mean is
//! `analytics::figures::Tally::add_facts`; a test holds this file to it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};

use super::Result;
use super::bulk::insert_rows;
use crate::analytics::GroupBy;
use crate::analytics::facts::{TicketFacts, TicketState};
use crate::analytics::figures::Tally;

/// A ticket's state as facts need it, and the name of its SLA policy.
pub async fn list_states(
    conn: &mut SqliteConnection,
    ids: &[i64],
) -> Result<Vec<(TicketState, Option<String>)>> {
    let json = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let rows = sqlx::query(
        "SELECT t.id, t.created_at, t.status, t.assignee, t.team, t.category, c.tier, \
                t.merged_into IS NOT NULL AS merged, t.sla_policy, r.rating \
         FROM tickets t JOIN customers c ON c.id = t.customer_id \
         LEFT JOIN ratings r ON r.ticket_id = t.id \
         WHERE t.id IN (SELECT value FROM json_each(?))",
    )
    .bind(json)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let created: String = r.try_get("created_at")?;
        let Some(created_at) = DateTime::parse_from_rfc3339(&created)
            .ok()
            .map(|t| t.with_timezone(&Utc))
        else {
            continue;
        };
        let sla: Option<String> = r.try_get("sla_policy")?;
        out.push((
            TicketState {
                id: r.try_get("id")?,
                created_at,
                status: r.try_get("status")?,
                assignee: r.try_get("assignee")?,
                team: r.try_get("team")?,
                category: r.try_get("category")?,
                tier: r.try_get("tier")?,
                merged: r.try_get("merged")?,
                has_sla: sla.is_some(),
                rating: r.try_get("rating")?,
            },
            sla,
        ));
    }
    Ok(out)
}

const FACT_COLUMNS: &str = "ticket_id, created_at, channel, category, team, agent, tier, \
    status, first_response_s, next_response_s, resolved_at, resolution_s, ever_resolved, \
    reopens, last_reopened_at, agent_replies, fcr, has_sla, sla_breaches, bot_answered, \
    bot_deflected, bot_handoff, corrected, rating";

/// Writes tickets' facts over their old ones; a merged ticket's row goes (it counts in
/// the ticket it joined).
pub async fn put_facts(conn: &mut SqliteConnection, facts: &[TicketFacts]) -> Result<()> {
    let (gone, kept): (Vec<&TicketFacts>, Vec<&TicketFacts>) = facts.iter().partition(|f| f.merged);
    if !gone.is_empty() {
        let ids: Vec<i64> = gone.iter().map(|f| f.ticket_id).collect();
        sqlx::query("DELETE FROM ticket_facts WHERE ticket_id IN (SELECT value FROM json_each(?))")
            .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
            .execute(&mut *conn)
            .await?;
    }
    insert_rows(
        conn,
        "INSERT OR REPLACE INTO ticket_facts (ticket_id, created_at, channel, category, team, \
         agent, tier, status, first_response_s, next_response_s, resolved_at, resolution_s, \
         ever_resolved, reopens, last_reopened_at, agent_replies, fcr, has_sla, sla_breaches, \
         bot_answered, bot_deflected, bot_handoff, corrected, rating) ",
        24,
        &kept,
        |b, f| {
            let next: Vec<String> = f.next_response_s.iter().map(i64::to_string).collect();
            b.push_bind(f.ticket_id)
                .push_bind(f.created_at)
                .push_bind(f.channel.clone())
                .push_bind(f.category.clone())
                .push_bind(f.team.clone())
                .push_bind(f.agent.clone())
                .push_bind(f.tier.clone())
                .push_bind(f.status.clone())
                .push_bind(f.first_response_s)
                .push_bind(next.join(","))
                .push_bind(f.resolved_at)
                .push_bind(f.resolution_s)
                .push_bind(f.ever_resolved)
                .push_bind(f.reopens)
                .push_bind(f.last_reopened_at)
                .push_bind(f.agent_replies)
                .push_bind(f.fcr)
                .push_bind(f.has_sla)
                .push_bind(f.sla_breaches)
                .push_bind(f.bot_answered)
                .push_bind(f.bot_deflected)
                .push_bind(f.bot_handoff)
                .push_bind(f.corrected)
                .push_bind(f.rating);
        },
    )
    .await
}

/// Records customers' ratings, (ticket, score 1-5, comment) each; a later rating of the
/// same ticket replaces the earlier. `source`: "reply" or "link".
pub async fn put_ratings(
    conn: &mut SqliteConnection,
    rows: &[(i64, i64, String)],
    source: &str,
    now: &str,
) -> Result<()> {
    for (ticket, score, comment) in rows {
        sqlx::query(
            "INSERT INTO ratings (ticket_id, rating, source, comment, rated_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (ticket_id) DO UPDATE SET \
             rating = excluded.rating, source = excluded.source, comment = excluded.comment, \
             rated_at = excluded.rated_at",
        )
        .bind(ticket)
        .bind(score)
        .bind(source)
        .bind((!comment.is_empty()).then_some(comment))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A ticket's rating: (score, source, comment, when).
pub async fn find_rating(
    conn: &mut SqliteConnection,
    ticket: i64,
) -> Result<Option<(i64, String, Option<String>, String)>> {
    Ok(
        sqlx::query_as("SELECT rating, source, comment, rated_at FROM ratings WHERE ticket_id = ?")
            .bind(ticket)
            .fetch_optional(conn)
            .await?,
    )
}

/// The key of rating links (`analytics::rating`), made at first use. Two processes
/// making it at once agree: the first write wins and both read it back.
pub async fn rating_key(conn: &mut SqliteConnection) -> Result<Vec<u8>> {
    let name = crate::analytics::rating::KEY_SETTING;
    if let Some(k) = super::find_setting(conn, name).await?
        && let Ok(k) = hex::decode(k)
        && k.len() == 32
    {
        return Ok(k);
    }
    let fresh: [u8; 32] = rand::random();
    sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
        .bind(name)
        .bind(hex::encode(fresh))
        .execute(&mut *conn)
        .await?;
    let stored = super::find_setting(conn, name).await?.unwrap_or_default();
    Ok(hex::decode(stored).unwrap_or_else(|_| fresh.to_vec()))
}

/// Writes tickets' facts ([`put_facts`]) and recomputes the rollups of every day they
/// counted in before or count in now: how the follower stores what it computed.
pub async fn replace_facts(conn: &mut SqliteConnection, facts: &[TicketFacts]) -> Result<()> {
    let ids: Vec<i64> = facts.iter().map(|f| f.ticket_id).collect();
    let mut days = days_of(conn, &ids).await?;
    put_facts(conn, facts).await?;
    days.extend(days_of_facts(facts));
    roll_days(conn, &days).await
}

/// Which tickets a question is about.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub team: Option<String>,
    pub agent: Option<String>,
}

impl Scope {
    fn sql(&self) -> String {
        let mut s = String::new();
        if self.team.is_some() {
            s.push_str(" AND team = ?");
        }
        if self.agent.is_some() {
            s.push_str(" AND agent = ?");
        }
        s
    }

    fn bind<'q>(
        &'q self,
        mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
        if let Some(t) = &self.team {
            q = q.bind(t);
        }
        if let Some(a) = &self.agent {
            q = q.bind(a);
        }
        q
    }
}

/// The column of a grouping; a fixed word, never text from outside.
fn column(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Agent => "agent",
        GroupBy::Team => "team",
        GroupBy::Category => "category",
        GroupBy::Channel => "channel",
        GroupBy::Tier => "tier",
    }
}

fn parse_list(text: Option<String>, into: &mut Vec<i64>) {
    if let Some(t) = text {
        into.extend(t.split(',').filter_map(|v| v.trim().parse::<i64>().ok()));
    }
}

/// Seconds in a rollup day (UTC).
const DAY: i64 = 86_400;

/// The sums of the tickets created in a range, as `ticket_facts` gives them; the names
/// are the columns of `stats_daily` that hold them.
const CREATED_SUMS: &str = "COUNT(*) AS n, SUM(resolved_at IS NOT NULL) AS res, \
    SUM(ever_resolved) AS ever, SUM(reopens > 0) AS reop, \
    group_concat(first_response_s) AS fr, group_concat(NULLIF(next_response_s, '')) AS nr, \
    SUM(has_sla) AS sla, SUM(has_sla AND sla_breaches > 0) AS slab, \
    SUM(has_sla * sla_breaches) AS breaches, SUM(bot_answered) AS ba, \
    SUM(bot_deflected) AS bd, SUM(bot_handoff) AS bh, SUM(corrected) AS cor, \
    SUM(rating IS 1) AS r1, SUM(rating IS 2) AS r2, SUM(rating IS 3) AS r3, \
    SUM(rating IS 4) AS r4, SUM(rating IS 5) AS r5";
/// The same sums read back from `stats_daily`.
const CREATED_ROLLED: &str = "SUM(n) AS n, SUM(res) AS res, SUM(ever) AS ever, \
    SUM(reop) AS reop, group_concat(fr) AS fr, group_concat(nr) AS nr, SUM(sla) AS sla, \
    SUM(slab) AS slab, SUM(breaches) AS breaches, SUM(ba) AS ba, SUM(bd) AS bd, \
    SUM(bh) AS bh, SUM(cor) AS cor, SUM(r1) AS r1, SUM(r2) AS r2, SUM(r3) AS r3, \
    SUM(r4) AS r4, SUM(r5) AS r5";
const CREATED_COLUMNS: &str =
    "n, res, ever, reop, fr, nr, sla, slab, breaches, ba, bd, bh, cor, r1, r2, r3, r4, r5";
const RESOLVED_SUMS: &str = "COUNT(*) AS n, SUM(fcr) AS fcr, group_concat(resolution_s) AS rs";
const RESOLVED_ROLLED: &str = "SUM(n) AS n, SUM(fcr) AS fcr, group_concat(rs) AS rs";
const RESOLVED_COLUMNS: &str = "n, fcr, rs";
const COUNT_SUMS: &str = "COUNT(*) AS n";
const COUNT_ROLLED: &str = "SUM(n) AS n";

/// One of the three sets of tickets a period counts, with the column that dates it.
#[derive(Clone, Copy)]
enum Cohort {
    Created,
    Resolved,
    Reopened,
}

impl Cohort {
    const ALL: [Cohort; 3] = [Cohort::Created, Cohort::Resolved, Cohort::Reopened];

    fn name(self) -> &'static str {
        match self {
            Cohort::Created => "created",
            Cohort::Resolved => "resolved",
            Cohort::Reopened => "reopened",
        }
    }

    fn date_column(self) -> &'static str {
        match self {
            Cohort::Created => "created_at",
            Cohort::Resolved => "resolved_at",
            Cohort::Reopened => "last_reopened_at",
        }
    }

    fn sums(self) -> &'static str {
        match self {
            Cohort::Created => CREATED_SUMS,
            Cohort::Resolved => RESOLVED_SUMS,
            Cohort::Reopened => COUNT_SUMS,
        }
    }

    fn rolled(self) -> &'static str {
        match self {
            Cohort::Created => CREATED_ROLLED,
            Cohort::Resolved => RESOLVED_ROLLED,
            Cohort::Reopened => COUNT_ROLLED,
        }
    }

    fn columns(self) -> &'static str {
        match self {
            Cohort::Created => CREATED_COLUMNS,
            Cohort::Resolved => RESOLVED_COLUMNS,
            Cohort::Reopened => "n",
        }
    }
}

/// Adds one result row of a cohort's sums to its group's tally.
fn add_row(t: &mut Tally, cohort: Cohort, r: &sqlx::sqlite::SqliteRow) -> Result<()> {
    let mut part = Tally::default();
    match cohort {
        Cohort::Created => {
            part.tickets_new = r.try_get("n")?;
            part.new_resolved = r.try_get("res")?;
            part.new_ever_resolved = r.try_get("ever")?;
            part.new_reopened = r.try_get("reop")?;
            parse_list(r.try_get("fr")?, &mut part.first_response_s);
            parse_list(r.try_get("nr")?, &mut part.next_response_s);
            part.sla_tickets = r.try_get("sla")?;
            part.sla_breached_tickets = r.try_get("slab")?;
            part.sla_breaches = r.try_get("breaches")?;
            part.bot_answered = r.try_get("ba")?;
            part.bot_deflected = r.try_get("bd")?;
            part.bot_handoff = r.try_get("bh")?;
            part.corrected = r.try_get("cor")?;
            for (i, slot) in part.ratings.iter_mut().enumerate() {
                *slot = r.try_get(format!("r{}", i + 1).as_str())?;
            }
        }
        Cohort::Resolved => {
            part.tickets_resolved = r.try_get("n")?;
            part.resolved_fcr = r.try_get("fcr")?;
            parse_list(r.try_get("rs")?, &mut part.resolution_s);
        }
        Cohort::Reopened => part.tickets_reopened = r.try_get("n")?,
    }
    t.merge(&part);
    Ok(())
}

/// The whole UTC days inside `[start, end)`: `[first, last)` as day numbers, or `None`
/// when there is no whole day in it.
fn whole_days(start: i64, end: i64) -> Option<(i64, i64)> {
    let first = start.div_euclid(DAY) + i64::from(start.rem_euclid(DAY) != 0);
    let last = end.div_euclid(DAY);
    (first < last).then_some((first, last))
}

/// The sums of `[start, end)` (unix seconds) per group; tickets without a value for the
/// group's column (unassigned, no category) are under "". Whole UTC days come from the
/// rollups, the partial days at the ends from `ticket_facts`.
pub async fn tally(
    conn: &mut SqliteConnection,
    scope: &Scope,
    by: GroupBy,
    start: i64,
    end: i64,
) -> Result<BTreeMap<String, Tally>> {
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    // The rollups are per team, not per agent: an agent's scope reads the facts.
    let whole = if scope.agent.is_some() {
        None
    } else {
        whole_days(start, end)
    };
    let ranges = match whole {
        Some((d0, d1)) => vec![(start, (d0 * DAY).min(end)), ((d1 * DAY).max(start), end)],
        None => vec![(start, end)],
    };
    for cohort in Cohort::ALL {
        for &(a, b) in &ranges {
            if a < b {
                tally_facts(conn, scope, by, cohort, a, b, &mut out).await?;
            }
        }
        if let Some((d0, d1)) = whole {
            tally_rolled(conn, scope, by, cohort, d0, d1, &mut out).await?;
        }
    }
    Ok(out)
}

/// The sums of one cohort straight from `ticket_facts`, added to `out`.
async fn tally_facts(
    conn: &mut SqliteConnection,
    scope: &Scope,
    by: GroupBy,
    cohort: Cohort,
    start: i64,
    end: i64,
    out: &mut BTreeMap<String, Tally>,
) -> Result<()> {
    let (col, date, sums, filter) = (column(by), cohort.date_column(), cohort.sums(), scope.sql());
    let sql = format!(
        "SELECT COALESCE({col}, '') AS k, {sums} FROM ticket_facts \
         WHERE {date} >= ? AND {date} < ?{filter} GROUP BY k"
    );
    let rows = scope
        .bind(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(start).bind(end))
        .fetch_all(&mut *conn)
        .await?;
    for r in &rows {
        add_row(out.entry(r.try_get("k")?).or_default(), cohort, r)?;
    }
    Ok(())
}

/// The rollup dim a grouping reads, and the column its key is in (a team's figures are
/// the sums of its agents').
fn dim_of(by: GroupBy) -> (&'static str, &'static str) {
    match by {
        GroupBy::Agent => ("agent", "value"),
        GroupBy::Team => ("agent", "team"),
        GroupBy::Category => ("category", "value"),
        GroupBy::Channel => ("channel", "value"),
        GroupBy::Tier => ("tier", "value"),
    }
}

/// The rollup dims and the facts expression each holds.
const DIMS: [(&str, &str); 4] = [
    ("agent", "COALESCE(agent, '')"),
    ("category", "COALESCE(category, '')"),
    ("channel", "channel"),
    ("tier", "tier"),
];

/// The scope's filter on `stats_daily` (its team; agents' scopes never read rollups).
fn team_filter(scope: &Scope) -> &'static str {
    if scope.team.is_some() {
        " AND team = ?"
    } else {
        ""
    }
}

/// The sums of one cohort over whole days `[d0, d1)` from `stats_daily`, added to `out`.
async fn tally_rolled(
    conn: &mut SqliteConnection,
    scope: &Scope,
    by: GroupBy,
    cohort: Cohort,
    d0: i64,
    d1: i64,
    out: &mut BTreeMap<String, Tally>,
) -> Result<()> {
    let ((dim, key), rolled, filter) = (dim_of(by), cohort.rolled(), team_filter(scope));
    let sql = format!(
        "SELECT {key} AS k, {rolled} FROM stats_daily \
         WHERE cohort = ? AND dim = ? AND day >= ? AND day < ?{filter} GROUP BY k"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(cohort.name())
        .bind(dim)
        .bind(d0)
        .bind(d1);
    if let Some(t) = &scope.team {
        q = q.bind(t);
    }
    for r in &q.fetch_all(&mut *conn).await? {
        add_row(out.entry(r.try_get("k")?).or_default(), cohort, r)?;
    }
    Ok(())
}

/// Recomputes the rollups of UTC `days` (unix seconds / 86400) from `ticket_facts`: what
/// the follower calls for every day a batch touched, before or after the change.
pub async fn roll_days(conn: &mut SqliteConnection, days: &BTreeSet<i64>) -> Result<()> {
    for &d in days {
        sqlx::query("DELETE FROM stats_daily WHERE day = ?")
            .bind(d)
            .execute(&mut *conn)
            .await?;
        for cohort in Cohort::ALL {
            let (date, sums, columns) = (cohort.date_column(), cohort.sums(), cohort.columns());
            for (dim, expr) in DIMS {
                let sql = format!(
                    "INSERT INTO stats_daily (cohort, day, dim, team, value, {columns}) \
                     SELECT ?, ?, ?, COALESCE(team, ''), {expr}, {sums} \
                     FROM ticket_facts WHERE {date} >= ? AND {date} < ? GROUP BY 4, 5"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(cohort.name())
                    .bind(d)
                    .bind(dim)
                    .bind(d * DAY)
                    .bind((d + 1) * DAY)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        let q = crate::analytics::ARRIVAL_BUCKET_S;
        sqlx::query("DELETE FROM stats_arrivals WHERE q >= ? AND q < ?")
            .bind(d * DAY / q)
            .bind((d + 1) * DAY / q)
            .execute(&mut *conn)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO stats_arrivals (q, team, n) \
             SELECT created_at / {q}, COALESCE(team, ''), COUNT(*) FROM ticket_facts \
             WHERE created_at >= ? AND created_at < ? GROUP BY 1, 2"
        )))
        .bind(d * DAY)
        .bind((d + 1) * DAY)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The days (unix seconds / 86400) whose rollups count these tickets as they are stored
/// now: the days they were created, resolved and reopened.
pub async fn days_of(conn: &mut SqliteConnection, ids: &[i64]) -> Result<BTreeSet<i64>> {
    let json = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let rows: Vec<(i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT created_at, resolved_at, last_reopened_at FROM ticket_facts \
         WHERE ticket_id IN (SELECT value FROM json_each(?))",
    )
    .bind(json)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .flat_map(|(c, r, o)| [Some(c), r, o])
        .flatten()
        .map(|t| t.div_euclid(DAY))
        .collect())
}

/// The days of `facts` (as [`days_of`]).
pub fn days_of_facts(facts: &[TicketFacts]) -> BTreeSet<i64> {
    facts
        .iter()
        .filter(|f| !f.merged)
        .flat_map(|f| [Some(f.created_at), f.resolved_at, f.last_reopened_at])
        .flatten()
        .map(|t| t.div_euclid(DAY))
        .collect()
}

/// Rebuilds every rollup from `ticket_facts` (a database from before the rollups, or a
/// seeded one); the number of days.
pub async fn roll_all(conn: &mut SqliteConnection) -> Result<usize> {
    let days: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT created_at / 86400 FROM ticket_facts \
         UNION SELECT resolved_at / 86400 FROM ticket_facts WHERE resolved_at IS NOT NULL \
         UNION SELECT last_reopened_at / 86400 FROM ticket_facts WHERE last_reopened_at IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM stats_daily")
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM stats_arrivals")
        .execute(&mut *conn)
        .await?;
    let days: BTreeSet<i64> = days.into_iter().collect();
    roll_days(conn, &days).await?;
    Ok(days.len())
}

/// How many tickets of the scope were created and resolved (as they stand now) each UTC
/// day; [`backlog_at`] adds them up.
#[derive(Debug, Clone, Default)]
pub struct DayCounts {
    /// Per day: tickets created and resolved that day.
    days: BTreeMap<i64, (i64, i64)>,
}

/// The per-day counts of the scope, from the rollups.
pub async fn day_counts(conn: &mut SqliteConnection, scope: &Scope) -> Result<DayCounts> {
    let sql = format!(
        "SELECT cohort, day, SUM(n) AS n FROM stats_daily \
         WHERE cohort IN ('created', 'resolved') AND dim = 'agent'{}{} GROUP BY cohort, day",
        team_filter(scope),
        if scope.agent.is_some() {
            " AND value = ?"
        } else {
            ""
        }
    );
    let rows = scope
        .bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
        .fetch_all(&mut *conn)
        .await?;
    let mut days: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for r in &rows {
        let cohort: String = r.try_get("cohort")?;
        let e = days.entry(r.try_get("day")?).or_default();
        let n: i64 = r.try_get("n")?;
        if cohort == "created" {
            e.0 += n;
        } else {
            e.1 += n;
        }
    }
    Ok(DayCounts { days })
}

/// Tickets open at instant `at` (unix seconds), as they stand now: created before it and
/// not resolved before it. Whole days from `counts`, the day of `at` from the facts.
pub async fn backlog_at(
    conn: &mut SqliteConnection,
    scope: &Scope,
    counts: &DayCounts,
    at: i64,
) -> Result<i64> {
    let day = at.div_euclid(DAY);
    let (created, resolved) = counts
        .days
        .range(..day)
        .fold((0, 0), |(c, r), (_, (a, b))| (c + a, r + b));
    let filter = scope.sql();
    let mut partial = [0i64; 2];
    for (slot, date) in partial.iter_mut().zip(["created_at", "resolved_at"]) {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM ticket_facts WHERE {date} >= ? AND {date} < ?{filter}"
        );
        *slot = scope
            .bind(
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(day * DAY)
                    .bind(at),
            )
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
    }
    Ok(created + partial[0] - resolved - partial[1])
}

/// Tickets open at instant `at`, as [`backlog_at`], for one instant.
pub async fn backlog(conn: &mut SqliteConnection, scope: &Scope, at: i64) -> Result<i64> {
    let counts = day_counts(conn, scope).await?;
    backlog_at(conn, scope, &counts, at).await
}

/// New tickets of `[start, end)` per quarter-hour bucket (`analytics::heatmap`): whole
/// days from `stats_arrivals`, the ends from the facts. Only the scope's team counts.
pub async fn arrivals(
    conn: &mut SqliteConnection,
    scope: &Scope,
    start: i64,
    end: i64,
) -> Result<Vec<(i64, i64)>> {
    let q = crate::analytics::ARRIVAL_BUCKET_S;
    let mut out: BTreeMap<i64, i64> = BTreeMap::new();
    let team_filter = if scope.team.is_some() {
        " AND team = ?"
    } else {
        ""
    };
    let (ranges, whole) = match whole_days(start, end) {
        Some((d0, d1)) => (
            vec![(start, (d0 * DAY).min(end)), ((d1 * DAY).max(start), end)],
            Some((d0, d1)),
        ),
        None => (vec![(start, end)], None),
    };
    for (a, b) in ranges {
        if a >= b {
            continue;
        }
        let sql = format!(
            "SELECT created_at / {q} AS b, COUNT(*) AS n FROM ticket_facts \
             WHERE created_at >= ? AND created_at < ?{team_filter} GROUP BY b"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(a).bind(b);
        if let Some(t) = &scope.team {
            query = query.bind(t);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        for r in &rows {
            *out.entry(r.try_get("b")?).or_default() += r.try_get::<i64, _>("n")?;
        }
    }
    if let Some((d0, d1)) = whole {
        let sql = format!(
            "SELECT q, SUM(n) AS n FROM stats_arrivals WHERE q >= ? AND q < ?{team_filter} GROUP BY q"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(d0 * DAY / q)
            .bind(d1 * DAY / q);
        if let Some(t) = &scope.team {
            query = query.bind(t);
        }
        for r in &query.fetch_all(&mut *conn).await? {
            *out.entry(r.try_get("q")?).or_default() += r.try_get::<i64, _>("n")?;
        }
    }
    Ok(out.into_iter().collect())
}

/// The facts of the tickets created in `[start, end)`, oldest first (exports).
pub async fn list_facts(
    conn: &mut SqliteConnection,
    scope: &Scope,
    start: i64,
    end: i64,
) -> Result<Vec<TicketFacts>> {
    let sql = format!(
        "SELECT {FACT_COLUMNS} FROM ticket_facts WHERE created_at >= ? AND created_at < ?{} \
         ORDER BY created_at, ticket_id",
        scope.sql()
    );
    let rows = scope
        .bind(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(start).bind(end))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            let mut next = Vec::new();
            parse_list(r.try_get("next_response_s")?, &mut next);
            Ok(TicketFacts {
                ticket_id: r.try_get("ticket_id")?,
                created_at: r.try_get("created_at")?,
                channel: r.try_get("channel")?,
                category: r.try_get("category")?,
                team: r.try_get("team")?,
                agent: r.try_get("agent")?,
                tier: r.try_get("tier")?,
                status: r.try_get("status")?,
                merged: false,
                first_response_s: r.try_get("first_response_s")?,
                next_response_s: next,
                resolved_at: r.try_get("resolved_at")?,
                resolution_s: r.try_get("resolution_s")?,
                ever_resolved: r.try_get("ever_resolved")?,
                reopens: r.try_get("reopens")?,
                last_reopened_at: r.try_get("last_reopened_at")?,
                agent_replies: r.try_get("agent_replies")?,
                fcr: r.try_get("fcr")?,
                has_sla: r.try_get("has_sla")?,
                sla_breaches: r.try_get("sla_breaches")?,
                bot_answered: r.try_get("bot_answered")?,
                bot_deflected: r.try_get("bot_deflected")?,
                bot_handoff: r.try_get("bot_handoff")?,
                corrected: r.try_get("corrected")?,
                rating: r.try_get("rating")?,
            })
        })
        .collect()
}

/// Red alerts raised in `[start, end)` (RFC 3339 bounds): how many, and each one's
/// seconds to the first human answer and to the handling report, where there was one.
pub async fn alert_times(
    conn: &mut SqliteConnection,
    start: &str,
    end: &str,
) -> Result<(i64, Vec<i64>, Vec<i64>)> {
    let rows = sqlx::query(
        "SELECT CAST(round((julianday(first_human_at) - julianday(raised_at)) * 86400) AS INTEGER) AS fh, \
                CAST(round((julianday(report_at) - julianday(raised_at)) * 86400) AS INTEGER) AS rep \
         FROM alerts WHERE raised_at >= ? AND raised_at < ?",
    )
    .bind(start)
    .bind(end)
    .fetch_all(&mut *conn)
    .await?;
    let mut first = Vec::new();
    let mut report = Vec::new();
    for r in &rows {
        first.extend(r.try_get::<Option<i64>, _>("fh")?);
        report.extend(r.try_get::<Option<i64>, _>("rep")?);
    }
    Ok((rows.len() as i64, first, report))
}

/// The SLA breaches of the tickets created in `[start, end)` (unix seconds), newest
/// first, at most `limit`: (ticket, target, when).
pub async fn list_breaches(
    conn: &mut SqliteConnection,
    scope: &Scope,
    start: i64,
    end: i64,
    limit: i64,
) -> Result<Vec<(i64, String, String)>> {
    let sql = format!(
        "SELECT e.ticket_id, COALESCE(json_extract(e.data, '$.target'), '') AS target,                 e.created_at FROM events e          WHERE e.kind = 'sla_breached' AND e.ticket_id IN (SELECT ticket_id FROM ticket_facts                WHERE created_at >= ? AND created_at < ? AND sla_breaches > 0{})          ORDER BY e.id DESC LIMIT ?",
        scope.sql()
    );
    let rows = scope
        .bind(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(start).bind(end))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<Option<i64>, _>("ticket_id")?
                    .unwrap_or_default(),
                r.try_get("target")?,
                r.try_get("created_at")?,
            ))
        })
        .collect()
}

/// Where the desk stands, for `/metrics`: each one indexed query.
#[derive(Debug, Default)]
pub struct Gauges {
    pub outbox_pending: Vec<(String, i64)>,
    pub outbox_failed: Vec<(String, i64)>,
    pub held: i64,
    pub imap_actions: i64,
    pub open_tickets: i64,
    pub open_alerts: i64,
    /// Each event worker's cursor distance to the newest event.
    pub lags: Vec<(String, i64)>,
    /// The tickets created since the instant asked.
    pub week: Tally,
}

pub async fn gauges(conn: &mut SqliteConnection, since: i64) -> Result<Gauges> {
    let per_channel = |status: &'static str| {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT channel, COUNT(*) FROM outbox WHERE status = ? GROUP BY channel ORDER BY channel",
        )
        .bind(status)
    };
    let outbox_pending = per_channel("pending").fetch_all(&mut *conn).await?;
    let outbox_failed = per_channel("failed").fetch_all(&mut *conn).await?;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let held = count("SELECT COUNT(*) FROM messages WHERE held_reason IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    let imap_actions = count("SELECT COUNT(*) FROM pending_actions")
        .fetch_one(&mut *conn)
        .await?;
    let open_tickets = count("SELECT COUNT(*) FROM tickets WHERE status IN ('open', 'pending')")
        .fetch_one(&mut *conn)
        .await?;
    let open_alerts =
        count("SELECT COUNT(*) FROM alerts WHERE report_at IS NULL AND escalated_at IS NULL")
            .fetch_one(&mut *conn)
            .await?;
    let lags = sqlx::query_as::<_, (String, i64)>(
        "SELECT name, (SELECT COALESCE(MAX(id), 0) FROM events) - last_id FROM event_cursors ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let week = tally(conn, &Scope::default(), GroupBy::Team, since, i64::MAX)
        .await?
        .values()
        .fold(Tally::default(), |mut a, t| {
            a.merge(t);
            a
        });
    Ok(Gauges {
        outbox_pending,
        outbox_failed,
        held,
        imap_actions,
        open_tickets,
        open_alerts,
        lags,
        week,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Facts of many shapes: every combination the sums distinguish, spread over a month.
    fn seeded() -> Vec<TicketFacts> {
        let base = 1_803_859_200; // 2027-03-01T00:00:00Z
        let agents = [Some("alice"), Some("bob"), None];
        let categories = [Some("refund"), Some("login"), None];
        (0..600i64)
            .map(|i| {
                let created = base + i * 4_000;
                let resolved = (i % 3 != 0).then_some(created + 3_600 * (i % 50 + 1));
                TicketFacts {
                    ticket_id: i + 1,
                    created_at: created,
                    channel: ["email", "telegram", "matrix"][(i % 3) as usize].into(),
                    category: categories[(i % 3) as usize].map(String::from),
                    team: Some(if i % 2 == 0 { "billing" } else { "tech" }.into()),
                    agent: agents[(i % 3) as usize].map(String::from),
                    tier: ["standard", "gold"][(i % 2) as usize].into(),
                    status: if resolved.is_some() {
                        "resolved"
                    } else {
                        "open"
                    }
                    .into(),
                    merged: false,
                    first_response_s: (i % 4 != 0).then_some(60 * (i % 97)),
                    next_response_s: (0..(i % 3)).map(|k| 30 * (i + k)).collect(),
                    resolved_at: resolved,
                    resolution_s: resolved.map(|r| r - created),
                    ever_resolved: resolved.is_some() || i % 5 == 0,
                    reopens: i % 7 % 3,
                    last_reopened_at: (i % 7 % 3 > 0).then_some(created + 86_400),
                    agent_replies: i % 4,
                    fcr: resolved.is_some() && i % 4 == 1 && i % 7 % 3 == 0,
                    has_sla: i % 5 != 4,
                    sla_breaches: i % 6 / 4,
                    bot_answered: i % 8 < 3,
                    bot_deflected: i % 8 == 0,
                    bot_handoff: i % 8 == 1,
                    corrected: i % 11 == 0,
                    rating: (i % 9 < 5).then_some(i % 9 + 1),
                }
            })
            .collect()
    }

    fn pure(
        facts: &[TicketFacts],
        by: GroupBy,
        team: Option<&str>,
        a: i64,
        b: i64,
    ) -> BTreeMap<String, Tally> {
        let mut out: BTreeMap<String, Tally> = BTreeMap::new();
        for f in facts
            .iter()
            .filter(|f| team.is_none() || f.team.as_deref() == team)
        {
            let key = match by {
                GroupBy::Agent => f.agent.clone(),
                GroupBy::Team => f.team.clone(),
                GroupBy::Category => f.category.clone(),
                GroupBy::Channel => Some(f.channel.clone()),
                GroupBy::Tier => Some(f.tier.clone()),
            }
            .unwrap_or_default();
            let mut t = Tally::default();
            t.add_facts(f, a, b);
            if t != Tally::default() {
                out.entry(key).or_default().merge(&t);
            }
        }
        for t in out.values_mut() {
            t.first_response_s.sort_unstable();
            t.next_response_s.sort_unstable();
            t.resolution_s.sort_unstable();
        }
        out
    }

    fn sorted(mut m: BTreeMap<String, Tally>) -> BTreeMap<String, Tally> {
        for t in m.values_mut() {
            t.first_response_s.sort_unstable();
            t.next_response_s.sort_unstable();
            t.resolution_s.sort_unstable();
        }
        m
    }

    #[tokio::test]
    async fn sql_sums_are_the_definition() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db")).await.unwrap();
        let mut c = store.pool().acquire().await.unwrap();
        let facts = seeded();
        put_facts(&mut c, &facts).await.unwrap();
        // Written twice: the second replaces, nothing doubles.
        put_facts(&mut c, &facts).await.unwrap();
        roll_all(&mut c).await.unwrap();
        let base = 1_803_859_200;
        let ranges = [
            // Whole days (rollups only), partial days at both ends (both), within a day.
            (base, base + 7 * 86_400),
            (base + 86_400 * 10, base + 86_400 * 40),
            (base + 5 * 3600 + 17, base + 86_400 * 20 + 777),
            (base + 3600, base + 7200),
        ];
        for (a, b) in ranges {
            for by in [
                GroupBy::Agent,
                GroupBy::Category,
                GroupBy::Channel,
                GroupBy::Tier,
                GroupBy::Team,
            ] {
                for team in [None, Some("tech")] {
                    let scope = Scope {
                        team: team.map(String::from),
                        agent: None,
                    };
                    let got = sorted(tally(&mut c, &scope, by, a, b).await.unwrap());
                    assert_eq!(got, pure(&facts, by, team, a, b), "{by:?} {team:?} {a}-{b}");
                }
            }
        }
        // A change rolls only the days it touches, before and after: the sums still agree.
        let mut changed = facts.clone();
        for f in changed.iter_mut().filter(|f| f.ticket_id % 7 == 0) {
            f.agent = Some("carol".into());
            f.resolved_at = Some(f.created_at + 40 * 86_400);
            f.resolution_s = Some(40 * 86_400);
            f.first_response_s = Some(5);
        }
        let touched: Vec<TicketFacts> = changed
            .iter()
            .filter(|f| f.ticket_id % 7 == 0)
            .cloned()
            .collect();
        replace_facts(&mut c, &touched).await.unwrap();
        for (a, b) in ranges {
            for by in [GroupBy::Agent, GroupBy::Category] {
                let got = sorted(tally(&mut c, &Scope::default(), by, a, b).await.unwrap());
                assert_eq!(
                    got,
                    pure(&changed, by, None, a, b),
                    "after the change: {by:?} {a}-{b}"
                );
            }
        }
        let facts = changed;
        // The backlog: created before the instant and not resolved before it.
        let at = base + 15 * 86_400;
        let want = facts
            .iter()
            .filter(|f| f.created_at < at && f.resolved_at.is_none_or(|r| r >= at))
            .count() as i64;
        assert_eq!(backlog(&mut c, &Scope::default(), at).await.unwrap(), want);
        let at = base + 15 * 86_400 + 4321;
        let want = facts
            .iter()
            .filter(|f| f.created_at < at && f.resolved_at.is_none_or(|r| r >= at))
            .count() as i64;
        assert_eq!(
            backlog(&mut c, &Scope::default(), at).await.unwrap(),
            want,
            "mid-day"
        );
        let tech = Scope {
            team: Some("tech".into()),
            agent: None,
        };
        let want = facts
            .iter()
            .filter(|f| f.team.as_deref() == Some("tech"))
            .filter(|f| f.created_at < at && f.resolved_at.is_none_or(|r| r >= at))
            .count() as i64;
        assert_eq!(backlog(&mut c, &tech, at).await.unwrap(), want, "one team");
        // Arrivals over whole and partial days: every ticket once.
        let (a, b) = (base + 3600, base + 30 * 86_400 + 99);
        let got = arrivals(&mut c, &Scope::default(), a, b).await.unwrap();
        let want = facts
            .iter()
            .filter(|f| f.created_at >= a && f.created_at < b)
            .count() as i64;
        assert_eq!(got.iter().map(|x| x.1).sum::<i64>(), want);
        // A merged ticket's row goes.
        let mut gone = facts[0].clone();
        gone.merged = true;
        replace_facts(&mut c, &[gone]).await.unwrap();
        let all = list_facts(&mut c, &Scope::default(), 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(all.len(), facts.len() - 1);
        assert_eq!(all[0], facts[1], "every column reads back as written");
        let arrivals = arrivals(&mut c, &Scope::default(), 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(
            arrivals.iter().map(|a| a.1).sum::<i64>(),
            facts.len() as i64 - 1
        );
    }
}
