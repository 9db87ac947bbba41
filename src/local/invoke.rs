//! Calls the handler over real HTTP the way the host does: `POST /<FunctionName>` with the
//! invocation id header and the JSON envelope.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::fault::Fault;
use crate::host::INVOCATION_ID_HEADER;

#[derive(Clone)]
pub struct HostClient {
    http: reqwest::Client,
    base_url: String,
}

impl HostClient {
    pub fn new(base_url: String, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent("Azure-Functions-Host/4.x (coincap-stream local runner)")
            .timeout(timeout)
            .build()?;
        Ok(Self { http, base_url })
    }

    /// One invocation; a non-2xx answer (a failed invocation) is an error carrying its reason and
    /// the handler's verdict on another attempt.
    pub async fn invoke(&self, function: &str, body: &Value) -> Result<Value, Failed> {
        let transient = |error: String| Failed {
            error,
            fault: Fault::Transient,
        };
        let response = self
            .http
            .post(format!("{}/{function}", self.base_url))
            .header(INVOCATION_ID_HEADER, uuid::Uuid::new_v4().to_string())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| transient(format!("{function} could not be invoked: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| transient(format!("{function} answer was cut: {e}")))?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            Ok(answer)
        } else {
            Err(Failed {
                error: answer["error"].as_str().map_or_else(
                    || format!("HTTP {}: {answer}", status.as_u16()),
                    str::to_owned,
                ),
                fault: Fault::of_body(&answer),
            })
        }
    }
}

/// A failed invocation, as the runner sees it: the handler's reason and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    pub error: String,
    pub fault: Fault,
}

impl fmt::Display for Failed {
    /// The reason, then what to change when the handler said: `<error>. Fix: <fix>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(fix) = self.fault.fix() {
            write!(f, ". Fix: {fix}")?;
        }
        Ok(())
    }
}

/// The events an Event Hubs output binding sends for `Outputs.<name>`: one per array element,
/// a string sent verbatim, anything else as (indented) JSON, as the host does.
pub fn output_events(response: &Value, name: &str) -> Vec<String> {
    match &response["Outputs"][name] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            })
            .collect(),
        Value::String(text) => vec![text.clone()],
        other => vec![serde_json::to_string_pretty(other).unwrap_or_default()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_array_output_is_one_event_per_element() {
        let response = json!({"Outputs": {"events": ["{\"id\":\"a\"}", {"id": "b"}]}});
        let events = output_events(&response, "events");
        assert_eq!(events[0], r#"{"id":"a"}"#);
        assert_eq!(events[1], "{\n  \"id\": \"b\"\n}");
        assert!(output_events(&json!({"Outputs": {}}), "events").is_empty());
    }
}
