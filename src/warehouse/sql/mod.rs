//! The SQL Server-family writer (Azure SQL Database, SQL Server, a Synapse dedicated SQL pool; the
//! catalog says which, and only the pool's differences are named after it): one SQL batch per
//! invocation through `simple_query`
//! (several when it is bigger than the batch cap; statement building and literal rendering are
//! pure code in [`statement`], [`select`], `body` and [`literal`]), over a bb8 pool of
//! tiberius connections ([`connection`]), with a named retry rule ([`retry`]) and a cure for each
//! refusal a redelivery would only meet again (`refusals`).

mod body;
pub mod connection;
pub mod init;
pub mod literal;
pub mod pause;
mod refusals;
pub mod retry;
pub mod select;
mod settings;
pub mod statement;

pub use settings::{SqlConfig, SqlLogin};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use bb8::{Pool, PooledConnection, RunError};
use chrono::Utc;
use tiberius::error::IoErrorKind;

use super::{Batch, Warehouse, WarehouseError, WriteReport};
use crate::BoxFuture;
use crate::fault::Fault;
use crate::secrets::{SecretSource, TokenSource};
use connection::{ConnectError, TdsManager};
use init::catalog::{self, TableDesign};
use statement::{BATCH_LIMITS, BatchSql, IdType, build_batches};

/// No connection lives longer than this: tokens and failovers move on.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

pub struct SqlWarehouse {
    pool: Pool<TdsManager>,
    pool_size: u32,
    description: String,
    round_trips: AtomicU64,
    /// The history table's `id` type, read from the catalog on the first write.
    id_type: OnceLock<IdType>,
    /// Whether the server gives NUL back as sent: asked before the first body holding one.
    stores_nul: tokio::sync::OnceCell<bool>,
}

impl SqlWarehouse {
    /// Builds the pool without connecting: the first invocation connects, so a pool that is
    /// paused or unreachable at start-up fails invocations (which are retried), not the process.
    pub fn new(
        config: SqlConfig,
        secrets: Arc<dyn SecretSource>,
        tokens: Option<Arc<dyn TokenSource>>,
    ) -> Self {
        let size = config.pool_size;
        let wait = config.command_timeout;
        let idle = config.idle_timeout;
        let manager = TdsManager::new(config, secrets, tokens);
        let description = manager.describe();
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(None)
            .connection_timeout(wait)
            // No `SELECT 1` before every batch (that would double the round trips): idle
            // connections are closed before Azure's gateway drops them (30 minutes idle), and a
            // batch whose connection turns out to be dead is sent once more on a fresh one.
            .test_on_check_out(false)
            // SQL_IDLE_TIMEOUT, checked every reaper round: a serverless database pauses only
            // once no session is left (see `pause`).
            .idle_timeout(Some(idle))
            .reaper_rate(pause::reaper_round(idle))
            .max_lifetime(Some(MAX_LIFETIME))
            // Fail the invocation at once (the retry policy redelivers) instead of retrying the
            // connection inside it until the timeout.
            .retry_connection(false)
            .build_unchecked(manager);
        Self {
            pool,
            pool_size: size,
            description,
            round_trips: AtomicU64::new(0),
            id_type: OnceLock::new(),
            stores_nul: tokio::sync::OnceCell::new(),
        }
    }

    /// Takes `stores_nul` as the server's answer to the NUL probe instead of asking it (`refusals`):
    /// for tests that drive the refusal path on a server that refuses NUL.
    pub fn assume_server_stores_nul(self, stores_nul: bool) -> Self {
        Self {
            stores_nul: tokio::sync::OnceCell::new_with(Some(stores_nul)),
            ..self
        }
    }

