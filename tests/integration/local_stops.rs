//! How `handler local` stops, as a new user meets it: a failure another attempt would repeat stops
//! it at once with one line that names the tick and the fix; a transient one is retried by the
//! function's policy, one line per failed attempt naming its tick; SIGTERM and Ctrl-C drain within
//! `--drain-timeout`, a second signal abandons at once; everything on standard output; the exit
//! code and the summary's last line say whether everything fetched was written, and why not. The real binary, the CoinCap stand-in, SQLite files and closed or unresolvable servers.

mod abandoned;

use std::path::Path;
use std::time::Duration;

use crate::common::coincap::{CoinCap, page, realistic_assets};
use crate::common::run::Binary;
use crate::common::{app_root, closed_port, fast_retry_app_root};

/// The login of the warehouse settings below: it must never be printed.
const PASSWORD: &str = "pw-9c2e71-never-shown";

/// A host name no resolver answers, whatever the network: its first label has 64 characters, one
/// more than DNS allows, so the C library refuses it ("Name or service not known") without asking
/// a server.
fn unresolvable_host() -> String {
    format!("{}.invalid", "a".repeat(64))
}

fn local(root: &Path, coincap_url: &str) -> Binary {
    Binary::local(root).coincap_at(coincap_url)
}

/// A connection string for `server` (`host,port`) with the login that must never be printed.
fn connection_to(server: &str) -> String {
    format!(
        "Server=tcp:{server};Database=coincap;User Id=loader;Password={PASSWORD};TrustServerCertificate=true"
    )
}

