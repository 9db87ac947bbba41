//! EventHubSink: turn a batch of events into rows and rejects and write both, idempotently.
//! Answering 200 acknowledges the batch (the host then checkpoints), so it happens only after the
//! commit; a failed write answers 503 and the retry policy redelivers the batch. A batch whose
//! request is too large to hold whole in memory is read and written a part at a time: a part that
//! fails after earlier parts committed says on the failure line what those wrote (the redelivery
//! finds their rows stored and counts them as duplicates).

use chrono::Utc;

use super::counters::EventHubSinkCounters;
use super::{EVENT_HUB_SINK, EVENTS_BINDING, Failure, FunctionError, Invocation};
use crate::domain::map_events;
use crate::host::event_hubs::{BodyStream, ReceivedBatch};
use crate::host::spool::IN_MEMORY;
use crate::host::{InvocationRequest, InvocationResponse};
use crate::text::excerpt;
use crate::warehouse::{Batch, Warehouse, WriteReport};

/// Bytes of event bodies held at once when a large batch is read in parts.
const PART_BYTES: usize = 32 * 1024 * 1024;

pub async fn event_hub_sink(
    warehouse: &dyn Warehouse,
    invocation_id: String,
    body: &[u8],
) -> Result<InvocationResponse, Failure> {
    let mut invocation = Invocation::new(EVENT_HUB_SINK, invocation_id);
    match run(warehouse, &mut invocation, body).await {
        Ok(counters) => Ok(invocation.finish(&counters)),
        Err(error) => Err(invocation.fail(error)),
    }
}

async fn run(
    warehouse: &dyn Warehouse,
    invocation: &mut Invocation,
    body: &[u8],
) -> Result<EventHubSinkCounters, FunctionError> {
    let request = InvocationRequest::parse(body)?;
    let mut counters = EventHubSinkCounters {
        retry: request.retry_count(),
        ..EventHubSinkCounters::default()
    };
    // The part-at-a-time reader takes the events as the host sends them; an envelope only the
    // general reader takes (see `InvocationRequest::data_as_sent`) is read whole, however large.
    if body.len() <= IN_MEMORY || request.data_as_sent(EVENTS_BINDING).is_none() {
        let batch = ReceivedBatch::from_request(&request, EVENTS_BINDING)?;
        sink(warehouse, invocation, batch, &mut counters).await?;
        return Ok(counters);
    }
    // Each event's body becomes its own text only when its part is read: the rest stays where
    // it lies in the request (a mapped file, see `host::spool`).
    let total = BodyStream::count(&request, EVENTS_BINDING)?;
    let mut bodies = BodyStream::new(&request, EVENTS_BINDING)?;
    let (mut first, mut parts) = (0, 0);
    while let Some(part) = bodies.next_part(PART_BYTES)? {
        let events = part.len();
        let batch = ReceivedBatch::from_bodies(&request, part, first, total);
        sink(warehouse, invocation, batch, &mut counters).await?;
        (first, parts) = (first + events, parts + 1);
    }
    invocation.log(format!(
        "Large batch read and written in parts. request_bytes={} events={total} parts={parts}",
        body.len()
    ));
    Ok(counters)
}

