//! Builds the one SQL batch an invocation sends: `SET XACT_ABORT ON; BEGIN TRAN;` then, per chunk,
//! a count of the keys already stored and an idempotent `INSERT ... SELECT ... UNION ALL ...
//! WHERE NOT EXISTS`, for rows then rejects, then `COMMIT TRAN`. Pure: rows in, text out.
//!
//! Synapse has no multi-row `VALUES`, no usable `MERGE` on this table, no `@@ROWCOUNT`, and rejects
//! tiberius' parameterised queries, hence literals and `UNION ALL`; the counts come back as one
//! small result set per chunk.

use chrono::{DateTime, Datelike, Utc};

use super::literal;
use crate::domain::{AssetRow, Finite, Reject, Varchar255, WarehouseTime};

pub const HISTORY_TABLE: &str = "assets.asset_statistics_history_v3";
pub const REJECTS_TABLE: &str = "assets.asset_statistics_rejects";

const HISTORY_COLUMNS: &str = "id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, runtime_timestamp";
const REJECT_COLUMNS: &str = "received_at, reason_code, reason, raw_body, partition_id, event_offset, sequence_number, enqueued_time";

/// How big one `INSERT` may get.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `SELECT`s joined by `UNION ALL` in one statement (deep unions cost compile time and stack).
    pub max_rows: usize,
    /// Synapse allows 20,000 string literals per statement.
    pub max_string_literals: usize,
    /// Bytes of one statement (a whole batch may be up to 256 MiB).
    pub max_statement_bytes: usize,
}

pub const SYNAPSE_LIMITS: Limits = Limits {
    max_rows: 1000,
    max_string_literals: 20_000,
    max_statement_bytes: 16 * 1024 * 1024,
};

/// The batch text and how to read its answer: one count result set per chunk, row chunks first.
#[derive(Debug, Clone)]
pub struct BatchSql {
    pub sql: String,
    pub row_chunks: usize,
    pub reject_chunks: usize,
}

/// One rendered `SELECT` of a union, with what it costs against the limits.
struct Rendered {
    /// The full `SELECT` of the row (first of a chunk: with column aliases).
    select: String,
    /// The same without aliases, for the rest of a chunk.
    select_bare: String,
    /// `SELECT <key columns>` for the count of keys already stored.
    key: String,
    key_bare: String,
    literals: usize,
}

pub fn build_batch(
    rows: &[AssetRow],
    rejects: &[Reject],
    received_at: DateTime<Utc>,
    limits: &Limits,
) -> BatchSql {
    let mut sql = String::from("SET XACT_ABORT ON;\nBEGIN TRAN;\n");
    let row_chunks = write_chunks(
        &mut sql,
        rows.iter().map(render_row),
        limits,
        |sql, chunk, earliest| {
            let bound = earliest.map(|at| {
                let mut out = String::new();
                literal::datetime(&mut out, at);
                out
            });
            history_statements(sql, chunk, bound.as_deref().unwrap_or("NULL"));
        },
        rows.iter().map(|r| Some(r.runtime_timestamp)),
    );
    let received_at = datetime2(received_at);
    let reject_chunks = write_chunks(
        &mut sql,
        rejects
            .iter()
            .map(|reject| render_reject(reject, &received_at)),
        limits,
        |sql, chunk, _| reject_statements(sql, chunk),
        rejects.iter().map(|_| None),
    );
    sql.push_str("COMMIT TRAN;\n");
    BatchSql {
        sql,
        row_chunks,
        reject_chunks,
    }
}

/// Splits rendered selects into chunks inside the limits and writes each chunk's statements.
/// Returns the number of chunks.
fn write_chunks(
    sql: &mut String,
    rendered: impl Iterator<Item = Rendered>,
    limits: &Limits,
    mut write: impl FnMut(&mut String, &[Rendered], Option<WarehouseTime>),
    times: impl Iterator<Item = Option<WarehouseTime>>,
) -> usize {
    let mut chunks = 0;
    let mut chunk: Vec<Rendered> = Vec::new();
    let (mut literals, mut bytes) = (0, 0);
    let mut earliest: Option<WarehouseTime> = None;
    for (item, at) in rendered.zip(times) {
        // Each select appears twice (count and insert); the bound literal once per statement.
        let item_literals = item.literals;
        let item_bytes = item.select.len() + item.key.len();
        let full = chunk.len() == limits.max_rows
            || literals + item_literals + 1 > limits.max_string_literals
            || bytes + item_bytes > limits.max_statement_bytes;
        if !chunk.is_empty() && full {
            write(sql, &chunk, earliest);
            chunks += 1;
            chunk.clear();
            (literals, bytes, earliest) = (0, 0, None);
        }
        literals += item_literals;
        bytes += item_bytes;
        earliest = match (earliest, at) {
            (Some(e), Some(a)) => Some(e.min(a)),
            (e, a) => e.or(a),
        };
        chunk.push(item);
    }
    if !chunk.is_empty() {
        write(sql, &chunk, earliest);
        chunks += 1;
    }
    chunks
}

