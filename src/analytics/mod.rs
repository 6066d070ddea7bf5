//! Analytics: how the desk is doing, per agent, team, category, channel and tier.
//!
//! The event log is the history; reading it for every question would not scale, so an
//! event follower ([`follower`]) keeps one row of figures per ticket (`ticket_facts`,
//! computed by the pure [`facts`] from the ticket's timeline): its response times, its
//! resolution, reopenings, SLA breaches, the bot's part and the customer's rating. A
//! statistic is then one pass over the facts of a period (`store::analytics`), summed
//! into a [`figures::Tally`] per group and read as [`figures::Figures`]. Agents' figures
//! are always shown beside the team's.
//!
//! Times count business seconds where the ticket's SLA policy has a calendar, and leave
//! out the time a ticket waited on the customer (pending), as the SLA timers do.
//!
//! This module decides what the numbers mean; it does not draw them or serve them.

pub mod charts;
pub mod digest;
pub mod facts;
pub mod figures;
pub mod follower;
pub mod rating;
pub mod report;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// What tickets are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Agent,
    Team,
    Category,
    Channel,
    Tier,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Agent => "agent",
            GroupBy::Team => "team",
            GroupBy::Category => "category",
            GroupBy::Channel => "channel",
            GroupBy::Tier => "tier",
        }
    }
}

/// Width of the arrival buckets the store counts (a quarter hour: every time zone's
/// offset is a multiple of it, so each bucket falls in one local hour).
pub const ARRIVAL_BUCKET_S: i64 = 900;

/// Arrivals by local weekday (Monday first) and hour, from counts per quarter-hour
/// bucket (bucket index = unix seconds / [`ARRIVAL_BUCKET_S`]).
pub fn heatmap(buckets: &[(i64, i64)], tz: &TimeZone) -> [[i64; 24]; 7] {
    let mut grid = [[0i64; 24]; 7];
    for &(bucket, n) in buckets {
        let Ok(ts) = Timestamp::from_second(bucket.saturating_mul(ARRIVAL_BUCKET_S)) else {
            continue;
        };
        let local = tz.to_datetime(ts);
        let day = local.weekday().to_monday_zero_offset() as usize;
        let hour = local.hour() as usize;
        if let Some(cell) = grid.get_mut(day).and_then(|row| row.get_mut(hour)) {
            *cell += n;
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_in_the_team_zone() {
        // 2027-03-01 is a Monday. 23:30 UTC Sunday 28 Feb is 07:30 Monday in Shanghai.
        let sunday_2330 = 1_803_859_200 - 1800;
        let monday_0915 = 1_803_859_200 + 9 * 3600 + 900;
        let buckets = [
            (sunday_2330 / ARRIVAL_BUCKET_S, 3),
            (monday_0915 / ARRIVAL_BUCKET_S, 2),
        ];
        let utc = heatmap(&buckets, &TimeZone::UTC);
        assert_eq!(utc[6][23], 3, "Sunday 23:00 UTC");
        assert_eq!(utc[0][9], 2);
        let sh = heatmap(&buckets, &TimeZone::get("Asia/Shanghai").unwrap());
        assert_eq!(sh[0][7], 3, "Monday 07:00 in Shanghai");
        assert_eq!(sh[0][17], 2);
        assert_eq!(sh.iter().flatten().sum::<i64>(), 5);
        // Kathmandu is UTC+5:45: 09:15 UTC is 15:00 local.
        let ktm = heatmap(&buckets, &TimeZone::get("Asia/Kathmandu").unwrap());
        assert_eq!(ktm[0][15], 2);
    }
}
