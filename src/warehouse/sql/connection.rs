//! Connections to the SQL database (a dedicated pool, Azure SQL Database, SQL Server): the login
//! (a connection string as the portal shows it, or passwordless Entra with a fresh token per
//! connection), TLS, login redirects, timeouts, and the bb8 manager that validates with
//! `SELECT 1` and drops any connection that failed ([`TdsConnection`], in `super::session`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tiberius::{AuthMethod, Client, Config};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::retry::{self, DATABASE_FIX, HOST_FIX};
pub use super::session::TdsConnection;
use super::settings::{BulkLoadSetting, SqlConfig, SqlLogin};
use crate::fault::{Fault, NameResolution, name_resolution};
use crate::secrets::{Secret, SecretError, SecretName, SecretSource, TokenSource};

/// The scope of Azure SQL and Synapse SQL tokens.
pub const DATABASE_SCOPE: &str = "https://database.windows.net/.default";

const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Names where the string was read (variable or vault secret), never its content.
    #[error(
        "the connection string in {origin} is not a valid ADO.NET or JDBC connection string: {reason}"
    )]
    ConnectionString { origin: String, reason: String },
    #[error("cannot get an Entra token for {DATABASE_SCOPE}: {0}")]
    Token(String),
    #[error(
        "passwordless login (SQL_SERVER and SQL_DATABASE) needs an Entra credential, and none is configured"
    )]
    NoCredential,
    #[error("cannot reach {address}: {message}")]
    Tcp { address: String, message: String },
    #[error("{}", describe(.0))]
    Sql(#[from] tiberius::error::Error),
    /// Error 4060 before this process ever reached the database: it is missing, or the login may
    /// not open it (after a first connection, the same error is a failover: [`Self::Sql`]).
    #[error("{} (this process has not reached the database yet)", describe(.0))]
    CannotOpenDatabase(tiberius::error::Error),
}

impl ConnectError {
    /// Whether another attempt may connect; see [`retry::fault`].
    pub fn fault(&self) -> Fault {
        match self {
            Self::Secret(error) => error.fault(),
            Self::ConnectionString { .. } | Self::NoCredential => Fault::SELF_EXPLAINED,
            Self::Token(_) => Fault::permanent(
                "sign in with `az login` on this machine; in Azure the Function App's managed identity provides the token",
            ),
            Self::Tcp { message, .. } => match name_resolution(message) {
                Some(NameResolution::Unknown) => Fault::permanent(HOST_FIX),
                _ => Fault::Transient,
            },
            Self::CannotOpenDatabase(_) => Fault::permanent(DATABASE_FIX),
            Self::Sql(error) => retry::fault(error),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.fault() == Fault::Transient
    }

    /// The SQL error number, when the server sent one.
    pub fn number(&self) -> Option<u32> {
        match self {
            Self::Sql(error) | Self::CannotOpenDatabase(error) => retry::sql_error_number(error),
            _ => None,
        }
    }

    /// The message without the SQL error number (reported beside it).
    pub fn message(&self) -> String {
        match self {
            Self::Sql(error) => retry::message(error),
            other => other.to_string(),
        }
    }
}

/// A server's error as its message and number; any other as [`retry::message`] says it.
fn describe(error: &tiberius::error::Error) -> String {
    match retry::sql_error_number(error) {
        Some(number) => format!("{} (SQL error {number})", retry::message(error)),
        None => retry::message(error),
    }
}

/// Where the writer connects, for sentences: `database coincap on myws.sql.azuresynapse.net:1433`.
/// No secret in it: the connection string's host, port and database only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub address: String,
    /// `None` when the connection string names none (the login's default database).
    pub database: Option<String>,
    /// How it logs in: `passwordless Entra login`, `login from environment variable ...`.
    pub login: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.database {
            Some(database) => write!(f, "database {database} on {}", self.address)?,
            None => write!(f, "the login's default database on {}", self.address)?,
        }
        write!(f, " ({})", self.login)
    }
}

/// The database a connection string names (`Database`, `Initial Catalog`, JDBC's `databaseName`).
fn database_of(text: &str) -> Option<String> {
    text.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        let key: String = key.chars().filter(|c| !c.is_whitespace()).collect();
        let named = ["database", "initialcatalog", "databasename"]
            .iter()
            .any(|k| key.eq_ignore_ascii_case(k));
        let value = value.trim().trim_start_matches('{').trim_end_matches('}');
        (named && !value.is_empty()).then(|| value.to_owned())
    })
}

