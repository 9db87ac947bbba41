//! `handler`: what host.json starts (`serve`, the default), the local runner (`local`), the
//! configuration check (`check`) and the warehouse's preparation (`init-warehouse`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use coincap_stream::app::{self, AppState};
use coincap_stream::coincap::credits::{Estimate, MONTH_DAYS, Measured};
use coincap_stream::config::{Config, Mode};
use coincap_stream::functions::FAILED_TARGET;
use coincap_stream::local::Schedule;
use coincap_stream::server;
use coincap_stream::warehouse::sql::connection::ConnectError;
use coincap_stream::warehouse::sql::init;
use coincap_stream::{check, local, telemetry};

#[derive(Parser)]
#[command(
    version,
    about = "CoinCap -> Event Hubs -> warehouse, as an Azure Functions custom handler"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the functions on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT (what the Functions host runs).
    Serve,
    /// Run the whole pipeline on this machine, playing the Functions host (timer, hub, retries).
    Local(LocalArgs),
    /// Check the configuration before the first tick: the settings, each secret (by name), the
    /// CoinCap key and the warehouse, one line each; changes nothing. Exit 0 only when all pass.
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
}

#[derive(clap::Args)]
struct InitArgs {
    /// The Function App's name: creates its database user from Entra ID and grants it INSERT and
    /// SELECT on schema assets.
    #[arg(long)]
    app_identity: Option<String>,
}

#[derive(clap::Args)]
struct LocalArgs {
    /// Fire TimerFetch at this interval instead of FETCH_SCHEDULE (e.g. 10s, 1m).
    #[arg(long, value_parser = humantime::parse_duration)]
    every: Option<Duration>,
    /// Stop after N ticks, once everything they fetched is written.
    #[arg(long)]
    ticks: Option<u64>,
    /// The Functions app root holding host.json and the function folders.
    #[arg(long, default_value = ".")]
    app_root: PathBuf,
    /// After Ctrl-C or SIGTERM, how long what was fetched may take to be written before it is
    /// abandoned (counted as not written); a second signal abandons it at once. The default stays
    /// under the 30 s Kubernetes waits between SIGTERM and SIGKILL, so the summary is printed.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    drain_timeout: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // At a terminal each failure is said once, by the command (see `init_for_terminal`); the
    // local runner prints its own line for a failed invocation.
    match cli.command {
        None | Some(Command::Serve) => telemetry::init(),
        Some(Command::Local(_)) => telemetry::init_for_terminal(&[FAILED_TARGET]),
        Some(_) => telemetry::init_for_terminal(&[]),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "Cannot start the async runtime.");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    // What a person at a terminal reads when the command cannot do its job; `serve` logs it for
    // the host instead.
    let failed = match &command {
        Command::Serve => None,
        Command::Local(_) => Some("handler local cannot start"),
        Command::InitWarehouse(_) => Some("handler init-warehouse failed"),
        Command::Check(_) => Some("handler check failed"),
    };
    let result = runtime.block_on(async {
        match command {
            Command::Serve => serve().await.map(|()| ExitCode::SUCCESS),
            Command::Local(args) => {
                let options = local::Options {
                    every: args.every,
                    ticks: args.ticks,
                    app_root: args.app_root,
                    drain_timeout: args.drain_timeout,
                };
                let config = Config::from_env(Mode::Local)?;
                let summary = local::run(config, options).await?;
                Ok(if summary.succeeded() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            Command::InitWarehouse(args) => init_warehouse(args).await.map(|()| ExitCode::SUCCESS),
            Command::Check(args) => {
                let mode = if args.serve { Mode::Serve } else { Mode::Local };
                Ok(if check::run(mode).await.all_passed() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
        }
    });
    // Whatever an abandoned invocation still waits for, the process ends now.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match (result, failed) {
        (Ok(code), _) => code,
        (Err(error), Some(failed)) => {
            eprintln!("{failed}: {error}");
            ExitCode::FAILURE
        }
        (Err(error), None) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn init_warehouse(args: InitArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env(Mode::Serve)?;
    let manager = app::sql_manager(&config)?;
    let explained = |error: ConnectError| match error.fault().fix() {
        Some(fix) => format!("{error}. Fix: {fix}"),
        None => error.to_string(),
    };
    let target = manager.target().await.map_err(explained)?;
    println!("Preparing {target}.");
    let steps = init::init_warehouse(&manager, args.app_identity.as_deref())
        .await
        .map_err(explained)?;
    for step in steps {
        println!("{step}");
    }
    Ok(())
}

/// The month's CoinCap credits at `FETCH_SCHEDULE` if left running, before any answer (at the
/// usual answer size; each fetch then logs its real `answer_bytes` and `credits`).
fn log_credits(config: &Config) {
    let calls = match Schedule::ncrontab(&config.fetch_schedule) {
        Ok(schedule) => schedule.month(MONTH_DAYS).calls,
        Err(error) => {
            tracing::warn!(%error, "FETCH_SCHEDULE does not parse here; the CoinCap credits are not estimated.");
            return;
        }
    };
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
    let config = Config::from_env(Mode::Serve)?;
    let state = AppState::build(&config)?;
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
    log_credits(&config);
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
