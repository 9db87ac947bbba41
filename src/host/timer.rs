//! The timer trigger's payload: `Data.timer` with `ScheduleStatus` and `IsPastDue`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::InvocationRequest;

/// What the handler reads of `Data.timer`. Every part is optional: `ScheduleStatus` is null when
/// `useMonitor` is off or before the first run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TimerInfo {
    pub is_past_due: bool,
    pub last: Option<String>,
    pub next: Option<String>,
}

impl TimerInfo {
    /// Reads the timer binding leniently: the handler needs nothing from it to do its work.
    pub fn from_request(request: &InvocationRequest, binding: &str) -> Self {
        let Some(timer) = request.data(binding) else {
            return Self::default();
        };
        let status = |key: &str| {
            timer
                .pointer(&format!("/ScheduleStatus/{key}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Self {
            is_past_due: timer
                .get("IsPastDue")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            last: status("Last"),
            next: status("Next"),
        }
    }
}

/// The form the host uses for schedule times: 7 fractional digits and an offset.
fn dotnet_time(at: DateTime<Utc>) -> String {
    format!("{}+00:00", super::dotnet_time(at))
}

/// The body the host posts to a timer-triggered function (used by the local runner).
pub fn request_body(
    function: &str,
    binding: &str,
    now: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
    next: DateTime<Utc>,
    is_past_due: bool,
) -> Value {
    let schedule_status = last.map(|last| {
        json!({"Last": dotnet_time(last), "Next": dotnet_time(next), "LastUpdated": dotnet_time(last)})
    });
    json!({
        "Data": {binding: {
            "Schedule": {"AdjustForDST": true},
            "ScheduleStatus": schedule_status,
            "IsPastDue": is_past_due,
        }},
        "Metadata": {"sys": super::sys_metadata(function, now)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = r#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},
        "ScheduleStatus":{"Last":"2026-09-24T13:08:00.0096035+00:00","Next":"2026-09-24T13:09:00+00:00","LastUpdated":"2026-09-24T13:08:00.0096035+00:00"},
        "IsPastDue":false}},
        "Metadata":{"sys":{"MethodName":"TimerFetch","UtcNow":"2026-09-24T13:08:00.0123456Z","RandGuid":"9cd4c06c-0000-0000-0000-000000000000"}}}"#;

    #[test]
    fn the_reference_timer_payload_is_read() {
        let request = InvocationRequest::parse(REFERENCE.as_bytes()).unwrap();
        let timer = TimerInfo::from_request(&request, "timer");
        assert!(!timer.is_past_due);
        assert_eq!(timer.next.as_deref(), Some("2026-09-24T13:09:00+00:00"));
    }

    #[test]
    fn a_null_schedule_status_is_fine() {
        let request = InvocationRequest::parse(
            br#"{"Data":{"timer":{"Schedule":{},"ScheduleStatus":null,"IsPastDue":true}},"Metadata":{}}"#,
        )
        .unwrap();
        let timer = TimerInfo::from_request(&request, "timer");
        assert!(timer.is_past_due);
        assert_eq!(timer.last, None);
    }

    #[test]
    fn the_runner_s_payload_reads_back() {
        let now = Utc::now();
        let body = request_body("TimerFetch", "timer", now, Some(now), now, false);
        let body = body.to_string();
        let request = InvocationRequest::parse(body.as_bytes()).unwrap();
        let timer = TimerInfo::from_request(&request, "timer");
        assert_eq!(timer.last, Some(dotnet_time(now)));
        assert_eq!(request.metadata("sys").unwrap()["MethodName"], "TimerFetch");
    }
}
