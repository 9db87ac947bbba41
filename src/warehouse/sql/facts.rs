//! What the writer reads from the catalog once per process, before its first write, in one round
//! trip ([`catalog::writer_facts_sql`]): how the history table compares its key, whether its design
//! makes every write scan the whole history, whether every table is as this version writes
//! it (the lock row, the rejects keyed on their hub, the writes journal), and whether the engine
//! is a dedicated pool. A table that is not is
//! refused with `init-warehouse` as the fix, before anything is written.

use std::sync::LazyLock;

use super::errors::tables_not_ready;
use super::init::catalog::{self, TableDesign};
use super::keys::KeyTypes;
use super::statement::{REJECTS_TABLE, WRITER_LOCK_TABLE, WRITES_TABLE};
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
        let key_columns = catalog::KeyColumns::from_rows(columns);
        let keys = key_columns.keys.ok_or_else(|| {
            tables_not_ready(catalog::unusable_key(
                key_columns.id_type.as_deref(),
                key_columns.time_type.as_deref(),
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
            keys,
            dedicated_pool: edition == Some(catalog::ENGINE_EDITION_SYNAPSE),
            design_warning,
        })
    }
}
