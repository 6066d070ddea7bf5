//! Business hours: a weekly schedule in a time zone, with holidays and make-up working
//! days, and the arithmetic SLA timers need on it (is it open now, how much business time
//! lies between two instants, when will so much business time have passed).
//!
//! Pure: instants come in and go out as `chrono::DateTime<Utc>` like everywhere else in
//! the crate; the time-zone work is done by `jiff` (bundled tz database), so daylight
//! saving changes are handled by the zone rules, not by adding 24 hours.
//!
//! Business time is real elapsed time inside open hours: an office open 01:00-04:00 on
//! the night the clocks spring forward is open for two hours, not three. Sub-second parts
//! of instants are dropped (the arithmetic is in whole seconds).
//!
//! # The `hours` grammar
//!
//! ```text
//! hours  = "always" | "24/7" | group { group }
//! group  = day { day } range { range }
//! day    = NAME | NAME "-" NAME          Mon Tue Wed Thu Fri Sat Sun, or the full
//!                                         names, any case; a span may wrap (Fri-Mon)
//! range  = HH:MM "-" HH:MM                start before end; the end may be 24:00
//! ```
//!
//! Commas, semicolons and spaces all separate tokens; a day name after a time range starts
//! a new group. So `"Mon-Fri 09:00-18:00"`, `"Mon-Thu 09:00-18:00, Fri 09:00-15:00"`,
//! `"Sat 10:00-14:00"` and `"Mon,Wed,Fri 08:00-12:00 13:00-17:00"` are all valid. A range
//! cannot run past midnight (write `Mon 22:00-24:00, Tue 00:00-06:00`), and ranges of the
//! same day may not overlap.
//!
//! # Holidays and make-up days
//!
//! A holiday is closed all day. A make-up working day (`workdays`, e.g. a Saturday worked
//! in exchange for a bridge day) is open with the hours of the first day of the week,
//! Monday first, that has any hours: with `Mon-Fri 09:00-18:00`, Monday's hours. A date
//! listed as both is a holiday (configuration validation rejects that).

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone as _, Utc};
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, civil};

/// How many days the arithmetic walks at most (about ten years): a guard against a
/// calendar that is never open, which configuration validation also rejects.
pub const MAX_DAYS: i64 = 3660;

/// Minutes in a day; a range may end at 24:00.
const DAY_MINUTES: u16 = 24 * 60;

/// A weekly schedule: for each weekday (Monday first) the open ranges, in minutes from
/// local midnight, sorted and not overlapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    days: [Vec<(u16, u16)>; 7],
}

const DAY_NAMES: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

fn day_index(s: &str) -> Option<usize> {
    let s = s.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|(short, long)| s == *short || s == *long)
}

