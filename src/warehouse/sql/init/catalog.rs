//! What the writer relies on, read from the catalog (engine, table designs, the id column's type,
//! the writer lock, the database's read isolation), the judgement of a table's design (its
//! duplicate check, who keeps one row per key), and the writer's start-up warning for a history
//! table that is still the seed's scan-everything heap. What `init-warehouse` prints of these
//! facts, and the SQL that changes what is wrong, is in [`super::advice`].

use super::super::bulk::BulkProbe;
use super::super::connection::TdsClient;
use super::super::keys::{Collation, IdType, KeyTypes, TimeType};
pub use super::super::statement::WRITER_LOCK_TABLE;
use super::super::statement::{HISTORY_TABLE, REJECTS_TABLE, WRITES_TABLE};

/// `SERVERPROPERTY('EngineEdition')` of a Synapse dedicated SQL pool.
pub const ENGINE_EDITION_SYNAPSE: i32 = 6;
pub const ENGINE_EDITION_QUERY: &str = "SELECT CAST(SERVERPROPERTY('EngineEdition') AS int)";

/// How a table is stored: its distribution (Synapse only) and its indexes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableDesign {
    /// `HASH`, `ROUND_ROBIN` or `REPLICATE` (`sys.pdw_table_distribution_properties`); `None`
    /// on SQL Server.
    pub distribution: Option<String>,
    pub distribution_column: Option<String>,
    /// From `sys.indexes`: index 0 is the heap, 1 the clustered index, then the others.
    pub indexes: Vec<Index>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Index {
    /// `sys.indexes.name` (none for a heap).
    pub name: Option<String>,
    /// `sys.indexes.type_desc`: `HEAP`, `CLUSTERED`, `NONCLUSTERED`, `CLUSTERED COLUMNSTORE`, ...
    pub kind: String,
    /// Key columns in key order (none for a heap or a columnstore).
    pub keys: Vec<String>,
    /// `sys.indexes.is_unique`: the database refuses a second row with the same keys.
    pub unique: bool,
}

/// `cix_<table>`: the clustered index `init-warehouse` creates on SQL Server engines.
pub fn clustered_index_name(table: &str) -> String {
    format!("cix_{}", table.rsplit('.').next().unwrap_or(table))
}

/// Who keeps the history table to one row per `(id, runtime_timestamp)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyGuarantee {
    /// A unique index on exactly the key: the database refuses a second row.
    Enforced { index: String },
    /// The writer alone (its lock and duplicate check).
    WriterOnly,
}

/// What the writer's duplicate check costs on a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// An index on the probe's columns: cost follows the batch.
    Bounded { index: String },
    /// No such index: cost follows the history.
    ScansHistory { why: &'static str },
}

impl TableDesign {
    pub fn is_heap(&self) -> bool {
        self.indexes.iter().any(|index| index.kind == "HEAP")
    }

    /// Whether a rowstore index leads with the rejects' key `(partition_id, sequence_number)`,
    /// which their duplicate check looks up.
    pub fn indexes_reject_keys(&self) -> bool {
        self.indexes.iter().any(|index| {
            let keys: Vec<String> = index.keys.iter().map(|k| k.to_ascii_lowercase()).collect();
            (index.kind == "CLUSTERED" || index.kind == "NONCLUSTERED")
                && keys.starts_with(&["partition_id".to_owned(), "sequence_number".to_owned()])
        })
    }

    /// Whether a unique index on exactly `(id, runtime_timestamp)`, in either order, makes the
    /// database itself keep one row per key.
    pub fn key_guarantee(&self) -> KeyGuarantee {
        let key = |index: &&Index| {
            let mut keys: Vec<String> = index.keys.iter().map(|k| k.to_ascii_lowercase()).collect();
            keys.sort();
            index.unique && keys == ["id", "runtime_timestamp"]
        };
        match self.indexes.iter().find(key) {
            Some(index) => KeyGuarantee::Enforced {
                index: describe_index(index),
            },
            None => KeyGuarantee::WriterOnly,
        }
    }

    /// The writer probes `t.id = s.id AND t.runtime_timestamp = s.runtime_timestamp AND
    /// t.runtime_timestamp >= <earliest>`: a rowstore index leading with `runtime_timestamp`
    /// (a range seek on the batch's window) or with both key columns (a point seek) bounds it.
    pub fn history_probe(&self) -> Probe {
        let usable = self.indexes.iter().find(|index| {
            let rowstore = index.kind == "CLUSTERED" || index.kind == "NONCLUSTERED";
            let keys: Vec<String> = index.keys.iter().map(|k| k.to_ascii_lowercase()).collect();
            let leads = |first: &str| keys.first().is_some_and(|k| k == first);
            rowstore
                && (leads("runtime_timestamp")
                    || (leads("id") && keys.get(1).is_some_and(|k| k == "runtime_timestamp")))
        });
        match usable {
            Some(index) => Probe::Bounded {
                index: describe_index(index),
            },
            None if self.indexes.iter().any(|i| i.kind.contains("COLUMNSTORE")) => {
                Probe::ScansHistory {
                    why: "a columnstore without an index on (runtime_timestamp, id): trickle-loaded rows wait in delta row groups, which every duplicate check scans",
                }
            }
            None => Probe::ScansHistory {
                why: "no index on (runtime_timestamp, id), so every batch's duplicate check reads the whole history and writes slow down as it grows",
            },
        }
    }

