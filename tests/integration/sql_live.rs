//! The SQL writer against a real SQL Server-family database (SQL Server 2019+, Azure SQL Database
//! or a dedicated pool), through its public API only (`init-warehouse`, `SqlWarehouse` / `Warehouse::write`). Every test is ignored
//! unless asked for: `COINCAP_TEST_MSSQL='<ADO.NET connection string>' cargo test -- --ignored
//! sql_live`. Run with `--ignored` but without the variable, each one fails saying so.
//!
//! Each test writes ids under its own random prefix, so runs never see each other's rows. The tests
//! of one run take turns ([`serial`]): one of them swaps a seed-shaped table in for a while.

mod check;
mod faults;
mod first_day;
mod processes;
mod refusals;
mod seed;
mod support;

use std::time::Duration;

use coincap_stream::warehouse::Warehouse;
use coincap_stream::warehouse::sql::connection::TdsManager;

use crate::common::proxy::Proxy;
use support::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn init_warehouse_is_idempotent_and_reports_what_the_writer_relies_on() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let again = init(&connection).await;
    for table in [HISTORY, REJECTS, "assets.asset_statistics_writer_lock"] {
        assert!(
            again.contains(&format!("Table {table} exists: left as it is.")),
            "{again}"
        );
    }
    assert!(again.contains("What the writer relies on:"), "{again}");
    assert!(
        again.contains("  assets.asset_statistics_writer_lock: 1 row (writers serialize on it)"),
        "{again}"
    );
    assert!(again.contains("  id column: "), "{again}");
    assert!(again.contains("is_read_committed_snapshot_on"), "{again}");
    // A database prepared by an earlier version holds the seed's heap: then exactly one warning.
    let bounded = again.contains("(duplicate check bounded by the batch's time window)");
    assert_eq!(
        again.matches("Warning:").count(),
        usize::from(!bounded),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn every_value_reads_back_as_written_in_one_round_trip() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    let bodies = events(&prefix, 1200, 1_747_000_000_120);
    let batch = batch(&bodies, 0);
    let expected = batch.rows.clone();
    let warehouse = warehouse(&connection);

    let report = warehouse.write(batch).await.unwrap();

    assert_eq!(report.rows_written, 1200);
    assert_eq!(
        warehouse.round_trips(),
        1,
        "1200 rows, two chunks, one round trip"
    );
    let manager = TdsManager::new(config(), secrets(&connection), None);
    let mut client = manager.connect_client().await.unwrap();
    let unicode_columns = client
        .simple_query("SELECT TYPE_NAME(system_type_id) FROM sys.columns WHERE object_id = OBJECT_ID(N'assets.asset_statistics_history_v3') AND name = N'asset_name'")
        .await.unwrap().into_row().await.unwrap().unwrap()
        .get::<&str, _>(0).unwrap() == "nvarchar";
    let rows = client
        .simple_query(format!(
            "SELECT id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, CONVERT(varchar(23), runtime_timestamp, 126) FROM assets.asset_statistics_history_v3 WHERE id LIKE N'{prefix}%' ORDER BY id"
        ))
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), expected.len());
    for (row, want) in rows.iter().zip(&expected) {
        let text = |i: usize| row.get::<&str, _>(i).map(str::to_owned);
        let float = |i: usize| row.get::<f64, _>(i);
        assert_eq!(text(0).as_deref(), Some(want.id.as_str()));
        assert_eq!(row.get::<i64, _>(1), want.asset_rank);
        assert_eq!(text(2).as_deref(), want.symbol.as_ref().map(|s| s.as_str()));
        let name = want.asset_name.as_ref().map(|s| s.as_str().to_owned());
        if unicode_columns || name.as_deref().is_some_and(str::is_ascii) {
            assert_eq!(text(3), name, "names with quotes and unicode survive");
        }
        for (i, value) in [
            want.supply,
            want.max_supply,
            want.market_cap_usd,
            want.volume_usd_24_hr,
            want.price_usd,
            want.change_percent_24_hr,
            want.vwap_24_hr,
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(
                float(4 + i).map(f64::to_bits),
                value.map(|v| v.get().to_bits()),
                "float column {i} of {}",
                want.id.as_str()
            );
        }
        assert_eq!(
            text(11).as_deref(),
            want.explorer.as_ref().map(|s| s.as_str())
        );
        // Multiples of 10 ms are exact in datetime (1/300 s).
        let at = text(12).unwrap();
        assert_eq!(
            at,
            want.runtime_timestamp.to_string(),
            "millisecond timestamps"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_redelivered_batch_adds_no_rows_and_rejects_are_kept_once() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    let mut bodies = events(&prefix, 50, 1_747_000_000_000);
    bodies.push("not json ' \0 with a NUL".into());
    let warehouse = warehouse(&connection);

    let first = warehouse
        .write(batch_in(&bodies, &prefix, 5_000_000))
        .await
        .unwrap();
    let again = warehouse
        .write(batch_in(&bodies, &prefix, 5_000_000))
        .await
        .unwrap();

    assert_eq!((first.rows_written, first.duplicates), (50, 0));
    assert_eq!((again.rows_written, again.duplicates), (0, 50));
    assert_eq!(count(&connection, &prefix).await, 50);
    assert_eq!(rejects(&connection, &prefix).await, 1, "the reject, once");
}

/// A proxy in front of the server, and the connection string through it (the certificate still
/// checked against the server's own name).
async fn proxied(connection: &str) -> (Proxy, String) {
    let upstream = address(connection);
    let host = upstream
        .rsplit_once(':')
        .map(|(h, _)| h.to_owned())
        .unwrap();
    let proxy = Proxy::start(upstream).await;
    let proxied = through(
        connection,
        proxy.port,
        &format!("HostNameInCertificate={host}"),
    );
    (proxy, proxied)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_connection_lost_mid_batch_writes_nothing_and_the_retry_writes_it_whole() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let (proxy, proxied) = proxied(&connection).await;
    let warehouse = warehouse(&proxied);
    // Connects (and reads the catalog) before the proxy is armed.
    let warm_up = events(&self::prefix(), 1, 1_747_000_000_000);
    warehouse.write(batch(&warm_up, 0)).await.unwrap();
    let trips = warehouse.round_trips();
    let prefix = prefix();
    let bodies = events(&prefix, 1000, 1_747_000_000_000);

    // One cut: the batch is sent again on a fresh connection, within the same write.
    proxy.cut_after(20_000);
    let report = warehouse.write(batch(&bodies, 0)).await.unwrap();
    assert_eq!(proxy.cuts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(report.rows_written, 1000);
    assert_eq!(warehouse.round_trips() - trips, 2);
    assert_eq!(
        count(&connection, &prefix).await,
        1000,
        "written whole, once"
    );

    // Every connection cut: the write fails (transient), nothing is half-written, and the
    // redelivery writes the batch whole.
    let prefix = self::prefix();
    let bodies = events(&prefix, 1000, 1_747_000_000_000);
    proxy.cut_every_after(20_000);
    let error = warehouse.write(batch(&bodies, 0)).await.unwrap_err();
    assert!(
        proxy.cuts.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "both attempts cut"
    );
    assert!(error.to_string().contains("transient"), "{error}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&connection, &prefix).await, 0, "nothing half-written");
    proxy.disarm();
    let report = warehouse.write(batch(&bodies, 0)).await.unwrap();
    assert_eq!(report.rows_written, 1000);
    assert_eq!(count(&connection, &prefix).await, 1000);
}

/// SQL_IDLE_TIMEOUT: the pooled connection is closed once idle, so a serverless database, which
/// pauses only without a session, can pause between fetches; the next write connects again.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn idle_connections_are_closed_after_the_idle_timeout_and_the_next_write_reconnects() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let (proxy, proxied) = proxied(&connection).await;
    let mut config = config();
    config.idle_timeout = Duration::from_secs(1);
    let warehouse = coincap_stream::warehouse::SqlWarehouse::new(config, secrets(&proxied), None);
    let prefix = prefix();
    let report = warehouse
        .write(batch(&events(&prefix, 10, 1_747_000_000_000), 0))
        .await
        .unwrap();
    assert_eq!(report.rows_written, 10);

    // Waits for the condition, not a duration: bb8's default would keep it 10 minutes.
    let closed = async {
        while proxy.open.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), closed)
        .await
        .expect("the idle connection is closed: no session left to keep a database online");

    let again = warehouse
        .write(batch(&events(&self::prefix(), 10, 1_747_000_000_000), 0))
        .await
        .unwrap();
    assert_eq!(again.rows_written, 10, "the next write connects again");
}

/// Writers with overlapping keys (several partitions, instances, a redelivery racing a slow first
/// attempt) must leave exactly one row per key: they serialize on the writer lock.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn concurrent_writers_with_overlapping_keys_leave_exactly_one_row_per_key() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    // 600 keys; writer w writes keys [100 w, 100 w + 300): neighbours share 200 keys.
    let all = events(&prefix, 600, 1_747_000_000_000);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let connection = connection.clone();
            let bodies = all[100 * w..100 * w + 300].to_vec();
            tokio::spawn(async move {
                let warehouse = warehouse(&connection);
                warehouse.write(batch(&bodies, 0)).await.unwrap()
            })
        })
        .collect();
    let mut written = 0;
    for writer in writers {
        written += writer.await.unwrap().rows_written;
    }

    let distinct = 600;
    assert_eq!(count(&connection, &prefix).await, distinct);
    assert_eq!(written, distinct as u64, "each key written by one writer");
    let repeated = scalar_i64(
        &connection,
        &format!(
            "SELECT COUNT_BIG(*) FROM (SELECT id FROM {HISTORY} WHERE id LIKE N'{prefix}%' GROUP BY id, runtime_timestamp HAVING COUNT(*) > 1) AS d"
        ),
    )
    .await;
    assert_eq!(repeated, 0, "no key stored twice");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_10000_character_body_reads_back_exactly() {
    reads_back_exactly(long_body(10_000)).await;
}

