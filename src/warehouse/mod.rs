//! Where rows land: the [`Warehouse`] trait, the `WAREHOUSE` setting, the history table's one
//! column list ([`columns`]), and the implementations (an embedded SQLite file; a SQL
//! Server-family database: Azure SQL Database, a Synapse dedicated SQL pool or SQL Server).

pub mod columns;
pub mod sql;
mod sqlite;

use std::path::PathBuf;
use std::str::FromStr;

pub use sql::SqlWarehouse;
pub use sqlite::SqliteWarehouse;

use crate::BoxFuture;
use crate::domain::{AssetRow, Reject};
use crate::fault::{Fault, Limit};

/// The `WAREHOUSE` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseConfig {
    /// `sqlite:PATH`: an embedded SQLite file, created on first use.
    Sqlite(PathBuf),
    /// `sql` (or its old name `synapse`): a SQL Server-family database, an Azure SQL Database, a
    /// Synapse dedicated SQL pool or SQL Server; the writer reads which engine it is.
    Sql,
}

impl FromStr for WarehouseConfig {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => Ok(Self::Sqlite(PathBuf::from(path))),
            _ if text == "sql" || text == "synapse" => Ok(Self::Sql),
            _ => Err("expected sql (or its old name synapse) or sqlite:PATH".into()),
        }
    }
}

/// What one invocation hands the warehouse: valid rows (duplicates inside the batch already
/// removed) and the poison events of the same batch.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub rows: Vec<AssetRow>,
    pub rejects: Vec<Reject>,
}

/// What one batch write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Rows inserted.
    pub rows_written: u64,
    /// Rows already in the table (a redelivered batch), so not inserted again.
    pub duplicates: u64,
    /// Rejects inserted.
    pub rejects_written: u64,
    /// Rejects already in the table (the same event, from the same hub), so not inserted again.
    pub rejects_existing: u64,
}

impl std::ops::AddAssign for WriteReport {
    fn add_assign(&mut self, other: Self) {
        self.rows_written += other.rows_written;
        self.duplicates += other.duplicates;
        self.rejects_written += other.rejects_written;
        self.rejects_existing += other.rejects_existing;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// Any failure of the store that carries no SQL error number: SQLite's errors, a lost
    /// blocking task, an answer of the wrong shape, a table the writer cannot use.
    #[error("the warehouse failed while {context}: {message}")]
    Store {
        context: &'static str,
        message: String,
    },
    #[error(
        "the SQL warehouse failed while {context} ({}{}): {message}{}",
        if fault.is_permanent() { "permanent" } else { "transient" },
        number.map(|n| format!(", SQL error {n}")).unwrap_or_default(),
        number.and_then(sql::retry::meaning).map(|m| format!(" ({m})")).unwrap_or_default()
    )]
    /// A failure of the SQL warehouse (a Synapse pool, Azure SQL Database, SQL Server) or of
    /// connecting to it, classified by the retry rule.
    Sql {
        context: &'static str,
        number: Option<u32>,
        fault: Fault,
        message: String,
    },
}

impl WarehouseError {
    /// Whether another attempt may write. A store error without a SQL error number (SQLite busy
    /// or failing, an answer of the wrong shape) may pass next time; a SQL error is classified
    /// where it happened (see [`sql::retry`]).
    pub fn fault(&self) -> Fault {
        match self {
            Self::Store { .. } => Fault::Transient,
            Self::Sql { fault, .. } => fault.clone(),
        }
    }

    /// The limit of an offer this failure says was reached: the free offer's monthly allowance.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            Self::Sql {
                number, message, ..
            } if sql::retry::is_free_allowance(*number, message) => Some(Limit::SqlFreeAllowance),
            _ => None,
        }
    }
}

/// A sink for batches. `write` is idempotent on `(id, runtime_timestamp)` (and rejects on their
/// hub, partition, sequence number and enqueued time; a reject missing any of them is always
/// stored): writing the same batch twice adds nothing the second time. SQLite
/// commits a batch in one transaction; the SQL writer in one per size-capped part (see
/// [`sql::statement`]), so a failed write may have committed earlier parts: when the same
/// process gets the batch again it looks those transactions up and counts their rows as written;
/// another process (or SQLite) counts them as duplicates.
pub trait Warehouse: Send + Sync {
    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<WriteReport, WarehouseError>>;

    /// For start-up logs: `sqlite:coincap.db`, `sql:server/db (Entra)`.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_selects_the_warehouse() {
        assert_eq!(
            "sqlite:coincap.db".parse(),
            Ok(WarehouseConfig::Sqlite("coincap.db".into()))
        );
        assert_eq!(
            "sqlite:/a:b.db".parse(),
            Ok(WarehouseConfig::Sqlite("/a:b.db".into()))
        );
        assert_eq!("sql".parse(), Ok(WarehouseConfig::Sql));
        assert_eq!(
            "synapse".parse(),
            Ok(WarehouseConfig::Sql),
            "the old name still works"
        );
        assert!("SQL".parse::<WarehouseConfig>().is_err());
        assert!("sqlite:".parse::<WarehouseConfig>().is_err());
        assert!("mysql://x".parse::<WarehouseConfig>().is_err());
    }
}
