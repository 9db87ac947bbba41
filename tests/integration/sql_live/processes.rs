//! What only a server shows, through the real binary as a user runs it: an outage in the middle
//! of `handler local`, several `handler serve` processes writing overlapping batches at once, a
//! handler killed while its transaction is open. The outage test stops and starts the server
//! with the commands in `COINCAP_TEST_MSSQL_STOP` and `COINCAP_TEST_MSSQL_START` (`.ci/run` sets
//! them for the engine it starts; for a SQL Server container, `docker stop <name>` and
//! `docker start <name>`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;

use super::support::*;
use crate::common::coincap::{CoinCap, Reply, many_assets, page};
use crate::common::process::Running;
use crate::common::resuming::Resuming;
use crate::common::run::Binary;
use crate::common::tds_proxy::{Fault, TdsProxy};
use crate::common::{API_KEY, app_root, sink_payload, slow_retry_app_root};

/// `handler serve` writing into the server of `connection`, started.
async fn serve(connection: &str, command_timeout: &str) -> Running {
    Binary::serve()
        .sql(connection)
        .env("SQL_COMMAND_TIMEOUT", command_timeout)
        .env("COINCAP_API_KEY", API_KEY)
        .start()
        .await
}

/// Runs a shell command of the test's settings (stopping or starting the server).
async fn run_setting(variable: &str) {
    let command = std::env::var(variable)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let command = command.unwrap_or_else(|| {
        panic!("needs {variable}: a shell command that stops or starts the server of {VARIABLE}")
    });
    let status = tokio::process::Command::new("sh")
        .args(["-c", &command])
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "{variable} failed: {command}");
}

