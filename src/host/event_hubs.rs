//! The Event Hubs trigger's payload with `cardinality: many` and `dataType: string`: the bodies
//! in `Data.<binding>` and their coordinates in the `*Array` metadata entries, aligned by index;
//! what the local runner posts as the host (`request`); and the output binding's value
//! (`output`).

mod output;
mod request;
mod stream;

pub use output::OutputEvents;
#[cfg(test)]
pub(crate) use request::batch_request;
pub use request::{HubEvent, PartitionSource, RetryState, request_body};
pub use stream::BodyStream;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::sync::Arc;

use super::{EnvelopeError, InvocationRequest};
use crate::domain::{EventBody, EventCoordinates, Field};

/// One event as received: its body (read where it lies in the request) and where it sat in the
/// hub.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent<'a> {
    pub body: EventBody<'a>,
    pub coordinates: HubCoordinates<'a>,
}

/// Where an event sat in the hub, its offset borrowed from the request where it can be: made an
/// owned [`EventCoordinates`] only for an event that is rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct HubCoordinates<'a> {
    pub partition_id: Option<Arc<str>>,
    pub offset: Option<Cow<'a, str>>,
    pub sequence_number: Option<i64>,
    pub enqueued_time: Option<DateTime<Utc>>,
}

impl From<HubCoordinates<'_>> for EventCoordinates {
    fn from(at: HubCoordinates<'_>) -> Self {
        Self {
            partition_id: at.partition_id,
            offset: at.offset.map(Cow::into_owned),
            sequence_number: at.sequence_number,
            enqueued_time: at.enqueued_time,
            ..Self::default()
        }
    }
}

/// A batch as the trigger delivers it, its bodies borrowed from the request's body.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedBatch<'a> {
    pub events: Vec<ReceivedEvent<'a>>,
    pub partition_id: Option<String>,
    /// `PartitionContext`'s `FullyQualifiedNamespace` and `EventHubName`.
    pub hub: [Option<Arc<str>>; 2],
    /// Metadata arrays whose length differs from the number of events (coordinates left empty).
    pub misaligned: Vec<&'static str>,
}

impl<'a> ReceivedBatch<'a> {
    /// Decodes `Data.<binding>` (a string holding a JSON array of bodies, or a real array) and the
    /// metadata arrays. Bodies that arrive as JSON values instead of strings (a binding without
    /// `dataType: string`) are kept as their compact JSON text.
    ///
    /// The usual bodies (a string holding an array of strings) are read in place
    /// ([`EventBody::split`]); anything else the general way, each body into its own `String`.
    /// The metadata items are borrowed where they can be.
    pub fn from_request(
        request: &InvocationRequest<'a>,
        binding: &str,
    ) -> Result<Self, EnvelopeError> {
        let bodies = request
            .data_as_sent(binding)
            .and_then(|sent| EventBody::split(sent.strip_prefix('"')?.strip_suffix('"')?))
            .or_else(|| read_bodies(&request.data_json(binding)?));
        let bodies = bodies.ok_or_else(|| match request.data_json(binding) {
            None => EnvelopeError::MissingBinding(binding.to_owned()),
            Some(_) => EnvelopeError::BadBinding {
                binding: binding.to_owned(),
                expected: "a JSON array of event bodies",
            },
        })?;
        let count = bodies.len();
        Ok(Self::from_bodies(request, bodies, 0, count))
    }

    /// `bodies` as the events from `first` on of the request's batch of `total` events, with
    /// their coordinates from its metadata (a batch too large to hold is read in parts:
    /// [`BodyStream`]).
    pub fn from_bodies(
        request: &InvocationRequest<'a>,
        bodies: Vec<EventBody<'a>>,
        first: usize,
        total: usize,
    ) -> Self {
        let mut misaligned = Vec::new();
        let mut column = |key| column(request, key, total, &mut misaligned);
        let mut offsets = column("OffsetArray");
        let sequence_numbers = column("SequenceNumberArray");
        let enqueued_times = column("EnqueuedTimeUtcArray");
        let context = request.metadata("PartitionContext");
        let partition_id = context
            .as_ref()
            .and_then(|c| c.get("PartitionId"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let partition: Option<Arc<str>> = partition_id.as_deref().map(Arc::from);
        let name = |key| Some(Arc::<str>::from(context.as_ref()?.get(key)?.as_str()?));
        let hub = [name("FullyQualifiedNamespace"), name("EventHubName")];
        let events = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| (first + i, body))
            .map(|(i, body)| ReceivedEvent {
                body,
                coordinates: HubCoordinates {
                    partition_id: partition.clone(),
                    offset: offsets.get_mut(i).and_then(scalar_text),
                    sequence_number: sequence_numbers.get(i).and_then(integer),
                    enqueued_time: enqueued_times
                        .get(i)
                        .and_then(Field::as_text)
                        .and_then(parse_utc),
                },
            })
            .collect();
        Self {
            events,
            partition_id,
            hub,
            misaligned,
        }
    }

    /// The earliest enqueued time in the batch: what the lag is measured from.
    pub fn oldest_enqueued_time(&self) -> Option<DateTime<Utc>> {
        self.events
            .iter()
            .filter_map(|e| e.coordinates.enqueued_time)
            .min()
    }
}

/// The bodies from the array's JSON text (double encoding undone), each unescaped into its own
/// `String`; `None` when the text is not an array.
fn read_bodies(json: &str) -> Option<Vec<EventBody<'static>>> {
    let bodies: Vec<Body> = serde_json::from_str(json).ok()?;
    Some(bodies.into_iter().map(|Body(body)| body.into()).collect())
}

