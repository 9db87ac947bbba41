//! The writes journal (`assets.asset_statistics_writes`): each transaction keeps, inside itself,
//! one row per part (chunk) saying how many of its rows and rejects were already stored, reads
//! them back as its answer, and commits them with its rows. A transaction whose answer was lost
//! (the connection cut after its `COMMIT` reached the server, or a reply that never came) is
//! looked up by its id in the next one: found, it committed and wrote what its rows say; not
//! found, it rolled back. The lookup runs after the writer lock is taken, so the lost transaction
//! has ended by then (a transaction still open holds the lock). Pure: SQL text in, counts out.

use super::transaction::{BatchSql, WRITES_TABLE};
use crate::warehouse::WriteReport;

/// A new transaction's id: 32 hexadecimal digits (a random UUID), unique for the journal's life.
pub fn new_transaction_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

const COLUMNS: &str =
    "transaction_id, part, rows_sent, rows_existing, rejects_sent, rejects_existing, written_at";

/// `INSERT INTO <journal> (<columns>)\nSELECT '<id>'`: what the count of a part's existing keys
/// follows (`, <part>, <rows>, COUNT_BIG(*), ... FROM ...`).
pub(super) fn insert_head(tx: &mut BatchSql) {
    tx.sql
        .push_str(&format!("INSERT INTO {WRITES_TABLE} ({COLUMNS})\nSELECT '"));
    push_id(tx);
    tx.sql.push('\'');
}

/// The journal row of a part whose insert picked one row per key: the rows it did not insert
/// (`@@ROWCOUNT` of the insert just before) count as already stored.
pub(super) fn not_inserted(tx: &mut BatchSql, part: usize, rows: usize, written_at: &str) {
    tx.sql
        .push_str(&format!("INSERT INTO {WRITES_TABLE} ({COLUMNS}) VALUES ('"));
    push_id(tx);
    tx.sql.push_str(&format!(
        "', {part}, {rows}, {rows} - @@ROWCOUNT, 0, 0, {written_at});\n"
    ));
}

/// The transaction's answer: its journal rows, part by part.
pub(super) fn counts(tx: &mut BatchSql) {
    tx.sql.push_str(&format!(
        "SELECT rows_existing, rejects_existing FROM {WRITES_TABLE} WHERE transaction_id = '"
    ));
    push_id(tx);
    tx.sql.push_str("' ORDER BY part;\n");
}

fn push_id(tx: &mut BatchSql) {
    // The id is 32 hexadecimal digits: nothing in it needs quoting.
    debug_assert!(tx.id.bytes().all(|b| b.is_ascii_hexdigit()));
    tx.push_id();
}

/// What the `earlier` transactions wrote, if they committed: one row of sums.
pub(super) fn lookup(out: &mut String, earlier: &[String]) {
    let ids: Vec<String> = earlier
        .iter()
        .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|id| format!("'{id}'"))
        .collect();
    out.push_str(&format!(
        "SELECT COUNT_BIG(*) AS parts, CAST(COALESCE(SUM(rows_sent - rows_existing), 0) AS bigint) AS rows_written, CAST(COALESCE(SUM(rejects_sent - rejects_existing), 0) AS bigint) AS rejects_written FROM {WRITES_TABLE} WHERE transaction_id IN ({});\n",
        ids.join(", ")
    ));
}

/// What committed earlier transactions wrote, as the journal keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Earlier {
    /// Journal rows found: 0 when none of the transactions committed.
    pub parts: u64,
    pub rows_written: u64,
    pub rejects_written: u64,
}

/// Reads a transaction's answer: the lookup's sums first when `looked_up`, then one row per part
/// with the keys of its rows and rejects that were already stored.
pub fn read_answer(
    results: &[Vec<tiberius::Row>],
    tx: &BatchSql,
    looked_up: bool,
) -> Result<(WriteReport, Option<Earlier>), String> {
    let number = |row: &tiberius::Row, at: usize| row.get::<i64, _>(at).unwrap_or(0).max(0) as u64;
    let (earlier, parts) = match (looked_up, results) {
        (false, [parts]) => (None, parts),
        (true, [sums, parts]) => {
            let row = sums.first().ok_or("the lookup answered no row")?;
            let earlier = Earlier {
                parts: number(row, 0),
                rows_written: number(row, 1),
                rejects_written: number(row, 2),
            };
            (Some(earlier), parts)
        }
        _ => {
            return Err(format!(
                "expected {} result sets, got {}",
                1 + usize::from(looked_up),
                results.len()
            ));
        }
    };
    if parts.len() != tx.parts() {
        return Err(format!(
            "expected {} journal rows, got {}",
            tx.parts(),
            parts.len()
        ));
    }
    let rows_existing: u64 = parts.iter().map(|row| number(row, 0)).sum();
    let rejects_existing: u64 = parts.iter().map(|row| number(row, 1)).sum();
    let (rows, rejects) = (tx.rows.len() as u64, tx.rejects.len() as u64);
    let (rows_existing, rejects_existing) =
        (rows_existing.min(rows), rejects_existing.min(rejects));
    let report = WriteReport {
        rows_written: rows - rows_existing,
        duplicates: rows_existing,
        rejects_written: rejects - rejects_existing,
        rejects_existing,
    };
    Ok((report, earlier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hexadecimal_digits_and_new_each_time() {
        let (a, b) = (new_transaction_id(), new_transaction_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_lookup_sums_what_the_transactions_wrote_and_counts_their_parts() {
        let mut out = String::new();
        lookup(&mut out, &["ab12".into(), "x'; DROP".into(), "cd34".into()]);
        assert_eq!(
            out,
            "SELECT COUNT_BIG(*) AS parts, CAST(COALESCE(SUM(rows_sent - rows_existing), 0) AS bigint) AS rows_written, CAST(COALESCE(SUM(rejects_sent - rejects_existing), 0) AS bigint) AS rejects_written FROM assets.asset_statistics_writes WHERE transaction_id IN ('ab12', 'cd34');\n",
            "only ids the writer makes are ever written"
        );
    }
}
