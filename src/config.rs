//! Typed settings read from the environment (the Function App's app settings), assembled from the
//! settings type each module owns. Secret values are never kept here: only where they come from
//! (see [`crate::secrets`]).

use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;

use crate::coincap::credits::{self, DEFAULT_MONTHLY_CREDITS};
use crate::coincap::{CoinCapConfig, DEFAULT_COINCAP_BASE_URL, MAX_COINCAP_LIMIT};
use crate::secrets::{EnvVars, SecretName, SecretsConfig, VaultNames, VaultSecretName};
use crate::warehouse::WarehouseConfig;
use crate::warehouse::sql::{BulkLoadSetting, SqlConfig, SqlLogin};

mod ignored;
mod names;

pub use ignored::Ignored;
pub use names::{RENAMED, Renamed, SETTINGS};

/// Which command is running: the defaults differ (serve targets the SQL warehouse, local a SQLite
/// file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Local,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("setting {setting}={value:?} is invalid: {reason}")]
    Invalid {
        setting: &'static str,
        value: String,
        reason: String,
    },
    /// Both names of a renamed setting hold different values. Neither value is shown: one of
    /// them may be a secret (`SQL_CONNECTION_STRING`).
    #[error(
        "settings {name} and {old} are both set, to different values: {name} replaces {old}, so set only {name} (or give both the same value)"
    )]
    Conflict {
        name: &'static str,
        old: &'static str,
    },
    /// A setting that others need is not set.
    #[error("{setting} is not set: {reason}")]
    Missing {
        setting: &'static str,
        reason: String,
    },
}

