//! The embedded warehouse: one SQLite file holding the seed's table and the rejects table.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, ToSql, params, params_from_iter};

use super::columns::{self, HISTORY_COLUMNS, Value};
use super::{Batch, Warehouse, WarehouseError, WriteReport};
use crate::BoxFuture;
use crate::text::Millis;

/// The rejects table, keyed on where each event sat: its hub (namespace and name), partition,
/// sequence number and enqueued time. A recreated hub numbers its events from 0 again with later
/// enqueued times, and a second hub has its own names, so neither is taken for another's events.
/// SQLite's UNIQUE takes NULLs as distinct: a reject missing part of its key is always stored.
const REJECTS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS asset_statistics_rejects (
    id_reject           INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at         TEXT NOT NULL,
    reason_code         TEXT NOT NULL,
    reason              TEXT NOT NULL,
    raw_body            TEXT NOT NULL,
    partition_id        TEXT,
    event_offset        TEXT,
    sequence_number     INTEGER,
    enqueued_time       TEXT,
    event_hub_namespace TEXT,
    event_hub_name      TEXT,
    UNIQUE (event_hub_namespace, event_hub_name, partition_id, sequence_number, enqueued_time)
);
";

const INSERT_REJECT: &str = "INSERT INTO asset_statistics_rejects (received_at, reason_code, reason, raw_body, partition_id, event_offset, sequence_number, enqueued_time, event_hub_namespace, event_hub_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (event_hub_namespace, event_hub_name, partition_id, sequence_number, enqueued_time) DO NOTHING";

/// Brings a rejects table of an earlier version (keyed on `(partition_id, sequence_number)`
/// alone, without the hub's columns) to [`REJECTS_SCHEMA`], keeping its rows (their hub unknown:
/// NULL). SQLite cannot change a table's UNIQUE constraint in place: a new table, the rows copied,
/// the old one dropped, the new one renamed, in one transaction. Says whether it did.
fn migrate_rejects(connection: &mut Connection) -> rusqlite::Result<bool> {
    let hub_columns: i64 = connection.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('asset_statistics_rejects') WHERE name IN ('event_hub_namespace', 'event_hub_name')",
        [],
        |row| row.get(0),
    )?;
    let exists: i64 = connection.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'asset_statistics_rejects'",
        [],
        |row| row.get(0),
    )?;
    if exists == 0 || hub_columns == 2 {
        return Ok(false);
    }
    let transaction = connection.transaction()?;
    transaction.execute_batch(&format!(
        "ALTER TABLE asset_statistics_rejects RENAME TO asset_statistics_rejects_before_hub_keys;
        {REJECTS_SCHEMA}
        INSERT INTO asset_statistics_rejects (id_reject, received_at, reason_code, reason, raw_body, partition_id, event_offset, sequence_number, enqueued_time)
        SELECT id_reject, received_at, reason_code, reason, raw_body, partition_id, event_offset, sequence_number, enqueued_time FROM asset_statistics_rejects_before_hub_keys;
        DROP TABLE asset_statistics_rejects_before_hub_keys;"
    ))?;
    transaction.commit()?;
    Ok(true)
}

