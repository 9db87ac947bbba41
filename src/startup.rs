//! What `serve`, `local` and `check` read before they start, through one function ([`read`]), so
//! `check` passes exactly what the other two accept: the settings, the Functions app's files
//! (host.json and both function.json, with the schedule and the hub they name), and the settings
//! that are set but ignored. The secrets the settings need are named in the same words by all
//! three ([`crate::app::unreadable_secrets`]; `serve`'s [`missing_secrets`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::app;
use crate::config::{Config, ConfigError, Ignored, Mode};
use crate::local::{LocalError, Plan};
use crate::secrets::SecretSource;
use crate::warehouse::WarehouseConfig;

/// Everything read before the start, validated.
pub struct Startup {
    pub config: Config,
    /// The schedule, the hub and the app files as the host reads them.
    pub plan: Plan,
}

/// Why a command cannot start: a setting, or the Functions app's files.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] ConfigError),
    #[error(transparent)]
    App(#[from] LocalError),
}

/// The settings of this process's environment read for `mode`, and the app files under
/// `app_root` (`--every` replaces the schedule). A relative SQLite path is taken from the working
/// directory and made absolute here, so every line that names it names one file.
pub fn read(mode: Mode, app_root: &Path, every: Option<Duration>) -> Result<Startup, StartError> {
    read_with(mode, app_root, every, |key| std::env::var(key).ok())
}

/// [`read`] with settings from `lookup`.
pub fn read_with(
    mode: Mode,
    app_root: &Path,
    every: Option<Duration>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Startup, StartError> {
    let mut config = Config::from_lookup(mode, &lookup)?;
    if let WarehouseConfig::Sqlite(path) = &config.warehouse
        && let Ok(absolute) = std::path::absolute(path)
    {
        config.warehouse = WarehouseConfig::Sqlite(absolute);
    }
    let plan = Plan::read(&config, app_root, every, &lookup)?;
    if every.is_some() && lookup("FETCH_SCHEDULE").is_some_and(|v| !v.trim().is_empty()) {
        config.ignored.push(Ignored {
            setting: "FETCH_SCHEDULE",
            why: "--every replaces the schedule".into(),
        });
    }
    Ok(Startup { config, plan })
}

/// Without a vault, the needed secrets that the environment does not hold, one line each exactly
/// as `check` prints it after `FAIL  ` ([`app::unreadable_secrets`]): what `serve` refuses to
/// start without. With a vault, none (reading them is the vault's business, at the first
/// invocation).
pub async fn missing_secrets(config: &Config, secrets: &Arc<dyn SecretSource>) -> Vec<String> {
    if config.secrets.key_vault_url.is_some() {
        return Vec::new();
    }
    app::unreadable_secrets(config, secrets)
        .await
        .into_iter()
        .map(|(_, line)| line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretName;
    use std::collections::HashMap;

    fn read(settings: &[(&str, &str)], every: Option<Duration>) -> Result<Startup, StartError> {
        let map: HashMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        read_with(
            Mode::Local,
            Path::new(env!("CARGO_MANIFEST_DIR")),
            every,
            |key| map.get(key).cloned(),
        )
    }

    #[test]
    fn a_five_field_schedule_is_refused_as_local_refuses_it() {
        let error = read(&[("FETCH_SCHEDULE", "*/5 * * * *")], None)
            .err()
            .unwrap();
        assert!(
            error.to_string().starts_with(
                "FETCH_SCHEDULE: \"*/5 * * * *\" is not a six-field NCRONTAB expression"
            ),
            "{error}"
        );
        let startup = read(
            &[("FETCH_SCHEDULE", "*/5 * * * *")],
            Some(Duration::from_secs(9)),
        );
        let ignored = startup.unwrap().config.ignored;
        assert_eq!(ignored.len(), 1, "--every replaces it: {ignored:?}");
        assert_eq!(
            ignored[0].to_string(),
            "FETCH_SCHEDULE is set but ignored: --every replaces the schedule"
        );
    }

    #[test]
    fn missing_app_files_are_named() {
        let error = read_with(
            Mode::Serve,
            Path::new("/nonexistent-app-root"),
            None,
            |_| None,
        )
        .err()
        .unwrap();
        assert!(
            error
                .to_string()
                .starts_with("/nonexistent-app-root/host.json: "),
            "{error}"
        );
    }

    #[test]
    fn a_relative_sqlite_file_is_made_absolute() {
        let startup = read(&[("WAREHOUSE", "sqlite:rows.db")], None).unwrap();
        let WarehouseConfig::Sqlite(path) = startup.config.warehouse else {
            panic!("sqlite")
        };
        assert!(path.is_absolute(), "{}", path.display());
        assert!(path.ends_with("rows.db"));
    }

    #[test]
    fn the_connection_string_is_needed_only_when_the_sql_login_uses_it() {
        let config = read(&[], None).unwrap().config;
        assert_eq!(app::needed_secrets(&config), [SecretName::CoinCapApiKey]);
        let config = read(&[("WAREHOUSE", "sql")], None).unwrap().config;
        assert_eq!(
            app::needed_secrets(&config),
            [SecretName::CoinCapApiKey, SecretName::SqlConnectionString]
        );
        let config = read(
            &[
                ("WAREHOUSE", "sql"),
                ("SQL_SERVER", "s.database.windows.net"),
                ("SQL_DATABASE", "coincap"),
            ],
            None,
        )
        .unwrap()
        .config;
        assert_eq!(app::needed_secrets(&config), [SecretName::CoinCapApiKey]);
    }
}
