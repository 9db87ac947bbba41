//! The Synapse dedicated SQL pool writer: one SQL batch per invocation through `simple_query`
//! (statement building and literal rendering are pure code in [`statement`] and [`literal`]),
//! over a bb8 pool of tiberius connections ([`connection`]), with a named retry rule ([`errors`]).

pub mod connection;
pub mod errors;
pub mod init;
pub mod literal;
mod settings;
pub mod statement;

pub use settings::{SynapseConfig, SynapseLogin};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bb8::{Pool, PooledConnection, RunError};
use chrono::Utc;
use tiberius::error::IoErrorKind;

use super::{Batch, Warehouse, WarehouseError, WriteReport};
use crate::BoxFuture;
use crate::secrets::{SecretSource, TokenSource};
use connection::{ConnectError, TdsManager};
use statement::{SYNAPSE_LIMITS, build_batch};

/// Idle pooled connections are closed after this (Azure's gateway drops them after 30 minutes).
const IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 60);
/// No connection lives longer than this: tokens and failovers move on.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

pub struct SynapseWarehouse {
    pool: Pool<TdsManager>,
    pool_size: u32,
    description: String,
    round_trips: AtomicU64,
}

impl SynapseWarehouse {
    /// Builds the pool without connecting: the first invocation connects, so a pool that is
    /// paused or unreachable at start-up fails invocations (which are retried), not the process.
    pub fn new(
        config: SynapseConfig,
        secrets: Arc<dyn SecretSource>,
        tokens: Option<Arc<dyn TokenSource>>,
    ) -> Self {
        let size = config.pool_size;
        let wait = config.command_timeout;
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
            .idle_timeout(Some(IDLE_TIMEOUT))
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

    /// SQL batches sent for writes so far: one per non-empty batch (two when a lost connection
    /// made it send the batch again).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn write_batch(&self, batch: Batch) -> Result<WriteReport, WarehouseError> {
        if batch.rows.is_empty() && batch.rejects.is_empty() {
            return Ok(WriteReport::default());
        }
        let statement = build_batch(&batch.rows, &batch.rejects, Utc::now(), &SYNAPSE_LIMITS);
        let mut connection = self.connection().await?;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let results = match connection.run(&statement.sql).await {
            Ok(results) => results,
            // A pooled connection can die unnoticed (an idle socket cut by the network). The
            // batch is one transaction and idempotent, so sending it once more on a fresh
            // connection is safe: either it never ran, or its rows now count as duplicates.
            // A timeout is not retried here: the server may still be working on the batch.
            Err(error @ tiberius::error::Error::Io { kind, .. })
                if kind != IoErrorKind::TimedOut =>
            {
                tracing::warn!(%error, "Synapse connection lost during a batch; sending it once more on a new connection.");
                drop(connection);
                connection = self.connection().await?;
                self.round_trips.fetch_add(1, Ordering::Relaxed);
                connection
                    .run(&statement.sql)
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
        if counts.len() != statement.row_chunks + statement.reject_chunks {
            connection.broken = true;
            return Err(WarehouseError::Io {
                context: "reading the batch's answer",
                message: format!(
                    "expected {} count results, got {}",
                    statement.row_chunks + statement.reject_chunks,
                    counts.len()
                ),
            });
        }
        let (row_counts, reject_counts) = counts.split_at(statement.row_chunks);
        let duplicates: u64 = row_counts.iter().sum();
        let existing_rejects: u64 = reject_counts.iter().sum();
        Ok(WriteReport {
            rows_written: batch.rows.len() as u64 - duplicates.min(batch.rows.len() as u64),
            duplicates,
            rejects_written: batch.rejects.len() as u64
                - existing_rejects.min(batch.rejects.len() as u64),
        })
    }
}

fn pool_error(error: RunError<ConnectError>) -> WarehouseError {
    match error {
        RunError::User(error) => WarehouseError::Sql {
            context: "connecting",
            number: match &error {
                ConnectError::Sql(e) => errors::sql_error_number(e),
                _ => None,
            },
            transient: error.is_transient(),
            message: error.to_string(),
        },
        RunError::TimedOut => WarehouseError::Sql {
            context: "waiting for a pooled connection",
            number: None,
            transient: true,
            message: "timed out".into(),
        },
    }
}

fn sql_error(context: &'static str, error: &tiberius::error::Error) -> WarehouseError {
    WarehouseError::Sql {
        context,
        number: errors::sql_error_number(error),
        transient: errors::is_transient(error),
        message: error.to_string(),
    }
}

impl Warehouse for SynapseWarehouse {
    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<WriteReport, WarehouseError>> {
        Box::pin(self.write_batch(batch))
    }

    fn health(&self) -> BoxFuture<'_, Result<(), WarehouseError>> {
        Box::pin(async move {
            let mut connection = self.connection().await?;
            connection
                .run("SELECT 1")
                .await
                .map_err(|error| sql_error("checking health", &error))?;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
