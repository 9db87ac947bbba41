//! The Azure Functions custom-handler protocol as the v4 host implements it: the request envelope,
//! double-encoded values, the response, and a request's body received whole (`spool`: in memory,
//! or in a temporary file when large). Both sides live here: the handler decodes what the host
//! sends, and the local runner encodes exactly the same payloads.

pub mod event_hubs;
pub mod spool;
pub mod timer;

mod envelope;

use envelope::Envelope;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::SeqAccess;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::domain::Field;

/// The header carrying the invocation id on every `POST /<FunctionName>`.
pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// Why a request is not a valid invocation envelope (answered with 400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body must be a JSON object with \"Data\" and \"Metadata\"")]
    NotAnObject,
    #[error("\"{0}\" must be a JSON object")]
    FieldNotAnObject(&'static str),
    #[error("Data.{0} is missing")]
    MissingBinding(String),
    #[error("Data.{binding} is not {expected}")]
    BadBinding {
        binding: String,
        expected: &'static str,
    },
}

/// `{"Data": {...}, "Metadata": {...}}` as the host posts it, read in one pass that only scans
/// each entry (its JSON text is borrowed from the body), so a function parses only the entries
/// it uses, and each the way it needs (the Event Hubs bodies without a `Value` tree).
#[derive(Debug, Default, Clone)]
pub struct InvocationRequest<'a> {
    data: Entries<'a>,
    metadata: Entries<'a>,
}

type Entries<'a> = BTreeMap<String, Entry<'a>>;

/// One entry of `Data` or `Metadata`.
#[derive(Debug, Clone, PartialEq)]
enum Entry<'a> {
    /// As the host sent it: the text of one JSON value borrowed from the body, only scanned so
    /// far.
    Raw(&'a str),
    /// Read through a `Value` tree (an envelope the one-pass reading refused, or `Data` sent as a
    /// string holding an object).
    Value(Value),
}

impl Entry<'_> {
    /// The value, double encoding undone.
    fn decode(&self) -> Value {
        match self {
            Self::Raw(raw) => serde_json::from_str(raw).map_or(Value::Null, decode_owned),
            Self::Value(value) => decode(value),
        }
    }

    /// The JSON text the entry stands for: a string's contents (unescaped), or the text of any
    /// other value.
    fn json(&self) -> Cow<'_, str> {
        match self {
            Self::Raw(raw) => {
                if raw.starts_with('"')
                    && let Ok(Field::Text(text)) = serde_json::from_str(raw)
                {
                    return text;
                }
                Cow::Borrowed(raw)
            }
            Self::Value(Value::String(text)) => Cow::Borrowed(text),
            Self::Value(value) => Cow::Owned(value.to_string()),
        }
    }
}

