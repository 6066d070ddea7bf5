//! The clock's chores for triage (issue 13): SLA warnings and breaches, red alerts whose
//! handling report is overdue, the agents' daily digests, and the admins' monthly report
//! (`profile::report`).
//!
//! Each pass reads the database, asks the pure `rules::sla` what is due, and queues each
//! mail in the transaction that claims it (`store::triage`: `sla_notices`,
//! `alerts.escalated_at`, `digests_sent`). A claim succeeds once, so a tick that runs
//! twice, two daemons, or a restart never send the same notice again. A failing ticket
//! is logged and skipped; the others go on.
//!
//! Who is told:
//! - an SLA warning goes to the assignee (nobody assigned: the team's lead, else every
//!   lead, else the admin);
//! - an SLA breach goes to the assignee *and* the lead (the ticket's team's lead, else
//!   every agent marked `lead = true`, else `[admin] email`);
//! - a missing handling report goes to the same lead(s), once.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::channels::email::compose::{self, InternalMail, plain_line};
use crate::clock::db_time;
use crate::config::Config;
use crate::domain::{MessageKind, TicketId};
use crate::intake::Services;
use crate::rules::sla::{self, History, Notice, Target, TimerState};
use crate::store::triage::{self, OpenTicket};
use crate::store::{Conn, Store};

/// What one pass queued.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    pub sla_warnings: usize,
    pub sla_breaches: usize,
    pub escalations: usize,
    pub digests: usize,
    /// Monthly reports to admins.
    pub reports: usize,
}

impl TickReport {
    pub fn total(&self) -> usize {
        self.sla_warnings + self.sla_breaches + self.escalations + self.digests + self.reports
    }
}

/// One pass of every chore at `services.clock().now()`.
pub async fn tick(store: &Store, services: &Services) -> TickReport {
    let mut report = TickReport::default();
    let now = services.clock().now();
    if let Err(e) = sla_pass(store, services, now, &mut report).await {
        tracing::error!("SLA timers: {e:#}");
    }
    if let Err(e) = alert_pass(store, services, now, &mut report).await {
        tracing::error!("Red alert reports: {e:#}");
    }
    if services.config().digest.enabled {
        match digests(store, services, now, None, false).await {
            Ok(n) => report.digests += n,
            Err(e) => tracing::error!("Daily digests: {e:#}"),
        }
    }
    if crate::analytics::digest::enabled(services.config()) {
        match crate::analytics::digest::weekly(store, services, now, None, false).await {
            Ok(n) => report.digests += n,
            Err(e) => tracing::error!("Weekly digests: {e:#}"),
        }
    }
    match crate::profile::report::monthly_pass(store, services, now).await {
        Ok(n) => report.reports += n,
        Err(e) => tracing::error!("Monthly report: {e:#}"),
    }
    report
}

/// Reads a ticket's event timeline into what SLA timers need.
pub fn history(created: DateTime<Utc>, timeline: &[(String, String, String)]) -> History {
    let mut h = History {
        created,
        pending: Vec::new(),
        first_response: None,
        resolved: None,
        awaiting_since: None,
    };
    for (kind, data, at) in timeline {
        let Some(at) = parse_time(at) else { continue };
        let data: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        let field = |k: &str| data.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        match kind.as_str() {
            "status_changed" => {
                let (from, to) = (field("from"), field("to"));
                if to == "pending" && from != "pending" {
                    h.pending.push((at, None));
                } else if from == "pending"
                    && to != "pending"
                    && let Some(last) = h.pending.last_mut()
                    && last.1.is_none()
                {
                    last.1 = Some(at);
                }
                if to == "resolved" || to == "closed" {
                    h.resolved = Some(at);
                } else if to == "open" || to == "pending" {
                    h.resolved = None;
                }
            }
            "message_added" => {
                let (direction, kind) = (field("direction"), field("kind"));
                if direction == "outbound" && kind == MessageKind::AgentReply.as_str() {
                    h.first_response.get_or_insert(at);
                    h.awaiting_since = None;
                } else if direction == "inbound"
                    && kind == MessageKind::Customer.as_str()
                    && h.first_response.is_some()
                    && h.awaiting_since.is_none()
                {
                    h.awaiting_since = Some(at);
                }
            }
            _ => {}
        }
    }
    h
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The SLA timers of an open ticket now (empty: no policy, or one no longer configured).
pub async fn timers(
    cfg: &Config,
    conn: &mut Conn,
    t: &OpenTicket,
    now: DateTime<Utc>,
) -> Result<Vec<TimerState>> {
    let Some(policy) = t.sla_policy.as_deref().and_then(|n| cfg.slas.get(n)) else {
        return Ok(Vec::new());
    };
    let created = parse_time(&t.created_at).unwrap_or(now);
    let timeline = triage::timeline(conn, t.id).await?;
    Ok(sla::evaluate(policy, &history(created, &timeline), now))
}

/// The leads to tell about a ticket: its team's lead, else every agent marked lead, else
/// the admin. Addresses.
pub fn leads_for(cfg: &Config, team: Option<&str>) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    if let Some(lead) = team
        .and_then(|n| cfg.teams.iter().find(|t| t.name.eq_ignore_ascii_case(n)))
        .and_then(|t| t.lead.as_deref())
        .and_then(|l| cfg.agent_by_name(l))
    {
        out.insert(lead.email.clone());
    }
    if out.is_empty() {
        out.extend(
            cfg.agents
                .iter()
                .filter(|a| a.lead)
                .map(|a| a.email.clone()),
        );
    }
    if out.is_empty() {
        out.extend(cfg.admin_email.iter().cloned());
    }
    out.into_iter().collect()
}

