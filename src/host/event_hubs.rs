//! The Event Hubs trigger's payload with `cardinality: many` and `dataType: string`: the bodies
//! in `Data.<binding>` and their coordinates in the `*Array` metadata entries, aligned by index.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::{EnvelopeError, InvocationRequest, decode, encode};
use crate::domain::EventCoordinates;

/// One event as received: its raw UTF-8 body and where it sat in the hub.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    pub body: String,
    pub coordinates: EventCoordinates,
}

/// A batch as the trigger delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedBatch {
    pub events: Vec<ReceivedEvent>,
    pub event_hub: Option<String>,
    pub partition_id: Option<String>,
    /// Metadata arrays whose length differs from the number of events (coordinates left empty).
    pub misaligned: Vec<&'static str>,
}

impl ReceivedBatch {
    /// Decodes `Data.<binding>` (a string holding a JSON array of bodies, or a real array) and the
    /// metadata arrays. Bodies that arrive as JSON values instead of strings (a binding without
    /// `dataType: string`) are kept as their compact JSON text.
    pub fn from_request(request: &InvocationRequest, binding: &str) -> Result<Self, EnvelopeError> {
        let bodies = request
            .data
            .get(binding)
            .ok_or_else(|| EnvelopeError::MissingBinding(binding.to_owned()))?;
        let Value::Array(bodies) = decode(bodies) else {
            return Err(EnvelopeError::BadBinding {
                binding: binding.to_owned(),
                expected: "a JSON array of event bodies",
            });
        };
        let count = bodies.len();
        let mut misaligned = Vec::new();
        let mut array = |key: &'static str| -> Vec<Value> {
            match request.metadata(key) {
                Some(Value::Array(items)) if items.len() == count => items,
                None => Vec::new(),
                Some(_) => {
                    misaligned.push(key);
                    Vec::new()
                }
            }
        };
        let offsets = array("OffsetArray");
        let sequence_numbers = array("SequenceNumberArray");
        let enqueued_times = array("EnqueuedTimeUtcArray");
        let context = request.metadata("PartitionContext");
        let context_text = |key: &str| {
            context
                .as_ref()
                .and_then(|c| c.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let partition_id = context_text("PartitionId");
        let events = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| ReceivedEvent {
                body: match body {
                    Value::String(text) => text,
                    other => other.to_string(),
                },
                coordinates: EventCoordinates {
                    partition_id: partition_id.clone(),
                    offset: offsets.get(i).and_then(scalar_text),
                    sequence_number: sequence_numbers.get(i).and_then(integer),
                    enqueued_time: enqueued_times
                        .get(i)
                        .and_then(Value::as_str)
                        .and_then(parse_utc),
                },
            })
            .collect();
        Ok(Self {
            events,
            event_hub: context_text("EventHubName"),
            partition_id,
            misaligned,
        })
    }

