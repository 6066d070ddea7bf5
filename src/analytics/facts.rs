//! One ticket's figures, read from its event timeline: the row of `ticket_facts` that
//! every statistic is summed from.
//!
//! Pure: the caller passes the ticket as the store has it now, its events in order and
//! the business calendar of its SLA policy (none: plain elapsed time). Times waited on the
//! customer (pending) are left out of response and resolution times, as the SLA timers
//! leave them out (`rules::sla::business_elapsed`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{EventKind, MessageKind};
use crate::rules::calendar::Calendar;
use crate::rules::sla::business_elapsed;

/// What the facts need of the ticket row itself (its state now).
#[derive(Debug, Clone)]
pub struct TicketState {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub assignee: Option<String>,
    pub team: Option<String>,
    pub category: Option<String>,
    /// The customer's tier.
    pub tier: String,
    /// Merged into another ticket: counted there, not here.
    pub merged: bool,
    /// An SLA policy applies to it.
    pub has_sla: bool,
    /// The customer's latest satisfaction rating on it, 1-5.
    pub rating: Option<i64>,
}

/// One ticket's figures (business seconds where a calendar applies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketFacts {
    pub ticket_id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// The channel of its first message.
    pub channel: String,
    pub category: Option<String>,
    pub team: Option<String>,
    /// Its assignee now: every figure of the ticket counts for that agent.
    pub agent: Option<String>,
    pub tier: String,
    pub status: String,
    pub merged: bool,
    /// From creation to the first agent answer to the customer.
    pub first_response_s: Option<i64>,
    /// Each later customer message's wait for the next agent answer.
    pub next_response_s: Vec<i64>,
    /// The latest resolution, when the ticket is resolved or closed now (unix seconds).
    pub resolved_at: Option<i64>,
    /// From creation to that resolution.
    pub resolution_s: Option<i64>,
    /// Resolved at least once, whatever it is now.
    pub ever_resolved: bool,
    /// Times it left resolved or closed for open or pending.
    pub reopens: i64,
    pub last_reopened_at: Option<i64>,
    /// Agent answers to the customer.
    pub agent_replies: i64,
    /// First-contact resolution: resolved now, with one agent answer and never reopened.
    pub fcr: bool,
    pub has_sla: bool,
    /// SLA breaches recorded on it (`sla_breached` events).
    pub sla_breaches: i64,
    pub bot_answered: bool,
    pub bot_deflected: bool,
    pub bot_handoff: bool,
    /// An agent corrected its category (`#wrong`).
    pub corrected: bool,
    pub rating: Option<i64>,
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn is_done(status: &str) -> bool {
    status == "resolved" || status == "closed"
}

