//! What the local runner shows: one line per tick and a summary at the end.

use std::fmt;
use std::time::Duration;

use crate::functions::counters::Counters;

/// A function's counters read back from the closing log line of its answer (the same line
/// Application Insights receives); zeros when the answer has none.
pub fn counters<C: Counters + Default>(response: &serde_json::Value) -> C {
    let logs = response["Logs"].as_array().into_iter().flatten();
    C::from_logs(logs.filter_map(serde_json::Value::as_str)).unwrap_or_default()
}

/// What the sink did with one tick's events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkCounts {
    pub written: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Failed EventHubSink invocations (each one a line on screen, each retried or the last).
    pub failures: u64,
    /// Events of batches the retry policy gave up on (the host would checkpoint past them).
    pub dropped: u64,
    /// Events left unwritten because the run stopped first (drain deadline, second signal, or a
    /// failure another attempt would repeat).
    pub unwritten: u64,
}

impl std::ops::AddAssign for SinkCounts {
    fn add_assign(&mut self, other: Self) {
        self.written += other.written;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.failures += other.failures;
        self.dropped += other.dropped;
        self.unwritten += other.unwritten;
    }
}

/// One tick, from the fetch to the last batch written.
#[derive(Debug, Default, Clone, Copy)]
pub struct TickLine {
    pub tick: u64,
    pub fetched: u64,
    pub published: u64,
    pub sink: SinkCounts,
    pub fetch: Duration,
    pub end_to_end: Duration,
}

impl fmt::Display for TickLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tick {:>3} | fetched {:>5} | published {:>5} | written {:>5} | duplicates skipped {:>5} | rejected {:>3} | fetch {:>5} ms | end-to-end {:>5} ms",
            self.tick,
            self.fetched,
            self.published,
            self.sink.written,
            self.sink.duplicates,
            self.sink.rejected,
            self.fetch.as_millis(),
            self.end_to_end.as_millis(),
        )?;
        if self.sink.failures > 0 {
            write!(f, " | sink failures {}", self.sink.failures)?;
        }
        if self.sink.dropped > 0 {
            write!(f, " | DROPPED {}", self.sink.dropped)?;
        }
        if self.sink.unwritten > 0 {
            write!(f, " | NOT WRITTEN {}", self.sink.unwritten)?;
        }
        Ok(())
    }
}

/// The whole run.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub ticks: u64,
    pub failed_ticks: u64,
    pub fetched: u64,
    pub published: u64,
    pub sink: SinkCounts,
    pub elapsed: Duration,
    /// The failure that stopped the run at once (the first, if two came together).
    pub stopped_by: Option<String>,
    /// The last failure of an attempt at events that were then not written (an abandoned batch
    /// that never got an answer has none: it never replaces a failure).
    pub last_loss: Option<String>,
    /// The last failed tick's failure.
    pub last_failed_tick: Option<String>,
}

impl Summary {
    /// Keeps the reason events were not written for the verdict (the output may be read from a
    /// file, without the lines that went before): a failure another attempt would repeat, or the
    /// last failed attempt at events then given up or left at the stop. `None` (a batch abandoned
    /// before it got an answer) keeps what is known.
    pub fn note(&mut self, failure: Option<String>, permanent: bool) {
        let Some(failure) = failure else {
            return;
        };
        if permanent {
            self.stopped_by.get_or_insert(failure);
        } else {
            self.last_loss = Some(failure);
        }
    }

    /// A failed tick: shown on its line and named by the verdict when every tick failed, but no
    /// reason events were not written (it fetched none), unless another attempt would repeat it.
    pub fn tick_failed(&mut self, reason: String, permanent: bool) {
        self.failed_ticks += 1;
        if permanent {
            self.note(Some(reason.clone()), true);
        }
        self.last_failed_tick = Some(reason);
    }

    pub fn add(&mut self, line: &TickLine) {
        self.ticks += 1;
        self.fetched += line.fetched;
        self.published += line.published;
        self.sink += line.sink;
    }

    /// Whether a failure another attempt would repeat stopped the run.
    pub fn permanent(&self) -> bool {
        self.stopped_by.is_some()
    }

    /// Fetched events that were not written: given up by the retry policy or left at the stop.
    pub fn not_written(&self) -> u64 {
        self.sink.dropped + self.sink.unwritten
    }

