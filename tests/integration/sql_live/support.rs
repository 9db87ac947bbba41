//! What the live tests share: the server from `COINCAP_TEST_MSSQL`, the writer and
//! `init-warehouse` pointed at it, small queries, and the events and batches they write.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use coincap_stream::domain::{EventCoordinates, map_events};
use coincap_stream::secrets::{Secret, SecretName, SecretSource};
use coincap_stream::warehouse::sql::connection::{TdsClient, TdsManager};
use coincap_stream::warehouse::sql::{BulkLoadSetting, SqlConfig, SqlLogin};
use coincap_stream::warehouse::{Batch, SqlWarehouse};
use serde_json::json;

use crate::common::FixedSecrets;
use crate::common::run::Binary;

pub const VARIABLE: &str = "COINCAP_TEST_MSSQL";
pub const HISTORY: &str = "assets.asset_statistics_history_v3";
pub const REJECTS: &str = "assets.asset_statistics_rejects";

/// The server's connection string; without it the test fails (it runs only when asked for).
pub fn connection_string() -> String {
    std::env::var(VARIABLE)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "needs {VARIABLE} (Azure SQL Database, SQL Server or a dedicated pool): set it to an ADO.NET connection string of a test database"
            )
        })
}

/// One live test at a time within a run.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

pub fn secrets(connection: &str) -> Arc<dyn SecretSource> {
    Arc::new(FixedSecrets(HashMap::from([(
        SecretName::SqlConnectionString,
        Secret::new(connection),
    )])))
}

pub fn config() -> SqlConfig {
    SqlConfig {
        login: SqlLogin::ConnectionString,
        pool_size: 2,
        command_timeout: Duration::from_secs(300),
        idle_timeout: Duration::from_secs(60),
        auto_pause_delay: None,
        bulk_load: bulk_load(),
    }
}

/// How `check` says rows go, in this run (the server CI runs on takes bulk load).
pub fn rows_go() -> &'static str {
    match bulk_load() {
        BulkLoadSetting::Auto => " (staged by bulk load)",
        BulkLoadSetting::Off => " (as SQL text: SQL_BULK_LOAD=off)",
    }
}

/// How the run's writers send rows: `SQL_BULK_LOAD` (`auto` unless set; `.ci/run` runs the
/// suite a second time with `off`), for the writers the tests make and the handlers they start.
pub fn bulk_load() -> BulkLoadSetting {
    std::env::var("SQL_BULK_LOAD").map_or(BulkLoadSetting::Auto, |setting| {
        setting
            .parse()
            .unwrap_or_else(|e| panic!("SQL_BULK_LOAD={setting}: {e}"))
    })
}

pub fn warehouse(connection: &str) -> SqlWarehouse {
    SqlWarehouse::new(config(), secrets(connection), None)
}

pub fn prefix() -> String {
    format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Runs `handler init-warehouse` (twice is fine) so the tables exist; returns what it printed.
pub async fn init(connection: &str) -> String {
    let output = Binary::init_warehouse()
        .env("SQL_CONNECTION_STRING", connection)
        .run_s_bulk_load()
        .output()
        .await;
    assert!(
        output.status.success(),
        "{}\n{}",
        output.stdout,
        output.stderr
    );
    output.stdout
}

pub async fn client(connection: &str) -> TdsClient {
    TdsManager::new(config(), secrets(connection), None)
        .connect_client()
        .await
        .unwrap()
}

pub async fn execute(connection: &str, sql: &str) {
    client(connection)
        .await
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_results()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub async fn scalar_i64(connection: &str, sql: &str) -> i64 {
    let row = client(connection)
        .await
        .simple_query(sql)
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    row.get::<i64, _>(0).unwrap()
}

/// `connection` sent to `127.0.0.1:port` instead (a stand-in in front of the server), with
/// `extra` settings appended.
pub fn through(connection: &str, port: u16, extra: &str) -> String {
    let parts: Vec<String> = connection
        .split(';')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            if part.trim().to_ascii_lowercase().starts_with("server=") {
                format!("Server=tcp:127.0.0.1,{port}")
            } else {
                part.to_owned()
            }
        })
        .collect();
    format!("{};{extra}", parts.join(";"))
}

/// The server's `host:port`.
pub fn address(connection: &str) -> String {
    tiberius::Config::from_ado_string(connection)
        .unwrap()
        .get_addr()
}