/// The facts of a ticket from its state and its timeline of (kind, data, created_at)
/// events in order. `calendar`: the business hours its response and resolution times
/// count in.
pub fn ticket_facts(
    t: &TicketState,
    timeline: &[(String, String, String)],
    calendar: Option<&Calendar>,
) -> TicketFacts {
    let always = Calendar::always();
    let cal = calendar.unwrap_or(&always);
    let mut channel: Option<String> = None;
    let mut pending: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::new();
    let mut first_response: Option<DateTime<Utc>> = None;
    // (customer message waiting, the answer that ended the wait)
    let mut waits: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let mut waiting: Option<DateTime<Utc>> = None;
    let mut resolved: Option<DateTime<Utc>> = None;
    let mut f = TicketFacts {
        ticket_id: t.id,
        created_at: t.created_at.timestamp(),
        channel: String::new(),
        category: t.category.clone(),
        team: t.team.clone(),
        agent: t.assignee.clone(),
        tier: t.tier.clone(),
        status: t.status.clone(),
        merged: t.merged,
        first_response_s: None,
        next_response_s: Vec::new(),
        resolved_at: None,
        resolution_s: None,
        ever_resolved: false,
        reopens: 0,
        last_reopened_at: None,
        agent_replies: 0,
        fcr: false,
        has_sla: t.has_sla,
        sla_breaches: 0,
        bot_answered: false,
        bot_deflected: false,
        bot_handoff: false,
        corrected: false,
        rating: t.rating,
    };
    for (kind, data, at) in timeline {
        let Some(at) = parse_time(at) else { continue };
        let Ok(kind) = kind.parse::<EventKind>() else {
            continue;
        };
        let data: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        let field = |k: &str| data.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        match kind {
            EventKind::MessageAdded => {
                if channel.is_none() && !field("channel").is_empty() {
                    channel = Some(field("channel").to_string());
                }
                let (direction, mkind) = (field("direction"), field("kind"));
                if direction == "outbound" && mkind == MessageKind::AgentReply.as_str() {
                    f.agent_replies += 1;
                    if first_response.is_none() {
                        first_response = Some(at);
                    } else if let Some(w) = waiting {
                        waits.push((w, at));
                    }
                    waiting = None;
                } else if direction == "inbound"
                    && mkind == MessageKind::Customer.as_str()
                    && first_response.is_some()
                    && waiting.is_none()
                {
                    waiting = Some(at);
                }
            }
            EventKind::StatusChanged => {
                let (from, to) = (field("from"), field("to"));
                if to == "pending" && from != "pending" {
                    pending.push((at, None));
                } else if from == "pending"
                    && to != "pending"
                    && let Some(last) = pending.last_mut()
                    && last.1.is_none()
                {
                    last.1 = Some(at);
                }
                if is_done(to) && !is_done(from) {
                    resolved = Some(at);
                    f.ever_resolved = true;
                } else if is_done(from) && !is_done(to) {
                    resolved = None;
                    f.reopens += 1;
                    f.last_reopened_at = Some(at.timestamp());
                }
            }
            EventKind::SlaBreached => f.sla_breaches += 1,
            EventKind::BotAnswered => f.bot_answered = true,
            EventKind::BotDeflected => f.bot_deflected = true,
            EventKind::BotHandoff => f.bot_handoff = true,
            EventKind::CategoryCorrected => f.corrected = true,
            _ => {}
        }
    }
    f.channel = channel.unwrap_or_else(|| "email".to_string());
    let span = |from: DateTime<Utc>, to: DateTime<Utc>| business_elapsed(cal, &pending, from, to);
    f.first_response_s = first_response.map(|r| span(t.created_at, r));
    f.next_response_s = waits.iter().map(|&(w, a)| span(w, a)).collect();
    // The state now decides: a resolution the timeline missed still counts as one.
    if is_done(&t.status) {
        let at = resolved.unwrap_or(t.created_at);
        f.resolved_at = Some(at.timestamp());
        f.resolution_s = Some(span(t.created_at, at));
        f.ever_resolved = true;
    }
    f.fcr = f.resolved_at.is_some() && f.agent_replies == 1 && f.reopens == 0;
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::calendar::Hours;
    use jiff::tz::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    pub(crate) fn state(id: i64, created: &str, status: &str) -> TicketState {
        TicketState {
            id,
            created_at: utc(created),
            status: status.into(),
            assignee: Some("alice".into()),
            team: Some("billing".into()),
            category: Some("refund".into()),
            tier: "standard".into(),
            merged: false,
            has_sla: true,
            rating: None,
        }
    }

    fn ev(kind: &str, data: serde_json::Value, at: &str) -> (String, String, String) {
        (kind.into(), data.to_string(), at.into())
    }

    fn msg(dir: &str, kind: &str, at: &str) -> (String, String, String) {
        ev(
            "message_added",
            serde_json::json!({"direction": dir, "kind": kind, "channel": "telegram"}),
            at,
        )
    }

    fn status(from: &str, to: &str, at: &str) -> (String, String, String) {
        ev(
            "status_changed",
            serde_json::json!({"from": from, "to": to}),
            at,
        )
    }

    /// Monday to Friday 09:00-17:00 in Shanghai (UTC+8): 01:00-09:00 UTC.
    fn office() -> Calendar {
        Calendar::working_hours(
            "office",
            TimeZone::get("Asia/Shanghai").unwrap(),
            Hours::parse("mon-fri 09:00-17:00").unwrap(),
        )
    }

    #[test]
    fn responses_and_resolution_in_plain_time() {
        // Created 10:00; answered 10:30 (first response 1800 s); the customer writes at
        // 11:00 and 11:10 (one wait, from 11:00), answered 12:00 (3600 s); resolved 13:00.
        let t = state(1, "2027-03-01T10:00:00Z", "resolved");
        let tl = vec![
            msg("inbound", "customer", "2027-03-01T10:00:00Z"),
            msg("outbound", "agent_reply", "2027-03-01T10:30:00Z"),
            msg("inbound", "customer", "2027-03-01T11:00:00Z"),
            msg("inbound", "customer", "2027-03-01T11:10:00Z"),
            msg("outbound", "note", "2027-03-01T11:20:00Z"),
            msg("outbound", "agent_reply", "2027-03-01T12:00:00Z"),
            status("open", "resolved", "2027-03-01T13:00:00Z"),
        ];
        let f = ticket_facts(&t, &tl, None);
        assert_eq!(f.channel, "telegram");
        assert_eq!(f.first_response_s, Some(1800));
        assert_eq!(f.next_response_s, vec![3600]);
        assert_eq!(f.resolution_s, Some(3 * 3600));
        assert_eq!(f.resolved_at, Some(utc("2027-03-01T13:00:00Z").timestamp()));
        assert_eq!(f.agent_replies, 2);
        assert!(!f.fcr, "two answers is not a first-contact resolution");
        assert!(f.ever_resolved);
        assert_eq!(f.reopens, 0);
    }

    #[test]
    fn business_hours_and_pending_are_left_out() {
        // Friday 2027-03-05 08:00 UTC (16:00 Shanghai), one office hour before closing;
        // answered Monday 02:00 UTC (10:00 Shanghai): 1 h Friday + 1 h Monday = 7200 s.
        // Pending from Monday 03:00 to Tuesday 02:00 UTC (10 h of office time, Monday
        // 11:00-17:00 and Tuesday 09:00-10:00 Shanghai), resolved Tuesday 04:00 UTC
        // (12:00 Shanghai). Resolution: Friday 1 h + Monday 09:00-11:00 (2 h) + Tuesday
        // 10:00-12:00 (2 h) = 5 h.
        let t = state(2, "2027-03-05T08:00:00Z", "closed");
        let tl = vec![
            msg("inbound", "customer", "2027-03-05T08:00:00Z"),
            msg("outbound", "agent_reply", "2027-03-08T02:00:00Z"),
            status("open", "pending", "2027-03-08T03:00:00Z"),
            status("pending", "open", "2027-03-09T02:00:00Z"),
            status("open", "closed", "2027-03-09T04:00:00Z"),
        ];
        let f = ticket_facts(&t, &tl, Some(&office()));
        assert_eq!(f.first_response_s, Some(7200));
        assert_eq!(f.resolution_s, Some(5 * 3600));
        assert!(f.fcr, "one answer, resolved, never reopened");
        // Without the calendar: Fri 08:00 -> Tue 04:00 is 92 h, 23 of them pending.
        let f = ticket_facts(&t, &tl, None);
        assert_eq!(f.first_response_s, Some(66 * 3600));
        assert_eq!(f.resolution_s, Some((92 - 23) * 3600));
    }

    #[test]
    fn reopened_tickets_count_from_their_latest_resolution() {
        let t = state(3, "2027-03-01T10:00:00Z", "resolved");
        let tl = vec![
            msg("outbound", "agent_reply", "2027-03-01T10:10:00Z"),
            status("open", "resolved", "2027-03-01T11:00:00Z"),
            status("resolved", "open", "2027-03-02T09:00:00Z"),
            msg("inbound", "customer", "2027-03-02T09:00:00Z"),
            ev(
                "sla_breached",
                serde_json::json!({"target": "next_response"}),
                "2027-03-02T12:00:00Z",
            ),
            msg("outbound", "agent_reply", "2027-03-02T13:00:00Z"),
            status("open", "resolved", "2027-03-02T14:00:00Z"),
        ];
        let f = ticket_facts(&t, &tl, None);
        assert_eq!(f.reopens, 1);
        assert_eq!(
            f.last_reopened_at,
            Some(utc("2027-03-02T09:00:00Z").timestamp())
        );
        assert_eq!(f.next_response_s, vec![4 * 3600]);
        assert_eq!(f.resolution_s, Some(28 * 3600));
        assert_eq!(f.sla_breaches, 1);
        assert!(!f.fcr);
        // Open again now: no resolution, though it was resolved once.
        let open = state(3, "2027-03-01T10:00:00Z", "open");
        let f = ticket_facts(&open, &tl[..3], None);
        assert_eq!((f.resolved_at, f.resolution_s), (None, None));
        assert!(f.ever_resolved);
    }

    #[test]
    fn bot_and_corrections_and_hostile_events() {
        let t = state(4, "2027-03-01T10:00:00Z", "open");
        let tl = vec![
            ev(
                "bot_answered",
                serde_json::json!({}),
                "2027-03-01T10:00:01Z",
            ),
            ev(
                "bot_handoff",
                serde_json::json!({"reason": "human"}),
                "2027-03-01T10:05:00Z",
            ),
            ev(
                "category_corrected",
                serde_json::json!({}),
                "2027-03-01T10:06:00Z",
            ),
            (
                "no_such_kind".into(),
                "{}".into(),
                "2027-03-01T10:07:00Z".into(),
            ),
            (
                "status_changed".into(),
                "not json".into(),
                "2027-03-01T10:08:00Z".into(),
            ),
            ("status_changed".into(), "{}".into(), "yesterday".into()),
        ];
        let f = ticket_facts(&t, &tl, None);
        assert!(f.bot_answered && f.bot_handoff && f.corrected && !f.bot_deflected);
        assert_eq!(f.channel, "email");
        assert_eq!(f.first_response_s, None);
        assert_eq!(f.resolved_at, None);
    }
}
