//! `handler check`: is the configuration right, before the first tick? With the settings `serve`
//! or `local` reads, through the very function they start with ([`crate::startup::read`]), it
//! checks each dependency once and prints one line each: the settings parse and the app files
//! (host.json, both function.json) are read as the host reads them, with a warning for each
//! setting set but ignored;
//! each secret the settings use is readable (by name, from Key Vault or the environment; never a
//! value); CoinCap accepts the key (the smallest call: one asset); the warehouse is reachable and
//! ready for the writer (with `init-warehouse`'s report). It also says what the schedule costs: the
//! CoinCap credits a month, from the size of that real answer, against `COINCAP_MONTHLY_CREDITS`
//! (failing with the setting that fits when over), and, for a serverless database
//! (`SQL_AUTO_PAUSE_DELAY`), whether it can pause between fetches. It changes nothing: no table,
//! no file.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::app::{self, secret_what};
use crate::coincap::CoinCapClient;
use crate::coincap::credits::{self, Estimate, MONTH_DAYS, Measured};
use crate::config::{Config, Mode};
use crate::fault::Fault;
use crate::local::Fires;
use crate::secrets::{self, Secret, SecretName, SecretSource};
use crate::startup::{self, Startup};
use crate::warehouse::sql::init;
use crate::warehouse::sql::pause::Pause;
use crate::warehouse::{SqliteWarehouse, WarehouseConfig};

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    /// Not tried: what it needs failed above.
    Skipped,
}

/// The checks so far, printed as they are made.
#[derive(Debug, Default)]
pub struct Checks {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Warnings (a setting set but ignored): printed, not failed.
    pub warnings: usize,
}

impl Checks {
    fn record(&mut self, status: Status, what: &str, detail: impl fmt::Display) {
        let label = match status {
            Status::Ok => {
                self.passed += 1;
                "ok"
            }
            Status::Failed => {
                self.failed += 1;
                "FAIL"
            }
            Status::Skipped => {
                self.skipped += 1;
                "skip"
            }
        };
        println!("{label:<5} {what}: {detail}");
    }

    /// A failure with what to change, when the error does not already say it.
    fn fail(&mut self, what: &str, error: impl fmt::Display, fault: &Fault) {
        self.record(Status::Failed, what, fault.detail(error));
    }

    /// A line that passes or fails nothing: something to know (a setting set but ignored).
    fn warn(&mut self, line: impl fmt::Display) {
        self.warnings += 1;
        println!("warn  {line}");
    }

    /// Exit 0 only when every check passed.
    pub fn all_passed(&self) -> bool {
        self.failed == 0 && self.skipped == 0
    }

    /// The closing line.
    pub fn verdict(&self) -> String {
        let total = self.passed + self.failed + self.skipped;
        if self.all_passed() {
            return match self.warnings {
                0 => format!("All {total} checks passed."),
                1 => format!("All {total} checks passed, with 1 warning."),
                n => format!("All {total} checks passed, with {n} warnings."),
            };
        }
        let skipped = match self.skipped {
            0 => String::new(),
            n => format!(" ({n} not tried)"),
        };
        format!(
            "{} of {total} checks did not pass{skipped}: fix what they say and run `handler check` again.",
            self.failed + self.skipped
        )
    }
}

/// What `check` is asked to allow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allow {
    /// Rows may go to the `master` database (`--allow-master`).
    pub master: bool,
}

/// Checks everything the settings of `mode` name, with the app files under `app_root`, printing
/// a line per check and the verdict.
pub async fn run(mode: Mode, app_root: &Path, allow: Allow) -> Checks {
    let mut checks = Checks::default();
    let Startup { config, plan } = match startup::read(mode, app_root, None) {
        Ok(startup) => startup,
        Err(error) => {
            checks.record(Status::Failed, "settings", error);
            println!("{}", checks.verdict());
            return checks;
        }
    };
    checks.record(
        Status::Ok,
        "settings",
        format!(
            "{}; the app in {} is read as the host reads it: TimerFetch fires {}, EventHubSink takes batches of up to {} from hub {:?}",
            settings_line(&config, mode),
            plan.app_root.display(),
            plan.schedule.describe(),
            plan.files.max_event_batch_size,
            plan.event_hub
        ),
    );
    for renamed in &config.old_names {
        checks.warn(renamed);
    }
    for ignored in &config.ignored {
        checks.warn(ignored);
    }
    let secrets = match secrets::source(&config.secrets) {
        Ok(secrets) => secrets,
        Err(error) => {
            checks.fail("secrets", &error, &error.fault());
            println!("{}", checks.verdict());
            return checks;
        }
    };
    let needed = app::needed_secrets(&config);
    let key = secret(&mut checks, &config, &secrets, SecretName::CoinCapApiKey).await;
    let login_ok = !needed.contains(&SecretName::SqlConnectionString)
        || secret(
            &mut checks,
            &config,
            &secrets,
            SecretName::SqlConnectionString,
        )
        .await
        .is_some();
    let answer = match key {
        Some(key) => coincap(&mut checks, &config, &key).await,
        None => {
            checks.record(Status::Skipped, "CoinCap", "no API key to try (see above)");
            None
        }
    };
    let month = plan.schedule.month(MONTH_DAYS);
    coincap_credits(&mut checks, &config, month.calls, answer);
    if login_ok {
        warehouse(&mut checks, &config, secrets, allow).await;
    } else {
        checks.record(Status::Skipped, "warehouse", "no login to try (see above)");
    }
    pause(&mut checks, &config, &month);
    println!("{}", checks.verdict());
    checks
}