impl<'a> InvocationRequest<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, EnvelopeError> {
        if let Some((data, metadata)) = envelope::skim(body) {
            return Ok(Self { data, metadata });
        }
        match serde_json::from_slice::<Envelope<'a>>(body) {
            Ok(Envelope {
                data: Ok(data),
                metadata: Ok(metadata),
            }) => Ok(Self { data, metadata }),
            Ok(
                Envelope { data: Err(key), .. }
                | Envelope {
                    metadata: Err(key), ..
                },
            ) => Err(EnvelopeError::FieldNotAnObject(key)),
            Err(_) => Self::parse_unusual(body),
        }
    }

    /// What the one-pass reading refuses: says why it is not an envelope, or reads it through a
    /// `Value` tree.
    #[cold]
    fn parse_unusual(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        let Value::Object(mut envelope) = value else {
            return Err(EnvelopeError::NotAnObject);
        };
        let mut take = |key: &'static str| match envelope.remove(key).map(decode_owned) {
            None | Some(Value::Null) => Ok(Entries::new()),
            Some(Value::Object(object)) => Ok(object
                .into_iter()
                .map(|(key, value)| (key, Entry::Value(value)))
                .collect()),
            Some(_) => Err(EnvelopeError::FieldNotAnObject(key)),
        };
        Ok(Self {
            data: take("Data")?,
            metadata: take("Metadata")?,
        })
    }

    /// A `Data` entry (an input binding), double encoding undone.
    pub fn data(&self, binding: &str) -> Option<Value> {
        self.data.get(binding).map(Entry::decode)
    }

    /// A `Data` entry's JSON text, double encoding undone (what a string holds, or the text of
    /// any other value): for reading it without a `Value` tree.
    pub fn data_json(&self, binding: &str) -> Option<Cow<'_, str>> {
        self.data.get(binding).map(Entry::json)
    }

    /// A `Data` entry's JSON text exactly as the host sent it (`None` when the entry was read
    /// another way): for a reader that undoes the double encoding itself.
    pub fn data_as_sent(&self, binding: &str) -> Option<&'a str> {
        match self.data.get(binding)? {
            Entry::Raw(raw) => Some(raw),
            Entry::Value(_) => None,
        }
    }

    /// A metadata entry's JSON text exactly as the host sent it (see
    /// [`InvocationRequest::data_as_sent`]).
    pub fn metadata_as_sent(&self, key: &str) -> Option<&'a str> {
        match self.metadata.get(key)? {
            Entry::Raw(raw) => Some(raw),
            Entry::Value(_) => None,
        }
    }

    /// A metadata entry, double decoding undone.
    pub fn metadata(&self, key: &str) -> Option<Value> {
        self.metadata.get(key).map(Entry::decode)
    }

    /// A metadata entry's JSON text, double encoding undone (see [`InvocationRequest::data_json`]).
    pub fn metadata_json(&self, key: &str) -> Option<Cow<'_, str>> {
        self.metadata.get(key).map(Entry::json)
    }

    /// Whether the request has neither `Data` nor `Metadata` entries.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty() && self.metadata.is_empty()
    }

    /// The retry attempt the host is on (0 for the first delivery), from `RetryContext`.
    pub fn retry_count(&self) -> u64 {
        self.metadata("RetryContext")
            .and_then(|context| context.get("RetryCount").and_then(Value::as_u64))
            .unwrap_or(0)
    }
}

/// Undoes the host's double encoding: every value that does not serialise to a JSON object is
/// sent as a JSON string holding its JSON text. A string that parses as JSON is replaced by what
/// it holds; any other value (objects, real arrays, a string that is not JSON) is used as it is.
pub fn decode(value: &Value) -> Value {
    match value {
        Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| value.clone()),
        other => other.clone(),
    }
}

/// [`decode`] for an owned value, without copying what needs no decoding.
pub fn decode_owned(value: Value) -> Value {
    match value {
        Value::String(text) => match serde_json::from_str(&text) {
            Ok(decoded) => decoded,
            Err(_) => Value::String(text),
        },
        other => other,
    }
}

/// The host's encoding of a non-object value: its JSON text as a JSON string.
pub fn encode(value: &Value) -> Value {
    match value {
        Value::Object(_) => value.clone(),
        other => Value::String(other.to_string()),
    }
}

/// .NET's round-trip form without the zone: 7 fractional digits (`2026-09-24T13:08:00.0096035`).
pub fn dotnet_time(at: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike as _;
    format!(
        "{}.{:07}",
        at.format("%Y-%m-%dT%H:%M:%S"),
        at.nanosecond() % 1_000_000_000 / 100
    )
}

/// `sys` metadata as the host adds it to every invocation.
pub fn sys_metadata(function: &str, now: chrono::DateTime<chrono::Utc>) -> Value {
    serde_json::json!({
        "MethodName": function,
        "UtcNow": format!("{}Z", dotnet_time(now)),
        "RandGuid": uuid::Uuid::new_v4().to_string(),
    })
}

