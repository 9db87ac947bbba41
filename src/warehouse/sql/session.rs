//! The pool of connections ([`TdsConnection`]: a connection and whether it is clean), and one
//! write's hold on it ([`Session`]): the connection the write works on, and a new one in its place
//! when a command failed. The failed connection is given back broken, so dropped, BEFORE the
//! next is taken: a pool of one never waits for itself.

use std::time::Duration;

use bb8::{Pool, PooledConnection, RunError};
use tiberius::error::{Error, IoErrorKind};

use super::connection::{TdsClient, TdsManager};
use super::errors::pool_error;
use super::settings::SqlConfig;
use super::stage::StageTable;
use crate::domain::AssetRow;
use crate::secrets::{SecretSource, TokenSource};
use crate::warehouse::WarehouseError;
use std::sync::Arc;

/// No connection lives longer than this: tokens and failovers move on.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

pub struct Connections {
    pool: Pool<TdsManager>,
    size: u32,
}

impl Connections {
    /// Builds the pool without connecting: the first invocation connects, so a pool that is
    /// paused or unreachable at start-up fails invocations (which are retried), not the process.
    /// Also says where it connects, for logs.
    pub fn new(
        config: SqlConfig,
        secrets: Arc<dyn SecretSource>,
        tokens: Option<Arc<dyn TokenSource>>,
    ) -> (Self, String) {
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
            .reaper_rate(super::pause::reaper_round(idle))
            .max_lifetime(Some(MAX_LIFETIME))
            // Fail the invocation at once (the retry policy redelivers) instead of retrying the
            // connection inside it until the timeout.
            .retry_connection(false)
            .build_unchecked(manager);
        (Self { pool, size }, description)
    }

    /// A pooled connection. When none is idle and the pool has room, this invocation connects
    /// itself (then lends the connection to the pool): bb8 would connect in the background and
    /// report a failure only as a timeout, while the real reason (a refused login, a missing
    /// secret) belongs in this invocation's error.
    async fn take(&self) -> Result<PooledConnection<'_, TdsManager>, WarehouseError> {
        let state = self.pool.state();
        if state.idle_connections == 0 && state.connections < self.size {
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

    /// A session on a pooled connection.
    pub async fn session(&self) -> Result<Session<'_>, WarehouseError> {
        Ok(Session {
            connections: self,
            current: Some(self.take().await?),
        })
    }
}

/// A pooled connection; `broken` while a command on it has not finished well, so the pool drops
/// it instead of handing it out again (it may be mid-response or mid-transaction).
pub struct TdsConnection {
    pub client: TdsClient,
    pub broken: bool,
    /// The session has its (empty) staging table (see `super::bulk`).
    pub staging: bool,
}

impl TdsConnection {
    /// Runs one SQL batch through `simple_query` and reads every result set. Broken from the send
    /// until the reply is read to the end (a failure, or a cancelled invocation dropping this
    /// future mid-reply, leaves it so): then the pool drops it, the server rolls back what the
    /// session held open, and no batch ever meets a reply left unread.
    pub async fn run(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<tiberius::Row>>, tiberius::error::Error> {
        self.broken = true;
        let result = async { self.client.simple_query(sql).await?.into_results().await }.await;
        self.broken = result.is_err();
        result
    }
}

/// One write's connection. Dropped (a finished write, or a cancelled invocation), it goes back
/// to the pool, unless it is broken ([`TdsConnection::run`]): then the pool
/// drops it.
pub struct Session<'a> {
    connections: &'a Connections,
    current: Option<PooledConnection<'a, TdsManager>>,
}

impl Session<'_> {
    /// Runs one SQL batch on the session's connection (see
    /// [`TdsConnection::run`]).
    pub async fn run(&mut self, sql: &str) -> Result<Vec<Vec<tiberius::Row>>, Error> {
        match self.current.as_mut() {
            Some(connection) => connection.run(sql).await,
            None => Err(no_connection()),
        }
    }

    /// Stages `rows` in the session's staging table (see [`super::bulk`]).
    pub async fn stage(&mut self, table: &StageTable, rows: &[AssetRow]) -> Result<(), Error> {
        match self.current.as_mut() {
            Some(connection) => connection.stage(table, rows).await,
            None => Err(no_connection()),
        }
    }

    /// Gives the connection back broken (the pool drops it), then takes another.
    pub async fn renew(&mut self) -> Result<(), WarehouseError> {
        if let Some(mut failed) = self.current.take() {
            failed.broken = true;
        }
        self.current = Some(self.connections.take().await?);
        Ok(())
    }

    /// Whether the last command left the connection broken.
    pub fn is_broken(&self) -> bool {
        self.current.as_ref().is_none_or(|c| c.broken)
    }
}

fn no_connection() -> Error {
    Error::Io {
        kind: IoErrorKind::NotConnected,
        message: "no connection: the last one failed and no new one could be made".into(),
    }
}