fn parse_clock(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

fn fmt_clock(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

impl Hours {
    /// Open around the clock, every day.
    pub fn always() -> Hours {
        Hours {
            days: std::array::from_fn(|_| vec![(0, DAY_MINUTES)]),
        }
    }

    /// Parses the grammar in the module documentation; the error says what is wrong in
    /// words meant for the person editing the configuration.
    pub fn parse(s: &str) -> Result<Hours, String> {
        let text = s.trim();
        if text.is_empty() {
            return Err("hours are empty; write e.g. \"Mon-Fri 09:00-18:00\"".to_string());
        }
        if text.eq_ignore_ascii_case("always") || text == "24/7" {
            return Ok(Hours::always());
        }
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        // The days of the group being read, and whether it has a range yet.
        let mut group: Vec<usize> = Vec::new();
        let mut group_has_range = false;
        let tokens = text
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|t| !t.is_empty());
        for token in tokens {
            if token.starts_with(|c: char| c.is_ascii_alphabetic()) {
                if group_has_range {
                    group.clear();
                    group_has_range = false;
                }
                group.extend(parse_days(token)?);
            } else if token.starts_with(|c: char| c.is_ascii_digit()) {
                if group.is_empty() {
                    return Err(format!(
                        "time range {token:?} has no day before it; write e.g. \"Mon-Fri {token}\""
                    ));
                }
                let (start, end) = parse_range(token)?;
                for &d in &group {
                    if let Some(v) = days.get_mut(d) {
                        v.push((start, end));
                    }
                }
                group_has_range = true;
            } else {
                return Err(format!(
                    "{token:?} is neither a day (Mon, Tue-Fri...) nor a time range (09:00-18:00)"
                ));
            }
        }
        if !group_has_range {
            return Err(format!(
                "hours {text:?} end with days but no time range; write e.g. \"Sat 10:00-14:00\""
            ));
        }
        for (d, ranges) in days.iter_mut().enumerate() {
            ranges.sort_unstable();
            for pair in ranges.windows(2) {
                if let [a, b] = pair
                    && b.0 < a.1
                {
                    let name = DAY_NAMES.get(d).map(|n| n.0).unwrap_or("?");
                    return Err(format!(
                        "on {name} the ranges {}-{} and {}-{} overlap",
                        fmt_clock(a.0),
                        fmt_clock(a.1),
                        fmt_clock(b.0),
                        fmt_clock(b.1)
                    ));
                }
            }
        }
        Ok(Hours { days })
    }

    /// No open minute in the whole week.
    pub fn is_empty(&self) -> bool {
        self.days.iter().all(Vec::is_empty)
    }

    /// The open ranges of a weekday (Monday = 0).
    fn of_day(&self, index: usize) -> &[(u16, u16)] {
        self.days.get(index).map(Vec::as_slice).unwrap_or_default()
    }

    /// The ranges a make-up working day gets: those of the first day with any.
    fn workday_ranges(&self) -> &[(u16, u16)] {
        self.days
            .iter()
            .find(|d| !d.is_empty())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

fn parse_days(token: &str) -> Result<Vec<usize>, String> {
    let bad = |name: &str| {
        format!(
            "{name:?} is not a day; use Mon, Tue, Wed, Thu, Fri, Sat, Sun or a span like Mon-Fri"
        )
    };
    match token.split_once('-') {
        None => day_index(token).map(|d| vec![d]).ok_or_else(|| bad(token)),
        Some((a, b)) => {
            let a = day_index(a).ok_or_else(|| bad(a))?;
            let b = day_index(b).ok_or_else(|| bad(b))?;
            let len = (b + 7 - a) % 7 + 1;
            Ok((0..len).map(|i| (a + i) % 7).collect())
        }
    }
}

fn parse_range(token: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{token:?} is not a time range like 09:00-18:00");
    let (a, b) = token.split_once('-').ok_or_else(bad)?;
    let start = parse_clock(a).ok_or_else(bad)?;
    let end = parse_clock(b).ok_or_else(bad)?;
    if start >= end {
        return Err(format!(
            "in {token:?} the start is not before the end; a range cannot pass midnight \
             (write e.g. \"Mon 22:00-24:00, Tue 00:00-06:00\")"
        ));
    }
    Ok((start, end))
}

/// Unix seconds of a chrono instant (sub-second part dropped).
fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// A chrono instant from unix seconds, clamped into chrono's range.
fn instant(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap_or(if s < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// Business hours in a time zone, with holidays and make-up working days. Also what an
/// agent's working hours are (no holidays, the agent's name).
#[derive(Debug, Clone)]
pub struct Calendar {
    pub name: String,
    tz: TimeZone,
    hours: Hours,
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
}

impl Calendar {
    pub fn new(
        name: impl Into<String>,
        tz: TimeZone,
        hours: Hours,
        holidays: BTreeSet<Date>,
        workdays: BTreeSet<Date>,
    ) -> Calendar {
        Calendar {
            name: name.into(),
            tz,
            hours,
            holidays,
            workdays,
        }
    }

    /// Working hours: a schedule in a zone, no holidays.
    pub fn working_hours(name: impl Into<String>, tz: TimeZone, hours: Hours) -> Calendar {
        Calendar::new(name, tz, hours, BTreeSet::new(), BTreeSet::new())
    }

    /// Around the clock, in UTC: business time is plain elapsed time.
    pub fn always() -> Calendar {
        Calendar::working_hours("always", TimeZone::UTC, Hours::always())
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    pub fn hours(&self) -> &Hours {
        &self.hours
    }

    /// The local date of a unix second in this calendar's zone.
    fn local_date(&self, s: i64) -> Option<Date> {
        let ts = Timestamp::from_second(s).ok()?;
        Some(self.tz.to_datetime(ts).date())
    }

    /// The instant of a local wall-clock time (minutes from the date's midnight; 1440 is
    /// the next midnight). A time skipped by a DST change maps to the instant after the
    /// gap, a repeated one to its first occurrence (jiff's "compatible" rule).
    fn local_instant(&self, date: Date, minute: u16) -> Option<i64> {
        let dt: civil::DateTime = if minute >= DAY_MINUTES {
            date.tomorrow().ok()?.at(0, 0, 0, 0)
        } else {
            date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0)
        };
        self.tz
            .to_ambiguous_timestamp(dt)
            .compatible()
            .ok()
            .map(Timestamp::as_second)
    }

    /// The open intervals of one local date, as half-open unix-second intervals.
    fn open_intervals(&self, date: Date) -> Vec<(i64, i64)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let ranges = if self.workdays.contains(&date) {
            self.hours.workday_ranges()
        } else {
            weekday_index(date.weekday()).map_or(&[][..], |i| self.hours.of_day(i))
        };
        ranges
            .iter()
            .filter_map(|&(a, b)| {
                let a = self.local_instant(date, a)?;
                let b = self.local_instant(date, b)?;
                (a < b).then_some((a, b))
            })
            .collect()
    }

    /// Whether the calendar is open at this instant.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let s = secs(t);
        self.local_date(s)
            .is_some_and(|d| self.open_intervals(d).iter().any(|&(a, b)| a <= s && s < b))
    }

    /// Business seconds in `[from, to)`; 0 when `to <= from`. Spans longer than
    /// [`MAX_DAYS`] count their first `MAX_DAYS` days only.
    pub fn business_seconds(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        self.business_seconds_unix(secs(from), secs(to))
    }

    pub(crate) fn business_seconds_unix(&self, from: i64, to: i64) -> i64 {
        if to <= from {
            return 0;
        }
        let (Some(mut date), Some(last)) = (self.local_date(from), self.local_date(to)) else {
            return 0;
        };
        let mut total = 0i64;
        for _ in 0..MAX_DAYS {
            for (a, b) in self.open_intervals(date) {
                let (a, b) = (a.max(from), b.min(to));
                if a < b {
                    total = total.saturating_add(b - a);
                }
            }
            if date >= last {
                break;
            }
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        total
    }

    /// The instant at which `seconds` of business time have passed since `from`. Zero or
    /// less: `from` itself. When the time runs out exactly at a closing time, that closing
    /// time (Friday 18:00, not Monday 09:00). A calendar that stays closed for
    /// [`MAX_DAYS`] gives `from` plus `MAX_DAYS` days: never, in practice.
    pub fn add_business(&self, from: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
        instant(self.add_business_unix(secs(from), seconds))
    }

    pub(crate) fn add_business_unix(&self, from: i64, seconds: i64) -> i64 {
        let never = from.saturating_add(MAX_DAYS * 86_400);
        if seconds <= 0 {
            return from;
        }
        let Some(mut date) = self.local_date(from) else {
            return never;
        };
        let mut left = seconds;
        for _ in 0..MAX_DAYS {
            for (a, b) in self.open_intervals(date) {
                let a = a.max(from);
                if a >= b {
                    continue;
                }
                if left <= b - a {
                    return a + left;
                }
                left -= b - a;
            }
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        never
    }
}

fn weekday_index(w: Weekday) -> Option<usize> {
    usize::try_from(w.to_monday_zero_offset()).ok()
}

/// Parses a duration like `8h`, `30m`, `3d`, `90s` or `1h30m` into seconds. Units (d, h,
/// m, s) come largest first, each at most once; no sign, no spaces inside, no bare number.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("a duration is empty; write e.g. \"8h\", \"30m\" or \"1h30m\"".to_string());
    }
    let bad =
        || format!("{text:?} is not a duration; write e.g. \"8h\", \"30m\", \"3d\" or \"1h30m\"");
    let units = [
        ('w', 604_800i64),
        ('d', 86_400),
        ('h', 3_600),
        ('m', 60),
        ('s', 1),
    ];
    let mut total: i64 = 0;
    let mut number = String::new();
    // The index in `units` the next unit must be at or after.
    let mut next_unit = 0usize;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let Some(pos) = units.iter().position(|(u, _)| *u == c.to_ascii_lowercase()) else {
            return Err(bad());
        };
        if number.is_empty() || pos < next_unit {
            return Err(bad());
        }
        let n: i64 = number
            .parse()
            .map_err(|_| format!("{text:?} is too long a duration"))?;
        let factor = units.get(pos).map_or(1, |u| u.1);
        total = n
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
        number.clear();
        next_unit = pos + 1;
    }
    if !number.is_empty() {
        return Err(format!(
            "{text:?} has no unit; write e.g. \"{text}m\" or \"{text}h\""
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn office() -> Calendar {
        Calendar::new(
            "office",
            TimeZone::get("Asia/Shanghai").unwrap(),
            Hours::parse("Mon-Fri 09:00-18:00").unwrap(),
            [date("2027-01-01")].into(),
            [date("2027-02-20")].into(),
        )
    }

    #[test]
    fn the_grammar_accepts_groups_lists_and_split_days() {
        let h = Hours::parse("Mon-Thu 09:00-18:00, Fri 09:00-15:00").unwrap();
        assert_eq!(h.of_day(0), &[(540, 1080)]);
        assert_eq!(h.of_day(4), &[(540, 900)]);
        assert!(h.of_day(5).is_empty());
        let h = Hours::parse("Mon,Wed,Fri 08:00-12:00 13:00-17:00").unwrap();
        assert_eq!(h.of_day(2), &[(480, 720), (780, 1020)]);
        assert!(h.of_day(1).is_empty());
        let h = Hours::parse("sat 10:00-14:00; Sunday 00:00-24:00").unwrap();
        assert_eq!(h.of_day(5), &[(600, 840)]);
        assert_eq!(h.of_day(6), &[(0, 1440)]);
        let h = Hours::parse("Fri-Mon 9:00-17:00").unwrap();
        assert_eq!(h.of_day(0), &[(540, 1020)]);
        assert!(h.of_day(1).is_empty());
        assert_eq!(Hours::parse("24/7").unwrap(), Hours::always());
    }

    #[test]
    fn the_grammar_rejects_bad_input_in_words() {
        for (bad, says) in [
            ("", "empty"),
            ("Mon-Fri", "no time range"),
            ("09:00-18:00", "no day before it"),
            ("Mun 09:00-18:00", "not a day"),
            ("Mon 9-18", "not a time range"),
            ("Mon 18:00-09:00", "cannot pass midnight"),
            ("Mon 09:00-25:00", "not a time range"),
            ("Mon 09:00-12:00 11:00-13:00", "overlap"),
            ("Mon 09:60-10:00", "not a time range"),
            ("Mon *", "neither a day"),
        ] {
            let err = Hours::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("8h"), Ok(8 * 3600));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("3d"), Ok(3 * 86_400));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration(" 1d2h3m4s "), Ok(86_400 + 7200 + 180 + 4));
        for bad in [
            "",
            "5",
            "-1h",
            "5x",
            "h",
            "1m1h",
            "1h1h",
            "1.5h",
            "99999999999999999999s",
            "9999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn open_and_closed_in_the_office_zone() {
        let c = office();
        // Monday 2027-03-01 10:00 in Shanghai is 02:00 UTC.
        assert!(c.is_open(utc("2027-03-01T02:00:00Z")));
        assert!(!c.is_open(utc("2027-03-01T10:00:00Z"))); // 18:00 local: closed
        assert!(c.is_open(utc("2027-03-01T09:59:59Z")));
        assert!(!c.is_open(utc("2027-03-06T03:00:00Z"))); // Saturday
        assert!(!c.is_open(utc("2027-01-01T03:00:00Z"))); // holiday (a Friday)
        assert!(c.is_open(utc("2027-02-20T03:00:00Z"))); // make-up Saturday
    }

    #[test]
    fn friday_afternoon_plus_eight_hours_is_monday_afternoon() {
        let c = office();
        // Fri 2027-03-05 17:00 Shanghai = 09:00 UTC; due Mon 16:00 Shanghai = 08:00 UTC.
        let due = c.add_business(utc("2027-03-05T09:00:00Z"), 8 * 3600);
        assert_eq!(due, utc("2027-03-08T08:00:00Z"));
        assert_eq!(
            c.business_seconds(utc("2027-03-05T09:00:00Z"), due),
            8 * 3600
        );
        // Running out exactly at closing time gives the closing time.
        assert_eq!(
            c.add_business(utc("2027-03-05T09:00:00Z"), 3600),
            utc("2027-03-05T10:00:00Z")
        );
        // Starting while closed begins at the next opening.
        assert_eq!(
            c.add_business(utc("2027-03-06T00:00:00Z"), 60),
            utc("2027-03-08T01:01:00Z")
        );
    }

    #[test]
    fn holidays_are_skipped_and_make_up_days_counted() {
        let c = office();
        // Thu 2026-12-31 17:00 local + 2h: Fri 2027-01-01 is a holiday → Mon 04 10:00.
        assert_eq!(
            c.add_business(utc("2026-12-31T09:00:00Z"), 2 * 3600),
            utc("2027-01-04T02:00:00Z")
        );
        // Fri 2027-02-19 17:00 local + 2h: Saturday 20 is worked (Monday's hours) → 10:00.
        assert_eq!(
            c.add_business(utc("2027-02-19T09:00:00Z"), 2 * 3600),
            utc("2027-02-20T02:00:00Z")
        );
        // A whole week with the make-up Saturday: 6 days of 9 hours.
        assert_eq!(
            c.business_seconds(utc("2027-02-14T16:00:00Z"), utc("2027-02-21T16:00:00Z")),
            6 * 9 * 3600
        );
    }

    #[test]
    fn business_seconds_over_a_weekend_and_reversed() {
        let c = office();
        // Fri 17:00 → Mon 10:00 local: 1h + 1h.
        assert_eq!(
            c.business_seconds(utc("2027-03-05T09:00:00Z"), utc("2027-03-08T02:00:00Z")),
            2 * 3600
        );
        assert_eq!(
            c.business_seconds(utc("2027-03-08T02:00:00Z"), utc("2027-03-05T09:00:00Z")),
            0
        );
    }

    #[test]
    fn around_the_clock_is_plain_time() {
        let c = Calendar::always();
        let t = utc("2027-03-05T09:00:00Z");
        assert!(c.is_open(t));
        assert_eq!(
            c.add_business(t, 3 * 86_400 + 5),
            utc("2027-03-08T09:00:05Z")
        );
        assert_eq!(
            c.business_seconds(t, utc("2027-03-08T09:00:05Z")),
            3 * 86_400 + 5
        );
    }

    #[test]
    fn daylight_saving_in_new_york() {
        let tz = TimeZone::get("America/New_York").unwrap();
        let c = Calendar::working_hours(
            "ny",
            tz.clone(),
            Hours::parse("Mon-Sun 00:00-24:00").unwrap(),
        );
        // Sunday 2027-03-14 the clocks jump from 02:00 to 03:00: the day has 23 hours.
        assert_eq!(
            c.business_seconds(utc("2027-03-14T05:00:00Z"), utc("2027-03-15T04:00:00Z")),
            23 * 3600
        );
        let nine_to_five =
            Calendar::working_hours("ny", tz, Hours::parse("Mon-Fri 09:00-17:00").unwrap());
        // Fri 2027-03-12 16:00 EST (21:00 UTC) + 2h → Mon 15 10:00 EDT (14:00 UTC).
        assert_eq!(
            nine_to_five.add_business(utc("2027-03-12T21:00:00Z"), 2 * 3600),
            utc("2027-03-15T14:00:00Z")
        );
        assert!(nine_to_five.is_open(utc("2027-03-15T13:00:00Z"))); // 09:00 EDT
        assert!(!nine_to_five.is_open(utc("2027-03-12T13:00:00Z"))); // 08:00 EST
    }

    #[test]
    fn a_calendar_that_never_opens_ends_the_walk() {
        let mut h = Hours::always();
        h.days = Default::default();
        assert!(h.is_empty());
        let c = Calendar::working_hours("never", TimeZone::UTC, h);
        let t = utc("2027-03-05T09:00:00Z");
        assert!(c.add_business(t, 60) > utc("2036-01-01T00:00:00Z"));
        assert_eq!(c.business_seconds(t, utc("2100-01-01T00:00:00Z")), 0);
    }
}