/// Writes the selects of a chunk joined by `UNION ALL` (the first one with column aliases).
fn union(
    sql: &mut String,
    chunk: &[Rendered],
    first: impl Fn(&Rendered) -> &str,
    rest: impl Fn(&Rendered) -> &str,
) {
    for (i, item) in chunk.iter().enumerate() {
        if i == 0 {
            sql.push_str(first(item));
        } else {
            sql.push_str("\nUNION ALL ");
            sql.push_str(rest(item));
        }
    }
}

/// The count of keys already stored, then the idempotent insert, for one chunk. `probe` is the
/// `SELECT 1 FROM <table> AS t WHERE ...` that finds a stored row `t` for a chunk row `s`.
fn count_and_insert(sql: &mut String, chunk: &[Rendered], table: &str, columns: &str, probe: &str) {
    let bytes: usize = chunk
        .iter()
        .map(|r| r.key_bare.len() + r.select_bare.len() + 22)
        .sum();
    sql.reserve(bytes + 2 * probe.len() + 256);
    sql.push_str("SELECT COUNT_BIG(*) AS existing FROM (\n");
    union(sql, chunk, |r| &r.key, |r| &r.key_bare);
    sql.push_str("\n) AS s\nWHERE EXISTS (");
    sql.push_str(probe);
    sql.push_str(");\nINSERT INTO ");
    sql.push_str(table);
    sql.push_str(" (");
    sql.push_str(columns);
    sql.push_str(")\nSELECT s.* FROM (\n");
    union(sql, chunk, |r| &r.select, |r| &r.select_bare);
    sql.push_str("\n) AS s\nWHERE NOT EXISTS (");
    sql.push_str(probe);
    sql.push_str(");\n");
}

fn history_statements(sql: &mut String, chunk: &[Rendered], bound: &str) {
    let probe = format!(
        "SELECT 1 FROM {HISTORY_TABLE} AS t WHERE t.id = s.id AND t.runtime_timestamp = s.runtime_timestamp AND t.runtime_timestamp >= {bound}"
    );
    count_and_insert(sql, chunk, HISTORY_TABLE, HISTORY_COLUMNS, &probe);
}

fn reject_statements(sql: &mut String, chunk: &[Rendered]) {
    let probe = format!(
        "SELECT 1 FROM {REJECTS_TABLE} AS t WHERE t.partition_id = s.partition_id AND t.sequence_number = s.sequence_number"
    );
    count_and_insert(sql, chunk, REJECTS_TABLE, REJECT_COLUMNS, &probe);
}

/// Builds a `SELECT` of `CAST(<literal> AS <type>) [AS <alias>]` columns, with and without
/// aliases, rendering each literal once into a reused buffer (a batch renders thousands).
struct SelectBuilder {
    aliased: String,
    bare: String,
    literals: usize,
    value: String,
}

impl SelectBuilder {
    fn with_capacity(bytes: usize) -> Self {
        let mut aliased = String::with_capacity(bytes);
        aliased.push_str("SELECT ");
        let mut bare = String::with_capacity(bytes);
        bare.push_str("SELECT ");
        Self {
            aliased,
            bare,
            literals: 0,
            value: String::with_capacity(64),
        }
    }

    /// Adds `CAST(<what render writes> AS <sql_type>)` under `alias`.
    fn cast(
        &mut self,
        alias: &str,
        sql_type: &str,
        literals: usize,
        render: impl FnOnce(&mut String),
    ) {
        let mut value = std::mem::take(&mut self.value);
        value.clear();
        value.push_str("CAST(");
        render(&mut value);
        value.push_str(" AS ");
        value.push_str(sql_type);
        value.push(')');
        self.column(&value, alias, literals);
        self.value = value;
    }

    fn column(&mut self, value: &str, alias: &str, literals: usize) {
        if self.aliased.len() > "SELECT ".len() {
            self.aliased.push_str(", ");
            self.bare.push_str(", ");
        }
        self.aliased.push_str(value);
        self.aliased.push_str(" AS ");
        self.aliased.push_str(alias);
        self.bare.push_str(value);
        self.literals += literals;
    }

