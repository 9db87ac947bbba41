//! The bulk path's SQL, as pure code: the session table a batch's rows are staged in by TDS bulk
//! load ([`StageTable`]), each row as the bulk load sends it ([`staged_row`]), and the two
//! set-based statements that move the staged rows into the history table inside the writer's
//! transaction (`staged_statements`): the journal's count of rows not inserted, then the insert
//! of the first row of each key not stored yet, both reading the staged rows as the history
//! table's own types. The bulk load itself is `super::bulk`'s.
//!
//! ```sql
//! -- once per connection, outside any transaction
//! CREATE TABLE #asset_statistics_stage (position bigint NOT NULL, id nvarchar(255) COLLATE <id's collation> NOT NULL, asset_rank bigint NULL, ..., runtime_timestamp datetime2(3) NOT NULL);
//! -- then per batch: the rows by bulk load, then the transaction, which reads them as
//! SELECT s.position, s.id, s.asset_rank, ..., CAST(s.runtime_timestamp AS datetime) AS runtime_timestamp FROM #asset_statistics_stage AS s
//! -- and ends with
//! COMMIT TRAN;
//! TRUNCATE TABLE #asset_statistics_stage;
//! ```
//!
//! **Types.** The id is staged in the `id` column's own type and collation (a temporary table's
//! columns otherwise take tempdb's collation on SQL Server), so the probe, the pick of one row per
//! key and the unique index compare alike, and nothing is converted. A `varchar`/`char` id is the
//! exception: it is staged as the same `nvarchar`/`nchar` and converted by the server (`CAST(s.id
//! AS varchar(255))`), exactly as the text path's `CAST(N'...' AS varchar(255))` is, since only the
//! server knows how its code page stores a character outside it. The timestamp is staged as the
//! event's exact millisecond (`datetime2(3)`) and converted by the server to the column's type, as
//! the text path's literal is, because servers differ in what a `datetime` holds: SQL Server keeps
//! 1/300-second ticks, rounding any millisecond to one ("datetime (Transact-SQL)"), while the SQL
//! Server-compatible engine CI runs on keeps the millisecond of a literal as written and shows it
//! rounded. A `datetime` sent in ticks (`.005` as 2 ticks) is stored there as 6.667 ms where the
//! text path's literal is stored as 5 ms (measured: 2,100 of 3,000 timestamps differed), so the
//! same event would be two keys; the server's own conversion of the staged millisecond matched
//! its literal's for every millisecond of a second (measured), and on SQL Server both round to
//! the nearest tick (argued from the same page, not run here). The other columns are staged in
//! our DDL's types, as the text path casts them, and the insert converts them to the table's as
//! it does there.

use std::borrow::Cow;

use tiberius::{ColumnData, TokenRow};

use super::journal;
use super::keys::KeyTypes;
use super::transaction::{BatchSql, HISTORY_TABLE};
use crate::domain::AssetRow;
use crate::warehouse::columns::{self, HISTORY_COLUMNS, Kind, Value};

/// The session table a batch's rows are staged in. Unqualified, as TDS bulk load needs on some
/// engines; `#`: one per session, gone with it.
pub const STAGE_TABLE: &str = "#asset_statistics_stage";

/// The column that orders a batch's rows: the first of a key wins.
const POSITION: &str = "position";

/// The staging table for one history table: how to create it, and how the set-based statements
/// read it (as the history table's types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTable {
    /// `CREATE TABLE #asset_statistics_stage (...)`.
    pub create: String,
    /// `SELECT s.position, s.id, ... FROM #asset_statistics_stage AS s`, every column in the
    /// history table's type.
    rows: String,
}

