//! What each function counts, as typed structs. `Display` writes the stable `key=value` pairs of
//! the closing log line (`Invocation finished. function=EventHubSink events_in=3 ...`), which the
//! monitoring queries read; [`Counters::from_line`] reads them back (the local runner's progress,
//! the tests). A key is a field name, spelled once, in the macro below.

use std::collections::HashMap;
use std::fmt;

/// Start of every successful invocation's closing line.
pub const FINISHED: &str = "Invocation finished.";

/// A value in a closing line: written as text, `none` for a missing one.
pub trait CounterValue: Sized {
    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    fn read(text: &str) -> Option<Self>;
}

macro_rules! plain_counter_value {
    ($($ty:ty),*) => {$(
        impl CounterValue for $ty {
            fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{self}")
            }
            fn read(text: &str) -> Option<Self> {
                text.parse().ok()
            }
        }
    )*};
}
plain_counter_value!(u16, u32, u64, i64, String);

impl<T: CounterValue> CounterValue for Option<T> {
    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Some(value) => value.write(f),
            None => f.write_str("none"),
        }
    }
    fn read(text: &str) -> Option<Self> {
        match text {
            "none" => Some(None),
            text => T::read(text).map(Some),
        }
    }
}

/// A function's counters: its closing line's pairs, in a fixed order.
pub trait Counters: fmt::Display + Sized {
    /// The keys, in the order `Display` writes them.
    const KEYS: &'static [&'static str];

    /// Reads the counters back from a closing line; `None` when a key is missing or unreadable.
    fn from_line(line: &str) -> Option<Self>;

    /// Reads the counters from the closing line among an answer's `Logs`.
    fn from_logs<'a>(logs: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        logs.into_iter()
            .find(|line| line.starts_with(FINISHED))
            .and_then(Self::from_line)
    }
}

/// The `key=value` pairs of a closing line (values hold no spaces: they are numbers, ids, `none`).
pub fn pairs(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .collect()
}

macro_rules! counters {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name { $($(#[$field_meta])* pub $field: $ty,)* }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut separator = "";
                $(
                    write!(f, "{separator}{}=", stringify!($field))?;
                    CounterValue::write(&self.$field, f)?;
                    separator = " ";
                )*
                let _ = separator;
                Ok(())
            }
        }

        impl Counters for $name {
            const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn from_line(line: &str) -> Option<Self> {
                let pairs = pairs(line);
                Some(Self { $($field: CounterValue::read(pairs.get(stringify!($field))?)?,)* })
            }
        }
    };
}

counters! {
    /// TimerFetch: what it published and how CoinCap answered.
    pub struct TimerFetchCounters {
        pub events_out: u64,
        /// The HTTP status of CoinCap's last answer.
        pub coincap_status: u16,
        /// Retries the fetch took.
        pub retries: u32,
        /// The page's `timestamp` (epoch ms), stamped on every event.
        pub coincap_timestamp: i64,
        /// The size of CoinCap's answer in bytes, which `credits` is computed from.
        pub answer_bytes: u64,
        /// What the answer reportedly cost: 1 credit per 2.5 KB, at least 1.
        pub credits: u64,
    }
}

counters! {
    /// EventHubSink: what a batch became.
    pub struct EventHubSinkCounters {
        pub events_in: u64,
        pub rows_written: u64,
        /// Rows already stored or repeated inside the batch, so not written again.
        pub duplicates: u64,
        /// Poison events stored in the rejects table by this invocation (those already stored,
        /// by an earlier delivery of the same events, are not counted again).
        pub rejects: u64,
        /// Now minus the batch's oldest enqueued time (`none` for an empty batch).
        pub lag_ms: Option<u64>,
        pub partition: Option<String>,
        /// The host's retry count of this delivery.
        pub retry: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_print_as_stable_key_value_pairs_and_read_back() {
        let counters = EventHubSinkCounters {
            events_in: 3,
            rows_written: 2,
            duplicates: 1,
            rejects: 0,
            lag_ms: None,
            partition: Some("7".into()),
            retry: 0,
        };
        let text = counters.to_string();
        assert_eq!(
            text,
            "events_in=3 rows_written=2 duplicates=1 rejects=0 lag_ms=none partition=7 retry=0"
        );
        let line = format!("{FINISHED} function=EventHubSink {text} elapsed_ms=4");
        assert_eq!(EventHubSinkCounters::from_line(&line), Some(counters));
    }

    #[test]
    fn the_closing_line_is_found_among_the_logs() {
        let logs = [
            "Rejected event. reason_code=not_json partition=0",
            "Invocation finished. function=TimerFetch events_out=4 coincap_status=200 retries=1 coincap_timestamp=1747000000000 answer_bytes=1720 credits=1 elapsed_ms=3",
        ];
        let counters = TimerFetchCounters::from_logs(logs).unwrap();
        assert_eq!(counters.events_out, 4);
        assert_eq!(counters.retries, 1);
    }

    #[test]
    fn a_line_missing_a_key_reads_as_nothing() {
        assert_eq!(
            TimerFetchCounters::from_line("Invocation finished. events_out=4"),
            None
        );
        assert_eq!(
            TimerFetchCounters::from_line(
                "events_out=x coincap_status=200 retries=0 coincap_timestamp=1"
            ),
            None
        );
    }

    #[test]
    fn keys_are_the_fields_in_order() {
        assert_eq!(
            TimerFetchCounters::KEYS,
            [
                "events_out",
                "coincap_status",
                "retries",
                "coincap_timestamp",
                "answer_bytes",
                "credits"
            ]
        );
        assert_eq!(EventHubSinkCounters::KEYS.len(), 7);
    }
}
