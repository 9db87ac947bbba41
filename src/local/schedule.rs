//! When the local runner fires TimerFetch: a six-field NCRONTAB schedule (seconds first, as the
//! timer trigger reads it) or a fixed interval (`--every`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Counting a month starts here, 2026-01-01T00:00:00Z, a Thursday, or on one of the six days
/// after: a month may start on any weekday, and one starting on a Monday has five Mondays.
const MONTH_START: i64 = 1_767_225_600;
/// The weekdays a month may start on.
const WEEKDAYS: usize = 7;
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

/// Fires counted by day.
struct Daily {
    per_day: Vec<u64>,
    shortest: Duration,
    longest: Duration,
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

    /// How often it fires in a month of `days` days, at most (in the month, of those starting on
    /// each weekday, that holds the most fires: a budget that fits it fits every month): the
    /// calls, and the shortest and longest wait between two fires. A schedule firing more than
    /// 10,000 times a day is counted over one day and multiplied (every second is 2.7 million
    /// calls a month either way).
    pub fn month(&self, days: u64) -> Fires {
        if let Self::Every(interval) = self {
            let interval = (*interval).max(Duration::from_millis(1));
            // A month that starts with a fire holds the most.
            let month = Duration::from_secs(days * 86_400).as_millis();
            return Fires {
                calls: u64::try_from(month.div_ceil(interval.as_millis())).unwrap_or(u64::MAX),
                shortest: interval,
                longest: interval,
            };
        }
        let start = DateTime::<Utc>::from_timestamp(MONTH_START, 0).unwrap_or_default();
        let one_day = self.daily(start, 1);
        if one_day.per_day[0] > DENSE {
            return Fires {
                calls: one_day.per_day[0] * days,
                shortest: one_day.shortest,
                longest: one_day.longest,
            };
        }
        let days = usize::try_from(days).unwrap_or(usize::MAX / 2);
        let span = self.daily(start, days + WEEKDAYS - 1);
        let calls = (0..WEEKDAYS)
            .map(|first| span.per_day[first..first + days].iter().sum())
            .max()
            .unwrap_or(0);
        if span.per_day.iter().sum::<u64>() < 2 {
            // One fire (or none) in the period: the wait is the month itself, or longer.
            let month = Duration::from_secs(u64::try_from(days).unwrap_or(u64::MAX) * 86_400);
            return Fires {
                calls,
                shortest: month,
                longest: month,
            };
        }
        Fires {
            calls,
            shortest: span.shortest,
            longest: span.longest,
        }
    }

    /// Its fires in the `days` days from `start`, counted by day, and the shortest and longest
    /// wait between two of them.
    fn daily(&self, start: DateTime<Utc>, days: usize) -> Daily {
        let mut daily = Daily {
            per_day: vec![0; days],
            shortest: Duration::MAX,
            longest: Duration::ZERO,
        };
        let end =
            start + chrono::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400_000));
        let mut last: Option<DateTime<Utc>> = None;
        // The fire at `start` itself counts.
        let mut next = self.next_after(start - chrono::Duration::seconds(1));
        while let Some(at) = next.filter(|at| *at < end) {
            let day = usize::try_from((at - start).num_days()).unwrap_or(0);
            if let Some(count) = daily.per_day.get_mut(day) {
                *count += 1;
            }
            if let Some(gap) = last.and_then(|last| (at - last).to_std().ok()) {
                daily.shortest = daily.shortest.min(gap);
                daily.longest = daily.longest.max(gap);
            }
            last = Some(at);
            next = self.next_after(at);
        }
        daily
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
    fn a_weekday_schedule_is_counted_for_the_month_that_holds_the_most_of_its_days() {
        let month = |pattern: &str| Schedule::ncrontab(pattern).unwrap().month(31);
        // A 31-day month starting on a Monday has 5 Mondays, 5 Tuesdays and 5 Wednesdays.
        let mondays = month("0 0 6 * * 1");
        assert_eq!(mondays.calls, 5);
        assert_eq!(mondays.shortest, Duration::from_secs(7 * 86_400));
        assert_eq!(mondays.longest, Duration::from_secs(7 * 86_400));
        // Monday to Friday: 23 weekdays at most (a month starting on a Monday, Tuesday or
        // Wednesday: 4 full weeks and 3 weekdays).
        let weekdays = month("0 0 9 * * 1-5");
        assert_eq!(weekdays.calls, 23);
        assert_eq!(weekdays.shortest, Duration::from_secs(86_400));
        assert_eq!(weekdays.longest, Duration::from_secs(3 * 86_400));
        assert_eq!(month("0 0 9 * * 1-5,0").calls, 27, "Sundays to Fridays");
        // A day of the month fires once in any month, whichever weekday it starts on.
        assert_eq!(month("0 0 0 1 * *").calls, 1);
        assert_eq!(
            Schedule::Every(Duration::from_secs(7 * 86_400))
                .month(31)
                .calls,
            5
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
