//! One statistics question answered: the periods' figures for the team and each agent
//! (and a grouping), the backlog, the peak-hour heatmap, red alerts and SLA breaches.
//! `postdesk stats`, the export and the digest read this; they only differ in how they
//! print it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;

use super::GroupBy;
use super::figures::{Figures, Tally, quantile};
use crate::config::Config;
use crate::store::Conn;
use crate::store::analytics::{self as db, Scope};

/// How periods are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Every {
    Day,
    Week,
}

/// What is asked.
#[derive(Debug, Clone)]
pub struct Query {
    /// Unix seconds, `[start, end)`.
    pub start: i64,
    pub end: i64,
    /// Cut the range into local days or weeks (Monday first); `None`: one period.
    pub every: Option<Every>,
    /// Only this team's tickets (the "team" figures are then that team's).
    pub team: Option<String>,
    /// Only this agent among the agents listed (the team figures stay whole).
    pub agent: Option<String>,
    pub by: Option<GroupBy>,
    /// The zone of periods' boundaries and of the heatmap.
    pub tz: TimeZone,
}

/// One period's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub start: String,
    pub end: String,
    /// Open tickets at the start and at the end, as they stand now.
    pub backlog_start: i64,
    pub backlog_end: i64,
    pub team: Figures,
    pub agents: BTreeMap<String, Figures>,
    /// Per value of `--by`, when asked; tickets without one are under "(none)".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<BTreeMap<String, Figures>>,
}

/// Red alerts raised in the range.
#[derive(Debug, Clone, Serialize)]
pub struct Alerts {
    pub raised: i64,
    pub first_human_median_s: Option<i64>,
    pub first_human_p90_s: Option<i64>,
    pub report_median_s: Option<i64>,
    pub report_p90_s: Option<i64>,
}

/// One SLA breach.
#[derive(Debug, Clone, Serialize)]
pub struct Breach {
    pub ticket: i64,
    pub target: String,
    pub at: String,
}

/// The answer.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub since: String,
    pub until: String,
    pub time_zone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<GroupBy>,
    pub periods: Vec<Period>,
    /// The whole range as one period, when it was cut into several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Period>,
    /// New tickets by local weekday (Monday first) and hour.
    pub heatmap: [[i64; 24]; 7],
    pub alerts: Alerts,
    /// The SLA breaches of the range's tickets, newest first (at most 50).
    pub sla_breaches: Vec<Breach>,
}

fn rfc3339(s: i64) -> String {
    Timestamp::from_second(s).map_or_else(|_| s.to_string(), |t| t.to_string())
}

/// The period boundaries of `[start, end)`: local midnights (or Monday midnights) in `tz`.
pub fn cut(start: i64, end: i64, every: Option<Every>, tz: &TimeZone) -> Vec<(i64, i64)> {
    let Some(every) = every else {
        return vec![(start, end)];
    };
    let mut out = Vec::new();
    let Ok(ts) = Timestamp::from_second(start) else {
        return vec![(start, end)];
    };
    let zoned = ts.to_zoned(tz.clone());
    let Ok(mut boundary) = zoned.start_of_day() else {
        return vec![(start, end)];
    };
    if every == Every::Week {
        let back = i64::from(boundary.weekday().to_monday_zero_offset());
        if let Ok(b) = boundary.checked_sub(back.days()) {
            boundary = b;
        }
    }
    let step = match every {
        Every::Day => 1.day(),
        Every::Week => 1.week(),
    };
    let mut a = start;
    // At most ten years of days: a bound, not a limit anyone meets.
    for _ in 0..3700 {
        let Ok(next) = boundary.checked_add(step) else {
            break;
        };
        let b = next.timestamp().as_second().min(end);
        if b > a {
            out.push((a, b));
        }
        a = b;
        boundary = next;
        if a >= end {
            break;
        }
    }
    if out.is_empty() {
        out.push((start, end));
    }
    out
}

fn name_of(key: String, none: &str) -> String {
    if key.is_empty() {
        none.to_string()
    } else {
        key
    }
}

