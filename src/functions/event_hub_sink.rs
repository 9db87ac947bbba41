//! EventHubSink: turn a batch of events into rows and rejects and write both in one transaction.
//! Answering 200 acknowledges the batch (the host then checkpoints), so it happens only after the
//! commit; a failed write answers 503 and the retry policy redelivers the batch. A batch whose
//! request is too large to map whole in memory is read and written a part at a time.

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
    if body.len() <= IN_MEMORY {
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
    Ok(())
}
