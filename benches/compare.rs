//! The side-by-side benchmark of scripts/bench.sh: the release `handler` against the seed's Python
//! producer, on this machine, in one run, then one table (median, p10-p90, target, met?).
//!
//! - Cold start: spawn of `handler` to its first answer on `GET /`, polled every 1 ms over a
//!   fresh TCP connection (a tight readiness probe); peak RSS (VmHWM) at that moment. The seed:
//!   spawn of the venv's Python to the end of the seed's imports; peak RSS from wait4.
//! - TimerFetch on a 2000-asset page from an in-process CoinCap stand-in: latency of
//!   `POST /TimerFetch` and the handler's CPU time per invocation (sum of its threads'
//!   /proc/<pid>/task/*/schedstat, ns). The seed: benches/seed_producer.py on the same page.
//! - EventHubSink: criterion's samples of decode + map + render (benches/sink_batch.rs), rows per
//!   second into SQLite in 1000-event batches, VmHWM after one 10,000-event batch.
//! - The SQL writer, against `COINCAP_TEST_MSSQL` if set: rows per second with its rows staged by
//!   bulk load (as deployed), the same writer sending them as SQL text, and a naive one-row INSERT
//!   writer, their batches taking turns; the ratios; transactions per batch.
//! - With valgrind installed: instructions (callgrind) per TimerFetch page in the whole handler
//!   process, and per 1000 events of the sink's decode + map + render; stable on a busy machine.
//!
//! Settings (scripts/bench.sh sets them): HANDLER_BIN, BENCH_PYTHON (a venv with requests and
//! azure-eventhub), CRITERION_DIR, BENCH_TIMER_ITERATIONS, COINCAP_TEST_MSSQL; BENCH_ONLY=callgrind
//! for the instruction counts alone, BENCH_CALLGRIND_DIR to keep callgrind's files.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use chrono::Utc;
use coincap_stream::BoxFuture;
use coincap_stream::domain::{AssetRow, EventCoordinates, map_events};
use coincap_stream::secrets::{Secret, SecretError, SecretName, SecretSource};
use coincap_stream::warehouse::sql::connection::TdsManager;
use coincap_stream::warehouse::sql::literal;
use coincap_stream::warehouse::sql::statement::{BATCH_LIMITS, Form, KeyTypes, build_batches};
use coincap_stream::warehouse::sql::{BulkLoadSetting, SqlConfig, SqlLogin};
use coincap_stream::warehouse::{Batch, SqlWarehouse, Warehouse};
use serde_json::Value;

const COLD_STARTS: usize = 20;
const PAGE_ASSETS: usize = 2000;
const SINK_BATCHES: usize = 20;
const SINK_BATCH_EVENTS: usize = 1000;
const BIG_BATCH_EVENTS: usize = 10_000;
const BIG_BATCH_RUNS: usize = 5;
const API_KEY: &str = "bench-key";
/// The deployed warehouse setting; nothing listens there, and nothing connects before an
/// EventHubSink invocation.
const SQL_SETTINGS: &[(&str, &str)] = &[
    ("WAREHOUSE", "sql"),
    (
        "SQL_CONNECTION_STRING",
        "Server=tcp:127.0.0.1,9;Database=coincap;User Id=bench;Password=unused",
    ),
];
/// The seed's imports (its script's first lines): what its producer pays before any work.
const SEED_IMPORTS: &str = "import requests\nimport json\nimport asyncio\nfrom azure.eventhub import EventData\nfrom azure.eventhub.aio import EventHubProducerClient\nimport datetime";

/// Instructions counted per TimerFetch page (invocations after one warm-up).
const CALLGRIND_PAGES: u64 = 5;
/// Repetitions of the sink's pure work counted under callgrind.
const CALLGRIND_SINK_RUNS: u64 = 5;

