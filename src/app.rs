//! The one composition root: [`Config`] in, the handles every entry point shares out (`serve`,
//! `local`, `init-warehouse` and the tests all build theirs here, so they cannot differ).

use std::sync::Arc;

use crate::coincap::CoinCapClient;
use crate::config::Config;
use crate::secrets::{self, SecretError, SecretName, SecretSource, TokenSource};
use crate::warehouse::sql::SqlLogin;
use crate::warehouse::sql::connection::{ConnectError, TdsManager};
use crate::warehouse::{SqlWarehouse, SqliteWarehouse, Warehouse, WarehouseConfig};

/// What every invocation shares: cheap to clone, each I/O edge behind a handle.
#[derive(Clone)]
pub struct AppState {
    pub coincap: Arc<CoinCapClient>,
    pub secrets: Arc<dyn SecretSource>,
    pub warehouse: Arc<dyn Warehouse>,
}

/// Why the handles could not be built; each names the part that failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("secrets: {0}")]
    Secrets(SecretError),
    #[error("Entra credential: {0}")]
    Credential(SecretError),
    #[error("HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("warehouse: {0}")]
    Warehouse(#[from] crate::warehouse::WarehouseError),
    #[error("{0}")]
    Connection(#[from] ConnectError),
}

impl AppState {
    /// The handles the settings ask for, with the secret source the entry point made from them
    /// (the tests hand theirs in).
    pub fn build(config: &Config, secrets: Arc<dyn SecretSource>) -> Result<Self, BuildError> {
        Ok(Self {
            coincap: Arc::new(CoinCapClient::new(config.coincap.clone())?),
            warehouse: warehouse(config, Arc::clone(&secrets))?,
            secrets,
        })
    }
}

/// Opens the configured warehouse: creates the SQLite tables on first use, or builds the SQL
/// connection pool (which connects on first use).
fn warehouse(
    config: &Config,
    secrets: Arc<dyn SecretSource>,
) -> Result<Arc<dyn Warehouse>, BuildError> {
    Ok(match &config.warehouse {
        WarehouseConfig::Sqlite(path) => Arc::new(SqliteWarehouse::open(path)?),
        WarehouseConfig::Sql => Arc::new(SqlWarehouse::new(
            config.sql.clone(),
            secrets,
            entra_tokens(config)?,
        )),
    })
}

/// Where rows go, for sentences: `the SQLite file coincap.db`, or `database coincap on
/// myws.sql.azuresynapse.net:1433 (login from SQL_CONNECTION_STRING)`. Reads the connection
/// string (from `secrets`, never shown) for its host and database, so a missing one is named here.
pub async fn rows_destination(
    config: &Config,
    secrets: &Arc<dyn SecretSource>,
) -> Result<String, BuildError> {
    Ok(match &config.warehouse {
        WarehouseConfig::Sqlite(path) => format!("the SQLite file {}", path.display()),
        WarehouseConfig::Sql => TdsManager::new(config.sql.clone(), Arc::clone(secrets), None)
            .target()
            .await?
            .to_string(),
    })
}

/// Connections to the SQL database the settings name, for `init-warehouse`.
pub fn sql_manager(config: &Config) -> Result<TdsManager, BuildError> {
    let secrets = secrets::source(&config.secrets).map_err(BuildError::Secrets)?;
    sql_manager_with(config, secrets)
}

/// The same with a given secret source (`handler check` reads each secret once, through it).
pub fn sql_manager_with(
    config: &Config,
    secrets: Arc<dyn SecretSource>,
) -> Result<TdsManager, BuildError> {
    Ok(TdsManager::new(
        config.sql.clone(),
        secrets,
        entra_tokens(config)?,
    ))
}

/// The Entra credential, only when the SQL login is passwordless (`SQL_SERVER`).
fn entra_tokens(config: &Config) -> Result<Option<Arc<dyn TokenSource>>, BuildError> {
    match config.sql.login {
        SqlLogin::Entra { .. } => secrets::entra_tokens(&config.secrets)
            .map(Some)
            .map_err(BuildError::Credential),
        SqlLogin::ConnectionString => Ok(None),
    }
}

/// The secrets these settings read: the CoinCap key, and the connection string when the SQL
/// warehouse logs in with one.
pub fn needed_secrets(config: &Config) -> Vec<SecretName> {
    let mut needed = vec![SecretName::CoinCapApiKey];
    if config.warehouse == WarehouseConfig::Sql && config.sql.login == SqlLogin::ConnectionString {
        needed.push(SecretName::SqlConnectionString);
    }
    needed
}

/// A secret as `check` names it: `secret COINCAP_API_KEY`, or `secret "coincap-api-key" (named
/// by COINCAP_API_KEY_SECRET)` in a vault.
pub fn secret_what(config: &Config, name: SecretName) -> String {
    match &config.secrets.key_vault_url {
        Some(_) => format!(
            "secret \"{}\" (named by {})",
            config.secrets.vault_names.get(name),
            name.vault_name_setting()
        ),
        None => format!("secret {}", name.env_var()),
    }
}

/// The needed secrets `secrets` cannot give (from the environment or the vault), each with its
/// line exactly as `check` prints it after `FAIL  `: `serve` (without a vault) and `local` refuse
/// to start with these words.
pub async fn unreadable_secrets(
    config: &Config,
    secrets: &Arc<dyn SecretSource>,
) -> Vec<(SecretName, String)> {
    let mut unreadable = Vec::new();
    for name in needed_secrets(config) {
        if let Err(error) = secrets.get(name).await {
            let line = format!(
                "{}: {}",
                secret_what(config, name),
                error.fault().detail(&error)
            );
            unreadable.push((name, line));
        }
    }
    unreadable
}