/// The seed's table (the same columns, from [`HISTORY_COLUMNS`]) with the natural key enforced,
/// then the rejects table. The key's index leads with the timestamp, as the SQL table's
/// clustered index does: a batch's new rows then land at the end of the index, so a write touches a
/// few pages whatever the history holds (led by `id`, each of a tick's assets lands in a different
/// page: 20x slower at 1 million rows, `benches/warehouse_write.rs`).
pub fn schema() -> String {
    let mut key = columns::key_names();
    key.reverse();
    let columns: String = HISTORY_COLUMNS
        .iter()
        .map(|c| {
            let not_null = if c.key { " NOT NULL" } else { "" };
            format!("    {} {}{not_null},\n", c.name, c.kind.sqlite())
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS asset_statistics_history_v3 (\n    id_asset_statistics_history INTEGER PRIMARY KEY AUTOINCREMENT,\n{columns}    UNIQUE ({})\n);\n{REJECTS_SCHEMA}",
        key.join(", ")
    )
}

/// `INSERT ... VALUES (?1, ..., ?13) ON CONFLICT (id, runtime_timestamp) DO NOTHING`.
fn insert_row_sql() -> String {
    let placeholders: Vec<String> = (1..=HISTORY_COLUMNS.len())
        .map(|i| format!("?{i}"))
        .collect();
    format!(
        "INSERT INTO asset_statistics_history_v3 ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING",
        columns::names(", "),
        placeholders.join(", "),
        columns::key_names().join(", ")
    )
}

static INSERT_ROW: LazyLock<String> = LazyLock::new(insert_row_sql);

/// A column value as SQLite stores it: times as `2026-05-01T12:00:00.123` text.
impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Value::Text(Some(text)) => ToSqlOutput::from(text),
            Value::BigInt(Some(value)) => ToSqlOutput::from(value),
            Value::Float(Some(value)) => ToSqlOutput::from(value),
            Value::Time(at) => ToSqlOutput::from(at.to_string()),
            Value::Text(None) | Value::BigInt(None) | Value::Float(None) => {
                ToSqlOutput::from(rusqlite::types::Null)
            }
        })
    }
}

pub struct SqliteWarehouse {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteWarehouse {
    /// Opens (or creates) the file and its tables.
    pub fn open(path: &Path) -> Result<Self, WarehouseError> {
        let io = |context| {
            move |e: rusqlite::Error| WarehouseError::Store {
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
        let mut connection = connection;
        if migrate_rejects(&mut connection).map_err(io("migrating the rejects table"))? {
            tracing::info!(
                path = %path.display(),
                "Rejects table brought to the key that includes the hub (namespace and name) and the enqueued time; earlier rejects kept."
            );
        }
        connection
            .execute_batch(&schema())
            .map_err(io("creating the tables"))?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            path: path.to_owned(),
        })
    }