    /// A string literal (`N'...'`, NUL characters as `NCHAR(0)`), or NULL.
    fn text(&mut self, value: Option<&str>, sql_type: &str, alias: &str) {
        let literals = value.map_or(0, |v| 1 + v.matches('\0').count());
        self.cast(alias, sql_type, literals, |out| match value {
            Some(value) => literal::nstring(out, value),
            None => out.push_str("NULL"),
        });
    }

    fn varchar(&mut self, value: Option<&Varchar255>, alias: &str) {
        self.text(value.map(Varchar255::as_str), "nvarchar(255)", alias);
    }

    fn float(&mut self, value: Option<Finite>, alias: &str) {
        self.cast(alias, "float", 0, |out| match value {
            Some(value) => literal::float(out, value.get()),
            None => out.push_str("NULL"),
        });
    }

    fn bigint(&mut self, value: Option<i64>, alias: &str) {
        self.cast(alias, "bigint", 0, |out| match value {
            Some(value) => literal::integer(out, value),
            None => out.push_str("NULL"),
        });
    }
}

fn cast(value: &str, sql_type: &str) -> String {
    format!("CAST({value} AS {sql_type})")
}

/// `CAST('...' AS datetime2(3))`, or NULL outside datetime2's years.
fn datetime2(at: DateTime<Utc>) -> String {
    if (1..=9999).contains(&at.year()) {
        cast(
            &format!("'{}'", at.format("%Y-%m-%dT%H:%M:%S%.3f")),
            "datetime2(3)",
        )
    } else {
        cast("NULL", "datetime2(3)")
    }
}

fn render_row(row: &AssetRow) -> Rendered {
    let mut select = SelectBuilder::with_capacity(768);
    let mut key = SelectBuilder::with_capacity(160);
    let mut at = String::with_capacity(48);
    literal::datetime(&mut at, row.runtime_timestamp);
    select.varchar(Some(&row.id), "id");
    select.bigint(row.asset_rank, "asset_rank");
    select.varchar(row.symbol.as_ref(), "symbol");
    select.varchar(row.asset_name.as_ref(), "asset_name");
    for (value, alias) in [
        (row.supply, "supply"),
        (row.max_supply, "maxSupply"),
        (row.market_cap_usd, "marketCapUsd"),
        (row.volume_usd_24_hr, "volumeUsd24Hr"),
        (row.price_usd, "priceUsd"),
        (row.change_percent_24_hr, "changePercent24Hr"),
        (row.vwap_24_hr, "vwap24Hr"),
    ] {
        select.float(value, alias);
    }
    select.varchar(row.explorer.as_ref(), "explorer");
    select.column(&at, "runtime_timestamp", 1);
    key.varchar(Some(&row.id), "id");
    key.column(&at, "runtime_timestamp", 1);
    Rendered {
        literals: select.literals + key.literals,
        select: select.aliased,
        select_bare: select.bare,
        key: key.aliased,
        key_bare: key.bare,
    }
}

