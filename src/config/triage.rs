//! Validation of the triage keys (issue 13): `[calendar.NAME]`, `[[sla]]`, `[[team]]`,
//! `[alerts]`, `[digest]` and the working-hours keys of `[[agent]]`. Like the rest of
//! the configuration, every problem is collected, each naming its key.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::raw;
use crate::domain::Priority;
use crate::rules::calendar::{Calendar, Hours, parse_duration};
use crate::rules::routing::{Strategy, Team};
use crate::rules::sla::{DEFAULT_WARN_AT, SlaPolicies, SlaPolicy};

/// `[alerts]`: who hears about SLA breaches and unassignable tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfig {
    /// Addresses (lower-case) told about breaches and tickets nobody can take.
    pub on_call: Vec<String>,
    /// Seconds within which a problem must be reported (`report_within`, default 2h).
    pub report_within: i64,
}

/// `[digest]`: the daily summary mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestConfig {
    pub enabled: bool,
    /// The hour (0-23) it is sent at.
    pub hour: u8,
    /// The weekly performance digest with charts (`weekly`, default true while the
    /// digests are enabled): to leads, at `hour` on `weekly_day` in each one's zone.
    pub weekly: bool,
    pub weekly_day: jiff::civil::Weekday,
    /// Every other agent also gets their own figures beside the team's (`weekly_agents`,
    /// default false).
    pub weekly_agents: bool,
    /// The font charts are drawn with (`font_file`); `None`: a CJK font of the system.
    pub font_file: Option<std::path::PathBuf>,
}

/// The closest name to `wrong` among `names`, as ` did you mean "x"?`, or nothing.
fn did_you_mean<'a>(wrong: &str, names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| {
            (
                strsim::jaro_winkler(&wrong.to_lowercase(), &n.to_lowercase()),
                n,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| format!("; did you mean {n:?}?"))
        .unwrap_or_default()
}

fn time_zone(name: &str, ctx: &str, problems: &mut Vec<String>) -> Option<TimeZone> {
    match TimeZone::get(name.trim()) {
        Ok(tz) => Some(tz),
        Err(_) => {
            problems.push(format!(
                "{ctx}: timezone {name:?} is not a time zone; use an IANA name like \"Europe/Paris\" or \"UTC\""
            ));
            None
        }
    }
}

fn hours(text: &str, ctx: &str, problems: &mut Vec<String>) -> Option<Hours> {
    Hours::parse(text)
        .map_err(|e| problems.push(format!("{ctx}: hours: {e}")))
        .ok()
}

fn dates(
    list: Option<Vec<String>>,
    key: &str,
    ctx: &str,
    problems: &mut Vec<String>,
) -> BTreeSet<Date> {
    let mut out = BTreeSet::new();
    for d in list.unwrap_or_default() {
        match d.trim().parse::<Date>() {
            Ok(date) => {
                out.insert(date);
            }
            Err(_) => problems.push(format!("{ctx}: {key}: {d:?} is not a date (YYYY-MM-DD)")),
        }
    }
    out
}

