//! From ticket facts to the figures people read: the sums one period and one group of
//! tickets give ([`Tally`]), and what they mean ([`Figures`]).
//!
//! A period `[start, end)` counts three groups of tickets:
//! - those **created** in it: `tickets_new`, response times, resolution and reopen rates,
//!   SLA, bot and satisfaction figures (each ticket's as it stands now);
//! - those **resolved** in it (their latest resolution): `tickets_resolved`, resolution
//!   time and first-contact resolution;
//! - those **reopened** in it (their latest reopening): `tickets_reopened`.
//!
//! The store sums the same things in SQL (`store::analytics`); [`Tally::add_facts`] is the
//! definition, and a test holds the two together.

use serde::Serialize;

use super::facts::TicketFacts;

/// What one group of tickets adds up to over one period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub tickets_new: i64,
    pub tickets_reopened: i64,
    pub tickets_resolved: i64,
    /// Of the new tickets: resolved now, ever resolved, reopened at least once.
    pub new_resolved: i64,
    pub new_ever_resolved: i64,
    pub new_reopened: i64,
    /// Of the resolved tickets: resolved at first contact.
    pub resolved_fcr: i64,
    pub first_response_s: Vec<i64>,
    pub next_response_s: Vec<i64>,
    /// Of the resolved tickets.
    pub resolution_s: Vec<i64>,
    pub sla_tickets: i64,
    pub sla_breached_tickets: i64,
    pub sla_breaches: i64,
    pub bot_answered: i64,
    pub bot_deflected: i64,
    pub bot_handoff: i64,
    pub corrected: i64,
    /// Ratings 1 to 5, counted.
    pub ratings: [i64; 5],
}

impl Tally {
    /// Adds one ticket's facts as the definition says: what it counts for in `[start, end)`
    /// (unix seconds).
    pub fn add_facts(&mut self, f: &TicketFacts, start: i64, end: i64) {
        if f.merged {
            return;
        }
        let within = |t: i64| start <= t && t < end;
        if within(f.created_at) {
            self.tickets_new += 1;
            self.new_resolved += i64::from(f.resolved_at.is_some());
            self.new_ever_resolved += i64::from(f.ever_resolved);
            self.new_reopened += i64::from(f.reopens > 0);
            self.first_response_s.extend(f.first_response_s);
            self.next_response_s.extend(&f.next_response_s);
            if f.has_sla {
                self.sla_tickets += 1;
                self.sla_breached_tickets += i64::from(f.sla_breaches > 0);
                self.sla_breaches += f.sla_breaches;
            }
            self.bot_answered += i64::from(f.bot_answered);
            self.bot_deflected += i64::from(f.bot_deflected);
            self.bot_handoff += i64::from(f.bot_handoff);
            self.corrected += i64::from(f.corrected);
            if let Some(slot) = f
                .rating
                .and_then(|r| usize::try_from(r - 1).ok())
                .and_then(|i| self.ratings.get_mut(i))
            {
                *slot += 1;
            }
        }
        if f.resolved_at.is_some_and(within) {
            self.tickets_resolved += 1;
            self.resolved_fcr += i64::from(f.fcr);
            self.resolution_s.extend(f.resolution_s);
        }
        if f.last_reopened_at.is_some_and(within) {
            self.tickets_reopened += 1;
        }
    }

    /// Adds another group's sums (the team from its agents, a range from its periods).
    pub fn merge(&mut self, o: &Tally) {
        self.tickets_new += o.tickets_new;
        self.tickets_reopened += o.tickets_reopened;
        self.tickets_resolved += o.tickets_resolved;
        self.new_resolved += o.new_resolved;
        self.new_ever_resolved += o.new_ever_resolved;
        self.new_reopened += o.new_reopened;
        self.resolved_fcr += o.resolved_fcr;
        self.first_response_s.extend(&o.first_response_s);
        self.next_response_s.extend(&o.next_response_s);
        self.resolution_s.extend(&o.resolution_s);
        self.sla_tickets += o.sla_tickets;
        self.sla_breached_tickets += o.sla_breached_tickets;
        self.sla_breaches += o.sla_breaches;
        self.bot_answered += o.bot_answered;
        self.bot_deflected += o.bot_deflected;
        self.bot_handoff += o.bot_handoff;
        self.corrected += o.corrected;
        for (a, b) in self.ratings.iter_mut().zip(o.ratings) {
            *a += b;
        }
    }