/// `n` CoinCap assets whose ids start with `prefix`.
fn assets(prefix: &str, n: usize) -> Vec<Value> {
    let mut assets = many_assets(n);
    for (i, asset) in assets.iter_mut().enumerate() {
        asset["id"] = Value::String(format!("{prefix}{i:04}"));
    }
    assets
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL, COINCAP_TEST_MSSQL_STOP and COINCAP_TEST_MSSQL_START"]
async fn a_server_outage_during_a_local_run_loses_and_duplicates_nothing() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    const TICKS: i64 = 6;
    const ASSETS: usize = 200;
    // The second fetch is answered only once the server is down: ticks run one after another,
    // so nothing but the first tick can be written before the outage, however slow the machine,
    // and the second tick's batch surely meets it.
    let outage_begun = Arc::new(Notify::new());
    let pages: Vec<Reply> = (0..TICKS)
        .map(|tick| {
            let reply = Reply::ok(page(
                1_747_000_000_000 + tick * 60_000,
                &assets(&prefix, ASSETS),
            ));
            match tick {
                1 => reply.held_until(Arc::clone(&outage_begun)),
                _ => reply,
            }
        })
        .collect();
    let coincap = CoinCap::start(pages, Reply::status(500, "{}")).await;
    let local = Binary::local(&app_root())
        .args(["--every", "2s", "--ticks", &TICKS.to_string()])
        // The names of earlier versions, which keep working.
        .env("WAREHOUSE", "synapse")
        .env("SYNAPSE_CONNECTION_STRING", &connection)
        .coincap(&coincap)
        // The held fetch waits as long as stopping the server takes: no timeout or retry of its
        // own, which would take the next tick's page.
        .env("COINCAP_TIMEOUT", "10m")
        .env("COINCAP_RETRY_BUDGET", "10m")
        .spawn();
    local
        .wait_for(Duration::from_secs(120), |stdout, _| {
            stdout.lines().any(|line| line.starts_with("tick"))
        })
        .await;
    assert_eq!(
        count(&connection, &prefix).await,
        ASSETS as i64,
        "the first tick is written, and only it"
    );
    run_setting("COINCAP_TEST_MSSQL_STOP").await;
    outage_begun.notify_one();
    // The runner reports the failed write and retries it, as the host's retry policy would.
    local
        .wait_for(Duration::from_secs(120), |stdout, _| {
            stdout.contains("tick   2 | EventHubSink failed (failure 1; next try in")
        })
        .await;
    run_setting("COINCAP_TEST_MSSQL_START").await;

    // The runner finishes on its own: the sink's retries find the server back.
    let stopped = local.finish(Duration::from_secs(300)).await;
    let seen = format!("{}\n{}", stopped.stdout, stopped.stderr);
    assert!(stopped.status.success(), "{seen}");
    assert_eq!(coincap.seen().len(), TICKS as usize, "every tick fetched");
    assert_eq!(
        count(&connection, &prefix).await,
        TICKS * ASSETS as i64,
        "every fetched row stored: {seen}"
    );
    assert_eq!(repeated_keys(&connection, &prefix).await, 0, "once");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL, COINCAP_TEST_MSSQL_STOP and COINCAP_TEST_MSSQL_START"]
async fn a_stop_during_a_backoff_tries_at_once_and_writes_what_was_fetched() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    const ASSETS: usize = 100;
    let coincap = CoinCap::serving(page(1_747_000_000_000, &assets(&prefix, ASSETS))).await;
    // Each retry waits 10 minutes, far past the drain deadline: only a stop that cuts the wait
    // short writes anything before the deadline.
    let root = slow_retry_app_root();
    run_setting("COINCAP_TEST_MSSQL_STOP").await;
    let local = Binary::local(root.path())
        .args(["--every", "1h", "--drain-timeout", "3m"])
        .coincap(&coincap)
        .sql(&connection)
        .spawn();
    local
        .wait_for(Duration::from_secs(120), |stdout, _| {
            stdout.contains("tick   1 | EventHubSink failed (failure 1; next try in 10m")
        })
        .await;
    run_setting("COINCAP_TEST_MSSQL_START").await;
    local.signal("-TERM");

    let stopped = local.finish(Duration::from_secs(300)).await;
    let seen = format!("{}\n{}", stopped.stdout, stopped.stderr);
    assert!(stopped.status.success(), "{seen}");
    assert!(
        stopped.stdout.contains(
            "tick   1 | Stopping: trying EventHubSink again now, not after the retry policy's wait."
        ),
        "{seen}"
    );
    let summary = stopped
        .stdout
        .lines()
        .find(|line| line.starts_with("Summary:"))
        .unwrap_or_else(|| panic!("no summary: {seen}"));
    assert!(
        summary.contains(&format!(
            "fetched {ASSETS}, published {ASSETS}, written {ASSETS},"
        )) && summary.contains("dropped 0, not written 0"),
        "{summary}"
    );
    assert_eq!(
        count(&connection, &prefix).await,
        ASSETS as i64,
        "what was fetched is stored: {seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn several_serve_processes_given_overlapping_batches_store_one_row_per_key() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    // Handler w receives keys [100 w, 100 w + 300): neighbours share 200 keys.
    let all = events(&prefix, 500, 1_747_000_000_000);
    let mut handlers = Vec::new();
    for _ in 0..3 {
        handlers.push(serve(&connection, "120s").await);
    }
    let deliveries: Vec<_> = handlers
        .into_iter()
        .enumerate()
        .map(|(w, mut handler)| {
            let payload = sink_payload(&all[100 * w..100 * w + 300], 100 * w as i64);
            tokio::spawn(async move {
                let answer = handler.post("EventHubSink", payload.to_string()).await;
                (answer, handler)
            })
        })
        .collect();
    let mut written = 0;
    for delivery in deliveries {
        let (answer, handler) = delivery.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        written += answer.sink_counters().rows_written;
        handler.stop("-TERM").await;
    }

    assert_eq!(count(&connection, &prefix).await, 500);
    assert_eq!(written, 500, "each key written by exactly one handler");
    assert_eq!(repeated_keys(&connection, &prefix).await, 0);
}

/// The host redelivers a batch whose handler died. The dead handler's transaction may still be
/// open on the server; the new handler's write waits for it behind the writer lock, but never
/// longer than `SQL_COMMAND_TIMEOUT` (then it fails, transiently, and is redelivered). The first
/// handler writes through a TDS proxy that holds its transaction open (its `COMMIT` held back, no
/// answer), so it is killed while it holds the writer lock however fast its statements ran.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_handler_killed_mid_transaction_loses_nothing_and_the_redelivery_waits_at_most_the_command_timeout()
 {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    const ROWS: usize = 3000;
    let timeout = Duration::from_secs(30);
    let payload = sink_payload(&events(&prefix, ROWS, 1_747_000_000_000), 0).to_string();
    let proxy = TdsProxy::start(address(&connection)).await;
    let via = through(&connection, proxy.port, "Encrypt=DANGER_PLAINTEXT");
    let doomed = serve(&via, "300s").await;
    let mut next = serve(&connection, "30s").await;
    proxy.arm(Fault::HoldOpen);

    // The host's call to the first handler; it never gets an answer.
    let url = format!("http://127.0.0.1:{}/EventHubSink", doomed.port);
    let first = tokio::spawn(
        reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/json")
            .body(payload.clone())
            .send(),
    );
    let asked = Instant::now();
    while proxy.carried_out() == 0 || !writer_lock_held(&connection).await {
        assert!(
            asked.elapsed() < Duration::from_secs(60),
            "the first handler never took the writer lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    doomed.kill().await;
    assert!(
        first.await.unwrap().is_err(),
        "the killed handler never answers"
    );

    let mut answers = Vec::new();
    loop {
        let started = Instant::now();
        let answer = next.post("EventHubSink", payload.clone()).await;
        let waited = started.elapsed();
        assert!(
            waited <= timeout + Duration::from_secs(10),
            "the redelivery waited {waited:?}"
        );
        let status = answer.status;
        answers.push((status, waited, answer.body.to_string()));
        match status {
            200 => break,
            503 => assert!(answers.len() < 5, "{answers:?}"),
            _ => panic!("{answers:?}"),
        }
    }
    next.stop("-TERM").await;

    assert_eq!(
        count(&connection, &prefix).await,
        ROWS as i64,
        "{answers:?}"
    );
    assert_eq!(repeated_keys(&connection, &prefix).await, 0);
}

/// An auto-paused serverless Azure SQL database answers the first login with 40613 while it
/// resumes (played by a stand-in in front of the server): the invocation fails, transiently,
/// saying the database was resuming; the host's redelivery writes the batch whole, once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_database_resuming_from_auto_pause_fails_the_first_delivery_and_loses_nothing() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    let resuming = Resuming::start(address(&connection), 1).await;
    let via = through(&connection, resuming.port, "Encrypt=DANGER_PLAINTEXT");
    let mut handler = serve(&via, "60s").await;
    let payload = sink_payload(&events(&prefix, 100, 1_747_000_000_000), 0).to_string();

    let first = handler.post("EventHubSink", payload.clone()).await;
    let again = handler.post("EventHubSink", payload).await;
    let stopped = handler.stop("-TERM").await;

    assert_eq!(first.status, 503, "{}", first.body);
    let error = first.body["error"].as_str().unwrap();
    assert!(error.contains("(transient, SQL error 40613)"), "{error}");
    assert!(
        error.contains("an auto-paused serverless database answers this while it resumes"),
        "{error}"
    );
    assert!(
        stopped.stderr.contains("SQL error 40613"),
        "{}",
        stopped.stderr
    );
    assert_eq!(
        resuming.refused.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.sink_counters().rows_written, 100);
    assert_eq!(count(&connection, &prefix).await, 100);
}
