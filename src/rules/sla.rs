//! SLA timers: which policy applies to a ticket, and, from what happened to the ticket so
//! far, where each of its timers stands at a given instant.
//!
//! Elapsed time counts only the business time of the policy's calendar, and not while the
//! ticket waits on the customer (pending): the timer pauses and resumes when the ticket
//! leaves pending. The due instant is where elapsed time reaches the allowed time, assuming
//! no further pause, so a pause moves it later by the business time it lasted.
//!
//! Pure: the caller passes `now`; [`due_notices`] says what a scheduler should send at
//! that instant and the caller records what it sent so that each notice goes once.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::calendar::Calendar;
use crate::domain::Priority;

/// The fraction of the allowed time at which a warning is due, when a policy names none.
pub const DEFAULT_WARN_AT: f64 = 0.8;

/// One `[[sla]]` policy.
#[derive(Debug, Clone)]
pub struct SlaPolicy {
    pub name: String,
    /// The priorities it applies to; empty: any.
    pub priorities: Vec<Priority>,
    /// The customer tiers it applies to (lower-case); empty: any, even none.
    pub tiers: Vec<String>,
    /// The categories it applies to (lower-case); empty: any, even none.
    pub categories: Vec<String>,
    /// Allowed business seconds until the first agent answer.
    pub first_response: Option<i64>,
    /// Allowed business seconds to answer a customer's follow-up.
    pub next_response: Option<i64>,
    /// Allowed business seconds until the ticket is resolved.
    pub resolution: Option<i64>,
    /// Business hours; around the clock when the policy names none.
    pub calendar: Arc<Calendar>,
    /// Fraction of the allowed time (strictly between 0 and 1) at which to warn.
    pub warn_at: f64,
}

impl SlaPolicy {
    fn matches(&self, priority: Priority, tier: Option<&str>, category: Option<&str>) -> bool {
        let listed = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|l| l.eq_ignore_ascii_case(v)))
        };
        (self.priorities.is_empty() || self.priorities.contains(&priority))
            && listed(&self.tiers, tier)
            && listed(&self.categories, category)
    }
}

/// The `[[sla]]` policies, in file order.
#[derive(Debug, Clone, Default)]
pub struct SlaPolicies(pub Vec<SlaPolicy>);

impl SlaPolicies {
    /// The policy for a ticket. A name given explicitly (by a rule) wins when such a
    /// policy exists; otherwise the first policy in file order whose every filter matches
    /// (an empty filter matches anything). So write the specific policies first and a
    /// catch-all last.
    pub fn pick(
        &self,
        explicit: Option<&str>,
        priority: Priority,
        tier: Option<&str>,
        category: Option<&str>,
    ) -> Option<&SlaPolicy> {
        explicit
            .and_then(|n| self.get(n))
            .or_else(|| self.0.iter().find(|p| p.matches(priority, tier, category)))
    }

