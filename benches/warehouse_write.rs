//! What one 1000-row batch costs the warehouse as history grows: into an empty table, and into one
//! that already holds 1 million rows. The two must stay within 1.5x of each other (the duplicate
//! check is bounded by the batch's time window, not by the history). A benchmark, not a test: it
//! prints the figures and their ratio and fails nothing.
//!
//! - SQLite: always (a temporary file; history written through the same `Warehouse::write`).
//! - A SQL Server-family database (Azure SQL Database, SQL Server, a dedicated pool): when
//!   `COINCAP_TEST_MSSQL` holds an ADO.NET connection string. It runs `init-warehouse`'s steps,
//!   then EMPTIES `assets.asset_statistics_history_v3` in that (test) database, fills it with 1
//!   million older rows in one set-based statement, and writes through `SqlWarehouse` exactly as
//!   EventHubSink does, both ways: rows staged by bulk load (as deployed) and rows as SQL text
//!   (`SQL_BULK_LOAD=off`), their batches taking turns. Into the empty table it also measures where
//!   one batch's time goes. Text: rendering it here, the server receiving and parsing it (the same
//!   text behind a `THROW`, which ends the batch once it is parsed, before any of the rest runs),
//!   and running it (the rest of a real write of the same text); a syntax error at the end would
//!   not do: a parser may take a slower path to report one (ANTLR-based engines do, forty times
//!   slower here). Bulk: rendering its transaction, staging the rows (column query, `INSERT BULK`,
//!   the rows), the transaction up to its answer (lock, count, insert), and its `COMMIT` with the
//!   staging table emptied (those two sent apart here to time them). The naive writer's rows/s,
//!   beside the writers', is in `benches/compare.rs`.
//!
//! `cargo bench --bench warehouse_write` (scripts/bench.sh runs it). `BENCH_WAREHOUSE_SAMPLES`
//! (default 15) batches are timed for each figure; the median is printed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coincap_stream::BoxFuture;
use coincap_stream::domain::{EventCoordinates, map_events};
use coincap_stream::secrets::{Secret, SecretError, SecretName, SecretSource};
use coincap_stream::warehouse::sql::bulk;
use coincap_stream::warehouse::sql::connection::TdsClient;
use coincap_stream::warehouse::sql::connection::TdsManager;
use coincap_stream::warehouse::sql::init::{self, catalog};
use coincap_stream::warehouse::sql::statement::{
    BATCH_LIMITS, Form, HISTORY_TABLE, KeyTypes, Rows, StageTable, build_batches,
};
use coincap_stream::warehouse::sql::{BulkLoadSetting, SqlConfig, SqlLogin};
use coincap_stream::warehouse::{Batch, SqlWarehouse, SqliteWarehouse, Warehouse};
use serde_json::json;

const BATCH: usize = 1000;
const HISTORY_ROWS: usize = 1_000_000;
const TARGET_RATIO: f64 = 1.5;
/// 2026-01-01T00:00:00Z: timed batches start here; the filled history lies before it.
const START_MS: i64 = 1_767_225_600_000;
/// CoinCap ticks are minutes apart; each batch is one tick of 1000 assets.
const TICK_MS: i64 = 5 * 60 * 1000;

/// One tick: 1000 assets at one timestamp, as TimerFetch publishes them.
fn batch(tick: i64) -> Batch {
    let at = START_MS + tick * TICK_MS;
    let mapped = map_events((0..BATCH).map(|i| {
        let body = json!({
            "id": format!("asset-{i:04}"),
            "rank": (i + 1).to_string(),
            "symbol": format!("A{i}"),
            "name": format!("Asset {i}"),
            "supply": "19500000.0000000000000000",
            "maxSupply": "21000000.0000000000000000",
            "marketCapUsd": "1873456789012.3456789012345678",
            "volumeUsd24Hr": "12345678.1234567890123456",
            "priceUsd": format!("{}.1234567890123456", i + 1),
            "changePercent24Hr": "-1.2345678901234567",
            "vwap24Hr": "96000.1234567890",
            "explorer": "https://blockchain.info/",
            "timestamp": at,
        })
        .to_string();
        let coordinates = EventCoordinates {
            partition_id: Some("0".into()),
            offset: Some(i.to_string()),
            sequence_number: Some(tick * BATCH as i64 + i as i64),
            ..EventCoordinates::default()
        };
        (body, coordinates)
    }));
    assert_eq!(mapped.rows.len(), BATCH, "every event is a row");
    Batch {
        rows: mapped.rows,
        rejects: mapped.rejects,
    }
}