/// `[calendar.NAME]` sections, by name.
pub(super) fn calendars(
    raw: Option<BTreeMap<String, raw::RawCalendar>>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Arc<Calendar>> {
    let mut out = BTreeMap::new();
    for (name, c) in raw.unwrap_or_default() {
        let ctx = format!("calendar {name:?}");
        let tz = match c.timezone.as_deref() {
            Some(t) => time_zone(t, &ctx, problems),
            None => {
                problems.push(format!(
                    "{ctx}: timezone is required, e.g. \"Asia/Shanghai\" or \"UTC\""
                ));
                None
            }
        };
        let h = match c.hours.as_deref() {
            Some(t) => hours(t, &ctx, problems),
            None => {
                problems.push(format!(
                    "{ctx}: hours is required, e.g. \"Mon-Fri 09:00-18:00\" (or \"always\")"
                ));
                None
            }
        };
        let holidays = dates(c.holidays, "holidays", &ctx, problems);
        let workdays = dates(c.workdays, "workdays", &ctx, problems);
        for d in holidays.intersection(&workdays) {
            problems.push(format!(
                "{ctx}: {d} is listed both as a holiday and as a make-up working day"
            ));
        }
        if let (Some(tz), Some(h)) = (tz, h) {
            if h.is_empty() {
                problems.push(format!("{ctx}: hours open no time at all"));
            }
            out.insert(
                name.clone(),
                Arc::new(Calendar::new(name, tz, h, holidays, workdays)),
            );
        }
    }
    out
}

/// The working-hours keys of one `[[agent]]`: its zone (UTC when not given) and its
/// hours, if any (always available when not given).
pub(super) fn agent_hours(
    name: &str,
    timezone: Option<&str>,
    hours_text: Option<&str>,
    problems: &mut Vec<String>,
) -> (TimeZone, Option<Calendar>) {
    let ctx = format!("agent {name:?}");
    let tz = timezone.and_then(|t| time_zone(t, &ctx, problems));
    let h = hours_text.and_then(|t| hours(t, &ctx, problems));
    if hours_text.is_some() && timezone.is_none() {
        problems.push(format!(
            "{ctx}: hours need a timezone (the agent's, e.g. \"Asia/Shanghai\" or \"UTC\")"
        ));
    }
    let cal = match (&tz, h) {
        (Some(tz), Some(h)) => Some(Calendar::working_hours(name, tz.clone(), h)),
        _ => None,
    };
    (tz.unwrap_or(TimeZone::UTC), cal)
}

/// `[[sla]]` policies, in file order.
pub(super) fn slas(
    raw: Vec<raw::RawSla>,
    calendars: &BTreeMap<String, Arc<Calendar>>,
    problems: &mut Vec<String>,
) -> SlaPolicies {
    let always = Arc::new(Calendar::always());
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        let name = s
            .name
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        let ctx = if name.is_empty() {
            problems.push(format!("sla #{}: name is required", i + 1));
            format!("sla #{}", i + 1)
        } else {
            format!("sla {name:?}")
        };
        if !name.is_empty() && !seen.insert(name.to_lowercase()) {
            problems.push(format!("{ctx}: name is used by two [[sla]]"));
        }
        let mut priorities = Vec::new();
        for p in s.priorities.unwrap_or_default() {
            match p.parse::<Priority>() {
                Ok(p) => priorities.push(p),
                Err(e) => problems.push(format!("{ctx}: priorities: {e}")),
            }
        }
        let mut duration = |key: &str, v: Option<String>| -> Option<i64> {
            let v = v?;
            match parse_duration(&v) {
                Ok(0) => {
                    problems.push(format!("{ctx}: {key} must be longer than 0"));
                    None
                }
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(format!("{ctx}: {key}: {e}"));
                    None
                }
            }
        };
        let given = [&s.first_response, &s.next_response, &s.resolution]
            .iter()
            .any(|v| v.is_some());
        let first_response = duration("first_response", s.first_response);
        let next_response = duration("next_response", s.next_response);
        let resolution = duration("resolution", s.resolution);
        if !given {
            problems.push(format!(
                "{ctx}: give at least one of first_response, next_response, resolution"
            ));
        }
        let calendar = match s.calendar.as_deref() {
            None => always.clone(),
            Some(c) => match calendars.get(c) {
                Some(cal) => cal.clone(),
                None => {
                    problems.push(format!(
                        "{ctx}: calendar {c:?} is not a [calendar.NAME] section{}",
                        did_you_mean(c, calendars.keys().map(String::as_str))
                    ));
                    always.clone()
                }
            },
        };
        let warn_at = s.warn_at.unwrap_or(DEFAULT_WARN_AT);
        if !(warn_at > 0.0 && warn_at < 1.0) {
            problems.push(format!(
                "{ctx}: warn_at must be a fraction between 0 and 1 (e.g. 0.8), not {warn_at}"
            ));
        }
        let lower = |v: Option<Vec<String>>| -> Vec<String> {
            v.unwrap_or_default()
                .into_iter()
                .map(|t| t.trim().to_lowercase())
                .filter(|t| !t.is_empty())
                .collect()
        };
        out.push(SlaPolicy {
            name,
            priorities,
            tiers: lower(s.tiers),
            categories: lower(s.categories),
            first_response,
            next_response,
            resolution,
            calendar,
            warn_at,
        });
    }
    SlaPolicies(out)
}