fn assignee_email(cfg: &Config, t: &OpenTicket) -> Option<String> {
    t.assignee
        .as_deref()
        .and_then(|a| cfg.agent_by_name(a))
        .map(|a| a.email.clone())
}

/// What every team mail about a ticket shows of it.
pub fn ticket_json(t: &OpenTicket) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "subject": plain_line(&t.subject, 200),
        "customer": plain_line(&t.customer_email, 200),
        "tier": t.tier,
        "priority": t.priority.as_str(),
        "status": t.status.as_str(),
        "category": t.category,
        "team": t.team,
        "assignee": t.assignee,
    })
}

fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h}h"),
    }
}

async fn sla_pass(
    store: &Store,
    services: &Services,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<()> {
    let cfg = services.config();
    if cfg.slas.is_empty() {
        return Ok(());
    }
    let open = {
        let mut conn = store.pool().acquire().await?;
        triage::sla_tickets(&mut conn).await?
    };
    for t in open {
        if let Err(e) = sla_ticket(store, services, &t, now, report).await {
            tracing::error!("Ticket #{}: SLA timers: {e:#}", t.id);
        }
    }
    Ok(())
}

async fn sla_ticket(
    store: &Store,
    services: &Services,
    t: &OpenTicket,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<()> {
    let cfg = services.config();
    let mut tx = store.begin_write().await?;
    let states = timers(cfg, &mut tx, t, now).await?;
    let now_s = db_time(now);
    let mut queued = false;
    for (notice, cycle) in sla::due_notices(&states, now) {
        let (target, breach) = match notice {
            Notice::Warning(target) => (target, false),
            Notice::Breach(target) => (target, true),
        };
        let kind = if breach { "breach" } else { "warning" };
        if !triage::claim_sla_notice(
            &mut tx,
            t.id,
            target.as_str(),
            kind,
            &db_time(cycle),
            &now_s,
        )
        .await?
        {
            continue;
        }
        let mut to: Vec<String> = assignee_email(cfg, t).into_iter().collect();
        if breach || to.is_empty() {
            to.extend(leads_for(cfg, t.team.as_deref()));
        }
        to.sort();
        to.dedup();
        if to.is_empty() {
            tracing::warn!(
                "Ticket #{}: SLA {kind} of {target} with nobody to tell (no assignee, lead or admin)",
                t.id
            );
            continue;
        }
        let state = states.iter().find(|s| s.target == target);
        let data = serde_json::json!({
            "kind": kind,
            "breach": breach,
            "target": target_words(target),
            "due": state.and_then(|s| s.due).map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string()),
            "policy": t.sla_policy,
            "calendar": t.sla_policy.as_deref().and_then(|p| cfg.slas.get(p)).map(|p| p.calendar.name.clone()),
            "elapsed": human_duration(state.map_or(0, |s| s.elapsed_s)),
            "allowed": human_duration(state.map_or(0, |s| s.allowed_s)),
            "ticket": ticket_json(t),
        });
        // One mail each: the assignee's and the lead's are theirs to answer.
        for rcpt in &to {
            let mail = compose::internal_mail(
                cfg,
                services.templates(),
                &InternalMail {
                    template: "sla",
                    ticket: Some(t.id),
                    to: std::slice::from_ref(rcpt),
                    data: data.clone(),
                    urgent: breach,
                },
            )?;
            crate::agent::queue_internal(
                services,
                &mut tx,
                Some(t.id),
                MessageKind::Notification,
                &mail,
                &now_s,
            )
            .await?;
        }
        tracing::warn!(
            "Ticket #{}: SLA {kind} of {target}, told {}",
            t.id,
            to.join(", ")
        );
        if breach {
            report.sla_breaches += 1;
            metrics::counter!("postdesk_sla_breach_notices_total").increment(1);
        } else {
            report.sla_warnings += 1;
        }
        queued = true;
    }
    if queued {
        tx.commit().await?;
    }
    Ok(())
}

fn target_words(t: Target) -> &'static str {
    match t {
        Target::FirstResponse => "first response",
        Target::NextResponse => "next response",
        Target::Resolution => "resolution",
    }
}

