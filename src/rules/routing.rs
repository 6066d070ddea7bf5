//! Which team member gets a ticket: the team's strategy over the members available now.
//!
//! An agent is available when not marked away and, if they have working hours, inside
//! them. Away or off-hours agents never get a ticket; a member the caller gives no
//! availability for counts as unavailable. When nobody is available the answer is
//! [`Route::Nobody`], naming the team's lead so the caller can tell them.
//!
//! Strategies:
//! - `round_robin`: the next available member after the last one assigned, in member
//!   order, wrapping around (the first available member when there is no last one, or it
//!   is no longer a member).
//! - `least_open`: the available member with the fewest open tickets; ties go to the first
//!   tied member after the last one assigned (member order, wrapping), so equal loads
//!   take turns instead of always landing on the first member.
//! - `skills`: available members scored by whether their skills name the ticket's category
//!   and its language (both beat one beats none, case-insensitive); among the best
//!   scored, the fewest open tickets, ties as for `least_open`. When nobody's skills
//!   match, this is exactly `least_open` over the available members.

use chrono::{DateTime, Utc};

use super::calendar::Calendar;

/// How a team hands out tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    RoundRobin,
    LeastOpen,
    Skills,
}

impl Strategy {
    pub const NAMES: &'static str = "round_robin, least_open or skills";

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::LeastOpen => "least_open",
            Strategy::Skills => "skills",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "round_robin" => Ok(Strategy::RoundRobin),
            "least_open" => Ok(Strategy::LeastOpen),
            "skills" => Ok(Strategy::Skills),
            _ => Err(format!(
                "{s:?} is not a strategy; expected {}",
                Strategy::NAMES
            )),
        }
    }
}

/// One `[[team]]`.
#[derive(Debug, Clone)]
pub struct Team {
    pub name: String,
    /// Agent names, in the order round robin follows.
    pub members: Vec<String>,
    pub lead: Option<String>,
    pub strategy: Strategy,
}

/// What routing needs to know about one agent now.
#[derive(Debug, Clone)]
pub struct AgentAvailability<'a> {
    pub name: &'a str,
    /// Marked away (holiday, sick, `#away`).
    pub away: bool,
    /// Working hours; `None`: always available.
    pub hours: Option<&'a Calendar>,
    pub skills: &'a [String],
    pub open_tickets: i64,
}

/// One routing question.
#[derive(Debug, Clone)]
pub struct RouteInput<'a> {
    pub team: &'a Team,
    /// Availability of the agents (members and others; others are ignored).
    pub agents: &'a [AgentAvailability<'a>],
    /// The member the team's last ticket went to: the round-robin cursor.
    pub last_assigned: Option<&'a str>,
    pub category: Option<&'a str>,
    pub language: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Agent(String),
    /// Nobody can take it now; `lead` is whom to tell.
    Nobody {
        lead: Option<String>,
        why: String,
    },
}

/// Not away, and inside working hours if there are any.
pub fn is_available(a: &AgentAvailability, now: DateTime<Utc>) -> bool {
    !a.away && a.hours.is_none_or(|h| h.is_open(now))
}

/// The team's members in turn order: starting after `last_assigned` (wrapping), or at the
/// first member when there is no cursor or it is not a member.
fn turn_order<'t>(team: &'t Team, last_assigned: Option<&str>) -> impl Iterator<Item = &'t String> {
    let n = team.members.len();
    let start = last_assigned
        .and_then(|l| team.members.iter().position(|m| m.eq_ignore_ascii_case(l)))
        .map_or(0, |i| i + 1);
    team.members.iter().cycle().skip(start).take(n)
}

fn has_skill(skills: &[String], want: Option<&str>) -> bool {
    want.is_some_and(|w| skills.iter().any(|s| s.eq_ignore_ascii_case(w)))
}