impl StageTable {
    /// For a history table whose key compares as `keys` says; on a dedicated pool, a heap
    /// distributed as the history table is ("Best practices for loading data into a dedicated SQL
    /// pool": a staging heap; hash-distributed like its target, the insert moves no data).
    pub fn new(keys: &KeyTypes, dedicated_pool: bool) -> Self {
        let id = keys.id.as_str();
        let (staged_id, convert_id) = match id.strip_prefix('n') {
            Some(_) => (id.to_owned(), false),
            None => (format!("n{id}"), true),
        };
        let collate = keys.collation.clause();
        let mut create = format!("CREATE TABLE {STAGE_TABLE} ({POSITION} bigint NOT NULL");
        let mut rows = format!("SELECT s.{POSITION}");
        for column in &HISTORY_COLUMNS {
            let name = column.name;
            let staged = match column.kind {
                Kind::Text if column.key => format!("{staged_id}{collate}"),
                Kind::Time => "datetime2(3)".to_owned(),
                kind => kind.sql_type().to_owned(),
            };
            let null = if column.key { "NOT NULL" } else { "NULL" };
            create.push_str(&format!(", {name} {staged} {null}"));
            rows.push_str(&match column.kind {
                Kind::Text if column.key && convert_id => {
                    format!(", CAST(s.{name} AS {id}) AS {name}")
                }
                Kind::Time => format!(", CAST(s.{name} AS {}) AS {name}", keys.time.sql()),
                _ => format!(", s.{name}"),
            });
        }
        create.push(')');
        if dedicated_pool {
            create.push_str(" WITH (DISTRIBUTION = HASH([id]), HEAP)");
        }
        rows.push_str(&format!(" FROM {STAGE_TABLE} AS s"));
        Self { create, rows }
    }
}

/// One row as the bulk load sends it, in the staging table's column order: its place in the
/// batch, then every column of [`HISTORY_COLUMNS`], its text borrowed.
pub fn staged_row(position: usize, row: &AssetRow) -> TokenRow<'_> {
    let mut staged = TokenRow::with_capacity(HISTORY_COLUMNS.len() + 1);
    staged.push(ColumnData::I64(Some(
        i64::try_from(position).unwrap_or(i64::MAX),
    )));
    for column in &HISTORY_COLUMNS {
        staged.push(match (column.value)(row) {
            Value::Text(text) => ColumnData::String(text.map(Cow::Borrowed)),
            Value::BigInt(n) => ColumnData::I64(n),
            Value::Float(x) => ColumnData::F64(x),
            Value::Time(at) => ColumnData::DateTime2(Some(datetime2_ms(at.epoch_ms()))),
        });
    }
    staged
}

/// Days from 0001-01-01 (`datetime2`'s first day) to 1970-01-01.
const UNIX_EPOCH_DAY: i64 = 719_162;
const MS_PER_DAY: i64 = 86_400_000;

/// A `datetime2(3)` of a millisecond since the Unix epoch (any `WarehouseTime` lies within
/// `datetime2`'s years: it lies within `datetime`'s).
fn datetime2_ms(ms: i64) -> tiberius::time::DateTime2 {
    let day = u32::try_from(ms.div_euclid(MS_PER_DAY) + UNIX_EPOCH_DAY).unwrap_or(0);
    let of_day = u64::try_from(ms.rem_euclid(MS_PER_DAY)).unwrap_or(0);
    tiberius::time::DateTime2::new(
        tiberius::time::Date::new(day),
        tiberius::time::Time::new(of_day, 3),
    )
}