fn samples() -> usize {
    std::env::var("BENCH_WAREHOUSE_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(15)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn timed_write(warehouse: &dyn Warehouse, batch: Batch) -> Duration {
    let started = Instant::now();
    let report = warehouse.write(batch).await.expect("the batch is written");
    let elapsed = started.elapsed();
    assert_eq!(report.rows_written, BATCH as u64, "new keys, all written");
    elapsed
}

struct Figures {
    empty: Duration,
    full: Duration,
}

impl Figures {
    fn print(&self, name: &str) {
        let ratio = self.full.as_secs_f64() / self.empty.as_secs_f64();
        println!(
            "{name:<11} empty: {:>9.1} ms   {HISTORY_ROWS} rows: {:>9.1} ms   ratio {ratio:.2}x ({} the {TARGET_RATIO}x target)",
            self.empty.as_secs_f64() * 1e3,
            self.full.as_secs_f64() * 1e3,
            if ratio <= TARGET_RATIO {
                "within"
            } else {
                "MISSES"
            },
        );
    }
}

/// The samples into the full history, and the medians of both.
async fn figures(warehouse: &dyn Warehouse, empty: Vec<Duration>) -> Figures {
    let mut full = Vec::new();
    for sample in 0..samples() {
        full.push(timed_write(warehouse, batch(sample as i64)).await);
    }
    Figures {
        empty: median(empty),
        full: median(full),
    }
}

async fn sqlite() -> Figures {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Into an empty table: a fresh file per sample.
    let mut empty = Vec::new();
    for sample in 0..samples() {
        let warehouse = SqliteWarehouse::open(&dir.path().join(format!("empty-{sample}.db")))
            .expect("SQLite opens");
        empty.push(timed_write(&warehouse, batch(0)).await);
    }
    let warehouse = SqliteWarehouse::open(&dir.path().join("full.db")).expect("SQLite opens");
    let filling = Instant::now();
    let ticks = (HISTORY_ROWS / BATCH) as i64;
    for tick in 0..ticks {
        warehouse.write(batch(tick - ticks)).await.expect("history");
    }
    eprintln!(
        "sqlite: wrote {HISTORY_ROWS} rows of history in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    figures(&warehouse, empty).await
}

struct Fixed(String);

impl SecretSource for Fixed {
    fn get(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>> {
        let value = Secret::new(self.0.as_str());
        Box::pin(async move {
            match name {
                SecretName::SqlConnectionString => Ok(value),
                name => Err(SecretError::NotInEnvironment {
                    name,
                    var: name.env_var(),
                }),
            }
        })
    }

    fn describe(&self) -> String {
        "COINCAP_TEST_MSSQL".into()
    }
}

/// 1 million rows before the timed batches, 1000 assets per 5-minute tick, in one statement.
const FILL: &str = "INSERT INTO assets.asset_statistics_history_v3 (id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, runtime_timestamp)
SELECT CONCAT(N'asset-', RIGHT(CONCAT('000', n % 1000), 4)), n % 1000 + 1, N'F', N'Filled', 1.0E0, NULL, 1.0E0, 1.0E0, 1.0E0, 0.0E0, NULL, NULL,
       DATEADD(minute, CAST(-5 * (n / 1000 + 1) AS int), CAST('2026-01-01T00:00:00' AS datetime))
FROM (SELECT TOP (1000000) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) - 1 AS n
      FROM sys.all_columns AS a CROSS JOIN sys.all_columns AS b CROSS JOIN sys.all_columns AS c) AS g";

/// Where one batch's time goes, part by part (each a median).
struct Split {
    writer: &'static str,
    parts: Vec<(&'static str, Duration)>,
}

impl Split {
    fn print(&self) {
        let total: Duration = self.parts.iter().map(|(_, time)| *time).sum();
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(name, time)| {
                format!(
                    "{name} {:.1} ms ({:.0}%)",
                    time.as_secs_f64() * 1e3,
                    100.0 * time.as_secs_f64() / total.as_secs_f64()
                )
            })
            .collect();
        println!(
            "sql {:<7} one {BATCH}-row batch, {:.1} ms: {}",
            self.writer,
            total.as_secs_f64() * 1e3,
            parts.join(", ")
        );
    }
}

async fn timed(client: &mut TdsClient, sql: &str) -> (Duration, bool) {
    let started = Instant::now();
    let ok = match client.simple_query(sql).await {
        Ok(stream) => stream.into_results().await.is_ok(),
        Err(_) => false,
    };
    (started.elapsed(), ok)
}

async fn engine(client: &mut TdsClient) -> String {
    let engine = match client.simple_query("SELECT @@VERSION").await {
        Ok(stream) => stream
            .into_row()
            .await
            .ok()
            .flatten()
            .and_then(|row| row.get::<&str, _>(0).map(str::to_owned))
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    engine.lines().next().unwrap_or("unknown").to_owned()
        + " / "
        + engine.lines().last().unwrap_or("")
}

const TRUNCATE: &str = "TRUNCATE TABLE assets.asset_statistics_history_v3";

/// The text writer's batch into an empty history: rendering it here, the server receiving and
/// parsing it (the text behind a `THROW`, which ends the batch once it is parsed), and running it
/// (the rest of a real write of the same text).
async fn text_split(client: &mut TdsClient, keys: &KeyTypes) -> Split {
    let (mut render, mut parse, mut run) = (Vec::new(), Vec::new(), Vec::new());
    for sample in 0..samples() {
        assert!(timed(client, TRUNCATE).await.1);
        let batch = batch(sample as i64);
        let started = Instant::now();
        let sql = build_batches(
            &batch.rows,
            &batch.rejects,
            chrono::Utc::now(),
            keys,
            &BATCH_LIMITS,
            Form::default(),
        )
        .remove(0)
        .sql;
        render.push(started.elapsed());
        let (parsed, ok) = timed(client, &format!("THROW 50000, N'parsed', 1;\n{sql}")).await;
        assert!(!ok, "THROW ends the batch before the rest runs");
        parse.push(parsed);
        let (whole, ok) = timed(client, &sql).await;
        assert!(ok, "the batch is written");
        run.push(whole.saturating_sub(parsed));
    }
    Split {
        writer: "text",
        parts: vec![
            ("render", median(render)),
            ("send + server parse", median(parse)),
            ("server run", median(run)),
        ],
    }
}

/// The bulk writer's batch into an empty history: rendering its transaction here, staging the
/// rows (tiberius' column query, `INSERT BULK` and the rows), the transaction up to its answer
/// (the lock, the count, the insert), and its `COMMIT` with the staging table emptied (sent on
/// their own here, to time them; the writer sends the transaction as one text).
async fn bulk_split(client: &mut TdsClient, keys: &KeyTypes) -> Split {
    let table = StageTable::new(keys, false);
    assert!(timed(client, &table.create).await.1, "the staging table");
    let form = Form {
        rows: Rows::Staged(&table),
        ..Form::default()
    };
    let (mut render, mut stage, mut insert, mut commit) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for sample in 0..samples() {
        assert!(timed(client, TRUNCATE).await.1);
        let batch = batch(sample as i64);
        let started = Instant::now();
        let sql = build_batches(
            &batch.rows,
            &batch.rejects,
            chrono::Utc::now(),
            keys,
            &BATCH_LIMITS,
            form,
        )
        .remove(0)
        .sql;
        render.push(started.elapsed());
        let started = Instant::now();
        bulk::load(client, &batch.rows)
            .await
            .expect("the rows staged");
        stage.push(started.elapsed());
        let at = sql.find("COMMIT TRAN;").expect("a transaction commits");
        let (body, tail) = sql.split_at(at);
        let (time, ok) = timed(client, body).await;
        assert!(ok, "the rows inserted");
        insert.push(time);
        let (time, ok) = timed(client, tail).await;
        assert!(ok, "committed");
        commit.push(time);
    }
    Split {
        writer: "bulk",
        parts: vec![
            ("render", median(render)),
            ("stage (bulk load)", median(stage)),
            ("lock + count + insert", median(insert)),
            ("commit + empty the stage", median(commit)),
        ],
    }
}

/// The writer with `bulk_load`, as EventHubSink builds it.
fn writer(secrets: &Arc<dyn SecretSource>, bulk_load: BulkLoadSetting) -> SqlWarehouse {
    SqlWarehouse::new(sql_config(bulk_load), Arc::clone(secrets), None)
}

fn sql_config(bulk_load: BulkLoadSetting) -> SqlConfig {
    SqlConfig {
        login: SqlLogin::ConnectionString,
        pool_size: 2,
        command_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(60),
        auto_pause_delay: None,
        bulk_load,
    }
}

/// Both writers into an empty history and into 1 million rows, and where a batch's time goes in
/// each.
async fn sql_server(connection: String) -> (String, [(&'static str, Figures); 2], [Split; 2]) {
    let secrets: Arc<dyn SecretSource> = Arc::new(Fixed(connection));
    let manager = TdsManager::new(
        sql_config(BulkLoadSetting::Auto),
        Arc::clone(&secrets),
        None,
    );
    // The test server's connection string may name master: the bench's tables go where it says.
    let options = init::InitOptions {
        app_identity: None,
        allow_master: true,
    };
    init::init_warehouse(&manager, options, &mut |line| eprintln!("{line}"))
        .await
        .expect("init-warehouse");
    let mut client = manager.connect_client().await.expect("a connection");
    let engine = engine(&mut client).await;
    let keys = catalog::read_key_columns(&mut client, HISTORY_TABLE)
        .await
        .expect("the key columns")
        .keys
        .expect("the history table's key types");
    let splits = [
        bulk_split(&mut client, &keys).await,
        text_split(&mut client, &keys).await,
    ];
    let writers = [
        ("sql bulk", writer(&secrets, BulkLoadSetting::Auto)),
        ("sql text", writer(&secrets, BulkLoadSetting::Off)),
    ];
    let mut empty = [Vec::new(), Vec::new()];
    for _ in 0..samples() {
        for ((_, warehouse), times) in writers.iter().zip(&mut empty) {
            assert!(timed(&mut client, TRUNCATE).await.1);
            times.push(timed_write(warehouse, batch(0)).await);
        }
    }
    assert!(timed(&mut client, TRUNCATE).await.1);
    let filling = Instant::now();
    assert!(timed(&mut client, FILL).await.1, "the history filled");
    eprintln!(
        "sql server: filled {HISTORY_ROWS} rows of history in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    let mut full = [Vec::new(), Vec::new()];
    for sample in 0..samples() {
        for (at, ((_, warehouse), times)) in writers.iter().zip(&mut full).enumerate() {
            // Fresh keys for each writer: ticks after the first samples'.
            let tick = (sample * 2 + at) as i64;
            times.push(timed_write(warehouse, batch(tick)).await);
        }
    }
    let [bulk_empty, text_empty] = empty;
    let [bulk_full, text_full] = full;
    let figures = [
        (
            writers[0].0,
            Figures {
                empty: median(bulk_empty),
                full: median(bulk_full),
            },
        ),
        (
            writers[1].0,
            Figures {
                empty: median(text_empty),
                full: median(text_full),
            },
        ),
    ];
    (engine, figures, splits)
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: do nothing there.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        println!(
            "warehouse_write: one {BATCH}-row batch, median of {} samples",
            samples()
        );
        sqlite().await.print("sqlite");
        match std::env::var("COINCAP_TEST_MSSQL") {
            Ok(connection) if !connection.trim().is_empty() => {
                let (engine, figures, splits) = sql_server(connection).await;
                println!("sql server  engine: {engine}");
                for (name, figures) in &figures {
                    figures.print(name);
                }
                for split in &splits {
                    split.print();
                }
            }
            _ => println!(
                "sql server  not measured: set COINCAP_TEST_MSSQL to an ADO.NET connection string of a test database"
            ),
        }
    });
}
