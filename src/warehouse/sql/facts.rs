//! What the writer reads from the catalog once per process, before its first write, in one round
//! trip ([`catalog::writer_facts_sql`]): how the history table compares its key, whether its design
//! makes every write scan the whole history, whether every table is as this version writes
//! it (the lock row, the rejects keyed on their hub, the writes journal), and whether the engine
//! is a dedicated pool. A table that is not is
//! refused with `init-warehouse` as the fix, before anything is written.

use std::sync::LazyLock;

use super::errors::tables_not_ready;
use super::init::catalog::{self, TableDesign};
use super::keys::{Collation, IdType, KeyTypes, TimeType};
use super::statement::{HISTORY_TABLE, REJECTS_TABLE, WRITER_LOCK_TABLE, WRITES_TABLE};
use crate::warehouse::WarehouseError;

/// What the writer reads from the catalog before its first write.
pub static WRITER_FACTS_SQL: LazyLock<String> = LazyLock::new(catalog::writer_facts_sql);

/// What [`WRITER_FACTS_SQL`] answers.
pub struct TableFacts {
    pub keys: KeyTypes,
    /// The engine is a Synapse dedicated pool (engine edition 6).
    pub dedicated_pool: bool,
    /// Why the history table's design makes every write scan the whole history, if it does.
    pub design_warning: Option<String>,
}

impl TableFacts {
    pub fn read(results: &[Vec<tiberius::Row>]) -> Result<Self, WarehouseError> {
        let [columns, indexes, lock_rows, hub_columns, journal, edition] = results else {
            return Err(tables_not_ready(format!(
                "expected 6 result sets, got {}",
                results.len()
            )));
        };
        let column = |name: &str| {
            columns.iter().find(|row| {
                row.get::<&str, _>(0)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        };
        let Some(id) = column("id") else {
            return Err(tables_not_ready(format!(
                "{HISTORY_TABLE} has no id column: run `handler init-warehouse`"
            )));
        };
        let type_name = id.get::<&str, _>(1).unwrap_or_default();
        let max_length = id.get::<i32, _>(2).unwrap_or_default();
        let id_type = IdType::from_catalog(type_name, max_length).ok_or_else(|| {
            tables_not_ready(format!(
                "{HISTORY_TABLE}.id is {type_name} (max_length {max_length}); the writer needs a char, varchar, nchar or nvarchar key"
            ))
        })?;
        let collation = id
            .get::<&str, _>(4)
            .and_then(Collation::from_name)
            .unwrap_or_default();
        let time = column("runtime_timestamp").ok_or_else(|| {
            tables_not_ready(format!(
                "{HISTORY_TABLE} has no runtime_timestamp column: run `handler init-warehouse`"
            ))
        })?;
        let (time_name, scale) = (
            time.get::<&str, _>(1).unwrap_or_default(),
            time.get::<i32, _>(3).unwrap_or_default(),
        );
        let time = TimeType::from_catalog(time_name, scale).ok_or_else(|| {
            tables_not_ready(format!(
                "{HISTORY_TABLE}.runtime_timestamp is {time_name}; the writer needs datetime or datetime2"
            ))
        })?;
        let scalar = |set: &Vec<tiberius::Row>| set.first().and_then(|row| row.get::<i64, _>(0));
        if scalar(lock_rows).unwrap_or(0) == 0 {
            return Err(tables_not_ready(format!(
                "{WRITER_LOCK_TABLE} holds no row, so writers would not serialize: run `handler init-warehouse`"
            )));
        }
        if scalar(hub_columns).unwrap_or(0) != 2 {
            return Err(tables_not_ready(format!(
                "{REJECTS_TABLE} has no event_hub_namespace and event_hub_name columns: it predates rejects keyed on their hub (a recreated hub or a second hub would have its poison events taken for stored ones); `handler init-warehouse` adds them"
            )));
        }
        if scalar(journal).unwrap_or(0) == 0 {
            return Err(tables_not_ready(format!(
                "{WRITES_TABLE} is missing (the journal that tells what a transaction whose answer was lost wrote): `handler init-warehouse` creates it"
            )));
        }
        let design_warning = catalog::design_warning(&TableDesign {
            indexes: catalog::indexes_from_rows(indexes),
            ..TableDesign::default()
        });
        let edition = edition.first().and_then(|row| row.get::<i32, _>(0));
        Ok(Self {
            keys: KeyTypes {
                id: id_type,
                collation,
                time,
            },
            dedicated_pool: edition == Some(catalog::ENGINE_EDITION_SYNAPSE),
            design_warning,
        })
    }
}
