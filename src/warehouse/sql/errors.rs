//! The SQL writer's failures as [`WarehouseError`]s: a pool's, a server's, and the tables' design
//! read before the first write.

use bb8::RunError;

use super::connection::ConnectError;
use super::retry;
use crate::fault::Fault;
use crate::warehouse::WarehouseError;

pub fn pool_error(error: RunError<ConnectError>) -> WarehouseError {
    match error {
        RunError::User(error) => WarehouseError::Sql {
            context: "connecting",
            number: error.number(),
            fault: error.fault(),
            message: error.message(),
        },
        RunError::TimedOut => WarehouseError::Sql {
            context: "waiting for a pooled connection",
            number: None,
            fault: Fault::Transient,
            message: "timed out".into(),
        },
    }
}

pub fn sql_error(context: &'static str, error: &tiberius::error::Error) -> WarehouseError {
    WarehouseError::Sql {
        context,
        number: retry::sql_error_number(error),
        fault: retry::fault(error),
        message: retry::message(error),
    }
}

/// A permanent failure to read the tables' design means they are not as the writer needs them
/// (missing, on SQL Server error 208; other engines name it otherwise): `init-warehouse` fixes it.
pub fn not_ready(error: WarehouseError) -> WarehouseError {
    match error {
        WarehouseError::Sql {
            context,
            number,
            fault: Fault::Permanent { .. },
            message,
        } => WarehouseError::Sql {
            context,
            number,
            fault: Fault::permanent(retry::TABLES_FIX),
            message,
        },
        other => other,
    }
}

/// The tables are not as the writer needs them: `init-warehouse` brings them there.
pub fn tables_not_ready(message: String) -> WarehouseError {
    WarehouseError::Sql {
        context: "reading the tables' design",
        number: None,
        fault: Fault::permanent(retry::TABLES_FIX),
        message,
    }
}
