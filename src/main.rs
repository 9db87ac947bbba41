//! `handler`: what host.json starts (`serve`, the default) and the local runner (`local`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use coincap_stream::app::{self, AppState};
use coincap_stream::config::{Config, Mode};
use coincap_stream::server;
use coincap_stream::warehouse::synapse::init;
use coincap_stream::{local, telemetry};

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
    /// Create the warehouse schema and tables (and the app identity's user and grants) in the
    /// SQL database the SQL_* settings point at (Azure SQL Database, a Synapse dedicated SQL pool
    /// or SQL Server).
    InitWarehouse(InitArgs),
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "Cannot start the async runtime.");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve().await,
            Command::Local(args) => {
                let options = local::Options {
                    every: args.every,
                    ticks: args.ticks,
                    app_root: args.app_root,
                };
                local::run(Config::from_env(Mode::Local)?, options).await?;
                Ok(())
            }
            Command::InitWarehouse(args) => init_warehouse(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn init_warehouse(args: InitArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env(Mode::Serve)?;
    let manager = app::synapse_manager(&config)?;
    println!("Preparing {}.", manager.describe());
    for step in init::init_warehouse(&manager, args.app_identity.as_deref()).await? {
        println!("{step}");
    }
    Ok(())
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
    // The CoinCap client's TLS set-up (root certificates) happens after the listener is up, so
    // the host's readiness probe is answered at once.
    let coincap = Arc::clone(&state.coincap);
    tokio::task::spawn_blocking(move || coincap.warm_up());
    server::run(listener, state, server::shutdown_signal()).await?;
    tracing::info!("Custom handler stopped.");
    Ok(())
}
