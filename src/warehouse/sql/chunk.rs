//! The statements of one chunk of rows or rejects: the count of keys already stored (kept in the
//! journal), then the idempotent insert; or, when the database picks one row per key, the insert
//! and then what it did not insert. Pure; [`super::statement`] puts chunks into transactions.

use std::sync::LazyLock;

use super::journal;
use super::keys::KeyTypes;
use super::select::{ORDINAL, REJECT_ALIASES, REJECT_KEY_ALIASES, Rendered, Select};
use super::transaction::{BatchSql, Duplicates, Form, HISTORY_TABLE, REJECTS_TABLE};
use crate::warehouse::columns;

/// `received_at, reason_code, ...`: the rejects table's columns as a reject's `SELECT` holds them.
static REJECT_COLUMNS: LazyLock<String> = LazyLock::new(|| REJECT_ALIASES.join(", "));

pub(super) const UNION_ALL: &str = "\nUNION ALL ";

/// An upper bound of what an item adds to its chunk's statements.
pub(super) fn item_bytes(item: &Rendered) -> usize {
    item.select.aliased_len() + item.key.aliased_len() + 2 * UNION_ALL.len()
}
/// An upper bound of the transaction's closing statements: the counts read back, the commit.
pub(super) const TRAILER: usize = 256;
/// An upper bound of a chunk's text besides its selects: statement frames, column list, probes.
pub(super) const CHUNK_OVERHEAD: usize = 2048;
/// String literals of a chunk's statements besides its items': the bound, the id, the time.
pub(super) const CHUNK_LITERALS: usize = 3;

/// What a transaction writes besides its selects: when it was received, in which form, how the
/// history table compares keys.
pub(super) struct Frame<'a> {
    pub(super) received_at: &'a str,
    pub(super) keys: &'a KeyTypes,
    pub(super) form: Form<'a>,
}

/// Writes the selects of a chunk joined by `UNION ALL` (the first one with column aliases).
fn union(sql: &mut String, chunk: &[Rendered], select: impl Fn(&Rendered) -> &Select) {
    for (i, item) in chunk.iter().enumerate() {
        if i == 0 {
            select(item).write_aliased(sql);
        } else {
            sql.push_str(UNION_ALL);
            sql.push_str(select(item).bare());
        }
    }
}

/// The idempotent insert of one chunk. `probe` is the `SELECT 1 FROM <table> AS t WHERE ...`
/// that finds a stored row `t` for a chunk row `s`.
fn insert(sql: &mut String, chunk: &[Rendered], table: &str, columns: &str, probe: &str) {
    sql.push_str("INSERT INTO ");
    sql.push_str(table);
    sql.push_str(" (");
    sql.push_str(columns);
    sql.push_str(")\nSELECT s.* FROM (\n");
    union(sql, chunk, |r| &r.select);
    sql.push_str("\n) AS s\nWHERE NOT EXISTS (");
    sql.push_str(probe);
    sql.push_str(");\n");
}

/// Keeps in the journal how many of a chunk's keys are already stored, before the insert.
fn count_existing(
    tx: &mut BatchSql,
    chunk: &[Rendered],
    probe: &str,
    frame: &Frame<'_>,
    rejects: bool,
) {
    let part = tx.parts();
    journal::insert_head(tx);
    let (rows_sent, rejects_sent) = match rejects {
        false => (chunk.len(), 0),
        true => (0, chunk.len()),
    };
    let existing = "COUNT_BIG(*)";
    let (rows_existing, rejects_existing) = match rejects {
        false => (existing, "0"),
        true => ("0", existing),
    };
    tx.sql.push_str(&format!(
        ", {part}, {rows_sent}, {rows_existing}, {rejects_sent}, {rejects_existing}, {} FROM (\n",
        frame.received_at
    ));
    union(&mut tx.sql, chunk, |r| &r.key);
    tx.sql.push_str("\n) AS s\nWHERE EXISTS (");
    tx.sql.push_str(probe);
    tx.sql.push_str(");\n");
}

/// The count of keys already stored, then the idempotent insert, for one chunk of rows; or, when
/// the database picks one row per key, the insert and then the count of rows it did not insert.
pub(super) fn history_statements(
    tx: &mut BatchSql,
    chunk: &[Rendered],
    bound: &str,
    frame: &Frame<'_>,
) {
    let probe = format!(
        "SELECT 1 FROM {HISTORY_TABLE} AS t WHERE t.id = s.id AND t.runtime_timestamp = s.runtime_timestamp AND t.runtime_timestamp >= {bound}"
    );
    let bytes: usize = chunk.iter().map(item_bytes).sum();
    tx.sql.reserve(bytes + 2 * probe.len() + 1024);
    match frame.form.duplicates {
        Duplicates::Probed => {
            count_existing(tx, chunk, &probe, frame, false);
            insert(
                &mut tx.sql,
                chunk,
                HISTORY_TABLE,
                &HISTORY_COLUMN_LIST,
                &probe,
            );
        }
        Duplicates::PickedByTheDatabase => {
            let collate = frame.keys.collation.clause();
            let sql = &mut tx.sql;
            sql.push_str("INSERT INTO ");
            sql.push_str(HISTORY_TABLE);
            sql.push_str(" (");
            sql.push_str(&HISTORY_COLUMN_LIST);
            sql.push_str(")\nSELECT ");
            sql.push_str(&PICKED_COLUMN_LIST);
            sql.push_str(&format!(" FROM (\nSELECT s.*, ROW_NUMBER() OVER (PARTITION BY s.id{collate}, s.runtime_timestamp ORDER BY s.{ORDINAL}) AS picked FROM (\n"));
            union(sql, chunk, |r| &r.select);
            sql.push_str("\n) AS s\nWHERE NOT EXISTS (");
            sql.push_str(&probe);
            sql.push_str(")\n) AS s\nWHERE s.picked = 1;\n");
            let part = tx.parts();
            journal::not_inserted(tx, part, chunk.len(), frame.received_at);
        }
    }
}

/// `s.id, s.asset_rank, ..., s.runtime_timestamp`.
static PICKED_COLUMN_LIST: LazyLock<String> =
    LazyLock::new(|| format!("s.{}", columns::names(", s.")));

/// `id, asset_rank, ..., runtime_timestamp`, from [`HISTORY_COLUMNS`].
static HISTORY_COLUMN_LIST: LazyLock<String> = LazyLock::new(|| columns::names(", "));

/// The probe of the rejects' key: every part equal. NULL equals nothing, so a reject whose key is
/// not complete is always stored: it can never be taken for another.
static REJECT_PROBE: LazyLock<String> = LazyLock::new(|| {
    let equal: Vec<String> = REJECT_KEY_ALIASES
        .iter()
        .map(|column| format!("t.{column} = s.{column}"))
        .collect();
    format!(
        "SELECT 1 FROM {REJECTS_TABLE} AS t WHERE {}",
        equal.join(" AND ")
    )
});

/// The count of rejects already stored, then their idempotent insert, for one chunk of rejects.
pub(super) fn reject_statements(tx: &mut BatchSql, chunk: &[Rendered], frame: &Frame<'_>) {
    count_existing(tx, chunk, &REJECT_PROBE, frame, true);
    insert(
        &mut tx.sql,
        chunk,
        REJECTS_TABLE,
        &REJECT_COLUMNS,
        &REJECT_PROBE,
    );
}