    pub fn get(&self, name: &str) -> Option<&SlaPolicy> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What happened to a ticket, in time order, as the store can tell it.
#[derive(Debug, Clone)]
pub struct History {
    pub created: DateTime<Utc>,
    /// Intervals the ticket waited on the customer; `None`: still pending.
    pub pending: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// The first agent answer to the customer.
    pub first_response: Option<DateTime<Utc>>,
    pub resolved: Option<DateTime<Utc>>,
    /// The oldest customer message not yet answered by an agent, after the first
    /// response: the next-response timer runs from here.
    pub awaiting_since: Option<DateTime<Utc>>,
}

/// Which promise a timer measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    FirstResponse,
    NextResponse,
    Resolution,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::FirstResponse => "first_response",
            Target::NextResponse => "next_response",
            Target::Resolution => "resolution",
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one timer stands. Times serialize as RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerState {
    pub target: Target,
    pub started: DateTime<Utc>,
    /// Where elapsed time reaches the allowed time, assuming no further pause. `None`
    /// while paused, unless the time ran out before the pause began.
    pub due: Option<DateTime<Utc>>,
    /// Where elapsed time reaches `warn_at` of the allowed time (same rule as `due`).
    pub warn_at: Option<DateTime<Utc>>,
    /// When the promise was kept (the answer, the resolution), in time or not.
    pub met: Option<DateTime<Utc>>,
    /// Not met by the due instant: unmet at or after `due`, or met after it.
    pub breached: bool,
    /// Waiting on the customer: the clock stands still.
    pub paused: bool,
    /// Business seconds elapsed so far (up to `met` when met).
    pub elapsed_s: i64,
    pub allowed_s: i64,
}

/// Unix seconds.
fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// The stretches of time a timer started at `start` runs, as unix seconds: from `start`
/// with the pending intervals cut out. The last one is open-ended (`None`) unless the
/// ticket is still pending.
fn running_segments(
    start: i64,
    pending: &[(DateTime<Utc>, Option<DateTime<Utc>>)],
) -> Vec<(i64, Option<i64>)> {
    let mut pauses: Vec<(i64, Option<i64>)> = pending
        .iter()
        .map(|(a, b)| (secs(*a), b.map(secs)))
        .filter(|(_, b)| b.is_none_or(|b| b > start))
        .collect();
    pauses.sort_unstable_by_key(|p| p.0);
    let mut segments = Vec::new();
    let mut cursor = start;
    for (a, b) in pauses {
        if a > cursor {
            segments.push((cursor, Some(a)));
        }
        match b {
            Some(b) => cursor = cursor.max(b),
            None => return segments,
        }
    }
    segments.push((cursor, None));
    segments
}

/// The instant at which `amount` business seconds of running time have passed, if the
/// timer runs that long (it may stay paused forever).
fn reach(cal: &Calendar, segments: &[(i64, Option<i64>)], amount: i64) -> Option<i64> {
    let mut done = 0i64;
    for &(a, b) in segments {
        let left = amount.saturating_sub(done);
        match b {
            None => return Some(cal.add_business_unix(a, left)),
            Some(b) => {
                let len = cal.business_seconds_unix(a, b);
                if len >= left {
                    return Some(cal.add_business_unix(a, left));
                }
                done = done.saturating_add(len);
            }
        }
    }
    None
}

/// Running business seconds up to `until`.
fn elapsed(cal: &Calendar, segments: &[(i64, Option<i64>)], until: i64) -> i64 {
    segments
        .iter()
        .map(|&(a, b)| cal.business_seconds_unix(a, b.map_or(until, |b| b.min(until))))
        .fold(0i64, i64::saturating_add)
}

/// Business seconds of `cal` from `start` to `until`, leaving out the `pending` intervals
/// (waiting on the customer): how long a ticket really waited on us, as the SLA timers
/// count it. Analytics measures response and resolution times with it.
pub fn business_elapsed(
    cal: &Calendar,
    pending: &[(DateTime<Utc>, Option<DateTime<Utc>>)],
    start: DateTime<Utc>,
    until: DateTime<Utc>,
) -> i64 {
    elapsed(cal, &running_segments(secs(start), pending), secs(until))
}

fn timer(
    policy: &SlaPolicy,
    h: &History,
    target: Target,
    started: DateTime<Utc>,
    allowed: i64,
    met: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> TimerState {
    let cal = policy.calendar.as_ref();
    let segments = running_segments(secs(started), &h.pending);
    let until = secs(met.unwrap_or(now));
    let elapsed_s = elapsed(cal, &segments, until);
    let warn_amount = ((allowed as f64) * policy.warn_at).round() as i64;
    let due_s = reach(cal, &segments, allowed);
    let warn_s = reach(cal, &segments, warn_amount.clamp(0, allowed));
    let to_instant = |s: i64| chrono::TimeZone::timestamp_opt(&Utc, s, 0).single();
    let due = due_s.and_then(to_instant);
    let warn_at = warn_s.and_then(to_instant);
    let now_s = secs(now);
    let paused = met.is_none()
        && h.pending
            .iter()
            .any(|(a, b)| secs(*a) <= now_s && b.is_none_or(|b| secs(b) > now_s));
    let breached = match met {
        Some(m) => due.is_some_and(|d| m > d),
        None => due.is_some_and(|d| now >= d),
    };
    // While paused the due instant is unknown, unless it has already passed.
    let (due, warn_at) = if paused && !breached {
        (None, warn_at.filter(|w| *w <= now))
    } else {
        (due, warn_at)
    };
    TimerState {
        target,
        started,
        due,
        warn_at,
        met,
        breached,
        paused,
        elapsed_s,
        allowed_s: allowed,
    }
}

/// The timers of a ticket under a policy, at `now`: first response and resolution when
/// the policy sets them, and next response while a customer message awaits an answer on
/// a ticket not yet resolved.
pub fn evaluate(policy: &SlaPolicy, h: &History, now: DateTime<Utc>) -> Vec<TimerState> {
    let mut out = Vec::new();
    if let Some(allowed) = policy.first_response {
        out.push(timer(
            policy,
            h,
            Target::FirstResponse,
            h.created,
            allowed,
            h.first_response,
            now,
        ));
    }
    if let (Some(allowed), Some(since)) = (policy.next_response, h.awaiting_since)
        && h.resolved.is_none()
    {
        out.push(timer(
            policy,
            h,
            Target::NextResponse,
            since,
            allowed,
            None,
            now,
        ));
    }
    if let Some(allowed) = policy.resolution {
        out.push(timer(
            policy,
            h,
            Target::Resolution,
            h.created,
            allowed,
            h.resolved,
            now,
        ));
    }
    out
}

/// A notice a scheduler sends about a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    Warning(Target),
    Breach(Target),
}

/// The notices due at `now`: a breach for each unmet timer past its due instant, else a
/// warning for each unmet timer past its warning instant. Met timers give none (a late
/// answer is recorded as `breached`, nothing is left to act on). Each notice comes with
/// the timer's `started` instant, which identifies the cycle (a next-response timer
/// starts again with each unanswered customer message) and does not move when a pause
/// moves the due instant: the caller keeps (ticket, notice, started) of what it sent and
/// skips those. The same input always gives the same output.
pub fn due_notices(states: &[TimerState], now: DateTime<Utc>) -> Vec<(Notice, DateTime<Utc>)> {
    states
        .iter()
        .filter(|s| s.met.is_none())
        .filter_map(|s| {
            if s.breached && s.due.is_some_and(|d| d <= now) {
                Some((Notice::Breach(s.target), s.started))
            } else if s.warn_at.is_some_and(|w| w <= now) {
                Some((Notice::Warning(s.target), s.started))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::rules::calendar::Hours;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn policy(cal: Calendar) -> SlaPolicy {
        SlaPolicy {
            name: "standard".into(),
            priorities: vec![],
            tiers: vec![],
            categories: vec![],
            first_response: Some(8 * 3600),
            next_response: Some(4 * 3600),
            resolution: Some(3 * 86_400),
            calendar: Arc::new(cal),
            warn_at: DEFAULT_WARN_AT,
        }
    }

    fn office() -> Calendar {
        Calendar::new(
            "office",
            TimeZone::get("Asia/Shanghai").unwrap(),
            Hours::parse("Mon-Fri 09:00-18:00").unwrap(),
            ["2027-01-01".parse().unwrap()].into(),
            ["2027-02-20".parse().unwrap()].into(),
        )
    }

    fn history(created: &str) -> History {
        History {
            created: utc(created),
            pending: vec![],
            first_response: None,
            resolved: None,
            awaiting_since: None,
        }
    }

    fn first(states: &[TimerState]) -> &TimerState {
        states
            .iter()
            .find(|s| s.target == Target::FirstResponse)
            .unwrap()
    }

    #[test]
    fn warning_at_eighty_percent_then_breach() {
        let p = policy(Calendar::always());
        let h = history("2027-03-01T00:00:00Z");
        // 8h allowed: warning at 6h24m, due at 8h.
        let at = |t: &str| due_notices(&evaluate(&p, &h, utc(t)), utc(t));
        assert_eq!(at("2027-03-01T06:23:59Z"), vec![]);
        let warn = at("2027-03-01T06:24:00Z");
        assert_eq!(
            warn,
            vec![(
                Notice::Warning(Target::FirstResponse),
                utc("2027-03-01T00:00:00Z")
            )]
        );
        // The same input gives the same output: the caller's record stops a second send.
        assert_eq!(at("2027-03-01T06:24:00Z"), warn);
        let s = evaluate(&p, &h, utc("2027-03-01T08:00:00Z"));
        assert!(first(&s).breached);
        assert_eq!(first(&s).due, Some(utc("2027-03-01T08:00:00Z")));
        assert_eq!(first(&s).warn_at, Some(utc("2027-03-01T06:24:00Z")));
        assert_eq!(first(&s).elapsed_s, 8 * 3600);
        assert_eq!(
            at("2027-03-01T08:00:00Z"),
            vec![(
                Notice::Breach(Target::FirstResponse),
                utc("2027-03-01T00:00:00Z")
            )]
        );
    }

    #[test]
    fn met_in_time_is_never_breached_and_met_late_is() {
        let p = policy(Calendar::always());
        let mut h = history("2027-03-01T00:00:00Z");
        h.first_response = Some(utc("2027-03-01T07:00:00Z"));
        let s = evaluate(&p, &h, utc("2027-03-09T00:00:00Z"));
        assert!(!first(&s).breached);
        assert_eq!(first(&s).elapsed_s, 7 * 3600);
        h.first_response = Some(utc("2027-03-01T09:00:00Z"));
        let s = evaluate(&p, &h, utc("2027-03-09T00:00:00Z"));
        assert!(first(&s).breached);
        assert_eq!(first(&s).met, Some(utc("2027-03-01T09:00:00Z")));
        // Nothing left to send about a met timer; the resolution timer is breached.
        assert_eq!(
            due_notices(&s, utc("2027-03-09T00:00:00Z")),
            vec![(
                Notice::Breach(Target::Resolution),
                utc("2027-03-01T00:00:00Z")
            )]
        );
    }

    #[test]
    fn a_pause_moves_the_due_time_by_the_paused_business_time() {
        let p = policy(office());
        // Mon 2027-03-01 09:00 Shanghai (01:00 UTC): due 17:00 local (09:00 UTC).
        let mut h = history("2027-03-01T01:00:00Z");
        let plain = evaluate(&p, &h, utc("2027-03-01T02:00:00Z"));
        assert_eq!(first(&plain).due, Some(utc("2027-03-01T09:00:00Z")));
        // Pending from 10:00 to 13:30 local: 3.5 business hours.
        h.pending = vec![(utc("2027-03-01T02:00:00Z"), None)];
        let paused = evaluate(&p, &h, utc("2027-03-01T04:00:00Z"));
        assert!(first(&paused).paused);
        assert_eq!(first(&paused).due, None);
        assert_eq!(first(&paused).elapsed_s, 3600);
        assert_eq!(due_notices(&paused, utc("2027-03-01T04:00:00Z")), vec![]);
        h.pending = vec![(
            utc("2027-03-01T02:00:00Z"),
            Some(utc("2027-03-01T05:30:00Z")),
        )];
        let resumed = evaluate(&p, &h, utc("2027-03-01T06:00:00Z"));
        assert!(!first(&resumed).paused);
        // 17:00 + 3.5h of business time = Tue 11:30 local (03:30 UTC).
        assert_eq!(first(&resumed).due, Some(utc("2027-03-02T03:30:00Z")));
        assert_eq!(first(&resumed).elapsed_s, 3600 + 1800);
        let moved = p
            .calendar
            .business_seconds(first(&plain).due.unwrap(), first(&resumed).due.unwrap());
        assert_eq!(moved, 3 * 3600 + 1800);
    }

    #[test]
    fn a_pause_outside_business_hours_moves_nothing_and_a_sent_warning_stays() {
        let p = policy(office());
        // Fri 2027-03-05 17:00 Shanghai; pending over the weekend only.
        let mut h = history("2027-03-05T09:00:00Z");
        h.pending = vec![(
            utc("2027-03-05T10:30:00Z"),
            Some(utc("2027-03-07T12:00:00Z")),
        )];
        let s = evaluate(&p, &h, utc("2027-03-08T01:00:00Z"));
        assert_eq!(first(&s).due, Some(utc("2027-03-08T08:00:00Z")));
        // Paused after the warning instant but before the due one: the warning stays
        // due (with the same key), the due instant is unknown.
        let mut h = history("2027-03-01T01:00:00Z"); // Mon 09:00 local
        h.pending = vec![(utc("2027-03-01T08:00:00Z"), None)]; // 16:00 local, 7h used
        let s = evaluate(&p, &h, utc("2027-03-01T09:00:00Z"));
        assert!(first(&s).paused);
        assert_eq!(first(&s).due, None);
        assert_eq!(first(&s).warn_at, Some(utc("2027-03-01T07:24:00Z")));
        assert_eq!(
            due_notices(&s, utc("2027-03-01T09:00:00Z")),
            vec![(
                Notice::Warning(Target::FirstResponse),
                utc("2027-03-01T01:00:00Z")
            )]
        );
    }

    #[test]
    fn friday_evening_ticket_is_due_monday_afternoon() {
        let p = policy(office());
        // Fri 2027-03-05 17:00 Shanghai.
        let h = history("2027-03-05T09:00:00Z");
        let s = evaluate(&p, &h, utc("2027-03-06T00:00:00Z"));
        assert_eq!(first(&s).due, Some(utc("2027-03-08T08:00:00Z"))); // Mon 16:00
        assert_eq!(first(&s).elapsed_s, 3600);
        assert!(!first(&s).breached);
    }

    #[test]
    fn holidays_and_make_up_days_in_the_timer() {
        let p = policy(office());
        // Thu 2026-12-31 17:00 local: 1h Thursday, Friday is a holiday, 7h on Monday.
        let s = evaluate(
            &p,
            &history("2026-12-31T09:00:00Z"),
            utc("2027-01-01T12:00:00Z"),
        );
        assert_eq!(first(&s).due, Some(utc("2027-01-04T08:00:00Z")));
        // Fri 2027-02-19 17:00 local: 1h Friday, 7h on the worked Saturday.
        let s = evaluate(
            &p,
            &history("2027-02-19T09:00:00Z"),
            utc("2027-02-19T09:00:00Z"),
        );
        assert_eq!(first(&s).due, Some(utc("2027-02-20T08:00:00Z")));
    }

    #[test]
    fn next_response_runs_from_the_oldest_unanswered_message() {
        let p = policy(Calendar::always());
        let mut h = history("2027-03-01T00:00:00Z");
        h.first_response = Some(utc("2027-03-01T01:00:00Z"));
        h.awaiting_since = Some(utc("2027-03-02T00:00:00Z"));
        let s = evaluate(&p, &h, utc("2027-03-02T05:00:00Z"));
        let next = s.iter().find(|t| t.target == Target::NextResponse).unwrap();
        assert_eq!(next.started, utc("2027-03-02T00:00:00Z"));
        assert_eq!(next.due, Some(utc("2027-03-02T04:00:00Z")));
        assert!(next.breached);
        assert_eq!(
            due_notices(&s, utc("2027-03-02T05:00:00Z")),
            vec![(
                Notice::Breach(Target::NextResponse),
                utc("2027-03-02T00:00:00Z")
            )]
        );
        // Resolution stops its timer and ends next-response.
        h.resolved = Some(utc("2027-03-02T06:00:00Z"));
        let s = evaluate(&p, &h, utc("2027-03-20T00:00:00Z"));
        assert_eq!(s.len(), 2);
        let res = s.iter().find(|t| t.target == Target::Resolution).unwrap();
        assert_eq!(res.elapsed_s, 30 * 3600);
        assert!(!res.breached);
    }

    #[test]
    fn daylight_saving_shortens_the_night() {
        let ny = Calendar::working_hours(
            "ny",
            TimeZone::get("America/New_York").unwrap(),
            Hours::parse("Mon-Fri 09:00-17:00").unwrap(),
        );
        let mut p = policy(ny);
        p.first_response = Some(4 * 3600);
        // Fri 2027-03-12 15:00 EST (20:00 UTC): 2h Friday, 2h Monday (EDT) → 11:00 EDT.
        let s = evaluate(
            &p,
            &history("2027-03-12T20:00:00Z"),
            utc("2027-03-13T00:00:00Z"),
        );
        assert_eq!(first(&s).due, Some(utc("2027-03-15T15:00:00Z")));
    }

    #[test]
    fn pick_prefers_the_explicit_name_then_file_order() {
        let mut vip = policy(Calendar::always());
        vip.name = "vip".into();
        vip.tiers = vec!["vip".into()];
        let mut refunds = policy(Calendar::always());
        refunds.name = "refunds".into();
        refunds.categories = vec!["refund".into()];
        refunds.priorities = vec![Priority::High, Priority::Urgent];
        let fallback = policy(Calendar::always());
        let all = SlaPolicies(vec![vip, refunds, fallback]);
        let name = |p: Option<&SlaPolicy>| p.map(|p| p.name.clone());
        assert_eq!(
            name(all.pick(None, Priority::Low, Some("VIP"), None)),
            Some("vip".into())
        );
        assert_eq!(
            name(all.pick(None, Priority::High, None, Some("refund"))),
            Some("refunds".into())
        );
        assert_eq!(
            name(all.pick(None, Priority::Low, None, Some("refund"))),
            Some("standard".into())
        );
        assert_eq!(
            name(all.pick(Some("refunds"), Priority::Low, Some("vip"), None)),
            Some("refunds".into())
        );
        assert_eq!(
            name(all.pick(Some("nope"), Priority::Low, None, None)),
            Some("standard".into())
        );
        assert!(
            SlaPolicies::default()
                .pick(None, Priority::Low, None, None)
                .is_none()
        );
    }

    #[test]
    fn timer_state_serializes_with_rfc3339_times() {
        let p = policy(Calendar::always());
        let s = evaluate(
            &p,
            &history("2027-03-01T00:00:00Z"),
            utc("2027-03-01T01:00:00Z"),
        );
        let json = serde_json::to_value(first(&s)).unwrap();
        assert_eq!(json["target"], "first_response");
        assert_eq!(json["started"], "2027-03-01T00:00:00Z");
        assert_eq!(json["due"], "2027-03-01T08:00:00Z");
        assert_eq!(json["met"], serde_json::Value::Null);
        assert_eq!(json["elapsed_s"], 3600);
    }
}
