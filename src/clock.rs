//! Time comes in through a [`Clock`] so that windows, caps and retry schedules are testable.

use chrono::{DateTime, SecondsFormat, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still at a given instant (tests, imports with a fixed date).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The one timestamp format stored in the database: RFC 3339, UTC, microseconds, `Z`.
/// Fixed width, so text comparison orders instants correctly.
pub fn db_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// [`db_time`] of a unix second (out of range: the epoch).
pub fn db_time_unix(s: i64) -> String {
    db_time(DateTime::from_timestamp(s, 0).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_time_sorts_as_text() {
        let a = DateTime::from_timestamp(1_000_000_000, 5_000).unwrap();
        let b = DateTime::from_timestamp(1_000_000_001, 0).unwrap();
        assert!(db_time(a) < db_time(b));
        assert_eq!(db_time(a), "2001-09-09T01:46:40.000005Z");
    }
}
