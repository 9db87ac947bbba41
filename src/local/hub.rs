//! The in-process hub: assigns Event Hubs coordinates to published events, and the sink worker
//! that delivers them to EventHubSink in batches, applying the function's retry policy the way
//! the host does (the batch is "checkpointed" only once the policy is done).

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::mpsc;

use super::app_files::RetryPolicy;
use super::invoke::{Failed, HostClient};
use super::progress::{SinkCounts, Summary, TickLine, counters};
use super::stop::{Backoff, Stop};
use crate::functions::EVENT_HUB_SINK;
use crate::functions::counters::EventHubSinkCounters;
use crate::host::event_hubs::{self, HubEvent, PartitionSource, RetryState};

/// One partition's sequence: offsets grow by body length, sequence numbers by one.
#[derive(Debug, Default)]
pub struct Partition {
    next_sequence_number: i64,
    next_offset: i64,
}

impl Partition {
    pub fn append(&mut self, bodies: Vec<String>) -> Vec<HubEvent> {
        let enqueued_time = Utc::now();
        bodies
            .into_iter()
            .map(|body| {
                let event = HubEvent {
                    offset: self.next_offset,
                    sequence_number: self.next_sequence_number,
                    enqueued_time,
                    body,
                };
                self.next_offset += event.body.len() as i64;
                self.next_sequence_number += 1;
                event
            })
            .collect()
    }
}

/// What flows from the timer side to the sink worker, in order.
#[derive(Debug)]
pub enum HubMessage {
    /// One batch of a tick's events.
    Batch {
        tick: u64,
        events: Vec<HubEvent>,
    },
    TickEnd {
        tick: u64,
        fetched: u64,
        published: u64,
        fetch: Duration,
        started: Instant,
    },
    TickFailed {
        tick: u64,
        failed: Failed,
    },
}

/// How the sink worker reaches EventHubSink.
pub struct SinkTarget {
    pub host: HostClient,
    pub binding: String,
    pub namespace: String,
    pub event_hub: String,
    pub consumer_group: String,
    pub retry: Option<RetryPolicy>,
}

/// Delivers batches until the channel closes (the timer side is done) and everything is written,
/// printing a line per tick, and one per failed attempt naming its tick.
pub async fn sink_worker(
    target: SinkTarget,
    mut messages: mpsc::UnboundedReceiver<HubMessage>,
    stop: Stop,
) -> Summary {
    let mut summary = Summary::default();
    let mut tick_counts = SinkCounts::default();
    while let Some(message) = messages.recv().await {
        match message {
            HubMessage::Batch { tick, events } => {
                let delivered = deliver(&target, tick, &events, &stop).await;
                tick_counts += delivered.counts;
                summary.note(delivered.failure, delivered.permanent);
            }
            HubMessage::TickEnd {
                tick,
                fetched,
                published,
                fetch,
                started,
            } => {
                let line = TickLine {
                    tick,
                    fetched,
                    published,
                    sink: std::mem::take(&mut tick_counts),
                    fetch,
                    end_to_end: started.elapsed(),
                };
                println!("{line}");
                summary.add(&line);
            }
            HubMessage::TickFailed { tick, failed } => {
                let permanent = failed.fault.is_permanent();
                if permanent {
                    println!(
                        "tick {tick:>3} | TimerFetch failed permanently, stopping at once: {failed}"
                    );
                } else {
                    println!("tick {tick:>3} | TimerFetch failed: {failed}");
                }
                summary.tick_failed(format!("TimerFetch: {failed}"), permanent);
            }
        }
    }
    summary
}

/// What became of one batch.
struct Delivered {
    counts: SinkCounts,
    /// The last failure, when the batch was not written (none when it was abandoned before any
    /// attempt failed).
    failure: Option<String>,
    permanent: bool,
}

