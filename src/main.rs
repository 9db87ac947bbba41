//! `handler`: what host.json starts (`serve`), the local runner (`local`), the configuration
//! check (`check`) and the warehouse's preparation (`init-warehouse`). Without a command it
//! prints its help.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use coincap_stream::app::{self, AppState};
use coincap_stream::coincap::credits::{Estimate, MONTH_DAYS, Measured};
use coincap_stream::config::{Config, Mode};
use coincap_stream::functions::FAILED_TARGET;
use coincap_stream::local::Schedule;
use coincap_stream::telemetry::LogTo;
use coincap_stream::warehouse::sql::init;
use coincap_stream::{check, local, secrets, server, startup, telemetry};

#[derive(Parser)]
#[command(
    version,
    about = "CoinCap -> Event Hubs -> warehouse, as an Azure Functions custom handler",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the functions on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT (what host.json starts).
    ///
    /// The Functions host runs `handler serve` in the app root. It refuses to start when a
    /// setting or an app file is wrong, or a secret it needs is not set, with the line
    /// `handler check --serve` prints.
    Serve,
    /// Run the whole pipeline on this machine, playing the Functions host (timer, hub, retries).
    Local(LocalArgs),
    /// Check the configuration before the first tick, one line each: the settings (and the app
    /// files), a warning per setting read under an old name or ignored in this mode, each secret
    /// (by name), the CoinCap key, the schedule's CoinCap credits for a month, the warehouse and,
    /// for a serverless database, whether it can auto-pause. Changes nothing. Exit 0 only when
    /// all pass.
    Check(CheckArgs),
    /// Create the warehouse schema and tables (and the app identity's user and grants) in the
    /// SQL database the SQL_* settings point at (Azure SQL Database, a Synapse dedicated SQL pool
    /// or SQL Server).
    InitWarehouse(InitArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Read the settings with `serve`'s defaults (WAREHOUSE=sql), as a deployed app does;
    /// without it, with `local`'s (WAREHOUSE=sqlite:coincap.db).
    #[arg(long)]
    serve: bool,
    /// The Functions app root holding host.json and the function folders.
    #[arg(long, default_value = ".")]
    app_root: PathBuf,
    /// Pass when rows are meant to go into the server's `master` database (refused otherwise).
    #[arg(long)]
    allow_master: bool,
}

#[derive(clap::Args)]
struct InitArgs {
    /// The Function App's name: creates its database user from Microsoft Entra ID and grants it
    /// INSERT and SELECT on schema assets and UPDATE on assets.asset_statistics_writer_lock
    /// (sql/grant_app_identity.sql). Needs a server with Entra principals, signed in as its
    /// Entra administrator.
    #[arg(long)]
    app_identity: Option<String>,
    /// Create the tables in the server's `master` database when the settings name it (refused
    /// otherwise).
    #[arg(long)]
    allow_master: bool,
}

#[derive(clap::Args)]
struct LocalArgs {
    /// Fire TimerFetch at this interval instead of FETCH_SCHEDULE (e.g. 10s, 1m).
    #[arg(long, value_parser = humantime::parse_duration)]
    every: Option<Duration>,
    /// Stop after N ticks (1 or more), once everything they fetched is written; without it, run
    /// until stopped.
    #[arg(long, value_parser = ticks)]
    ticks: Option<u64>,
    /// The Functions app root holding host.json and the function folders. A relative SQLite
    /// path in WAREHOUSE is taken from the working directory, not from here.
    #[arg(long, default_value = ".")]
    app_root: PathBuf,
    /// Where the log goes: a FILE (appended to) or `stderr`. Without it there is no log: the
    /// screen carries the run's own lines (a line per tick, per failed attempt, the summary).
    #[arg(long, value_name = "FILE|stderr")]
    log: Option<LogTo>,
    /// After Ctrl-C or SIGTERM, how long what was fetched may take to be written before it is
    /// abandoned (counted as not written); a second signal abandons it at once. The default stays
    /// under the 30 s Kubernetes waits between SIGTERM and SIGKILL, so the summary is printed.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    drain_timeout: Duration,
}