/// Parses a connection string exactly as the portal shows it: ADO.NET
/// (`Server=tcp:...;Initial Catalog=...`) or JDBC (`jdbc:sqlserver://...;database=...`). The error
/// is tiberius' reason, which does not quote the string.
/// The portal's `hostNameInCertificate=*.sql.azuresynapse.net` is dropped: a wildcard is not a
/// server name rustls can check against, and the real host name is what the certificate holds.
pub fn parse_connection_string(text: &str) -> Result<Config, String> {
    let text = drop_wildcard_host_name_in_certificate(text.trim());
    let parsed = if text.to_ascii_lowercase().starts_with("jdbc:") {
        Config::from_jdbc_string(&text)
    } else {
        Config::from_ado_string(&text)
    };
    parsed.map_err(|e| e.to_string())
}

fn drop_wildcard_host_name_in_certificate(text: &str) -> String {
    text.split(';')
        .filter(|part| {
            let Some((key, value)) = part.split_once('=') else {
                return true;
            };
            let key: String = key.chars().filter(|c| !c.is_whitespace()).collect();
            !(key.eq_ignore_ascii_case("hostnameincertificate") && value.trim().starts_with('*'))
        })
        .collect::<Vec<_>>()
        .join(";")
}

pub type TdsClient = Client<Compat<TcpStream>>;

pub struct TdsManager {
    config: SqlConfig,
    secrets: Arc<dyn SecretSource>,
    tokens: Option<Arc<dyn TokenSource>>,
    /// Set by the first login that succeeds: from then on "cannot open database" is a failover.
    reached: AtomicBool,
    database: Option<String>,
}

impl TdsManager {
    pub fn new(
        config: SqlConfig,
        secrets: Arc<dyn SecretSource>,
        tokens: Option<Arc<dyn TokenSource>>,
    ) -> Self {
        Self {
            config,
            secrets,
            tokens,
            reached: AtomicBool::new(false),
            database: None,
        }
    }

    /// The same login and server, to `database` (`init-warehouse` creates one from `master`).
    pub fn for_database(&self, database: &str) -> Self {
        let secrets = Arc::clone(&self.secrets);
        let mut manager = Self::new(self.config.clone(), secrets, self.tokens.clone());
        manager.database = Some(database.to_owned());
        manager
    }

    /// Where it connects; reads the connection string secret (never shown) for its host and
    /// database.
    pub async fn target(&self) -> Result<Target, ConnectError> {
        Ok(match &self.config.login {
            SqlLogin::ConnectionString => {
                let (config, secret) = self.connection_string().await?;
                Target {
                    address: config.get_addr(),
                    database: database_of(secret.expose()),
                    login: format!(
                        "login from {}",
                        self.secrets.origin(SecretName::SqlConnectionString)
                    ),
                }
            }
            SqlLogin::Entra { server, database } => {
                let (host, port) = split_server(server);
                Target {
                    address: format!("{host}:{port}"),
                    database: Some(database.clone()),
                    login: "passwordless Entra login".into(),
                }
            }
        })
    }

    /// `SQL_BULK_LOAD`.
    pub fn bulk_load(&self) -> BulkLoadSetting {
        self.config.bulk_load
    }

    /// `server/database` for logs; never the connection string.
    pub fn describe(&self) -> String {
        match &self.config.login {
            SqlLogin::Entra { server, database } => {
                format!("sql:{server}/{database} (Entra)")
            }
            SqlLogin::ConnectionString => "sql (SQL login from the connection string)".into(),
        }
    }

    /// The connection string secret, and what it says; a string that does not parse is named by
    /// where it was read, never shown.
    async fn connection_string(&self) -> Result<(Config, Secret), ConnectError> {
        let name = SecretName::SqlConnectionString;
        let secret = self.secrets.get(name).await?;
        let config = parse_connection_string(secret.expose()).map_err(|reason| {
            ConnectError::ConnectionString {
                origin: self.secrets.origin(name),
                reason,
            }
        })?;
        Ok((config, secret))
    }