/// The staged rows' two statements of a transaction: the journal row of how many of its `rows`
/// were not inserted (already stored, or not the first of their key in the batch), then the
/// insert of the first row of each key not stored yet. Both pick the same rows: the first by
/// position of each key (compared in the id's own collation and the time column's type) whose
/// key the probe, bounded by the batch's earliest timestamp, does not find. No `@@ROWCOUNT`: a
/// dedicated pool has none.
pub(super) fn staged_statements(
    tx: &mut BatchSql,
    table: &StageTable,
    rows: usize,
    bound: &str,
    received_at: &str,
) {
    let picked = format!(
        "SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s.id, s.runtime_timestamp ORDER BY s.{POSITION}) AS picked FROM (\n{}\n) AS s",
        table.rows
    );
    let new_keys = format!(
        "WHERE s.picked = 1 AND NOT EXISTS (SELECT 1 FROM {HISTORY_TABLE} AS t WHERE t.id = s.id AND t.runtime_timestamp = s.runtime_timestamp AND t.runtime_timestamp >= {bound});\n"
    );
    let part = tx.parts();
    journal::insert_head(tx);
    tx.sql.push_str(&format!(
        ", {part}, {rows}, {rows} - COUNT_BIG(*), 0, 0, {received_at} FROM (\n{picked}\n) AS s\n{new_keys}"
    ));
    tx.sql.push_str(&format!(
        "INSERT INTO {HISTORY_TABLE} ({})\nSELECT s.{} FROM (\n{picked}\n) AS s\n{new_keys}",
        columns::names(", "),
        columns::names(", s."),
    ));
}

