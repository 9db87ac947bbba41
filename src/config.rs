//! Typed settings read from the environment (the Function App's app settings), assembled from the
//! settings type each module owns. Secret values are never read here: only where they come from
//! (see [`crate::secrets`]).

use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;

use crate::coincap::{CoinCapConfig, DEFAULT_COINCAP_BASE_URL, MAX_COINCAP_LIMIT};
use crate::secrets::{SecretName, SecretsConfig, VaultNames, VaultSecretName};
use crate::warehouse::WarehouseConfig;
use crate::warehouse::synapse::{SynapseConfig, SynapseLogin};

/// Which command is running: the defaults differ (serve targets Synapse, local a SQLite file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Local,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("setting {setting}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `FUNCTIONS_CUSTOMHANDLER_PORT`, set by the host.
    pub port: u16,
    pub coincap: CoinCapConfig,
    pub warehouse: WarehouseConfig,
    pub synapse: SynapseConfig,
    /// Six-field NCRONTAB, as the timer binding reads it.
    pub fetch_schedule: String,
    pub event_hub_name: String,
    pub consumer_group: String,
    pub secrets: SecretsConfig,
}

/// Every app setting the handler reads (secret values come through [`crate::secrets`]). The README's
/// configuration table and local.settings.json.example list exactly these; tests keep them in step.
pub const SETTINGS: &[&str] = &[
    "FUNCTIONS_CUSTOMHANDLER_PORT",
    "EVENT_HUB_NAME",
    "EVENT_HUB_CONSUMER_GROUP",
    "FETCH_SCHEDULE",
    "COINCAP_BASE_URL",
    "COINCAP_LIMIT",
    "COINCAP_IDS",
    "COINCAP_API_KEY",
    "KEY_VAULT_URL",
    "COINCAP_API_KEY_SECRET",
    "SYNAPSE_CONNECTION_STRING_SECRET",
    "SYNAPSE_CONNECTION_STRING",
    "SECRET_TTL",
    "AZURE_CLIENT_ID",
    "COINCAP_TIMEOUT",
    "COINCAP_MAX_RETRIES",
    "COINCAP_RETRY_BASE",
    "COINCAP_RETRY_BUDGET",
    "WAREHOUSE",
    "SYNAPSE_SERVER",
    "SYNAPSE_DATABASE",
    "SYNAPSE_POOL_SIZE",
    "SYNAPSE_COMMAND_TIMEOUT",
    "RUST_LOG",
];

pub const DEFAULT_FETCH_SCHEDULE: &str = "0 */5 * * * *";