fn main() {
    // `compare --sink-work <n>`: the sink's pure work n times, for a callgrind count.
    let args: Vec<String> = std::env::args().collect();
    if let Some(n) = args
        .iter()
        .position(|a| a == "--sink-work")
        .map(|i| &args[i + 1])
    {
        let body = common::sink_payload(SINK_BATCH_EVENTS);
        for _ in 0..n.parse::<u64>().expect("a count") {
            std::hint::black_box(common::decode_map_render(std::hint::black_box(&body)));
        }
        return;
    }
    let handler = PathBuf::from(
        std::env::var("HANDLER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_handler").into()),
    );
    let python = std::env::var("BENCH_PYTHON").ok().map(PathBuf::from);
    let criterion_dir = std::env::var("CRITERION_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion"),
        PathBuf::from,
    );
    let timer_iterations: usize = std::env::var("BENCH_TIMER_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let work = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let bench = Bench {
        handler,
        work: work.path().to_owned(),
        runtime,
    };
    eprintln!("handler: {}", bench.handler.display());

    let mut table = Table::default();
    // `BENCH_ONLY=callgrind`: the instruction counts alone (a minute), e.g. before and after a change.
    if std::env::var("BENCH_ONLY").is_ok_and(|only| only == "callgrind") {
        let page = common::page(&common::realistic_assets(PAGE_ASSETS), 1_764_288_000_123);
        let stand_in = bench.runtime.block_on(serve_page(page));
        bench.timer_callgrind(&stand_in, &mut table);
        bench.sink_callgrind(&mut table);
        table.print();
        return;
    }

    // 1. Cold start.
    eprintln!("== cold start ({COLD_STARTS} runs)");
    // As deployed (WAREHOUSE=sql: the database connects on first use), and as run locally (a
    // fresh SQLite file: its tables are created, and synced, before the server listens).
    let (starts, start_rss) = bench.cold_starts("sql", SQL_SETTINGS);
    let (local_starts, _) = bench.cold_starts("sqlite", &[]);
    let seed_start = python.as_deref().map(seed_starts);
    table.row(
        "Cold start: spawn -> first GET / (ms), WAREHOUSE=sql",
        &starts,
        "",
        None,
    );
    table.row(
        "Cold start: same, fresh SQLite warehouse (ms)",
        &local_starts,
        "",
        None,
    );
    table.row(
        "Cold start: peak RSS at readiness (MiB)",
        &start_rss,
        "",
        None,
    );
    match &seed_start {
        Some((times, rss)) => {
            table.row("Seed: Python start + imports (ms)", times, "", None);
            table.row("Seed: peak RSS of that start (MiB)", rss, "", None);
            table.ratio(
                "Cold start vs seed start (x faster)",
                median(times) / median(&starts),
                50.0,
            );
            table.ratio(
                "  same, fresh SQLite warehouse (x faster)",
                median(times) / median(&local_starts),
                50.0,
            );
        }
        None => table.missing("Seed: Python start + imports (ms)", "BENCH_PYTHON unset"),
    }

    // 2. TimerFetch on a 2000-asset page.
    eprintln!("== TimerFetch on a {PAGE_ASSETS}-asset page ({timer_iterations} invocations)");
    let page = common::page(
        &common::realistic_assets(PAGE_ASSETS),
        Utc::now().timestamp_millis(),
    );
    eprintln!("page: {} bytes", page.len());
    let stand_in = bench.runtime.block_on(serve_page(page));
    let timer = bench.timer_fetch(&stand_in, timer_iterations);
    table.row(
        "TimerFetch: invocation latency (ms)",
        &timer.latency,
        "",
        None,
    );
    table.row(
        "TimerFetch: handler CPU per page (ms)",
        &timer.cpu,
        "",
        None,
    );
    table.line(
        "TimerFetch: CPU per page, /proc/<pid>/stat (ms, mean)",
        &format!("{:.2}", timer.stat_cpu_mean),
        "10 ms ticks",
        "",
        "",
    );
    table.line(
        "TimerFetch: page faults per page (minflt, mean)",
        &format!("{:.1}", timer.faults_mean),
        "the handler's, /proc/<pid>/stat",
        "",
        "",
    );
    table.row(
        "TimerFetch: peak RSS after the runs (MiB)",
        &[timer.rss],
        "",
        None,
    );
    if let Some(python) = python.as_deref() {
        let url = format!("{stand_in}/assets?limit={PAGE_ASSETS}");
        let faithful = bench.seed_work(python, &url, timer_iterations, true);
        let quiet = bench.seed_work(python, &url, timer_iterations, false);
        table.row("Seed: work on the same page (ms)", &faithful.0, "", None);
        table.row("Seed: CPU on the same page (ms)", &faithful.1, "", None);
        table.row("Seed without its progress print (ms)", &quiet.0, "", None);
        table.ratio(
            "TimerFetch vs seed work, latency (x faster)",
            median(&faithful.0) / median(&timer.latency),
            30.0,
        );
        table.ratio(
            "TimerFetch vs seed work, CPU (x less)",
            median(&faithful.1) / median(&timer.cpu),
            30.0,
        );
        table.ratio(
            "TimerFetch vs seed without print (x faster)",
            median(&quiet.0) / median(&timer.latency),
            0.0,
        );
    } else {
        table.missing("Seed: work on the same page (ms)", "BENCH_PYTHON unset");
    }
    bench.timer_callgrind(&stand_in, &mut table);

    // 3. EventHubSink.
    eprintln!("== EventHubSink");
    match criterion_samples(&criterion_dir, "decode_map_render_1000") {
        Some(ms) => table.row(
            "Sink: decode+map+render 1000 events (ms, criterion)",
            &ms,
            "< 2 ms",
            Some(median(&ms) < 2.0),
        ),
        None => table.missing(
            "Sink: decode+map+render 1000 events (ms, criterion)",
            "run cargo bench --bench sink_batch first",
        ),
    }
    bench.sink_callgrind(&mut table);
    for (step, label) in [
        ("decode_1000", "  of which decode (ms)"),
        ("map_1000", "  of which map (ms)"),
        ("render_1000", "  of which render (ms)"),
    ] {
        if let Some(ms) = criterion_samples(&criterion_dir, step) {
            table.row(label, &ms, "", None);
        }
    }
    let rows_per_second = bench.sqlite_rows_per_second();
    table.row(
        "Sink: rows/s into SQLite (1000-event batches)",
        &rows_per_second,
        "",
        None,
    );
    let (baseline, peak) = bench.big_batch_rss();
    table.row(
        "Sink: peak RSS, 10,000-event batch (MiB)",
        &peak,
        "< 64 MiB",
        Some(median(&peak) < 64.0),
    );
    table.row("  (RSS at readiness, same runs) (MiB)", &baseline, "", None);

    // 4. The SQL writer.
    eprintln!("== SQL writer");
    bench.sql_writer(&mut table);

    table.print();
}