async fn coincap() -> CoinCap {
    CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_coincap_key_stops_the_run_at_once_with_its_fix_and_a_failing_exit() {
    let coincap = coincap().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    // No --ticks: the run must end by itself.
    let stopped = local(&app_root(), &coincap.url)
        .env("COINCAP_API_KEY", "not-the-key-3e1b")
        .sqlite(&db)
        .args(["--every", "200ms"])
        .output()
        .await;

    assert!(!stopped.status.success(), "{}", stopped.stdout);
    let lines: Vec<&str> = stopped.stdout.lines().collect();
    assert!(
        lines[3].starts_with("CoinCap credits if left running: about 26,784,000 credits a month (13,392,000 calls in a 31-day month x 2 credits for 10 assets"),
        "every 200 ms, said before the first tick: {}",
        stopped.stdout
    );
    assert!(
        lines[3].contains(
            "over COINCAP_MONTHLY_CREDITS=2,500. Fix: FETCH_SCHEDULE=\"0 0 * * * *\" (hourly"
        ),
        "{}",
        stopped.stdout
    );
    assert_eq!(
        lines[4],
        "tick   1 | TimerFetch failed permanently, stopping at once: CoinCap refused the API key (HTTP 401). Fix: set COINCAP_API_KEY to a key CoinCap accepts (with KEY_VAULT_URL: the vault's secret named by COINCAP_API_KEY_SECRET); keys are at https://pro.coincap.io/dashboard",
        "{}",
        stopped.stdout
    );
    assert!(
        lines[5].starts_with("Summary: 1 ticks (1 failed), fetched 0, published 0, written 0"),
        "{}",
        stopped.stdout
    );
    assert_eq!(
        lines[6..],
        [
            "Stopped at once by a failure another attempt would repeat: TimerFetch: CoinCap refused the API key (HTTP 401). Fix: set COINCAP_API_KEY to a key CoinCap accepts (with KEY_VAULT_URL: the vault's secret named by COINCAP_API_KEY_SECRET); keys are at https://pro.coincap.io/dashboard. No rows were written."
        ],
        "the summary carries the reason: the output may be read from a file alone"
    );
    assert_eq!(stopped.stderr, "", "no log without --log");
    assert_eq!(
        coincap.seen().len(),
        1,
        "one call: a refused key is not retried, and no tick follows"
    );
    stopped.assert_never_shown(&["not-the-key-3e1b"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_warehouse_host_stops_the_run_at_once_naming_the_setting_to_fix() {
    let coincap = coincap().await;
    let host = unresolvable_host();
    // The next tick would be in an hour: the run must end by itself.
    let stopped = local(&app_root(), &coincap.url)
        .sql(&connection_to(&format!("{host},1433")))
        .args(["--every", "1h"])
        .output()
        .await;

    assert!(!stopped.status.success(), "{}", stopped.stdout);
    assert_eq!(
        stopped.stdout.lines().next(),
        Some(
            format!("coincap-stream local: rows go to database coincap on {host}:1433 (login from environment variable SQL_CONNECTION_STRING); secrets come from environment variables.")
                .as_str()
        )
    );
    assert_eq!(
        stopped.stderr, "",
        "one stream: the screen is standard output"
    );
    let failures: Vec<&str> = stopped
        .stdout
        .lines()
        .filter(|line| line.contains("EventHubSink failed"))
        .collect();
    assert_eq!(failures.len(), 1, "one line per failure: {failures:?}");
    let line = failures[0];
    let reason = format!(
        "the SQL warehouse failed while connecting (permanent): cannot reach {host}:1433: "
    );
    let fix = ". Fix: check the server's host name (Server= in SQL_CONNECTION_STRING, or SQL_SERVER): it does not resolve";
    assert!(
        line.starts_with(&format!(
            "tick   1 | EventHubSink failed permanently, stopping at once: {reason}"
        )) && line.ends_with(fix),
        "the tick is named: {line}"
    );
    assert!(
        stopped.stdout.contains(
            "written 0, duplicates skipped 0, rejected 0, sink failures 1, dropped 0, not written 4"
        ),
        "the failure printed is the failure counted: {}",
        stopped.stdout
    );
    let verdict = stopped.stdout.lines().last().unwrap();
    assert!(
        verdict.starts_with(&format!(
            "Stopped at once by a failure another attempt would repeat: EventHubSink: {reason}"
        )) && verdict.ends_with(&format!(
            "{fix}. 4 fetched events were not written. No rows were written."
        )),
        "{verdict}"
    );
    assert_eq!(coincap.seen().len(), 1, "no second tick");
    stopped.assert_never_shown(&[PASSWORD]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_tls_certificate_stops_the_run_at_once_and_check_names_it_too() {
    // CoinCap over HTTPS with a certificate from a CA this machine does not trust (no
    // SSL_CERT_FILE): every attempt would be refused the same way.
    let ca = crate::common::tls::TestCa::new();
    let page = page(1_747_000_000_000, &realistic_assets());
    let coincap = CoinCap::start_https(&ca, vec![], crate::common::coincap::Reply::ok(page)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let stopped = local(&app_root(), &coincap.url)
        .sqlite(&db)
        .args(["--every", "200ms"])
        .output()
        .await;

    assert!(!stopped.status.success(), "{}", stopped.stdout);
    let tick = stopped
        .stdout
        .lines()
        .find(|line| line.starts_with("tick   1 |"))
        .unwrap_or_else(|| panic!("{}", stopped.stdout));
    assert!(
        tick.starts_with("tick   1 | TimerFetch failed permanently, stopping at once: CoinCap request failed: ")
            && tick.contains("certificate")
            && tick.ends_with(". Fix: check COINCAP_BASE_URL (CoinCap v3 is https://rest.coincap.io/v3): its TLS certificate was refused (is this machine's clock right? SSL_CERT_FILE names extra trusted roots)"),
        "{tick}"
    );
    assert!(
        !tick.contains("gave up after"),
        "a refused certificate is not retried: {tick}"
    );

    let output = Binary::check()
        .arg("--app-root")
        .arg(app_root())
        .coincap(&coincap)
        .sqlite(&db)
        .output()
        .await;
    let stdout = &output.stdout;
    assert!(!output.status.success());
    assert!(
        stdout.contains(&format!(
            "FAIL  CoinCap {}: CoinCap request failed: ",
            coincap.url
        )) && stdout.contains("its TLS certificate was refused"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_retried_one_line_each_and_sigterm_ends_it_at_the_drain_deadline() {
    let coincap = coincap().await;
    let (_closed, port) = closed_port();
    let root = fast_retry_app_root();
    let child = local(root.path(), &coincap.url)
        .sql(&connection_to(&format!("127.0.0.1,{port}")))
        .args(["--ticks", "1", "--drain-timeout", "2s"])
        .spawn();
    child
        .wait_for(Duration::from_secs(30), |stdout, _| {
            stdout
                .matches("tick   1 | EventHubSink failed (failure")
                .count()
                >= 3
        })
        .await;

    child.signal("-TERM");
    let stopped = child.finish(Duration::from_secs(30)).await;

    assert!(!stopped.status.success(), "{}", stopped.stdout);
    assert_eq!(
        stopped.stderr, "",
        "one stream: the screen is standard output"
    );
    let reason = format!(
        "the SQL warehouse failed while connecting (transient): cannot reach 127.0.0.1:{port}: Connection refused"
    );
    let mut failures = 0;
    for line in stopped.stdout.lines() {
        if line.starts_with("tick   1 | EventHubSink failed (failure ") {
            failures += 1;
            assert!(
                line.contains(&format!("): {reason}")),
                "each retry names its tick and reason: {line}"
            );
        }
    }
    assert!(stopped.stdout.contains(
        "\nStopping (SIGTERM): no new ticks; writing what was already fetched for at most 2s (--drain-timeout). Ctrl-C or SIGTERM again abandons it.\n"
    ));
    assert!(stopped.stdout.contains(
        "\nAbandoning: the drain deadline of 2s (--drain-timeout) passed; events not yet written are counted as not written.\n"
    ));
    assert!(
        stopped.stdout.contains(&format!(
            "sink failures {failures}, dropped 0, not written 4"
        )),
        "the failures printed are the failures counted ({failures}): {}",
        stopped.stdout
    );
    let verdict = stopped.stdout.lines().last().unwrap();
    assert!(
        verdict.starts_with(&format!(
            "Not written: 4 fetched events (left unwritten at the stop; the last failure: EventHubSink: {reason}"
        )) && verdict.ends_with("). No rows were written."),
        "{verdict}"
    );
    stopped.assert_never_shown(&[PASSWORD]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_abandons_at_once_whatever_the_drain_deadline() {
    let coincap = coincap().await;
    let (_closed, port) = closed_port();
    let child = local(&app_root(), &coincap.url)
        .sql(&connection_to(&format!("127.0.0.1,{port}")))
        .args(["--ticks", "1", "--drain-timeout", "10m"])
        .spawn();
    child
        .wait_for(Duration::from_secs(30), |stdout, _| {
            stdout.contains("tick   1 | EventHubSink failed (failure 1; next try in 5s, as EventHubSink/function.json's retry policy says)")
        })
        .await;
    child.signal("-TERM");
    child
        .wait_for(Duration::from_secs(10), |stdout, _| {
            stdout.contains("Stopping (SIGTERM)")
        })
        .await;

    child.signal("-INT");
    // Ten minutes of drain deadline: only the second signal can end it within the bound.
    let stopped = child.finish(Duration::from_secs(60)).await;

    assert!(!stopped.status.success());
    assert!(
        stopped.stdout.contains(
            "\nAbandoning (Ctrl-C again): events not yet written are counted as not written.\n"
        ),
        "{}",
        stopped.stdout
    );
    let verdict = stopped.stdout.lines().last().unwrap();
    assert!(
        verdict.starts_with("Not written: 4 fetched events (left unwritten at the stop; the last failure: EventHubSink: the SQL warehouse failed while connecting (transient): cannot reach 127.0.0.1:"),
        "{verdict}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_what_was_fetched_and_a_complete_run_exits_0() {
    let coincap = coincap().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let child = local(&app_root(), &coincap.url)
        .sqlite(&db)
        .args(["--every", "1h"])
        .spawn();
    child
        .wait_for(Duration::from_secs(30), |stdout, _| {
            stdout.contains("tick   1 |")
        })
        .await;
    child.signal("-TERM");
    let stopped = child.finish(Duration::from_secs(30)).await;

    assert!(stopped.status.success(), "{}", stopped.stdout);
    assert!(
        stopped
            .stdout
            .contains("\nStopping (SIGTERM): no new ticks;"),
        "{}",
        stopped.stdout
    );
    assert!(
        stopped
            .stdout
            .contains("Summary: 1 ticks (0 failed), fetched 4, published 4, written 4"),
        "{}",
        stopped.stdout
    );
    assert_eq!(
        stopped.stdout.lines().last(),
        Some(format!("Rows are in the SQLite file {}.", db.display()).as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_every_tick_failed_exits_non_zero_and_claims_no_rows() {
    let (_closed, port) = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let output = local(&app_root(), &format!("http://127.0.0.1:{port}/v3"))
        .sqlite(&db)
        .env("COINCAP_MAX_RETRIES", "0")
        .args(["--ticks", "1"])
        .output()
        .await;
    let stdout = &output.stdout;
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("tick   1 | TimerFetch failed: CoinCap request failed:"),
        "a refused connection is weather, not a stop: {stdout}"
    );
    assert!(
        stdout.contains("Summary: 1 ticks (1 failed), fetched 0, published 0, written 0"),
        "{stdout}"
    );
    let verdict = stdout.lines().last().unwrap();
    assert!(
        verdict.starts_with(
            "No rows were written: every tick failed; the last: TimerFetch: CoinCap request failed:"
        ),
        "the verdict carries the reason: {verdict}"
    );
    assert!(!stdout.contains("Rows are in"), "{stdout}");
}
