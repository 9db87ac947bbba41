//! EventHubSink: turn a batch of events into rows and rejects and write both in one transaction.
//! Answering 200 acknowledges the batch (the host then checkpoints), so it happens only after the
//! commit; a failed write answers 503 and the retry policy redelivers the batch.

use chrono::Utc;

use super::counters::EventHubSinkCounters;
use super::{EVENT_HUB_SINK, EVENTS_BINDING, Failure, FunctionError, Invocation};
use crate::domain::map_events;
use crate::host::event_hubs::ReceivedBatch;
use crate::host::{InvocationRequest, InvocationResponse};
use crate::text::excerpt;
use crate::warehouse::{Batch, Warehouse, WriteReport};

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
    let batch = ReceivedBatch::from_request(&request, EVENTS_BINDING)?;
    let retry = request.retry_count();
    if !batch.misaligned.is_empty() {
        invocation.log(format!(
            "Metadata arrays do not match the number of events; their coordinates are left empty. arrays={}",
            batch.misaligned.join(",")
        ));
    }
    let events_in = batch.events.len();
    let lag_ms = batch
        .oldest_enqueued_time()
        .map(|oldest| (Utc::now() - oldest).num_milliseconds().max(0) as u64);
    let partition = batch.partition_id.clone();
    // A batch the warehouse refuses is retried: its failure line says how long its oldest event
    // has waited, so the lag query and alert see a sink that is stuck, not only one that is slow.
    if let Some(lag_ms) = lag_ms {
        invocation.on_failure("lag_ms", lag_ms);
    }

    let mapped = map_events(batch.events.into_iter().map(|e| (e.body, e.coordinates)));
    for reject in &mapped.rejects {
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
    let rejects = mapped.rejects.len();
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
    Ok(EventHubSinkCounters {
        events_in: events_in as u64,
        rows_written: report.rows_written,
        duplicates: report.duplicates + mapped.duplicates_in_batch as u64,
        rejects: rejects as u64,
        lag_ms,
        partition,
        retry,
    })
}
