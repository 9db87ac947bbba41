//! What the writer relies on, read from the catalog (engine, table designs, the id column's type,
//! the writer lock, the database's read isolation), and the pure judgement of those facts: the
//! report `init-warehouse` prints, the SQL that fixes what is wrong, and the writer's start-up
//! warning for a history table that is still the seed's scan-everything heap.

use super::super::connection::TdsClient;
pub use super::super::statement::WRITER_LOCK_TABLE;
use super::super::statement::{HISTORY_TABLE, REJECTS_TABLE};

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
            "Table {HISTORY_TABLE} is {}: {why}. Migrate it to the design in sql/asset_statistics_history_v3.sql (on Synapse: CTAS, then RENAME OBJECT; `handler init-warehouse` prints the SQL, docs/synapse.md explains it).",
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
    pub rejects: Option<TableDesign>,
    /// Rows in the writer lock table; `None` when the table is missing.
    pub lock_rows: Option<i64>,
}

impl Facts {
    pub fn synapse(&self) -> bool {
        self.engine_edition == Some(ENGINE_EDITION_SYNAPSE)
    }
}

/// One change to make by hand: the SQL, the database to run it in, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    pub run_in: String,
    pub sql: String,
    pub why: String,
}

/// The report's lines: what the writer relies on, as found.
pub fn report(facts: &Facts) -> Vec<String> {
    let mut lines = vec!["What the writer relies on:".to_owned()];
    let table_line = |name: &str,
                      design: &Option<TableDesign>,
                      judge: &dyn Fn(&TableDesign) -> String| match design {
        Some(design) => format!("  {name}: {}{}", design.describe(), judge(design)),
        None => format!("  {name}: missing"),
    };
    lines.push(table_line(
        HISTORY_TABLE,
        &facts.history,
        &|design| match design.history_probe() {
            Probe::Bounded { .. } => " (duplicate check bounded by the batch's time window)".into(),
            Probe::ScansHistory { .. } if design.is_heap() => {
                " (the seed's design: the duplicate check scans all history)".into()
            }
            Probe::ScansHistory { .. } => " (the duplicate check scans all history)".into(),
        },
    ));
    lines.push(match facts.history_id_type.as_deref() {
        Some(kind) if kind.starts_with("varchar") => format!(
            "  id column: {kind} (ids outside the database's code page are stored as '?'; the writer compares keys in this type, so replays still add nothing)"
        ),
        Some(kind) => format!("  id column: {kind}"),
        None => "  id column: missing".into(),
    });
    if let Some(history) = &facts.history {
        lines.push(match history.key_guarantee() {
            KeyGuarantee::Enforced { index } => format!(
                "  one row per (id, runtime_timestamp): enforced by the database ({index}); the writer's lock and duplicate check keep writers from colliding on it"
            ),
            KeyGuarantee::WriterOnly if facts.synapse() => "  one row per (id, runtime_timestamp): kept by the writer (its lock and duplicate check; a dedicated pool enforces no unique index)".into(),
            KeyGuarantee::WriterOnly => "  one row per (id, runtime_timestamp): kept by the writer alone (no unique index; the advice below lets the database enforce it)".into(),
        });
    }
    lines.push(table_line(REJECTS_TABLE, &facts.rejects, &|design| {
        if !design.indexes_reject_keys() {
            " (fine while rejects are few: the duplicate check scans them)".into()
        } else {
            String::new()
        }
    }));
    lines.push(match facts.lock_rows {
        Some(1) => format!("  {WRITER_LOCK_TABLE}: 1 row (writers serialize on it)"),
        Some(n) => format!("  {WRITER_LOCK_TABLE}: {n} rows, expected exactly 1"),
        None => format!("  {WRITER_LOCK_TABLE}: missing (writers cannot serialize)"),
    });
    lines.push(match facts.read_committed_snapshot {
        Some(true) => "  is_read_committed_snapshot_on = 1: reads see committed rows only".into(),
        Some(false) if facts.synapse() => "  is_read_committed_snapshot_on = 0: the pool reads READ UNCOMMITTED (the writer's lock makes its duplicate check safe; other readers see batches before they commit)".into(),
        Some(false) => "  is_read_committed_snapshot_on = 0: READ COMMITTED with locks (the writer's lock makes its duplicate check safe)".into(),
        None => "  is_read_committed_snapshot_on: unknown (sys.databases not readable here)".into(),
    });
    if let Some(warning) = facts.history.as_ref().and_then(design_warning) {
        lines.push(format!("Warning: {warning}"));
    }
    let advice = advice(facts);
    if advice.is_empty() {
        lines.push("Nothing to change.".into());
    } else {
        lines.push("To change what is wrong, run:".into());
        for item in advice {
            lines.push(format!("  -- in database {}: {}", item.run_in, item.why));
            lines.extend(item.sql.lines().map(|line| format!("  {line}")));
        }
    }
    lines
}

