//! `postdesk stats` (the team's and each agent's figures over a period, as a table, JSON
//! or CSV) and `postdesk export` (one agent's tickets and figures, for a review). Both
//! bring the ticket figures up to date with the event log first, so they are current
//! whether or not the daemon runs.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::analytics::GroupBy;
use crate::analytics::figures::{Figures, human_duration};
use crate::analytics::report::{self, Every, Query, Report};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Start of the range: a duration back from now ("7d", "24h", "4w") or a local date
    /// (YYYY-MM-DD, in the team's time zone).
    #[arg(long, default_value = "7d")]
    since: String,
    /// End of the range (exclusive), the same way; now by default.
    #[arg(long)]
    until: Option<String>,
    /// Only this agent among the agents listed; the team's figures stay beside them.
    #[arg(long)]
    agent: Option<String>,
    /// Only this team's tickets.
    #[arg(long)]
    team: Option<String>,
    /// Also group the figures by this.
    #[arg(long, value_enum)]
    by: Option<GroupBy>,
    /// Cut the range into local days or weeks.
    #[arg(long, value_enum)]
    every: Option<Every>,
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV: one row per period and team, agent or group.
    #[arg(long)]
    csv: bool,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The agent whose tickets and figures to export.
    #[arg(long)]
    agent: String,
    /// Start of the range, as for `stats`.
    #[arg(long, default_value = "30d")]
    since: String,
    /// End of the range, as for `stats`.
    #[arg(long)]
    until: Option<String>,
    /// Print the tickets as CSV (one row each; the figures are `stats --agent --csv`).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Print JSON: the agent's figures, the team's, and the tickets.
    #[arg(long)]
    json: bool,
}

/// A range bound: a duration back from `now` or a local date's midnight in `tz`.
pub fn parse_bound(s: &str, now: i64, tz: &jiff::tz::TimeZone) -> Result<i64> {
    let t = s.trim();
    if let Ok(date) = t.parse::<jiff::civil::Date>() {
        let z = date
            .to_zoned(tz.clone())
            .with_context(|| format!("{t:?}: no such local date"))?;
        return Ok(z.timestamp().as_second());
    }
    match crate::rules::calendar::parse_duration(t) {
        Ok(d) => Ok(now - d),
        Err(_) => bail!(
            "{t:?} is neither a duration back from now (\"7d\", \"12h\") nor a date (2026-11-01)"
        ),
    }
}

/// `[since, until)` in unix seconds; `until` by default: now, this second included.
fn range(since: &str, until: Option<&str>, tz: &jiff::tz::TimeZone) -> Result<(i64, i64)> {
    let now = SystemClock.now().timestamp();
    let start = parse_bound(since, now, tz)?;
    let end = match until {
        Some(u) => parse_bound(u, now, tz)?,
        None => now + 1,
    };
    if end <= start {
        bail!("the range is empty: --since must come before --until");
    }
    Ok((start, end))
}

fn load(config: &Path) -> Result<Config> {
    super::load_config_for_admin(config)
}

async fn open_current(cfg: &Config, quiet: bool) -> Result<Store> {
    let store = Store::open_existing(&cfg.database_path).await?;
    crate::analytics::follower::catch_up(&store, &SystemClock, Arc::new(cfg.clone()), !quiet)
        .await
        .context("Bringing the ticket figures up to date")?;
    Ok(store)
}

fn check_names(cfg: &Config, agent: Option<&str>, team: Option<&str>) -> Result<()> {
    if let Some(a) = agent
        && cfg.agent_by_name(a).is_none()
    {
        bail!("no agent named {a:?} in the configuration");
    }
    if let Some(t) = team
        && !cfg.teams.iter().any(|x| x.name.eq_ignore_ascii_case(t))
    {
        bail!("no team named {t:?} in the configuration");
    }
    Ok(())
}