fn settings_line(config: &Config, mode: Mode) -> String {
    let defaults = match mode {
        Mode::Serve => "serve",
        Mode::Local => "local",
    };
    let secrets = match &config.secrets.key_vault_url {
        Some(url) => format!("secrets from Key Vault {url}"),
        None => "secrets from environment variables (KEY_VAULT_URL unset)".into(),
    };
    format!(
        "every setting parses (defaults of `handler {defaults}`; WAREHOUSE={}; {secrets})",
        config.warehouse_setting()
    )
}

/// Reads one secret by name; the line says where from, never what.
async fn secret(
    checks: &mut Checks,
    config: &Config,
    secrets: &Arc<dyn SecretSource>,
    name: SecretName,
) -> Option<Secret> {
    let what = secret_what(config, name);
    match secrets.get(name).await {
        Ok(secret) => {
            let mut detail = format!("readable from {}", secrets.describe());
            let named = config.secrets.vault_names.get(name);
            let origin = secrets.origin(name);
            if config.secrets.key_vault_url.is_some() && !origin.ends_with(&format!("\"{named}\""))
            {
                detail.push_str(&format!(
                    "; found as {origin}, the old default name: set {} to that name, or rename the secret",
                    name.vault_name_setting()
                ));
            }
            checks.record(Status::Ok, &what, detail);
            Some(secret)
        }
        Err(error) => {
            checks.fail(&what, &error, &error.fault());
            None
        }
    }
}

/// The smallest call CoinCap answers: one asset, whatever `COINCAP_LIMIT` and `COINCAP_IDS` say;
/// its size and asset count, to estimate the month's credits from.
async fn coincap(checks: &mut Checks, config: &Config, key: &Secret) -> Option<(u64, u64)> {
    let mut settings = config.coincap.clone();
    settings.limit = 1;
    settings.ids = None;
    let what = format!("CoinCap {}", config.coincap.base_url);
    let client = match CoinCapClient::new(settings) {
        Ok(client) => client,
        Err(error) => {
            checks.record(Status::Failed, &what, error);
            return None;
        }
    };
    let url = client.assets_url();
    let answer = client
        .fetch_assets(key)
        .await
        .and_then(|page| page.read().map(|assets| (assets.assets.len(), page.len())));
    match answer {
        Ok((assets, bytes)) => {
            checks.record(
                Status::Ok,
                &what,
                format!(
                    "the API key is accepted (GET {}?{}: {assets} asset, {bytes} bytes, about {} credit; CoinCap reportedly bills 1 credit per 2.5 KB of answer)",
                    url.path(),
                    url.query().unwrap_or_default(),
                    credits::credits(bytes as u64)
                ),
            );
            Some((bytes as u64, assets as u64))
        }
        Err(error) => {
            checks.fail(&what, &error, &error.fault());
            None
        }
    }
}

/// The month's credits at `FETCH_SCHEDULE` (its `calls` a month), `COINCAP_LIMIT` and
/// `COINCAP_IDS`, from the size of the real answer above, against `COINCAP_MONTHLY_CREDITS`.
fn coincap_credits(checks: &mut Checks, config: &Config, calls: u64, answer: Option<(u64, u64)>) {
    const WHAT: &str = "CoinCap credits";
    let Some((bytes, assets)) = answer else {
        return checks.record(Status::Skipped, WHAT, "no answer to measure (see above)");
    };
    let estimate = Estimate::of(&config.coincap, calls, Measured::Answer { bytes, assets });
    let status = if estimate.fits() {
        Status::Ok
    } else {
        Status::Failed
    };
    checks.record(status, WHAT, estimate.with_fix(&config.coincap));
}