/// One batch, with the function's retry policy, until it is written, the policy gives up, the
/// run is abandoned (at once, even mid-invocation) or a failure another attempt would repeat
/// stops the run. A stop cuts a pending backoff short: the batch is tried at once, then again
/// and again until the drain deadline ([`Stop::backoff`]).
async fn deliver(target: &SinkTarget, tick: u64, events: &[HubEvent], stop: &Stop) -> Delivered {
    let source = PartitionSource {
        namespace: &target.namespace,
        event_hub: &target.event_hub,
        consumer_group: &target.consumer_group,
        partition_id: "0",
    };
    let lost = events.len() as u64;
    let mut retries: u32 = 0;
    let mut last: Option<Failed> = None;
    let unwritten = |failures: u32, last: Option<Failed>| Delivered {
        counts: SinkCounts {
            unwritten: lost,
            failures: failures.into(),
            ..Default::default()
        },
        failure: last.map(|failed| format!("EventHubSink: {failed}")),
        permanent: false,
    };
    loop {
        if stop.abandoned() {
            return unwritten(retries, last);
        }
        let retry = target.retry.map(|policy| RetryState {
            retry_count: retries,
            max_retry_count: policy.max_retry_count,
        });
        let body = event_hubs::request_body(
            EVENT_HUB_SINK,
            &target.binding,
            &source,
            events,
            Utc::now(),
            retry,
        );
        let answer = tokio::select! {
            answer = target.host.invoke(EVENT_HUB_SINK, &body) => answer,
            () = stop.abandoned_now() => return unwritten(retries, last),
        };
        let failed = match answer {
            Ok(response) => {
                let counters: EventHubSinkCounters = counters(&response);
                return Delivered {
                    counts: SinkCounts {
                        written: counters.rows_written,
                        duplicates: counters.duplicates,
                        rejected: counters.rejects,
                        failures: retries.into(),
                        ..Default::default()
                    },
                    failure: None,
                    permanent: false,
                };
            }
            Err(failed) => failed,
        };
        let failures = retries + 1;
        if failed.fault.is_permanent() {
            println!(
                "tick {tick:>3} | EventHubSink failed permanently, stopping at once: {failed}"
            );
            stop.abandon();
            let mut delivered = unwritten(failures, None);
            delivered.failure = Some(format!("EventHubSink: {failed}"));
            delivered.permanent = true;
            return delivered;
        }
        let Some(policy) = target.retry.filter(|policy| policy.allows(retries)) else {
            println!(
                "tick {tick:>3} | EventHubSink failed and its retry policy is exhausted: the host would move past these {lost} events (counted as dropped): {failed}"
            );
            return Delivered {
                counts: SinkCounts {
                    dropped: lost,
                    failures: failures.into(),
                    ..Default::default()
                },
                failure: Some(format!("EventHubSink: {failed}")),
                permanent: false,
            };
        };
        let delay = stop.retry_delay(policy.delay(retries));
        let why = match stop.requested() {
            true => "stopping: tried until the drain deadline",
            false => "as EventHubSink/function.json's retry policy says",
        };
        println!(
            "tick {tick:>3} | EventHubSink failed (failure {failures}; next try in {}, {why}): {failed}",
            humantime::format_duration(delay),
        );
        last = Some(failed);
        retries = failures;
        match stop.backoff(delay).await {
            Backoff::Elapsed => {}
            Backoff::CutShort => println!(
                "tick {tick:>3} | Stopping: trying EventHubSink again now, not after the retry policy's wait."
            ),
            Backoff::Abandoned => return unwritten(retries, last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_numbers_events_like_event_hubs() {
        let mut partition = Partition::default();
        let first = partition.append(vec!["ab".into(), "cde".into()]);
        let second = partition.append(vec!["f".into()]);
        assert_eq!((first[0].sequence_number, first[0].offset), (0, 0));
        assert_eq!((first[1].sequence_number, first[1].offset), (1, 2));
        assert_eq!((second[0].sequence_number, second[0].offset), (2, 5));
    }
}
