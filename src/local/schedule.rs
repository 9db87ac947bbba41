//! When the local runner fires TimerFetch: a six-field NCRONTAB schedule (seconds first, as the
//! timer trigger reads it) or a fixed interval (`--every`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Counting a month starts here: 2026-01-01T00:00:00Z, a Thursday (any fixed start will do; a
/// weekly schedule fires 4 or 5 times in a month either way).
const MONTH_START: i64 = 1_767_225_600;
/// Above this many fires a day, a month is counted as that day times its days.
const DENSE: u64 = 10_000;

/// How often a schedule fires in a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fires {
    pub calls: u64,
    /// The shortest wait between two fires.
    pub shortest: Duration,
    /// The longest wait between two fires.
    pub longest: Duration,
}

#[derive(Debug, Clone)]
pub enum Schedule {
    Cron { pattern: String, cron: Box<Cron> },
    Every(Duration),
}

impl Schedule {
    /// Parses NCRONTAB: six fields `{second} {minute} {hour} {day} {month} {day-of-week}`, where a
    /// day must match both day fields (as NCrontab does).
    pub fn ncrontab(pattern: &str) -> Result<Self, String> {
        if pattern.split_whitespace().count() != 6 {
            return Err(format!(
                "{pattern:?} is not a six-field NCRONTAB expression ({{second}} {{minute}} {{hour}} {{day}} {{month}} {{day-of-week}}, e.g. \"0 */5 * * * *\")"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .dom_and_dow(true)
            .build()
            .parse(pattern)
            .map_err(|e| format!("{pattern:?} is not a valid NCRONTAB expression: {e}"))?;
        Ok(Self::Cron {
            pattern: pattern.to_owned(),
            cron: Box::new(cron),
        })
    }

    /// The next firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Cron { cron, .. } => cron.find_next_occurrence(&after, false).ok(),
            Self::Every(interval) => chrono::Duration::from_std(*interval)
                .ok()
                .map(|step| after + step),
        }
    }

    /// How often it fires in a month of `days` days: the calls, and the shortest and longest
    /// wait between two fires. A schedule firing more than 10,000 times a day is counted over
    /// one day and multiplied (every second is 2.7 million calls a month either way).
    pub fn month(&self, days: u64) -> Fires {
        if let Self::Every(interval) = self {
            let interval = (*interval).max(Duration::from_millis(1));
            return Fires {
                calls: u64::try_from(
                    Duration::from_secs(days * 86_400).as_millis() / interval.as_millis(),
                )
                .unwrap_or(u64::MAX),
                shortest: interval,
                longest: interval,
            };
        }
        let start = DateTime::<Utc>::from_timestamp(MONTH_START, 0).unwrap_or_default();
        let one_day = self.fires_between(start, start + chrono::Duration::days(1));
        if one_day.calls > DENSE {
            return Fires {
                calls: one_day.calls * days,
                ..one_day
            };
        }
        let days = i64::try_from(days).unwrap_or(i64::MAX / 86_400_000);
        self.fires_between(start, start + chrono::Duration::days(days))
    }

    fn fires_between(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Fires {
        let mut fires = Fires {
            calls: 0,
            shortest: Duration::MAX,
            longest: Duration::ZERO,
        };
        let mut last: Option<DateTime<Utc>> = None;
        // The fire at `start` itself counts.
        let mut next = self.next_after(start - chrono::Duration::seconds(1));
        while let Some(at) = next.filter(|at| *at < end) {
            fires.calls += 1;
            if let Some(gap) = last.and_then(|last| (at - last).to_std().ok()) {
                fires.shortest = fires.shortest.min(gap);
                fires.longest = fires.longest.max(gap);
            }
            last = Some(at);
            next = self.next_after(at);
        }
        if fires.calls < 2 {
            // One fire (or none) in the period: the wait is the period itself, or longer.
            let period = (end - start).to_std().unwrap_or(Duration::MAX);
            fires.shortest = period;
            fires.longest = period;
        }
        fires
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Cron { pattern, .. } => format!("on the NCRONTAB schedule \"{pattern}\""),
            Self::Every(interval) => format!("every {}", humantime::format_duration(*interval)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn the_default_schedule_fires_every_five_minutes_on_the_minute() {
        let schedule = Schedule::ncrontab("0 */5 * * * *").unwrap();
        assert_eq!(
            schedule.next_after(at("2026-05-01T12:03:27Z")),
            Some(at("2026-05-01T12:05:00Z"))
        );
        assert_eq!(
            schedule.next_after(at("2026-05-01T12:05:00Z")),
            Some(at("2026-05-01T12:10:00Z"))
        );
    }

    #[test]
    fn seconds_come_first() {
        let schedule = Schedule::ncrontab("*/10 * * * * *").unwrap();
        assert_eq!(
            schedule.next_after(at("2026-05-01T12:00:01Z")),
            Some(at("2026-05-01T12:00:10Z"))
        );
    }

    #[test]
    fn day_of_week_zero_is_sunday() {
        let schedule = Schedule::ncrontab("0 0 9 * * 0").unwrap();
        // 2026-05-01 is a Friday; the next Sunday is the 3rd.
        assert_eq!(
            schedule.next_after(at("2026-05-01T00:00:00Z")),
            Some(at("2026-05-03T09:00:00Z"))
        );
    }

    #[test]
    fn five_field_cron_is_refused_with_the_expected_form() {
        let error = Schedule::ncrontab("*/5 * * * *").unwrap_err();
        assert!(error.contains("six-field"), "{error}");
        assert!(Schedule::ncrontab("0 */5 * * * nope").is_err());
    }

    #[test]
    fn a_month_of_fires_counts_calls_and_the_waits_between_them() {
        let month = |pattern: &str| Schedule::ncrontab(pattern).unwrap().month(31);
        let five = month("0 */5 * * * *");
        assert_eq!(five.calls, 8928);
        assert_eq!(five.shortest, Duration::from_secs(300));
        assert_eq!(five.longest, Duration::from_secs(300));
        assert_eq!(month("0 0 * * * *").calls, 744);
        assert_eq!(month("0 0 6 * * *").calls, 31);
        let twice = month("0 0 9,17 * * *");
        assert_eq!(twice.calls, 62);
        assert_eq!(twice.shortest, Duration::from_secs(8 * 3600));
        assert_eq!(twice.longest, Duration::from_secs(16 * 3600));
        assert_eq!(month("* * * * * *").calls, 31 * 86_400);
        let every = Schedule::Every(Duration::from_secs(30)).month(31);
        assert_eq!(every.calls, 31 * 2880);
        assert_eq!(every.shortest, Duration::from_secs(30));
        assert_eq!(
            Schedule::Every(Duration::from_millis(200)).month(31).calls,
            31 * 432_000
        );
    }

    #[test]
    fn an_interval_adds_up() {
        let schedule = Schedule::Every(Duration::from_secs(10));
        assert_eq!(
            schedule.next_after(at("2026-05-01T12:00:00Z")),
            Some(at("2026-05-01T12:00:10Z"))
        );
    }
}