/// Writes `body` as the one event of a batch (a reject) and reads it back from the rejects table:
/// the stored body and its reason.
pub async fn write_one_reject(body: &str) -> (String, String) {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();

    warehouse(&connection)
        .write(batch_in(&[body.to_owned()], &prefix, 1))
        .await
        .unwrap();

    stored_reject(&connection, &prefix).await
}

async fn reads_back_exactly(body: String) {
    let (stored, reason) = write_one_reject(&body).await;
    assert_eq!(stored, body);
    assert!(!reason.contains("[raw_body"), "stored as it is: {reason}");
}

/// 48 events of 1,000,000 characters (Event Hubs allows 1 MB each) are about 96 MB on the wire
/// as UTF-16, well over the writer's per-transaction cap: the write splits into several
/// transactions, each idempotent, and everything lands whole and once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_batch_over_the_cap_splits_and_lands_whole() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    let mut bodies = events(&prefix, 1000, 1_747_000_000_000);
    bodies.extend((0..48).map(|i| format!("{i:02} {}", long_body(999_997))));
    let warehouse = warehouse(&connection);

    let report = warehouse
        .write(batch_in(&bodies, &prefix, 0))
        .await
        .unwrap();

    assert!(
        warehouse.round_trips() >= 2,
        "split into several transactions"
    );
    assert_eq!(report.rows_written, 1000);
    assert_eq!(count(&connection, &prefix).await, 1000);
    assert_eq!(rejects(&connection, &prefix).await, 48);
    let whole = scalar_i64(
        &connection,
        &format!(
            "SELECT COUNT_BIG(*) FROM {REJECTS} WHERE partition_id = '{prefix}' AND LEN(raw_body) = 1000000"
        ),
    )
    .await;
    assert_eq!(whole, 48, "every body whole");

    let again = warehouse
        .write(batch_in(&bodies, &prefix, 0))
        .await
        .unwrap();
    assert_eq!((again.rows_written, again.duplicates), (0, 1000));
    assert_eq!(rejects(&connection, &prefix).await, 48, "rejects once");
}
