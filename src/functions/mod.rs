//! The two functions, one thin file each: read the invocation, call the domain, answer. Errors
//! become a response in one place ([`Failure`]).

pub mod counters;
mod event_hub_sink;
mod timer_fetch;

use std::fmt::Write as _;
use std::time::Instant;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use event_hub_sink::event_hub_sink;
pub use timer_fetch::{ANSWERS as TIMER_FETCH_ANSWERS, TimerFetch, timer_fetch};

use crate::coincap::CoinCapError;
use crate::fault::{Fault, Limit};
use crate::host::{EnvelopeError, InvocationResponse};
use crate::secrets::SecretError;
use crate::warehouse::WarehouseError;
use counters::{Counters, FINISHED};

/// The log target of a failed invocation's closing line.
pub const FAILED_TARGET: &str = "coincap_stream::invocation_failed";

/// Folder names of the functions (the routes the host posts to) and their binding names.
pub const TIMER_FETCH: &str = "TimerFetch";
pub const EVENT_HUB_SINK: &str = "EventHubSink";
pub const TIMER_BINDING: &str = "timer";
pub const EVENTS_BINDING: &str = "events";

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("malformed invocation: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    CoinCap(#[from] CoinCapError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

impl FunctionError {
    /// Whether another attempt may succeed, as the layer that failed judges it. A malformed
    /// invocation is the caller's bug: the same payload fails the same way.
    pub fn fault(&self) -> Fault {
        match self {
            Self::Envelope(_) => Fault::SELF_EXPLAINED,
            Self::Secret(error) => error.fault(),
            Self::CoinCap(error) => error.fault(),
            Self::Warehouse(error) => error.fault(),
        }
    }

    /// The limit of a plan or offer this failure says was reached (CoinCap's credits or rate
    /// limit, the SQL free offer's allowance).
    pub fn limit(&self) -> Option<Limit> {
        match self {
            Self::CoinCap(error) => error.limit(),
            Self::Warehouse(error) => error.limit(),
            Self::Envelope(_) | Self::Secret(_) => None,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Envelope(_) => StatusCode::BAD_REQUEST,
            Self::Secret(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::CoinCap(_) => StatusCode::BAD_GATEWAY,
            Self::Warehouse(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The per-invocation log: lines for the response's `Logs` array, which the host forwards to
/// Application Insights under `Function.<Name>.User`, correlated with the invocation.
pub struct Invocation {
    pub function: &'static str,
    pub id: String,
    started: Instant,
    logs: Vec<String>,
    /// Pairs the failure line carries when the invocation fails (`lag_ms`).
    on_failure: Vec<(&'static str, String)>,
}

impl Invocation {
    pub fn new(function: &'static str, id: String) -> Self {
        Self {
            function,
            id,
            started: Instant::now(),
            logs: Vec::new(),
            on_failure: Vec::new(),
        }
    }

    /// A `key=value` pair for the failure line, should the invocation fail (a later value for
    /// the same key replaces the earlier one).
    pub fn on_failure(&mut self, key: &'static str, value: impl ToString) {
        let value = value.to_string();
        match self.on_failure.iter_mut().find(|(k, _)| *k == key) {
            Some((_, earlier)) => *earlier = value,
            None => self.on_failure.push((key, value)),
        }
    }

    pub fn log(&mut self, line: impl Into<String>) {
        self.logs.push(line.into());
    }

    pub fn elapsed_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    /// The closing line with the invocation's counters under stable keys
    /// (`Invocation finished. function=EventHubSink events_in=3 ... elapsed_ms=12`).
    pub fn finish(mut self, counters: &impl Counters) -> InvocationResponse {
        let line = format!(
            "{FINISHED} function={} {counters} elapsed_ms={}",
            self.function,
            self.elapsed_ms()
        );
        tracing::debug!(invocation_id = %self.id, "{line}");
        self.logs.push(line);
        InvocationResponse {
            logs: self.logs,
            ..Default::default()
        }
    }

    /// A failed invocation: the closing line goes to stderr (the host logs it at Error level; the
    /// Logs and body of a non-2xx answer are discarded) and into a JSON body for anyone else
    /// calling, with the verdict ([`Fault`]): the local runner stops at once on a permanent one.
    pub fn fail(mut self, error: FunctionError) -> Failure {
        let fault = error.fault();
        let mut line = format!("Invocation failed. function={}", self.function);
        if let FunctionError::CoinCap(coincap) = &error {
            let status = coincap
                .status()
                .map_or("none".to_owned(), |s| s.to_string());
            let _ = write!(
                line,
                " coincap_status={status} retries={}",
                coincap.retries()
            );
        }
        for (key, value) in &self.on_failure {
            let _ = write!(line, " {key}={value}");
        }
        if let Some(limit) = error.limit() {
            let _ = write!(line, " limit={}", limit.key());
        }
        let _ = write!(line, " elapsed_ms={}", self.elapsed_ms());
        match &fault {
            Fault::Transient => line.push_str(" fault=transient"),
            Fault::Permanent { fix: None } => line.push_str(" fault=permanent"),
            Fault::Permanent { fix: Some(fix) } => {
                let _ = write!(line, " fault=permanent fix=\"{fix}\"");
            }
        }
        let _ = write!(line, " error=\"{error}\"");
        // The host discards the Logs of a failed invocation: stderr carries the same line, with the
        // same keys, so the monitoring queries read failures like any other invocation. (The
        // local runner prints its own line for a failure, so it turns this target off.)
        tracing::error!(target: FAILED_TARGET, invocation_id = %self.id, "{line}");
        self.logs.push(line);
        Failure {
            status: error.status(),
            body: json!({
                "error": error.to_string(),
                Fault::KEY: fault.to_json(),
                "function": self.function,
                "invocationId": self.id,
                "Logs": self.logs,
            }),
        }
    }
}

/// A non-2xx answer with a JSON body.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