fn render_reject(reject: &Reject, received_at: &str) -> Rendered {
    let mut select = SelectBuilder::with_capacity(256 + 2 * reject.raw_body.len());
    let mut key = SelectBuilder::with_capacity(128);
    let at = &reject.coordinates;
    select.column(received_at, "received_at", 1);
    select.text(Some(reject.reason.code()), "varchar(32)", "reason_code");
    select.text(Some(&reject.reason.to_string()), "nvarchar(4000)", "reason");
    select.text(Some(&reject.raw_body), "nvarchar(max)", "raw_body");
    select.text(at.partition_id.as_deref(), "varchar(64)", "partition_id");
    select.text(at.offset.as_deref(), "varchar(64)", "event_offset");
    select.bigint(at.sequence_number, "sequence_number");
    let enqueued = at
        .enqueued_time
        .map_or_else(|| cast("NULL", "datetime2(3)"), datetime2);
    select.column(
        &enqueued,
        "enqueued_time",
        usize::from(at.enqueued_time.is_some()),
    );
    key.text(at.partition_id.as_deref(), "varchar(64)", "partition_id");
    key.bigint(at.sequence_number, "sequence_number");
    Rendered {
        literals: select.literals + key.literals,
        select: select.aliased,
        select_bare: select.bare,
        key: key.aliased,
        key_bare: key.bare,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventCoordinates, map_events};
    use sqlparser::ast::Statement;
    use sqlparser::dialect::MsSqlDialect;
    use sqlparser::parser::Parser;

    fn rows(n: usize, id_prefix: &str) -> Vec<AssetRow> {
        let bodies = (0..n).map(|i| {
            (
                format!(
                    r#"{{"id":"{id_prefix}{i}","rank":"{i}","symbol":"S","name":"O'Neil 币","priceUsd":"{i}.5","maxSupply":null,"explorer":null,"timestamp":{}}}"#,
                    1_747_000_000_000_i64 + i as i64
                ),
                EventCoordinates::default(),
            )
        });
        map_events(bodies).rows
    }

    fn reject(body: &str, sequence: i64) -> Reject {
        let mut batch = map_events([(
            body.to_owned(),
            EventCoordinates {
                partition_id: Some("3".into()),
                offset: Some("4294967400".into()),
                sequence_number: Some(sequence),
                enqueued_time: Some(Utc::now()),
            },
        )]);
        batch.rejects.remove(0)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-05-01T12:00:00.5Z")
            .unwrap()
            .to_utc()
    }

    fn statements(sql: &str) -> Vec<Statement> {
        Parser::parse_sql(&MsSqlDialect {}, sql).unwrap_or_else(|e| panic!("{e}\n{sql}"))
    }

    /// The kinds of statement a batch holds, in order.
    fn shape(sql: &str) -> Vec<&'static str> {
        statements(sql)
            .iter()
            .map(|s| match s {
                Statement::Set(_) => "set",
                Statement::StartTransaction { .. } => "begin",
                Statement::Commit { .. } => "commit",
                Statement::Query(_) => "count",
                Statement::Insert(_) => "insert",
                other => panic!("unexpected statement {other}"),
            })
            .collect()
    }

    #[test]
    fn a_batch_is_one_transaction_of_counts_and_inserts_and_nothing_else() {
        let batch = build_batch(
            &rows(3, "a"),
            &[reject("not json", 7)],
            now(),
            &SYNAPSE_LIMITS,
        );
        assert_eq!(
            shape(&batch.sql),
            [
                "set", "begin", "count", "insert", "count", "insert", "commit"
            ]
        );
        assert_eq!((batch.row_chunks, batch.reject_chunks), (1, 1));
    }

    #[test]
    fn an_empty_batch_is_an_empty_transaction() {
        let batch = build_batch(&[], &[], now(), &SYNAPSE_LIMITS);
        assert_eq!(shape(&batch.sql), ["set", "begin", "commit"]);
        assert_eq!((batch.row_chunks, batch.reject_chunks), (0, 0));
    }

    #[test]
    fn every_column_is_cast_to_its_type_and_null_stays_null() {
        let batch = build_batch(&rows(1, "x"), &[], now(), &SYNAPSE_LIMITS);
        let sql = &batch.sql;
        assert!(sql.contains("CAST(N'x0' AS nvarchar(255)) AS id"), "{sql}");
        assert!(sql.contains("CAST(0 AS bigint) AS asset_rank"), "{sql}");
        assert!(
            sql.contains("CAST(N'O''Neil 币' AS nvarchar(255)) AS asset_name"),
            "{sql}"
        );
        assert!(sql.contains("CAST(5E-1 AS float) AS priceUsd"), "{sql}");
        assert!(sql.contains("CAST(NULL AS float) AS maxSupply"), "{sql}");
        assert!(
            sql.contains("CAST(NULL AS nvarchar(255)) AS explorer"),
            "{sql}"
        );
        assert!(
            sql.contains("CAST('2025-05-11T21:46:40.000' AS datetime) AS runtime_timestamp"),
            "{sql}"
        );
    }

    #[test]
    fn the_probe_is_bounded_by_the_earliest_timestamp_of_the_chunk() {
        let batch = build_batch(&rows(3, "a"), &[], now(), &SYNAPSE_LIMITS);
        assert_eq!(
            batch
                .sql
                .matches("t.runtime_timestamp >= CAST('2025-05-11T21:46:40.000' AS datetime)")
                .count(),
            2,
            "in the count and in the insert"
        );
    }

    #[test]
    fn chunks_stop_at_the_row_limit() {
        let limits = Limits {
            max_rows: 2,
            ..SYNAPSE_LIMITS
        };
        let batch = build_batch(&rows(5, "a"), &[], now(), &limits);
        assert_eq!(batch.row_chunks, 3);
        assert_eq!(
            shape(&batch.sql).iter().filter(|s| **s == "insert").count(),
            3
        );
        // Each chunk's bound is its own earliest timestamp.
        assert!(
            batch
                .sql
                .contains(">= CAST('2025-05-11T21:46:40.004' AS datetime)"),
            "{}",
            batch.sql
        );
    }

    #[test]
    fn chunks_stop_before_the_string_literal_limit() {
        // A row here has 4 literals (id, name, symbol, timestamp) plus 2 in its key: 6.
        let limits = Limits {
            max_string_literals: 20,
            ..SYNAPSE_LIMITS
        };
        let batch = build_batch(&rows(7, "a"), &[], now(), &limits);
        assert_eq!(
            batch.row_chunks, 3,
            "3 rows (18 literals + the bound) per statement"
        );
        for statement in batch
            .sql
            .split(";\n")
            .filter(|s| s.starts_with("INSERT") || s.starts_with("SELECT"))
        {
            let literals = statement.matches("N'").count() + statement.matches("CAST('").count();
            assert!(literals <= 20, "{literals} literals in {statement}");
        }
    }

    #[test]
    fn chunks_stop_before_the_statement_size_limit_but_hold_at_least_one_row() {
        let limits = Limits {
            max_statement_bytes: 1,
            ..SYNAPSE_LIMITS
        };
        let batch = build_batch(&rows(3, "a"), &[], now(), &limits);
        assert_eq!(batch.row_chunks, 3);
    }

    #[test]
    fn a_thousand_rows_fit_one_statement_and_one_more_starts_another() {
        assert_eq!(
            build_batch(&rows(1000, "a"), &[], now(), &SYNAPSE_LIMITS).row_chunks,
            1
        );
        assert_eq!(
            build_batch(&rows(1001, "a"), &[], now(), &SYNAPSE_LIMITS).row_chunks,
            2
        );
    }

    #[test]
    fn rejects_keep_body_reason_and_coordinates() {
        let batch = build_batch(&[], &[reject("it's \0 bad", 101)], now(), &SYNAPSE_LIMITS);
        let sql = &batch.sql;
        assert!(
            sql.contains("CAST(N'it''s ' + NCHAR(0) + N' bad' AS nvarchar(max)) AS raw_body"),
            "{sql}"
        );
        assert!(
            sql.contains("CAST(N'not_json' AS varchar(32)) AS reason_code"),
            "{sql}"
        );
        assert!(
            sql.contains("CAST(N'3' AS varchar(64)) AS partition_id"),
            "{sql}"
        );
        assert!(
            sql.contains("CAST(N'4294967400' AS varchar(64)) AS event_offset"),
            "{sql}"
        );
        assert!(
            sql.contains("CAST(101 AS bigint) AS sequence_number"),
            "{sql}"
        );
        assert!(
            sql.contains("CAST('2026-05-01T12:00:00.500' AS datetime2(3)) AS received_at"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "t.partition_id = s.partition_id AND t.sequence_number = s.sequence_number"
            )
        );
    }

    #[test]
    fn hostile_text_stays_inside_its_literal() {
        let hostile = rows(1, "x'); DROP TABLE assets.asset_statistics_history_v3; --");
        let batch = build_batch(
            &hostile,
            &[reject("'; DELETE FROM x; --", 1)],
            now(),
            &SYNAPSE_LIMITS,
        );
        assert_eq!(
            shape(&batch.sql),
            [
                "set", "begin", "count", "insert", "count", "insert", "commit"
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_batch_parses_as_the_intended_statements(
            names in proptest::collection::vec("[^\0]{0,40}", 0..12),
            bodies in proptest::collection::vec(".{0,40}", 0..4),
            max_rows in 1usize..5,
        ) {
            let events = names.iter().enumerate().map(|(i, name)| (
                serde_json::json!({"id": format!("id{i}"), "name": name, "priceUsd": "1.5", "timestamp": 1_747_000_000_000_i64}).to_string(),
                EventCoordinates::default(),
            ));
            let mapped = map_events(events);
            let rejects: Vec<Reject> = bodies.iter().enumerate().map(|(i, b)| reject(&format!("x{b}"), i as i64)).collect();
            let limits = Limits { max_rows, ..SYNAPSE_LIMITS };
            let batch = build_batch(&mapped.rows, &rejects, now(), &limits);
            let mut expected = vec!["set", "begin"];
            for _ in 0..batch.row_chunks + batch.reject_chunks {
                expected.extend(["count", "insert"]);
            }
            expected.push("commit");
            proptest::prop_assert_eq!(shape(&batch.sql), expected);
            proptest::prop_assert_eq!(batch.row_chunks, mapped.rows.len().div_ceil(max_rows));
        }
    }
}
