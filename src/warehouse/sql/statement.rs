//! Builds the SQL an invocation sends: one or more transactions (one SQL batch, one round trip
//! each), every one of them
//!
//! ```sql
//! SET XACT_ABORT ON;
//! IF @@TRANCOUNT > 0 ROLLBACK TRAN;
//! BEGIN TRAN;
//! UPDATE assets.asset_statistics_writer_lock SET last_write_at = CAST('...' AS datetime2(3));
//! -- per chunk of rows: the count of keys already stored, kept in the journal, then the insert
//! INSERT INTO assets.asset_statistics_writes (...) SELECT '<transaction id>', <part>, <rows>, COUNT_BIG(*), 0, 0, ...
//!   FROM (SELECT <key> UNION ALL ...) AS s WHERE EXISTS (<probe>);
//! INSERT INTO assets.asset_statistics_history_v3 (<columns>)
//! SELECT s.* FROM (SELECT <row> UNION ALL ...) AS s WHERE NOT EXISTS (<probe>);
//! -- per chunk of rejects: the same, keyed on the hub, partition, sequence number and enqueued time
//! INSERT INTO assets.asset_statistics_writes (...) SELECT ... FROM (SELECT <reject key> ...) AS s WHERE EXISTS (...);
//! INSERT INTO assets.asset_statistics_rejects (...) SELECT s.* FROM (...) AS s WHERE NOT EXISTS (...);
//! -- what the transaction counted, read back (see `journal`)
//! SELECT rows_existing, rejects_existing FROM assets.asset_statistics_writes WHERE transaction_id = '<transaction id>' ORDER BY part;
//! COMMIT TRAN;
//! ```
//!
//! Where the rows are staged by bulk load ([`Rows::Staged`]), the chunks of rows are replaced by
//! two statements that read all of them from the session's staging table (the journal's count,
//! then the insert, the database picking the first row of each key), and the transaction is
//! followed by `TRUNCATE TABLE` of that table (see [`super::stage`]); rejects stay as above.
//!
//! Pure: rows in, text out. One text serves every target, so it is written for the strictest, a
//! dedicated pool: it has no multi-row `VALUES`, no usable `MERGE` on this table, no `@@ROWCOUNT`,
//! and rejects tiberius' parameterised queries, hence literals and `UNION ALL`. The session starts
//! clean: a transaction some earlier batch left open is rolled back first ("Use transactions in
//! dedicated SQL pool" rolls back with `IF @@TRANCOUNT > 0` in the same way).
//!
//! **Exactly once under READ UNCOMMITTED.** A dedicated pool reads uncommitted rows by default, so
//! a `NOT EXISTS` probe alone would count another session's uncommitted (maybe doomed) rows as
//! stored, and two writers with overlapping keys would both insert. Every transaction therefore
//! first updates the one row of [`WRITER_LOCK_TABLE`]. The control node's table lock does not
//! serialize (PDW's "Locking behavior" page: `INSERT` and `UPDATE` both take SharedUpdate, which
//! do not conflict), but the row lives in one distribution, whose SQL Server engine X-locks it
//! (data changes lock even under READ UNCOMMITTED) until the distributed transaction commits; a
//! second writer's `UPDATE` waits there, exactly as on SQL Server. While a probe runs, no other
//! writer's transaction is open, and a resend after a lost connection waits until the dead
//! session's transaction has ended; its journal rows then say whether it committed, and what it
//! wrote. The cost: writers serialize. Batches of all partitions and instances commit one after
//! another, so throughput is one transaction at a time (on a SQL Server-compatible engine about
//! 26 ms per 1000-row batch with its rows staged by bulk load, 0.7 s as text); the Event Hubs
//! batch size, not the partition count, is the lever.

use chrono::{DateTime, Utc};

pub use super::body::{BodyForm, escaped_body, stored_body};
use super::chunk::{
    CHUNK_LITERALS, CHUNK_OVERHEAD, Frame, TRAILER, history_statements, item_bytes,
    reject_statements,
};
use super::journal;
pub use super::keys::{IdType, KeyTypes};
use super::literal;
use super::select::{Rendered, datetime2, render_reject, render_row};
pub use super::stage::StageTable;
use super::stage::{EMPTY_STAGE, staged_statements};
pub use super::transaction::{
    BATCH_LIMITS, BatchSql, Duplicates, Form, HISTORY_TABLE, Limits, REJECTS_TABLE, Rows,
    WRITER_LOCK_TABLE, WRITES_TABLE,
};
use crate::domain::{AssetRow, Reject, WarehouseTime};

