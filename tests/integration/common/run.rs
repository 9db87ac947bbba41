//! One way to run the real `handler` in a test: what it runs (`local`, `serve`, `check`,
//! `init-warehouse`) and with which settings, then how: to the end ([`Binary::output`]), as a
//! child to watch and signal ([`Binary::spawn`]) or as a server to post to ([`Binary::start`]).
//! The environment starts empty, so a test's settings are all the handler sees.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::Command;

use super::API_KEY;
use super::azure::Azure;
use super::coincap::CoinCap;
use super::process::{Running, Spawned, Stopped};

/// How long a run that should end by itself may take before the test fails showing its output.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Binary {
    command: Command,
    /// Temporary directories the run uses, kept until it is over.
    kept: Vec<TempDir>,
}

impl Binary {
    /// `handler <subcommand>` (the one cargo built).
    pub fn new(subcommand: &str) -> Self {
        Self::of(super::handler()).arg(subcommand)
    }

    /// The `handler` at `path` (the packaged one in dist/app, say) running `subcommand`.
    pub fn at(path: &Path, subcommand: &str) -> Self {
        Self::of(super::handler_at(path)).arg(subcommand)
    }

    /// `handler` without a subcommand.
    pub fn bare() -> Self {
        Self::of(super::handler())
    }

    fn of(command: Command) -> Self {
        Self {
            command,
            kept: Vec::new(),
        }
    }

    /// `handler local --app-root <root>`.
    pub fn local(root: &Path) -> Self {
        Self::new("local").arg("--app-root").arg(root)
    }

    pub fn serve() -> Self {
        Self::new("serve")
    }

    pub fn check() -> Self {
        Self::new("check")
    }

    pub fn init_warehouse() -> Self {
        Self::new("init-warehouse")
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.command.args(args);
        self
    }

    /// Runs it in `dir` (where a relative SQLite path lands).
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// One setting (a later one of the same name replaces it).
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Several settings, in order.
    pub fn settings<K: AsRef<str>, V: AsRef<OsStr>>(
        mut self,
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (key, value) in settings {
            self.command.env(key.as_ref(), value);
        }
        self
    }

    /// CoinCap is the stand-in at `url`, the test key is the key, and retries wait 10 ms.
    pub fn coincap_at(self, url: &str) -> Self {
        self.env("COINCAP_BASE_URL", url)
            .env("COINCAP_API_KEY", API_KEY)
            .env("COINCAP_RETRY_BASE", "10ms")
    }

    /// [`Binary::coincap_at`] the stand-in's address.
    pub fn coincap(self, coincap: &CoinCap) -> Self {
        self.coincap_at(&coincap.url)
    }

    /// The settings of a deployed Function App pointing at the Azure stand-ins (and no CoinCap key
    /// of its own: the vault holds it).
    pub fn azure(self, azure: &Azure) -> Self {
        self.settings(azure.settings())
    }

    /// Rows go to the SQLite file `db`.
    pub fn sqlite(self, db: &Path) -> Self {
        self.env("WAREHOUSE", format!("sqlite:{}", db.display()))
    }

    /// Rows go to a SQLite file in a temporary directory that lives as long as the run.
    pub fn temporary_sqlite(mut self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        self = self.sqlite(&dir.path().join("warehouse.db"));
        self.kept.push(dir);
        self
    }

    /// Without the setting `key`, whoever set it before.
    pub fn without(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Rows go to the SQL database of `connection` (an ADO.NET connection string), sent as the
    /// run's `SQL_BULK_LOAD` says (the live suite runs once with it `off`).
    pub fn sql(self, connection: &str) -> Self {
        self.env("WAREHOUSE", "sql")
            .env("SQL_CONNECTION_STRING", connection)
            .run_s_bulk_load()
    }

    /// The test run's `SQL_BULK_LOAD`, when it sets one.
    pub fn run_s_bulk_load(self) -> Self {
        match std::env::var("SQL_BULK_LOAD") {
            Ok(setting) => self.env("SQL_BULK_LOAD", setting),
            Err(_) => self,
        }
    }

    /// Runs it to the end (failing the test if it is still running after two minutes).
    pub async fn output(self) -> Stopped {
        self.spawn().finish(RUN_TIMEOUT).await
    }

    /// Starts it as a child whose output is collected as it comes.
    pub fn spawn(self) -> Spawned {
        Spawned::start(self.command).keeping(self.kept)
    }

    /// Starts it as a server on a port of its own and waits until it answers.
    pub async fn start(self) -> Running {
        Running::listening(self.env("FUNCTIONS_CUSTOMHANDLER_PORT", "0").spawn()).await
    }
}