/// An event body: a string's text, or the compact JSON text of any other value.
struct Body(String);

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(match Value::deserialize(deserializer)? {
            Value::String(text) => text,
            other => other.to_string(),
        }))
    }
}

/// A metadata array's items, read in place (owned when the host's usual form does not hold);
/// empty (and the key noted) unless it is an array with one item per event.
fn column<'a>(
    request: &InvocationRequest<'a>,
    key: &'static str,
    count: usize,
    misaligned: &mut Vec<&'static str>,
) -> Vec<Field<'a>> {
    let items = match request.metadata_as_sent(key).and_then(escaped_scalars) {
        Some(items) => Ok(items),
        None => match request.metadata_json(key) {
            None => return Vec::new(),
            Some(text) => serde_json::from_str::<Vec<Field<'_>>>(&text)
                .map(|items| items.into_iter().map(Field::into_owned).collect()),
        },
    };
    match items {
        Ok(items) if items.len() == count => items,
        _ => {
            misaligned.push(key);
            Vec::new()
        }
    }
}

/// A metadata array in the host's usual form, a JSON string holding an array of strings without
/// escapes, numbers and nulls (`"[\"4294967296\",null,7]"`), its text items borrowed; `None` for
/// anything else (read the general way).
fn escaped_scalars(sent: &str) -> Option<Vec<Field<'_>>> {
    let items = sent.strip_prefix("\"[")?.strip_suffix("]\"")?;
    if items.is_empty() {
        return Some(Vec::new());
    }
    // Items are short: a byte loop finds the commas sooner than a search sets up.
    fn scalar(item: &str) -> Option<Field<'_>> {
        match item.strip_prefix("\\\"") {
            Some(text) => {
                let text = text.strip_suffix("\\\"")?;
                (!text.bytes().any(|b| b == b'\\')).then_some(Field::Text(Cow::Borrowed(text)))
            }
            None if item == "null" => Some(Field::Null),
            None => serde_json::from_str::<Number>(item).ok().map(Field::Number),
        }
    }
    let mut fields = Vec::with_capacity(items.len() / 8);
    let mut rest = items;
    loop {
        let end = rest.bytes().position(|b| b == b',').unwrap_or(rest.len());
        fields.push(scalar(&rest[..end])?);
        if end == rest.len() {
            return Some(fields);
        }
        rest = &rest[end + 1..];
    }
}

/// A text item (taken, not copied) or a number's text.
fn scalar_text<'a>(value: &mut Field<'a>) -> Option<Cow<'a, str>> {
    match std::mem::take(value) {
        Field::Text(text) => Some(text),
        Field::Number(number) => Some(Cow::Owned(number.to_string())),
        _ => None,
    }
}

fn integer(value: &Field<'_>) -> Option<i64> {
    match value {
        Field::Number(number) => number.as_i64(),
        Field::Text(text) => text.parse().ok(),
        _ => None,
    }
}

/// Enqueued times come without a zone (`2026-05-01T12:00:00.123`) but are UTC; accept an explicit
/// offset too.
fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    host_time(text).or_else(|| {
        DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .or_else(|_| {
                NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|at| at.and_utc())
            })
            .ok()
    })
}

