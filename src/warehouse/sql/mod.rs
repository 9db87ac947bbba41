//! The SQL Server-family writer (Azure SQL Database, SQL Server, a Synapse dedicated SQL pool; the
//! catalog says which, and only the pool's differences are named after it). This file only names
//! the parts; each uses its siblings, never this file:
//! - [`writer`]: [`SqlWarehouse`], one write from a batch to its counts.
//! - `facts`, [`keys`]: what the writer reads from the catalog, how the history table compares
//!   its key, and the rows and rejects of a batch the database would take for one.
//! - [`statement`], `transaction`, `chunk`, [`select`], `body`, [`literal`], `journal`: the SQL
//!   text, as pure code (one transaction per invocation, several when bigger than the batch cap,
//!   each with its journal rows).
//! - [`stage`], [`bulk`]: the bulk path: a batch's rows staged in a session table by TDS bulk load,
//!   then inserted by one statement of the transaction, where the server takes bulk load.
//! - `send`, `outcomes`, `refusals`: one transaction sent and its answer read, the transactions
//!   whose answer was lost, the cure for each refusal a redelivery would only meet again.
//! - `session`, [`connection`], [`retry`], `errors`, [`pause`]: the bb8 pool of tiberius
//!   connections, one write's connection, the named retry rule, the errors, and how long idle
//!   connections are kept (so a serverless database can pause).
//! - [`init`]: `handler init-warehouse` and the catalog facts it reports.

mod body;
pub mod bulk;
mod chunk;
pub mod connection;
mod errors;
mod facts;
pub mod init;
mod journal;
pub mod keys;
pub mod literal;
mod outcomes;
pub mod pause;
mod refusals;
pub mod retry;
pub mod select;
mod send;
mod session;
mod settings;
pub mod stage;
pub mod statement;
mod transaction;
pub mod writer;

pub use settings::{BulkLoadSetting, SqlConfig, SqlLogin};
pub use writer::SqlWarehouse;