    /// `HASH(id), CLUSTERED INDEX (runtime_timestamp, id)`, `HEAP`, ...
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match (&self.distribution, &self.distribution_column) {
            (Some(policy), Some(column)) if policy == "HASH" => {
                parts.push(format!("HASH({column})"))
            }
            (Some(policy), _) => parts.push(policy.clone()),
            (None, _) => {}
        }
        parts.extend(self.indexes.iter().map(describe_index));
        if parts.is_empty() {
            "no index".into()
        } else {
            parts.join(", ")
        }
    }
}

fn describe_index(index: &Index) -> String {
    match index.kind.as_str() {
        "HEAP" => "HEAP".into(),
        "CLUSTERED COLUMNSTORE" => "CLUSTERED COLUMNSTORE INDEX".into(),
        kind if index.unique => format!("UNIQUE {kind} INDEX ({})", index.keys.join(", ")),
        kind => format!("{kind} INDEX ({})", index.keys.join(", ")),
    }
}

/// The one warning the writer logs at start when the history table still scans everything
/// (the seed's `ROUND_ROBIN` `HEAP`); `None` when the duplicate check is bounded by the batch.
pub fn design_warning(history: &TableDesign) -> Option<String> {
    match history.history_probe() {
        Probe::Bounded { .. } => None,
        Probe::ScansHistory { why } => Some(format!(
            "Table {HISTORY_TABLE} is {}: {why}. Migrate it to the design in sql/asset_statistics_history_v3.sql (on Synapse: CTAS, then RENAME OBJECT; `handler init-warehouse` prints the SQL, docs/sql-warehouse.md explains it).",
            history.describe()
        )),
    }
}

/// Everything `init-warehouse` reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    pub engine_edition: Option<i32>,
    pub database: Option<String>,
    /// `sys.databases.is_read_committed_snapshot_on`; `None` when it could not be read.
    pub read_committed_snapshot: Option<bool>,
    pub history: Option<TableDesign>,
    /// `nvarchar(255)` in our DDL, `varchar(255)` in the seed's.
    pub history_id_type: Option<String>,
    /// The `id` column's collation (`sys.columns.collation_name`): how ids compare.
    pub history_id_collation: Option<String>,
    /// `runtime_timestamp`'s type: `datetime` in both DDLs.
    pub history_time_type: Option<String>,
    /// The same, as the writer compares the key (when it can).
    pub history_keys: Option<KeyTypes>,
    pub rejects: Option<TableDesign>,
    /// Whether the rejects table has its hub columns (this version's key).
    pub rejects_keyed_on_hub: bool,
    /// Rows in the writer lock table; `None` when the table is missing.
    pub lock_rows: Option<i64>,
    /// Whether the writes journal exists.
    pub writes_journal: bool,
    /// Whether the server takes bulk load into the writer's staging table (asked last, on a
    /// connection of its own).
    pub bulk_load: Option<BulkProbe>,
}

impl Facts {
    pub fn is_dedicated_pool(&self) -> bool {
        self.engine_edition == Some(ENGINE_EDITION_SYNAPSE)
    }
}

pub mod query;

/// `varchar(255)`, `nvarchar(max)`, `datetime2(3)`: a column's type as DDL spells it, from its
/// `max_length` (or, for `datetime2`, its scale).
pub fn type_name(type_name: &str, max_length: i32) -> String {
    let unicode = matches!(type_name, "nvarchar" | "nchar");
    match (type_name, max_length) {
        ("datetime2", scale) => format!("datetime2({scale})"),
        ("varchar" | "nvarchar" | "char" | "nchar" | "varbinary" | "binary", -1) => {
            format!("{type_name}(max)")
        }
        ("varchar" | "char" | "varbinary" | "binary", n) => format!("{type_name}({n})"),
        (_, n) if unicode => format!("{type_name}({})", n / 2),
        _ => type_name.to_owned(),
    }
}

async fn rows(client: &mut TdsClient, sql: &str) -> tiberius::Result<Vec<tiberius::Row>> {
    client.simple_query(sql).await?.into_first_result().await
}

/// How the history table's key columns are typed, as DDL spells it, and the id's collation.
#[derive(Debug, Default)]
pub struct KeyColumns {
    pub id_type: Option<String>,
    pub id_collation: Option<String>,
    pub time_type: Option<String>,
    /// How the writer compares the key, when both columns have types it writes.
    pub keys: Option<KeyTypes>,
}

/// Reads [`KeyColumns`] of `table` ([`query::key_columns`]).
pub async fn read_key_columns(client: &mut TdsClient, table: &str) -> tiberius::Result<KeyColumns> {
    Ok(KeyColumns::from_rows(
        &rows(client, &query::key_columns(table)).await?,
    ))
}