/// The transactions for one invocation's rows and rejects: as few as the limits allow (one for
/// any ordinary batch), each a whole, idempotent transaction starting with the writer lock, each
/// at most `limits.max_batch_bytes` on the wire, in `form`. No rows and no rejects: no
/// transaction.
pub fn build_batches(
    rows: &[AssetRow],
    rejects: &[Reject],
    received_at: DateTime<Utc>,
    keys: &KeyTypes,
    limits: &Limits,
    form: Form<'_>,
) -> Vec<BatchSql> {
    if rows.is_empty() && rejects.is_empty() {
        return Vec::new();
    }
    let received_at = datetime2(received_at);
    let frame = Frame {
        received_at: &received_at,
        keys,
        form,
    };
    let mut transactions = Transactions::new(&received_at, limits);
    let bound = |earliest: Option<WarehouseTime>| {
        let mut out = String::new();
        match earliest {
            Some(at) => literal::time(&mut out, at, keys.time_cast()),
            None => out.push_str("NULL"),
        }
        out
    };
    match form.rows {
        Rows::Staged(table) if !rows.is_empty() => {
            // Rows come first: the open transaction is the first, and empty.
            let earliest = rows.iter().map(|row| row.runtime_timestamp).min();
            let tx = &mut transactions.open;
            staged_statements(tx, table, rows.len(), &bound(earliest), &received_at);
            tx.staged = true;
            tx.row_chunks += 1;
            tx.rows.end += rows.len();
            transactions.chunks += 1;
        }
        _ => {
            let ordered = form.duplicates == Duplicates::PickedByTheDatabase;
            add_chunks(
                &mut transactions,
                rows.iter()
                    .enumerate()
                    .map(|(at, row)| render_row(row, keys, ordered.then_some(at))),
                |tx, chunk, earliest| {
                    history_statements(tx, chunk, &bound(earliest), &frame);
                    tx.row_chunks += 1;
                    tx.rows.end += chunk.len();
                },
            );
        }
    }
    add_chunks(
        &mut transactions,
        rejects
            .iter()
            .map(|reject| render_reject(reject, &received_at, limits.max_body_units, form.bodies)),
        |tx, chunk, _| {
            reject_statements(tx, chunk, &frame);
            tx.reject_chunks += 1;
            tx.rejects.end += chunk.len();
        },
    );
    transactions.finish()
}

/// The transactions built so far and the open one.
struct Transactions<'a> {
    header: String,
    limits: &'a Limits,
    done: Vec<BatchSql>,
    open: BatchSql,
    chunks: usize,
}

impl<'a> Transactions<'a> {
    fn new(received_at: &str, limits: &'a Limits) -> Self {
        let header = format!(
            "SET XACT_ABORT ON;\nIF @@TRANCOUNT > 0 ROLLBACK TRAN;\nBEGIN TRAN;\nUPDATE {WRITER_LOCK_TABLE} SET last_write_at = {received_at};\n"
        );
        let open = Self::start(&header, 0, 0);
        Self {
            header,
            limits,
            done: Vec::new(),
            open,
            chunks: 0,
        }
    }

    /// A new transaction with a new id, its rows and rejects starting at these indexes.
    fn start(header: &str, row: usize, reject: usize) -> BatchSql {
        BatchSql {
            id: journal::new_transaction_id(),
            sql: header.to_owned(),
            locked_at: header.len(),
            id_at: Vec::new(),
            row_chunks: 0,
            reject_chunks: 0,
            rows: row..row,
            rejects: reject..reject,
            staged: false,
        }
    }

    /// Whether the open transaction can take `bytes` more (UTF-8) and still close within the
    /// batch limit. A character takes at most two UTF-16 bytes per UTF-8 byte, so twice the
    /// UTF-8 length bounds the size on the wire without counting.
    fn fits(&self, bytes: usize) -> bool {
        2 * (self.open.sql.len() + bytes + TRAILER) <= self.limits.max_batch_bytes
    }

    /// Closes the open transaction when it holds a chunk and cannot take `bytes` more.
    fn make_room(&mut self, bytes: usize) {
        if self.chunks > 0 && !self.fits(bytes) {
            self.close();
        }
    }

    fn close(&mut self) {
        let next = Self::start(&self.header, self.open.rows.end, self.open.rejects.end);
        let mut closed = std::mem::replace(&mut self.open, next);
        journal::counts(&mut closed);
        closed.sql.push_str("COMMIT TRAN;\n");
        if closed.staged {
            closed.sql.push_str(EMPTY_STAGE);
        }
        self.done.push(closed);
        self.chunks = 0;
    }

    fn finish(mut self) -> Vec<BatchSql> {
        if self.chunks > 0 {
            self.close();
        }
        self.done
    }
}

