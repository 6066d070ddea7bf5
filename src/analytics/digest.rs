//! The weekly digest: the last seven days' figures by mail, with charts.
//!
//! Leads (`[[agent]] lead = true`, or a team's `lead`) get their team's figures (the whole
//! desk when they lead no team) with every agent's row; with `[digest] weekly_agents`
//! every other agent gets their own figures beside their team's. It goes at `[digest]
//! hour` on `weekly_day` in each recipient's zone, once per ISO week (claimed in
//! `digests_sent` as `week:<year>-W<nn>` in the transaction that queues it).
//!
//! The mail is text plus HTML with four inline PNG charts (`charts`): tickets new and
//! resolved per day, each agent's median first response, the resolution rate per
//! category, and arrivals by weekday and hour. The HTML is tables with inline styles and
//! fixed image sizes, which Gmail, Outlook and Thunderbird all lay out alike.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::GroupBy;
use super::charts::{self, InlineChart};
use super::figures::{Figures, human_duration};
use super::report::{self, Every, Query, Report};
use crate::channels::email::compose::{self, InlineImage};
use crate::clock::db_time;
use crate::config::{AgentConfig, Config};
use crate::domain::MessageKind;
use crate::intake::Services;
use crate::store::Store;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Whether `agent` leads, and the team whose figures they get (`None`: the whole desk).
fn scope_of(cfg: &Config, agent: &AgentConfig) -> (bool, Option<String>) {
    let led = cfg
        .teams
        .iter()
        .find(|t| t.lead.as_deref() == Some(agent.name.as_str()));
    if let Some(t) = led {
        return (true, Some(t.name.clone()));
    }
    let member = cfg
        .teams
        .iter()
        .find(|t| t.members.iter().any(|m| m == &agent.name))
        .map(|t| t.name.clone());
    if agent.lead {
        (true, None)
    } else {
        (false, member)
    }
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.0}%", r * 100.0))
}

fn row(name: &str, f: &Figures) -> Value {
    json!({
        "name": name,
        "new": f.tickets_new,
        "resolved": f.tickets_resolved,
        "first_response": human_duration(f.first_response_median_s),
        "first_response_p90": human_duration(f.first_response_p90_s),
        "resolution": human_duration(f.resolution_median_s),
        "fcr": pct(f.fcr_rate),
        "reopen": pct(f.reopen_rate),
        "sla": pct(f.sla_compliance),
        "satisfaction": f.satisfaction_avg.map_or_else(|| "-".to_string(), |a| format!("{a:.1}")),
    })
}