/// `[[team]]`s; `agents` are the names of the configured `[[agent]]`s.
pub(super) fn teams(
    raw: Vec<raw::RawTeam>,
    agents: &[String],
    problems: &mut Vec<String>,
) -> Vec<Team> {
    let known = |n: &str| {
        agents
            .iter()
            .find(|a| a.eq_ignore_ascii_case(n.trim()))
            .cloned()
    };
    let suggest = |n: &str| did_you_mean(n, agents.iter().map(String::as_str));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let name = t
            .name
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        let ctx = if name.is_empty() {
            problems.push(format!("team #{}: name is required", i + 1));
            format!("team #{}", i + 1)
        } else {
            format!("team {name:?}")
        };
        if !name.is_empty() && !seen.insert(name.to_lowercase()) {
            problems.push(format!("{ctx}: name is used by two [[team]]"));
        }
        let mut members: Vec<String> = Vec::new();
        let raw_members = t.members.unwrap_or_default();
        if raw_members.is_empty() {
            problems.push(format!("{ctx}: members must list at least one agent"));
        }
        for m in raw_members {
            match known(&m) {
                Some(a) if members.contains(&a) => {
                    problems.push(format!("{ctx}: member {m:?} is listed twice"));
                }
                Some(a) => members.push(a),
                None => problems.push(format!(
                    "{ctx}: member {m:?} is not an [[agent]]{}",
                    suggest(&m)
                )),
            }
        }
        let lead = t.lead.and_then(|l| match known(&l) {
            Some(a) => Some(a),
            None => {
                problems.push(format!(
                    "{ctx}: lead {l:?} is not an [[agent]]{}",
                    suggest(&l)
                ));
                None
            }
        });
        let strategy = match t.strategy.as_deref() {
            None => Strategy::RoundRobin,
            Some(s) => s.parse().unwrap_or_else(|e| {
                problems.push(format!("{ctx}: strategy: {e}"));
                Strategy::RoundRobin
            }),
        };
        out.push(Team {
            name,
            members,
            lead,
            strategy,
        });
    }
    out
}

/// `[alerts]`.
pub(super) fn alerts(raw: Option<raw::RawAlerts>, problems: &mut Vec<String>) -> AlertsConfig {
    let raw = raw.unwrap_or(raw::RawAlerts {
        on_call: None,
        report_within: None,
    });
    let mut on_call = Vec::new();
    for a in raw.on_call.unwrap_or_default() {
        let a = a.trim().to_lowercase();
        if super::valid_email(&a) {
            on_call.push(a);
        } else {
            problems.push(format!("alerts: on_call: {a:?} is not an email address"));
        }
    }
    let report_within = match raw.report_within.as_deref().map(parse_duration) {
        None => 2 * 3600,
        Some(Ok(s)) if s > 0 => s,
        Some(Ok(_)) => {
            problems.push("alerts: report_within must be longer than 0".to_string());
            2 * 3600
        }
        Some(Err(e)) => {
            problems.push(format!("alerts: report_within: {e}"));
            2 * 3600
        }
    };
    AlertsConfig {
        on_call,
        report_within,
    }
}

