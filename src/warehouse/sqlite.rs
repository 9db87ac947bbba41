//! The embedded warehouse: one SQLite file holding the seed's table and the rejects table.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::{Batch, Warehouse, WarehouseError, WriteReport};
use crate::BoxFuture;
use crate::domain::{Finite, Varchar255};

/// The seed's table (same columns) with the natural key enforced, and the rejects table. The key's
/// index leads with the timestamp, as the Synapse table's clustered index does: a batch's new rows
/// then land at the end of the index, so a write touches a few pages whatever the history holds
/// (led by `id`, each of a tick's assets lands in a different page: 20x slower at 1 million rows).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS asset_statistics_history_v3 (
    id_asset_statistics_history INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL,
    asset_rank        INTEGER,
    symbol            TEXT,
    asset_name        TEXT,
    supply            REAL,
    maxSupply         REAL,
    marketCapUsd      REAL,
    volumeUsd24Hr     REAL,
    priceUsd          REAL,
    changePercent24Hr REAL,
    vwap24Hr          REAL,
    explorer          TEXT,
    runtime_timestamp TEXT NOT NULL,
    UNIQUE (runtime_timestamp, id)
);
CREATE TABLE IF NOT EXISTS asset_statistics_rejects (
    id_reject       INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at     TEXT NOT NULL,
    reason_code     TEXT NOT NULL,
    reason          TEXT NOT NULL,
    raw_body        TEXT NOT NULL,
    partition_id    TEXT,
    event_offset    TEXT,
    sequence_number INTEGER,
    enqueued_time   TEXT,
    UNIQUE (partition_id, sequence_number)
);
";

const INSERT_ROW: &str = "INSERT INTO asset_statistics_history_v3 (id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, runtime_timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (id, runtime_timestamp) DO NOTHING";

const INSERT_REJECT: &str = "INSERT INTO asset_statistics_rejects (received_at, reason_code, reason, raw_body, partition_id, event_offset, sequence_number, enqueued_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (partition_id, sequence_number) DO NOTHING";

pub struct SqliteWarehouse {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteWarehouse {
    /// Opens (or creates) the file and its tables.
    pub fn open(path: &Path) -> Result<Self, WarehouseError> {
        let io = |context| {
            move |e: rusqlite::Error| WarehouseError::Io {
                context,
                message: format!("{e} ({})", path.display()),
            }
        };
        let connection = Connection::open(path).map_err(io("opening the SQLite file"))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| connection.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| connection.busy_timeout(std::time::Duration::from_secs(5)))
            .map_err(io("configuring SQLite"))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(io("creating the tables"))?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            path: path.to_owned(),
        })
    }

    /// Runs blocking SQLite work off the async threads.
    async fn with_connection<T: Send + 'static>(
        &self,
        context: &'static str,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, WarehouseError> {
        let connection = Arc::clone(&self.connection);
        let result = tokio::task::spawn_blocking(move || {
            // A poisoned lock means a previous write panicked mid-way; the transaction it held was
            // rolled back when its guard dropped, so the connection is still sound.
            let mut connection = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(|e| WarehouseError::Io {
            context,
            message: e.to_string(),
        })?;
        result.map_err(|e| WarehouseError::Io {
            context,
            message: e.to_string(),
        })
    }
}

fn text(value: &Option<Varchar255>) -> Option<&str> {
    value.as_ref().map(Varchar255::as_str)
}

fn float(value: Option<Finite>) -> Option<f64> {
    value.map(Finite::get)
}

fn write_batch(connection: &mut Connection, batch: &Batch) -> rusqlite::Result<WriteReport> {
    let transaction = connection.transaction()?;
    let mut report = WriteReport::default();
    {
        let mut insert = transaction.prepare_cached(INSERT_ROW)?;
        for row in &batch.rows {
            let inserted = insert.execute(params![
                row.id.as_str(),
                row.asset_rank,
                text(&row.symbol),
                text(&row.asset_name),
                float(row.supply),
                float(row.max_supply),
                float(row.market_cap_usd),
                float(row.volume_usd_24_hr),
                float(row.price_usd),
                float(row.change_percent_24_hr),
                float(row.vwap_24_hr),
                text(&row.explorer),
                row.runtime_timestamp.to_string(),
            ])?;
            if inserted == 1 {
                report.rows_written += 1;
            } else {
                report.duplicates += 1;
            }
        }
        let received_at = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3f")
            .to_string();
        let mut insert = transaction.prepare_cached(INSERT_REJECT)?;
        for reject in &batch.rejects {
            let at = &reject.coordinates;
            report.rejects_written += insert.execute(params![
                received_at,
                reject.reason.code(),
                reject.reason.to_string(),
                reject.raw_body,
                at.partition_id,
                at.offset,
                at.sequence_number,
                at.enqueued_time
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()),
            ])? as u64;
        }
    }
    transaction.commit()?;
    Ok(report)
}

