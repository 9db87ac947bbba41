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

#[path = "warehouse_write/sql.rs"]
mod sql;

use std::time::{Duration, Instant};

use coincap_stream::domain::{EventCoordinates, map_events};
use coincap_stream::warehouse::{Batch, SqliteWarehouse, Warehouse};
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
                let (engine, figures, splits) = sql::sql_server(connection).await;
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
