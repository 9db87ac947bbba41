//! `handler local`: the whole pipeline on one machine, this process playing the Functions host.
//!
//! It reads host.json and both function.json files, starts the handler's HTTP server in-process
//! on a free port and talks to it over real HTTP with the host's exact payloads: TimerFetch on the
//! schedule, its `Outputs.events` through an in-process hub, EventHubSink in batches of
//! `maxEventBatchSize`, the function.json retry policy on transient failures. A failure another
//! attempt would repeat stops it at once ([`crate::fault`]); Ctrl-C and SIGTERM drain what was
//! fetched, within a deadline (`stop`). The summary's verdict says whether everything fetched
//! was written, and the exit code follows it ([`Summary::succeeded`]).

mod app_files;
mod hub;
mod invoke;
mod progress;
mod schedule;
mod stop;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

pub use app_files::{AppFiles, RetryPolicy, RetryStrategy, parse_timespan};
pub use progress::Summary;
pub use schedule::{Fires, Schedule};

use crate::app::{self, AppState};
use crate::coincap::CoinCapConfig;
use crate::coincap::credits::{Estimate, MONTH_DAYS, Measured};
use crate::config::Config;
use crate::fault::Fault;
use crate::functions::TIMER_FETCH;
use crate::functions::counters::TimerFetchCounters;
use crate::host::timer;
use crate::secrets::{self, SecretName};
use crate::server;
use hub::{HubMessage, Partition, SinkTarget};
use invoke::{Failed, HostClient, output_events};
use stop::Stop;

/// Where to get a CoinCap key, for the error a new user sees first.
const GET_A_KEY: &str = "get a free API key at https://pro.coincap.io/dashboard, then run: COINCAP_API_KEY=<key> cargo run --release -- local";

/// The longest the runner waits for one invocation (the host's functionTimeout plays this part).
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(600);

/// How long the in-process handler gets to finish once the run is over (an invocation abandoned
/// at the stop may still be waiting on the warehouse; the process ends anyway).
const HANDLER_STOP_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Options {
    /// Stops after this many ticks, once everything they fetched is written.
    pub ticks: Option<u64>,
    /// After Ctrl-C or SIGTERM, how long what was fetched may take to be written.
    pub drain_timeout: Duration,
    /// Sentences printed after the start lines: settings set but ignored, old names.
    pub notes: Vec<String>,
}

/// Why the run could not start (a run that started ends with a [`Summary`]).
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{}: {reason}", path.display())]
    AppFile { path: PathBuf, reason: String },
    #[error("{0}")]
    Setup(String),
}

fn setup(context: &str) -> impl Fn(&dyn std::fmt::Display) -> LocalError + '_ {
    move |error| LocalError::Setup(format!("{context}: {error}"))
}

/// Runs until `--ticks` are done and written, a stop, or a failure another attempt would repeat;
/// prints the summary and its verdict and returns the summary ([`Summary::succeeded`] is the exit
/// code).
pub async fn run(config: Config, plan: Plan, options: Options) -> Result<Summary, LocalError> {
    let started = Instant::now();
    let (state, destination) = handles(&config).await?;
    let secrets_from = state.secrets.describe();
    let handler = InProcessHandler::start(state).await?;
    tracing::debug!(url = %handler.base_url, "The handler listens.");
    println!("coincap-stream local: rows go to {destination}; secrets come from {secrets_from}.");
    println!(
        "TimerFetch fires now, then {}; EventHubSink takes batches of up to {} from hub {:?}.",
        plan.schedule.describe(),
        plan.files.max_event_batch_size,
        plan.event_hub
    );
    println!(
        "Ctrl-C or SIGTERM stops: no new ticks, and what was fetched is written within {} (--drain-timeout); a second one abandons it.",
        humantime::format_duration(options.drain_timeout)
    );
    for note in &options.notes {
        println!("{note}");
    }
    let credits = Credits {
        coincap: config.coincap.clone(),
        calls: plan.schedule.month(MONTH_DAYS).calls,
    };
    println!("{}", credits.line(Measured::Usual));

    let host = HostClient::new(handler.base_url.clone(), INVOCATION_TIMEOUT)
        .map_err(|e| setup("HTTP client")(&e))?;
    let stop = Stop::listen(options.drain_timeout);
    let (hub, messages) = mpsc::unbounded_channel();
    let sink = tokio::spawn(hub::sink_worker(
        SinkTarget {
            host: host.clone(),
            binding: plan.files.sink.binding.clone(),
            namespace: "local".into(),
            event_hub: plan.event_hub,
            consumer_group: plan.consumer_group,
            retry: plan.files.sink.retry,
        },
        messages,
        stop.clone(),
    ));
    run_timer(
        &host,
        &plan.files,
        &plan.schedule,
        options.ticks,
        &hub,
        &stop,
        &credits,
    )
    .await;
    drop(hub);
    let mut summary = sink.await.map_err(|e| setup("sink worker")(&e))?;
    if tokio::time::timeout(HANDLER_STOP_TIMEOUT, handler.stop())
        .await
        .is_err()
    {
        tracing::debug!("The handler was still busy with an abandoned invocation.");
    }
    summary.elapsed = started.elapsed();
    println!("{summary}");
    println!("{}", summary.verdict(&destination));
    Ok(summary)
}

