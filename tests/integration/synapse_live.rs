//! The Synapse writer against a real SQL Server 2019+ or Synapse dedicated pool. Runs when
//! `COINCAP_TEST_MSSQL` holds an ADO.NET connection string; says "skipped" otherwise.
//!
//! Each test writes ids under its own random prefix, so runs never see each other's rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use coincap_stream::domain::{EventCoordinates, map_events};
use coincap_stream::secrets::{Secret, SecretName, SecretSource};
use coincap_stream::warehouse::synapse::connection::TdsManager;
use coincap_stream::warehouse::synapse::{SynapseConfig, SynapseLogin};
use coincap_stream::warehouse::{Batch, SynapseWarehouse, Warehouse};
use serde_json::json;

use crate::common::proxy::Proxy;
use crate::common::{FixedSecrets, handler};

const VARIABLE: &str = "COINCAP_TEST_MSSQL";

fn connection_string() -> Option<String> {
    let value = std::env::var(VARIABLE)
        .ok()
        .filter(|v| !v.trim().is_empty());
    if value.is_none() {
        eprintln!(
            "skipped: set {VARIABLE} to an ADO.NET connection string (SQL Server 2019+ or a Synapse dedicated pool) to run the live Synapse suite"
        );
    }
    value
}

fn secrets(connection: &str) -> Arc<dyn SecretSource> {
    Arc::new(FixedSecrets(HashMap::from([(
        SecretName::SynapseConnectionString,
        Secret::new(connection),
    )])))
}

fn config() -> SynapseConfig {
    SynapseConfig {
        login: SynapseLogin::ConnectionString,
        pool_size: 2,
        command_timeout: Duration::from_secs(120),
    }
}

fn warehouse(connection: &str) -> SynapseWarehouse {
    SynapseWarehouse::new(config(), secrets(connection), None)
}

fn prefix() -> String {
    format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Runs `handler init-warehouse` (twice is fine) so the tables exist.
async fn init(connection: &str) -> String {
    let output = handler()
        .arg("init-warehouse")
        .env("SYNAPSE_CONNECTION_STRING", connection)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Events as TimerFetch publishes them: quotes, unicode, NULLs, millisecond timestamps.
fn events(prefix: &str, n: usize, timestamp: i64) -> Vec<String> {
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

fn batch(bodies: &[String], first_sequence: i64) -> Batch {
    let mapped = map_events(bodies.iter().enumerate().map(|(i, body)| {
        (
            body.clone(),
            EventCoordinates {
                partition_id: Some("7".into()),
                offset: Some((1000 + i).to_string()),
                sequence_number: Some(first_sequence + i as i64),
                enqueued_time: Some(chrono::Utc::now()),
            },
        )
    }));
    Batch {
        rows: mapped.rows,
        rejects: mapped.rejects,
    }
}

async fn count(connection: &str, prefix: &str) -> i64 {
    let manager = TdsManager::new(config(), secrets(connection), None);
    let mut client = manager.connect_client().await.unwrap();
    let row = client
        .simple_query(format!(
            "SELECT COUNT_BIG(*) FROM assets.asset_statistics_history_v3 WHERE id LIKE N'{prefix}%'"
        ))
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    row.get::<i64, _>(0).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn init_warehouse_is_idempotent() {
    let Some(connection) = connection_string() else {
        return;
    };
    init(&connection).await;
    let again = init(&connection).await;
    assert!(
        again.contains("Table assets.asset_statistics_history_v3 exists"),
        "{again}"
    );
    assert!(
        again.contains("Table assets.asset_statistics_rejects exists"),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_value_reads_back_as_written_in_one_round_trip() {
    let Some(connection) = connection_string() else {
        return;
    };
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
async fn a_redelivered_batch_adds_no_rows_and_rejects_are_kept_once() {
    let Some(connection) = connection_string() else {
        return;
    };
    init(&connection).await;
    let prefix = prefix();
    let mut bodies = events(&prefix, 50, 1_747_000_000_000);
    bodies.push("not json ' \0 with a NUL".into());
    let warehouse = warehouse(&connection);

    let first = warehouse.write(batch(&bodies, 5_000_000)).await.unwrap();
    let again = warehouse.write(batch(&bodies, 5_000_000)).await.unwrap();

    assert_eq!((first.rows_written, first.duplicates), (50, 0));
    assert_eq!((again.rows_written, again.duplicates), (0, 50));
    assert_eq!(count(&connection, &prefix).await, 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_lost_mid_batch_writes_nothing_and_the_retry_writes_it_whole() {
    let Some(connection) = connection_string() else {
        return;
    };
    init(&connection).await;
    let config = tiberius::Config::from_ado_string(&connection).unwrap();
    let upstream = config.get_addr();
    let host = upstream
        .rsplit_once(':')
        .map(|(h, _)| h.to_owned())
        .unwrap();
    let proxy = Proxy::start(upstream).await;
    let proxied: String = connection
        .split(';')
        .map(|part| {
            if part.trim().to_ascii_lowercase().starts_with("server=") {
                format!("Server=tcp:127.0.0.1,{}", proxy.port)
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(";")
        + &format!(";HostNameInCertificate={host}");
    let warehouse = warehouse(&proxied);
    warehouse.prepare().await.unwrap();
    let prefix = prefix();
    let bodies = events(&prefix, 1000, 1_747_000_000_000);

    // One cut: the batch is sent again on a fresh connection, within the same write.
    proxy.cut_after(20_000);
    let report = warehouse.write(batch(&bodies, 0)).await.unwrap();
    assert_eq!(proxy.cuts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(report.rows_written, 1000);
    assert_eq!(warehouse.round_trips(), 2);
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
