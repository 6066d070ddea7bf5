//! Triage inside the unit of work (issue 13): every customer message is scored (language,
//! sentiment, forced-human), run through the rules (`rules`), and a new ticket is
//! categorised, prioritised, routed (`rules::routing`) and given its SLA policy before
//! its notification and acknowledgement are decided, all in memory. What it decided is
//! written after the unit's rows by `store::triage::write_batch`.
//!
//! Decisions:
//! - A new ticket takes everything the rules set. A follow-up message can only add: tags,
//!   a category where there is none, a higher priority, the forced-human mark. It is
//!   never re-routed (`#transfer` does that).
//! - A forced-human match (the shipped list, the config's extra terms, or a rule with
//!   `forced_human = true`) turns off the acknowledgement for good, raises the priority to
//!   at least high and raises a red alert.
//! - Routing: a rule's `route.agent` wins if it names a configured agent; else the rule's
//!   team routes by its strategy among available members (not `#away`, inside their
//!   working hours). Nobody available: unassigned, and every agent (the lead included)
//!   is notified.
//! - A strongly negative message (sentiment at or below `[triage]
//!   negative_alert_below`, default -0.6) is at least high priority unless a rule set
//!   the priority; on a public (non-email) channel it also raises a red alert.
//! - The customer's profile keeps the language of their latest message where it was
//!   detected reliably (`customers.language`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::domain::inbound::Inbound;
use crate::domain::{Priority, TicketId};
use crate::rules::routing::{self, AgentAvailability, Route, RouteInput};
use crate::rules::{Facts, Signals, Verdict};
use crate::store::triage::{NewAlertRow, TriageWrites, rank};

/// Who is available, as the batch starts, kept current as it assigns.
#[derive(Debug, Default)]
pub struct RoutingState {
    pub away: HashSet<String>,
    pub open_counts: HashMap<String, i64>,
    pub cursors: HashMap<String, String>,
}

/// What triage decided for one message, for the notification and the acknowledgement.
#[derive(Debug, Clone, Default)]
pub struct Triaged {
    pub verdict: Verdict,
    pub signals_language: Option<&'static str>,
    pub sentiment: f64,
    /// The new ticket's priority and assignee as decided.
    pub priority: Option<Priority>,
    pub assignee: Option<String>,
    pub team: Option<String>,
    pub forced: Option<(String, String)>,
    /// `forced` as the JSON stored on the ticket.
    pub forced_json: Option<String>,
    pub red_alert: Option<String>,
    /// A new ticket's SLA policy, and when its first answer is due.
    pub sla: Option<String>,
    pub first_response_due: Option<DateTime<Utc>>,
    /// Why a new ticket of a team is unassigned (nobody available), for the notification.
    pub routing_note: Option<String>,
}

/// The text triage reads of a message: its own new text, quoted history cut.
fn own_text(p: &Inbound) -> &str {
    let text = crate::channels::email::quote::new_text(&p.body_text);
    if text.trim().is_empty() {
        p.body_text.as_str()
    } else {
        text
    }
}

/// Everything a message's triage needs besides the message.
pub struct Ask<'b> {
    /// Its signals, when already computed.
    pub signals: Option<&'b Signals>,
    pub ticket: TicketId,
    /// The ticket is already forced to a human: a new match raises no second alert.
    pub already_forced: bool,
    pub is_new: bool,
    pub tier: Option<&'b str>,
    pub raw: &'b [u8],
    pub now: DateTime<Utc>,
}