impl KeyColumns {
    /// From the rows of [`query::key_columns`]: name, `TYPE_NAME`, `max_length`, `scale`,
    /// `collation_name`, one row per column.
    pub fn from_rows(found: &[tiberius::Row]) -> Self {
        let column = |name: &str| {
            found.iter().find(|row| {
                row.get::<&str, _>(0)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        };
        let typed = |row: &tiberius::Row, size: usize| {
            Some(type_name(row.get::<&str, _>(1)?, row.get::<i32, _>(size)?))
        };
        let id = column("id");
        let time = column("runtime_timestamp");
        let keys = || {
            let (id, time) = (id?, time?);
            Some(KeyTypes {
                id: IdType::from_catalog(id.get::<&str, _>(1)?, id.get::<i32, _>(2)?)?,
                collation: id
                    .get::<&str, _>(4)
                    .and_then(Collation::from_name)
                    .unwrap_or_default(),
                time: TimeType::from_catalog(time.get::<&str, _>(1)?, time.get::<i32, _>(3)?)?,
            })
        };
        Self {
            id_type: id.and_then(|row| typed(row, 2)),
            id_collation: id.and_then(|row| row.get::<&str, _>(4).map(str::to_owned)),
            time_type: time.and_then(|row| typed(row, 3)),
            keys: keys(),
        }
    }
}

/// Why the writer cannot compare the history's key of these column types (when [`KeyColumns`]
/// has no `keys`): said the same by the writer, `check` and `init-warehouse`.
pub fn unusable_key(id_type: Option<&str>, time_type: Option<&str>) -> String {
    format!(
        "{HISTORY_TABLE}'s key is id {} and runtime_timestamp {}: the writer needs a char, varchar, nchar or nvarchar id and a datetime or datetime2 runtime_timestamp",
        id_type.unwrap_or("missing"),
        time_type.unwrap_or("missing")
    )
}

/// Whether the rejects table has its hub columns, and whether the writes journal exists.
pub async fn read_writer_tables(client: &mut TdsClient) -> tiberius::Result<(bool, bool)> {
    let mut count = async |sql: String| -> tiberius::Result<i64> {
        let found = rows(client, &sql).await?;
        Ok(found
            .first()
            .and_then(|row| row.get::<i64, _>(0))
            .unwrap_or(0))
    };
    let hub = count(query::hub_columns(REJECTS_TABLE)).await? == 2;
    let journal = count(query::table_exists(WRITES_TABLE)).await? == 1;
    Ok((hub, journal))
}

/// Reads a table's design; `None` when the table does not exist.
pub async fn read_design(
    client: &mut TdsClient,
    table: &str,
    dedicated_pool: bool,
) -> tiberius::Result<Option<TableDesign>> {
    let exists = rows(client, &query::exists(table)).await?;
    if exists
        .first()
        .and_then(|row| row.get::<i32, _>(0))
        .is_none()
    {
        return Ok(None);
    }
    let mut design = TableDesign {
        indexes: indexes_from_rows(&rows(client, &query::indexes(table)).await?),
        ..TableDesign::default()
    };
    if dedicated_pool && let Some(row) = rows(client, &query::distribution(table)).await?.first() {
        design.distribution = row.get::<&str, _>(0).map(str::to_owned);
        design.distribution_column = row.get::<&str, _>(1).map(str::to_owned);
    }
    Ok(Some(design))
}

/// A table's indexes from the rows of [`query::indexes`] (one row per key column), each with its
/// keys in order.
pub fn indexes_from_rows(rows: &[tiberius::Row]) -> Vec<Index> {
    let mut indexes: Vec<Index> = Vec::new();
    let mut last_id = None;
    for row in rows {
        let id = row.get::<i32, _>(0);
        let key = row.get::<&str, _>(2).map(str::to_owned);
        match indexes.last_mut() {
            Some(last) if last_id == Some(id) => last.keys.extend(key),
            _ => indexes.push(Index {
                name: row.get::<&str, _>(4).map(str::to_owned),
                kind: row.get::<&str, _>(1).unwrap_or("").to_owned(),
                keys: key.into_iter().collect(),
                unique: row.get::<i32, _>(3) == Some(1),
            }),
        }
        last_id = Some(id);
    }
    indexes
}

/// What the writer reads once from the catalog, in one round trip, before its first write: how
/// the history table's key columns compare (no rows when the table is missing), its indexes (for
/// [`design_warning`]), the writer lock table's row count (an error when it is missing), whether
/// the rejects table is keyed on the hub, whether the writes journal exists, and the engine
/// edition (a dedicated pool's staging table is distributed).
pub fn writer_facts_sql() -> String {
    format!(
        "{};\n{};\nSELECT COUNT_BIG(*) AS lock_rows FROM {WRITER_LOCK_TABLE};\n{};\n{};\n{ENGINE_EDITION_QUERY};",
        query::key_columns(HISTORY_TABLE),
        query::indexes(HISTORY_TABLE),
        query::hub_columns(REJECTS_TABLE),
        query::table_exists(WRITES_TABLE),
    )
}