/// For a serverless database (`SQL_AUTO_PAUSE_DELAY` set): whether the waits between the month's
/// fetches let it pause at all.
fn pause(checks: &mut Checks, config: &Config, fires: &Fires) {
    const WHAT: &str = "warehouse auto-pause";
    let (WarehouseConfig::Sql, Some(delay)) = (&config.warehouse, config.sql.auto_pause_delay)
    else {
        return;
    };
    let pause = Pause::of(
        fires.shortest,
        fires.longest,
        config.sql.idle_timeout,
        delay,
    );
    if pause.can_pause() {
        checks.record(Status::Ok, WHAT, pause);
    } else {
        checks.record(
            Status::Failed,
            WHAT,
            format!(
                "{pause}. Fix: fetch less often (FETCH_SCHEDULE), or choose a database that bills a flat rate and never pauses (the template's sqlDatabaseTier=Basic), then unset SQL_AUTO_PAUSE_DELAY"
            ),
        );
    }
}

async fn warehouse(
    checks: &mut Checks,
    config: &Config,
    secrets: Arc<dyn SecretSource>,
    allow: Allow,
) {
    match &config.warehouse {
        WarehouseConfig::Sqlite(path) => match SqliteWarehouse::inspect(path) {
            Ok(detail) => checks.record(Status::Ok, "warehouse", detail),
            Err(error) => checks.fail("warehouse", &error, &error.fault()),
        },
        WarehouseConfig::Sql => sql_warehouse(checks, config, secrets, allow).await,
    }
}

/// Connects as the writer would and reads what it relies on; the report follows, indented.
async fn sql_warehouse(
    checks: &mut Checks,
    config: &Config,
    secrets: Arc<dyn SecretSource>,
    allow: Allow,
) {
    let manager = match app::sql_manager_with(config, secrets) {
        Ok(manager) => manager,
        Err(error) => return checks.record(Status::Failed, "warehouse", error),
    };
    let target = match manager.target().await {
        Ok(target) => target.to_string(),
        Err(error) => return checks.fail("warehouse", &error, &error.fault()),
    };
    let what = format!("warehouse {target}");
    let facts = match init::inspect(&manager).await {
        Ok(facts) => facts,
        Err(error) => return checks.fail(&what, &error, &error.fault()),
    };
    let engine = init::engine_name(facts.engine_edition);
    let wrong = init::writer_not_ready(&facts);
    let database = facts.database.as_deref().unwrap_or("unknown");
    let rows_go = facts.bulk_load.as_ref().map_or("", |bulk| bulk.rows_go());
    if init::is_master(facts.database.as_deref()) && !allow.master {
        checks.record(
            Status::Failed,
            &what,
            format!(
                "reachable, {engine}; rows would be written into database {database}, the server's system database. Fix: {}",
                init::MASTER_FIX
            ),
        );
    } else if wrong.is_empty() {
        checks.record(
            Status::Ok,
            &what,
            format!("reachable, {engine}; rows are written into database {database}{rows_go}; the writer's tables are ready"),
        );
    } else {
        checks.record(
            Status::Failed,
            &what,
            format!(
                "reachable, {engine}; rows are written into database {database}{rows_go}; {}. Fix: {}",
                wrong.join("; "),
                crate::warehouse::sql::retry::TABLES_FIX
            ),
        );
    }
    // The report's advice covers tables that exist; missing ones are the fix above.
    for line in init::advice::report(&facts) {
        if line != "Nothing to change." || wrong.is_empty() {
            println!("      {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_passes_only_when_every_check_passed() {
        let all = Checks {
            passed: 4,
            ..Default::default()
        };
        assert!(all.all_passed());
        assert_eq!(all.verdict(), "All 4 checks passed.");
        let warned = Checks {
            passed: 4,
            warnings: 2,
            ..Default::default()
        };
        assert!(warned.all_passed(), "a warning fails nothing");
        assert_eq!(warned.verdict(), "All 4 checks passed, with 2 warnings.");
        let some = Checks {
            passed: 2,
            failed: 1,
            skipped: 1,
            warnings: 0,
        };
        assert!(!some.all_passed());
        assert_eq!(
            some.verdict(),
            "2 of 4 checks did not pass (1 not tried): fix what they say and run `handler check` again."
        );
    }
}