    /// What the sums mean.
    pub fn figures(&self) -> Figures {
        let (fr_med, fr_p90) = median_p90(&self.first_response_s);
        let (nr_med, nr_p90) = median_p90(&self.next_response_s);
        let (res_med, res_p90) = median_p90(&self.resolution_s);
        let rated: i64 = self.ratings.iter().sum();
        let weighted: i64 = self
            .ratings
            .iter()
            .zip(1i64..)
            .map(|(n, score)| n * score)
            .sum();
        Figures {
            tickets_new: self.tickets_new,
            tickets_reopened: self.tickets_reopened,
            tickets_resolved: self.tickets_resolved,
            first_response_median_s: fr_med,
            first_response_p90_s: fr_p90,
            next_response_median_s: nr_med,
            next_response_p90_s: nr_p90,
            resolution_median_s: res_med,
            resolution_p90_s: res_p90,
            resolution_rate: rate(self.new_resolved, self.tickets_new),
            fcr_rate: rate(self.resolved_fcr, self.tickets_resolved),
            reopen_rate: rate(self.new_reopened, self.new_ever_resolved),
            sla_tickets: self.sla_tickets,
            sla_breached_tickets: self.sla_breached_tickets,
            sla_breaches: self.sla_breaches,
            sla_compliance: rate(
                self.sla_tickets - self.sla_breached_tickets,
                self.sla_tickets,
            ),
            bot_answered: self.bot_answered,
            bot_deflection_rate: rate(self.bot_deflected, self.bot_answered),
            bot_handoff_rate: rate(self.bot_handoff, self.bot_answered),
            correction_rate: rate(self.corrected, self.tickets_new),
            satisfaction_count: rated,
            satisfaction_avg: (rated > 0).then(|| round4(weighted as f64 / rated as f64)),
            satisfaction: self.ratings,
        }
    }
}

/// The figures of one group over one period. Times are seconds (business seconds where
/// the ticket's SLA policy has a calendar); rates are fractions from 0 to 1, `null` when
/// nothing was there to count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub tickets_new: i64,
    pub tickets_reopened: i64,
    pub tickets_resolved: i64,
    pub first_response_median_s: Option<i64>,
    pub first_response_p90_s: Option<i64>,
    pub next_response_median_s: Option<i64>,
    pub next_response_p90_s: Option<i64>,
    pub resolution_median_s: Option<i64>,
    pub resolution_p90_s: Option<i64>,
    /// Of the tickets created in the period, the share resolved now.
    pub resolution_rate: Option<f64>,
    /// Of the tickets resolved in the period, the share with one agent answer and no
    /// reopening.
    pub fcr_rate: Option<f64>,
    /// Of the tickets created in the period and resolved at least once, the share
    /// reopened.
    pub reopen_rate: Option<f64>,
    pub sla_tickets: i64,
    pub sla_breached_tickets: i64,
    pub sla_breaches: i64,
    /// Of the tickets under an SLA policy, the share never breached.
    pub sla_compliance: Option<f64>,
    pub bot_answered: i64,
    /// Of the bot's answers, the share that closed the ticket without a person.
    pub bot_deflection_rate: Option<f64>,
    /// Of the bot's answers, the share handed to a person afterwards.
    pub bot_handoff_rate: Option<f64>,
    /// Of the new tickets, the share whose category an agent corrected (`#wrong`).
    pub correction_rate: Option<f64>,
    pub satisfaction_count: i64,
    pub satisfaction_avg: Option<f64>,
    /// How many ratings of 1, 2, 3, 4 and 5.
    pub satisfaction: [i64; 5],
}

/// "1h 05m", "3d 4h", "45s".
pub fn human_duration(s: Option<i64>) -> String {
    let Some(s) = s else { return "-".into() };
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {:02}s", s % 60)
    } else {
        format!("{s}s")
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| round4(part as f64 / whole as f64))
}