/// Whether another session holds the writer lock now (its transaction is open): this session's
/// update of the lock row cannot get it within 200 ms.
pub async fn writer_lock_held(connection: &str) -> bool {
    let sql = "SET LOCK_TIMEOUT 200; BEGIN TRAN; UPDATE assets.asset_statistics_writer_lock SET last_write_at = last_write_at; ROLLBACK TRAN;";
    let mut client = client(connection).await;
    let result = async { client.simple_query(sql).await?.into_results().await }.await;
    match result {
        Ok(_) => false,
        // SQL Server: 1222 "Lock request time out period exceeded"; other engines say it in words.
        Err(error)
            if error.code() == Some(1222)
                || error.to_string().to_lowercase().contains("lock timeout") =>
        {
            true
        }
        Err(error) => panic!("{sql}: {error}"),
    }
}

/// Keys stored more than once under `prefix`.
pub async fn repeated_keys(connection: &str, prefix: &str) -> i64 {
    scalar_i64(
        connection,
        &format!(
            "SELECT COUNT_BIG(*) FROM (SELECT id FROM {HISTORY} WHERE id LIKE N'{prefix}%' GROUP BY id, runtime_timestamp HAVING COUNT(*) > 1) AS d"
        ),
    )
    .await
}

/// Rejects stored under a partition id (the tests use their prefix as one).
pub async fn rejects(connection: &str, partition: &str) -> i64 {
    scalar_i64(
        connection,
        &format!("SELECT COUNT_BIG(*) FROM {REJECTS} WHERE partition_id = '{partition}'"),
    )
    .await
}

pub async fn is_dedicated_pool(connection: &str) -> bool {
    scalar_i64(
        connection,
        "SELECT CAST(SERVERPROPERTY('EngineEdition') AS bigint)",
    )
    .await
        == 6
}

/// Events as TimerFetch publishes them: quotes, unicode, NULLs, millisecond timestamps.
pub fn events(prefix: &str, n: usize, timestamp: i64) -> Vec<String> {
    (0..n)
        .map(|i| {
            json!({
                "id": format!("{prefix}{i:05}"),
                "rank": (i + 1).to_string(),
                "symbol": if i % 3 == 0 { json!(null) } else { json!(format!("S{i}")) },
                "name": match i % 4 { 0 => "O'Neil \"Moon\"".to_owned(), 1 => "München 币 🚀".to_owned(), 2 => format!("Asset {i}"), _ => "';--".to_owned() },
                "supply": format!("{}.{}", i * 1000, i),
                "maxSupply": if i % 2 == 0 { json!(null) } else { json!("21000000.0000000000000000") },
                "marketCapUsd": "1873456789012.3456789012345678",
                "volumeUsd24Hr": "0.0000000000000001",
                "priceUsd": format!("{}.1234567890123456", i),
                "changePercent24Hr": "-1.2345678901234567",
                "vwap24Hr": json!(null),
                "explorer": "https://blockchain.info/",
                "timestamp": timestamp + (i as i64 % 7) * 10,
            })
            .to_string()
        })
        .collect()
}

pub fn batch(bodies: &[String], first_sequence: i64) -> Batch {
    batch_in(bodies, "7", first_sequence)
}

/// Where the tests' events sat: the hub, and the enqueued time of sequence number 0.
pub const NAMESPACE: &str = "ns.servicebus.windows.net";
pub const EVENT_HUB: &str = "coincaphub";
pub const ENQUEUED_MS: i64 = 1_777_636_800_000;

pub fn batch_in(bodies: &[String], partition: &str, first_sequence: i64) -> Batch {
    let mapped = map_events(bodies.iter().enumerate().map(|(i, body)| {
        (
            body.clone(),
            EventCoordinates {
                namespace: Some(NAMESPACE.into()),
                event_hub: Some(EVENT_HUB.into()),
                partition_id: Some(partition.into()),
                offset: Some((1000 + i).to_string()),
                sequence_number: Some(first_sequence + i as i64),
                // The same on every delivery of the batch, as Event Hubs keeps it.
                enqueued_time: chrono::DateTime::from_timestamp_millis(
                    ENQUEUED_MS + first_sequence + i as i64,
                ),
            },
        )
    }));
    Batch {
        rows: mapped.rows,
        rejects: mapped.rejects,
    }
}