    /// Whether the run did its job: no failure another attempt would repeat, at least one tick
    /// that fetched, and everything fetched written (or kept as a duplicate or a reject). A script
    /// reads it as the exit code.
    pub fn succeeded(&self) -> bool {
        !self.permanent() && self.ticks > 0 && self.not_written() == 0
    }

    /// The closing sentence, after the summary line: where the rows are, or why not all are,
    /// with the reason itself (the output may be read from a file, without what went before).
    /// It names no row it did not write.
    pub fn verdict(&self, destination: &str) -> String {
        let not_written = self.not_written();
        let lost = match (self.sink.dropped, self.sink.unwritten) {
            (0, _) => "left unwritten at the stop".to_owned(),
            (_, 0) => "given up by the retry policy".to_owned(),
            (dropped, unwritten) => {
                format!("{dropped} given up by the retry policy, {unwritten} left at the stop")
            }
        };
        let written = match self.sink.written {
            0 => "No rows were written".to_owned(),
            rows => format!("The {rows} rows written are in {destination}"),
        };
        if let Some(reason) = &self.stopped_by {
            let also = match not_written {
                0 => String::new(),
                n => format!(" {n} fetched events were not written."),
            };
            format!(
                "Stopped at once by a failure another attempt would repeat: {reason}.{also} {written}."
            )
        } else if not_written > 0 {
            let reason = match &self.last_loss {
                Some(reason) => format!("the last failure: {reason}"),
                None => "no attempt at them had failed".into(),
            };
            format!("Not written: {not_written} fetched events ({lost}; {reason}). {written}.")
        } else if self.ticks == 0 {
            let reason = self
                .last_failed_tick
                .as_deref()
                .unwrap_or("no failure was reported");
            format!("No rows were written: every tick failed; the last: {reason}.")
        } else if self.sink.written + self.sink.duplicates == 0 {
            format!(
                "No rows were written: every fetched event was rejected (the rejects table in {destination} says why)."
            )
        } else {
            format!("Rows are in {destination}.")
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Summary: {} ticks ({} failed), fetched {}, published {}, written {}, duplicates skipped {}, rejected {}, sink failures {}, dropped {}, not written {}, in {:.1} s",
            self.ticks + self.failed_ticks,
            self.failed_ticks,
            self.fetched,
            self.published,
            self.sink.written,
            self.sink.duplicates,
            self.sink.rejected,
            self.sink.failures,
            self.sink.dropped,
            self.sink.unwritten,
            self.elapsed.as_secs_f64(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::counters::EventHubSinkCounters;
    use serde_json::json;

    #[test]
    fn counters_are_read_from_the_closing_log_line() {
        let response = json!({"Logs": [
            "Rejected event. reason_code=not_json partition=0 rows_written=9",
            "Invocation finished. function=EventHubSink events_in=3 rows_written=2 duplicates=1 rejects=0 lag_ms=5 partition=0 retry=0 elapsed_ms=1"
        ]});
        let counters: EventHubSinkCounters = counters(&response);
        assert_eq!(counters.rows_written, 2, "only the closing line counts");
        assert_eq!(counters.duplicates, 1);
    }

    fn summary(ticks: u64, failed_ticks: u64, sink: SinkCounts) -> Summary {
        Summary {
            ticks,
            failed_ticks,
            sink,
            ..Default::default()
        }
    }

    #[test]
    fn a_run_that_wrote_everything_succeeds_and_says_where_the_rows_are() {
        let run = summary(
            2,
            1,
            SinkCounts {
                written: 4,
                duplicates: 4,
                ..Default::default()
            },
        );
        assert!(run.succeeded(), "one failed tick of two is weather");
        assert_eq!(
            run.verdict("the SQLite file x.db"),
            "Rows are in the SQLite file x.db."
        );
    }

    #[test]
    fn a_run_whose_every_tick_failed_fails_and_claims_no_rows() {
        let mut run = summary(0, 1, SinkCounts::default());
        run.last_failed_tick = Some("TimerFetch: CoinCap answered HTTP 503".into());
        assert!(!run.succeeded());
        let verdict = run.verdict("the SQLite file x.db");
        assert_eq!(
            verdict,
            "No rows were written: every tick failed; the last: TimerFetch: CoinCap answered HTTP 503."
        );
    }

    #[test]
    fn a_run_that_left_events_unwritten_fails_and_counts_them() {
        let mut run = summary(
            1,
            0,
            SinkCounts {
                unwritten: 4,
                failures: 2,
                ..Default::default()
            },
        );
        run.note(Some("EventHubSink: cannot reach h:1433".into()), false);
        assert!(!run.succeeded());
        assert_eq!(
            run.verdict("database coincap on h:1433"),
            "Not written: 4 fetched events (left unwritten at the stop; the last failure: EventHubSink: cannot reach h:1433). No rows were written."
        );
        let mut run = summary(
            2,
            0,
            SinkCounts {
                written: 4,
                dropped: 4,
                ..Default::default()
            },
        );
        run.note(Some("EventHubSink: disk full".into()), false);
        assert_eq!(
            run.verdict("the SQLite file x.db"),
            "Not written: 4 fetched events (given up by the retry policy; the last failure: EventHubSink: disk full). The 4 rows written are in the SQLite file x.db."
        );
    }

    #[test]
    fn the_failure_that_kept_events_unwritten_is_named_whatever_came_after_it() {
        let mut run = summary(
            2,
            0,
            SinkCounts {
                unwritten: 8,
                failures: 3,
                ..Default::default()
            },
        );
        run.note(Some("EventHubSink: cannot reach h:1433".into()), false);
        // The batch queued behind it, abandoned before it was tried, and a tick that failed.
        run.note(None, false);
        run.tick_failed("TimerFetch: CoinCap answered HTTP 503".into(), false);
        assert_eq!(run.failed_ticks, 1);
        assert!(!run.succeeded());
        assert_eq!(
            run.verdict("database coincap on h:1433"),
            "Not written: 8 fetched events (left unwritten at the stop; the last failure: EventHubSink: cannot reach h:1433). No rows were written."
        );
    }

    #[test]
    fn events_abandoned_before_any_attempt_failed_are_said_so() {
        let mut run = summary(
            1,
            0,
            SinkCounts {
                unwritten: 4,
                ..Default::default()
            },
        );
        run.note(None, false);
        assert_eq!(
            run.verdict("the SQLite file x.db"),
            "Not written: 4 fetched events (left unwritten at the stop; no attempt at them had failed). No rows were written."
        );
    }

    #[test]
    fn a_permanent_failure_fails_the_run_even_when_nothing_was_left() {
        let mut run = summary(0, 1, SinkCounts::default());
        run.note(Some("TimerFetch: CoinCap refused the API key".into()), true);
        run.note(Some("EventHubSink: later".into()), true);
        run.note(Some("EventHubSink: a loss".into()), false);
        assert!(!run.succeeded());
        assert_eq!(
            run.verdict("the SQLite file x.db"),
            "Stopped at once by a failure another attempt would repeat: TimerFetch: CoinCap refused the API key. No rows were written."
        );
    }

    #[test]
    fn every_word_of_the_summary_and_the_tick_line_is_explained_in_docs_pipeline() {
        let docs = include_str!("../../docs/pipeline.md");
        let summary = summary(1, 0, SinkCounts::default()).to_string();
        let counted = summary.strip_prefix("Summary: ").unwrap();
        let line = TickLine {
            sink: SinkCounts {
                failures: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .to_string();
        let words = counted
            .split(", ")
            .chain(line.split(" | ").skip(1))
            .map(|part| {
                let word: Vec<&str> = part
                    .split_whitespace()
                    .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
                    .collect();
                word.join(" ")
            })
            .filter(|word| !word.is_empty() && word != "in s");
        for word in words {
            let word = match word.as_str() {
                "ticks failed)" => "ticks (N failed)".to_owned(),
                "fetch ms" => "fetch ... ms".to_owned(),
                "end-to-end ms" => "end-to-end ... ms".to_owned(),
                _ => word,
            };
            assert!(
                docs.contains(&format!("`{word}`")),
                "docs/pipeline.md explains `{word}`"
            );
        }
        assert!(docs.contains("`in N s`"));
    }

    #[test]
    fn an_answer_without_a_closing_line_counts_nothing() {
        let counters: EventHubSinkCounters = counters(&json!({"Logs": []}));
        assert_eq!(counters, EventHubSinkCounters::default());
    }
}
