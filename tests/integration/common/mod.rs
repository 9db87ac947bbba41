//! Shared by every suite: the stand-ins (CoinCap; Azure's identity endpoint and Key Vault, as one
//! set in [`azure`]), the in-process app on port 0 with a temporary SQLite warehouse, the real
//! `handler` binary run one way ([`run::Binary`]), and payload builders that follow the protocol
//! reference byte for byte.

#![allow(dead_code)]

pub mod azure;
pub mod coincap;
pub mod identity;
pub mod keyvault;
pub mod process;
pub mod proxy;
pub mod resuming;
pub mod run;
pub mod tds_proxy;
pub mod tls;
pub mod words;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use coincap_stream::BoxFuture;
use coincap_stream::app::AppState;
use coincap_stream::config::{Config, Mode};
use coincap_stream::functions::counters::{Counters, EventHubSinkCounters, TimerFetchCounters};
use coincap_stream::secrets::{Secret, SecretError, SecretName, SecretSource};
use coincap_stream::server;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const API_KEY: &str = "test-key-6f1c";

/// Secrets handed to the in-process app (the real binary reads the environment instead).
pub struct FixedSecrets(pub HashMap<SecretName, Secret>);

impl SecretSource for FixedSecrets {
    fn get(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>> {
        let found = self.0.get(&name).cloned();
        Box::pin(async move {
            found.ok_or(SecretError::NotInEnvironment {
                name,
                var: name.env_var(),
            })
        })
    }

    fn describe(&self) -> String {
        "test".into()
    }
}

/// The handler's server, in-process, on a free port, with a temporary SQLite warehouse.
pub struct TestApp {
    pub url: String,
    pub db_path: PathBuf,
    pub http: reqwest::Client,
    _dir: TempDir,
    _stop: oneshot::Sender<()>,
}

impl TestApp {
    pub async fn spawn(coincap_url: &str) -> Self {
        Self::spawn_with(coincap_url, &[], Some(API_KEY)).await
    }

    pub async fn spawn_with(
        coincap_url: &str,
        settings: &[(&str, &str)],
        api_key: Option<&str>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("warehouse.db");
        let mut map: HashMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert("COINCAP_BASE_URL".into(), coincap_url.into());
        map.entry("COINCAP_RETRY_BASE".into())
            .or_insert_with(|| "10ms".into());
        map.insert("WAREHOUSE".into(), format!("sqlite:{}", db_path.display()));
        let config = Config::from_lookup(Mode::Serve, |key| map.get(key).cloned()).unwrap();
        let secrets = api_key
            .map(|key| HashMap::from([(SecretName::CoinCapApiKey, Secret::new(key))]))
            .unwrap_or_default();
        let secrets: Arc<dyn SecretSource> = Arc::new(FixedSecrets(secrets));
        let state = AppState::build(&config, secrets).unwrap();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server::run(listener, state, async {
            let _ = stopped.await;
        }));
        Self {
            url,
            db_path,
            http: reqwest::Client::new(),
            _dir: dir,
            _stop: stop,
        }
    }

    /// Posts raw bytes the way the host does; returns the status, content type and JSON body.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        let response = self
            .http
            .post(format!("{}/{path}", self.url))
            .header("Content-Type", "application/json")
            .header(
                "X-Azure-Functions-InvocationId",
                "6a1f3f2e-0000-4000-8000-000000000001",
            )
            .header("User-Agent", "Azure-Functions-Host/4.x")
            .body(body)
            .send()
            .await
            .unwrap();
        Answer::read(response).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, body.to_string()).await
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db_path).unwrap()
    }

    pub fn count(&self, table: &str) -> i64 {
        self.db()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }
}

/// An HTTP answer, checked for the protocol's invariants on the way in.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "status {status}: {text}"
        );
        assert!(!text.is_empty(), "every answer has a body");
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        Self { status, body }
    }

    pub fn logs(&self) -> Vec<String> {
        self.body["Logs"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| l.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// TimerFetch's counters, from the closing `Invocation finished.` line.
    pub fn timer_counters(&self) -> TimerFetchCounters {
        self.counters()
    }

    /// EventHubSink's counters, from the closing `Invocation finished.` line.
    pub fn sink_counters(&self) -> EventHubSinkCounters {
        self.counters()
    }

    fn counters<C: Counters>(&self) -> C {
        let logs = self.logs();
        C::from_logs(logs.iter().map(String::as_str))
            .unwrap_or_else(|| panic!("no readable closing line in {logs:?}"))
    }

    pub fn events(&self) -> Vec<String> {
        self.body["Outputs"]["events"]
            .as_array()
            .unwrap_or_else(|| panic!("no Outputs.events in {}", self.body))
            .iter()
            .map(|e| e.as_str().expect("every event is a string").to_owned())
            .collect()
    }
}

/// The timer payload of the protocol reference.
pub fn timer_payload() -> Value {
    json!({"Data":{"timer":{"Schedule":{"AdjustForDST":true},
        "ScheduleStatus":{"Last":"2026-09-24T13:08:00.0096035+00:00","Next":"2026-09-24T13:09:00+00:00","LastUpdated":"2026-09-24T13:08:00.0096035+00:00"},
        "IsPastDue":false}},
     "Metadata":{"sys":{"MethodName":"TimerFetch","UtcNow":"2026-09-24T13:08:00.0123456Z","RandGuid":"9cd4c06c-0000-0000-0000-000000000000"}}})
}

/// An Event Hubs batch as the host sends it (`cardinality: many`, `dataType: string`): bodies
/// and every metadata array double encoded, sequence numbers from `first_sequence`.
pub fn sink_payload(bodies: &[String], first_sequence: i64) -> Value {
    hub_payload(bodies, &Hub::default(), first_sequence)
}

/// Where a batch comes from: the hub (namespace and name), the partition, and when its events
/// were enqueued.
#[derive(Debug, Clone)]
pub struct Hub {
    pub namespace: String,
    pub name: String,
    pub partition: String,
    /// Every event's `EnqueuedTimeUtcArray` item.
    pub enqueued: String,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            namespace: "ns.servicebus.windows.net".into(),
            name: "coincaphub".into(),
            partition: "3".into(),
            enqueued: "2026-05-01T12:00:00.123".into(),
        }
    }
}