pub async fn execute(config: &Path, args: &StatsArgs) -> Result<bool> {
    let cfg = load(config)?;
    check_names(&cfg, args.agent.as_deref(), args.team.as_deref())?;
    let team = args.team.as_ref().and_then(|t| {
        cfg.teams
            .iter()
            .find(|x| x.name.eq_ignore_ascii_case(t))
            .map(|x| x.name.clone())
    });
    let tz = report::team_zone(&cfg, team.as_deref());
    let (start, end) = range(&args.since, args.until.as_deref(), &tz)?;
    let store = open_current(&cfg, args.json || args.csv).await?;
    let mut conn = store.pool().acquire().await?;
    let q = Query {
        start,
        end,
        every: args.every,
        team,
        agent: args.agent.clone(),
        by: args.by,
        tz,
    };
    let r = report::build(&mut conn, &cfg, &q).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if args.csv {
        print!("{}", stats_csv(&r)?);
    } else {
        print!("{}", stats_table(&r));
    }
    Ok(true)
}

const CSV_HEAD: [&str; 32] = [
    "period_start",
    "period_end",
    "kind",
    "name",
    "tickets_new",
    "tickets_reopened",
    "tickets_resolved",
    "first_response_median_s",
    "first_response_p90_s",
    "next_response_median_s",
    "next_response_p90_s",
    "resolution_median_s",
    "resolution_p90_s",
    "resolution_rate",
    "fcr_rate",
    "reopen_rate",
    "sla_tickets",
    "sla_breached_tickets",
    "sla_breaches",
    "sla_compliance",
    "bot_answered",
    "bot_deflection_rate",
    "bot_handoff_rate",
    "correction_rate",
    "satisfaction_count",
    "satisfaction_avg",
    "rated_1",
    "rated_2",
    "rated_3",
    "rated_4",
    "rated_5",
    "backlog_end",
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn figure_cells(f: &Figures) -> Vec<String> {
    let mut v = vec![
        f.tickets_new.to_string(),
        f.tickets_reopened.to_string(),
        f.tickets_resolved.to_string(),
        opt(f.first_response_median_s),
        opt(f.first_response_p90_s),
        opt(f.next_response_median_s),
        opt(f.next_response_p90_s),
        opt(f.resolution_median_s),
        opt(f.resolution_p90_s),
        opt(f.resolution_rate),
        opt(f.fcr_rate),
        opt(f.reopen_rate),
        f.sla_tickets.to_string(),
        f.sla_breached_tickets.to_string(),
        f.sla_breaches.to_string(),
        opt(f.sla_compliance),
        f.bot_answered.to_string(),
        opt(f.bot_deflection_rate),
        opt(f.bot_handoff_rate),
        opt(f.correction_rate),
        f.satisfaction_count.to_string(),
        opt(f.satisfaction_avg),
    ];
    v.extend(f.satisfaction.iter().map(i64::to_string));
    v
}

fn stats_csv(r: &Report) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEAD)?;
    for p in r.periods.iter().chain(r.total.iter()) {
        let mut row = |kind: &str, name: &str, f: &Figures, backlog: String| -> Result<()> {
            let mut cells = vec![p.start.clone(), p.end.clone(), kind.into(), name.into()];
            cells.extend(figure_cells(f));
            cells.push(backlog);
            w.write_record(&cells)?;
            Ok(())
        };
        row(
            "team",
            r.team_name.as_deref().unwrap_or("all"),
            &p.team,
            p.backlog_end.to_string(),
        )?;
        for (name, f) in &p.agents {
            row("agent", name, f, String::new())?;
        }
        if let (Some(groups), Some(by)) = (&p.groups, r.group_by) {
            for (name, f) in groups {
                row(by.as_str(), name, f, String::new())?;
            }
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

/// The rows of the terminal table: a label and how to show one group's figure.
type Line = (&'static str, fn(&Figures) -> String);

const LINES: [Line; 16] = [
    ("new", |f| f.tickets_new.to_string()),
    ("reopened", |f| f.tickets_reopened.to_string()),
    ("resolved", |f| f.tickets_resolved.to_string()),
    ("first response median", |f| {
        human_duration(f.first_response_median_s)
    }),
    ("first response p90", |f| {
        human_duration(f.first_response_p90_s)
    }),
    ("next response median", |f| {
        human_duration(f.next_response_median_s)
    }),
    ("next response p90", |f| {
        human_duration(f.next_response_p90_s)
    }),
    ("resolution median", |f| {
        human_duration(f.resolution_median_s)
    }),
    ("resolution p90", |f| human_duration(f.resolution_p90_s)),
    ("resolution rate", |f| pct(f.resolution_rate)),
    ("first-contact resolution", |f| pct(f.fcr_rate)),
    ("reopen rate", |f| pct(f.reopen_rate)),
    ("SLA compliance", |f| pct(f.sla_compliance)),
    ("SLA breaches", |f| f.sla_breaches.to_string()),
    ("bot deflection", |f| pct(f.bot_deflection_rate)),
    ("satisfaction", |f| {
        f.satisfaction_avg.map_or_else(
            || "-".into(),
            |a| format!("{a:.2} ({})", f.satisfaction_count),
        )
    }),
];

fn table(columns: &[(String, &Figures)]) -> String {
    let label_w = LINES.iter().map(|l| l.0.len()).max().unwrap_or(0);
    let cells: Vec<Vec<String>> = columns
        .iter()
        .map(|(_, f)| LINES.iter().map(|(_, show)| show(f)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .zip(&cells)
        .map(|((name, _), c)| {
            c.iter()
                .map(|s| s.chars().count())
                .chain([name.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("{:label_w$}", "");
    for ((name, _), w) in columns.iter().zip(&widths) {
        out.push_str(&format!("  {:>w$}", super::term_line(name)));
    }
    out.push('\n');
    for (i, (label, _)) in LINES.iter().enumerate() {
        out.push_str(&format!("{label:label_w$}"));
        for (c, w) in cells.iter().zip(&widths) {
            out.push_str(&format!("  {:>w$}", c.get(i).map_or("", String::as_str)));
        }
        out.push('\n');
    }
    out
}

fn stats_table(r: &Report) -> String {
    let mut out = String::new();
    for p in r.periods.iter().chain(r.total.iter()) {
        out.push_str(&format!(
            "{} to {} ({}): backlog {} -> {}\n",
            p.start, p.end, r.time_zone, p.backlog_start, p.backlog_end
        ));
        let team = r.team_name.clone().unwrap_or_else(|| "team".into());
        let mut cols: Vec<(String, &Figures)> = vec![(team, &p.team)];
        cols.extend(p.agents.iter().map(|(n, f)| (n.clone(), f)));
        out.push_str(&table(&cols));
        if let (Some(groups), Some(by)) = (&p.groups, r.group_by) {
            out.push_str(&format!("by {}:\n", by.as_str()));
            let cols: Vec<(String, &Figures)> =
                groups.iter().map(|(n, f)| (n.clone(), f)).collect();
            out.push_str(&table(&cols));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Arrivals by weekday and hour ({}):\n",
        r.time_zone
    ));
    out.push_str("     ");
    for h in 0..24 {
        out.push_str(&format!("{h:>4}"));
    }
    out.push('\n');
    for (day, row) in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        .iter()
        .zip(&r.heatmap)
    {
        out.push_str(&format!("{day}  "));
        for n in row {
            out.push_str(&format!("{n:>4}"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "\nRed alerts: {} raised; first human answer median {}, report median {}\n",
        r.alerts.raised,
        human_duration(r.alerts.first_human_median_s),
        human_duration(r.alerts.report_median_s)
    ));
    if !r.sla_breaches.is_empty() {
        out.push_str("SLA breaches:\n");
        for b in &r.sla_breaches {
            out.push_str(&format!("  #{} {} at {}\n", b.ticket, b.target, b.at));
        }
    }
    out
}

/// One exported ticket.
#[derive(Debug, Serialize)]
struct ExportRow {
    ticket: i64,
    created_at: String,
    channel: String,
    category: String,
    tier: String,
    status: String,
    first_response_s: String,
    next_responses: usize,
    resolved_at: String,
    resolution_s: String,
    reopens: i64,
    agent_replies: i64,
    fcr: bool,
    sla_breaches: i64,
    rating: String,
}

pub async fn export(config: &Path, args: &ExportArgs) -> Result<bool> {
    let cfg = load(config)?;
    check_names(&cfg, Some(&args.agent), None)?;
    let tz = cfg
        .agent_by_name(&args.agent)
        .map(|a| a.timezone.clone())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let (start, end) = range(&args.since, args.until.as_deref(), &tz)?;
    let store = open_current(&cfg, true).await?;
    let mut conn = store.pool().acquire().await?;
    let scope = crate::store::analytics::Scope {
        team: None,
        agent: Some(args.agent.clone()),
    };
    let facts = crate::store::analytics::list_facts(&mut conn, &scope, start, end).await?;
    let time =
        |s: i64| jiff::Timestamp::from_second(s).map_or_else(|_| s.to_string(), |t| t.to_string());
    let rows: Vec<ExportRow> = facts
        .iter()
        .map(|f| ExportRow {
            ticket: f.ticket_id,
            created_at: time(f.created_at),
            channel: f.channel.clone(),
            category: f.category.clone().unwrap_or_default(),
            tier: f.tier.clone(),
            status: f.status.clone(),
            first_response_s: opt(f.first_response_s),
            next_responses: f.next_response_s.len(),
            resolved_at: f.resolved_at.map(time).unwrap_or_default(),
            resolution_s: opt(f.resolution_s),
            reopens: f.reopens,
            agent_replies: f.agent_replies,
            fcr: f.fcr,
            sla_breaches: f.sla_breaches,
            rating: opt(f.rating),
        })
        .collect();
    if args.csv || !args.json {
        let mut w = csv::Writer::from_writer(std::io::stdout());
        for r in &rows {
            w.serialize(r)?;
        }
        w.flush()?;
        return Ok(true);
    }
    let q = Query {
        start,
        end,
        every: None,
        team: None,
        agent: Some(args.agent.clone()),
        by: None,
        tz,
    };
    let r = report::build(&mut conn, &cfg, &q).await?;
    let period = r.periods.into_iter().next();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "agent": args.agent,
            "since": r.since,
            "until": r.until,
            "figures": period.as_ref().and_then(|p| p.agents.get(&args.agent)),
            "team": period.as_ref().map(|p| &p.team),
            "tickets": rows,
        }))?
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_durations_or_local_dates() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(
            parse_bound("7d", 1_000_000, &utc).unwrap(),
            1_000_000 - 7 * 86_400
        );
        assert_eq!(parse_bound("1h30m", 10_000, &utc).unwrap(), 10_000 - 5400);
        let sh = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        // Local midnight of 2027-03-01 in Shanghai is 16:00 UTC the day before.
        assert_eq!(
            parse_bound("2027-03-01", 0, &sh).unwrap(),
            1_803_859_200 - 8 * 3600
        );
        let err = parse_bound("last week", 0, &utc).unwrap_err().to_string();
        assert!(err.contains("neither a duration"), "{err}");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_duration(None), "-");
        assert_eq!(human_duration(Some(45)), "45s");
        assert_eq!(human_duration(Some(65)), "1m 05s");
        assert_eq!(human_duration(Some(3900)), "1h 05m");
        assert_eq!(human_duration(Some(3 * 86_400 + 4 * 3600)), "3d 4h");
    }
}