    async fn tiberius_config(&self) -> Result<(Config, Option<Secret>), ConnectError> {
        let (mut config, secret) = match &self.config.login {
            SqlLogin::ConnectionString => {
                let (config, secret) = self.connection_string().await?;
                (config, Some(secret))
            }
            SqlLogin::Entra { server, database } => {
                let tokens = self.tokens.as_ref().ok_or(ConnectError::NoCredential)?;
                let token = tokens
                    .token(DATABASE_SCOPE)
                    .await
                    .map_err(ConnectError::Token)?;
                let mut config = Config::new();
                let (host, port) = split_server(server);
                config.host(host);
                config.port(port);
                config.database(database);
                config.authentication(AuthMethod::aad_token(token.expose()));
                (config, None)
            }
        };
        self.database
            .iter()
            .for_each(|database| config.database(database));
        config.application_name("coincap-stream");
        config.command_timeout(Some(self.config.command_timeout));
        Ok((config, secret))
    }

    /// Connects, following a login redirect; a refused connection-string login refreshes the
    /// secret once (a rotated password) and tries again if it changed.
    pub async fn connect_client(&self) -> Result<TdsClient, ConnectError> {
        match self.login().await {
            Ok(client) => {
                self.reached.store(true, Ordering::Relaxed);
                Ok(client)
            }
            Err(ConnectError::Sql(error))
                if retry::sql_error_number(&error) == Some(4060)
                    && !self.reached.load(Ordering::Relaxed) =>
            {
                Err(ConnectError::CannotOpenDatabase(error))
            }
            Err(error) => Err(error),
        }
    }

    async fn login(&self) -> Result<TdsClient, ConnectError> {
        let (config, secret) = self.tiberius_config().await?;
        match connect(config).await {
            Err(ConnectError::Sql(error))
                if super::retry::is_login_failure(&error) && secret.is_some() =>
            {
                self.secrets.invalidate(SecretName::SqlConnectionString);
                let (config, fresh) = self.tiberius_config().await?;
                if fresh == secret {
                    return Err(ConnectError::Sql(error));
                }
                tracing::warn!(
                    "The database refused the cached login; retrying with the refreshed secret."
                );
                connect(config).await
            }
            other => other,
        }
    }
}

/// `host`, `host,port`, `tcp:host,port`, `host:port`.
fn split_server(server: &str) -> (String, u16) {
    let server = server.trim().trim_start_matches("tcp:");
    let split = server.rsplit_once(',').or_else(|| server.rsplit_once(':'));
    match split.and_then(|(host, port)| port.trim().parse().ok().map(|p| (host, p))) {
        Some((host, port)) => (host.to_owned(), port),
        None => (server.to_owned(), 1433),
    }
}

async fn open_tcp(config: &Config) -> Result<TcpStream, ConnectError> {
    let address = config.get_addr();
    let tcp = tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(&address))
        .await
        .map_err(|_| ConnectError::Tcp {
            address: address.clone(),
            message: "timed out".into(),
        })?
        .map_err(|e| ConnectError::Tcp {
            address: address.clone(),
            message: e.to_string(),
        })?;
    tcp.set_nodelay(true).map_err(|e| ConnectError::Tcp {
        address,
        message: e.to_string(),
    })?;
    Ok(tcp)
}

async fn connect(config: Config) -> Result<TdsClient, ConnectError> {
    let tcp = open_tcp(&config).await?;
    match Client::connect(config.clone(), tcp.compat_write()).await {
        Ok(client) => Ok(client),
        // Azure SQL gateways may redirect the login to the node that serves the database.
        Err(tiberius::error::Error::Routing { host, port }) => {
            let mut config = config;
            config.host(&host);
            config.port(port);
            let tcp = open_tcp(&config).await?;
            Ok(Client::connect(config, tcp.compat_write()).await?)
        }
        Err(error) => Err(error.into()),
    }
}

impl bb8::ManageConnection for TdsManager {
    type Connection = TdsConnection;
    type Error = ConnectError;

    async fn connect(&self) -> Result<TdsConnection, ConnectError> {
        Ok(TdsConnection {
            client: self.connect_client().await?,
            broken: false,
            staging: false,
        })
    }

    /// The health check does what a write does: a query through `simple_query`.
    async fn is_valid(&self, connection: &mut TdsConnection) -> Result<(), ConnectError> {
        connection.run("SELECT 1").await?;
        Ok(())
    }