impl Config {
    pub fn from_env(mode: Mode) -> Result<Self, ConfigError> {
        Self::from_lookup(mode, |key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup` (the environment in production, a map in tests). Empty
    /// values count as unset, as the portal leaves them.
    pub fn from_lookup(
        mode: Mode,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let default_warehouse = match mode {
            Mode::Serve => "synapse",
            Mode::Local => "sqlite:coincap.db",
        };
        Ok(Self {
            port: parse(&get, "FUNCTIONS_CUSTOMHANDLER_PORT", "3000", |v| {
                u16::from_str(v).map_err(|e| e.to_string())
            })?,
            coincap: coincap(&get)?,
            warehouse: parse(
                &get,
                "WAREHOUSE",
                default_warehouse,
                WarehouseConfig::from_str,
            )?,
            synapse: synapse(&get)?,
            fetch_schedule: get("FETCH_SCHEDULE")
                .unwrap_or_else(|| DEFAULT_FETCH_SCHEDULE.to_owned()),
            event_hub_name: get("EVENT_HUB_NAME").unwrap_or_else(|| "coincaphub".to_owned()),
            consumer_group: get("EVENT_HUB_CONSUMER_GROUP")
                .unwrap_or_else(|| "$Default".to_owned()),
            secrets: secrets(&get)?,
        })
    }
}

/// The `COINCAP_*` settings.
fn coincap(get: &impl Fn(&str) -> Option<String>) -> Result<CoinCapConfig, ConfigError> {
    Ok(CoinCapConfig {
        base_url: parse(
            get,
            "COINCAP_BASE_URL",
            DEFAULT_COINCAP_BASE_URL,
            parse_base_url,
        )?,
        limit: parse(get, "COINCAP_LIMIT", "100", |v| match u32::from_str(v) {
            Ok(n) if (1..=MAX_COINCAP_LIMIT).contains(&n) => Ok(n),
            _ => Err(format!(
                "expected a whole number from 1 to {MAX_COINCAP_LIMIT}"
            )),
        })?,
        ids: get("COINCAP_IDS")
            .map(|ids| ids.split(',').map(str::trim).collect::<Vec<_>>().join(",")),
        timeout: parse(get, "COINCAP_TIMEOUT", "10s", duration)?,
        max_retries: parse(get, "COINCAP_MAX_RETRIES", "4", |v| {
            u32::from_str(v).map_err(|e| e.to_string())
        })?,
        retry_base: parse(get, "COINCAP_RETRY_BASE", "500ms", duration)?,
        retry_budget: parse(get, "COINCAP_RETRY_BUDGET", "60s", duration)?,
    })
}

/// The `SYNAPSE_*` settings (the connection string itself is a secret, read by the writer).
fn synapse(get: &impl Fn(&str) -> Option<String>) -> Result<SynapseConfig, ConfigError> {
    let login = match (get("SYNAPSE_SERVER"), get("SYNAPSE_DATABASE")) {
        (Some(server), Some(database)) => SynapseLogin::Entra { server, database },
        (None, None) => SynapseLogin::ConnectionString,
        (server, _) => {
            return Err(ConfigError {
                setting: if server.is_some() {
                    "SYNAPSE_DATABASE"
                } else {
                    "SYNAPSE_SERVER"
                },
                value: String::new(),
                reason: "passwordless login needs both SYNAPSE_SERVER and SYNAPSE_DATABASE".into(),
            });
        }
    };
    Ok(SynapseConfig {
        login,
        pool_size: parse(get, "SYNAPSE_POOL_SIZE", "4", |v| match u32::from_str(v) {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => Err("expected a whole number from 1 to 64".into()),
        })?,
        command_timeout: parse(get, "SYNAPSE_COMMAND_TIMEOUT", "120s", duration)?,
    })
}

/// Where secrets come from: the vault's address and the secrets' names, never values.
fn secrets(get: &impl Fn(&str) -> Option<String>) -> Result<SecretsConfig, ConfigError> {
    Ok(SecretsConfig {
        key_vault_url: match get("KEY_VAULT_URL") {
            None => None,
            Some(_) => Some(parse(get, "KEY_VAULT_URL", "", parse_key_vault_url)?),
        },
        vault_names: VaultNames {
            coincap_api_key: vault_name(get, SecretName::CoinCapApiKey)?,
            synapse_connection_string: vault_name(get, SecretName::SynapseConnectionString)?,
        },
        ttl: parse(get, "SECRET_TTL", "15m", |v| match duration(v)? {
            ttl if ttl.is_zero() => Err("must be longer than 0".into()),
            ttl => Ok(ttl),
        })?,
        azure_client_id: get("AZURE_CLIENT_ID").map(|id| id.trim().to_owned()),
    })
}

fn parse<T>(
    get: &impl Fn(&str) -> Option<String>,
    setting: &'static str,
    default: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let value = get(setting).unwrap_or_else(|| default.to_owned());
    parse(value.trim()).map_err(|reason| ConfigError {
        setting,
        value,
        reason,
    })
}

fn vault_name(
    get: &impl Fn(&str) -> Option<String>,
    name: SecretName,
) -> Result<VaultSecretName, ConfigError> {
    parse(
        get,
        name.vault_name_setting(),
        name.default_vault_name(),
        VaultSecretName::parse,
    )
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
        assert_eq!(config.coincap.limit, 100);
        assert_eq!(
            config.warehouse,
            WarehouseConfig::Sqlite(PathBuf::from("coincap.db"))
        );
        assert_eq!(config.fetch_schedule, "0 */5 * * * *");
    }

    #[test]
    fn serve_mode_defaults_to_synapse() {
        assert_eq!(
            config(Mode::Serve, &[]).unwrap().warehouse,
            WarehouseConfig::Synapse
        );
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
                SETTINGS.contains(&key.as_str()),
                "{key} is read but not in SETTINGS"
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
    }

    #[test]
    fn synapse_login_is_passwordless_when_server_and_database_are_set() {
        let config = config(
            Mode::Serve,
            &[
                ("SYNAPSE_SERVER", "ws.sql.azuresynapse.net"),
                ("SYNAPSE_DATABASE", "pool1"),
            ],
        )
        .unwrap();
        assert_eq!(
            config.synapse.login,
            SynapseLogin::Entra {
                server: "ws.sql.azuresynapse.net".into(),
                database: "pool1".into()
            }
        );
        assert_eq!(config.synapse.command_timeout, Duration::from_secs(120));
        assert_eq!(config.synapse.pool_size, 4);
        assert_eq!(
            self::config(Mode::Serve, &[]).unwrap().synapse.login,
            SynapseLogin::ConnectionString
        );
        let error = self::config(Mode::Serve, &[("SYNAPSE_SERVER", "ws")]).unwrap_err();
        assert_eq!(error.setting, "SYNAPSE_DATABASE");
    }

    #[test]
    fn secrets_come_from_the_environment_unless_a_vault_is_set() {
        let secrets = config(Mode::Serve, &[]).unwrap().secrets;
        assert_eq!(secrets.key_vault_url, None);
        assert_eq!(
            secrets.vault_names.coincap_api_key.as_str(),
            "coincap-api-key"
        );
        assert_eq!(
            secrets.vault_names.synapse_connection_string.as_str(),
            "synapse-connection-string"
        );
        assert_eq!(secrets.ttl, Duration::from_secs(15 * 60));
        assert_eq!(secrets.azure_client_id, None);
    }

    #[test]
    fn vault_settings_override_the_secret_defaults() {
        let secrets = config(
            Mode::Serve,
            &[
                ("KEY_VAULT_URL", " https://kv-coincap.vault.azure.net "),
                ("COINCAP_API_KEY_SECRET", "coincap-key-prod"),
                ("SYNAPSE_CONNECTION_STRING_SECRET", "synapse-prod"),
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
            secrets.vault_names.synapse_connection_string.as_str(),
            "synapse-prod"
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
            assert_eq!(error.setting, "KEY_VAULT_URL", "{bad}");
        }
        assert!(config(Mode::Serve, &[("KEY_VAULT_URL", "https://127.0.0.1:8443")]).is_ok());
    }

    #[test]
    fn a_bad_secret_name_or_ttl_is_rejected_at_start_up() {
        let error = config(Mode::Serve, &[("COINCAP_API_KEY_SECRET", "coincap_key")]).unwrap_err();
        assert_eq!(error.setting, "COINCAP_API_KEY_SECRET");
        let error = config(Mode::Serve, &[("SECRET_TTL", "0s")]).unwrap_err();
        assert_eq!(error.setting, "SECRET_TTL");
        assert!(config(Mode::Serve, &[("SECRET_TTL", "soon")]).is_err());
    }

    #[test]
    fn bad_values_name_the_setting() {
        let error = config(Mode::Local, &[("COINCAP_LIMIT", "5000")]).unwrap_err();
        assert_eq!(error.setting, "COINCAP_LIMIT");
        assert!(config(Mode::Local, &[("COINCAP_TIMEOUT", "soon")]).is_err());
        assert!(config(Mode::Local, &[("COINCAP_BASE_URL", "ftp://x")]).is_err());
        assert!(config(Mode::Local, &[("WAREHOUSE", "postgres")]).is_err());
        assert!(config(Mode::Local, &[("FUNCTIONS_CUSTOMHANDLER_PORT", "70000")]).is_err());
    }
}