async fn alert_pass(
    store: &Store,
    services: &Services,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<()> {
    let cfg = services.config();
    let now_s = db_time(now);
    let overdue = {
        let mut conn = store.pool().acquire().await?;
        triage::overdue_alerts(&mut conn, &now_s).await?
    };
    for alert in overdue {
        let mut tx = store.begin_write().await?;
        if !triage::claim_escalation(&mut tx, &alert, &now_s).await? {
            continue;
        }
        let t = triage::open_ticket(&mut tx, alert.ticket_id).await?;
        let to = leads_for(cfg, t.as_ref().and_then(|t| t.team.as_deref()));
        if to.is_empty() {
            tracing::warn!(
                "Ticket #{}: red alert report overdue, and no lead or admin to tell",
                alert.ticket_id
            );
            tx.commit().await?;
            continue;
        }
        let ticket = match &t {
            Some(t) => ticket_json(t),
            // Every field `alert-escalation.txt` prints, as templates render in strict mode.
            None => serde_json::json!({
                "id": alert.ticket_id, "subject": "(closed)", "customer": "", "priority": "",
                "assignee": null,
            }),
        };
        let mail = compose::internal_mail(
            cfg,
            services.templates(),
            &InternalMail {
                template: "alert-escalation",
                ticket: Some(alert.ticket_id),
                to: &to,
                data: serde_json::json!({
                    "reason": alert.reason,
                    "raised_at": alert.raised_at.get(..16),
                    "report_due": alert.report_due.get(..16),
                    "first_human_at": alert.first_human_at.as_deref().and_then(|s| s.get(..16)),
                    "ticket": ticket,
                }),
                urgent: true,
            },
        )?;
        crate::agent::queue_internal(
            services,
            &mut tx,
            Some(alert.ticket_id),
            MessageKind::Notification,
            &mail,
            &now_s,
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(
            "Ticket #{}: red alert report overdue; told {}",
            alert.ticket_id,
            to.join(", ")
        );
        report.escalations += 1;
    }
    Ok(())
}

/// One line of a digest.
#[derive(Debug, Clone, serde::Serialize)]
struct DigestLine {
    id: TicketId,
    subject: String,
    priority: &'static str,
    status: &'static str,
    category: Option<String>,
    team: Option<String>,
    assignee: Option<String>,
    target: Option<&'static str>,
    due: Option<String>,
    #[serde(skip)]
    due_at: Option<DateTime<Utc>>,
    breached: bool,
}

async fn digest_lines(
    cfg: &Config,
    conn: &mut Conn,
    tickets: Vec<OpenTicket>,
    now: DateTime<Utc>,
) -> Result<Vec<DigestLine>> {
    let mut out = Vec::new();
    for t in tickets {
        let states = timers(cfg, conn, &t, now).await?;
        // The nearest due time of a timer still running.
        let next = states
            .iter()
            .filter(|s| s.met.is_none() && s.due.is_some())
            .min_by_key(|s| s.due);
        out.push(DigestLine {
            id: t.id,
            subject: plain_line(&t.subject, 120),
            priority: t.priority.as_str(),
            status: t.status.as_str(),
            category: t.category.clone(),
            team: t.team.clone(),
            assignee: t.assignee.clone(),
            target: next.map(|s| target_words(s.target)),
            due: next
                .and_then(|s| s.due)
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string()),
            due_at: next.and_then(|s| s.due),
            breached: states.iter().any(|s| s.breached && s.met.is_none()),
        });
    }
    // Sorted by due time, the ones without one last, then by ticket number.
    out.sort_by_key(|l| (l.due_at.is_none(), l.due_at, l.id));
    Ok(out)
}

/// Sends the daily digests that are due: each agent's at `[digest] hour` in their time
/// zone, once per local day. `only`: one agent. `now_anyway` (`postdesk digest send`):
/// send regardless of the hour and of what was sent today. The number queued.
pub async fn digests(
    store: &Store,
    services: &Services,
    now: DateTime<Utc>,
    only: Option<&str>,
    now_anyway: bool,
) -> Result<usize> {
    let cfg = services.config();
    let mut sent = 0;
    for agent in &cfg.agents {
        if only.is_some_and(|o| !o.eq_ignore_ascii_case(&agent.name)) {
            continue;
        }
        let local = jiff::Timestamp::from_second(now.timestamp())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(agent.timezone.clone());
        if !now_anyway && i32::from(local.hour()) < i32::from(cfg.digest.hour) {
            continue;
        }
        let day = local.date().to_string();
        let mut tx = store.begin_write().await?;
        if !now_anyway && !triage::claim_digest(&mut tx, &agent.name, &day, &db_time(now)).await? {
            continue;
        }
        let mine = triage::open_tickets_of(&mut tx, Some(&agent.name)).await?;
        let lines = digest_lines(cfg, &mut tx, mine, now).await?;
        let is_lead = agent.lead
            || cfg
                .teams
                .iter()
                .any(|t| t.lead.as_deref() == Some(agent.name.as_str()));
        let (unassigned, breached_all) = if is_lead {
            let un = triage::open_tickets_of(&mut tx, None).await?;
            let un = digest_lines(cfg, &mut tx, un, now).await?;
            let all = triage::sla_tickets(&mut tx).await?;
            let all = digest_lines(cfg, &mut tx, all, now).await?;
            (
                un,
                all.into_iter().filter(|l| l.breached).collect::<Vec<_>>(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let to = vec![agent.email.clone()];
        let mail = compose::internal_mail(
            cfg,
            services.templates(),
            &InternalMail {
                template: "digest",
                ticket: None,
                to: &to,
                data: serde_json::json!({
                    "name": agent.display_name,
                    "count": lines.len(),
                    "breached": lines.iter().filter(|l| l.breached).count(),
                    "tickets": lines,
                    "lead": is_lead,
                    "unassigned": unassigned,
                    "breached_all": breached_all,
                }),
                urgent: false,
            },
        )
        .with_context(|| format!("Composing the digest of {}", agent.name))?;
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
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod scheduler_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap_or_default()
    }

    fn ev(kind: &str, data: serde_json::Value, time: &str) -> (String, String, String) {
        (kind.to_string(), data.to_string(), time.to_string())
    }

    #[test]
    fn history_reads_pauses_answers_and_follow_ups() {
        let tl = vec![
            ev(
                "ticket_created",
                serde_json::json!({}),
                "2027-01-04T01:00:00Z",
            ),
            ev(
                "message_added",
                serde_json::json!({"direction": "inbound", "kind": "customer"}),
                "2027-01-04T01:00:00Z",
            ),
            ev(
                "message_added",
                serde_json::json!({"direction": "outbound", "kind": "agent_reply"}),
                "2027-01-04T02:00:00Z",
            ),
            ev(
                "status_changed",
                serde_json::json!({"from": "open", "to": "pending"}),
                "2027-01-04T02:00:00Z",
            ),
            ev(
                "status_changed",
                serde_json::json!({"from": "pending", "to": "open"}),
                "2027-01-04T05:00:00Z",
            ),
            ev(
                "message_added",
                serde_json::json!({"direction": "inbound", "kind": "customer"}),
                "2027-01-04T05:00:00Z",
            ),
            ev(
                "message_added",
                serde_json::json!({"direction": "inbound", "kind": "customer"}),
                "2027-01-04T06:00:00Z",
            ),
            ev(
                "status_changed",
                serde_json::json!({"from": "open", "to": "pending"}),
                "2027-01-04T07:00:00Z",
            ),
        ];
        let h = history(at("2027-01-04T01:00:00Z"), &tl);
        assert_eq!(h.first_response, Some(at("2027-01-04T02:00:00Z")));
        assert_eq!(
            h.pending,
            vec![
                (at("2027-01-04T02:00:00Z"), Some(at("2027-01-04T05:00:00Z"))),
                (at("2027-01-04T07:00:00Z"), None)
            ]
        );
        // The oldest unanswered follow-up, not the newest.
        assert_eq!(h.awaiting_since, Some(at("2027-01-04T05:00:00Z")));
        assert_eq!(h.resolved, None);
    }

    #[test]
    fn history_resolution_and_reopen() {
        let tl = vec![
            ev(
                "status_changed",
                serde_json::json!({"from": "open", "to": "resolved"}),
                "2027-01-04T03:00:00Z",
            ),
            ev(
                "status_changed",
                serde_json::json!({"from": "resolved", "to": "open"}),
                "2027-01-04T04:00:00Z",
            ),
        ];
        let h = history(at("2027-01-04T01:00:00Z"), &tl);
        assert_eq!(h.resolved, None, "a reopened ticket is not resolved");
        let h = history(at("2027-01-04T01:00:00Z"), &tl[..1]);
        assert_eq!(h.resolved, Some(at("2027-01-04T03:00:00Z")));
        // A hostile or broken row is skipped, not a panic.
        let bad = vec![ev("status_changed", serde_json::json!(null), "not a time")];
        assert!(history(at("2027-01-04T01:00:00Z"), &bad).pending.is_empty());
    }
}
