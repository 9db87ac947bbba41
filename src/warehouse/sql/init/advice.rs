//! What `init-warehouse` prints of the catalog's facts ([`super::catalog`]): what the writer
//! relies on, as found, and the SQL that changes what is wrong (and where to run it). Pure.

use super::super::keys::{Collation, TimeType};
use super::super::statement::{HISTORY_TABLE, REJECTS_TABLE, WRITER_LOCK_TABLE, WRITES_TABLE};
use super::catalog::{
    Facts, KeyGuarantee, Probe, TableDesign, clustered_index_name, design_warning,
};

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
    let collation = facts
        .history_id_collation
        .as_deref()
        .and_then(Collation::from_name)
        .map(|c| {
            format!(
                ", collation {} ({}: the writer keeps the first of the ids it calls equal in a batch)",
                c.name().unwrap_or_default(),
                c.describe()
            )
        })
        .unwrap_or_default();
    lines.push(match facts.history_id_type.as_deref() {
        Some(kind) if kind.starts_with("varchar") => format!(
            "  id column: {kind}{collation} (ids outside the database's code page are stored as '?'; the writer compares keys in this type, so replays still add nothing)"
        ),
        Some(kind) => format!("  id column: {kind}{collation}"),
        None => "  id column: missing".into(),
    });
    if let Some(kind) = facts.history_time_type.as_deref() {
        let how = TimeType::from_catalog(kind.split('(').next().unwrap_or(kind), scale_of(kind))
            .map_or("the writer needs datetime or datetime2", TimeType::describe);
        lines.push(format!("  runtime_timestamp column: {kind} ({how})"));
    }
    if let Some(history) = &facts.history {
        lines.push(match history.key_guarantee() {
            KeyGuarantee::Enforced { index } => format!(
                "  one row per (id, runtime_timestamp): enforced by the database ({index}); the writer's lock and duplicate check keep writers from colliding on it"
            ),
            KeyGuarantee::WriterOnly if facts.is_dedicated_pool() => "  one row per (id, runtime_timestamp): kept by the writer (its lock and duplicate check; a dedicated pool enforces no unique index)".into(),
            KeyGuarantee::WriterOnly => "  one row per (id, runtime_timestamp): kept by the writer alone (no unique index; the advice below lets the database enforce it)".into(),
        });
    }
    lines.push(table_line(REJECTS_TABLE, &facts.rejects, &|design| {
        let key = if facts.rejects_keyed_on_hub {
            " (keyed on hub, partition, sequence number and enqueued time)"
        } else {
            " (keyed on partition and sequence number alone: run `handler init-warehouse` to add the hub's columns)"
        };
        if !design.indexes_reject_keys() {
            format!("{key} (fine while rejects are few: the duplicate check scans them)")
        } else {
            key.to_owned()
        }
    }));
    lines.push(match facts.lock_rows {
        Some(1) => format!("  {WRITER_LOCK_TABLE}: 1 row (writers serialize on it)"),
        Some(n) => format!("  {WRITER_LOCK_TABLE}: {n} rows, expected exactly 1"),
        None => format!("  {WRITER_LOCK_TABLE}: missing (writers cannot serialize)"),
    });
    lines.push(if facts.writes_journal {
        format!("  {WRITES_TABLE}: present (what a transaction whose answer was lost wrote)")
    } else {
        format!("  {WRITES_TABLE}: missing (the writer refuses to write without it)")
    });
    lines.extend(facts.bulk_load.as_ref().map(|bulk| bulk.report()));
    lines.push(match facts.read_committed_snapshot {
        Some(true) => "  is_read_committed_snapshot_on = 1: reads see committed rows only".into(),
        Some(false) if facts.is_dedicated_pool() => "  is_read_committed_snapshot_on = 0: the pool reads READ UNCOMMITTED (the writer's lock makes its duplicate check safe; other readers see batches before they commit)".into(),
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

/// `3` of `datetime2(3)`; 3 for anything else (`datetime` reports scale 3).
fn scale_of(kind: &str) -> i32 {
    kind.split_once('(')
        .and_then(|(_, rest)| rest.trim_end_matches(')').parse().ok())
        .unwrap_or(3)
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
            sql: if facts.is_dedicated_pool() {
                migration_sql(
                    true,
                    HISTORY_TABLE,
                    "DISTRIBUTION = HASH([id]), CLUSTERED INDEX ([runtime_timestamp], [id])",
                    "[runtime_timestamp], [id]",
                )
            } else {
                unique_history_index_sql(None)
            },
            why: if facts.is_dedicated_pool() {
                "bound each batch's duplicate check by its time window (stop the Function App first; the old table is kept as ..._seed)".into()
            } else {
                "bound each batch's duplicate check by its time window, and let the database enforce one row per key (stop the Function App first; repeated keys are deleted, the first stored kept)".into()
            },
        });
    } else if let Some(history) = &facts.history
        && !facts.is_dedicated_pool()
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
                facts.is_dedicated_pool(),
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
    if facts.is_dedicated_pool() && facts.read_committed_snapshot == Some(false) {
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
pub fn migration_sql(
    dedicated_pool: bool,
    table: &str,
    with: &str,
    clustered_keys: &str,
) -> String {
    let (schema, name) = table.split_once('.').unwrap_or(("dbo", table));
    if dedicated_pool {
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

#[cfg(test)]
mod tests;