/// Every string in `v` escaped for HTML text and attributes.
pub fn html_escaped(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#39;"),
        ),
        Value::Array(a) => Value::Array(a.iter().map(html_escaped).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), html_escaped(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The four charts of a report.
pub fn charts_of(r: &Report, fonts: &charts::Fonts) -> Result<Vec<InlineChart>> {
    chart_sources(r)?
        .into_iter()
        .map(|(id, title, svg)| {
            Ok(InlineChart {
                id: id.to_string(),
                title,
                png: charts::to_png(&svg, fonts)?,
            })
        })
        .collect()
}

/// (id, title, svg) of the four charts.
pub fn chart_sources(r: &Report) -> Result<Vec<(&'static str, String, String)>> {
    let total = r.total.as_ref().or(r.periods.first());
    let days: Vec<(String, i64, i64)> = r
        .periods
        .iter()
        .map(|p| {
            let day = p.start.get(5..10).unwrap_or(&p.start).to_string();
            (day, p.team.tickets_new, p.team.tickets_resolved)
        })
        .collect();
    let medians: Vec<(String, i64)> = total
        .map(|t| {
            t.agents
                .iter()
                .map(|(n, f)| (n.clone(), f.first_response_median_s.unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let (unit, per) = response_unit(medians.iter().map(|m| m.1).max().unwrap_or(0));
    let agents: Vec<(String, f64)> = medians
        .into_iter()
        .map(|(n, s)| (n, s as f64 / per))
        .collect();
    let categories: Vec<(String, f64)> = total
        .and_then(|t| t.groups.as_ref())
        .map(|g| {
            g.iter()
                .filter(|(_, f)| f.tickets_new > 0)
                .map(|(n, f)| (n.clone(), f.resolution_rate.unwrap_or(0.0) * 100.0))
                .collect()
        })
        .unwrap_or_default();
    let svgs = [
        (
            "volume",
            "New and resolved tickets per day".to_string(),
            charts::volume_svg("New and resolved tickets per day", &days)?,
        ),
        (
            "first-response",
            "Median first response by agent".to_string(),
            charts::bars_svg("Median first response by agent", unit, &agents)?,
        ),
        (
            "categories",
            "Resolution rate by category".to_string(),
            category_chart(&categories)?,
        ),
        (
            "peak-hours",
            format!("New tickets by weekday and hour ({})", r.time_zone),
            charts::heatmap_svg(
                &format!("New tickets by weekday and hour ({})", r.time_zone),
                &r.heatmap,
                &DAYS,
            )?,
        ),
    ];
    Ok(svgs.into())
}

/// The unit that suits the slowest response, in seconds: (name, seconds per unit).
fn response_unit(slowest: i64) -> (&'static str, f64) {
    match slowest {
        s if s < 120 => ("seconds", 1.0),
        s if s < 7_200 => ("minutes", 60.0),
        _ => ("hours", 3_600.0),
    }
}

/// The resolution rate per category chart (its own function: the digest test draws it
/// again to compare pixels).
pub fn category_chart(categories: &[(String, f64)]) -> Result<String> {
    charts::bars_svg("Resolution rate by category", "% resolved", categories)
}

/// The data of `weekly.*` for one recipient, and the charts.
fn mail_data(cfg: &Config, agent: &AgentConfig, lead: bool, r: &Report) -> Value {
    let total = r.total.as_ref().or(r.periods.first());
    let team = total.map(|t| t.team.clone());
    let numbers: Vec<Value> = team
        .as_ref()
        .map(|f| {
            vec![
                json!({"label": "New tickets", "value": f.tickets_new.to_string()}),
                json!({"label": "Resolved", "value": f.tickets_resolved.to_string()}),
                json!({"label": "Reopened", "value": f.tickets_reopened.to_string()}),
                json!({"label": "Backlog", "value": format!("{} -> {}",
                    r.periods.first().map_or(0, |p| p.backlog_start),
                    r.periods.last().map_or(0, |p| p.backlog_end))}),
                json!({"label": "First response (median / p90)", "value": format!("{} / {}",
                    human_duration(f.first_response_median_s), human_duration(f.first_response_p90_s))}),
                json!({"label": "Resolution time (median)", "value": human_duration(f.resolution_median_s)}),
                json!({"label": "First-contact resolution", "value": pct(f.fcr_rate)}),
                json!({"label": "Reopen rate", "value": pct(f.reopen_rate)}),
                json!({"label": "SLA compliance", "value": format!("{} ({} breaches)", pct(f.sla_compliance), f.sla_breaches)}),
                json!({"label": "Bot deflection", "value": pct(f.bot_deflection_rate)}),
                json!({"label": "Satisfaction", "value": f.satisfaction_avg.map_or_else(|| "-".to_string(), |a| format!("{a:.1} of 5 ({} ratings)", f.satisfaction_count))}),
            ]
        })
        .unwrap_or_default();
    let agents: Vec<Value> = total
        .map(|t| t.agents.iter().map(|(n, f)| row(n, f)).collect())
        .unwrap_or_default();
    let me = total
        .and_then(|t| t.agents.get(&agent.name))
        .map(|f| row(&agent.name, f));
    let team_row = team.as_ref().map(|f| row("team", f));
    let local = |s: &str| s.get(..10).unwrap_or(s).to_string();
    json!({
        "name": agent.display_name,
        "lead": lead,
        "team_name": r.team_name.clone().unwrap_or_else(|| "the desk".into()),
        "since": local(&r.since),
        "until": local(&r.until),
        "time_zone": r.time_zone,
        "numbers": numbers,
        "agents": agents,
        "me": me,
        "team": team_row,
        "alerts": r.alerts.raised,
        "charts": [
            {"cid": "volume@postdesk", "title": "New and resolved tickets per day"},
            {"cid": "first-response@postdesk", "title": "Median first response by agent"},
            {"cid": "categories@postdesk", "title": "Resolution rate by category"},
            {"cid": "peak-hours@postdesk", "title": "New tickets by weekday and hour"},
        ],
        "support_name": cfg.smtp.from.name.clone().unwrap_or_default(),
    })
}

/// The ISO week of `now` in `agent`'s zone, as `digests_sent` keys it, when the digest
/// is due there (`weekly_day`, at or after `hour`).
fn due_week(cfg: &Config, agent: &AgentConfig, now: DateTime<Utc>) -> Option<String> {
    let local = jiff::Timestamp::from_second(now.timestamp())
        .ok()?
        .to_zoned(agent.timezone.clone());
    if local.weekday() != cfg.digest.weekly_day
        || local.hour() < i8::try_from(cfg.digest.hour).unwrap_or(8)
    {
        return None;
    }
    let week = local.date().iso_week_date();
    Some(format!("week:{}-W{:02}", week.year(), week.week()))
}

/// Sends the weekly digests that are due at `now` (or, `anyway`, now for every leader and
/// `only`). The number queued.
pub async fn weekly(
    store: &Store,
    services: &Services,
    now: DateTime<Utc>,
    only: Option<&str>,
    anyway: bool,
) -> Result<usize> {
    let cfg = services.config();
    // The figures include everything committed so far.
    super::follower::catch_up(store, services.clock(), services.config_arc(), false).await?;
    let fonts = charts::fonts(cfg.digest.font_file.as_deref());
    let mut sent = 0;
    for agent in &cfg.agents {
        if only.is_some_and(|o| !o.eq_ignore_ascii_case(&agent.name)) {
            continue;
        }
        let (lead, team) = scope_of(cfg, agent);
        if !lead && !cfg.digest.weekly_agents && only.is_none() {
            continue;
        }
        let claim = if anyway {
            None
        } else {
            match due_week(cfg, agent, now) {
                Some(w) => Some(w),
                None => continue,
            }
        };
        let q = Query {
            start: now.timestamp() - 7 * 86_400,
            end: now.timestamp() + 1,
            every: Some(Every::Day),
            team,
            agent: (!lead).then(|| agent.name.clone()),
            by: Some(GroupBy::Category),
            tz: agent.timezone.clone(),
        };
        let r = {
            let mut conn = store.pool().acquire().await?;
            report::build(&mut conn, cfg, &q).await?
        };
        let data = mail_data(cfg, agent, lead, &r);
        let images: Vec<InlineImage> = charts_of(&r, fonts)?
            .into_iter()
            .map(|c| InlineImage {
                content_id: format!("{}@postdesk", c.id),
                filename: format!("{}.png", c.id),
                png: c.png,
            })
            .collect();
        let mail = compose::report_mail(
            cfg,
            services.templates(),
            "weekly",
            std::slice::from_ref(&agent.email),
            &data,
            &html_escaped(&data),
            &images,
        )
        .with_context(|| format!("Composing the weekly digest of {}", agent.name))?;
        let mut tx = store.begin_write().await?;
        if let Some(week) = &claim
            && !crate::store::triage::claim_digest(&mut tx, &agent.name, week, &db_time(now))
                .await?
        {
            continue;
        }
        crate::agent::queue_internal(
            services,
            &mut tx,
            None,
            MessageKind::Notification,
            &mail,
            &db_time(now),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            "Weekly digest queued for {} ({} charts).",
            agent.name,
            images.len()
        );
        sent += 1;
    }
    Ok(sent)
}

/// Whether the weekly digests of `cfg` could be due at all.
pub fn enabled(cfg: &Config) -> bool {
    cfg.digest.enabled && cfg.digest.weekly
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_responses_are_charted_in_a_unit_that_shows_them() {
        assert_eq!(response_unit(2), ("seconds", 1.0));
        assert_eq!(response_unit(119), ("seconds", 1.0));
        assert_eq!(response_unit(120), ("minutes", 60.0));
        assert_eq!(response_unit(7_199), ("minutes", 60.0));
        assert_eq!(response_unit(7_200), ("hours", 3_600.0));
    }

    #[test]
    fn html_escaping_reaches_every_string() {
        let v = json!({"a": "<b>&'\"", "n": 3, "l": ["<i>"], "o": {"x": "y>"}});
        assert_eq!(
            html_escaped(&v),
            json!({"a": "&lt;b&gt;&amp;&#39;&quot;", "n": 3, "l": ["&lt;i&gt;"], "o": {"x": "y&gt;"}})
        );
    }

    #[test]
    fn due_on_the_weekly_day_from_the_hour_in_the_agents_zone() {
        let mut cfg = crate::config::parse(
            include_str!("../../config/postdesk.example.toml"),
            std::path::Path::new(""),
            &|_| None,
        )
        .unwrap();
        cfg.digest.hour = 8;
        let mut agent = cfg.agents[0].clone();
        agent.timezone = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Monday 2027-03-01 08:00 in Shanghai is 00:00 UTC.
        assert_eq!(
            due_week(&cfg, &agent, at("2027-02-28T23:59:00Z")),
            None,
            "07:59 local"
        );
        assert_eq!(
            due_week(&cfg, &agent, at("2027-03-01T00:00:00Z")).as_deref(),
            Some("week:2027-W09")
        );
        assert_eq!(
            due_week(&cfg, &agent, at("2027-03-01T16:00:00Z")),
            None,
            "Tuesday there"
        );
    }
}
