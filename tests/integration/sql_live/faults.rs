//! Faults between the writer and the server, played by a TDS proxy in front of it
//! ([`TdsProxy`]), and batches that used to be lost, hung or mislabelled: through `handler serve`
//! as the host calls it. Every test asserts the rows and rejects in the database and the counters
//! the sink reports. No test times anything: "promptly" is an answer before a bound only a hang
//! can pass (the command timeout and a minute).

use std::time::Duration;

use super::support::*;
use crate::common::process::Running;
use crate::common::run::Binary;
use crate::common::tds_proxy::{Fault, TdsProxy};
use crate::common::{API_KEY, Answer, Hub, hub_payload};

mod bulk;
mod keys;
mod large;

/// The command timeout of the handlers here, and the bound only a hang passes.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
const HANG: Duration = Duration::from_secs(20 + 60);

/// `handler serve` writing into `connection` with a pool of one connection.
pub(super) async fn serve(connection: &str) -> Running {
    serve_with(connection, &[]).await
}

/// The same, with these settings too.
pub(super) async fn serve_with(connection: &str, settings: &[(&str, &str)]) -> Running {
    Binary::serve()
        .sql(connection)
        .env("SQL_POOL_SIZE", "1")
        .env(
            "SQL_COMMAND_TIMEOUT",
            format!("{}s", COMMAND_TIMEOUT.as_secs()),
        )
        .env("COINCAP_API_KEY", API_KEY)
        .settings(settings.iter().copied())
        .start()
        .await
}

/// A proxy in front of the server, and the connection string through it (in plain text, so the
/// proxy reads the protocol).
pub(super) async fn proxy(connection: &str) -> (TdsProxy, String) {
    let proxy = TdsProxy::start(address(connection)).await;
    let via = through(connection, proxy.port, "Encrypt=DANGER_PLAINTEXT");
    (proxy, via)
}

/// A proxy in front of the server, and a handler writing through it.
async fn behind_proxy(connection: &str) -> (TdsProxy, Running) {
    let (proxy, via) = proxy(connection).await;
    (proxy, serve(&via).await)
}

/// A hub of the test's own (its rejects meet no other test's), enqueued at `enqueued`.
pub(super) fn hub(prefix: &str, enqueued: &str) -> Hub {
    Hub {
        namespace: format!("{}.servicebus.windows.net", prefix.trim_end_matches('-')),
        name: prefix.trim_end_matches('-').to_owned(),
        partition: "0".into(),
        enqueued: enqueued.into(),
    }
}

pub(super) const ENQUEUED: &str = "2026-05-01T12:00:00.123";

/// `rows` events under `prefix`, then `poison` events that are not JSON, from `hub`.
pub(super) fn batch_of(prefix: &str, rows: usize, poison: usize, hub: &Hub) -> String {
    let mut bodies = events(prefix, rows, 1_747_000_000_000);
    bodies.extend((0..poison).map(|i| format!("poison {prefix} {i}")));
    hub_payload(&bodies, hub, 0).to_string()
}

/// Rejects stored from the hub named `name`.
pub(super) async fn rejects_from(connection: &str, name: &str) -> i64 {
    scalar_i64(
        connection,
        &format!("SELECT COUNT_BIG(*) FROM {REJECTS} WHERE event_hub_name = '{name}'"),
    )
    .await
}

/// The server of the run, this test's turn on it, and its tables as `init-warehouse` makes them.
pub(super) async fn turn() -> (String, tokio::sync::MutexGuard<'static, ()>) {
    let connection = connection_string();
    let turn = serial().await;
    init(&connection).await;
    (connection, turn)
}

/// A new prefix and a batch of `rows` events and `poison` events under it, from its own hub.
fn fresh(rows: usize, poison: usize) -> (String, String) {
    let prefix = prefix();
    let batch = batch_of(&prefix, rows, poison, &hub(&prefix, ENQUEUED));
    (prefix, batch)
}

/// Fails unless the database holds exactly `rows` rows under `prefix` (each key once) and
/// `rejects` rejects from its hub.
pub(super) async fn assert_stored(connection: &str, prefix: &str, rows: i64, rejects: i64) {
    assert_eq!(count(connection, prefix).await, rows, "{prefix}");
    assert_eq!(repeated_keys(connection, prefix).await, 0, "{prefix}");
    let hub = hub(prefix, ENQUEUED);
    assert_eq!(
        rejects_from(connection, &hub.name).await,
        rejects,
        "{prefix}"
    );
}

/// Posts `batch` and fails the test past [`HANG`].
pub(super) async fn deliver(handler: &mut Running, batch: &str) -> Answer {
    tokio::time::timeout(HANG, handler.post("EventHubSink", batch.to_owned()))
        .await
        .expect("the handler answers before the command timeout and a minute")
}