    /// What the file holds, read only (`handler check` creates neither file nor table): both
    /// tables and the history's rows, or what the first write will create.
    pub fn inspect(path: &Path) -> Result<String, WarehouseError> {
        let file = format!("the SQLite file {}", path.display());
        if !path.exists() {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            return if dir.is_dir() {
                Ok(format!(
                    "{file} does not exist yet: the first write creates it and its tables"
                ))
            } else {
                Err(WarehouseError::Store {
                    context: "checking the SQLite file",
                    message: format!("the directory {} does not exist", dir.display()),
                })
            };
        }
        let read = |e: rusqlite::Error| WarehouseError::Store {
            context: "reading the SQLite file",
            message: format!("{e} ({})", path.display()),
        };
        let connection =
            Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(read)?;
        let tables: Vec<String> = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('asset_statistics_history_v3', 'asset_statistics_rejects') ORDER BY name")
            .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
            .map_err(read)?;
        if tables.len() < 2 {
            return Ok(format!(
                "{file} exists; the first write adds the tables it lacks"
            ));
        }
        let rows: i64 = connection
            .query_row(
                "SELECT COUNT(*) FROM asset_statistics_history_v3",
                [],
                |row| row.get(0),
            )
            .map_err(read)?;
        Ok(format!("{file} holds both tables ({rows} rows)"))
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
        .map_err(|e| WarehouseError::Store {
            context,
            message: e.to_string(),
        })?;
        result.map_err(|e| WarehouseError::Store {
            context,
            message: e.to_string(),
        })
    }
}

fn write_batch(connection: &mut Connection, batch: &Batch) -> rusqlite::Result<WriteReport> {
    let transaction = connection.transaction()?;
    let mut report = WriteReport::default();
    {
        let mut insert = transaction.prepare_cached(&INSERT_ROW)?;
        for row in &batch.rows {
            let inserted = insert.execute(params_from_iter(
                HISTORY_COLUMNS.iter().map(|column| (column.value)(row)),
            ))?;
            if inserted == 1 {
                report.rows_written += 1;
            } else {
                report.duplicates += 1;
            }
        }
        let received_at = Millis(chrono::Utc::now()).to_string();
        let mut insert = transaction.prepare_cached(INSERT_REJECT)?;
        for reject in &batch.rejects {
            let at = &reject.coordinates;
            let inserted = insert.execute(params![
                received_at,
                reject.reason.code(),
                reject.reason.to_string(),
                reject.raw_body,
                at.partition_id,
                at.offset,
                at.sequence_number,
                at.enqueued_time.map(|t| Millis(t).to_string()),
                at.namespace,
                at.event_hub,
            ])?;
            if inserted == 1 {
                report.rejects_written += 1;
            } else {
                report.rejects_existing += 1;
            }
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

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspecting_creates_nothing_and_says_what_the_file_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let said = SqliteWarehouse::inspect(&path).unwrap();
        assert!(
            said.ends_with("does not exist yet: the first write creates it and its tables"),
            "{said}"
        );
        assert!(!path.exists(), "nothing created");
        SqliteWarehouse::open(&path).unwrap();
        let said = SqliteWarehouse::inspect(&path).unwrap();
        assert!(said.ends_with("holds both tables (0 rows)"), "{said}");
        let nowhere = dir.path().join("no-such-dir").join("w.db");
        assert!(SqliteWarehouse::inspect(&nowhere).is_err());
        std::fs::write(dir.path().join("text.db"), "not a database, not at all, no").unwrap();
        assert!(SqliteWarehouse::inspect(&dir.path().join("text.db")).is_err());
    }
    use crate::domain::{EventCoordinates, map_events};

    fn event(id: &str, ts: i64, price: &str) -> String {
        format!(
            r#"{{"id":"{id}","rank":"1","symbol":"S","name":"N","priceUsd":{price},"maxSupply":null,"timestamp":{ts}}}"#
        )
    }

    /// A batch from hub `hub` of namespace `ns`, enqueued at `enqueued` (epoch ms), sequence
    /// numbers from 0.
    fn batch_from(bodies: &[String], ns: &str, hub: &str, enqueued: i64) -> Batch {
        let mapped = map_events(bodies.iter().enumerate().map(|(i, body)| {
            (
                body.clone(),
                EventCoordinates {
                    namespace: Some(ns.into()),
                    event_hub: Some(hub.into()),
                    partition_id: Some("0".into()),
                    sequence_number: Some(i as i64),
                    enqueued_time: chrono::DateTime::from_timestamp_millis(enqueued),
                    ..Default::default()
                },
            )
        }));
        Batch {
            rows: mapped.rows,
            rejects: mapped.rejects,
        }
    }

    fn batch(bodies: &[String]) -> Batch {
        batch_from(bodies, "ns", "coincaphub", 1_747_000_000_000)
    }

    #[tokio::test]
    async fn a_recreated_hub_or_a_second_hub_has_its_poison_events_stored_and_so_has_one_without_coordinates()
     {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = SqliteWarehouse::open(&dir.path().join("w.db")).unwrap();
        let poison = vec!["not json".to_owned(), "neither".to_owned()];
        let stored = |report: WriteReport| (report.rejects_written, report.rejects_existing);
        let first = warehouse.write(batch(&poison)).await.unwrap();
        assert_eq!(stored(first), (2, 0));
        // The hub deleted and created again: sequence numbers from 0, later enqueued times.
        let recreated = batch_from(&poison, "ns", "coincaphub", 1_747_000_900_000);
        assert_eq!(stored(warehouse.write(recreated).await.unwrap()), (2, 0));
        let second_hub = batch_from(&poison, "ns", "otherhub", 1_747_000_000_000);
        assert_eq!(stored(warehouse.write(second_hub).await.unwrap()), (2, 0));
        let second_namespace = batch_from(&poison, "ns2", "coincaphub", 1_747_000_000_000);
        assert_eq!(
            stored(warehouse.write(second_namespace).await.unwrap()),
            (2, 0)
        );
        assert_eq!(
            stored(warehouse.write(batch(&poison)).await.unwrap()),
            (0, 2)
        );
        let mut without = batch(&poison);
        for reject in &mut without.rejects {
            reject.coordinates = EventCoordinates::default();
        }
        assert_eq!(
            stored(warehouse.write(without.clone()).await.unwrap()),
            (2, 0)
        );
        assert_eq!(
            stored(warehouse.write(without).await.unwrap()),
            (2, 0),
            "always stored"
        );
        assert_eq!(count(&warehouse, "asset_statistics_rejects"), 12);
    }

    #[tokio::test]
    async fn a_rejects_table_of_an_earlier_version_is_brought_to_the_hub_key_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE asset_statistics_rejects (id_reject INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL, reason_code TEXT NOT NULL, reason TEXT NOT NULL, raw_body TEXT NOT NULL, partition_id TEXT, event_offset TEXT, sequence_number INTEGER, enqueued_time TEXT, UNIQUE (partition_id, sequence_number));
             INSERT INTO asset_statistics_rejects (received_at, reason_code, reason, raw_body, partition_id, sequence_number) VALUES ('2026-01-01T00:00:00.000', 'not_json', 'x', 'kept', '0', 0);",
        )
        .unwrap();
        drop(old);
        let warehouse = SqliteWarehouse::open(&path).unwrap();
        // The old key would have taken this poison event (partition 0, sequence 0) for the stored one.
        let report = warehouse
            .write(batch(&["not json".to_owned()]))
            .await
            .unwrap();
        assert_eq!(report.rejects_written, 1);
        assert_eq!(count(&warehouse, "asset_statistics_rejects"), 2);
        let body: String = warehouse
            .connection
            .lock()
            .unwrap()
            .query_row(
                "SELECT raw_body FROM asset_statistics_rejects WHERE event_hub_namespace IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(body, "kept");
        drop(warehouse);
        SqliteWarehouse::open(&path).unwrap();
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
                rejects_written: 1,
                rejects_existing: 0,
            }
        );
        let again = warehouse.write(batch(&bodies)).await.unwrap();
        assert_eq!(
            again,
            WriteReport {
                rows_written: 0,
                duplicates: 2,
                rejects_written: 0,
                rejects_existing: 1,
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
    async fn opening_twice_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        SqliteWarehouse::open(&path)
            .unwrap()
            .write(batch(&[event("a", 1, "\"1\"")]))
            .await
            .unwrap();
        let reopened = SqliteWarehouse::open(&path).unwrap();
        assert_eq!(count(&reopened, "asset_statistics_history_v3"), 1);
    }

    #[test]
    fn the_history_table_has_the_listed_columns_and_enforces_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = SqliteWarehouse::open(&dir.path().join("w.db")).unwrap();
        let connection = warehouse.connection.lock().unwrap();
        let mut info = connection
            .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info('asset_statistics_history_v3')")
            .unwrap();
        let columns: Vec<(String, String, bool)> = info
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut expected = vec![(
            "id_asset_statistics_history".to_owned(),
            "INTEGER".to_owned(),
            false,
        )];
        expected.extend(
            HISTORY_COLUMNS
                .iter()
                .map(|c| (c.name.to_owned(), c.kind.sqlite().to_owned(), c.key)),
        );
        assert_eq!(columns, expected);
        assert_eq!(columns[1].0, "id");
        assert!(
            schema().contains("UNIQUE (runtime_timestamp, id)"),
            "the key index leads with the timestamp"
        );
        assert_eq!(
            *INSERT_ROW,
            "INSERT INTO asset_statistics_history_v3 (id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, runtime_timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (id, runtime_timestamp) DO NOTHING"
        );
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