struct Bench {
    handler: PathBuf,
    work: PathBuf,
    runtime: tokio::runtime::Runtime,
}

struct Handler {
    child: Child,
    port: u16,
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Handler {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Bench {
    /// Starts the release handler as the host would: a clean environment, the port in
    /// FUNCTIONS_CUSTOMHANDLER_PORT, a fresh SQLite warehouse.
    fn spawn(&self, name: &str, settings: &[(&str, &str)]) -> Handler {
        self.spawn_under(name, settings, None)
    }

    /// [`Bench::spawn`], under callgrind (counting into `callgrind`) if given.
    fn spawn_under(
        &self,
        name: &str,
        settings: &[(&str, &str)],
        callgrind: Option<&Path>,
    ) -> Handler {
        let port = free_port();
        let db = self.work.join(format!("{name}.db"));
        let _ = std::fs::remove_file(&db);
        let mut command = match callgrind {
            Some(out) => common::callgrind::command(&self.handler, out),
            None => Command::new(&self.handler),
        };
        // What host.json starts: `handler serve` (a bare `handler` prints its help).
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("WAREHOUSE", format!("sqlite:{}", db.display()))
            .env("COINCAP_API_KEY", API_KEY)
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("the handler starts");
        Handler { child, port }
    }

    fn spawn_ready(&self, name: &str, settings: &[(&str, &str)]) -> Handler {
        let handler = self.spawn(name, settings);
        wait_ready(handler.port, Instant::now());
        handler
    }

    fn cold_starts(&self, name: &str, settings: &[(&str, &str)]) -> (Vec<f64>, Vec<f64>) {
        let (mut times, mut rss) = (Vec::new(), Vec::new());
        // One unmeasured start first: the binary in the page cache, as on a warm instance.
        for run in 0..=COLD_STARTS {
            let started = Instant::now();
            let handler = self.spawn(&format!("cold-{name}-{run}"), settings);
            let elapsed = wait_ready(handler.port, started);
            if run > 0 {
                times.push(ms(elapsed));
                rss.push(vm_hwm_mib(handler.pid()));
            }
        }
        (times, rss)
    }

    fn timer_fetch(&self, coincap: &str, iterations: usize) -> TimerFigures {
        let limit = PAGE_ASSETS.to_string();
        let handler = self.spawn_ready(
            "timer",
            &[("COINCAP_BASE_URL", coincap), ("COINCAP_LIMIT", &limit)],
        );
        let http = reqwest::Client::new();
        let pid = handler.pid();
        let body = || {
            coincap_stream::host::timer::request_body(
                "TimerFetch",
                "timer",
                Utc::now(),
                Some(Utc::now()),
                Utc::now(),
                false,
            )
            .to_string()
            .into_bytes()
        };
        let url = handler.url("TimerFetch");
        // Warm-up: the connection to the stand-in, the allocator's arenas; and a check that the
        // whole page is published.
        for _ in 0..3 {
            let answer = self.runtime.block_on(post(&http, &url, body()));
            let events = answer["Outputs"]["events"].as_array().map_or(0, Vec::len);
            assert_eq!(
                events, PAGE_ASSETS,
                "TimerFetch published the page: {answer}"
            );
        }
        let (mut latency, mut cpu) = (Vec::new(), Vec::new());
        let stat_before = stat_cpu_ticks(pid);
        let faults_before = stat_field(pid, 10);
        for _ in 0..iterations {
            let body = body();
            let cpu_before = schedstat_ns(pid);
            let started = Instant::now();
            let (status, answer) = self.runtime.block_on(post_raw(&http, &url, body));
            latency.push(ms(started.elapsed()));
            assert!(status.is_success() && answer.len() > PAGE_ASSETS * 100);
            cpu.push((schedstat_ns(pid).saturating_sub(cpu_before)) as f64 / 1e6);
        }
        let ticks = stat_cpu_ticks(pid) - stat_before;
        let faults = stat_field(pid, 10) - faults_before;
        TimerFigures {
            latency,
            cpu,
            stat_cpu_mean: ticks as f64 * 1000.0 / clock_ticks() / iterations as f64,
            faults_mean: faults as f64 / iterations as f64,
            rss: vm_hwm_mib(pid),
        }
    }

    /// Where callgrind writes: `BENCH_CALLGRIND_DIR` (kept, for callgrind_annotate) or the
    /// bench's temporary directory.
    fn callgrind_out(&self, name: &str) -> PathBuf {
        let dir = std::env::var_os("BENCH_CALLGRIND_DIR")
            .map_or_else(|| self.work.clone(), PathBuf::from);
        dir.join(format!("{name}.callgrind"))
    }

    /// TimerFetch's instructions per page, if valgrind is installed.
    fn timer_callgrind(&self, stand_in: &str, table: &mut Table) {
        if !common::callgrind::available() {
            table.missing(
                "TimerFetch: instructions per page (callgrind)",
                "valgrind not installed",
            );
            return;
        }
        eprintln!("== TimerFetch under callgrind");
        let per_page = common::callgrind::per_repetition(CALLGRIND_PAGES, |pages| {
            self.timer_instructions(stand_in, pages)
        });
        table.line(
            "TimerFetch: instructions per page (callgrind, handler)",
            &format!("{:.1} M", per_page as f64 / 1e6),
            &format!("whole process, n={CALLGRIND_PAGES}"),
            "",
            "",
        );
    }

    /// The sink's decode + map + render: instructions per 1000 events, if valgrind is installed.
    fn sink_callgrind(&self, table: &mut Table) {
        if !common::callgrind::available() {
            table.missing(
                "Sink: instructions per 1000 events (callgrind)",
                "valgrind not installed",
            );
            return;
        }
        eprintln!("== the sink's pure work under callgrind");
        let out = self.callgrind_out("sink");
        let per_batch = common::callgrind::per_repetition(CALLGRIND_SINK_RUNS, |runs| {
            let status = common::callgrind::command(&common::callgrind::this_executable(), &out)
                .args(["--sink-work", &runs.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("valgrind runs");
            assert!(
                status.success(),
                "the sink's work under callgrind: {status}"
            );
            common::callgrind::total(&out)
        });
        table.line(
            "Sink: instructions per 1000 events (callgrind)",
            &format!("{:.1} M", per_batch as f64 / 1e6),
            &format!("decode+map+render, n={CALLGRIND_SINK_RUNS}"),
            "",
            "",
        );
    }

    /// Instructions of the whole handler process (started under callgrind, with one warm-up
    /// invocation) for `pages` TimerFetch invocations on the stand-in's page.
    fn timer_instructions(&self, coincap: &str, pages: u64) -> u64 {
        let limit = PAGE_ASSETS.to_string();
        let out = self.callgrind_out(&format!("timer-{pages}"));
        let handler = self.spawn_under(
            "timer-callgrind",
            &[("COINCAP_BASE_URL", coincap), ("COINCAP_LIMIT", &limit)],
            Some(&out),
        );
        wait_ready(handler.port, Instant::now());
        let http = reqwest::Client::new();
        let url = handler.url("TimerFetch");
        for _ in 0..=pages {
            let body = coincap_stream::host::timer::request_body(
                "TimerFetch",
                "timer",
                Utc::now(),
                Some(Utc::now()),
                Utc::now(),
                false,
            )
            .to_string()
            .into_bytes();
            let (status, answer) = self.runtime.block_on(post_raw(&http, &url, body));
            assert!(status.is_success() && answer.len() > PAGE_ASSETS * 100);
        }
        let mut handler = handler;
        common::callgrind::terminate(&mut handler.child);
        common::callgrind::total(&out)
    }

    /// benches/seed_producer.py on the same page; (wall ms, CPU ms) per iteration.
    fn seed_work(
        &self,
        python: &Path,
        url: &str,
        iterations: usize,
        progress: bool,
    ) -> (Vec<f64>, Vec<f64>) {
        let out = self.work.join(format!("seed-{progress}.json"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/seed_producer.py");
        let mut command = Command::new(python);
        command
            .arg(&script)
            .arg(url)
            .arg(iterations.to_string())
            .arg("3")
            .arg(&out)
            .env_remove("PYTHONDONTWRITEBYTECODE")
            // The progress print goes to /dev/null: what is measured is the seed's work, not a
            // terminal's.
            .stdout(Stdio::null());
        if !progress {
            command.arg("--no-print");
        }
        // The stand-in lives on this process' runtime, which keeps serving while we wait.
        let status = command.status().expect("python runs");
        assert!(status.success(), "seed_producer.py failed: {status}");
        let result: Value =
            serde_json::from_slice(&std::fs::read(&out).expect("the seed's results")).unwrap();
        assert_eq!(result["events"], PAGE_ASSETS, "the seed batched the page");
        let list = |key: &str| -> Vec<f64> {
            result[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        (list("wall_ms"), list("cpu_ms"))
    }

    fn sqlite_rows_per_second(&self) -> Vec<f64> {
        let handler = self.spawn_ready("sink", &[]);
        let http = reqwest::Client::new();
        let now = Utc::now();
        let payloads: Vec<Vec<u8>> = (0..SINK_BATCHES + 2)
            .map(|round| {
                let bodies =
                    common::fresh_bodies(SINK_BATCH_EVENTS, round as u64, now.timestamp_millis());
                let first = (round * SINK_BATCH_EVENTS) as i64;
                common::sink_request(&bodies, first, now)
                    .to_string()
                    .into_bytes()
            })
            .collect();
        let mut rates = Vec::new();
        for (round, payload) in payloads.into_iter().enumerate() {
            let started = Instant::now();
            let answer = self
                .runtime
                .block_on(post(&http, &handler.url("EventHubSink"), payload));
            let elapsed = started.elapsed();
            let written = counter(&answer, "rows_written");
            assert_eq!(written, SINK_BATCH_EVENTS as u64, "{answer}");
            if round >= 2 {
                rates.push(written as f64 / elapsed.as_secs_f64());
            }
        }
        rates
    }

    /// (VmHWM at readiness, VmHWM after one 10,000-event batch), a fresh handler per run.
    fn big_batch_rss(&self) -> (Vec<f64>, Vec<f64>) {
        let now = Utc::now();
        let bodies = common::fresh_bodies(BIG_BATCH_EVENTS, 99, now.timestamp_millis());
        let payload = common::sink_request(&bodies, 0, now)
            .to_string()
            .into_bytes();
        eprintln!("10,000-event payload: {} bytes", payload.len());
        let http = reqwest::Client::new();
        let (mut baseline, mut peak) = (Vec::new(), Vec::new());
        for run in 0..BIG_BATCH_RUNS {
            let handler = self.spawn_ready(&format!("big-{run}"), &[]);
            baseline.push(vm_hwm_mib(handler.pid()));
            let answer =
                self.runtime
                    .block_on(post(&http, &handler.url("EventHubSink"), payload.clone()));
            assert_eq!(
                counter(&answer, "rows_written"),
                BIG_BATCH_EVENTS as u64,
                "{answer}"
            );
            peak.push(vm_hwm_mib(handler.pid()));
        }
        (baseline, peak)
    }

    fn sql_writer(&self, table: &mut Table) {
        // What the code guarantees, measured on the rendered text: one string per batch, sent by
        // one `simple_query` in SqlWarehouse::write_batch.
        let now = Utc::now();
        let bodies = common::fresh_bodies(SINK_BATCH_EVENTS, 0, now.timestamp_millis());
        let batch = to_batch(&bodies);
        let transactions = build_batches(
            &batch.rows,
            &batch.rejects,
            now,
            &KeyTypes::default(),
            &BATCH_LIMITS,
            Form::default(),
        );
        assert_eq!(transactions.len(), 1, "a 1000-row batch is one transaction");
        let statements = transactions[0].sql.matches(";\n").count();
        let connection = std::env::var("COINCAP_TEST_MSSQL")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let Some(connection) = connection else {
            table.line(
                "SQL writer, text: round trips per 1000-row batch",
                "1 (by construction)",
                &format!("1 SQL text, {statements} statements"),
                "1",
                "yes (not measured on a server)",
            );
            table.line(
                "Naive writer: round trips per 1000-row batch",
                "1000 (by construction)",
                "one INSERT per row",
                "",
                "",
            );
            for name in [
                "SQL writer, bulk (as deployed): rows/s",
                "SQL writer, text (SQL_BULK_LOAD=off): rows/s",
                "Naive one-row INSERT writer: rows/s",
            ] {
                table.missing(name, "not measured (set COINCAP_TEST_MSSQL)");
            }
            return;
        };
        self.runtime
            .block_on(sql_live(&self.handler, &connection, table));
    }
}

struct TimerFigures {
    latency: Vec<f64>,
    cpu: Vec<f64>,
    stat_cpu_mean: f64,
    /// Minor page faults of the handler per page.
    faults_mean: f64,
    rss: f64,
}

/// The seed's start, `COLD_STARTS` times after two warm-ups (which also write any missing .pyc):
/// (wall ms, peak RSS MiB from wait4's rusage).
fn seed_starts(python: &Path) -> (Vec<f64>, Vec<f64>) {
    eprintln!("== seed start ({COLD_STARTS} runs)");
    let (mut times, mut rss) = (Vec::new(), Vec::new());
    for run in 0..COLD_STARTS + 2 {
        let started = Instant::now();
        let child = Command::new(python)
            .arg("-c")
            .arg(SEED_IMPORTS)
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("python starts");
        let (status, max_rss_kib) = wait4(child);
        let elapsed = started.elapsed();
        assert_eq!(status, 0, "the seed's imports failed");
        if run >= 2 {
            times.push(ms(elapsed));
            rss.push(max_rss_kib as f64 / 1024.0);
        }
    }
    (times, rss)
}

/// Waits for a child with wait4, for its exit status and peak RSS (KiB).
fn wait4(child: Child) -> (i32, i64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value, and wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std reaps only in wait/try_wait).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    std::mem::forget(child);
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

/// Polls `GET /` every 1 ms, each time over a new connection, until an HTTP answer arrives;
/// returns the time since `started`.
fn wait_ready(port: u16, started: Instant) -> Duration {
    let deadline = started + Duration::from_secs(20);
    loop {
        if let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            let request =
                format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
            let mut answer = Vec::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_end(&mut answer).is_ok()
                && answer.starts_with(b"HTTP/1.1 ")
            {
                return started.elapsed();
            }
        }
        assert!(Instant::now() < deadline, "no answer on GET / in 20 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> Value {
    let (status, bytes) = post_raw(http, url, body).await;
    let value: Value = serde_json::from_slice(&bytes).expect("a JSON answer");
    assert!(status.is_success(), "{status}: {value}");
    value
}

/// Posts like the host and reads the whole answer (not parsed: what the host does with it is not
/// the handler's time).
async fn post_raw(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> (reqwest::StatusCode, axum::body::Bytes) {
    let response = http
        .post(url)
        .header("Content-Type", "application/json")
        .header(
            "X-Azure-Functions-InvocationId",
            uuid::Uuid::new_v4().to_string(),
        )
        .body(body)
        .send()
        .await
        .expect("the handler answers");
    let status = response.status();
    (status, response.bytes().await.expect("a body"))
}

/// A `key=value` counter of the closing log line.
fn counter(answer: &Value, key: &str) -> u64 {
    answer["Logs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|line| line.starts_with("Invocation finished."))
        .flat_map(str::split_whitespace)
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The CoinCap stand-in: `GET /v3/assets` always answers `page`. Returns the base URL.
async fn serve_page(page: String) -> String {
    let page = axum::body::Bytes::from(page);
    let app = Router::new().route(
        "/v3/assets",
        get(move || {
            let page = page.clone();
            async move { ([("content-type", "application/json")], page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("a port for the stand-in");
    let url = format!("http://{}/v3", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn vm_hwm_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .expect("VmHWM")
        / 1024.0
}

/// Time on CPU of all the process' threads, in ns (schedstat's first field).
fn schedstat_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("/proc task")
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// utime + stime of the process (clock ticks), from /proc/<pid>/stat.
fn stat_cpu_ticks(pid: u32) -> u64 {
    stat_field(pid, 14) + stat_field(pid, 15)
}

/// Field `n` (numbered from 1 as in proc(5)) of /proc/<pid>/stat, a number: 10 is minflt
/// (minor page faults: memory mapped in on first touch), 14 utime, 15 stime.
fn stat_field(pid: u32, n: usize) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let field = rest.split_whitespace().nth(n - 3).expect("the field");
    field.parse().expect("a number")
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// criterion's samples of `sink_batch/<id>`, as milliseconds per iteration.
fn criterion_samples(dir: &Path, id: &str) -> Option<Vec<f64>> {
    let path = dir.join("sink_batch").join(id).join("new/sample.json");
    let sample: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let iters = sample["iters"].as_array()?;
    let times = sample["times"].as_array()?;
    Some(
        iters
            .iter()
            .zip(times)
            .filter_map(|(n, t)| Some(t.as_f64()? / n.as_f64()? / 1e6))
            .collect(),
    )
}

fn to_batch(bodies: &[String]) -> Batch {
    let mapped = map_events(bodies.iter().enumerate().map(|(i, body)| {
        (
            body.clone(),
            EventCoordinates {
                partition_id: Some("0".into()),
                offset: Some(i.to_string()),
                sequence_number: Some(i as i64),
                enqueued_time: Some(Utc::now()),
                ..EventCoordinates::default()
            },
        )
    }));
    Batch {
        rows: mapped.rows,
        rejects: mapped.rejects,
    }
}

struct FixedSecret(Secret);

impl SecretSource for FixedSecret {
    fn get(&self, _name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>> {
        let secret = self.0.clone();
        Box::pin(async move { Ok(secret) })
    }

    fn describe(&self) -> String {
        "COINCAP_TEST_MSSQL".into()
    }
}

/// The writer with its rows staged by bulk load (as deployed), the same writer sending them as SQL
/// text (`SQL_BULK_LOAD=off`), and a naive one-INSERT-per-row writer: same rows (fresh ids), same
/// server, their batches taking turns so the machine's drift falls on all three alike.
async fn sql_live(handler: &Path, connection: &str, table: &mut Table) {
    const BATCHES: usize = 6;
    const NAIVE_BATCHES: usize = 3;
    let init = Command::new(handler)
        .arg("init-warehouse")
        .env("SQL_CONNECTION_STRING", connection)
        .stdout(Stdio::null())
        .status()
        .expect("init-warehouse runs");
    assert!(init.success(), "handler init-warehouse failed");
    let secrets: Arc<dyn SecretSource> = Arc::new(FixedSecret(Secret::new(connection)));
    let config = |bulk_load| SqlConfig {
        login: SqlLogin::ConnectionString,
        pool_size: 2,
        command_timeout: Duration::from_secs(120),
        idle_timeout: Duration::from_secs(60),
        auto_pause_delay: None,
        bulk_load,
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let rows_of = |label: &str, round: usize| -> Batch {
        let now = Utc::now().timestamp_millis();
        let bodies: Vec<String> = common::fresh_bodies(SINK_BATCH_EVENTS, round as u64, now)
            .into_iter()
            .map(|b| {
                b.replacen(
                    "\"id\":\"r",
                    &format!("\"id\":\"b{}{label}-r", &run[..8]),
                    1,
                )
            })
            .collect();
        to_batch(&bodies)
    };

    let bulk = SqlWarehouse::new(config(BulkLoadSetting::Auto), Arc::clone(&secrets), None);
    let text = SqlWarehouse::new(config(BulkLoadSetting::Off), Arc::clone(&secrets), None);
    for (writer, label) in [(&bulk, "b"), (&text, "t")] {
        writer
            .write(rows_of(label, 999))
            .await
            .expect("a warm-up batch");
    }
    let manager = TdsManager::new(config(BulkLoadSetting::Off), secrets, None);
    let mut client = manager.connect_client().await.expect("a connection");
    let trips_before = (bulk.round_trips(), text.round_trips());
    let (mut bulk_rates, mut text_rates, mut naive_rates) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..BATCHES {
        for (writer, label, rates) in [(&bulk, "b", &mut bulk_rates), (&text, "t", &mut text_rates)]
        {
            let batch = rows_of(label, round);
            let rows = batch.rows.len() as f64;
            let started = Instant::now();
            let report = writer.write(batch).await.expect("a batch written");
            rates.push(rows / started.elapsed().as_secs_f64());
            assert_eq!(report.rows_written as usize, SINK_BATCH_EVENTS);
        }
        if round < NAIVE_BATCHES {
            let batch = rows_of("n", round);
            let statements: Vec<String> = batch.rows.iter().map(naive_insert).collect();
            let started = Instant::now();
            for statement in &statements {
                client
                    .simple_query(statement.as_str())
                    .await
                    .expect("an INSERT")
                    .into_results()
                    .await
                    .expect("its answer");
            }
            naive_rates.push(statements.len() as f64 / started.elapsed().as_secs_f64());
        }
    }
    let trips = |now: u64, before: u64| (now - before) as f64 / BATCHES as f64;
    let bulk_trips = trips(bulk.round_trips(), trips_before.0);
    let text_trips = trips(text.round_trips(), trips_before.1);
    table.line(
        "SQL writer, bulk: transactions per 1000-row batch",
        &format!("{bulk_trips:.1}"),
        "after its bulk load: column query, INSERT BULK, rows",
        "1",
        if bulk_trips <= 1.0 { "yes" } else { "no" },
    );
    table.line(
        "SQL writer, text: round trips per 1000-row batch",
        &format!("{text_trips:.1}"),
        "one SQL text",
        "1",
        if text_trips <= 1.0 { "yes" } else { "no" },
    );
    table.line(
        "Naive writer: round trips per 1000-row batch",
        "1000",
        "one INSERT per row",
        "",
        "",
    );
    table.row(
        "SQL writer, bulk (as deployed): rows/s",
        &bulk_rates,
        "",
        None,
    );
    table.row(
        "SQL writer, text (SQL_BULK_LOAD=off): rows/s",
        &text_rates,
        "",
        None,
    );
    table.row(
        "Naive one-row INSERT writer: rows/s",
        &naive_rates,
        "",
        None,
    );
    let naive = median(&naive_rates);
    table.ratio(
        "Bulk writer vs naive (x faster)",
        median(&bulk_rates) / naive,
        5.0,
    );
    table.ratio(
        "Text writer vs naive (x faster)",
        median(&text_rates) / naive,
        0.0,
    );
    table.ratio(
        "Bulk writer vs text writer (x faster)",
        median(&bulk_rates) / median(&text_rates),
        0.0,
    );
}

/// `INSERT ... VALUES (...)` for one row: what a naive writer sends, one round trip each.
fn naive_insert(row: &AssetRow) -> String {
    let mut sql = String::from(
        "INSERT INTO assets.asset_statistics_history_v3 (id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, runtime_timestamp) VALUES (",
    );
    let text = |sql: &mut String, v: Option<&str>| match v {
        Some(v) => literal::nstring(sql, v),
        None => sql.push_str("NULL"),
    };
    text(&mut sql, Some(row.id.as_str()));
    sql.push_str(", ");
    match row.asset_rank {
        Some(rank) => literal::integer(&mut sql, rank),
        None => sql.push_str("NULL"),
    }
    for value in [&row.symbol, &row.asset_name] {
        sql.push_str(", ");
        text(&mut sql, value.as_ref().map(|v| v.as_str()));
    }
    for value in [
        row.supply,
        row.max_supply,
        row.market_cap_usd,
        row.volume_usd_24_hr,
        row.price_usd,
        row.change_percent_24_hr,
        row.vwap_24_hr,
    ] {
        sql.push_str(", ");
        match value {
            Some(v) => literal::float(&mut sql, v.get()),
            None => sql.push_str("NULL"),
        }
    }
    sql.push_str(", ");
    text(&mut sql, row.explorer.as_ref().map(|v| v.as_str()));
    sql.push_str(", ");
    literal::datetime(&mut sql, row.runtime_timestamp);
    sql.push(')');
    sql
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// Linear interpolation between closest ranks.
fn percentile(values: &[f64], p: f64) -> f64 {
    let sorted = sorted(values);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

fn number(value: f64) -> String {
    match value.abs() {
        v if v >= 1000.0 => format!("{value:.0}"),
        v if v >= 10.0 => format!("{value:.1}"),
        v if v >= 0.1 => format!("{value:.2}"),
        _ => format!("{value:.3}"),
    }
}

#[derive(Default)]
struct Table {
    lines: Vec<[String; 5]>,
}

impl Table {
    fn line(&mut self, figure: &str, median: &str, spread: &str, target: &str, met: &str) {
        self.lines.push([
            figure.into(),
            median.into(),
            spread.into(),
            target.into(),
            met.into(),
        ]);
    }

    fn row(&mut self, figure: &str, values: &[f64], target: &str, met: Option<bool>) {
        let spread = if values.len() > 1 {
            format!(
                "{}-{} (p10-p90, n={})",
                number(percentile(values, 10.0)),
                number(percentile(values, 90.0)),
                values.len()
            )
        } else {
            "n=1".into()
        };
        let met = met.map_or("", |m| if m { "yes" } else { "NO" });
        self.line(figure, &number(median(values)), &spread, target, met);
    }

    fn ratio(&mut self, figure: &str, ratio: f64, target: f64) {
        let (target, met) = if target > 0.0 {
            (
                format!(">= {target:.0}x"),
                if ratio >= target { "yes" } else { "NO" },
            )
        } else {
            (String::new(), "")
        };
        self.line(
            figure,
            &format!("{}x", number(ratio)),
            "ratio of medians",
            &target,
            met,
        );
    }

    fn missing(&mut self, figure: &str, why: &str) {
        self.line(figure, why, "", "", "");
    }

    fn print(&self) {
        let header = ["Figure", "Median", "Spread", "Target", "Met?"];
        let mut widths: HashMap<usize, usize> = HashMap::new();
        for line in self
            .lines
            .iter()
            .map(|l| l.each_ref().map(String::as_str))
            .chain([header])
        {
            for (i, cell) in line.iter().enumerate() {
                let width = widths.entry(i).or_default();
                *width = (*width).max(cell.chars().count());
            }
        }
        let render = |cells: [&str; 5]| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<width$}", width = widths[&i]))
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        println!();
        println!("{}", render(header));
        let rule: Vec<String> = (0..5).map(|i| "-".repeat(widths[&i])).collect();
        println!("|-{}-|", rule.join("-|-"));
        for line in &self.lines {
            println!("{}", render(line.each_ref().map(String::as_str)));
        }
    }
}