/// (rows_written, duplicates, rejects) of a 200 answer.
pub(super) fn counts(answer: &Answer) -> (u64, u64, u64) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let counters = answer.sink_counters();
    (counters.rows_written, counters.duplicates, counters.rejects)
}

fn fault_kind(answer: &Answer) -> &str {
    answer.body["fault"]["kind"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_connection_cut_after_commit_counts_the_rows_as_written_once() {
    let (connection, _turn) = turn().await;
    let (proxy, mut handler) = behind_proxy(&connection).await;
    let warm = prefix();
    counts(&deliver(&mut handler, &batch_of(&warm, 1, 0, &hub(&warm, ENQUEUED))).await);
    let (prefix, batch) = fresh(60, 2);

    proxy.arm(Fault::CutAfterCommit);
    let first = deliver(&mut handler, &batch).await;
    let again = deliver(&mut handler, &batch).await;
    let stopped = handler.stop("-TERM").await;

    assert_eq!(proxy.carried_out(), 1);
    assert_eq!(counts(&first), (60, 0, 2), "written, not duplicates");
    assert_eq!(counts(&again), (0, 60, 0), "the redelivery adds nothing");
    assert!(
        again
            .logs()
            .iter()
            .any(|l| l.ends_with("rejects_existing=2")),
        "{:?}",
        again.logs()
    );
    assert!(
        stopped
            .stdout
            .contains("The lost transaction had committed"),
        "{}\n{}",
        stopped.stdout,
        stopped.stderr
    );
    assert_stored(&connection, &prefix, 60, 2).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_connection_cut_before_commit_rolls_back_and_the_resend_writes_the_batch_once() {
    let (connection, _turn) = turn().await;
    let (proxy, mut handler) = behind_proxy(&connection).await;
    let (prefix, batch) = fresh(60, 2);

    proxy.arm(Fault::CutBeforeCommit);
    let first = deliver(&mut handler, &batch).await;
    handler.stop("-TERM").await;

    assert_eq!(proxy.carried_out(), 1);
    assert_eq!(counts(&first), (60, 0, 2));
    assert_stored(&connection, &prefix, 60, 2).await;
}

/// The batch runs and commits; its answer never comes. The invocation fails (transient) after
/// the command timeout, the connection is never used again, and the redelivery counts what the
/// unanswered transaction wrote as written: the counters of the two deliveries add up to what
/// the database holds.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_black_holed_answer_fails_transiently_and_the_redelivery_counts_what_it_wrote() {
    let (connection, _turn) = turn().await;
    let (proxy, mut handler) = behind_proxy(&connection).await;
    let (prefix, batch) = fresh(60, 2);

    proxy.arm(Fault::BlackHole);
    let first = deliver(&mut handler, &batch).await;
    let again = deliver(&mut handler, &batch).await;
    let third = deliver(&mut handler, &batch).await;
    handler.stop("-TERM").await;

    assert_eq!(first.status, 503, "{}", first.body);
    assert_eq!(fault_kind(&first), "transient", "{}", first.body);
    assert_eq!(counts(&again), (60, 0, 2), "what the first delivery wrote");
    assert_eq!(counts(&third), (0, 60, 0));
    assert_stored(&connection, &prefix, 60, 2).await;
}

/// A login that takes a few seconds is waited for; one that takes longer than the handshake
/// timeout (15 s) fails the invocation transiently, and the next delivery writes the batch.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_delayed_login_is_waited_for_or_fails_transiently_and_nothing_is_lost() {
    let (connection, _turn) = turn().await;
    let (proxy, mut slow) = behind_proxy(&connection).await;
    let (prefix, batch) = fresh(30, 1);
    proxy.arm(Fault::DelayLogin(Duration::from_secs(3)));
    let waited = deliver(&mut slow, &batch).await;
    slow.stop("-TERM").await;

    let (stalled, mut handler) = behind_proxy(&connection).await;
    let (other, batch) = fresh(30, 1);
    stalled.arm(Fault::DelayLogin(Duration::from_secs(25)));
    let failed = deliver(&mut handler, &batch).await;
    let again = deliver(&mut handler, &batch).await;
    handler.stop("-TERM").await;

    assert_eq!(counts(&waited), (30, 0, 1));
    assert_stored(&connection, &prefix, 30, 1).await;
    assert_eq!(failed.status, 503, "{}", failed.body);
    assert_eq!(fault_kind(&failed), "transient", "{}", failed.body);
    assert_eq!(counts(&again), (30, 0, 1));
    assert_stored(&connection, &other, 30, 1).await;
}

/// The host gives up on an invocation while its write waits for the server (here: an answer
/// that never comes). The handler's task is dropped with its connection, which is never handed
/// to the next batch: on a pool of one, the next batches are written promptly and correctly, and
/// the given-up batch's redelivery counts what it wrote.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_cancelled_invocation_leaves_no_connection_behind_and_the_next_batches_land() {
    let (connection, _turn) = turn().await;
    let (proxy, handler) = behind_proxy(&connection).await;
    given_up_then_next(&connection, &proxy, handler, Fault::BlackHole).await;
}