pub async fn count(connection: &str, prefix: &str) -> i64 {
    scalar_i64(
        connection,
        &format!("SELECT COUNT_BIG(*) FROM {HISTORY} WHERE id LIKE N'{prefix}%'"),
    )
    .await
}

/// A reject's body, whatever it holds, as stored, and its reason.
pub async fn stored_reject(connection: &str, partition: &str) -> (String, String) {
    let row = client(connection)
        .await
        .simple_query(format!(
            "SELECT raw_body, reason FROM {REJECTS} WHERE partition_id = '{partition}'"
        ))
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("the reject is stored");
    let text = |i: usize| row.get::<&str, _>(i).unwrap().to_owned();
    (text(0), text(1))
}

/// Whether the server gives back a text holding NUL exactly, asked the way a user would: a
/// UTF-16 binary constant converted to `nvarchar` (an error counts as no).
pub async fn server_stores_nul(connection: &str) -> bool {
    let mut client = client(connection).await;
    let answer = client
        .simple_query(
            "SELECT s.b FROM (SELECT CAST(0x4E0055004C0000002100 AS nvarchar(max)) AS b) AS s",
        )
        .await;
    let Ok(stream) = answer else { return false };
    match stream.into_row().await {
        Ok(Some(row)) => row.get::<&str, _>(0) == Some("NUL\0!"),
        _ => false,
    }
}

/// A body stored by a server that took it as it is, or escaped with the mark in its reason:
/// either way the original comes back exactly.
pub fn original_body(stored: &str, reason: &str) -> String {
    if reason.contains("[raw_body escaped: ") {
        serde_json::from_str(stored).unwrap_or_else(|e| panic!("{e}: {stored}"))
    } else {
        stored.to_owned()
    }
}

/// Not JSON, so a reject: quotes, astral characters, past 4000 and 8000 characters.
pub fn long_body(len: usize) -> String {
    "O'Neil \"Moon\" \u{1F680} M\u{fc}nchen \u{5e01} ';-- "
        .chars()
        .cycle()
        .take(len)
        .collect()
}

/// The seed's table, as the original tutorial created it (varchar ids, a ROUND_ROBIN heap).
pub fn seed_table_ddl(dedicated_pool: bool) -> String {
    let columns = "[id_asset_statistics_history] bigint IDENTITY(1,1), [id] varchar(255) NOT NULL, [asset_rank] bigint, [symbol] varchar(255), [asset_name] varchar(255), [supply] float, [maxSupply] float, [marketCapUsd] float, [volumeUsd24Hr] float, [priceUsd] float, [changePercent24Hr] float, [vwap24Hr] float, [explorer] varchar(255), [runtime_timestamp] datetime NOT NULL";
    let with = if dedicated_pool {
        " WITH (DISTRIBUTION = ROUND_ROBIN, HEAP)"
    } else {
        ""
    };
    format!("CREATE TABLE {HISTORY} ({columns}){with}")
}

/// Runs `test` with a seed-shaped history table in place of ours (whose rows are dropped: a test
/// database), then puts ours back, empty, with `init-warehouse`, even when the test fails (then
/// the failure is raised again).
pub async fn with_seed_table<F, T>(test: F)
where
    F: FnOnce(String) -> T,
    T: std::future::Future<Output = ()> + Send + 'static,
{
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let dedicated_pool = is_dedicated_pool(&connection).await;
    execute(&connection, &format!("DROP TABLE {HISTORY}")).await;
    execute(&connection, &seed_table_ddl(dedicated_pool)).await;

    let outcome = tokio::spawn(test(connection.clone())).await;

    execute(&connection, &format!("DROP TABLE {HISTORY}")).await;
    init(&connection).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// The SQL `init-warehouse` printed under the advice whose reason starts with `why`, as a user
/// would copy it (without the report's indentation).
pub fn advice(report: &str, why: &str) -> String {
    let mut lines = report.lines().skip_while(|line| {
        !line.starts_with("  -- in database ") || !line.contains(&format!(": {why}"))
    });
    assert!(lines.next().is_some(), "no advice to {why} in {report}");
    lines
        .take_while(|line| line.starts_with("  ") && !line.starts_with("  -- in database "))
        .map(|line| &line[2..])
        .collect::<Vec<_>>()
        .join("\n")
}