/// What the app files and settings ask the host to play: the schedule and the hub. `serve` and
/// `check` read it too, through the same start-up function, so all three accept the same app.
pub struct Plan {
    pub files: AppFiles,
    pub schedule: Schedule,
    pub event_hub: String,
    pub consumer_group: String,
    /// Where the app files were read from, absolute when it can be.
    pub app_root: PathBuf,
}

impl Plan {
    /// The app files under `app_root`, their `%SETTING%`s resolved through `config` (then
    /// `lookup`); `every` replaces the schedule.
    pub fn read(
        config: &Config,
        app_root: &std::path::Path,
        every: Option<Duration>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LocalError> {
        let files = AppFiles::read(app_root)?;
        let setting = |name: &str| match name {
            "FETCH_SCHEDULE" => Some(config.fetch_schedule.clone()),
            "EVENT_HUB_NAME" => Some(config.event_hub_name.clone()),
            "EVENT_HUB_CONSUMER_GROUP" => Some(config.consumer_group.clone()),
            other => lookup(other),
        };
        let schedule = match every {
            Some(interval) if interval.is_zero() => {
                return Err(LocalError::Setup("--every must be longer than 0".into()));
            }
            Some(interval) => Schedule::Every(interval),
            None => {
                let pattern = app_files::resolve(&files.timer.schedule, setting)
                    .map_err(LocalError::Setup)?;
                Schedule::ncrontab(&pattern)
                    .map_err(|e| LocalError::Setup(format!("FETCH_SCHEDULE: {e}")))?
            }
        };
        let event_hub =
            app_files::resolve(&files.sink.event_hub_name, setting).map_err(LocalError::Setup)?;
        let consumer_group =
            app_files::resolve(&files.sink.consumer_group, setting).map_err(LocalError::Setup)?;
        Ok(Self {
            files,
            schedule,
            event_hub,
            consumer_group,
            app_root: std::path::absolute(app_root).unwrap_or_else(|_| app_root.to_owned()),
        })
    }
}

/// The handler's handles, built by the composition root, and where rows go; fails before the
/// first tick when a secret the settings need cannot be read (from the environment or the
/// vault), one line each in `check`'s words, and without a vault where to get a CoinCap key.
async fn handles(config: &Config) -> Result<(AppState, String), LocalError> {
    let secrets = secrets::source(&config.secrets).map_err(|e| setup("secrets")(&e))?;
    let unreadable: Vec<String> = app::unreadable_secrets(config, &secrets)
        .await
        .into_iter()
        .map(|(name, line)| match (name, &config.secrets.key_vault_url) {
            (SecretName::CoinCapApiKey, None) => format!("{line}: {GET_A_KEY}"),
            _ => line,
        })
        .collect();
    if !unreadable.is_empty() {
        return Err(LocalError::Setup(unreadable.join("\n  ")));
    }
    let destination = app::rows_destination(config, &secrets)
        .await
        .map_err(|e| LocalError::Setup(e.to_string()))?;
    let state = AppState::build(config, secrets).map_err(|e| LocalError::Setup(e.to_string()))?;
    Ok((state, destination))
}

/// What the schedule costs in CoinCap credits if left running, said before the first tick (at
/// the usual answer size) and again from the first real answer.
struct Credits {
    coincap: CoinCapConfig,
    /// Calls the schedule (or `--every`) makes in a month.
    calls: u64,
}

impl Credits {
    fn line(&self, measured: Measured) -> String {
        let from = match measured {
            Measured::Usual => "if left running",
            Measured::Answer { .. } => "if left running, from the first answer",
        };
        let estimate = Estimate::of(&self.coincap, self.calls, measured);
        format!(
            "CoinCap credits {from}: {}.",
            estimate.with_fix(&self.coincap)
        )
    }
}

/// The handler's HTTP server, in this process, on a port of its own.
struct InProcessHandler {
    base_url: String,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl InProcessHandler {
    async fn start(state: AppState) -> Result<Self, LocalError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| setup("binding a local port")(&e))?;
        let base_url = format!(
            "http://{}",
            listener.local_addr().map_err(|e| setup("local port")(&e))?
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(server::run(listener, state, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            base_url,
            stop,
            server,
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        if let Ok(Err(error)) = self.server.await {
            tracing::warn!(%error, "The handler's server stopped with an error.");
        }
    }
}

/// Fires TimerFetch on the schedule and publishes what it answers, until `ticks`, a stop, or a
/// failure another attempt would repeat (which drains what earlier ticks fetched).
async fn run_timer(
    host: &HostClient,
    files: &AppFiles,
    schedule: &Schedule,
    ticks: Option<u64>,
    hub: &mpsc::UnboundedSender<HubMessage>,
    stop: &Stop,
    credits: &Credits,
) {
    let mut partition = Partition::default();
    let mut measured = false;
    let mut last_fire = None;
    // The first tick fires at once, so a run shows rows without waiting for the schedule.
    let mut next_fire = Utc::now();
    for tick in 1.. {
        let wait = (next_fire - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.requested_now() => return,
        }
        let started = Instant::now();
        let now = Utc::now();
        next_fire = schedule.next_after(now).unwrap_or(now);
        let body = timer::request_body(
            TIMER_FETCH,
            &files.timer.binding,
            now,
            last_fire,
            next_fire,
            false,
        );
        last_fire = Some(now);
        let message = match invoke_timer(host, tick, files.timer.retry, &body, stop).await {
            Ok(response) => {
                let events = output_events(&response, &files.timer.output);
                let published = events.len() as u64;
                let counters = progress::counters::<TimerFetchCounters>(&response);
                let fetched = counters.events_out;
                if !measured && fetched > 0 {
                    measured = true;
                    println!(
                        "{}",
                        credits.line(Measured::Answer {
                            bytes: counters.answer_bytes,
                            assets: fetched,
                        })
                    );
                }
                let fetch = started.elapsed();
                let events = partition.append(events);
                for batch in events.chunks(files.max_event_batch_size) {
                    let _ = hub.send(HubMessage::Batch {
                        tick,
                        events: batch.to_vec(),
                    });
                }
                HubMessage::TickEnd {
                    tick,
                    fetched,
                    published,
                    fetch,
                    started,
                }
            }
            Err(failed) => {
                if failed.fault.is_permanent() {
                    stop.drain();
                }
                HubMessage::TickFailed { tick, failed }
            }
        };
        // The sink worker outlives this loop: the channel is open until it is dropped.
        let _ = hub.send(message);
        if ticks == Some(tick) || stop.requested() {
            return;
        }
    }
}

/// TimerFetch with its function.json retry policy, if it has one, for transient failures; an
/// abandoned run does not wait for its answer.
async fn invoke_timer(
    host: &HostClient,
    tick: u64,
    retry: Option<RetryPolicy>,
    body: &serde_json::Value,
    stop: &Stop,
) -> Result<serde_json::Value, Failed> {
    let mut retries = 0;
    loop {
        let answer = tokio::select! {
            answer = host.invoke(TIMER_FETCH, body) => answer,
            () = stop.abandoned_now() => return Err(Failed {
                error: "abandoned at the stop before it answered".into(),
                fault: Fault::Transient,
            }),
        };
        let failed = match answer {
            Ok(response) => return Ok(response),
            Err(failed) => failed,
        };
        match retry.filter(|policy| policy.allows(retries)) {
            Some(policy) if !stop.requested() && !failed.fault.is_permanent() => {
                let delay = policy.delay(retries);
                println!(
                    "tick {tick:>3} | TimerFetch failed (failure {}; next try in {}, as TimerFetch/function.json's retry policy says): {failed}",
                    retries + 1,
                    humantime::format_duration(delay)
                );
                if stop.backoff(delay).await != stop::Backoff::Elapsed {
                    return Err(failed);
                }
                retries += 1;
            }
            _ => return Err(failed),
        }
    }
}
