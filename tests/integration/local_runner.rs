//! `handler local` end to end: the real binary, the CoinCap stand-in, a temporary SQLite file.

use std::path::Path;
use std::time::Duration;

use crate::common::coincap::{CoinCap, Reply, many_assets, page, realistic_assets};
use crate::common::run::Binary;
use crate::common::{app_root, fast_retry_app_root};

fn count(db: &Path, table: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn local(coincap: &CoinCap, db: &Path) -> Binary {
    Binary::local(&app_root()).coincap(coincap).sqlite(db)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ticks_fetch_publish_and_write_everything_in_batches() {
    // 1250 assets per page: two EventHubSink batches per tick (1000 + 250) at maxEventBatchSize 1000.
    let coincap = CoinCap::start(
        vec![Reply::ok(page(1_747_000_000_000, &many_assets(1250)))],
        Reply::ok(page(1_747_000_060_000, &many_assets(1250))),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");

    let output = local(&coincap, &db)
        .args(["--every", "1s", "--ticks", "2"])
        .output()
        .await;

    let stdout = &output.stdout;
    assert!(output.status.success(), "{stdout}\n{}", output.stderr);
    assert!(stdout.contains("batches of up to 1000"), "{stdout}");
    let ticks: Vec<&str> = stdout.lines().filter(|l| l.starts_with("tick")).collect();
    assert_eq!(ticks.len(), 2, "{stdout}");
    for line in &ticks {
        assert!(
            line.contains("fetched  1250 | published  1250 | written  1250"),
            "{line}"
        );
    }
    assert!(
        stdout.contains("Summary: 2 ticks (0 failed), fetched 2500, published 2500, written 2500"),
        "{stdout}"
    );
    assert_eq!(count(&db, "asset_statistics_history_v3"), 2500);
    assert_eq!(coincap.seen().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_coincap_timestamp_is_skipped_as_duplicates() {
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let output = local(&coincap, &db)
        .args(["--every", "200ms", "--ticks", "2"])
        .output()
        .await;
    let stdout = &output.stdout;
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("written 4, duplicates skipped 4"),
        "{stdout}"
    );
    assert_eq!(count(&db, "asset_statistics_history_v3"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_warehouse_is_retried_by_the_function_json_policy_until_it_recovers() {
    // An app root whose EventHubSink retries fast, so the test does not wait minutes.
    let root = fast_retry_app_root();
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    // Create the tables, then make every insert fail until the trigger is dropped.
    coincap_stream::warehouse::SqliteWarehouse::open(&db).unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER outage BEFORE INSERT ON asset_statistics_history_v3
             BEGIN SELECT RAISE(ABORT, 'warehouse outage'); END;",
        )
        .unwrap();

    let child = Binary::local(root.path())
        .coincap(&coincap)
        .sqlite(&db)
        .args(["--ticks", "1"])
        .spawn();
    let retries = |screen: &str| {
        screen
            .lines()
            .filter(|line| line.starts_with("tick   1 | EventHubSink failed (failure"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    child
        .wait_for(Duration::from_secs(30), |stdout, _| {
            retries(stdout).len() >= 3
        })
        .await;
    for line in retries(&child.output().0) {
        assert!(line.contains("warehouse outage"), "{line}");
    }
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TRIGGER outage")
        .unwrap();
    let stopped = child.finish(Duration::from_secs(30)).await;
    let stdout = stopped.stdout;

    assert!(stopped.status.success(), "{stdout}");
    assert!(stdout.contains("written     4"), "{stdout}");
    let failures = retries(&stdout).len();
    assert!(
        stdout.contains(&format!(
            "sink failures {failures}, dropped 0, not written 0"
        )),
        "every failure printed is counted ({failures}): {stdout}"
    );
    assert_eq!(count(&db, "asset_statistics_history_v3"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_the_timer_and_drains_what_was_fetched() {
    let coincap = CoinCap::serving(page(1_747_000_000_000, &many_assets(300))).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let child = local(&coincap, &db).args(["--every", "1h"]).spawn();
    child
        .wait_for(Duration::from_secs(30), |stdout, _| {
            stdout.lines().any(|line| line.starts_with("tick"))
        })
        .await;
    child.signal("-INT");
    let stopped = child.finish(Duration::from_secs(30)).await;
    let seen = stopped.stdout;
    assert!(stopped.status.success(), "{seen}");
    assert!(
        seen.contains("Summary: 1 ticks (0 failed), fetched 300, published 300, written 300"),
        "{seen}"
    );
    assert_eq!(count(&db, "asset_statistics_history_v3"), 300);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_api_key_it_says_where_to_get_one() {
    let output = Binary::local(&app_root()).output().await;
    assert_eq!(output.status.code(), Some(1));
    let screen = &output.stdout;
    assert!(
        screen.starts_with("handler local cannot start: ")
            && screen.contains("COINCAP_API_KEY")
            && screen.contains("pro.coincap.io"),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_serve_and_local_name_the_missing_secrets_in_the_same_words() {
    // No CoinCap key, and the SQL warehouse without its connection string.
    let checked = Binary::check()
        .arg("--app-root")
        .arg(app_root())
        .env("WAREHOUSE", "sql")
        .output()
        .await;
    let failed: Vec<&str> = checked
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("FAIL  "))
        .collect();
    assert!(
        failed.len() == 2
            && failed[0].starts_with("secret COINCAP_API_KEY: ")
            && failed[1].starts_with("secret SQL_CONNECTION_STRING: "),
        "{}",
        checked.stdout
    );
    let served = Binary::serve()
        .current_dir(&app_root())
        .env("WAREHOUSE", "sql")
        .output()
        .await;
    assert!(
        served.stderr.contains(&format!(
            "handler serve cannot start: {}\n  {}\n",
            failed[0], failed[1]
        )),
        "{}",
        served.stderr
    );
    let local = Binary::local(&app_root())
        .env("WAREHOUSE", "sql")
        .output()
        .await;
    assert_eq!(local.status.code(), Some(1));
    assert_eq!(
        local.stdout,
        format!(
            "handler local cannot start: {}: get a free API key at https://pro.coincap.io/dashboard, then run: COINCAP_API_KEY=<key> cargo run --release -- local\n  {}\n",
            failed[0], failed[1]
        ),
        "check's lines, and where to get a key"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_fetch_failure_is_reported_and_the_run_goes_on() {
    let coincap = CoinCap::start(
        vec![Reply::status(503, "unavailable")],
        Reply::ok(page(1_747_000_000_000, &realistic_assets())),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let output = local(&coincap, &db)
        .args(["--every", "200ms", "--ticks", "2"])
        .env("COINCAP_MAX_RETRIES", "0")
        .output()
        .await;
    let stdout = &output.stdout;
    assert!(output.status.success(), "one failed tick of two: {stdout}");
    assert!(
        stdout.contains("tick   1 | TimerFetch failed: CoinCap answered HTTP 503: unavailable"),
        "{stdout}"
    );
    assert!(stdout.contains("Summary: 2 ticks (1 failed)"), "{stdout}");
    assert_eq!(count(&db, "asset_statistics_history_v3"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_month_s_credits_are_said_before_the_first_tick_and_again_from_the_first_answer() {
    let answer = page(1_747_000_000_000, &realistic_assets());
    let assets = realistic_assets().len();
    let coincap = CoinCap::serving(answer.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");

    let output = local(&coincap, &db)
        .env("COINCAP_IDS", "bitcoin,ethereum,tether,solana")
        .args(["--ticks", "1"])
        .output()
        .await;

    let stdout = &output.stdout;
    assert!(output.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[3].starts_with(
            "CoinCap credits if left running: about 744 credits a month (744 calls in a 31-day month x 1 credit for 4 assets, 1,800 bytes a call: about 450 bytes an asset"
        ),
        "the default hourly schedule, before any answer: {stdout}"
    );
    assert!(
        lines[3].ends_with("within COINCAP_MONTHLY_CREDITS=2,500."),
        "{stdout}"
    );
    let bytes = answer.len() as u64;
    let credits = bytes.div_ceil(2500);
    assert_eq!(assets, 4, "the stand-in answers one asset per id asked for");
    assert_eq!(
        lines[4],
        format!(
            "CoinCap credits if left running, from the first answer: about {} credits a month (744 calls in a 31-day month x {credits} credit{} for 4 assets, {} bytes a call: a real answer of {} bytes; CoinCap reportedly bills 1 credit per 2.5 KB), within COINCAP_MONTHLY_CREDITS=2,500.",
            coincap_stream::coincap::credits::thousands(744 * credits),
            if credits == 1 { "" } else { "s" },
            coincap_stream::coincap::credits::thousands(bytes),
            coincap_stream::coincap::credits::thousands(bytes),
        ),
        "{stdout}"
    );
    assert!(lines[5].starts_with("tick   1 | fetched     4"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_goes_only_to_the_file_named_by_log_and_the_screen_names_the_whole_sqlite_path() {
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let stopped = Binary::local(&app_root())
        .coincap(&coincap)
        .args(["--ticks", "1", "--log"])
        .arg(&log)
        .current_dir(dir.path())
        .env("RUST_LOG", "debug")
        // Relative: taken from the working directory, and shown whole.
        .env("WAREHOUSE", "sqlite:rows.db")
        .env("SQL_POOL_SIZE", "8")
        .output()
        .await;

    assert!(stopped.status.success(), "{}", stopped.stdout);
    let db = dir.path().join("rows.db");
    let lines: Vec<&str> = stopped.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "coincap-stream local: rows go to the SQLite file {}; secrets come from environment variables.",
            db.display()
        )
    );
    assert_eq!(
        lines[3],
        "SQL_POOL_SIZE is set but ignored: WAREHOUSE=sqlite:rows.db writes into a SQLite file; set WAREHOUSE=sql to write into the SQL database."
    );
    assert_eq!(stopped.stderr, "", "no log on the screen");
    crate::common::words::assert_user_words(&stopped.stdout);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("Invocation finished. function=EventHubSink"),
        "{logged}"
    );
    assert!(
        !stopped.stdout.contains("Invocation finished"),
        "{}",
        stopped.stdout
    );
    assert_eq!(count(&db, "asset_statistics_history_v3"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_file_that_cannot_be_opened_is_said_on_the_screen_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("no such folder").join("run.log");
    let stopped = Binary::local(&app_root())
        .args(["--ticks", "1", "--log"])
        .arg(&log)
        .output()
        .await;

    assert_eq!(stopped.status.code(), Some(1), "{}", stopped.stdout);
    assert_eq!(
        stopped.stderr, "",
        "everything local says is on standard output"
    );
    assert!(
        stopped
            .stdout
            .starts_with("handler local cannot start: --log: "),
        "{}",
        stopped.stdout
    );
    assert!(
        stopped.stdout.contains(&log.display().to_string()),
        "the line names the file: {}",
        stopped.stdout
    );
    assert!(!stopped.stdout.contains("tick"), "{}", stopped.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_ticks_is_refused_naming_the_flag() {
    let stopped = Binary::local(&app_root())
        .args(["--ticks", "0"])
        .output()
        .await;
    assert_eq!(stopped.status.code(), Some(2));
    assert!(
        stopped.stderr.contains(
            "invalid value '0' for '--ticks <TICKS>': 0 ticks would fetch nothing: give 1 or more, or leave --ticks out to run until stopped"
        ),
        "{}",
        stopped.stderr
    );
}