/// Runs triage for one customer message. What a new ticket and the message itself get is
/// returned (the caller writes it with their rows, and decides what a follow-up adds to
/// its ticket); what changes elsewhere (tags, round-robin cursors, alerts) goes into `out`.
pub fn triage(
    cfg: &Config,
    routing_state: &mut RoutingState,
    out: &mut TriageWrites,
    p: &Inbound,
    ask: &Ask<'_>,
) -> Triaged {
    let text = own_text(p);
    let signals: Signals = match ask.signals {
        Some(s) => s.clone(),
        None => cfg.rules.signals(&p.subject, text),
    };
    let sender = p
        .from
        .as_ref()
        .map(|f| f.address.to_lowercase())
        .unwrap_or_default();
    let facts = Facts {
        subject: &p.subject,
        text,
        raw: (p.channel == crate::domain::Channel::Email).then_some(ask.raw),
        sender: &sender,
        channel: p.channel.as_str(),
        account: p.account.as_deref(),
        tier: ask.tier,
        first_message: ask.is_new,
    };
    let verdict = cfg.rules.evaluate(&facts, &signals);
    let forced = verdict
        .forced_human
        .as_ref()
        .map(|f| (f.topic.to_string(), f.term.clone()));
    let mut priority = verdict.priority;
    // A strongly negative message is at least high, unless a rule said otherwise.
    if priority.is_none() && signals.sentiment <= cfg.rules.negative_alert_below() {
        priority = Some(Priority::High);
    }
    if forced.is_some() && priority.is_none_or(|p| rank(p) < rank(Priority::High)) {
        priority = Some(Priority::High);
    }
    let public = p.channel != crate::domain::Channel::Email;
    let red_alert = if let Some((topic, _)) = &forced {
        Some(format!("forced-human match ({topic})"))
    } else if priority == Some(Priority::Urgent) {
        Some("urgent ticket".to_string())
    } else if public && signals.sentiment <= cfg.rules.negative_alert_below() {
        Some("strongly negative message on a public channel".to_string())
    } else {
        None
    };
    for tag in &verdict.tags {
        out.tags.push((ask.ticket, tag.clone()));
    }
    let forced_json = forced
        .as_ref()
        .map(|(topic, term)| serde_json::json!({"topic": topic, "term": term}).to_string());
    let mut result = Triaged {
        signals_language: signals.language,
        sentiment: signals.sentiment,
        priority,
        forced: forced.clone(),
        forced_json: forced_json.clone(),
        red_alert: red_alert.clone(),
        ..Triaged::default()
    };
    if ask.is_new {
        let (team, assignee, nobody) =
            route(cfg, routing_state, &verdict, signals.language, ask.now);
        result.routing_note = nobody;
        if let (Some(t), Some(a)) = (&team, &assignee) {
            out.cursors.push((t.clone(), a.clone()));
        }
        let policy = cfg.slas.pick(
            verdict.sla.as_deref(),
            priority.unwrap_or(Priority::Normal),
            ask.tier,
            verdict.category.as_deref(),
        );
        // When the first answer is due, for the notification.
        result.first_response_due = policy.and_then(|p| {
            p.first_response
                .map(|secs| p.calendar.add_business(ask.now, secs))
        });
        let sla = policy.map(|p| p.name.clone());
        // The new ticket's row carries these (the caller writes them with it).
        result.sla = sla;
        result.team = team;
        result.assignee = assignee;
    }
    if let Some(reason) = &red_alert
        && (ask.is_new || (forced.is_some() && !ask.already_forced))
    {
        let due = ask.now + chrono::Duration::seconds(cfg.alerts.report_within);
        out.alerts.push(NewAlertRow {
            ticket: ask.ticket,
            reason: reason.clone(),
            term: forced.as_ref().map(|(_, term)| term.clone()),
            report_due: crate::clock::db_time(due),
        });
    }
    result.verdict = verdict;
    result
}

/// The team and assignee of a new ticket.
fn route(
    cfg: &Config,
    state: &mut RoutingState,
    verdict: &Verdict,
    language: Option<&str>,
    now: DateTime<Utc>,
) -> (Option<String>, Option<String>, Option<String>) {
    if let Some(agent) = verdict.agent.as_deref().and_then(|a| cfg.agent_by_name(a)) {
        let name = agent.name.clone();
        *state.open_counts.entry(name.clone()).or_insert(0) += 1;
        return (verdict.team.clone(), Some(name), None);
    }
    let Some(team) = verdict
        .team
        .as_deref()
        .and_then(|t| cfg.teams.iter().find(|x| x.name.eq_ignore_ascii_case(t)))
    else {
        return (verdict.team.clone(), None, None);
    };
    let agents: Vec<AgentAvailability<'_>> = cfg
        .agents
        .iter()
        .map(|a| AgentAvailability {
            name: &a.name,
            away: state.away.contains(&a.name),
            hours: a.hours.as_ref(),
            skills: &a.skills,
            open_tickets: state.open_counts.get(&a.name).copied().unwrap_or(0),
        })
        .collect();
    let decided = routing::route(&RouteInput {
        team,
        agents: &agents,
        last_assigned: state.cursors.get(&team.name).map(String::as_str),
        category: verdict.category.as_deref(),
        language,
        now,
    });
    match decided {
        Route::Agent(name) => {
            *state.open_counts.entry(name.clone()).or_insert(0) += 1;
            state.cursors.insert(team.name.clone(), name.clone());
            (Some(team.name.clone()), Some(name), None)
        }
        Route::Nobody { why, lead } => {
            tracing::warn!(
                "Team {}: nobody can take a new ticket ({why}); every agent is told",
                team.name
            );
            let note = format!(
                "nobody in team {} can take it now ({why}); {}",
                team.name,
                match lead {
                    Some(l) => format!("{l}, the team's lead, please assign it"),
                    None => "please take it".to_string(),
                }
            );
            (Some(team.name.clone()), None, Some(note))
        }
    }
}
