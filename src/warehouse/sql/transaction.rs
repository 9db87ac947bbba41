//! One transaction as the writer sends it ([`BatchSql`]: its text, its id, what it holds), the
//! forms its statements take, and the limits that split a batch into transactions. Pure.

use std::borrow::Cow;
use std::ops::Range;

use super::body::BodyForm;
use super::journal;
use super::stage::StageTable;

pub const HISTORY_TABLE: &str = "assets.asset_statistics_history_v3";
pub const REJECTS_TABLE: &str = "assets.asset_statistics_rejects";
/// The one-row table every write transaction updates first, so writers serialize (created, with
/// its row, by `handler init-warehouse`).
pub const WRITER_LOCK_TABLE: &str = "assets.asset_statistics_writer_lock";
/// One row per part of every committed write transaction: what it counted (see `journal`).
pub const WRITES_TABLE: &str = "assets.asset_statistics_writes";

/// How big a statement and a transaction may get.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `SELECT`s joined by `UNION ALL` in one statement (deep unions cost compile time and stack).
    pub max_rows: usize,
    /// A dedicated pool allows 20,000 string literals per statement.
    pub max_string_literals: usize,
    /// Bytes (UTF-8) of one statement.
    pub max_statement_bytes: usize,
    /// Bytes of one SQL batch (one transaction) on the wire, where it travels as UTF-16. A
    /// dedicated pool allows 65,536 times the packet size (256 MiB with the default 4096-byte packets).
    pub max_batch_bytes: usize,
    /// UTF-16 code units of a reject body kept whole; a longer body is stored truncated.
    pub max_body_units: usize,
}

pub const BATCH_LIMITS: Limits = Limits {
    max_rows: 1000,
    max_string_literals: 20_000,
    max_statement_bytes: 16 * 1024 * 1024,
    // A quarter of the pool's limit: room for a smaller negotiated packet size, and a batch that
    // big is already minutes of work for the pool.
    max_batch_bytes: 64 * 1024 * 1024,
    // Any body a standard or premium Event Hubs namespace delivers (1 MB) is stored whole. At
    // the cap, a body with NUL (hex, four characters per code unit) is 4 MiB of statement text
    // and 8 MiB on the wire: inside one statement, and a transaction still holds several.
    max_body_units: 1024 * 1024,
};

/// How the database keeps a chunk's rows to one per key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Duplicates {
    /// Keys the database would take for one were removed before the SQL is built
    /// ([`super::keys::remove_equal_keys`]), and the insert skips keys the probe finds stored;
    /// the count of those is kept first. Any engine.
    #[default]
    Probed,
    /// The same, and the insert also picks one row per key by the database's own comparison (the
    /// `id` column's collation), the first of the batch, counting what it did not insert with
    /// `@@ROWCOUNT` (SQL Server engines). After a duplicate-key error: another writer stored
    /// some keys meanwhile, or two ids the collation compares as equal in a way the writer does
    /// not fold (see [`super::keys::Collation::fold`]) share a timestamp.
    PickedByTheDatabase,
}

/// How a transaction's rows reach the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Rows<'a> {
    /// As `SELECT`s of literals in the transaction's text ([`Duplicates`] says how they are kept
    /// to one per key).
    #[default]
    Text,
    /// Staged in this session table by bulk load before the transaction, which inserts them with
    /// one statement, the database picking the first row of each key ([`super::stage`]).
    Staged(&'a StageTable),
}

/// The form of a transaction's statements: how rows reach the server, how reject bodies are
/// written, how rows written as text are kept to one per key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Form<'a> {
    pub rows: Rows<'a>,
    pub bodies: BodyForm<'a>,
    pub duplicates: Duplicates,
}

/// One transaction: its text, its id (in its journal rows) and how to read its answer.
#[derive(Debug, Clone)]
pub struct BatchSql {
    /// The transaction's id: 32 hexadecimal digits, written in each of its journal rows.
    pub id: String,
    pub sql: String,
    /// Where the writer lock is held: a lookup of earlier transactions goes here.
    pub(super) locked_at: usize,
    /// Where the id stands in `sql`.
    pub(super) id_at: Vec<usize>,
    pub row_chunks: usize,
    pub reject_chunks: usize,
    /// The rows (indexes into the batch's rows) this transaction inserts unless already stored.
    pub rows: Range<usize>,
    /// The rejects (indexes into the batch's rejects) it inserts unless already stored.
    pub rejects: Range<usize>,
    /// Its rows are read from the session's staging table: they are staged before it is sent.
    pub staged: bool,
}

impl BatchSql {
    /// Parts of the transaction: its journal rows, one per chunk.
    pub fn parts(&self) -> usize {
        self.row_chunks + self.reject_chunks
    }

    /// The text to send as transaction `id` (a new id for a resend), first looking up what the
    /// `earlier` transactions wrote, once the lock is held (`journal::lookup`).
    pub fn text(&self, id: &str, earlier: &[String]) -> Cow<'_, str> {
        if id == self.id && earlier.is_empty() {
            return Cow::Borrowed(&self.sql);
        }
        let mut out = String::with_capacity(self.sql.len() + 128 + 40 * earlier.len());
        out.push_str(&self.sql[..self.locked_at]);
        if !earlier.is_empty() {
            journal::lookup(&mut out, earlier);
        }
        let mut from = self.locked_at;
        for &at in &self.id_at {
            out.push_str(&self.sql[from..at]);
            out.push_str(id);
            from = at + self.id.len();
        }
        out.push_str(&self.sql[from..]);
        Cow::Owned(out)
    }

    /// Appends the transaction's id where it stands in a statement.
    pub(super) fn push_id(&mut self) {
        self.id_at.push(self.sql.len());
        self.sql.push_str(&self.id);
    }
}