/// Splits rendered selects into chunks inside the statement limits, and chunks into
/// transactions inside the batch limit, and writes each chunk's statements. A chunk holds at
/// least one item and a transaction at least one chunk, whatever the limits. The selects are
/// rendered first, all of them, and chunks are ranges of them (no select is moved).
fn add_chunks(
    transactions: &mut Transactions<'_>,
    rendered: impl Iterator<Item = Rendered>,
    mut write: impl FnMut(&mut BatchSql, &[Rendered], Option<WarehouseTime>),
) {
    let rendered: Vec<Rendered> = rendered.collect();
    let limits = transactions.limits;
    let mut start = 0;
    let (mut literals, mut bytes) = (0, 0);
    let mut earliest: Option<WarehouseTime> = None;
    let mut flush = |transactions: &mut Transactions<'_>,
                     chunk: &[Rendered],
                     earliest: Option<WarehouseTime>,
                     bytes: usize| {
        transactions.make_room(CHUNK_OVERHEAD + bytes);
        let before = transactions.open.sql.len();
        write(&mut transactions.open, chunk, earliest);
        debug_assert!(transactions.open.sql.len() - before <= CHUNK_OVERHEAD + bytes);
        transactions.chunks += 1;
    };
    for (at, item) in rendered.iter().enumerate() {
        let item_bytes = item_bytes(item);
        if at > start {
            // Each select appears twice (count and insert); the frame's literals once per statement.
            let full = at - start == limits.max_rows
                || literals + item.literals + CHUNK_LITERALS > limits.max_string_literals
                || bytes + item_bytes > limits.max_statement_bytes
                || !transactions.fits(CHUNK_OVERHEAD + bytes + item_bytes);
            if full {
                flush(transactions, &rendered[start..at], earliest, bytes);
                (start, literals, bytes, earliest) = (at, 0, 0, None);
            }
        }
        if at == start {
            // A new chunk starts: in a new transaction when the open one cannot take it.
            transactions.make_room(CHUNK_OVERHEAD + item_bytes);
        }
        literals += item.literals;
        bytes += item_bytes;
        earliest = match (earliest, item.at) {
            (Some(e), Some(a)) => Some(e.min(a)),
            (e, a) => e.or(a),
        };
    }
    if start < rendered.len() {
        flush(transactions, &rendered[start..], earliest, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventCoordinates, map_events};
    use crate::warehouse::sql::keys::{Collation, TimeType};
    use sha2::{Digest, Sha256};
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
                namespace: Some("ns.servicebus.windows.net".into()),
                event_hub: Some("coincaphub".into()),
                partition_id: Some("3".into()),
                offset: Some("4294967400".into()),
                sequence_number: Some(sequence),
                enqueued_time: Some(now()),
            },
        )]);
        batch.rejects.remove(0)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-05-01T12:00:00.5Z")
            .unwrap()
            .to_utc()
    }

    /// The transactions of `rows` alone, for a table whose key compares as `keys` says.
    fn build_keyed(rows: &[AssetRow], keys: &KeyTypes) -> Vec<BatchSql> {
        build_batches(rows, &[], now(), keys, &BATCH_LIMITS, Form::default())
    }

    /// The one transaction of a batch that fits in one.
    fn build_one(rows: &[AssetRow], rejects: &[Reject], limits: &Limits) -> BatchSql {
        let mut batches = build_batches(
            rows,
            rejects,
            now(),
            &KeyTypes::default(),
            limits,
            Form::default(),
        );
        assert_eq!(batches.len(), 1, "one transaction");
        batches.remove(0)
    }

    fn statements(sql: &str) -> Vec<Statement> {
        Parser::parse_sql(&MsSqlDialect {}, sql).unwrap_or_else(|e| panic!("{e}\n{sql}"))
    }

    /// The kinds of statement a batch holds, in order: `journal` for a count kept in the writes
    /// journal, `insert` for an insert of rows or rejects, `counts` for the answer read back.
    fn shape(sql: &str) -> Vec<&'static str> {
        statements(sql)
            .iter()
            .map(|s| match s {
                Statement::Set(_) => "set",
                Statement::If(_) => {
                    assert!(s.to_string().contains("@@TRANCOUNT > 0"), "{s}");
                    "clean"
                }
                Statement::StartTransaction { .. } => "begin",
                Statement::Update(update) => {
                    assert_eq!(update.table.to_string(), WRITER_LOCK_TABLE);
                    "lock"
                }
                Statement::Commit { .. } => "commit",
                Statement::Query(query) => {
                    assert!(query.to_string().contains(WRITES_TABLE), "{query}");
                    "counts"
                }
                Statement::Insert(insert) if insert.table.to_string() == WRITES_TABLE => "journal",
                Statement::Insert(_) => "insert",
                Statement::Truncate(truncate) => {
                    assert_eq!(truncate.table_names[0].name.to_string(), STAGE);
                    "empty"
                }
                other => panic!("unexpected statement {other}"),
            })
            .collect()
    }

    /// A whole transaction: a clean session, the lock first, then journal rows and inserts, then
    /// the answer and the commit.
    fn assert_whole_transaction(sql: &str) {
        let shape = shape(sql);
        assert_eq!(shape[..4], ["set", "clean", "begin", "lock"], "{sql}");
        assert_eq!(shape[shape.len() - 2..], ["counts", "commit"]);
        assert!(
            shape[4..shape.len() - 2]
                .iter()
                .all(|s| *s == "journal" || *s == "insert")
        );
        assert!(shape.contains(&"insert"), "writes something");
    }

    #[test]
    fn a_batch_is_one_transaction_that_takes_the_writer_lock_before_any_probe() {
        let batch = build_one(&rows(3, "a"), &[reject("not json", 7)], &BATCH_LIMITS);
        assert_eq!(
            shape(&batch.sql),
            [
                "set", "clean", "begin", "lock", "journal", "insert", "journal", "insert",
                "counts", "commit"
            ]
        );
        let id = &batch.id;
        assert!(
            batch.sql.starts_with(&format!(
                "SET XACT_ABORT ON;\nIF @@TRANCOUNT > 0 ROLLBACK TRAN;\nBEGIN TRAN;\nUPDATE assets.asset_statistics_writer_lock SET last_write_at = CAST('2026-05-01T12:00:00.500' AS datetime2(3));\nINSERT INTO assets.asset_statistics_writes (transaction_id, part, rows_sent, rows_existing, rejects_sent, rejects_existing, written_at)\nSELECT '{id}', 0, 3, COUNT_BIG(*), 0, 0, CAST('2026-05-01T12:00:00.500' AS datetime2(3)) FROM (\nSELECT CAST(N'a0' AS nvarchar(255)) AS id"
            )),
            "{}",
            batch.sql
        );
        assert!(
            batch.sql.contains(&format!(
                "SELECT '{id}', 1, 0, 0, 1, COUNT_BIG(*), CAST('2026-05-01T12:00:00.500' AS datetime2(3)) FROM (\nSELECT CAST(N'3' AS varchar(64)) AS partition_id"
            )),
            "{}",
            batch.sql
        );
        assert!(
            batch.sql.ends_with(&format!(
                "SELECT rows_existing, rejects_existing FROM assets.asset_statistics_writes WHERE transaction_id = '{id}' ORDER BY part;\nCOMMIT TRAN;\n"
            )),
            "{}",
            batch.sql
        );
        assert_eq!(
            (
                batch.row_chunks,
                batch.reject_chunks,
                batch.rows,
                batch.rejects
            ),
            (1, 1, 0..3, 0..1)
        );
    }

    #[test]
    fn picked_by_the_database_the_insert_keeps_one_row_per_key_and_counts_the_rest_after() {
        let form = Form {
            duplicates: Duplicates::PickedByTheDatabase,
            ..Form::default()
        };
        let keys = KeyTypes {
            collation: Collation::from_name("SQL_Latin1_General_CP1_CI_AS").unwrap(),
            ..KeyTypes::default()
        };
        let mut batches = build_batches(
            &rows(3, "a"),
            &[reject("not json", 7)],
            now(),
            &keys,
            &BATCH_LIMITS,
            form,
        );
        let batch = batches.remove(0);
        assert_eq!(
            shape(&batch.sql),
            [
                "set", "clean", "begin", "lock", "insert", "journal", "journal", "insert",
                "counts", "commit"
            ]
        );
        assert_eq!(batch.row_chunks, 1, "one journal row per chunk, as always");
        assert!(
            batch.sql.contains("INSERT INTO assets.asset_statistics_history_v3 (id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, runtime_timestamp)\nSELECT s.id, s.asset_rank, s.symbol, s.asset_name, s.supply, s.maxSupply, s.marketCapUsd, s.volumeUsd24Hr, s.priceUsd, s.changePercent24Hr, s.vwap24Hr, s.explorer, s.runtime_timestamp FROM (\nSELECT s.*, ROW_NUMBER() OVER (PARTITION BY s.id COLLATE SQL_Latin1_General_CP1_CI_AS, s.runtime_timestamp ORDER BY s.ordinal) AS picked FROM (\nSELECT CAST(N'a0'"),
            "{}",
            batch.sql
        );
        assert!(
            batch
                .sql
                .contains("CAST(0 AS bigint) AS ordinal\nUNION ALL ")
                && batch.sql.contains(", CAST(2 AS bigint)\n) AS s"),
            "each row's place in the batch orders it: {}",
            batch.sql
        );
        assert!(
            batch.sql.contains(&format!("AND t.runtime_timestamp >= CAST('2025-05-11T21:46:40.000' AS datetime))\n) AS s\nWHERE s.picked = 1;\nINSERT INTO assets.asset_statistics_writes (transaction_id, part, rows_sent, rows_existing, rejects_sent, rejects_existing, written_at) VALUES ('{}', 0, 3, 3 - @@ROWCOUNT, 0, 0, CAST('2026-05-01T12:00:00.500' AS datetime2(3)));\n", batch.id)),
            "{}",
            batch.sql
        );
    }

    #[test]
    fn an_empty_batch_sends_nothing() {
        assert!(
            build_batches(
                &[],
                &[],
                now(),
                &KeyTypes::default(),
                &BATCH_LIMITS,
                Form::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn rejects_alone_take_the_lock_too() {
        let batch = build_one(&[], &[reject("x", 1)], &BATCH_LIMITS);
        assert_eq!(
            shape(&batch.sql),
            [
                "set", "clean", "begin", "lock", "journal", "insert", "counts", "commit"
            ]
        );
        assert_eq!((batch.row_chunks, batch.reject_chunks), (0, 1));
    }

    #[test]
    fn every_column_is_cast_to_its_type_and_null_stays_null() {
        let batch = build_one(&rows(1, "x"), &[], &BATCH_LIMITS);
        let sql = &batch.sql;
        assert!(
            sql.contains(
                "INSERT INTO assets.asset_statistics_history_v3 (id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, runtime_timestamp)"
            ),
            "{sql}"
        );
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
    fn key_literals_take_the_id_column_s_type_from_the_catalog() {
        let seed = IdType::from_catalog("varchar", 255).unwrap();
        assert_eq!(seed.as_str(), "varchar(255)");
        let ours = IdType::from_catalog("nvarchar", 510).unwrap();
        assert_eq!(ours, IdType::default());
        for (id_type, other) in [(&seed, "nvarchar(255)"), (&ours, "varchar(255)")] {
            let keys = KeyTypes {
                id: id_type.clone(),
                ..KeyTypes::default()
            };
            let batches = build_keyed(&rows(2, "münchen-币"), &keys);
            let sql = &batches[0].sql;
            let id = format!("CAST(N'münchen-币0' AS {}) AS id", id_type.as_str());
            // Aliased once in the count's keys and once in the insert's rows.
            assert_eq!(sql.matches(&id).count(), 2, "{sql}");
            assert_eq!(
                sql.matches(&format!("CAST(N'münchen-币1' AS {})", id_type.as_str()))
                    .count(),
                2,
                "{sql}"
            );
            assert!(!sql.contains(&format!("AS {other}) AS id")), "{sql}");
            // The other text columns keep the row's own type.
            assert!(
                sql.contains("CAST(N'S' AS nvarchar(255)) AS symbol"),
                "{sql}"
            );
        }
    }

    #[test]
    fn timestamps_take_the_time_column_s_type_from_the_catalog() {
        let keys = KeyTypes {
            time: TimeType::DateTime2(3),
            ..KeyTypes::default()
        };
        let batches = build_keyed(&rows(2, "a"), &keys);
        let sql = &batches[0].sql;
        assert!(
            sql.contains("CAST('2025-05-11T21:46:40.001' AS datetime2(3))\n")
                && sql.contains(
                    "CAST('2025-05-11T21:46:40.000' AS datetime2(3)) AS runtime_timestamp"
                ),
            "{sql}"
        );
        assert!(
            sql.contains(
                "AND t.runtime_timestamp >= CAST('2025-05-11T21:46:40.000' AS datetime2(3))"
            ),
            "the probe's bound too: {sql}"
        );
        assert!(!sql.contains("AS datetime)"), "{sql}");
    }

    #[test]
    fn rejects_are_counted_and_matched_on_their_whole_key_and_never_when_a_part_is_missing() {
        let batch = build_one(&[], &[reject("x", 1)], &BATCH_LIMITS);
        assert!(
            batch.sql.contains("WHERE EXISTS (SELECT 1 FROM assets.asset_statistics_rejects AS t WHERE t.partition_id = s.partition_id AND t.sequence_number = s.sequence_number AND t.enqueued_time = s.enqueued_time AND t.event_hub_namespace = s.event_hub_namespace AND t.event_hub_name = s.event_hub_name)"),
            "{}",
            batch.sql
        );
        assert!(
            batch.sql.contains("CAST(N'ns.servicebus.windows.net' AS varchar(256)) AS event_hub_namespace, CAST(N'coincaphub' AS varchar(256)) AS event_hub_name"),
            "{}",
            batch.sql
        );
        assert!(
            !batch.sql.contains(" IS NULL"),
            "NULL is never taken for NULL"
        );
    }

    #[test]
    fn a_resend_is_the_same_transaction_under_a_new_id_looking_up_the_lost_one_first() {
        let batch = build_one(&rows(2, "a"), &[reject("x", 1)], &BATCH_LIMITS);
        assert_eq!(batch.text(&batch.id, &[]), batch.sql, "as built");
        let lost = batch.id.clone();
        let id = "0123456789abcdef0123456789abcdef";
        let again = batch.text(id, std::slice::from_ref(&lost));
        assert!(!again.contains(&lost[..]) || again.matches(&lost[..]).count() == 1);
        assert_eq!(
            again.matches(id).count(),
            batch.parts() + 1,
            "each journal row and the answer"
        );
        let lock_end = batch.sql.find("datetime2(3));\n").unwrap() + "datetime2(3));\n".len();
        assert!(
            again[lock_end..].starts_with(&format!(
                "SELECT COUNT_BIG(*) AS parts, CAST(COALESCE(SUM(rows_sent - rows_existing), 0) AS bigint) AS rows_written, CAST(COALESCE(SUM(rejects_sent - rejects_existing), 0) AS bigint) AS rejects_written FROM assets.asset_statistics_writes WHERE transaction_id IN ('{lost}');\n"
            )),
            "the lookup right after the lock: {again}"
        );
        assert_eq!(
            again.replace(id, &lost).replacen(
                &again[lock_end..again[lock_end..].find(";\n").unwrap() + lock_end + 2],
                "",
                1
            ),
            batch.sql
        );
    }

    #[test]
    fn the_probe_is_bounded_by_the_earliest_timestamp_of_the_chunk() {
        let batch = build_one(&rows(3, "a"), &[], &BATCH_LIMITS);
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
            ..BATCH_LIMITS
        };
        let batch = build_one(&rows(5, "a"), &[], &limits);
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
            ..BATCH_LIMITS
        };
        let batch = build_one(&rows(7, "a"), &[], &limits);
        assert_eq!(
            batch.row_chunks, 4,
            "2 rows (12 literals, the bound, the id and the time) per statement"
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
            ..BATCH_LIMITS
        };
        let batch = build_one(&rows(3, "a"), &[], &limits);
        assert_eq!(batch.row_chunks, 3);
    }

    #[test]
    fn a_thousand_rows_fit_one_statement_and_one_more_starts_another() {
        assert_eq!(
            build_one(&rows(1000, "a"), &[], &BATCH_LIMITS).row_chunks,
            1
        );
        assert_eq!(
            build_one(&rows(1001, "a"), &[], &BATCH_LIMITS).row_chunks,
            2
        );
    }

    /// UTF-16 bytes on the wire.
    fn wire_bytes(sql: &str) -> usize {
        2 * sql.encode_utf16().count()
    }

    #[test]
    fn a_batch_over_the_size_cap_splits_into_whole_transactions_under_the_cap() {
        let rows = rows(40, "a");
        let rejects: Vec<Reject> = (0..6)
            .map(|i| reject(&format!("{}\0 body {i}", "x".repeat(3000)), i))
            .collect();
        let whole = build_one(&rows, &rejects, &BATCH_LIMITS);
        let limits = Limits {
            max_batch_bytes: wire_bytes(&whole.sql) / 4,
            ..BATCH_LIMITS
        };
        let parts = build_batches(
            &rows,
            &rejects,
            now(),
            &KeyTypes::default(),
            &limits,
            Form::default(),
        );
        assert!(parts.len() >= 4, "{} parts", parts.len());
        for part in &parts {
            assert!(wire_bytes(&part.sql) <= limits.max_batch_bytes);
            assert_whole_transaction(&part.sql);
            let journal = shape(&part.sql).iter().filter(|s| **s == "journal").count();
            assert_eq!(journal, part.parts(), "one journal row per chunk");
        }
        // Every row and reject lands in exactly one part, in order.
        assert_eq!(parts.iter().map(|p| p.rows.len()).sum::<usize>(), 40);
        assert_eq!(parts.iter().map(|p| p.rejects.len()).sum::<usize>(), 6);
        let all: String = parts.iter().map(|p| p.sql.as_str()).collect();
        for i in 0..40 {
            assert_eq!(
                all.matches(&format!("N'a{i}'")).count(),
                2,
                "a{i}: key and row"
            );
        }
        for i in 0..6 {
            let aliased = format!("CAST({i} AS bigint) AS sequence_number");
            let bare = format!("CAST({i} AS bigint), CAST('");
            assert_eq!(
                all.matches(&aliased).count() + all.matches(&bare).count(),
                2,
                "reject {i}: key and reject"
            );
        }
    }

    #[test]
    fn a_row_bigger_than_the_cap_still_goes_alone_in_its_own_transaction() {
        let limits = Limits {
            max_batch_bytes: 1,
            ..BATCH_LIMITS
        };
        let parts = build_batches(
            &rows(3, "a"),
            &[reject("x", 1)],
            now(),
            &KeyTypes::default(),
            &limits,
            Form::default(),
        );
        assert_eq!(parts.len(), 4);
        for part in &parts {
            assert_whole_transaction(&part.sql);
        }
    }

    #[test]
    fn a_body_over_the_cap_is_stored_truncated_with_its_length_and_sha256() {
        let body = format!("{}é😀{}", "a".repeat(9), "b".repeat(100));
        let limits = Limits {
            max_body_units: 11,
            ..BATCH_LIMITS
        };
        let batch = build_one(&[], &[reject(&body, 9)], &limits);
        // 9 + 'é' (1 unit) fit; the emoji (2 units) would pass 11: cut before it.
        let kept = format!("{}é", "a".repeat(9));
        assert!(
            batch
                .sql
                .contains(&format!("CAST(N'{kept}' AS nvarchar(max)) AS raw_body")),
            "{}",
            batch.sql
        );
        let total = body.encode_utf16().count();
        assert_eq!(total, 112);
        let digest: String = Sha256::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let note = format!(
            "[raw_body truncated: its first 10 of {total} UTF-16 code units are stored; SHA-256 of the whole body (UTF-8): {digest}]"
        );
        assert!(batch.sql.contains(&note), "{}", batch.sql);
        assert!(
            batch
                .sql
                .contains("CAST(N'not_json' AS varchar(32)) AS reason_code"),
            "the code stays"
        );
        assert!(batch.sql.contains("AS nvarchar(4000)) AS reason"));
    }

    #[test]
    fn rejects_keep_body_reason_and_coordinates() {
        let batch = build_one(&[], &[reject("it's \0 bad", 101)], &BATCH_LIMITS);
        let sql = &batch.sql;
        assert!(
            sql.contains("CAST(CAST(0x6900740027007300200000002000620061006400 AS nvarchar(max)) AS nvarchar(max)) AS raw_body"),
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
        assert!(sql.contains(
            "WHERE NOT EXISTS (SELECT 1 FROM assets.asset_statistics_rejects AS t WHERE t.partition_id = s.partition_id AND t.sequence_number = s.sequence_number AND t.enqueued_time = s.enqueued_time AND t.event_hub_namespace = s.event_hub_namespace AND t.event_hub_name = s.event_hub_name)"
        ), "{sql}");
        assert!(!sql.contains("ISNULL"), "no sentinel");
    }

    #[test]
    fn a_reject_without_coordinates_has_null_keys() {
        let mut without = reject("x", 1);
        without.coordinates = EventCoordinates::default();
        let batch = build_one(&[], &[without], &BATCH_LIMITS);
        assert!(
            batch
                .sql
                .contains("CAST(NULL AS varchar(64)) AS partition_id")
        );
        assert!(
            batch
                .sql
                .contains("CAST(NULL AS bigint) AS sequence_number")
        );
    }

    #[test]
    fn hostile_text_stays_inside_its_literal() {
        let hostile = rows(1, "x'); DROP TABLE assets.asset_statistics_history_v3; --");
        let batch = build_one(
            &hostile,
            &[reject("'; DELETE FROM x; --", 1)],
            &BATCH_LIMITS,
        );
        assert_eq!(
            shape(&batch.sql),
            [
                "set", "clean", "begin", "lock", "journal", "insert", "journal", "insert",
                "counts", "commit"
            ]
        );
    }

    const STAGE: &str = "#asset_statistics_stage";

    #[test]
    fn staged_rows_are_two_statements_and_the_staging_table_is_emptied_after_the_commit() {
        let table = StageTable::new(&KeyTypes::default(), false);
        let form = Form {
            rows: Rows::Staged(&table),
            ..Form::default()
        };
        let rows = rows(3000, "a");
        let batches = build_batches(
            &rows,
            &[reject("x", 1)],
            now(),
            &KeyTypes::default(),
            &BATCH_LIMITS,
            form,
        );
        assert_eq!(batches.len(), 1, "3000 rows: still one transaction");
        let batch = &batches[0];
        assert_eq!(
            shape(&batch.sql),
            [
                "set", "clean", "begin", "lock", "journal", "insert", "journal", "insert",
                "counts", "commit", "empty"
            ]
        );
        assert!(batch.staged);
        assert_eq!((batch.rows.clone(), batch.row_chunks), (0..3000, 1));
        assert!(!batch.sql.contains("N'a0'"), "no row as text");
        assert!(batch.sql.contains(&format!("FROM {STAGE} AS s")));
        assert!(
            batch
                .sql
                .contains("t.runtime_timestamp >= CAST('2025-05-11T21:46:40.000' AS datetime));\n"),
            "the probe bounded by the earliest row: {}",
            batch.sql
        );
        assert!(
            batch
                .sql
                .ends_with("COMMIT TRAN;\nTRUNCATE TABLE #asset_statistics_stage;\n")
        );
        let resend = batch.text("0123456789abcdef0123456789abcdef", &["ab".into()]);
        assert!(resend.ends_with("TRUNCATE TABLE #asset_statistics_stage;\n"));
    }

    #[test]
    fn a_staged_batch_over_the_cap_stages_its_rows_in_the_first_transaction_only() {
        let table = StageTable::new(&KeyTypes::default(), false);
        let form = Form {
            rows: Rows::Staged(&table),
            ..Form::default()
        };
        let rejects: Vec<Reject> = (0..6)
            .map(|i| reject(&format!("{} body {i}", "x".repeat(3000)), i))
            .collect();
        let limits = Limits {
            max_batch_bytes: 20_000,
            ..BATCH_LIMITS
        };
        let parts = build_batches(
            &rows(40, "a"),
            &rejects,
            now(),
            &KeyTypes::default(),
            &limits,
            form,
        );
        assert!(parts.len() >= 3, "{} parts", parts.len());
        assert!(parts[0].staged && parts[0].rows == (0..40));
        for part in &parts[1..] {
            assert!(!part.staged && part.rows.is_empty(), "rejects only");
            assert!(!part.sql.contains(STAGE));
            assert_whole_transaction(&part.sql);
        }
        assert_eq!(parts.iter().map(|p| p.rejects.len()).sum::<usize>(), 6);
        let none = build_batches(
            &[],
            &rejects[..1],
            now(),
            &KeyTypes::default(),
            &BATCH_LIMITS,
            form,
        );
        assert!(!none[0].staged, "no rows, nothing staged");
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
            let limits = Limits { max_rows, ..BATCH_LIMITS };
            let batches = build_batches(&mapped.rows, &rejects, now(), &KeyTypes::default(), &limits, Form::default());
            if mapped.rows.is_empty() && rejects.is_empty() {
                proptest::prop_assert!(batches.is_empty());
                return Ok(());
            }
            proptest::prop_assert_eq!(batches.len(), 1);
            let batch = &batches[0];
            let mut expected = vec!["set", "clean", "begin", "lock"];
            for _ in 0..batch.parts() {
                expected.extend(["journal", "insert"]);
            }
            expected.extend(["counts", "commit"]);
            proptest::prop_assert_eq!(batch.reject_chunks, rejects.len().div_ceil(max_rows));
            proptest::prop_assert_eq!(shape(&batch.sql), expected);
            proptest::prop_assert_eq!(batch.row_chunks, mapped.rows.len().div_ceil(max_rows));
        }

        #[test]
        fn any_split_keeps_every_part_a_whole_transaction_under_the_cap(
            rows_n in 0usize..30,
            bodies in proptest::collection::vec("[a\0']{0,400}", 0..5),
            cap in 2_000usize..40_000,
        ) {
            let rows = rows(rows_n, "p");
            let rejects: Vec<Reject> = bodies.iter().enumerate().map(|(i, b)| reject(&format!("x{b}"), i as i64)).collect();
            let limits = Limits { max_batch_bytes: cap, max_rows: 7, ..BATCH_LIMITS };
            let parts = build_batches(&rows, &rejects, now(), &KeyTypes::default(), &limits, Form::default());
            proptest::prop_assert_eq!(parts.iter().map(|p| p.rows.len()).sum::<usize>(), rows_n);
            proptest::prop_assert_eq!(parts.iter().map(|p| p.rejects.len()).sum::<usize>(), rejects.len());
            for part in &parts {
                assert_whole_transaction(&part.sql);
                // Over the cap only when a single row or reject is bigger than it.
                if part.rows.len() + part.rejects.len() > 1 {
                    proptest::prop_assert!(wire_bytes(&part.sql) <= cap);
                }
            }
        }
    }
}