/// What a transaction whose rows were staged runs after its `COMMIT`: the staging table emptied
/// for the session's next batch (outside the transaction: a dedicated pool runs no `TRUNCATE`
/// inside one, "TRUNCATE TABLE (Transact-SQL)").
pub(super) const EMPTY_STAGE: &str = "TRUNCATE TABLE #asset_statistics_stage;\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::sql::keys::{Collation, IdType, TimeType};

    fn keys(id: &str, bytes: i32, time: TimeType) -> KeyTypes {
        KeyTypes {
            id: IdType::from_catalog(id, bytes).unwrap(),
            collation: Collation::from_name("SQL_Latin1_General_CP1_CI_AS").unwrap(),
            time,
        }
    }

    #[test]
    fn the_id_is_staged_in_its_own_type_and_collation_and_read_back_unconverted() {
        let table = StageTable::new(&keys("nvarchar", 510, TimeType::DateTime), false);
        assert_eq!(
            table.create,
            "CREATE TABLE #asset_statistics_stage (position bigint NOT NULL, id nvarchar(255) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL, asset_rank bigint NULL, symbol nvarchar(255) NULL, asset_name nvarchar(255) NULL, supply float NULL, maxSupply float NULL, marketCapUsd float NULL, volumeUsd24Hr float NULL, priceUsd float NULL, changePercent24Hr float NULL, vwap24Hr float NULL, explorer nvarchar(255) NULL, runtime_timestamp datetime2(3) NOT NULL)"
        );
        assert_eq!(
            table.rows,
            "SELECT s.position, s.id, s.asset_rank, s.symbol, s.asset_name, s.supply, s.maxSupply, s.marketCapUsd, s.volumeUsd24Hr, s.priceUsd, s.changePercent24Hr, s.vwap24Hr, s.explorer, CAST(s.runtime_timestamp AS datetime) AS runtime_timestamp FROM #asset_statistics_stage AS s"
        );
    }

    #[test]
    fn a_varchar_id_is_converted_by_the_server_as_the_text_path_converts_it() {
        let table = StageTable::new(&keys("varchar", 255, TimeType::DateTime2(1)), true);
        assert!(
            table
                .create
                .contains("id nvarchar(255) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL"),
            "{}",
            table.create
        );
        assert!(
            table
                .create
                .ends_with(") WITH (DISTRIBUTION = HASH([id]), HEAP)"),
            "a pool's staging heap, distributed as the history: {}",
            table.create
        );
        assert!(
            table.rows.contains("CAST(s.id AS varchar(255)) AS id")
                && table
                    .rows
                    .contains("CAST(s.runtime_timestamp AS datetime2(1)) AS runtime_timestamp"),
            "{}",
            table.rows
        );
    }

    #[test]
    fn a_row_is_staged_with_its_place_and_every_column_in_order() {
        let body = r#"{"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bitcoin","priceUsd":"6.5","explorer":null,"timestamp":1680191532104}"#;
        let row = AssetRow::from_event_body(body).unwrap();
        let staged = staged_row(7, &row);
        let values: Vec<&ColumnData<'_>> = staged.iter().collect();
        assert_eq!(values.len(), 1 + HISTORY_COLUMNS.len());
        assert_eq!(values[0], &ColumnData::I64(Some(7)));
        assert_eq!(values[1], &ColumnData::String(Some("bitcoin".into())));
        assert_eq!(values[2], &ColumnData::I64(Some(1)));
        assert_eq!(values[9], &ColumnData::F64(Some(6.5)));
        assert_eq!(values[5], &ColumnData::F64(None), "supply missing: NULL");
        assert_eq!(values[12], &ColumnData::String(None), "explorer null: NULL");
        // 2023-03-30T15:52:12.104Z: 738,608 days after 0001-01-01, 57,132,104 ms into the day.
        let ColumnData::DateTime2(Some(at)) = values[13] else {
            panic!("{:?}", values[13]);
        };
        assert_eq!(at.date().days(), 738_608);
        assert_eq!((at.time().increments(), at.time().scale()), (57_132_104, 3));
    }

    #[test]
    fn days_and_milliseconds_count_from_datetime2_s_first_day_before_1970_too() {
        let at = datetime2_ms(0);
        assert_eq!((at.date().days(), at.time().increments()), (719_162, 0));
        // 1753-01-01T00:00:00.001Z, datetime's first day.
        let at = datetime2_ms(-6_847_804_800_000 + 1);
        assert_eq!((at.date().days(), at.time().increments()), (639_905, 1));
        let at = datetime2_ms(-1);
        assert_eq!(
            (at.date().days(), at.time().increments()),
            (719_161, 86_399_999)
        );
    }

    #[test]
    fn the_statements_count_and_insert_the_same_rows_the_first_of_each_key_not_stored() {
        let table = StageTable::new(&KeyTypes::default(), false);
        let mut tx = BatchSql {
            id: "0123456789abcdef0123456789abcdef".into(),
            sql: String::new(),
            locked_at: 0,
            id_at: Vec::new(),
            row_chunks: 0,
            reject_chunks: 0,
            rows: 0..0,
            rejects: 0..0,
            staged: true,
        };
        staged_statements(
            &mut tx,
            &table,
            1000,
            "CAST('2025-05-11T21:46:40.000' AS datetime)",
            "CAST('2026-05-01T12:00:00.500' AS datetime2(3))",
        );
        let sql = &tx.sql;
        assert!(sql.starts_with("INSERT INTO assets.asset_statistics_writes (transaction_id, part, rows_sent, rows_existing, rejects_sent, rejects_existing, written_at)\nSELECT '0123456789abcdef0123456789abcdef', 0, 1000, 1000 - COUNT_BIG(*), 0, 0, CAST('2026-05-01T12:00:00.500' AS datetime2(3)) FROM (\n"), "{sql}");
        assert_eq!(
            sql.matches("ROW_NUMBER() OVER (PARTITION BY s.id, s.runtime_timestamp ORDER BY s.position) AS picked").count(),
            2
        );
        assert_eq!(
            sql.matches("WHERE s.picked = 1 AND NOT EXISTS (SELECT 1 FROM assets.asset_statistics_history_v3 AS t WHERE t.id = s.id AND t.runtime_timestamp = s.runtime_timestamp AND t.runtime_timestamp >= CAST('2025-05-11T21:46:40.000' AS datetime));\n").count(),
            2,
            "the count and the insert pick the same rows"
        );
        assert!(sql.contains("INSERT INTO assets.asset_statistics_history_v3 (id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, runtime_timestamp)\nSELECT s.id, s.asset_rank, "), "{sql}");
        assert_eq!(tx.id_at.len(), 1, "the journal row names the transaction");
    }
}