/// `--ticks`: 1 or more.
fn ticks(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("0 ticks would fetch nothing: give 1 or more, or leave --ticks out to run until stopped".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number of ticks, 1 or more".into()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // At a terminal each failure is said once, by the command (see `init_for_terminal`); the
    // local runner prints its own line for a failed invocation, and its log goes to `--log`.
    match &cli.command {
        Command::Serve => telemetry::init(),
        Command::Local(args) => {
            if let Err(error) = telemetry::init_for_local(args.log.as_ref(), &[FAILED_TARGET]) {
                // On standard output, as everything `local` says (docs/pipeline.md).
                println!("handler local cannot start: --log: {error}");
                return ExitCode::FAILURE;
            }
        }
        _ => telemetry::init_for_terminal(&[]),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // What a person at a terminal reads when the command cannot do its job; `serve` logs it for
    // the host too.
    let (failed, to_stdout) = match &cli.command {
        Command::Serve => ("handler serve cannot start", false),
        Command::Local(_) => ("handler local cannot start", true),
        Command::InitWarehouse(_) => ("handler init-warehouse failed", false),
        Command::Check(_) => ("handler check failed", false),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve().await.map(|()| ExitCode::SUCCESS),
            Command::Local(args) => run_local(args).await,
            Command::InitWarehouse(args) => init_warehouse(args).await.map(|()| ExitCode::SUCCESS),
            Command::Check(args) => {
                let mode = if args.serve { Mode::Serve } else { Mode::Local };
                let allow = check::Allow {
                    master: args.allow_master,
                };
                Ok(
                    if check::run(mode, &args.app_root, allow).await.all_passed() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    },
                )
            }
        }
    });
    // Whatever an abandoned invocation still waits for, the process ends now.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(error) => {
            // `local`'s screen is standard output, so `handler local > run.log` keeps it whole.
            if to_stdout {
                println!("{failed}: {error}");
            } else {
                eprintln!("{failed}: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run_local(args: LocalArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let startup = startup::read(Mode::Local, &args.app_root, args.every)?;
    let mut notes: Vec<String> = startup
        .config
        .old_names
        .iter()
        .map(|renamed| format!("{renamed}."))
        .collect();
    notes.extend(
        startup
            .config
            .ignored
            .iter()
            .map(|ignored| format!("{ignored}.")),
    );
    let options = local::Options {
        ticks: args.ticks,
        drain_timeout: args.drain_timeout,
        notes,
    };
    let summary = local::run(startup.config, startup.plan, options).await?;
    Ok(if summary.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn init_warehouse(args: InitArgs) -> Result<(), Box<dyn std::error::Error>> {
    // Only the settings, with serve's defaults: it needs no app file (they may live elsewhere).
    let config = Config::from_env(Mode::Serve)?;
    let manager = app::sql_manager(&config)?;
    let options = init::InitOptions {
        app_identity: args.app_identity.as_deref(),
        allow_master: args.allow_master,
    };
    init::init_warehouse(&manager, options, &mut |line| println!("{line}")).await?;
    Ok(())
}

/// The month's CoinCap credits at `FETCH_SCHEDULE` if left running, before any answer (at the
/// usual answer size; each fetch then logs its real `answer_bytes` and `credits`).
fn log_credits(config: &Config, schedule: &Schedule) {
    let calls = schedule.month(MONTH_DAYS).calls;
    let estimate = Estimate::of(&config.coincap, calls, Measured::Usual);
    let fields = (estimate.credits_a_month(), estimate.calls, estimate.budget);
    if estimate.fits() {
        tracing::info!(
            credits_a_month = fields.0,
            calls_a_month = fields.1,
            monthly_credits = fields.2,
            "CoinCap credits if left running: {estimate}."
        );
    } else {
        tracing::warn!(
            credits_a_month = fields.0,
            calls_a_month = fields.1,
            monthly_credits = fields.2,
            "CoinCap credits if left running: {}.",
            estimate.with_fix(&config.coincap)
        );
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    // The host starts the handler in the app root: host.json and the function folders are here.
    let startup = startup::read(Mode::Serve, Path::new("."), None)?;
    let config = startup.config;
    let schedule = startup.plan.schedule;
    config.log_old_names();
    for ignored in &config.ignored {
        tracing::warn!(setting = ignored.setting, "{ignored}.");
    }
    let secrets = secrets::source(&config.secrets)?;
    let missing = startup::missing_secrets(&config, &secrets).await;
    if !missing.is_empty() {
        return Err(missing.join("\n  ").into());
    }
    let state = AppState::build(&config, secrets)?;
    if config.secrets.key_vault_url.is_none() {
        tracing::warn!(
            "Secrets are read from {}, not from Key Vault: set KEY_VAULT_URL in production.",
            state.secrets.describe()
        );
    }
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        warehouse = %state.warehouse.describe(),
        secrets = %state.secrets.describe(),
        "Custom handler listening."
    );
    log_credits(&config, &schedule);
    // The CoinCap client's TLS set-up (root certificates) happens after the listener is up, so
    // the host's readiness probe is answered at once.
    let coincap = Arc::clone(&state.coincap);
    tokio::task::spawn_blocking(move || coincap.warm_up());
    // On SIGTERM (what the host sends) the invocations in flight finish, then it exits 0.
    let shutdown = async {
        server::shutdown_signal().await;
        tracing::info!("Stopping: no new invocations; finishing those in flight.");
    };
    server::run(listener, state, shutdown).await?;
    tracing::info!("Custom handler stopped.");
    Ok(())
}