async fn period(
    conn: &mut Conn,
    cfg: &Config,
    q: &Query,
    scope: &Scope,
    counts: &db::DayCounts,
    (a, b): (i64, i64),
) -> Result<Period> {
    let by_agent = db::tally(conn, scope, GroupBy::Agent, a, b).await?;
    let mut team = Tally::default();
    for t in by_agent.values() {
        team.merge(t);
    }
    // The agents listed: the configured ones (the team's members with --team), and anyone
    // else tickets are assigned to; with --agent, that one.
    let mut names: BTreeSet<String> = match &q.team {
        Some(t) => cfg
            .teams
            .iter()
            .filter(|x| x.name.eq_ignore_ascii_case(t))
            .flat_map(|x| x.members.iter().cloned())
            .collect(),
        None => cfg.agents.iter().map(|a| a.name.clone()).collect(),
    };
    names.extend(by_agent.keys().filter(|k| !k.is_empty()).cloned());
    if let Some(only) = &q.agent {
        names.retain(|n| n == only);
        names.insert(only.clone());
    }
    let agents = names
        .into_iter()
        .map(|n| {
            let f = by_agent.get(&n).cloned().unwrap_or_default().figures();
            (n, f)
        })
        .collect();
    let groups = match q.by {
        None => None,
        Some(GroupBy::Agent) => Some(
            by_agent
                .into_iter()
                .map(|(k, t)| (name_of(k, "(unassigned)"), t.figures()))
                .collect(),
        ),
        Some(by) => Some(
            db::tally(conn, scope, by, a, b)
                .await?
                .into_iter()
                .map(|(k, t)| (name_of(k, "(none)"), t.figures()))
                .collect(),
        ),
    };
    Ok(Period {
        start: rfc3339(a),
        end: rfc3339(b),
        backlog_start: db::backlog_at(conn, scope, counts, a).await?,
        backlog_end: db::backlog_at(conn, scope, counts, b).await?,
        team: team.figures(),
        agents,
        groups,
    })
}

/// Answers `q` from `ticket_facts` (bring them up to date first: `follower::catch_up`).
pub async fn build(conn: &mut Conn, cfg: &Config, q: &Query) -> Result<Report> {
    let scope = Scope {
        team: q.team.clone(),
        agent: None,
    };
    let cuts = cut(q.start, q.end, q.every, &q.tz);
    let counts = db::day_counts(conn, &scope).await?;
    let mut periods = Vec::with_capacity(cuts.len());
    for c in &cuts {
        periods.push(period(conn, cfg, q, &scope, &counts, *c).await?);
    }
    let total = if cuts.len() > 1 {
        Some(period(conn, cfg, q, &scope, &counts, (q.start, q.end)).await?)
    } else {
        None
    };
    let buckets = db::arrivals(conn, &scope, q.start, q.end).await?;
    let (raised, mut first, mut report) = db::alert_times(
        conn,
        &crate::clock::db_time_unix(q.start),
        &crate::clock::db_time_unix(q.end),
    )
    .await?;
    first.sort_unstable();
    report.sort_unstable();
    let sla_breaches = db::list_breaches(conn, &scope, q.start, q.end, 50)
        .await?
        .into_iter()
        .map(|(ticket, target, at)| Breach { ticket, target, at })
        .collect();
    Ok(Report {
        since: rfc3339(q.start),
        until: rfc3339(q.end),
        time_zone: q.tz.iana_name().unwrap_or("UTC").to_string(),
        team_name: q.team.clone(),
        group_by: q.by,
        periods,
        total,
        heatmap: super::heatmap(&buckets, &q.tz),
        alerts: Alerts {
            raised,
            first_human_median_s: quantile(&first, 0.5),
            first_human_p90_s: quantile(&first, 0.9),
            report_median_s: quantile(&report, 0.5),
            report_p90_s: quantile(&report, 0.9),
        },
        sla_breaches,
    })
}

/// The zone a team's statistics are read in: its lead's, else its first member's; for
/// the whole desk the first lead's; UTC when none is known.
pub fn team_zone(cfg: &Config, team: Option<&str>) -> TimeZone {
    let agent_zone = |name: &str| {
        cfg.agents
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.timezone.clone())
    };
    match team.and_then(|t| cfg.teams.iter().find(|x| x.name.eq_ignore_ascii_case(t))) {
        Some(t) => t
            .lead
            .as_deref()
            .and_then(agent_zone)
            .or_else(|| t.members.first().and_then(|m| agent_zone(m)))
            .unwrap_or(TimeZone::UTC),
        None => cfg
            .agents
            .iter()
            .find(|a| a.lead)
            .map(|a| a.timezone.clone())
            .unwrap_or(TimeZone::UTC),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_weeks_cut_at_local_midnight() {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        // 2027-03-03T12:00Z (Wednesday 20:00 in Shanghai) to 2027-03-05T00:00Z.
        let start = 1_803_859_200 + 2 * 86_400 + 12 * 3600;
        let end = 1_803_859_200 + 4 * 86_400;
        let days = cut(start, end, Some(Every::Day), &tz);
        // Local midnights fall at 16:00Z: 2027-03-03T16:00Z and 2027-03-04T16:00Z.
        assert_eq!(
            days,
            vec![
                (start, start + 4 * 3600),
                (start + 4 * 3600, start + 28 * 3600),
                (start + 28 * 3600, end),
            ]
        );
        let weeks = cut(start, end, Some(Every::Week), &tz);
        assert_eq!(weeks, vec![(start, end)], "one local week");
        assert_eq!(cut(start, end, None, &tz), vec![(start, end)]);
        // Monday 2027-03-08 00:00 Shanghai is 2027-03-07T16:00Z.
        let weeks = cut(start, start + 10 * 86_400, Some(Every::Week), &tz);
        assert_eq!(weeks.len(), 2, "Wednesday to Monday, Monday to the end");
        assert_eq!(weeks[1].0, 1_803_859_200 + 6 * 86_400 + 16 * 3600);
    }
}