/// What to run, and where, to change what is wrong (or, for isolation, worth changing).
pub fn advice(facts: &Facts) -> Vec<Advice> {
    let database = facts
        .database
        .clone()
        .unwrap_or_else(|| "<your pool>".into());
    let mut advice = Vec::new();
    if let Some(history) = &facts.history
        && matches!(history.history_probe(), Probe::ScansHistory { .. })
    {
        advice.push(Advice {
            run_in: database.clone(),
            sql: if facts.synapse() {
                migration_sql(
                    true,
                    HISTORY_TABLE,
                    "DISTRIBUTION = HASH([id]), CLUSTERED INDEX ([runtime_timestamp], [id])",
                    "[runtime_timestamp], [id]",
                )
            } else {
                unique_history_index_sql(None)
            },
            why: if facts.synapse() {
                "bound each batch's duplicate check by its time window (stop the Function App first; the old table is kept as ..._seed)".into()
            } else {
                "bound each batch's duplicate check by its time window, and let the database enforce one row per key (stop the Function App first; repeated keys are deleted, the first stored kept)".into()
            },
        });
    } else if let Some(history) = &facts.history
        && !facts.synapse()
        && history.key_guarantee() == KeyGuarantee::WriterOnly
    {
        let clustered = history
            .indexes
            .iter()
            .find(|index| index.kind == "CLUSTERED");
        advice.push(Advice {
            run_in: database.clone(),
            sql: unique_history_index_sql(clustered.and_then(|index| index.name.as_deref())),
            why: "let the database enforce one row per key (stop the Function App first; repeated keys are deleted, the first stored kept)".into(),
        });
    }
    if let Some(rejects) = &facts.rejects
        && !rejects.indexes_reject_keys()
    {
        advice.push(Advice {
            run_in: database.clone(),
            sql: migration_sql(
                facts.synapse(),
                REJECTS_TABLE,
                "DISTRIBUTION = ROUND_ROBIN, CLUSTERED INDEX ([partition_id], [sequence_number])",
                "[partition_id], [sequence_number]",
            ),
            why: "optional, when rejects grow many: bound the rejects' duplicate check (stop the Function App first)".into(),
        });
    }
    match facts.lock_rows {
        Some(n) if n > 1 => advice.push(Advice {
            run_in: database.clone(),
            sql: format!("DELETE FROM {WRITER_LOCK_TABLE};\n-- then run `handler init-warehouse` again: it inserts the one row"),
            why: format!("the writer lock holds {n} rows; with several, two writers can each lock one and wait for the other"),
        }),
        _ => {}
    }
    if facts.synapse() && facts.read_committed_snapshot == Some(false) {
        advice.push(Advice {
            run_in: "master".into(),
            sql: format!("ALTER DATABASE [{}] SET READ_COMMITTED_SNAPSHOT ON;", database.replace(']', "]]")),
            why: "optional: readers (reports, dashboards) then see only committed batches; the writer is safe either way".into(),
        });
    }
    advice
}

/// Moves a table into a design. Synapse cannot change a table's distribution or index in place:
/// CTAS into the new design (`SELECT *` keeps the IDENTITY column's property), then RENAME OBJECT
/// ("CREATE TABLE AS SELECT" and "RENAME" in Microsoft's T-SQL reference). SQL Server builds the
/// clustered index in place.
pub fn migration_sql(synapse: bool, table: &str, with: &str, clustered_keys: &str) -> String {
    let (schema, name) = table.split_once('.').unwrap_or(("dbo", table));
    if synapse {
        format!(
            "CREATE TABLE {schema}.{name}_new WITH ({with}) AS SELECT * FROM {table};\nRENAME OBJECT {table} TO {name}_seed;\nRENAME OBJECT {schema}.{name}_new TO {name};"
        )
    } else {
        format!(
            "CREATE CLUSTERED INDEX [{}] ON {table} ({clustered_keys});",
            clustered_index_name(table)
        )
    }
}