/// `[digest]`.
pub(super) fn digest(
    raw: Option<raw::RawDigest>,
    base: &std::path::Path,
    problems: &mut Vec<String>,
) -> DigestConfig {
    let raw = raw.unwrap_or(raw::RawDigest {
        enabled: None,
        hour: None,
        weekly: None,
        weekly_day: None,
        weekly_agents: None,
        font_file: None,
    });
    let enabled = raw.enabled.unwrap_or(true);
    let hour = raw.hour.unwrap_or(8);
    let hour = u8::try_from(hour)
        .ok()
        .filter(|h| *h <= 23)
        .unwrap_or_else(|| {
            problems.push(format!("digest: hour must be 0-23, not {hour}"));
            8
        });
    let weekly_day = match raw.weekly_day.as_deref().map(str::trim) {
        None => jiff::civil::Weekday::Monday,
        Some(d) => weekday(d).unwrap_or_else(|| {
            problems.push(format!(
                "digest: weekly_day {d:?} is not a weekday; write e.g. \"monday\""
            ));
            jiff::civil::Weekday::Monday
        }),
    };
    let font_file = raw.font_file.map(|f| {
        let p = std::path::Path::new(f.trim());
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        if !p.is_file() {
            problems.push(format!("digest: font_file {} does not exist", p.display()));
        }
        p
    });
    DigestConfig {
        enabled,
        hour,
        weekly: raw.weekly.unwrap_or(true),
        weekly_day,
        weekly_agents: raw.weekly_agents.unwrap_or(false),
        font_file,
    }
}

/// A weekday by its English name or first three letters, any case.
fn weekday(s: &str) -> Option<jiff::civil::Weekday> {
    use jiff::civil::Weekday::*;
    let s = s.to_ascii_lowercase();
    [
        ("monday", Monday),
        ("tuesday", Tuesday),
        ("wednesday", Wednesday),
        ("thursday", Thursday),
        ("friday", Friday),
        ("saturday", Saturday),
        ("sunday", Sunday),
    ]
    .into_iter()
    .find(|(name, _)| *name == s || (s.len() == 3 && name.starts_with(&s)))
    .map(|(_, d)| d)
}

/// `[bot]`: the answer bot (issue 14).
#[derive(Debug, Clone, PartialEq)]
pub struct BotConfig {
    /// Answers new tickets from published articles (`enabled`, default true; it still
    /// needs a published article that clears both bars below).
    pub enabled: bool,
    /// The normalised score (0..1) the best article must reach (`min_score`, default 0.6).
    pub min_score: f32,
    /// The best article's lead over the second (`min_margin`, default 0.15).
    pub min_margin: f32,
    /// Words by which a customer asks for a person: the defaults plus `handoff_words`,
    /// lower-case.
    pub handoff_words: Vec<String>,
    /// Where the search index lives (`index_dir`; default: `kb-index` beside the database).
    pub index_dir: Option<std::path::PathBuf>,
}

/// The handoff words every desk understands.
pub const DEFAULT_HANDOFF_WORDS: &[&str] = &[
    "human",
    "agent",
    "real person",
    "operator",
    "人工",
    "转人工",
    "真人",
    "客服",
];

