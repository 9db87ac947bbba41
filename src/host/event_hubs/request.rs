//! The host's side of the Event Hubs trigger: the request it posts for a batch (`cardinality:
//! many`, `dataType: string`), which the local runner plays.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::host::{encode, sys_metadata};
use crate::text::Millis;

/// Where a batch comes from, as the host describes it in `PartitionContext`.
#[derive(Debug, Clone)]
pub struct PartitionSource<'a> {
    pub namespace: &'a str,
    pub event_hub: &'a str,
    pub consumer_group: &'a str,
    pub partition_id: &'a str,
}

/// An event as the local runner's hub holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct HubEvent {
    pub body: String,
    pub offset: i64,
    pub sequence_number: i64,
    pub enqueued_time: DateTime<Utc>,
}

/// The retry state the host adds to the metadata when a retry policy is active.
#[derive(Debug, Clone, Copy)]
pub struct RetryState {
    pub retry_count: u32,
    /// -1 for "forever", as in function.json.
    pub max_retry_count: i64,
}

/// The body the host posts to an Event Hubs-triggered function with `cardinality: many` and
/// `dataType: string` (used by the local runner): every array double encoded.
pub fn request_body(
    function: &str,
    binding: &str,
    source: &PartitionSource<'_>,
    events: &[HubEvent],
    now: DateTime<Utc>,
    retry: Option<RetryState>,
) -> Value {
    let column =
        |f: &dyn Fn(&HubEvent) -> Value| encode(&Value::Array(events.iter().map(f).collect()));
    let enqueued = |e: &HubEvent| json!(Millis(e.enqueued_time).to_string());
    let mut metadata = json!({
        "PartitionContext": {
            "FullyQualifiedNamespace": source.namespace,
            "EventHubName": source.event_hub,
            "ConsumerGroup": source.consumer_group,
            "PartitionId": source.partition_id,
            "IsCheckpointingAfterInvocation": true,
        },
        "PartitionKeyArray": column(&|_| Value::Null),
        "OffsetArray": column(&|e| json!(e.offset.to_string())),
        "SequenceNumberArray": column(&|e| json!(e.sequence_number)),
        "EnqueuedTimeUtcArray": column(&enqueued),
        "PropertiesArray": column(&|_| json!({})),
        "SystemPropertiesArray": column(&|e| json!({
            "SequenceNumber": e.sequence_number,
            "Offset": e.offset,
            "EnqueuedTimeUtc": enqueued(e),
        })),
        "sys": sys_metadata(function, now),
    });
    if let Some(retry) = retry {
        metadata["RetryContext"] = json!({
            "RetryCount": retry.retry_count,
            "MaxRetryCount": retry.max_retry_count,
            "Exception": null,
        });
    }
    json!({
        "Data": {binding: column(&|e| json!(e.body))},
        "Metadata": metadata,
    })
}

/// The host's body for a batch of `bodies` (partition "0", offsets and sequence numbers from 0),
/// for the decoding tests.
#[cfg(test)]
pub(crate) fn batch_request(bodies: &[impl AsRef<str>]) -> String {
    let now = Utc::now();
    let events: Vec<HubEvent> = bodies
        .iter()
        .zip(0..)
        .map(|(body, i)| HubEvent {
            body: body.as_ref().to_owned(),
            offset: i * 100,
            sequence_number: i,
            enqueued_time: now,
        })
        .collect();
    let source = PartitionSource {
        namespace: "ns",
        event_hub: "hub",
        consumer_group: "$Default",
        partition_id: "0",
    };
    request_body("EventHubSink", "events", &source, &events, now, None).to_string()
}
