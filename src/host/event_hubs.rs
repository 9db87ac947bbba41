//! The Event Hubs trigger's payload with `cardinality: many` and `dataType: string`: the bodies
//! in `Data.<binding>` and their coordinates in the `*Array` metadata entries, aligned by index.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{EnvelopeError, InvocationRequest, JsonText, encode};
use crate::domain::{EventCoordinates, Field};
use crate::text::Millis;

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
    pub partition_id: Option<String>,
    /// Metadata arrays whose length differs from the number of events (coordinates left empty).
    pub misaligned: Vec<&'static str>,
}

impl ReceivedBatch {
    /// Decodes `Data.<binding>` (a string holding a JSON array of bodies, or a real array) and the
    /// metadata arrays. Bodies that arrive as JSON values instead of strings (a binding without
    /// `dataType: string`) are kept as their compact JSON text.
    ///
    /// Each array is read straight from its text (unescaped once, when the envelope was read):
    /// each body unescaped into its own `String`, the metadata items borrowed where they can be.
    pub fn from_request(request: &InvocationRequest, binding: &str) -> Result<Self, EnvelopeError> {
        let bodies = request
            .data_as_sent(binding)
            .and_then(double_encoded_bodies)
            .or_else(|| read_bodies(&request.data_json(binding)?));
        let bodies = bodies.ok_or_else(|| match request.data_json(binding) {
            None => EnvelopeError::MissingBinding(binding.to_owned()),
            Some(_) => EnvelopeError::BadBinding {
                binding: binding.to_owned(),
                expected: "a JSON array of event bodies",
            },
        })?;
        let count = bodies.len();
        let mut misaligned = Vec::new();
        let (offsets, sequence_numbers, enqueued_times) = (
            request.metadata_json("OffsetArray"),
            request.metadata_json("SequenceNumberArray"),
            request.metadata_json("EnqueuedTimeUtcArray"),
        );
        let offsets = aligned("OffsetArray", offsets.as_deref(), count, &mut misaligned);
        let sequence_numbers = aligned(
            "SequenceNumberArray",
            sequence_numbers.as_deref(),
            count,
            &mut misaligned,
        );
        let enqueued_times = aligned(
            "EnqueuedTimeUtcArray",
            enqueued_times.as_deref(),
            count,
            &mut misaligned,
        );
        let context = request.metadata("PartitionContext");
        let partition_id = context
            .as_ref()
            .and_then(|c| c.get("PartitionId"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let events = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| ReceivedEvent {
                body,
                coordinates: EventCoordinates {
                    partition_id: partition_id.clone(),
                    offset: offsets.get(i).and_then(scalar_text),
                    sequence_number: sequence_numbers.get(i).and_then(integer),
                    enqueued_time: enqueued_times
                        .get(i)
                        .and_then(Field::as_text)
                        .and_then(parse_utc),
                },
            })
            .collect();
        Ok(Self {
            events,
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

/// The bodies from the array's JSON text (double encoding undone), each unescaped into its own
/// `String`; `None` when the text is not an array.
fn read_bodies(json: &str) -> Option<Vec<String>> {
    let bodies: Vec<Body> = serde_json::from_str(json).ok()?;
    Some(bodies.into_iter().map(|Body(body)| body).collect())
}

/// The usual bodies, read in one pass: `sent` is a JSON string holding a JSON array of strings,
/// as the host sends event text (inside, a quote is `\\\"` and a backslash `\\\\\\`). Each
/// body is unescaped twice on the way into its own `String`, runs of plain text copied whole.
/// `None` for anything else (another escape, an item that is not a string, whitespace), which
/// [`read_bodies`] then reads the general way.
fn double_encoded_bodies(sent: &str) -> Option<Vec<String>> {
    let text = sent.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut at = 0;
    // The next byte of the array's text (one level of escapes undone).
    let next = |at: &mut usize| -> Option<u8> {
        let byte = *text.get(*at)?;
        *at += 1;
        if byte != b'\\' {
            return Some(byte);
        }
        let escaped = *text.get(*at)?;
        *at += 1;
        matches!(escaped, b'"' | b'\\').then_some(escaped)
    };
    let mut bodies = Vec::new();
    if next(&mut at)? != b'[' {
        return None;
    }
    let mut item = next(&mut at)?;
    if item == b']' {
        return (at == text.len()).then_some(bodies);
    }
    loop {
        if item != b'"' {
            return None;
        }
        let mut body = Vec::with_capacity(512);
        loop {
            // Plain text: the same bytes at both levels.
            let run = text[at..]
                .iter()
                .position(|&b| b == b'\\' || b < 0x20)
                .unwrap_or(text.len() - at);
            body.extend_from_slice(&text[at..at + run]);
            at += run;
            match next(&mut at)? {
                b'"' => break,
                b'\\' => match next(&mut at)? {
                    escaped @ (b'"' | b'\\') => body.push(escaped),
                    _ => return None,
                },
                _ => return None,
            }
        }
        bodies.push(String::from_utf8(body).ok()?);
        match next(&mut at)? {
            b',' => item = next(&mut at)?,
            b']' if at == text.len() => return Some(bodies),
            _ => return None,
        }
    }
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

/// A metadata array's items, read in place; empty (and the key noted) unless it is an array with
/// one item per event.
fn aligned<'t>(
    key: &'static str,
    text: Option<&'t str>,
    count: usize,
    misaligned: &mut Vec<&'static str>,
) -> Vec<Field<'t>> {
    let Some(text) = text else {
        return Vec::new();
    };
    match serde_json::from_str::<Vec<Field<'t>>>(text) {
        Ok(items) if items.len() == count => items,
        _ => {
            misaligned.push(key);
            Vec::new()
        }
    }
}

fn scalar_text(value: &Field<'_>) -> Option<String> {
    match value {
        Field::Text(text) => Some(text.clone().into_owned()),
        Field::Number(number) => Some(number.to_string()),
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

/// The Event Hubs output binding's value: an array of JSON strings, one event body each (a
/// string element is sent verbatim; see the protocol notes), written as one text.
#[derive(Debug)]
pub struct OutputEvents {
    text: String,
    count: usize,
}

impl OutputEvents {
    /// An empty array written into `buffer` (emptied first: one kept from an earlier answer, its
    /// memory already mapped), with room for `bytes` of escaped bodies (and for the answer
    /// written around them, see `InvocationResponse::into_json`).
    pub fn with_capacity_in(bytes: usize, mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        buffer.reserve(bytes + 16 * 1024);
        let mut text = String::from_utf8(buffer).expect("an empty buffer is UTF-8");
        text.push('[');
        Self { text, count: 0 }
    }

    /// Appends an event whose body `write` appends already escaped as a JSON string's contents
    /// (as `AssetEvent::write_escaped_body` does).
    pub fn push_escaped(&mut self, write: impl FnOnce(&mut String)) {
        self.open();
        write(&mut self.text);
        self.text.push('"');
    }

    /// Appends an event body.
    pub fn push(&mut self, body: &str) {
        self.open();
        let quoted = serde_json::to_string(body).expect("a string serialises");
        self.text.push_str(&quoted[1..]);
    }

    fn open(&mut self) {
        if self.count > 0 {
            self.text.push(',');
        }
        self.count += 1;
        self.text.push('"');
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The array's JSON text.
    pub fn finish(mut self) -> JsonText {
        self.text.push(']');
        JsonText::written(self.text)
    }
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

    #[test]
    fn the_usual_bodies_are_read_in_one_pass_and_anything_else_the_general_way() {
        let sent = |bodies: &[&str]| {
            serde_json::to_string(&serde_json::to_string(bodies).unwrap()).unwrap()
        };
        let usual = sent(&[r#"{"id":"a \"b\" \\ c","n":null}"#, "not json", "", "币"]);
        assert_eq!(
            double_encoded_bodies(&usual).unwrap(),
            vec![r#"{"id":"a \"b\" \\ c","n":null}"#, "not json", "", "币"]
        );
        assert_eq!(
            double_encoded_bodies(&sent(&[])).unwrap(),
            Vec::<String>::new()
        );
        for unusual in [
            sent(&["line\nbreak"]),
            r#""[\"a\", \"b\"]""#.to_owned(),
            r#""[1]""#.to_owned(),
            r#""[\"a\"] ""#.to_owned(),
            r#""[\"a\"""#.to_owned(),
            "[\"a\"]".to_owned(),
        ] {
            assert_eq!(double_encoded_bodies(&unusual), None, "{unusual}");
        }
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
            if let Some(one_pass) = double_encoded_bodies(&sent) {
                proptest::prop_assert_eq!(Some(one_pass), read_bodies(&general));
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