    fn has_broken(&self, connection: &mut TdsConnection) -> bool {
        connection.broken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTAL_JDBC: &str = "jdbc:sqlserver://myws.sql.azuresynapse.net:1433;database=pool1;user=sqladmin@myws;password={p@ss;word};encrypt=true;trustServerCertificate=false;hostNameInCertificate=*.sql.azuresynapse.net;loginTimeout=30;";
    const PORTAL_ADO: &str = "Server=tcp:myws.sql.azuresynapse.net,1433;Initial Catalog=pool1;Persist Security Info=False;User ID=sqladmin;Password=s3cret;MultipleActiveResultSets=False;Encrypt=True;TrustServerCertificate=False;Connection Timeout=30;";

    #[test]
    fn the_portal_s_jdbc_string_is_read_without_its_wildcard_certificate_name() {
        let config = parse_connection_string(PORTAL_JDBC).unwrap();
        assert_eq!(config.get_addr(), "myws.sql.azuresynapse.net:1433");
        assert!(
            !drop_wildcard_host_name_in_certificate(PORTAL_JDBC).contains("hostNameInCertificate")
        );
    }

    #[test]
    fn the_portal_s_ado_string_is_read() {
        let config = parse_connection_string(PORTAL_ADO).unwrap();
        assert_eq!(config.get_addr(), "myws.sql.azuresynapse.net:1433");
    }

    #[test]
    fn a_real_certificate_host_name_is_kept() {
        let text = "Server=tcp:10.0.0.4,1433;HostNameInCertificate=myws.sql.azuresynapse.net";
        assert_eq!(drop_wildcard_host_name_in_certificate(text), text);
    }

    #[test]
    fn a_broken_string_is_a_clear_error_naming_where_it_was_read_without_its_content() {
        let reason = parse_connection_string("jdbc:sqlserver://;password=hunter2;encrypt=maybe")
            .unwrap_err();
        let message = ConnectError::ConnectionString {
            origin: "environment variable SYNAPSE_CONNECTION_STRING".into(),
            reason,
        }
        .to_string();
        assert!(
            message.starts_with(
                "the connection string in environment variable SYNAPSE_CONNECTION_STRING is not a valid"
            ),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn the_database_is_read_from_either_form_without_the_rest() {
        assert_eq!(database_of(PORTAL_JDBC).as_deref(), Some("pool1"));
        assert_eq!(database_of(PORTAL_ADO).as_deref(), Some("pool1"));
        assert_eq!(
            database_of("Server=tcp:h,1433;Database = coincap ;User Id=u").as_deref(),
            Some("coincap")
        );
        assert_eq!(database_of("Server=tcp:h,1433;User Id=u;Password=p"), None);
        let target = Target {
            address: "myws.sql.azuresynapse.net:1433".into(),
            database: Some("pool1".into()),
            login: "login from environment variable SQL_CONNECTION_STRING".into(),
        };
        assert_eq!(
            target.to_string(),
            "database pool1 on myws.sql.azuresynapse.net:1433 (login from environment variable SQL_CONNECTION_STRING)"
        );
    }

    #[test]
    fn an_unknown_host_is_permanent_and_a_refused_connection_transient() {
        let tcp = |message: &str| ConnectError::Tcp {
            address: "h:1433".into(),
            message: message.into(),
        };
        let unknown = tcp("failed to lookup address information: Name or service not known");
        assert_eq!(unknown.fault().fix(), Some(HOST_FIX));
        assert!(!unknown.is_transient());
        assert!(tcp("Connection refused (os error 111)").is_transient());
        assert!(
            tcp("failed to lookup address information: Temporary failure in name resolution")
                .is_transient()
        );
        assert!(
            ConnectError::Token("az login".into())
                .fault()
                .is_permanent()
        );
    }

    #[test]
    fn server_names_take_the_usual_forms() {
        assert_eq!(
            split_server("myws.sql.azuresynapse.net"),
            ("myws.sql.azuresynapse.net".into(), 1433)
        );
        assert_eq!(
            split_server("tcp:myws.sql.azuresynapse.net,1433"),
            ("myws.sql.azuresynapse.net".into(), 1433)
        );
        assert_eq!(split_server("localhost:14330"), ("localhost".into(), 14330));
    }
}