/// On a SQL Server engine: deletes repeated keys from the history table (keeping the first row
/// stored, by its IDENTITY column), drops the clustered index named `existing` if any, and
/// creates the unique clustered index `init-warehouse` creates on a new table.
pub fn unique_history_index_sql(existing: Option<&str>) -> String {
    let name = clustered_index_name(HISTORY_TABLE);
    let mut sql = format!(
        "DELETE FROM {HISTORY_TABLE} WHERE [id_asset_statistics_history] IN (SELECT [id_asset_statistics_history] FROM (SELECT [id_asset_statistics_history], ROW_NUMBER() OVER (PARTITION BY [id], [runtime_timestamp] ORDER BY [id_asset_statistics_history]) AS n FROM {HISTORY_TABLE}) AS d WHERE d.n > 1);\n"
    );
    if let Some(existing) = existing {
        sql.push_str(&format!(
            "DROP INDEX [{}] ON {HISTORY_TABLE};\n",
            existing.replace(']', "]]")
        ));
    }
    sql.push_str(&format!(
        "CREATE UNIQUE CLUSTERED INDEX [{name}] ON {HISTORY_TABLE} ([runtime_timestamp], [id]);"
    ));
    sql
}

/// Catalog queries. Each reads one fact; the pure code above judges them.
pub mod query {
    /// The table's indexes (0 = heap, 1 = clustered) with their key columns in order, whether
    /// each is unique, and its name.
    pub fn indexes(table: &str) -> String {
        format!(
            "SELECT i.index_id, i.type_desc, c.name, CAST(i.is_unique AS int), i.name FROM sys.indexes AS i \
             LEFT JOIN sys.index_columns AS ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id AND ic.key_ordinal > 0 \
             LEFT JOIN sys.columns AS c ON c.object_id = ic.object_id AND c.column_id = ic.column_id \
             WHERE i.object_id = OBJECT_ID(N'{table}') ORDER BY i.index_id, ic.key_ordinal"
        )
    }

    /// Synapse only: the distribution policy and the hash column.
    pub fn distribution(table: &str) -> String {
        format!(
            "SELECT d.distribution_policy_desc, c.name FROM sys.pdw_table_distribution_properties AS d \
             LEFT JOIN sys.pdw_column_distribution_properties AS cd ON cd.object_id = d.object_id AND cd.distribution_ordinal = 1 \
             LEFT JOIN sys.columns AS c ON c.object_id = cd.object_id AND c.column_id = cd.column_id \
             WHERE d.object_id = OBJECT_ID(N'{table}')"
        )
    }

    /// The type of a column, as `TYPE_NAME` and `max_length` in bytes (-1 for max).
    pub fn column_type(table: &str, column: &str) -> String {
        format!(
            "SELECT TYPE_NAME(system_type_id), CAST(max_length AS int) FROM sys.columns WHERE object_id = OBJECT_ID(N'{table}') AND name = N'{column}'"
        )
    }

    pub fn exists(table: &str) -> String {
        format!("SELECT CAST(OBJECT_ID(N'{table}', N'U') AS int)")
    }

    pub const DATABASE: &str = "SELECT DB_NAME()";
    pub const READ_COMMITTED_SNAPSHOT: &str = "SELECT CAST(is_read_committed_snapshot_on AS int) FROM sys.databases WHERE name = DB_NAME()";
}

/// `varchar(255)`, `nvarchar(max)`: a column's type as DDL spells it.
pub fn type_name(type_name: &str, max_length: i32) -> String {
    let unicode = matches!(type_name, "nvarchar" | "nchar");
    match (type_name, max_length) {
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

/// Reads a table's design; `None` when the table does not exist.
pub async fn read_design(
    client: &mut TdsClient,
    table: &str,
    synapse: bool,
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
    if synapse && let Some(row) = rows(client, &query::distribution(table)).await?.first() {
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

/// What the writer reads once from the catalog, in one round trip, before its first write: the
/// history table's `id` type (no row when the table is missing), its indexes (for
/// [`design_warning`]) and the writer lock table's row count (an error when it is missing).
pub fn writer_facts_sql() -> String {
    format!(
        "{};\n{};\nSELECT COUNT_BIG(*) AS lock_rows FROM {WRITER_LOCK_TABLE};",
        query::column_type(HISTORY_TABLE, "id"),
        query::indexes(HISTORY_TABLE)
    )
}