/// Picks the member for a ticket (see the module documentation for the strategies).
pub fn route(input: &RouteInput) -> Route {
    let team = input.team;
    // Available members in turn order; the position breaks ties.
    let available: Vec<&AgentAvailability> = turn_order(team, input.last_assigned)
        .filter_map(|m| input.agents.iter().find(|a| a.name.eq_ignore_ascii_case(m)))
        .filter(|a| is_available(a, input.now))
        .collect();
    let chosen = match team.strategy {
        Strategy::RoundRobin => available.first().copied(),
        Strategy::LeastOpen => available
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|(i, a)| (a.open_tickets, *i))
            .map(|(_, a)| a),
        Strategy::Skills => available
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|(i, a)| {
                let score = u8::from(has_skill(a.skills, input.category))
                    + u8::from(has_skill(a.skills, input.language));
                (std::cmp::Reverse(score), a.open_tickets, *i)
            })
            .map(|(_, a)| a),
    };
    match chosen {
        Some(a) => Route::Agent(a.name.to_string()),
        None => Route::Nobody {
            lead: team.lead.clone(),
            why: if team.members.is_empty() {
                format!("team {:?} has no members", team.name)
            } else {
                format!(
                    "no member of team {:?} is available (away or outside working hours)",
                    team.name
                )
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::rules::calendar::Hours;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn team(strategy: Strategy) -> Team {
        Team {
            name: "billing".into(),
            members: vec!["alice".into(), "bob".into(), "dave".into()],
            lead: Some("carol".into()),
            strategy,
        }
    }

    fn agent<'a>(name: &'a str, open: i64, skills: &'a [String]) -> AgentAvailability<'a> {
        AgentAvailability {
            name,
            away: false,
            hours: None,
            skills,
            open_tickets: open,
        }
    }

    fn ask<'a>(
        team: &'a Team,
        agents: &'a [AgentAvailability<'a>],
        last: Option<&'a str>,
    ) -> RouteInput<'a> {
        RouteInput {
            team,
            agents,
            last_assigned: last,
            category: None,
            language: None,
            now: utc("2027-03-01T02:00:00Z"),
        }
    }

    fn to(name: &str) -> Route {
        Route::Agent(name.into())
    }

    #[test]
    fn round_robin_follows_member_order_and_wraps() {
        let t = team(Strategy::RoundRobin);
        let agents = [
            agent("alice", 5, &[]),
            agent("bob", 0, &[]),
            agent("dave", 1, &[]),
        ];
        assert_eq!(route(&ask(&t, &agents, None)), to("alice"));
        assert_eq!(route(&ask(&t, &agents, Some("alice"))), to("bob"));
        assert_eq!(route(&ask(&t, &agents, Some("dave"))), to("alice"));
        assert_eq!(route(&ask(&t, &agents, Some("someone-gone"))), to("alice"));
        // bob away: alice → dave.
        let mut agents = agents;
        agents[1].away = true;
        assert_eq!(route(&ask(&t, &agents, Some("alice"))), to("dave"));
    }

    #[test]
    fn least_open_takes_the_lightest_and_ties_take_turns() {
        let t = team(Strategy::LeastOpen);
        let agents = [
            agent("alice", 2, &[]),
            agent("bob", 1, &[]),
            agent("dave", 1, &[]),
        ];
        assert_eq!(route(&ask(&t, &agents, None)), to("bob"));
        assert_eq!(route(&ask(&t, &agents, Some("bob"))), to("dave"));
        assert_eq!(route(&ask(&t, &agents, Some("dave"))), to("bob"));
    }

    #[test]
    fn skills_prefer_both_then_one_then_fall_back_to_least_open() {
        let t = team(Strategy::Skills);
        let refund_zh = vec!["refund".to_string(), "ZH".to_string()];
        let refund = vec!["refund".to_string()];
        let none: Vec<String> = vec![];
        let agents = [
            agent("alice", 9, &refund_zh),
            agent("bob", 0, &refund),
            agent("dave", 0, &none),
        ];
        let mut q = ask(&t, &agents, None);
        q.category = Some("refund");
        q.language = Some("zh");
        assert_eq!(route(&q), to("alice"));
        q.language = Some("en");
        // alice and bob match one; bob has fewer open tickets.
        assert_eq!(route(&q), to("bob"));
        q.category = Some("shipping");
        // Nobody matches: least open among all available, ties in turn order.
        assert_eq!(route(&q), to("bob"));
        q.last_assigned = Some("bob");
        assert_eq!(route(&q), to("dave"));
    }

    #[test]
    fn nobody_available_names_the_lead() {
        let t = team(Strategy::RoundRobin);
        let mut agents = [agent("alice", 0, &[]), agent("bob", 0, &[])];
        agents[0].away = true;
        agents[1].away = true;
        // dave has no availability at all: unavailable.
        match route(&ask(&t, &agents, None)) {
            Route::Nobody { lead, why } => {
                assert_eq!(lead.as_deref(), Some("carol"));
                assert!(why.contains("billing"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn working_hours_in_the_agents_zone() {
        let shanghai = Calendar::working_hours(
            "alice",
            TimeZone::get("Asia/Shanghai").unwrap(),
            Hours::parse("Mon-Fri 09:00-18:00").unwrap(),
        );
        let mut alice = agent("alice", 0, &[]);
        alice.hours = Some(&shanghai);
        // Monday 2027-03-01: 02:00 UTC is 10:00 in Shanghai, 12:00 UTC is 20:00.
        assert!(is_available(&alice, utc("2027-03-01T02:00:00Z")));
        assert!(!is_available(&alice, utc("2027-03-01T12:00:00Z")));
        let t = team(Strategy::LeastOpen);
        let agents = [alice, agent("bob", 7, &[])];
        let mut q = ask(&t, &agents, None);
        assert_eq!(route(&q), to("alice"));
        q.now = utc("2027-03-01T12:00:00Z");
        assert_eq!(route(&q), to("bob"));
    }

    #[test]
    fn strategies_parse() {
        assert_eq!("Round_Robin".parse(), Ok(Strategy::RoundRobin));
        assert_eq!("skills".parse(), Ok(Strategy::Skills));
        assert!(
            "random"
                .parse::<Strategy>()
                .unwrap_err()
                .contains("least_open")
        );
    }
}
