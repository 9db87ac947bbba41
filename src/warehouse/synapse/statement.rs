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

fn union(
    chunk: &[Rendered],
    first: impl Fn(&Rendered) -> &str,
    rest: impl Fn(&Rendered) -> &str,
) -> String {
    let mut out = String::new();
    for (i, item) in chunk.iter().enumerate() {
        if i == 0 {
            out.push_str(first(item));
        } else {
            out.push_str("\nUNION ALL ");
            out.push_str(rest(item));
        }
    }
    out
}

fn history_statements(sql: &mut String, chunk: &[Rendered], bound: &str) {
    let matches = format!(
        "t.id = s.id AND t.runtime_timestamp = s.runtime_timestamp AND t.runtime_timestamp >= {bound}"
    );
    count_and_insert(sql, chunk, HISTORY_TABLE, HISTORY_COLUMNS, &matches);
}

fn reject_statements(sql: &mut String, chunk: &[Rendered]) {
    let matches = "t.partition_id = s.partition_id AND t.sequence_number = s.sequence_number";
    count_and_insert(sql, chunk, REJECTS_TABLE, REJECT_COLUMNS, matches);
}

/// The pair of statements of one chunk: how many of its keys are already stored, then the insert
/// of those that are not. `matches` compares a stored row `t` with a chunk row `s`.
fn count_and_insert(
    sql: &mut String,
    chunk: &[Rendered],
    table: &str,
    columns: &str,
    matches: &str,
) {
    let probe = format!("SELECT 1 FROM {table} AS t WHERE {matches}");
    let keys = union(chunk, |r| &r.key, |r| &r.key_bare);
    sql.push_str(&format!(
        "SELECT COUNT_BIG(*) AS existing FROM (\n{keys}\n) AS s\nWHERE EXISTS ({probe});\n"
    ));
    let selects = union(chunk, |r| &r.select, |r| &r.select_bare);
    sql.push_str(&format!(
        "INSERT INTO {table} ({columns})\nSELECT s.* FROM (\n{selects}\n) AS s\nWHERE NOT EXISTS ({probe});\n"
    ));
}

/// Builds a `SELECT` from `(value, alias)` pairs, with and without aliases.
struct SelectBuilder {
    aliased: String,
    bare: String,
    literals: usize,
}

impl SelectBuilder {
    fn new() -> Self {
        Self {
            aliased: String::from("SELECT "),
            bare: String::from("SELECT "),
            literals: 0,
        }
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
}

fn cast(value: &str, sql_type: &str) -> String {
    format!("CAST({value} AS {sql_type})")
}

fn text(value: Option<&str>, sql_type: &str) -> (String, usize) {
    match value {
        Some(value) => {
            let mut out = String::new();
            literal::nstring(&mut out, value);
            (cast(&out, sql_type), 1 + value.matches('\0').count())
        }
        None => (cast("NULL", sql_type), 0),
    }
}

fn varchar(value: Option<&Varchar255>) -> (String, usize) {
    text(value.map(Varchar255::as_str), "nvarchar(255)")
}

fn float(value: Option<Finite>) -> String {
    match value {
        Some(value) => {
            let mut out = String::new();
            literal::float(&mut out, value.get());
            cast(&out, "float")
        }
        None => cast("NULL", "float"),
    }
}

fn bigint(value: Option<i64>) -> String {
    match value {
        Some(value) => {
            let mut out = String::new();
            literal::integer(&mut out, value);
            cast(&out, "bigint")
        }
        None => cast("NULL", "bigint"),
    }
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
    let mut select = SelectBuilder::new();
    let mut key = SelectBuilder::new();
    let (id, id_literals) = varchar(Some(&row.id));
    let mut at = String::new();
    literal::datetime(&mut at, row.runtime_timestamp);
    select.column(&id, "id", id_literals);
    select.column(&bigint(row.asset_rank), "asset_rank", 0);
    let (symbol, n) = varchar(row.symbol.as_ref());
    select.column(&symbol, "symbol", n);
    let (name, n) = varchar(row.asset_name.as_ref());
    select.column(&name, "asset_name", n);
    for (value, alias) in [
        (row.supply, "supply"),
        (row.max_supply, "maxSupply"),
        (row.market_cap_usd, "marketCapUsd"),
        (row.volume_usd_24_hr, "volumeUsd24Hr"),
        (row.price_usd, "priceUsd"),
        (row.change_percent_24_hr, "changePercent24Hr"),
        (row.vwap_24_hr, "vwap24Hr"),
    ] {
        select.column(&float(value), alias, 0);
    }
    let (explorer, n) = varchar(row.explorer.as_ref());
    select.column(&explorer, "explorer", n);
    select.column(&at, "runtime_timestamp", 1);
    key.column(&id, "id", id_literals);
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
    let mut select = SelectBuilder::new();
    let mut key = SelectBuilder::new();
    let at = &reject.coordinates;
    select.column(received_at, "received_at", 1);
    let (code, n) = text(Some(reject.reason.code()), "varchar(32)");
    select.column(&code, "reason_code", n);
    let (reason, n) = text(Some(&reject.reason.to_string()), "nvarchar(4000)");
    select.column(&reason, "reason", n);
    let (body, n) = text(Some(&reject.raw_body), "nvarchar(max)");
    select.column(&body, "raw_body", n);
    let (partition, partition_literals) = text(at.partition_id.as_deref(), "varchar(64)");
    select.column(&partition, "partition_id", partition_literals);
    let (offset, n) = text(at.offset.as_deref(), "varchar(64)");
    select.column(&offset, "event_offset", n);
    let sequence = bigint(at.sequence_number);
    select.column(&sequence, "sequence_number", 0);
    let enqueued = at
        .enqueued_time
        .map_or_else(|| cast("NULL", "datetime2(3)"), datetime2);
    select.column(
        &enqueued,
        "enqueued_time",
        usize::from(at.enqueued_time.is_some()),
    );
    key.column(&partition, "partition_id", partition_literals);
    key.column(&sequence, "sequence_number", 0);
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