impl ConfigError {
    /// The setting to fix.
    pub fn setting(&self) -> &'static str {
        match self {
            Self::Invalid { setting, .. } | Self::Missing { setting, .. } => setting,
            Self::Conflict { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `FUNCTIONS_CUSTOMHANDLER_PORT`, set by the host.
    pub port: u16,
    pub coincap: CoinCapConfig,
    pub warehouse: WarehouseConfig,
    /// The `SQL_*` settings of the SQL warehouse (module `warehouse::sql` writes to every
    /// SQL Server-family engine).
    pub sql: SqlConfig,
    /// Six-field NCRONTAB, as the timer binding reads it.
    pub fetch_schedule: String,
    pub event_hub_name: String,
    pub consumer_group: String,
    pub secrets: SecretsConfig,
    /// Renamed settings that were read under their old name (start-up logs a hint for each).
    pub old_names: Vec<Renamed>,
    /// Settings that are set but that nothing reads with the others as they are (and, once the
    /// start-up reading has seen `--every`, `FETCH_SCHEDULE`).
    pub ignored: Vec<Ignored>,
}

/// Hourly, 10 assets a call: about 1,488 credits in a 31-day month, within the free plan's 2,500.
pub const DEFAULT_FETCH_SCHEDULE: &str = "0 0 * * * *";
pub const DEFAULT_COINCAP_LIMIT: &str = "10";

impl Config {
    /// The settings of this process's environment; logs one hint per setting read under its
    /// old name ([`Config::log_old_names`]).
    pub fn from_env(mode: Mode) -> Result<Self, ConfigError> {
        let config = Self::from_lookup(mode, |key| std::env::var(key).ok())?;
        config.log_old_names();
        Ok(config)
    }

    /// Logs the hint for each setting read under its old name (the name only, never the value).
    pub fn log_old_names(&self) {
        for renamed in &self.old_names {
            tracing::warn!(old = renamed.old, new = renamed.name, "{renamed}.");
        }
    }

    /// Reads settings through `lookup` (the environment in production, a map in tests). Empty
    /// values count as unset, as the portal leaves them.
    pub fn from_lookup(
        mode: Mode,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let settings = Settings { lookup: &lookup };
        let old_names = settings.renamed()?;
        let default_warehouse = match mode {
            Mode::Serve => "sql",
            Mode::Local => "sqlite:coincap.db",
        };
        let mut config = Self {
            port: settings.parse("FUNCTIONS_CUSTOMHANDLER_PORT", "3000", |v| {
                u16::from_str(v).map_err(|e| e.to_string())
            })?,
            coincap: coincap(&settings)?,
            warehouse: settings.parse("WAREHOUSE", default_warehouse, WarehouseConfig::from_str)?,
            sql: sql(&settings)?,
            fetch_schedule: settings
                .get("FETCH_SCHEDULE")
                .unwrap_or_else(|| DEFAULT_FETCH_SCHEDULE.to_owned()),
            event_hub_name: settings
                .get("EVENT_HUB_NAME")
                .unwrap_or_else(|| "coincaphub".to_owned()),
            consumer_group: settings
                .get("EVENT_HUB_CONSUMER_GROUP")
                .unwrap_or_else(|| "$Default".to_owned()),
            secrets: secrets(&settings)?,
            old_names,
            ignored: Vec::new(),
        };
        config.ignored = ignored::ignored(&settings, &config, mode);
        Ok(config)
    }
}

/// The settings as read: empty values count as unset, and a renamed setting answers under its
/// old name while its new one is unset.
struct Settings<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Settings<'_> {
    fn raw(&self, key: &str) -> Option<String> {
        (self.lookup)(key).filter(|v| !v.trim().is_empty())
    }

    /// The value of `setting` and the name it was found under.
    fn read(&self, setting: &'static str) -> Option<(&'static str, String)> {
        if let Some(value) = self.raw(setting) {
            return Some((setting, value));
        }
        let old = RENAMED.iter().find(|r| r.name == setting)?.old;
        self.raw(old).map(|value| (old, value))
    }

    fn get(&self, setting: &'static str) -> Option<String> {
        self.read(setting).map(|(_, value)| value)
    }

    /// `setting` (or `default`) parsed; an error names the setting the value was read under.
    fn parse<T>(
        &self,
        setting: &'static str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let (setting, value) = self
            .read(setting)
            .unwrap_or_else(|| (setting, default.to_owned()));
        parse(value.trim()).map_err(|reason| ConfigError::Invalid {
            setting,
            value,
            reason,
        })
    }

    /// The renamed settings set only under their old name; an error when a setting is set under
    /// both names to different values (compared, never kept: one may be a secret).
    fn renamed(&self) -> Result<Vec<Renamed>, ConfigError> {
        let mut old_names = Vec::new();
        for renamed in RENAMED {
            match (self.raw(renamed.name), self.raw(renamed.old)) {
                (Some(new), Some(old)) if new.trim() != old.trim() => {
                    return Err(ConfigError::Conflict {
                        name: renamed.name,
                        old: renamed.old,
                    });
                }
                (None, Some(_)) => old_names.push(*renamed),
                _ => {}
            }
        }
        Ok(old_names)
    }
}

/// The `COINCAP_*` settings.
fn coincap(settings: &Settings) -> Result<CoinCapConfig, ConfigError> {
    Ok(CoinCapConfig {
        base_url: settings.parse("COINCAP_BASE_URL", DEFAULT_COINCAP_BASE_URL, parse_base_url)?,
        limit: settings.parse(
            "COINCAP_LIMIT",
            DEFAULT_COINCAP_LIMIT,
            |v| match u32::from_str(v) {
                Ok(n) if (1..=MAX_COINCAP_LIMIT).contains(&n) => Ok(n),
                _ => Err(format!(
                    "expected a whole number from 1 to {MAX_COINCAP_LIMIT}"
                )),
            },
        )?,
        ids: settings
            .get("COINCAP_IDS")
            .map(|ids| ids.split(',').map(str::trim).collect::<Vec<_>>().join(",")),
        timeout: settings.parse("COINCAP_TIMEOUT", "10s", duration)?,
        max_retries: settings.parse("COINCAP_MAX_RETRIES", "4", |v| {
            u32::from_str(v).map_err(|e| e.to_string())
        })?,
        retry_base: settings.parse("COINCAP_RETRY_BASE", "500ms", duration)?,
        retry_budget: settings.parse("COINCAP_RETRY_BUDGET", "60s", duration)?,
        monthly_credits: settings.parse(
            "COINCAP_MONTHLY_CREDITS",
            &DEFAULT_MONTHLY_CREDITS.to_string(),
            credits::parse_budget,
        )?,
    })
}

/// The `SQL_*` settings (the connection string itself is a secret, read by the writer).
fn sql(settings: &Settings) -> Result<SqlConfig, ConfigError> {
    let alone = |set: &str, missing: &'static str| ConfigError::Missing {
        setting: missing,
        reason: format!(
            "{set} is set, and passwordless login needs both SQL_SERVER and SQL_DATABASE. With a connection string (SQL_CONNECTION_STRING), name the database in it (Database=...) and unset {set}"
        ),
    };
    let login = match (settings.read("SQL_SERVER"), settings.read("SQL_DATABASE")) {
        (Some((_, server)), Some((_, database))) => SqlLogin::Entra { server, database },
        (None, None) => SqlLogin::ConnectionString,
        (Some((set, _)), None) => return Err(alone(set, "SQL_DATABASE")),
        (None, Some((set, _))) => return Err(alone(set, "SQL_SERVER")),
    };
    Ok(SqlConfig {
        login,
        pool_size: settings.parse("SQL_POOL_SIZE", "4", |v| match u32::from_str(v) {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => Err("expected a whole number from 1 to 64".into()),
        })?,
        command_timeout: settings.parse("SQL_COMMAND_TIMEOUT", "120s", duration)?,
        idle_timeout: settings.parse("SQL_IDLE_TIMEOUT", "1m", |v| {
            SqlConfig::idle_timeout(duration(v)?)
        })?,
        auto_pause_delay: match settings.get("SQL_AUTO_PAUSE_DELAY") {
            None => None,
            Some(_) => Some(settings.parse("SQL_AUTO_PAUSE_DELAY", "", |v| {
                SqlConfig::auto_pause_delay(duration(v)?)
            })?),
        },
        bulk_load: settings.parse("SQL_BULK_LOAD", "auto", BulkLoadSetting::from_str)?,
    })
}