/// Maps and writes one batch (or one part of a large one), adding to `counters`.
async fn sink(
    warehouse: &dyn Warehouse,
    invocation: &mut Invocation,
    batch: ReceivedBatch<'_>,
    counters: &mut EventHubSinkCounters,
) -> Result<(), FunctionError> {
    if !batch.misaligned.is_empty() {
        invocation.log(format!(
            "Metadata arrays do not match the number of events; their coordinates are left empty. arrays={}",
            batch.misaligned.join(",")
        ));
    }
    let lag_ms = batch
        .oldest_enqueued_time()
        .map(|oldest| (Utc::now() - oldest).num_milliseconds().max(0) as u64);
    counters.events_in += batch.events.len() as u64;
    counters.lag_ms = counters.lag_ms.max(lag_ms);
    counters.partition = batch.partition_id.clone();
    // A batch the warehouse refuses is retried: its failure line says how long its oldest event
    // has waited, so the lag query and alert see a sink that is stuck, not only one that is slow.
    if let Some(lag_ms) = counters.lag_ms {
        invocation.on_failure("lag_ms", lag_ms);
    }

    let mut mapped = map_events(batch.events.into_iter().map(|e| (e.body, e.coordinates)));
    // A reject is told apart by its hub too: a recreated or a second hub numbers from 0 again.
    let [namespace, event_hub] = batch.hub;
    for reject in &mut mapped.rejects {
        reject.coordinates.namespace = namespace.clone();
        reject.coordinates.event_hub = event_hub.clone();
        let at = &reject.coordinates;
        invocation.log(format!(
            "Rejected event. reason_code={} partition={} offset={} sequence_number={} reason=\"{}\" body={:?}",
            reject.reason.code(),
            at.partition_id.as_deref().unwrap_or("none"),
            at.offset.as_deref().unwrap_or("none"),
            at.sequence_number.map_or("none".into(), |n| n.to_string()),
            reject.reason,
            excerpt(&reject.raw_body, 200),
        ));
    }
    let report = if mapped.rows.is_empty() && mapped.rejects.is_empty() {
        WriteReport::default()
    } else {
        warehouse
            .write(Batch {
                rows: mapped.rows,
                rejects: mapped.rejects,
            })
            .await?
    };
    if report.rejects_existing > 0 {
        invocation.log(format!(
            "Rejects already stored, not stored again (the same events from the same hub). rejects_existing={}",
            report.rejects_existing
        ));
    }
    counters.rows_written += report.rows_written;
    counters.duplicates += report.duplicates + mapped.duplicates_in_batch as u64;
    counters.rejects += report.rejects_written;
    // Should a later part fail, its failure line says what this one committed.
    invocation.on_failure("rows_written", counters.rows_written);
    invocation.on_failure("rejects", counters.rejects);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::BoxFuture;
    use crate::host::event_hubs::batch_request;
    use crate::warehouse::WarehouseError;

    /// A warehouse that takes `writes` writes, then fails (a database going away in the middle
    /// of a large batch), keeping what it reported.
    struct GoesAwayAfter {
        writes: usize,
        reported: Mutex<Vec<WriteReport>>,
    }

    impl Warehouse for GoesAwayAfter {
        fn write(&self, batch: Batch) -> BoxFuture<'_, Result<WriteReport, WarehouseError>> {
            let mut reported = self.reported.lock().unwrap();
            let answer = if reported.len() < self.writes {
                let report = WriteReport {
                    rows_written: batch.rows.len() as u64,
                    rejects_written: batch.rejects.len() as u64,
                    ..WriteReport::default()
                };
                reported.push(report);
                Ok(report)
            } else {
                Err(WarehouseError::Store {
                    context: "writing",
                    message: "the database went away".into(),
                })
            };
            Box::pin(async move { answer })
        }

        fn describe(&self) -> String {
            "a warehouse that goes away".into()
        }
    }

    #[tokio::test]
    async fn a_large_batch_failing_after_a_part_was_written_says_what_that_part_wrote() {
        // Over 64 MiB of bodies: read and written in parts of 32 MiB.
        let bodies = vec!["x".repeat(72_000); 1000];
        let request = batch_request(&bodies);
        assert!(request.len() > IN_MEMORY);
        let warehouse = GoesAwayAfter {
            writes: 1,
            reported: Mutex::default(),
        };

        let failure = event_hub_sink(&warehouse, "id".into(), request.as_bytes())
            .await
            .unwrap_err();

        let written = warehouse.reported.lock().unwrap()[0];
        assert!(written.rejects_written > 0);
        let logs = failure.body["Logs"].as_array().unwrap();
        let line = logs.last().unwrap().as_str().unwrap();
        assert!(line.starts_with("Invocation failed."), "{line}");
        assert!(
            line.contains(&format!(
                " rows_written=0 rejects={} ",
                written.rejects_written
            )),
            "what the first part committed: {line}"
        );
        assert_eq!(
            line.matches(" lag_ms=").count(),
            1,
            "one value a key: {line}"
        );
    }
}
