//! The Synapse writer's settings: how it logs in, how many connections, how long it waits.

use std::time::Duration;

/// How EventHubSink logs in to the Synapse dedicated SQL pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SynapseLogin {
    /// `SYNAPSE_CONNECTION_STRING` (a secret): ADO.NET or JDBC, as the portal shows it.
    ConnectionString,
    /// `SYNAPSE_SERVER` + `SYNAPSE_DATABASE`: passwordless, with an Entra token per connection.
    Entra { server: String, database: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SynapseConfig {
    pub login: SynapseLogin,
    pub pool_size: u32,
    /// Longest wait for one server response; a queued query on a busy pool can take a while.
    pub command_timeout: Duration,
}