/// [`sink_payload`] from `hub`.
pub fn hub_payload(bodies: &[String], hub: &Hub, first_sequence: i64) -> Value {
    let encode = |items: Vec<Value>| Value::String(Value::Array(items).to_string());
    let n = bodies.len() as i64;
    let seqs: Vec<i64> = (first_sequence..first_sequence + n).collect();
    json!({
        "Data": {"events": encode(bodies.iter().map(|b| json!(b)).collect())},
        "Metadata": {
            "PartitionContext": {"FullyQualifiedNamespace": hub.namespace,"EventHubName": hub.name,
                                 "ConsumerGroup":"$Default","PartitionId": hub.partition,"IsCheckpointingAfterInvocation":true},
            "PartitionKeyArray": encode(seqs.iter().map(|_| Value::Null).collect()),
            "OffsetArray": encode(seqs.iter().map(|s| json!((4_294_967_296 + s * 100).to_string())).collect()),
            "SequenceNumberArray": encode(seqs.iter().map(|s| json!(s)).collect()),
            "EnqueuedTimeUtcArray": encode(seqs.iter().map(|_| json!(hub.enqueued)).collect()),
            "PropertiesArray": encode(seqs.iter().map(|_| json!({})).collect()),
            "SystemPropertiesArray": encode(seqs.iter().map(|s| json!({"SequenceNumber": s})).collect()),
            "sys": {"MethodName":"EventHubSink","UtcNow":"2026-05-01T12:00:01.0000000Z","RandGuid":"9cd4c06c-0000-0000-0000-000000000001"}
        }
    })
}

/// The real `handler` binary with a clean environment (no inherited settings); tests run it
/// through [`run::Binary`].
fn handler() -> tokio::process::Command {
    handler_at(std::path::Path::new(env!("CARGO_BIN_EXE_handler")))
}

/// A `handler` binary at `path` (the packaged one in dist/app, say), with a clean environment.
fn handler_at(path: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(path);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A copy of the Functions app whose EventHubSink retries after 200 ms, then 400 ms at most
/// (instead of 5 s up to 5 minutes), so a test sees several retries in a second.
pub fn fast_retry_app_root() -> TempDir {
    app_root_edited(|text| {
        text.replace("00:00:05", "00:00:00.200")
            .replace("00:05:00", "00:00:00.400")
    })
}

/// A copy of the Functions app whose EventHubSink waits 10 minutes before each retry, longer
/// than any test's drain deadline: only a stop that cuts the wait short tries again in time.
pub fn slow_retry_app_root() -> TempDir {
    app_root_edited(|text| {
        text.replace("\"exponentialBackoff\"", "\"fixedDelay\"")
            .replace(
                "\"minimumInterval\": \"00:00:05\"",
                "\"delayInterval\": \"00:10:00\"",
            )
            .replace(",\n    \"maximumInterval\": \"00:05:00\"", "")
    })
}

/// A copy of the Functions app (host.json and both function.json files), each function.json
/// passed through `edit`.
fn app_root_edited(edit: impl Fn(&str) -> String) -> TempDir {
    let root = tempfile::tempdir().unwrap();
    let repo = app_root();
    std::fs::copy(repo.join("host.json"), root.path().join("host.json")).unwrap();
    for function in ["TimerFetch", "EventHubSink"] {
        std::fs::create_dir(root.path().join(function)).unwrap();
        let text = std::fs::read_to_string(repo.join(function).join("function.json")).unwrap();
        let edited = edit(&text);
        std::fs::write(root.path().join(function).join("function.json"), edited).unwrap();
    }
    root
}

/// The repository root: the Functions app root.
pub fn app_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A port that refuses connections for as long as the guard lives: bound, never listening, so
/// no other process can take it meanwhile.
pub fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// Waits like the host: polls `GET /` every 25 ms until anything answers.
pub async fn wait_ready(port: u16) {
    let http = reqwest::Client::new();
    for _ in 0..1200 {
        if http
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the handler never answered GET / on port {port}");
}

/// The query string of a request a stand-in received, decoded.
pub fn query(uri: &axum::http::Uri) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://stand-in{uri}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Sends a signal to a child process by pid.
pub fn signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("the child is running").to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The packaged Functions app (`scripts/package.sh` writes it): `dist/app` with `handler`,
/// host.json and the function folders. A test that needs it is `#[ignore]`d; run with
/// `--ignored`, it fails here when the package was not built.
pub fn packaged_app() -> PathBuf {
    let app = app_root().join("dist").join("app");
    assert!(
        app.join("handler").is_file(),
        "{} is missing: run scripts/package.sh first",
        app.join("handler").display()
    );
    app
}