/// Where secrets come from: the vault's address, the secrets' names and the variables holding
/// them, never values.
fn secrets(settings: &Settings) -> Result<SecretsConfig, ConfigError> {
    let (sql_connection_string, sql_connection_string_fallback) =
        vault_name(settings, SecretName::SqlConnectionString)?;
    Ok(SecretsConfig {
        key_vault_url: match settings.get("KEY_VAULT_URL") {
            None => None,
            Some(_) => Some(settings.parse("KEY_VAULT_URL", "", parse_key_vault_url)?),
        },
        vault_names: VaultNames {
            coincap_api_key: vault_name(settings, SecretName::CoinCapApiKey)?.0,
            sql_connection_string,
            sql_connection_string_fallback,
        },
        env_vars: EnvVars {
            coincap_api_key: env_var(settings, SecretName::CoinCapApiKey),
            sql_connection_string: env_var(settings, SecretName::SqlConnectionString),
        },
        ttl: settings.parse("SECRET_TTL", "15m", |v| match duration(v)? {
            ttl if ttl.is_zero() => Err("must be longer than 0".into()),
            ttl => Ok(ttl),
        })?,
        azure_client_id: settings
            .get("AZURE_CLIENT_ID")
            .map(|id| id.trim().to_owned()),
    })
}

/// The secret's name in the vault and, when no setting names it, its old default name to read
/// if the vault lacks the current one (a vault set up before the rename keeps working).
fn vault_name(
    settings: &Settings,
    name: SecretName,
) -> Result<(VaultSecretName, Option<VaultSecretName>), ConfigError> {
    let setting = name.vault_name_setting();
    let named = settings.parse(setting, name.default_vault_name(), VaultSecretName::parse)?;
    if settings.read(setting).is_some() {
        return Ok((named, None));
    }
    let fallback = name.old_default_vault_name().map(|old| {
        VaultSecretName::parse(old).map_err(|reason| ConfigError::Invalid {
            setting,
            value: old.to_owned(),
            reason,
        })
    });
    Ok((named, fallback.transpose()?))
}

/// The variable the secret is read from without a vault: the one that is set (its current name
/// unless only the old one is), else the current name, which errors then name.
fn env_var(settings: &Settings, name: SecretName) -> &'static str {
    settings
        .read(name.env_var())
        .map_or(name.env_var(), |(var, _)| var)
}

/// `https://<vault>.vault.azure.net/`. Only https: the SDK sends no token over plain http.
fn parse_key_vault_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| e.to_string())?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err("expected https://<vault>.vault.azure.net/".into());
    }
    if url.path() != "/" || url.query().is_some() {
        return Err("expected the vault's address alone, https://<vault>.vault.azure.net/".into());
    }
    Ok(url)
}

/// `10s`, `500ms`, `2m`: humantime's forms.
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 10s, 500ms, 2m)"))
}

fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("expected an http(s) URL".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn config(mode: Mode, settings: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(mode, |key| map.get(key).cloned())
    }

    #[test]
    fn defaults_work_locally() {
        let config = config(Mode::Local, &[]).unwrap();
        assert_eq!(config.port, 3000);
        assert_eq!(
            config.coincap.base_url.as_str(),
            "https://rest.coincap.io/v3"
        );
        assert_eq!(config.coincap.limit, 10);
        assert_eq!(config.coincap.monthly_credits, 2500, "the free plan's");
        assert_eq!(
            config.warehouse,
            WarehouseConfig::Sqlite(PathBuf::from("coincap.db"))
        );
        assert_eq!(config.fetch_schedule, "0 0 * * * *", "hourly");
        assert_eq!(config.sql.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.sql.auto_pause_delay, None);
    }

    #[test]
    fn serve_mode_defaults_to_the_sql_warehouse() {
        assert_eq!(
            config(Mode::Serve, &[]).unwrap().warehouse,
            WarehouseConfig::Sql
        );
        for value in ["sql", "synapse"] {
            assert_eq!(
                config(Mode::Local, &[("WAREHOUSE", value)])
                    .unwrap()
                    .warehouse,
                WarehouseConfig::Sql,
                "{value}"
            );
        }
    }

    #[test]
    fn settings_override_defaults() {
        let config = config(
            Mode::Serve,
            &[
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "41000"),
                ("COINCAP_LIMIT", "2000"),
                ("COINCAP_IDS", "bitcoin, ethereum"),
                ("COINCAP_TIMEOUT", "250ms"),
                ("WAREHOUSE", "sqlite:/tmp/x.db"),
                ("EVENT_HUB_NAME", ""),
            ],
        )
        .unwrap();
        assert_eq!(config.port, 41000);
        assert_eq!(config.coincap.limit, 2000);
        assert_eq!(config.coincap.ids.as_deref(), Some("bitcoin,ethereum"));
        assert_eq!(config.coincap.timeout, Duration::from_millis(250));
        assert_eq!(
            config.warehouse,
            WarehouseConfig::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(config.event_hub_name, "coincaphub", "empty counts as unset");
    }

    #[test]
    fn every_setting_is_listed_once() {
        let unique: std::collections::HashSet<_> = SETTINGS.iter().collect();
        assert_eq!(unique.len(), SETTINGS.len(), "{SETTINGS:?}");
    }

    #[test]
    fn every_setting_read_is_a_documented_one() {
        let asked = std::sync::Mutex::new(Vec::new());
        Config::from_lookup(Mode::Serve, |key| {
            asked.lock().unwrap().push(key.to_owned());
            None
        })
        .unwrap();
        let mut asked = asked.into_inner().unwrap();
        asked.extend(SecretName::ALL.map(|name| name.env_var().to_owned()));
        for key in asked {
            assert!(
                SETTINGS.contains(&key.as_str()) || RENAMED.iter().any(|r| r.old == key),
                "{key} is read but neither in SETTINGS nor an old name in RENAMED"
            );
        }
    }

    #[test]
    fn every_renamed_setting_replaces_a_listed_one_and_old_names_are_not_listed() {
        for renamed in RENAMED {
            assert!(SETTINGS.contains(&renamed.name), "{renamed:?}");
            assert!(!SETTINGS.contains(&renamed.old), "{renamed:?}");
            assert!(renamed.old.starts_with("SYNAPSE_"), "{renamed:?}");
            assert_eq!(
                renamed.name.strip_prefix("SQL_"),
                renamed.old.strip_prefix("SYNAPSE_"),
                "the same setting under its new name: {renamed:?}"
            );
        }
        for name in SecretName::ALL {
            let old = RENAMED.iter().find(|r| r.name == name.vault_name_setting());
            assert_eq!(
                old.is_some(),
                name == SecretName::SqlConnectionString,
                "{name:?}"
            );
        }
    }

    #[test]
    fn the_example_settings_file_lists_every_setting_without_secret_values() {
        let example: serde_json::Value =
            serde_json::from_str(include_str!("../local.settings.json.example")).unwrap();
        let values = example["Values"].as_object().unwrap();
        for setting in SETTINGS
            .iter()
            .filter(|s| **s != "FUNCTIONS_CUSTOMHANDLER_PORT")
        {
            assert!(
                values.contains_key(*setting),
                "{setting} missing from local.settings.json.example"
            );
        }
        for name in SecretName::ALL {
            assert_eq!(values[name.env_var()], "", "no secret value in the example");
        }
        for renamed in RENAMED {
            assert!(
                !values.contains_key(renamed.old),
                "{}: the example uses the new name {}",
                renamed.old,
                renamed.name
            );
        }
        assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "custom");
    }

    #[test]
    fn the_readme_documents_every_setting() {
        let readme = include_str!("../README.md");
        for setting in SETTINGS {
            assert!(
                readme.contains(&format!("| `{setting}` |")),
                "{setting} missing from the README's table"
            );
        }
        for renamed in RENAMED {
            let row = readme
                .lines()
                .find(|line| line.starts_with(&format!("| `{}` |", renamed.name)))
                .unwrap();
            assert!(
                row.contains(&format!("Replaces `{}`", renamed.old)),
                "the README's row of {} names the old name it replaces: {row}",
                renamed.name
            );
        }
    }

    #[test]
    fn sql_login_is_passwordless_when_server_and_database_are_set() {
        let config = config(
            Mode::Serve,
            &[
                ("SQL_SERVER", "coincap.database.windows.net"),
                ("SQL_DATABASE", "coincap"),
            ],
        )
        .unwrap();
        assert_eq!(
            config.sql.login,
            SqlLogin::Entra {
                server: "coincap.database.windows.net".into(),
                database: "coincap".into()
            }
        );
        assert_eq!(config.sql.command_timeout, Duration::from_secs(120));
        assert_eq!(config.sql.pool_size, 4);
        assert!(config.old_names.is_empty());
        assert_eq!(
            self::config(Mode::Serve, &[]).unwrap().sql.login,
            SqlLogin::ConnectionString
        );
        let error = self::config(Mode::Serve, &[("SQL_SERVER", "ws")]).unwrap_err();
        assert_eq!(error.setting(), "SQL_DATABASE");
        let error = self::config(Mode::Serve, &[("SYNAPSE_DATABASE", "pool1")]).unwrap_err();
        assert_eq!(error.setting(), "SQL_SERVER");
        assert!(
            error
                .to_string()
                .starts_with("SQL_SERVER is not set: SYNAPSE_DATABASE is set,"),
            "{error}"
        );
        let error = self::config(
            Mode::Serve,
            &[
                ("SQL_DATABASE", "coincap"),
                ("SQL_CONNECTION_STRING", "Server=tcp:h,1433"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "SQL_SERVER is not set: SQL_DATABASE is set, and passwordless login needs both SQL_SERVER and SQL_DATABASE. With a connection string (SQL_CONNECTION_STRING), name the database in it (Database=...) and unset SQL_DATABASE",
            "no empty value of a setting that was never set"
        );
    }

    /// Every renamed setting with a valid value, under the given name of each.
    fn renamed_settings(old: bool) -> Vec<(&'static str, &'static str)> {
        RENAMED
            .iter()
            .map(|r| {
                let value = match r.name {
                    "SQL_CONNECTION_STRING_SECRET" => "warehouse-login",
                    "SQL_CONNECTION_STRING" => "Server=tcp:db,1433;Password=s3cret",
                    "SQL_SERVER" => "ws.sql.azuresynapse.net",
                    "SQL_DATABASE" => "pool1",
                    "SQL_POOL_SIZE" => "9",
                    "SQL_COMMAND_TIMEOUT" => "3m",
                    other => panic!("give {other} a value in this test"),
                };
                (if old { r.old } else { r.name }, value)
            })
            .collect()
    }

    fn assert_renamed_settings_took_effect(config: &Config) {
        assert_eq!(
            config.sql,
            SqlConfig {
                login: SqlLogin::Entra {
                    server: "ws.sql.azuresynapse.net".into(),
                    database: "pool1".into()
                },
                pool_size: 9,
                command_timeout: Duration::from_secs(180),
                idle_timeout: Duration::from_secs(60),
                auto_pause_delay: None,
                bulk_load: BulkLoadSetting::Auto,
            }
        );
        assert_eq!(
            config.secrets.vault_names.sql_connection_string.as_str(),
            "warehouse-login"
        );
        assert_eq!(
            config.secrets.vault_names.sql_connection_string_fallback,
            None
        );
    }

    #[test]
    fn the_new_sql_names_are_read() {
        let config = config(Mode::Serve, &renamed_settings(false)).unwrap();
        assert_renamed_settings_took_effect(&config);
        assert_eq!(
            config.secrets.env_vars.sql_connection_string,
            "SQL_CONNECTION_STRING"
        );
        assert!(config.old_names.is_empty());
    }

    #[test]
    fn the_old_synapse_names_still_work_and_are_reported_for_a_hint() {
        let config = config(Mode::Serve, &renamed_settings(true)).unwrap();
        assert_renamed_settings_took_effect(&config);
        assert_eq!(
            config.secrets.env_vars.sql_connection_string, "SYNAPSE_CONNECTION_STRING",
            "the connection string is read from the variable that holds it"
        );
        assert_eq!(config.old_names, RENAMED);
    }

    #[test]
    fn both_names_with_the_same_value_are_fine_and_the_new_one_is_used() {
        let mut settings = renamed_settings(false);
        settings.extend(renamed_settings(true));
        let config = config(Mode::Serve, &settings).unwrap();
        assert_renamed_settings_took_effect(&config);
        assert_eq!(
            config.secrets.env_vars.sql_connection_string,
            "SQL_CONNECTION_STRING"
        );
        assert!(config.old_names.is_empty(), "nothing to rename");
        let padded = self::config(
            Mode::Serve,
            &[("SQL_POOL_SIZE", "9"), ("SYNAPSE_POOL_SIZE", " 9 ")],
        );
        assert!(padded.is_ok(), "values are compared as read: {padded:?}");
    }

    #[test]
    fn both_names_with_different_values_stop_start_up_naming_both_and_neither_value() {
        for renamed in RENAMED {
            let error = config(
                Mode::Serve,
                &[
                    (renamed.name, "value-one-31f"),
                    (renamed.old, "value-two-8c2"),
                ],
            )
            .unwrap_err();
            assert_eq!(
                error,
                ConfigError::Conflict {
                    name: renamed.name,
                    old: renamed.old
                }
            );
            assert_eq!(error.setting(), renamed.name);
            let message = error.to_string();
            assert!(message.contains(renamed.name), "{message}");
            assert!(message.contains(renamed.old), "{message}");
            assert!(
                !message.contains("value-one") && !message.contains("value-two"),
                "a value may be a secret: {message}"
            );
        }
    }

    #[test]
    fn a_bad_value_under_an_old_name_is_reported_under_that_name() {
        let error = config(Mode::Serve, &[("SYNAPSE_POOL_SIZE", "lots")]).unwrap_err();
        assert_eq!(error.setting(), "SYNAPSE_POOL_SIZE");
        let error = config(Mode::Serve, &[("SQL_COMMAND_TIMEOUT", "soon")]).unwrap_err();
        assert_eq!(error.setting(), "SQL_COMMAND_TIMEOUT");
    }

    #[test]
    fn secrets_come_from_the_environment_unless_a_vault_is_set() {
        let secrets = config(Mode::Serve, &[]).unwrap().secrets;
        assert_eq!(secrets.key_vault_url, None);
        assert_eq!(
            secrets.vault_names.coincap_api_key.as_str(),
            "coincap-api-key"
        );
        assert_eq!(secrets.env_vars, EnvVars::default());
        assert_eq!(secrets.ttl, Duration::from_secs(15 * 60));
        assert_eq!(secrets.azure_client_id, None);
    }

    #[test]
    fn the_connection_string_s_vault_name_defaults_to_sql_then_its_old_default() {
        // Decision: the new default is sql-connection-string; a vault set up for an earlier
        // version holds synapse-connection-string, which is read when the new name is absent.
        let names = config(Mode::Serve, &[]).unwrap().secrets.vault_names;
        assert_eq!(
            names.sql_connection_string.as_str(),
            "sql-connection-string"
        );
        assert_eq!(
            names
                .fallback(SecretName::SqlConnectionString)
                .map(VaultSecretName::as_str),
            Some("synapse-connection-string")
        );
        assert_eq!(names.fallback(SecretName::CoinCapApiKey), None);
        // A name given by either setting is the only one read.
        for setting in [
            "SQL_CONNECTION_STRING_SECRET",
            "SYNAPSE_CONNECTION_STRING_SECRET",
        ] {
            let names = config(Mode::Serve, &[(setting, "synapse-connection-string")])
                .unwrap()
                .secrets
                .vault_names;
            assert_eq!(
                names.sql_connection_string.as_str(),
                "synapse-connection-string",
                "{setting}"
            );
            assert_eq!(names.sql_connection_string_fallback, None, "{setting}");
        }
    }

    #[test]
    fn vault_settings_override_the_secret_defaults() {
        let secrets = config(
            Mode::Serve,
            &[
                ("KEY_VAULT_URL", " https://kv-coincap.vault.azure.net "),
                ("COINCAP_API_KEY_SECRET", "coincap-key-prod"),
                ("SQL_CONNECTION_STRING_SECRET", "sql-prod"),
                ("SECRET_TTL", "5m"),
                ("AZURE_CLIENT_ID", "0b4a1a4e-0000-4000-8000-000000000000"),
            ],
        )
        .unwrap()
        .secrets;
        assert_eq!(
            secrets.key_vault_url.unwrap().as_str(),
            "https://kv-coincap.vault.azure.net/"
        );
        assert_eq!(
            secrets.vault_names.coincap_api_key.as_str(),
            "coincap-key-prod"
        );
        assert_eq!(
            secrets.vault_names.sql_connection_string.as_str(),
            "sql-prod"
        );
        assert_eq!(secrets.ttl, Duration::from_secs(300));
        assert_eq!(
            secrets.azure_client_id.as_deref(),
            Some("0b4a1a4e-0000-4000-8000-000000000000")
        );
    }

    #[test]
    fn a_vault_url_must_be_the_https_address_of_the_vault() {
        for bad in [
            "http://kv-coincap.vault.azure.net/",
            "kv-coincap",
            "https://kv-coincap.vault.azure.net/secrets/coincap-api-key",
        ] {
            let error = config(Mode::Serve, &[("KEY_VAULT_URL", bad)]).unwrap_err();
            assert_eq!(error.setting(), "KEY_VAULT_URL", "{bad}");
        }
        assert!(config(Mode::Serve, &[("KEY_VAULT_URL", "https://127.0.0.1:8443")]).is_ok());
    }

    #[test]
    fn a_bad_secret_name_or_ttl_is_rejected_at_start_up() {
        let error = config(Mode::Serve, &[("COINCAP_API_KEY_SECRET", "coincap_key")]).unwrap_err();
        assert_eq!(error.setting(), "COINCAP_API_KEY_SECRET");
        let error = config(Mode::Serve, &[("SECRET_TTL", "0s")]).unwrap_err();
        assert_eq!(error.setting(), "SECRET_TTL");
        assert!(config(Mode::Serve, &[("SECRET_TTL", "soon")]).is_err());
    }

    fn ignored(mode: Mode, settings: &[(&str, &str)]) -> Vec<String> {
        config(mode, settings)
            .unwrap()
            .ignored
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn sql_settings_beside_a_sqlite_warehouse_are_ignored_and_said_so() {
        let said = ignored(
            Mode::Local,
            &[
                ("SQL_CONNECTION_STRING", "Server=tcp:h,1433;Password=p"),
                ("SYNAPSE_POOL_SIZE", "8"),
            ],
        );
        assert_eq!(
            said,
            [
                "SQL_CONNECTION_STRING is set but ignored: WAREHOUSE=sqlite:coincap.db writes into a SQLite file; set WAREHOUSE=sql to write into the SQL database",
                "SYNAPSE_POOL_SIZE is set but ignored: WAREHOUSE=sqlite:coincap.db writes into a SQLite file; set WAREHOUSE=sql to write into the SQL database",
            ]
        );
        assert!(ignored(Mode::Local, &[]).is_empty());
        assert!(
            ignored(
                Mode::Serve,
                &[("SQL_CONNECTION_STRING", "Server=tcp:h,1433;Password=p")]
            )
            .is_empty(),
            "serve writes into the SQL database by default"
        );
    }

    #[test]
    fn a_connection_string_beside_passwordless_login_is_ignored_and_said_so() {
        let said = ignored(
            Mode::Serve,
            &[
                ("SQL_SERVER", "s.database.windows.net"),
                ("SQL_DATABASE", "coincap"),
                ("SQL_CONNECTION_STRING", "Server=tcp:h,1433;Password=p"),
                ("AZURE_CLIENT_ID", "0b4a1a4e-0000-4000-8000-000000000000"),
            ],
        );
        assert_eq!(
            said,
            [
                "SQL_CONNECTION_STRING is set but ignored: SQL_SERVER and SQL_DATABASE are set, so the login is passwordless and no connection string is read; unset them to use the connection string"
            ],
            "AZURE_CLIENT_ID picks the identity of the passwordless login"
        );
    }

    #[test]
    fn secrets_settings_of_the_other_source_are_ignored_and_said_so() {
        let said = ignored(
            Mode::Serve,
            &[
                ("KEY_VAULT_URL", "https://kv.vault.azure.net/"),
                ("COINCAP_API_KEY", "k"),
                ("SQL_CONNECTION_STRING", "Server=tcp:h,1433;Password=p"),
            ],
        );
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("COINCAP_API_KEY is set but ignored: KEY_VAULT_URL is set"));
        let said = ignored(
            Mode::Local,
            &[
                ("COINCAP_API_KEY_SECRET", "k"),
                ("SECRET_TTL", "1m"),
                ("AZURE_CLIENT_ID", "x"),
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "7000"),
            ],
        );
        let settings: Vec<&str> = said
            .iter()
            .map(|line| line.split_once(' ').unwrap().0)
            .collect();
        assert_eq!(
            settings,
            [
                "COINCAP_API_KEY_SECRET",
                "SECRET_TTL",
                "AZURE_CLIENT_ID",
                "FUNCTIONS_CUSTOMHANDLER_PORT"
            ]
        );
    }

    #[test]
    fn the_idle_timeout_and_the_auto_pause_delay_are_read_and_bounded() {
        let sql = config(
            Mode::Serve,
            &[("SQL_IDLE_TIMEOUT", "45s"), ("SQL_AUTO_PAUSE_DELAY", "15m")],
        )
        .unwrap()
        .sql;
        assert_eq!(sql.idle_timeout, Duration::from_secs(45));
        assert_eq!(sql.auto_pause_delay, Some(Duration::from_secs(900)));
        let longest = config(Mode::Serve, &[("SQL_AUTO_PAUSE_DELAY", "10080m")]).unwrap();
        assert_eq!(
            longest.sql.auto_pause_delay,
            Some(Duration::from_secs(10_080 * 60))
        );
        for (setting, bad) in [
            ("SQL_AUTO_PAUSE_DELAY", "10081m"),
            ("SQL_AUTO_PAUSE_DELAY", "18446744073709551615s"),
            ("SQL_IDLE_TIMEOUT", "0s"),
            ("SQL_IDLE_TIMEOUT", "30m"),
            ("SQL_IDLE_TIMEOUT", "soon"),
            ("SQL_AUTO_PAUSE_DELAY", "10m"),
            ("SQL_AUTO_PAUSE_DELAY", "later"),
        ] {
            let error = config(Mode::Serve, &[(setting, bad)]).unwrap_err();
            assert_eq!(error.setting(), setting, "{bad}");
        }
    }

    #[test]
    fn bulk_load_is_auto_unless_turned_off() {
        let bulk =
            |settings: &[(&str, &str)]| config(Mode::Serve, settings).map(|c| c.sql.bulk_load);
        assert_eq!(bulk(&[]), Ok(BulkLoadSetting::Auto));
        assert_eq!(bulk(&[("SQL_BULK_LOAD", "off")]), Ok(BulkLoadSetting::Off));
        assert_eq!(
            bulk(&[("SQL_BULK_LOAD", " AUTO ")]),
            Ok(BulkLoadSetting::Auto)
        );
        let error = bulk(&[("SQL_BULK_LOAD", "on")]).unwrap_err();
        assert_eq!(error.setting(), "SQL_BULK_LOAD");
        assert!(error.to_string().contains("expected auto"), "{error}");
    }

    #[test]
    fn the_monthly_credits_are_a_whole_number_of_at_least_one() {
        let coincap = config(Mode::Local, &[("COINCAP_MONTHLY_CREDITS", "40000")])
            .unwrap()
            .coincap;
        assert_eq!(coincap.monthly_credits, 40_000);
        for bad in ["0", "-5", "lots", "2.5k"] {
            let error = config(Mode::Local, &[("COINCAP_MONTHLY_CREDITS", bad)]).unwrap_err();
            assert_eq!(error.setting(), "COINCAP_MONTHLY_CREDITS", "{bad}");
        }
    }

    #[test]
    fn bad_values_name_the_setting() {
        let error = config(Mode::Local, &[("COINCAP_LIMIT", "5000")]).unwrap_err();
        assert_eq!(error.setting(), "COINCAP_LIMIT");
        assert!(config(Mode::Local, &[("COINCAP_TIMEOUT", "soon")]).is_err());
        assert!(config(Mode::Local, &[("COINCAP_BASE_URL", "ftp://x")]).is_err());
        assert!(config(Mode::Local, &[("WAREHOUSE", "postgres")]).is_err());
        assert!(config(Mode::Local, &[("FUNCTIONS_CUSTOMHANDLER_PORT", "70000")]).is_err());
    }
}
