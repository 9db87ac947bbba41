//! The SQL writer's settings (`SQL_*`): how it logs in, how many connections, how long it waits.

use std::time::Duration;

/// How EventHubSink logs in to the SQL database (Azure SQL Database, a dedicated pool, SQL Server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlLogin {
    /// `SQL_CONNECTION_STRING` (a secret): ADO.NET or JDBC, as the portal shows it.
    ConnectionString,
    /// `SQL_SERVER` + `SQL_DATABASE`: passwordless, with an Entra token per connection.
    Entra { server: String, database: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SqlConfig {
    pub login: SqlLogin,
    pub pool_size: u32,
    /// Longest wait for one server response; a queued query on a busy pool can take a while.
    pub command_timeout: Duration,
}