    /// A pooled connection. When none is idle and the pool has room, this invocation connects
    /// itself (then lends the connection to the pool): bb8 would connect in the background and
    /// report a failure only as a timeout, while the real reason (a refused login, a missing
    /// secret) belongs in this invocation's error.
    async fn connection(&self) -> Result<PooledConnection<'_, TdsManager>, WarehouseError> {
        let state = self.pool.state();
        if state.idle_connections == 0 && state.connections < self.pool_size {
            let connection = self
                .pool
                .dedicated_connection()
                .await
                .map_err(|e| pool_error(RunError::User(e)))?;
            // A full pool (others connected meanwhile) hands the connection back: dropping it is fine.
            let _ = self.pool.add(connection);
        }
        self.pool.get().await.map_err(pool_error)
    }

    /// SQL batches sent for writes so far: one per transaction (one per invocation unless the
    /// batch was bigger than the cap), two when a lost connection made it send one again.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Connects and reads what the writer needs from the catalog (once per process), so the
    /// first write pays nothing extra; a write does this itself when needed.
    pub async fn prepare(&self) -> Result<(), WarehouseError> {
        let mut connection = self.connection().await?;
        self.id_type(&mut connection).await?;
        Ok(())
    }

    /// The history table's `id` type: cached, or read from the catalog with the facts the writer
    /// checks once (the lock table has its row; the table's design).
    async fn id_type(
        &self,
        connection: &mut PooledConnection<'_, TdsManager>,
    ) -> Result<IdType, WarehouseError> {
        if let Some(id_type) = self.id_type.get() {
            return Ok(id_type.clone());
        }
        let results = connection
            .run(&WRITER_FACTS_SQL)
            .await
            .map_err(|error| not_ready(sql_error("reading the tables' design", &error)))?;
        let facts = TableFacts::read(&results).inspect_err(|_| connection.broken = true)?;
        // Concurrent first writes may both read; one stores the answer and warns.
        let mut first = false;
        let id_type = self
            .id_type
            .get_or_init(|| {
                first = true;
                facts.id_type
            })
            .clone();
        if first && let Some(warning) = facts.design_warning {
            tracing::warn!("{warning}");
        }
        Ok(id_type)
    }

    async fn write_batch(&self, batch: Batch) -> Result<WriteReport, WarehouseError> {
        if batch.rows.is_empty() && batch.rejects.is_empty() {
            return Ok(WriteReport::default());
        }
        let mut connection = self.connection().await?;
        let id_type = self.id_type(&mut connection).await?;
        let form = self.first_form(&mut connection, &batch).await?;
        let transactions = build_batches(
            &batch.rows,
            &batch.rejects,
            Utc::now(),
            &id_type,
            &BATCH_LIMITS,
            form,
        );
        if transactions.len() > 1 {
            tracing::info!(
                transactions = transactions.len(),
                rows = batch.rows.len(),
                rejects = batch.rejects.len(),
                "Batch larger than the SQL batch cap; writing it in several transactions."
            );
        }
        let mut report = WriteReport::default();
        for transaction in &transactions {
            report += self
                .send_or_cure(&mut connection, &batch, transaction, &id_type, form)
                .await?;
        }
        Ok(report)
    }

    /// Sends one transaction and reads its counts.
    async fn send<'a>(
        &'a self,
        connection: &mut PooledConnection<'a, TdsManager>,
        transaction: &BatchSql,
    ) -> Result<WriteReport, WarehouseError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let results = match connection.run(&transaction.sql).await {
            Ok(results) => results,
            // A pooled connection can die unnoticed (an idle socket cut by the network). The
            // transaction is idempotent and, behind the writer lock, waits for a dead session's
            // transaction to end, so sending it once more on a fresh connection is safe: either
            // it never ran, or its rows now count as duplicates.
            // A timeout is not retried here: the server may still be working on the batch.
            Err(error @ tiberius::error::Error::Io { kind, .. })
                if kind != IoErrorKind::TimedOut =>
            {
                tracing::warn!(%error, "Connection to the SQL database lost during a batch; sending it once more on a new connection.");
                *connection = self.connection().await?;
                self.round_trips.fetch_add(1, Ordering::Relaxed);
                connection
                    .run(&transaction.sql)
                    .await
                    .map_err(|error| sql_error("writing a batch", &error))?
            }
            Err(error) => return Err(sql_error("writing a batch", &error)),
        };
        let counts: Vec<u64> = results
            .iter()
            .map(|set| {
                set.first()
                    .and_then(|row| row.get::<i64, _>(0))
                    .unwrap_or(0)
                    .max(0) as u64
            })
            .collect();
        if counts.len() != transaction.row_chunks {
            connection.broken = true;
            return Err(WarehouseError::Store {
                context: "reading the batch's answer",
                message: format!(
                    "expected {} count results, got {}",
                    transaction.row_chunks,
                    counts.len()
                ),
            });
        }
        let rows = transaction.rows.len() as u64;
        let duplicates: u64 = counts.iter().sum::<u64>().min(rows);
        Ok(WriteReport {
            rows_written: rows - duplicates,
            duplicates,
        })
    }
}

/// What the writer reads from the catalog before its first write ([`catalog::writer_facts_sql`]).
static WRITER_FACTS_SQL: LazyLock<String> = LazyLock::new(catalog::writer_facts_sql);

/// What [`WRITER_FACTS_SQL`] answers.
struct TableFacts {
    id_type: IdType,
    /// Why the history table's design makes every write scan the whole history, if it does.
    design_warning: Option<String>,
}

impl TableFacts {
    fn read(results: &[Vec<tiberius::Row>]) -> Result<Self, WarehouseError> {
        let fail = |message: String| WarehouseError::Sql {
            context: "reading the tables' design",
            number: None,
            fault: Fault::permanent(retry::TABLES_FIX),
            message,
        };
        let [columns, indexes, lock_rows] = results else {
            return Err(fail(format!(
                "expected 3 result sets, got {}",
                results.len()
            )));
        };
        let Some(id) = columns.first() else {
            return Err(fail(format!(
                "{} has no id column: run `handler init-warehouse`",
                statement::HISTORY_TABLE
            )));
        };
        let type_name = id.get::<&str, _>(0).unwrap_or_default();
        let max_length = id.get::<i32, _>(1).unwrap_or_default();
        let id_type = IdType::from_catalog(type_name, max_length).ok_or_else(|| {
            fail(format!(
                "{}.id is {type_name} (max_length {max_length}); the writer needs a char, varchar, nchar or nvarchar key",
                statement::HISTORY_TABLE
            ))
        })?;
        let scalar = |set: &Vec<tiberius::Row>| set.first().and_then(|row| row.get::<i64, _>(0));
        let design_warning = catalog::design_warning(&TableDesign {
            indexes: catalog::indexes_from_rows(indexes),
            ..TableDesign::default()
        });
        if scalar(lock_rows).unwrap_or(0) == 0 {
            return Err(fail(format!(
                "{} holds no row, so writers would not serialize: run `handler init-warehouse`",
                statement::WRITER_LOCK_TABLE
            )));
        }
        Ok(Self {
            id_type,
            design_warning,
        })
    }
}

fn pool_error(error: RunError<ConnectError>) -> WarehouseError {
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

fn sql_error(context: &'static str, error: &tiberius::error::Error) -> WarehouseError {
    WarehouseError::Sql {
        context,
        number: retry::sql_error_number(error),
        fault: retry::fault(error),
        message: retry::message(error),
    }
}

/// A permanent failure to read the tables' design means they are not as the writer needs them
/// (missing, on SQL Server error 208; other engines name it otherwise): `init-warehouse` fixes it.
fn not_ready(error: WarehouseError) -> WarehouseError {
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

impl Warehouse for SqlWarehouse {
    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<WriteReport, WarehouseError>> {
        Box::pin(self.write_batch(batch))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