/// On `handler` (a pool of one, writing through `proxy`): a warm-up batch, then a batch the host
/// gives up on once the proxy has done `fault` to it (so its write waits for an answer that never
/// comes), then three more batches and the given-up one's redelivery. Each is written exactly:
/// the given-up write's connection is never handed to the next batch, and the redelivery counts
/// what the given-up delivery wrote.
pub(super) async fn given_up_then_next(
    connection: &str,
    proxy: &TdsProxy,
    mut handler: Running,
    fault: Fault,
) {
    let warm = prefix();
    counts(&deliver(&mut handler, &batch_of(&warm, 1, 0, &hub(&warm, ENQUEUED))).await);
    let given_up = prefix();
    let batch = batch_of(&given_up, 60, 2, &hub(&given_up, ENQUEUED));

    proxy.arm(fault);
    let url = format!("http://127.0.0.1:{}/EventHubSink", handler.port);
    let host = tokio::spawn(
        reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/json")
            .body(batch.clone())
            .send(),
    );
    while proxy.carried_out() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The host gives up: the request is dropped, and the connection to the handler with it.
    host.abort();
    let _ = host.await;
    let mut next = Vec::new();
    for _ in 0..3 {
        let prefix = self::prefix();
        let answer = deliver(
            &mut handler,
            &batch_of(&prefix, 40, 1, &hub(&prefix, ENQUEUED)),
        )
        .await;
        next.push((prefix, answer));
    }
    let redelivered = deliver(&mut handler, &batch).await;
    handler.stop("-TERM").await;

    for (prefix, answer) in &next {
        assert_eq!(counts(answer), (40, 0, 1), "{prefix}");
        assert_stored(connection, prefix, 40, 1).await;
    }
    assert_eq!(
        counts(&redelivered),
        (60, 0, 2),
        "what the given-up delivery wrote"
    );
    assert_stored(connection, &given_up, 60, 2).await;
}

/// Each number SqlClient's retry list and Azure SQL's transient fault codes name, answered in
/// place of a batch: the invocation fails transiently, and the redelivery writes the batch once.
/// A paused pool (42108) is permanent and says to resume it; another permanent error in a batch
/// holding rejects stores their bodies as received once it passes, never escaped.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn each_transient_error_number_is_retried_and_the_batch_lands_once() {
    let (connection, _turn) = turn().await;
    let (proxy, mut handler) = behind_proxy(&connection).await;
    for number in [615, 926, 997, 1204, 1222, 4221, 40143, 40540] {
        let (prefix, batch) = fresh(20, 1);
        proxy.arm(Fault::Error(number));
        let refused = deliver(&mut handler, &batch).await;
        let again = deliver(&mut handler, &batch).await;

        assert_eq!(refused.status, 503, "{number}: {}", refused.body);
        assert_eq!(
            fault_kind(&refused),
            "transient",
            "{number}: {}",
            refused.body
        );
        let error = refused.body["error"].as_str().unwrap();
        assert!(error.contains(&format!("SQL error {number}")), "{error}");
        assert_eq!(counts(&again), (20, 0, 1), "{number}");
        assert_stored(&connection, &prefix, 20, 1).await;
    }
    let (prefix, batch) = fresh(20, 1);
    proxy.arm(Fault::Error(42108));
    let paused = deliver(&mut handler, &batch).await;
    proxy.arm(Fault::Error(8152));
    let truncated = deliver(&mut handler, &batch).await;
    let again = deliver(&mut handler, &batch).await;
    handler.stop("-TERM").await;

    assert_eq!(paused.status, 503, "{}", paused.body);
    assert_eq!(fault_kind(&paused), "permanent");
    let fix = paused.body["fault"]["fix"].as_str().unwrap();
    assert!(fix.contains("resume the pool"), "{fix}");
    assert_eq!(fault_kind(&truncated), "permanent", "{}", truncated.body);
    assert_eq!(counts(&again), (20, 0, 1));
    let escaped = scalar_i64(
        &connection,
        &format!(
            "SELECT COUNT_BIG(*) FROM {REJECTS} WHERE event_hub_name = '{}' AND raw_body = N'poison {prefix} 0' AND reason NOT LIKE N'%raw_body escaped%'",
            hub(&prefix, ENQUEUED).name
        ),
    )
    .await;
    assert_eq!(escaped, 1, "the body as received");
}
