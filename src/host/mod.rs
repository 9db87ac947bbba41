//! The Azure Functions custom-handler protocol as the v4 host implements it: the request envelope,
//! double-encoded values, the response. Both sides live here: the handler decodes what the host
//! sends, and the local runner encodes exactly the same payloads.

pub mod event_hubs;
pub mod timer;

use serde::Serialize;
use serde_json::{Map, Value};

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

/// `{"Data": {...}, "Metadata": {...}}` as the host posts it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InvocationRequest {
    pub data: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

impl InvocationRequest {
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        let Value::Object(mut envelope) = value else {
            return Err(EnvelopeError::NotAnObject);
        };
        Ok(Self {
            data: take_object(&mut envelope, "Data")?,
            metadata: take_object(&mut envelope, "Metadata")?,
        })
    }

    /// A metadata entry, double decoding undone.
    pub fn metadata(&self, key: &str) -> Option<Value> {
        self.metadata.get(key).map(decode)
    }

    /// The retry attempt the host is on (0 for the first delivery), from `RetryContext`.
    pub fn retry_count(&self) -> u64 {
        self.metadata("RetryContext")
            .and_then(|context| context.get("RetryCount").and_then(Value::as_u64))
            .unwrap_or(0)
    }
}

fn take_object(
    envelope: &mut Map<String, Value>,
    key: &'static str,
) -> Result<Map<String, Value>, EnvelopeError> {
    match envelope.remove(key).map(decode_owned) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(object)) => Ok(object),
        Some(_) => Err(EnvelopeError::FieldNotAnObject(key)),
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

/// `{"Outputs": {...}, "Logs": [...], "ReturnValue": null}`: what a successful invocation answers.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvocationResponse {
    pub outputs: Map<String, Value>,
    pub logs: Vec<String>,
    pub return_value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
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
            InvocationRequest::parse(b"[]"),
            Err(EnvelopeError::NotAnObject)
        );
        assert_eq!(
            InvocationRequest::parse(br#"{"Data":[1]}"#),
            Err(EnvelopeError::FieldNotAnObject("Data"))
        );
        let empty = InvocationRequest::parse(b"{}").unwrap();
        assert!(empty.data.is_empty() && empty.metadata.is_empty());
    }

    #[test]
    fn the_retry_count_comes_from_the_retry_context() {
        let request = InvocationRequest::parse(
            br#"{"Data":{},"Metadata":{"RetryContext":{"RetryCount":2,"MaxRetryCount":-1}}}"#,
        )
        .unwrap();
        assert_eq!(request.retry_count(), 2);
    }

    #[test]
    fn the_response_uses_the_host_s_pascal_case_keys() {
        let response = InvocationResponse::default();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"Outputs": {}, "Logs": [], "ReturnValue": null})
        );
    }
}
