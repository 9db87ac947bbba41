//! `WarehouseTime`: an instant SQL Server's `datetime` can hold.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use super::RejectReason;
use crate::text::Millis;

/// A UTC instant with millisecond precision inside SQL Server's `datetime` range
/// (1753-01-01 to 9999-12-31).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WarehouseTime(DateTime<Utc>);

impl WarehouseTime {
    pub fn from_epoch_ms(ms: i64) -> Result<Self, RejectReason> {
        let earliest = NaiveDate::from_ymd_opt(1753, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());
        let latest = NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 997))
            .map(|d| d.and_utc());
        match (DateTime::from_timestamp_millis(ms), earliest, latest) {
            (Some(at), Some(earliest), Some(latest)) if at >= earliest && at <= latest => {
                Ok(Self(at))
            }
            _ => Err(RejectReason::TimestampOutOfRange(ms)),
        }
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }

    pub fn epoch_ms(self) -> i64 {
        self.0.timestamp_millis()
    }
}

impl fmt::Display for WarehouseTime {
    /// `2026-05-01T12:00:00.123`: the form both SQLite and `CAST(... AS datetime)` read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Millis(self.0).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_s_range_is_accepted_and_nothing_outside_it() {
        let first = WarehouseTime::from_epoch_ms(-6_847_804_800_000).unwrap();
        assert_eq!(first.to_string(), "1753-01-01T00:00:00.000");
        assert_eq!(
            WarehouseTime::from_epoch_ms(-6_847_804_800_001),
            Err(RejectReason::TimestampOutOfRange(-6_847_804_800_001))
        );
        let last = WarehouseTime::from_epoch_ms(253_402_300_799_997).unwrap();
        assert_eq!(last.to_string(), "9999-12-31T23:59:59.997");
        assert!(WarehouseTime::from_epoch_ms(253_402_300_799_998).is_err());
    }

    #[test]
    fn it_prints_milliseconds_without_a_zone() {
        let at = WarehouseTime::from_epoch_ms(1_680_191_532_104).unwrap();
        assert_eq!(at.to_string(), "2023-03-30T15:52:12.104");
        assert_eq!(at.epoch_ms(), 1_680_191_532_104);
    }
}