/// The `p`-quantile (0 to 1) of sorted values, interpolated between the two nearest
/// ranks (what spreadsheets' PERCENTILE and numpy's default do), to the nearest second.
pub fn quantile(sorted: &[i64], p: f64) -> Option<i64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = p.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (*sorted.get(lo)? as f64, *sorted.get(hi)? as f64);
    Some((a + (b - a) * (pos - lo as f64)).round() as i64)
}

/// [`quantile`] of values in any order, by selection (linear time: a year of a big
/// desk's response times is a million values, and several groups are read at once).
pub fn quantile_unsorted(v: &mut [i64], p: f64) -> Option<i64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let pos = p.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = (pos.floor() as usize).min(n - 1);
    let (_, a, right) = v.select_nth_unstable(lo);
    let a = *a as f64;
    let b = right.iter().min().map_or(a, |b| *b as f64);
    Some((a + (b - a) * (pos - lo as f64)).round() as i64)
}

fn median_p90(values: &[i64]) -> (Option<i64>, Option<i64>) {
    let mut v = values.to_vec();
    (
        quantile_unsorted(&mut v, 0.5),
        quantile_unsorted(&mut v, 0.9),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::facts::{TicketState, ticket_facts};

    #[test]
    fn selection_gives_the_sorted_answer() {
        let mut x: u64 = 7;
        for n in [1usize, 2, 3, 10, 101, 1000] {
            let v: Vec<i64> = (0..n)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 40) as i64 % 5000
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_unstable();
            for p in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
                let mut w = v.clone();
                assert_eq!(
                    quantile_unsorted(&mut w, p),
                    quantile(&sorted, p),
                    "n={n} p={p}"
                );
            }
        }
        assert_eq!(quantile_unsorted(&mut [], 0.5), None);
    }

    #[test]
    fn quantiles_interpolate_between_ranks() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.9), Some(7));
        assert_eq!(quantile(&[10, 20, 30, 40], 0.5), Some(25));
        // 0.9 * 9 = 8.1: 90 + 0.1 * 10.
        let v: Vec<i64> = (1..=10).map(|x| x * 10).collect();
        assert_eq!(quantile(&v, 0.9), Some(91));
        assert_eq!(quantile(&v, 0.5), Some(55));
    }

    fn facts(id: i64, created: &str, status: &str, timeline: &[(&str, &str, &str)]) -> TicketFacts {
        let t = TicketState {
            id,
            created_at: chrono::DateTime::parse_from_rfc3339(created)
                .unwrap()
                .with_timezone(&chrono::Utc),
            status: status.into(),
            assignee: Some("alice".into()),
            team: None,
            category: None,
            tier: "standard".into(),
            merged: false,
            has_sla: true,
            rating: None,
        };
        let tl: Vec<(String, String, String)> = timeline
            .iter()
            .map(|(k, d, at)| (k.to_string(), d.to_string(), at.to_string()))
            .collect();
        ticket_facts(&t, &tl, None)
    }

    const REPLY: &str = r#"{"direction":"outbound","kind":"agent_reply","channel":"email"}"#;
    const ASK: &str = r#"{"direction":"inbound","kind":"customer","channel":"email"}"#;
    const RESOLVE: &str = r#"{"from":"open","to":"resolved"}"#;
    const REOPEN: &str = r#"{"from":"resolved","to":"open"}"#;

    /// A seeded week, figures worked out by hand.
    #[test]
    fn a_seeded_week_by_hand() {
        let start = 1_803_859_200; // 2027-03-01T00:00:00Z, a Monday
        let end = start + 7 * 86_400;
        let mut all = vec![
            // 1: answered after 10 min, resolved after 1 h at first contact.
            facts(
                1,
                "2027-03-01T10:00:00Z",
                "resolved",
                &[
                    ("message_added", REPLY, "2027-03-01T10:10:00Z"),
                    ("status_changed", RESOLVE, "2027-03-01T11:00:00Z"),
                ],
            ),
            // 2: answered after 30 min, reopened, answered again 2 h after the customer,
            // resolved the next day (27 h after creation), breached once.
            facts(
                2,
                "2027-03-02T09:00:00Z",
                "resolved",
                &[
                    ("message_added", REPLY, "2027-03-02T09:30:00Z"),
                    ("status_changed", RESOLVE, "2027-03-02T10:00:00Z"),
                    ("status_changed", REOPEN, "2027-03-03T08:00:00Z"),
                    ("message_added", ASK, "2027-03-03T08:00:00Z"),
                    ("sla_breached", "{}", "2027-03-03T09:00:00Z"),
                    ("message_added", REPLY, "2027-03-03T10:00:00Z"),
                    ("status_changed", RESOLVE, "2027-03-03T12:00:00Z"),
                ],
            ),
            // 3: answered after 2 h, still open.
            facts(
                3,
                "2027-03-04T09:00:00Z",
                "open",
                &[("message_added", REPLY, "2027-03-04T11:00:00Z")],
            ),
            // 4: never answered.
            facts(4, "2027-03-05T09:00:00Z", "open", &[]),
            // 5: created the week before, resolved in this one (72 h), one answer.
            facts(
                5,
                "2027-02-26T12:00:00Z",
                "resolved",
                &[
                    ("message_added", REPLY, "2027-02-26T13:00:00Z"),
                    ("status_changed", RESOLVE, "2027-03-01T12:00:00Z"),
                ],
            ),
            // 6: created after the week: nothing.
            facts(
                6,
                "2027-03-08T00:00:00Z",
                "resolved",
                &[
                    ("message_added", REPLY, "2027-03-08T00:05:00Z"),
                    ("status_changed", RESOLVE, "2027-03-08T01:00:00Z"),
                ],
            ),
        ];
        all[2].rating = Some(4);
        all[0].rating = Some(5);
        all[1].rating = Some(2);
        let mut tally = Tally::default();
        for f in &all {
            tally.add_facts(f, start, end);
        }
        let fig = tally.figures();
        assert_eq!(fig.tickets_new, 4);
        assert_eq!(fig.tickets_resolved, 3, "1, 2 and 5");
        assert_eq!(fig.tickets_reopened, 1);
        // First responses 600, 1800, 7200: median 1800; p90 = 1800 + 0.8 * 5400 = 6120.
        assert_eq!(fig.first_response_median_s, Some(1800));
        assert_eq!(fig.first_response_p90_s, Some(6120));
        assert_eq!(fig.next_response_median_s, Some(7200));
        // Resolutions 3600, 27 h = 97200, 72 h = 259200: median 97200;
        // p90 = 97200 + 0.8 * 162000 = 226800.
        assert_eq!(fig.resolution_median_s, Some(97_200));
        assert_eq!(fig.resolution_p90_s, Some(226_800));
        assert_eq!(fig.resolution_rate, Some(0.5), "2 of the 4 new ones");
        assert_eq!(fig.fcr_rate, Some(0.6667), "1 and 5 of 3 resolved");
        assert_eq!(
            fig.reopen_rate,
            Some(0.5),
            "2 of the two ever resolved, 1 and 2"
        );
        assert_eq!(fig.sla_tickets, 4);
        assert_eq!(fig.sla_breaches, 1);
        assert_eq!(fig.sla_compliance, Some(0.75));
        assert_eq!(fig.satisfaction_count, 3);
        assert_eq!(fig.satisfaction, [0, 1, 0, 1, 1]);
        assert_eq!(fig.satisfaction_avg, Some(3.6667));
        assert_eq!(fig.bot_deflection_rate, None, "the bot answered nothing");

        // Split by halves and merged: the same sums.
        let mid = start + 3 * 86_400;
        let (mut a, mut b) = (Tally::default(), Tally::default());
        for f in &all {
            a.add_facts(f, start, mid);
            b.add_facts(f, mid, end);
        }
        a.merge(&b);
        assert_eq!(a.figures(), fig);
    }

    #[test]
    fn merged_tickets_count_nowhere() {
        let mut f = facts(1, "2027-03-01T10:00:00Z", "closed", &[]);
        f.merged = true;
        let mut t = Tally::default();
        t.add_facts(&f, 0, i64::MAX);
        assert_eq!(t, Tally::default());
    }
}
