//! Catalog queries. Each reads one fact; the pure code of [`super`] (and of
//! [`super::super::advice`]) judges them.

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

pub fn exists(table: &str) -> String {
    format!("SELECT CAST(OBJECT_ID(N'{table}', N'U') AS int)")
}

/// 1 when the table exists, else 0 (a bigint either way).
pub fn table_exists(table: &str) -> String {
    format!(
        "SELECT CAST(CASE WHEN OBJECT_ID(N'{table}', N'U') IS NULL THEN 0 ELSE 1 END AS bigint)"
    )
}

/// The key columns of the history table: name, type, `max_length` (bytes; -1 for max),
/// scale and collation (NULL for a time column).
pub fn key_columns(table: &str) -> String {
    format!(
        "SELECT name, TYPE_NAME(system_type_id), CAST(max_length AS int), CAST(scale AS int), collation_name FROM sys.columns WHERE object_id = OBJECT_ID(N'{table}') AND name IN (N'id', N'runtime_timestamp')"
    )
}

/// How many of the rejects' hub columns (`event_hub_namespace`, `event_hub_name`) the table
/// has: 2 in the design that keys rejects on their hub, 0 in the earlier one.
pub fn hub_columns(table: &str) -> String {
    format!(
        "SELECT COUNT_BIG(*) FROM sys.columns WHERE object_id = OBJECT_ID(N'{table}') AND name IN (N'event_hub_namespace', N'event_hub_name')"
    )
}

pub const DATABASE: &str = "SELECT DB_NAME()";
pub const READ_COMMITTED_SNAPSHOT: &str =
    "SELECT CAST(is_read_committed_snapshot_on AS int) FROM sys.databases WHERE name = DB_NAME()";