/// `[bot]`.
pub(super) fn bot(
    raw: Option<raw::RawBot>,
    base: &std::path::Path,
    problems: &mut Vec<String>,
) -> BotConfig {
    let raw = raw.unwrap_or(raw::RawBot {
        enabled: None,
        min_score: None,
        min_margin: None,
        handoff_words: None,
        index_dir: None,
    });
    let mut unit = |key: &str, v: Option<f64>, default: f32| -> f32 {
        match v {
            None => default,
            Some(x) if (0.0..=1.0).contains(&x) => x as f32,
            Some(x) => {
                problems.push(format!("bot: {key} must be between 0 and 1, not {x}"));
                default
            }
        }
    };
    let min_score = unit("min_score", raw.min_score, 0.6);
    let min_margin = unit("min_margin", raw.min_margin, 0.15);
    let mut handoff_words: Vec<String> = DEFAULT_HANDOFF_WORDS
        .iter()
        .map(|w| w.to_string())
        .collect();
    for w in raw.handoff_words.unwrap_or_default() {
        let w = w.trim().to_lowercase();
        if w.is_empty() {
            problems.push("bot: handoff_words has an empty word".to_string());
        } else if !handoff_words.contains(&w) {
            handoff_words.push(w);
        }
    }
    BotConfig {
        enabled: raw.enabled.unwrap_or(true),
        min_score,
        min_margin,
        handoff_words,
        index_dir: raw.index_dir.map(|d| super::resolve(base, &d)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::parse;
    use crate::domain::Priority;
    use crate::rules::routing::Strategy;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const BASE: &str = r#"
[[mailbox]]
name = "s"
host = "h"
username = "u"
password = "p"
addresses = ["s@example.com"]
[smtp]
host = "h"
from = "s@example.com"
[[agent]]
name = "alice"
email = "alice@example.com"
timezone = "Asia/Shanghai"
hours = "Mon-Fri 09:00-18:00"
skills = ["Refund", "zh"]
lead = true
[[agent]]
name = "bob"
email = "bob@example.com"
"#;

    #[test]
    fn the_example_triage_blocks_parse_when_uncommented() {
        let text = include_str!("../../config/postdesk.example.toml");
        let starts = [
            "# [[team]]",
            "# [calendar.office]",
            "# [[sla]]",
            "# [alerts]",
            "# [digest]",
        ];
        let mut out = String::new();
        let mut inside = false;
        for line in text.lines() {
            if line.starts_with("# Working hours and skills (issue 13)") {
                // The agent keys follow this line; the line itself stays a comment.
                out.push_str(line);
                out.push('\n');
                inside = true;
                continue;
            }
            if starts.contains(&line) {
                inside = true;
            } else if !line.starts_with('#') {
                inside = false;
            }
            if inside && !line.starts_with("#   ") && line != "#" {
                out.push_str(line.trim_start_matches("# "));
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
        let cfg = parse(&out, Path::new(""), &no_env).unwrap();
        let alice = &cfg.agents[0];
        assert_eq!(alice.skills, vec!["refund", "zh"]);
        assert!(alice.lead);
        assert!(alice.hours.is_some());
        assert_eq!(cfg.teams[0].name, "billing");
        assert_eq!(cfg.teams[0].strategy, Strategy::RoundRobin);
        assert_eq!(cfg.teams[0].lead.as_deref(), Some("alice"));
        assert_eq!(cfg.slas.0.len(), 2);
        let standard = cfg.slas.get("standard").unwrap();
        assert_eq!(standard.first_response, Some(8 * 3600));
        assert_eq!(standard.resolution, Some(3 * 86_400));
        assert_eq!(standard.calendar.name, "office");
        assert_eq!(standard.priorities, vec![Priority::Low, Priority::Normal]);
        assert_eq!(
            cfg.slas
                .pick(None, Priority::Low, Some("vip"), None)
                .unwrap()
                .name,
            "vip"
        );
        assert!(cfg.calendars.contains_key("office"));
        assert_eq!(cfg.alerts.on_call, vec!["alice@example.com"]);
        assert_eq!(cfg.alerts.report_within, 2 * 3600);
        assert_eq!(cfg.digest.hour, 8);
        assert!(cfg.digest.enabled);
    }

    #[test]
    fn defaults_without_triage_sections() {
        let cfg = parse(BASE, Path::new(""), &no_env).unwrap();
        assert!(cfg.teams.is_empty());
        assert!(cfg.slas.is_empty());
        assert!(cfg.calendars.is_empty());
        assert_eq!(cfg.alerts.report_within, 7200);
        assert!(cfg.alerts.on_call.is_empty());
        assert_eq!((cfg.digest.enabled, cfg.digest.hour), (true, 8));
        let bob = &cfg.agents[1];
        assert!(bob.hours.is_none() && bob.skills.is_empty() && !bob.lead);
        // alice is on at 10:00 Shanghai on a Monday, not at 20:00.
        let h = cfg.agents[0].hours.as_ref().unwrap();
        assert!(h.is_open("2027-03-01T02:00:00Z".parse().unwrap()));
        assert!(!h.is_open("2027-03-01T12:00:00Z".parse().unwrap()));
    }

    #[test]
    fn triage_problems_are_all_reported_at_once() {
        let text = format!(
            r#"{BASE}
timezone = "Mars/Olympus"
hours = "Mon-Fri 18:00-09:00"

[[team]]
name = "billing"
members = ["alise", "bob"]
lead = "carl"
strategy = "random"

[[team]]
name = "Billing"
members = []

[calendar.office]
timezone = "Asia/Shanghai"
hours = "Mon-Fri 09:00-18:00"
holidays = ["2027-13-01", "new year"]
workdays = ["2027-02-20"]

[calendar.weekend]
timezone = "Nowhere/Land"
hours = "Sat"

[[sla]]
name = "standard"
priorities = ["low", "meh"]
first_response = "8 hours"
resolution = "-1h"
calendar = "ofice"
warn_at = 1.5

[[sla]]
name = "empty"

[alerts]
on_call = ["carol@example.com", "not an address"]
report_within = "soon"

[digest]
hour = 24
"#
        );
        let err = parse(&text, Path::new(""), &no_env).unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "agent \"bob\": timezone \"Mars/Olympus\" is not a time zone",
            "agent \"bob\": hours: in \"18:00-09:00\" the start is not before the end",
            "team \"billing\": member \"alise\" is not an [[agent]]; did you mean \"alice\"?",
            "team \"billing\": lead \"carl\" is not an [[agent]]",
            "team \"billing\": strategy: \"random\" is not a strategy",
            "team \"Billing\": name is used by two [[team]]",
            "team \"Billing\": members must list at least one agent",
            "calendar \"office\": holidays: \"2027-13-01\" is not a date",
            "calendar \"office\": holidays: \"new year\" is not a date",
            "calendar \"weekend\": timezone \"Nowhere/Land\" is not a time zone",
            "calendar \"weekend\": hours: hours \"Sat\" end with days but no time range",
            "sla \"standard\": priorities: \"meh\" is not a valid priority",
            "sla \"standard\": first_response: \"8 hours\" is not a duration",
            "sla \"standard\": resolution: \"-1h\" is not a duration",
            "sla \"standard\": calendar \"ofice\" is not a [calendar.NAME] section; did you mean \"office\"?",
            "sla \"standard\": warn_at must be a fraction between 0 and 1",
            "sla \"empty\": give at least one of first_response, next_response, resolution",
            "alerts: on_call: \"not an address\" is not an email address",
            "alerts: report_within: \"soon\" is not a duration",
            "digest: hour must be 0-23, not 24",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn hours_without_a_timezone_and_dates_both_ways_are_refused() {
        let text = format!(
            r#"{BASE}
hours = "Mon-Fri 09:00-18:00"

[calendar.office]
timezone = "UTC"
hours = "always"
holidays = ["2027-02-20"]
workdays = ["2027-02-20"]

[calendar.bare]
"#
        );
        let err = parse(&text, Path::new(""), &no_env).unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "agent \"bob\": hours need a timezone",
            "calendar \"office\": 2027-02-20 is listed both as a holiday and as a make-up working day",
            "calendar \"bare\": timezone is required",
            "calendar \"bare\": hours is required",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn an_unknown_triage_key_is_named() {
        let text = format!(
            "{BASE}\n[[team]]\nname = \"x\"\nmembers = [\"bob\"]\nstrategie = \"skills\"\n"
        );
        let all = parse(&text, Path::new(""), &no_env)
            .unwrap_err()
            .problems
            .join("\n");
        assert!(all.contains("\"strategie\""), "{all}");
    }
}
