//! When the local runner fires TimerFetch: a six-field NCRONTAB schedule (seconds first, as the
//! timer trigger reads it) or a fixed interval (`--every`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

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
    fn an_interval_adds_up() {
        let schedule = Schedule::Every(Duration::from_secs(10));
        assert_eq!(
            schedule.next_after(at("2026-05-01T12:00:00Z")),
            Some(at("2026-05-01T12:00:10Z"))
        );
    }
}