    /// The earliest enqueued time in the batch: what the lag is measured from.
    pub fn oldest_enqueued_time(&self) -> Option<DateTime<Utc>> {
        self.events
            .iter()
            .filter_map(|e| e.coordinates.enqueued_time)
            .min()
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// Enqueued times come without a zone (`2026-05-01T12:00:00.123`) but are UTC; accept an explicit
/// offset too.
fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|at| at.and_utc())
        })
        .ok()
}

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
    let enqueued =
        |e: &HubEvent| json!(e.enqueued_time.format("%Y-%m-%dT%H:%M:%S%.3f").to_string());
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
        "sys": super::sys_metadata(function, now),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload of the protocol reference, byte for byte (shared with the integration tests).
    const REFERENCE: &str = include_str!("../../tests/fixtures/event_hubs_reference.json");

    fn parse(body: &str) -> Result<ReceivedBatch, EnvelopeError> {
        ReceivedBatch::from_request(
            &InvocationRequest::parse(body.as_bytes()).unwrap(),
            "events",
        )
    }

    #[test]
    fn the_reference_payload_decodes_bodies_and_coordinates() {
        let batch = parse(REFERENCE).unwrap();
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.events[0].body, r#"{"id":"bitcoin"}"#);
        assert_eq!(batch.events[1].body, "not json");
        let second = &batch.events[1].coordinates;
        assert_eq!(second.partition_id.as_deref(), Some("0"));
        assert_eq!(second.offset.as_deref(), Some("4294967400"));
        assert_eq!(second.sequence_number, Some(101));
        assert_eq!(
            second.enqueued_time.unwrap().to_rfc3339(),
            "2026-05-01T12:00:00.456+00:00"
        );
        assert_eq!(batch.event_hub.as_deref(), Some("coincaphub"));
        assert!(batch.misaligned.is_empty());
        assert_eq!(
            batch.oldest_enqueued_time().unwrap().to_rfc3339(),
            "2026-05-01T12:00:00.123+00:00"
        );
    }

    #[test]
    fn plain_arrays_are_accepted_too() {
        let batch = parse(
            r#"{"Data":{"events":["a",{"id":"x"}]},"Metadata":{"SequenceNumberArray":["7","8"],"EnqueuedTimeUtcArray":["2026-05-01T12:00:00Z","bad"]}}"#,
        )
        .unwrap();
        assert_eq!(batch.events[0].body, "a");
        assert_eq!(batch.events[1].body, r#"{"id":"x"}"#);
        assert_eq!(batch.events[1].coordinates.sequence_number, Some(8));
        assert!(batch.events[0].coordinates.enqueued_time.is_some());
        assert_eq!(batch.events[1].coordinates.enqueued_time, None);
    }

    #[test]
    fn misaligned_metadata_leaves_coordinates_empty_but_keeps_the_events() {
        let batch =
            parse(r#"{"Data":{"events":"[\"a\",\"b\"]"},"Metadata":{"OffsetArray":"[\"1\"]"}}"#)
                .unwrap();
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.misaligned, vec!["OffsetArray"]);
        assert_eq!(batch.events[0].coordinates.offset, None);
    }

    #[test]
    fn a_missing_or_non_array_binding_is_an_envelope_error() {
        assert_eq!(
            parse(r#"{"Data":{},"Metadata":{}}"#),
            Err(EnvelopeError::MissingBinding("events".into()))
        );
        assert!(matches!(
            parse(r#"{"Data":{"events":"not an array"},"Metadata":{}}"#),
            Err(EnvelopeError::BadBinding { .. })
        ));
        assert!(matches!(
            parse(r#"{"Data":{"events":{"a":1}},"Metadata":{}}"#),
            Err(EnvelopeError::BadBinding { .. })
        ));
    }

    #[test]
    fn the_runner_s_payload_has_the_host_s_shape_and_reads_back() {
        let now = Utc::now();
        let events = vec![
            HubEvent {
                body: r#"{"id":"a"}"#.into(),
                offset: 0,
                sequence_number: 0,
                enqueued_time: now,
            },
            HubEvent {
                body: "not json".into(),
                offset: 9,
                sequence_number: 1,
                enqueued_time: now,
            },
        ];
        let source = PartitionSource {
            namespace: "local",
            event_hub: "coincaphub",
            consumer_group: "$Default",
            partition_id: "0",
        };
        let body = request_body("EventHubSink", "events", &source, &events, now, None);
        assert!(
            body["Data"]["events"].is_string(),
            "bodies are double encoded"
        );
        assert!(body["Metadata"]["OffsetArray"].is_string());
        assert!(body["Metadata"]["PartitionContext"].is_object());
        let batch = parse(&body.to_string()).unwrap();
        assert_eq!(batch.events[1].body, "not json");
        assert_eq!(batch.events[1].coordinates.offset.as_deref(), Some("9"));
        assert_eq!(batch.events[1].coordinates.sequence_number, Some(1));
        assert_eq!(
            batch.events[1]
                .coordinates
                .enqueued_time
                .unwrap()
                .timestamp_millis(),
            now.timestamp_millis()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_envelope_decodes_or_errors_without_panicking(body in ".{0,400}") {
            if let Ok(request) = InvocationRequest::parse(body.as_bytes()) {
                let _ = ReceivedBatch::from_request(&request, "events");
            }
        }

        #[test]
        fn any_bodies_survive_the_host_s_double_encoding(bodies in proptest::collection::vec(".{0,50}", 0..20)) {
            let now = Utc::now();
            let events: Vec<HubEvent> = bodies.iter().enumerate().map(|(i, body)| HubEvent {
                body: body.clone(), offset: i as i64, sequence_number: i as i64, enqueued_time: now,
            }).collect();
            let source = PartitionSource { namespace: "n", event_hub: "h", consumer_group: "c", partition_id: "1" };
            let body = request_body("EventHubSink", "events", &source, &events, now, None);
            let batch = parse(&body.to_string()).unwrap();
            let decoded: Vec<String> = batch.events.into_iter().map(|e| e.body).collect();
            proptest::prop_assert_eq!(decoded, bodies);
        }
    }
}