impl Warehouse for SqliteWarehouse {
    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<WriteReport, WarehouseError>> {
        Box::pin(self.with_connection("writing a batch", move |connection| {
            write_batch(connection, &batch)
        }))
    }

    fn health(&self) -> BoxFuture<'_, Result<(), WarehouseError>> {
        Box::pin(self.with_connection("checking health", |connection| {
            connection
                .query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .optional()
                .map(|_| ())
        }))
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventCoordinates, map_events};

    fn event(id: &str, ts: i64, price: &str) -> String {
        format!(
            r#"{{"id":"{id}","rank":"1","symbol":"S","name":"N","priceUsd":{price},"maxSupply":null,"timestamp":{ts}}}"#
        )
    }

    fn batch(bodies: &[String]) -> Batch {
        let mapped = map_events(bodies.iter().enumerate().map(|(i, body)| {
            (
                body.clone(),
                EventCoordinates {
                    partition_id: Some("0".into()),
                    sequence_number: Some(i as i64),
                    ..Default::default()
                },
            )
        }));
        Batch {
            rows: mapped.rows,
            rejects: mapped.rejects,
        }
    }

    fn count(warehouse: &SqliteWarehouse, table: &str) -> i64 {
        let connection = warehouse.connection.lock().unwrap();
        connection
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_redelivered_batch_adds_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = SqliteWarehouse::open(&dir.path().join("w.db")).unwrap();
        let bodies = vec![
            event("bitcoin", 1_000, "\"1.5\""),
            event("ethereum", 1_000, "null"),
            "oops".to_string(),
        ];
        let first = warehouse.write(batch(&bodies)).await.unwrap();
        assert_eq!(
            first,
            WriteReport {
                rows_written: 2,
                duplicates: 0,
                rejects_written: 1
            }
        );
        let again = warehouse.write(batch(&bodies)).await.unwrap();
        assert_eq!(
            again,
            WriteReport {
                rows_written: 0,
                duplicates: 2,
                rejects_written: 0
            }
        );
        assert_eq!(count(&warehouse, "asset_statistics_history_v3"), 2);
        assert_eq!(count(&warehouse, "asset_statistics_rejects"), 1);
    }

    #[tokio::test]
    async fn values_read_back_exactly_and_null_stays_null() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = SqliteWarehouse::open(&dir.path().join("w.db")).unwrap();
        warehouse
            .write(batch(&[event(
                "o'neil",
                1_680_191_532_104,
                "\"28305.0289009148763385\"",
            )]))
            .await
            .unwrap();
        let connection = warehouse.connection.lock().unwrap();
        let (id, price, max_supply, at): (String, f64, Option<f64>, String) = connection
            .query_row(
                "SELECT id, priceUsd, maxSupply, runtime_timestamp FROM asset_statistics_history_v3",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(id, "o'neil");
        assert_eq!(price, "28305.0289009148763385".parse::<f64>().unwrap());
        assert_eq!(max_supply, None);
        assert_eq!(at, "2023-03-30T15:52:12.104");
    }

    #[tokio::test]
    async fn a_failed_batch_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = SqliteWarehouse::open(&dir.path().join("w.db")).unwrap();
        // Break the rejects table: the rows of the same batch must not be committed alone.
        warehouse
            .connection
            .lock()
            .unwrap()
            .execute_batch("DROP TABLE asset_statistics_rejects")
            .unwrap();
        let error = warehouse
            .write(batch(&[event("bitcoin", 1, "\"1\""), "garbage".into()]))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("asset_statistics_rejects"),
            "{error}"
        );
        assert_eq!(count(&warehouse, "asset_statistics_history_v3"), 0);
    }

    #[tokio::test]
    async fn opening_twice_keeps_the_data_and_health_queries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        SqliteWarehouse::open(&path)
            .unwrap()
            .write(batch(&[event("a", 1, "\"1\"")]))
            .await
            .unwrap();
        let reopened = SqliteWarehouse::open(&path).unwrap();
        assert_eq!(count(&reopened, "asset_statistics_history_v3"), 1);
        reopened.health().await.unwrap();
    }

    #[test]
    fn an_unwritable_path_is_a_clear_error() {
        let error = SqliteWarehouse::open(Path::new("/nonexistent-dir/x.db"))
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("/nonexistent-dir/x.db"),
            "{error}"
        );
    }
}
