//! The HTTP side of the custom handler: `fn app(state) -> Router` and `run(listener, state,
//! shutdown)`. The host calls `POST /<FunctionName>` and polls `GET /` for readiness.

use std::any::Any;
use std::future::Future;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::app::AppState;
use crate::functions::{self, EVENT_HUB_SINK, TIMER_FETCH, TimerFetch};
use crate::host::spool::{self, SpoolError};
use crate::host::{INVOCATION_ID_HEADER, InvocationResponse};
use crate::spare::Spare;

/// TimerFetch's timer payload is small; EventHubSink reads its own body ([`spool::receive`]).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(ready))
        .route(&format!("/{TIMER_FETCH}"), post(timer_fetch))
        .route(&format!("/{EVENT_HUB_SINK}"), post(event_hub_sink))
        .fallback(unknown_function)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight invocations.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM (what the host and `func start` send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "Cannot listen for Ctrl-C.");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "Cannot listen for SIGTERM.");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Readiness: the host polls this every 25 ms at start-up, so it does no I/O.
async fn ready() -> Json<serde_json::Value> {
    Json(json!({"status": "ready"}))
}

fn invocation_id(headers: &HeaderMap) -> String {
    headers
        .get(INVOCATION_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map_or_else(|| "none".to_owned(), str::to_owned)
}

async fn timer_fetch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match functions::timer_fetch(
        TimerFetch {
            coincap: &state.coincap,
            secrets: state.secrets.as_ref(),
        },
        invocation_id(&headers),
        &body,
    )
    .await
    {
        Ok(response) => answer_keeping(response, &functions::TIMER_FETCH_ANSWERS),
        Err(failure) => failure.into_response(),
    }
}

/// An Event Hubs batch may be up to `maxEventBatchSize` events of 1 MB each, escaped twice: its
/// body is received whole first, in memory or, when large, in a temporary file.
async fn event_hub_sink(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body = match spool::receive(body).await {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "EventHubSink request not read.");
            let status = match error {
                SpoolError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            return (status, Json(json!({"error": error.to_string()}))).into_response();
        }
    };
    match functions::event_hub_sink(state.warehouse.as_ref(), invocation_id(&headers), &body).await
    {
        Ok(response) => answer(response),
        Err(failure) => failure.into_response(),
    }
}

/// A function's answer as JSON, written around the outputs as the function wrote them
/// (TimerFetch's events are about 1 MB of escaped text, written once), handed over without a copy.
fn answer(response: InvocationResponse) -> Response {
    ([(CONTENT_TYPE, "application/json")], response.into_json()).into_response()
}

/// [`answer`], whose buffer goes back to `spare` once hyper has sent it and let it go.
fn answer_keeping(response: InvocationResponse, spare: &'static Spare) -> Response {
    let body = Bytes::from_owner(Kept {
        buffer: response.into_json(),
        spare,
    });
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

/// An answer's bytes, given back to their [`Spare`] when dropped.
struct Kept {
    buffer: Vec<u8>,
    spare: &'static Spare,
}

impl AsRef<[u8]> for Kept {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.spare.keep(std::mem::take(&mut self.buffer));
    }
}

async fn unknown_function(uri: Uri) -> Response {
    let name = uri.path().trim_start_matches('/');
    tracing::error!(function = name, "No such function.");
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("no function named {name:?}: expected {TIMER_FETCH} or {EVENT_HUB_SINK}")})),
    )
        .into_response()
}

async fn method_not_allowed(uri: Uri) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({"error": format!("{} takes POST (GET / is the readiness probe)", uri.path())})),
    )
        .into_response()
}

/// A panic is a bug, never an answer to input; if one happens the process keeps serving and the
/// invocation fails (so the retry policy redelivers).
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = message, "Invocation panicked.");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": format!("internal error: {message}")})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::JsonText;

    #[tokio::test]
    async fn an_answer_s_buffer_is_kept_once_its_bytes_are_let_go() {
        static SPARE: Spare = Spare::new();
        let mut response = InvocationResponse::default();
        response.outputs.insert(
            "events".into(),
            JsonText::written(format!(r#"["{}"]"#, "x".repeat(4000))),
        );
        let answer = answer_keeping(response, &SPARE);
        assert_eq!(answer.headers()[CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value["Outputs"]["events"][0].as_str().map(str::len),
            Some(4000)
        );
        // The bytes are still in use: nothing is kept yet.
        assert_eq!(SPARE.take(0).capacity(), 0);
        let at = body.as_ptr();
        drop(body);
        let kept = SPARE.take(0);
        assert_eq!((kept.as_ptr(), kept.len()), (at, 0));
    }
}
