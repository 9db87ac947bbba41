//! Text forms more than one layer writes: an excerpt of a long text for a log line or a reason,
//! and the millisecond timestamp form (`2026-05-01T12:00:00.123`) that SQLite, `CAST(... AS
//! datetime)` and the host's enqueued times all read.

use std::fmt;

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};

/// The first `max` characters of `text`, with `...` when it was cut.
pub fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Displays an instant as `2026-05-01T12:00:00.123` (UTC, milliseconds, no zone).
#[derive(Debug, Clone, Copy)]
pub struct Millis(pub DateTime<Utc>);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand rather than with a chrono format string, which is parsed on every call (a
        // batch prints two per row).
        let at = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.timestamp_subsec_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary() {
        assert_eq!(excerpt("héllo", 2), "hé...");
        assert_eq!(excerpt("héllo", 5), "héllo");
        assert_eq!(excerpt("", 3), "");
    }

    #[test]
    fn instants_print_with_milliseconds_and_no_zone() {
        let at = DateTime::from_timestamp_millis(1_680_191_532_004).unwrap();
        assert_eq!(Millis(at).to_string(), "2023-03-30T15:52:12.004");
        assert_eq!(
            Millis(at).to_string(),
            at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
        );
    }
}