/// Compact JSON text this crate wrote, to be sent as it is (never parsed again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// `value` serialised by serde_json.
    pub fn of(value: &impl Serialize) -> Self {
        // The values this crate answers (JSON values, strings, vectors) always serialise.
        Self(serde_json::to_string(value).expect("an output value serialises"))
    }

    /// Text the caller wrote as one compact JSON value (checked in debug builds only: the whole
    /// point is not to read a megabyte of events again).
    pub fn written(text: String) -> Self {
        debug_assert!(
            serde_json::from_str::<&RawValue>(&text).is_ok_and(|raw| raw.get().len() == text.len()),
            "not one JSON value: {text:.200}"
        );
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `{"Outputs": {...}, "Logs": [...], "ReturnValue": null}`: what a successful invocation answers.
#[derive(Debug, Default, Clone)]
pub struct InvocationResponse {
    /// Each output binding's value as JSON text (TimerFetch writes its events array directly).
    pub outputs: BTreeMap<String, JsonText>,
    pub logs: Vec<String>,
    pub return_value: Value,
}

impl InvocationResponse {
    /// The answer's body. The largest output (TimerFetch's megabyte of events) becomes the
    /// buffer the rest is written around, so it is neither copied into a new one nor re-read.
    pub fn into_json(mut self) -> Vec<u8> {
        let largest = self
            .outputs
            .iter()
            .max_by_key(|(_, text)| text.0.len())
            .map(|(name, _)| name.clone());
        let buffer = largest
            .as_ref()
            .and_then(|name| self.outputs.get_mut(name))
            .map(|text| std::mem::take(&mut text.0))
            .unwrap_or_default();
        let mut before = Vec::with_capacity(256);
        let mut after = Vec::with_capacity(256 * (self.logs.len() + 1));
        before.extend_from_slice(b"{\"Outputs\":{");
        let mut out = &mut before;
        for (i, (name, value)) in self.outputs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Writing into a Vec cannot fail, and a string always serialises.
            let _ = serde_json::to_writer(&mut *out, name);
            out.push(b':');
            if Some(name) == largest.as_ref() {
                out = &mut after;
            } else {
                out.extend_from_slice(value.0.as_bytes());
            }
        }
        out.extend_from_slice(b"},\"Logs\":");
        let _ = serde_json::to_writer(&mut *out, &self.logs);
        out.extend_from_slice(b",\"ReturnValue\":");
        let _ = serde_json::to_writer(&mut *out, &self.return_value);
        out.push(b'}');
        let mut body = buffer.into_bytes();
        body.reserve(before.len() + after.len());
        body.splice(0..0, before);
        body.extend_from_slice(&after);
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;
    use serde_json::json;

    #[test]
    fn double_encoded_values_are_decoded() {
        assert_eq!(decode(&json!("\"x\"")), json!("x"));
        assert_eq!(decode(&json!("[1,2]")), json!([1, 2]));
        assert_eq!(decode(&json!("100")), json!(100));
    }

    #[test]
    fn plain_values_are_used_as_they_are() {
        assert_eq!(decode(&json!({"a": 1})), json!({"a": 1}));
        assert_eq!(decode(&json!([1, 2])), json!([1, 2]));
        assert_eq!(decode(&json!("not json")), json!("not json"));
        assert_eq!(decode_owned(json!("not json")), json!("not json"));
    }

    #[test]
    fn encode_is_what_decode_undoes() {
        for value in [
            json!("x"),
            json!([1, "a"]),
            json!(5),
            json!({"k": [1]}),
            json!(null),
        ] {
            assert_eq!(decode(&encode(&value)), value);
        }
    }

    #[test]
    fn an_envelope_needs_json_objects() {
        assert!(matches!(
            InvocationRequest::parse(b"nope"),
            Err(EnvelopeError::NotJson(_))
        ));
        assert_eq!(
            InvocationRequest::parse(b"[]").unwrap_err(),
            EnvelopeError::NotAnObject
        );
        assert_eq!(
            InvocationRequest::parse(br#"{"Data":[1]}"#).unwrap_err(),
            EnvelopeError::FieldNotAnObject("Data")
        );
        let empty = InvocationRequest::parse(b"{}").unwrap();
        assert!(empty.is_empty());
        let null = InvocationRequest::parse(br#"{"Data":null,"Metadata":"null"}"#).unwrap();
        assert!(null.is_empty());
        assert_eq!(
            InvocationRequest::parse(br#"{"Data":{},"Metadata":"[1]"}"#).unwrap_err(),
            EnvelopeError::FieldNotAnObject("Metadata")
        );
    }

    #[test]
    fn entries_are_read_plain_or_double_encoded() {
        let request = InvocationRequest::parse(
            br#"{"Data":{"timer":{"IsPastDue":true},"events":"[\"a\"]"},"Metadata":"{\"sys\":{\"MethodName\":\"X\"}}"}"#,
        )
        .unwrap();
        assert_eq!(request.data("timer").unwrap(), json!({"IsPastDue": true}));
        assert_eq!(request.data("events").unwrap(), json!(["a"]));
        assert_eq!(request.data_json("events").unwrap(), r#"["a"]"#);
        assert_eq!(request.data_as_sent("events"), Some(r#""[\"a\"]""#));
        assert_eq!(request.metadata("sys").unwrap()["MethodName"], "X");
        assert_eq!(request.data("missing"), None);
    }

    #[test]
    fn a_repeated_key_counts_with_its_last_value() {
        let request =
            InvocationRequest::parse(br#"{"Data":{"a":1},"Data":{"a":2,"a":3}}"#).unwrap();
        assert_eq!(request.data("a").unwrap(), json!(3));
    }

    #[test]
    fn a_string_entry_without_escapes_is_borrowed_from_the_body() {
        let request = InvocationRequest::parse(br#"{"Data":{"a":"[1,2]","b":5}}"#).unwrap();
        assert!(matches!(
            request.data_json("a"),
            Some(Cow::Borrowed("[1,2]"))
        ));
        assert_eq!(request.data("a").unwrap(), json!([1, 2]));
        assert_eq!(request.data_json("b").unwrap(), "5");
    }

    proptest::proptest! {
        #[test]
        fn one_pass_reads_what_a_value_tree_reads(
            entries in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["a", "b", "events"]),
                    proptest::prop_oneof![
                        ".{0,12}".prop_map(Value::from),
                        ".{0,12}".prop_map(|s| Value::from(Value::from(s).to_string())),
                        proptest::num::i64::ANY.prop_map(Value::from),
                        proptest::strategy::Just(json!({"k": [1, "x"]})),
                        proptest::strategy::Just(json!([null, true])),
                    ],
                ),
                0..5,
            ),
            data_form in 0..4u8,
        ) {
            let object = Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
            let data = match data_form {
                0 => object,
                1 => Value::String(object.to_string()),
                2 => Value::Null,
                _ => json!([1]),
            };
            let body = json!({"Data": data, "Metadata": {"sys": {"MethodName": "X"}}, "Other": 1}).to_string();
            let one_pass = InvocationRequest::parse(body.as_bytes());
            let through_a_tree = InvocationRequest::parse_unusual(body.as_bytes());
            match (one_pass, through_a_tree) {
                (Ok(one_pass), Ok(through_a_tree)) => {
                    for key in ["a", "b", "events"] {
                        proptest::prop_assert_eq!(one_pass.data(key), through_a_tree.data(key));
                        proptest::prop_assert_eq!(one_pass.data_json(key), through_a_tree.data_json(key));
                    }
                    proptest::prop_assert_eq!(one_pass.metadata("sys"), through_a_tree.metadata("sys"));
                }
                (one_pass, through_a_tree) => {
                    proptest::prop_assert_eq!(one_pass.err(), through_a_tree.err());
                }
            }
        }
    }

    #[test]
    fn the_response_uses_the_host_s_pascal_case_keys() {
        let answer = |response: &InvocationResponse| -> Value {
            serde_json::from_slice(&response.clone().into_json()).unwrap()
        };
        let mut response = InvocationResponse::default();
        assert_eq!(
            answer(&response),
            json!({"Outputs": {}, "Logs": [], "ReturnValue": null})
        );
        response.outputs.insert(
            "events".into(),
            JsonText::written(r#"["{\"a\":1}"]"#.into()),
        );
        response
            .outputs
            .insert("other \"one\"".into(), JsonText::of(&json!({"k": [1]})));
        response.logs.push("Line \"one\".".into());
        assert_eq!(
            answer(&response),
            json!({"Outputs": {"events": ["{\"a\":1}"], "other \"one\"": {"k": [1]}}, "Logs": ["Line \"one\"."], "ReturnValue": null})
        );
    }
}
