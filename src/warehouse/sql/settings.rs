//! The SQL writer's settings (`SQL_*`): how it logs in, how many connections, how long it waits,
//! how it sends rows.

use std::str::FromStr;
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
    /// `SQL_IDLE_TIMEOUT`: a pooled connection idle this long is closed, so that a serverless
    /// database, which pauses only without a session, can pause between fetches.
    pub idle_timeout: Duration,
    /// `SQL_AUTO_PAUSE_DELAY`: the serverless database's auto-pause delay, when it has one
    /// (`handler check` says whether the schedule lets it pause).
    pub auto_pause_delay: Option<Duration>,
    /// `SQL_BULK_LOAD`: whether rows may be staged by bulk load.
    pub bulk_load: BulkLoadSetting,
}

/// `SQL_BULK_LOAD`: how the writer sends a batch's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BulkLoadSetting {
    /// `auto`: staged by TDS bulk load into a session table where the server takes it (the first
    /// write finds out), as SQL text where it does not.
    #[default]
    Auto,
    /// `off`: always as SQL text.
    Off,
}

impl FromStr for BulkLoadSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            _ => Err(
                "expected auto (bulk load where the server takes it) or off (rows as SQL text)"
                    .into(),
            ),
        }
    }
}

/// Azure's gateway drops a connection idle this long; the writer closes its own before.
const MAX_IDLE: Duration = Duration::from_secs(30 * 60);
/// The shortest and longest auto-pause delay of a serverless General Purpose database
/// ("Serverless compute tier for Azure SQL Database": minimum 15 minutes, maximum 10,080 minutes,
/// 7 days; the template's `sqlDatabaseAutoPauseDelay` has the same bounds).
const MIN_AUTO_PAUSE_DELAY: Duration = Duration::from_secs(15 * 60);
const MAX_AUTO_PAUSE_DELAY: Duration = Duration::from_secs(10_080 * 60);

impl SqlConfig {
    /// `SQL_IDLE_TIMEOUT`: more than 0, under the gateway's 30 minutes.
    pub fn idle_timeout(idle: Duration) -> Result<Duration, String> {
        if idle.is_zero() || idle >= MAX_IDLE {
            return Err(
                "expected more than 0 and less than 30m (Azure's gateway drops a connection idle for 30 minutes)"
                    .into(),
            );
        }
        Ok(idle)
    }

    /// `SQL_AUTO_PAUSE_DELAY`: a serverless database's delay, 15 minutes to 7 days.
    pub fn auto_pause_delay(delay: Duration) -> Result<Duration, String> {
        if !(MIN_AUTO_PAUSE_DELAY..=MAX_AUTO_PAUSE_DELAY).contains(&delay) {
            return Err(
                "expected the serverless database's auto-pause delay, from 15m (its minimum) to 7days (10,080 minutes, its maximum)"
                    .into(),
            );
        }
        Ok(delay)
    }
}