/// The host's form, `2026-05-01T12:00:00.123` (0 to 9 fractional digits, no zone), read without
/// chrono's format parser (a batch has one per event); `None` for anything else, which
/// [`parse_utc`] then reads the general way.
fn host_time(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let (clock, fraction) = bytes.split_at_checked(19)?;
    let digits = |from: usize, to: usize| -> Option<u32> {
        clock[from..to].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(at, separator)| clock[at] != separator)
    {
        return None;
    }
    let second = digits(17, 19)?;
    if second > 59 {
        // A leap second: chrono's rules.
        return None;
    }
    let nanos = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let value = digits.iter().try_fold(0u32, |n, &d| {
                d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
            })?;
            value * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    NaiveDate::from_ymd_opt(digits(0, 4)? as i32, digits(5, 7)?, digits(8, 10)?)?
        .and_hms_nano_opt(digits(11, 13)?, digits(14, 16)?, second, nanos)
        .map(|at| at.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::encode;
    use proptest::strategy::Strategy as _;

    /// The payload of the protocol reference, byte for byte (shared with the integration tests).
    const REFERENCE: &str = include_str!("../../tests/fixtures/event_hubs_reference.json");

    fn parse(body: &str) -> Result<ReceivedBatch<'_>, EnvelopeError> {
        ReceivedBatch::from_request(
            &InvocationRequest::parse(body.as_bytes()).unwrap(),
            "events",
        )
    }

    fn texts(batch: ReceivedBatch<'_>) -> Vec<String> {
        batch
            .events
            .into_iter()
            .map(|e| e.body.into_text())
            .collect()
    }

    #[test]
    fn the_reference_payload_decodes_bodies_and_coordinates() {
        let batch = parse(REFERENCE).unwrap();
        assert_eq!(texts(batch.clone()), [r#"{"id":"bitcoin"}"#, "not json"]);
        let second = &batch.events[1].coordinates;
        assert_eq!(second.partition_id.as_deref(), Some("0"));
        assert_eq!(second.offset.as_deref(), Some("4294967400"));
        assert_eq!(second.sequence_number, Some(101));
        assert_eq!(
            second.enqueued_time.unwrap().to_rfc3339(),
            "2026-05-01T12:00:00.456+00:00"
        );
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
        assert_eq!(texts(batch.clone()), ["a", r#"{"id":"x"}"#]);
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
        let body = body.to_string();
        let batch = parse(&body).unwrap();
        assert_eq!(texts(batch.clone())[1], "not json");
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

    #[test]
    fn the_host_s_enqueued_times_are_read_without_a_format_string() {
        assert_eq!(
            host_time("2026-05-01T12:00:00.123").unwrap().to_rfc3339(),
            "2026-05-01T12:00:00.123+00:00"
        );
        assert_eq!(host_time("2026-05-01T12:00:00Z"), None);
        assert_eq!(
            parse_utc("2026-05-01T12:00:00Z").unwrap().to_rfc3339(),
            "2026-05-01T12:00:00+00:00"
        );
        assert_eq!(host_time("2026-02-30T12:00:00"), None);
    }

    proptest::proptest! {
        #[test]
        fn reading_bodies_in_one_pass_gives_what_the_general_way_gives(
            bodies in proptest::collection::vec("\\PC{0,30}|[\"\\\\\\n/a]{0,10}", 0..8)
        ) {
            let sent = serde_json::to_string(&serde_json::to_string(&bodies).unwrap()).unwrap();
            let general: String = serde_json::from_str(&sent).unwrap();
            if let Some(in_place) = EventBody::split(&sent[1..sent.len() - 1]) {
                let texts = |bodies: Vec<EventBody<'_>>| bodies.into_iter().map(EventBody::into_text).collect::<Vec<_>>();
                proptest::prop_assert_eq!(Some(texts(in_place)), read_bodies(&general).map(texts));
            }
        }

        #[test]
        fn an_enqueued_time_read_without_a_format_string_is_the_one_chrono_reads(
            text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?Z?"
        ) {
            if let Some(fast) = host_time(&text) {
                let chrono = NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f").map(|at| at.and_utc()).ok();
                proptest::prop_assert_eq!(Some(fast), chrono);
            }
        }

        #[test]
        fn any_envelope_decodes_or_errors_without_panicking(body in ".{0,400}") {
            if let Ok(request) = InvocationRequest::parse(body.as_bytes()) {
                let _ = ReceivedBatch::from_request(&request, "events");
            }
        }

        #[test]
        fn any_bodies_survive_the_host_s_double_encoding(bodies in proptest::collection::vec(".{0,50}", 0..20)) {
            let body = batch_request(&bodies);
            proptest::prop_assert_eq!(texts(parse(&body).unwrap()), bodies);
        }
    }

    #[test]
    fn the_host_s_metadata_arrays_are_read_in_place() {
        assert_eq!(
            escaped_scalars(r#""[\"4294967296\",null,7,-1.5]""#),
            Some(vec![
                Field::Text(Cow::Borrowed("4294967296")),
                Field::Null,
                Field::Number(7.into()),
                Field::Number(Number::from_f64(-1.5).unwrap()),
            ])
        );
        assert_eq!(escaped_scalars(r#""[]""#), Some(Vec::new()));
        for unusual in [
            r#""[\"a,b\"]""#,
            r#""[\"a\\\\b\"]""#,
            r#""[01]""#,
            r#""[{}]""#,
            "[1]",
        ] {
            assert_eq!(escaped_scalars(unusual), None, "{unusual}");
        }
    }

    proptest::proptest! {
        #[test]
        fn metadata_read_in_place_is_what_serde_json_reads(
            items in proptest::collection::vec(proptest::prop_oneof![
                "[a-z0-9:.\\-, \"\\\\]{0,8}".prop_map(Value::from),
                proptest::num::i64::ANY.prop_map(Value::from),
                proptest::strategy::Just(Value::Null),
            ], 0..6),
        ) {
            let sent = encode(&Value::Array(items)).to_string();
            if let Some(in_place) = escaped_scalars(&sent) {
                let text: String = serde_json::from_str(&sent).unwrap();
                let general: Vec<Field<'_>> = serde_json::from_str(&text).unwrap();
                proptest::prop_assert_eq!(in_place, general);
            }
        }
    }
}
