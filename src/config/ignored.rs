//! The settings that are set but ignored with the others as they are: another warehouse, login
//! or secret source reads them, or none does in this mode.

use super::{Config, Mode, Settings};
use crate::warehouse::WarehouseConfig;
use crate::warehouse::sql::SqlLogin;

/// A setting that is set but ignored, and why: the chosen warehouse, login or secret source does
/// not read it. `check` warns about each, `local` prints them, `serve` logs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The name it is set under.
    pub setting: &'static str,
    pub why: String,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is set but ignored: {}", self.setting, self.why)
    }
}

impl Config {
    /// `sqlite:PATH` or `sql`, as `WAREHOUSE` would say it.
    pub fn warehouse_setting(&self) -> String {
        match &self.warehouse {
            WarehouseConfig::Sqlite(path) => format!("sqlite:{}", path.display()),
            WarehouseConfig::Sql => "sql".into(),
        }
    }
}

/// The settings that are set but ignored with the others as they are.
pub(super) fn ignored(settings: &Settings, config: &Config, mode: Mode) -> Vec<Ignored> {
    let mut ignored = Vec::new();
    let mut note = |setting: &'static str, why: String| {
        if let Some((name, _)) = settings.read(setting) {
            ignored.push(Ignored { setting: name, why });
        }
    };
    let vault = config.secrets.key_vault_url.is_some();
    let entra = matches!(config.sql.login, SqlLogin::Entra { .. });
    match &config.warehouse {
        WarehouseConfig::Sqlite(_) => {
            let why = format!(
                "WAREHOUSE={} writes into a SQLite file; set WAREHOUSE=sql to write into the SQL database",
                config.warehouse_setting()
            );
            // Every SQL_* setting is the SQL writer's.
            for setting in super::SETTINGS.iter().filter(|s| s.starts_with("SQL_")) {
                note(setting, why.clone());
            }
        }
        WarehouseConfig::Sql if entra => {
            let why = "SQL_SERVER and SQL_DATABASE are set, so the login is passwordless and no connection string is read; unset them to use the connection string";
            note("SQL_CONNECTION_STRING", why.into());
            note("SQL_CONNECTION_STRING_SECRET", why.into());
        }
        WarehouseConfig::Sql => {}
    }
    let sql_secret = config.warehouse == WarehouseConfig::Sql && !entra;
    if vault {
        let why = |secret: &str| {
            format!(
                "KEY_VAULT_URL is set, so secrets come from the vault (the secret named by {secret}), not from this variable"
            )
        };
        note("COINCAP_API_KEY", why("COINCAP_API_KEY_SECRET"));
        if sql_secret {
            note("SQL_CONNECTION_STRING", why("SQL_CONNECTION_STRING_SECRET"));
        }
    } else {
        let why = "KEY_VAULT_URL is not set, so secrets come from environment variables (COINCAP_API_KEY, SQL_CONNECTION_STRING)";
        note("COINCAP_API_KEY_SECRET", why.into());
        if sql_secret {
            note("SQL_CONNECTION_STRING_SECRET", why.into());
        }
        note("SECRET_TTL", why.into());
        if !(entra && config.warehouse == WarehouseConfig::Sql) {
            note(
                "AZURE_CLIENT_ID",
                "it picks the managed identity for Key Vault (KEY_VAULT_URL) and for passwordless SQL login (SQL_SERVER), and neither is used".into(),
            );
        }
    }
    if mode == Mode::Local {
        note(
            "FUNCTIONS_CUSTOMHANDLER_PORT",
            "`handler local` serves the functions on a free port of its own".into(),
        );
    }
    ignored
}
