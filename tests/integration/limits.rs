//! A limit that is hit is seen at once, never found later as missing rows: an Azure SQL free offer
//! database whose month's allowance is spent (a stand-in refusing every login the way such a
//! database reportedly does) and CoinCap's spent credits, as `handler local` prints them and as
//! the failed invocation's line (what the portal shows) names them, with the keys the lag query
//! and the queries of limits read.

use crate::common::coincap::{CoinCap, Reply, page, realistic_assets};
use crate::common::resuming::{FREE_ALLOWANCE, Resuming};
use crate::common::run::Binary;
use crate::common::{app_root, sink_payload, timer_payload};

/// `SQL_CONNECTION_STRING` to the stand-in (it speaks TDS without TLS).
fn through(refusing: &Resuming) -> String {
    format!(
        "Server=tcp:127.0.0.1,{};Database=coincap;User Id=loader;Password=pw-3d1c;Encrypt=DANGER_PLAINTEXT",
        refusing.port
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_free_allowance_stops_local_at_once_naming_the_limit_and_what_to_change() {
    let refusing = Resuming::refusing(FREE_ALLOWANCE).await;
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    // No --ticks: the run ends by itself, at the first refusal.
    let stopped = Binary::local(&app_root())
        .coincap(&coincap)
        .sql(&through(&refusing))
        .args(["--every", "1s"])
        .output()
        .await;

    assert!(!stopped.status.success(), "{}", stopped.stdout);
    let all = format!("{}{}", stopped.stdout, stopped.stderr);
    let line = all
        .lines()
        .find(|line| line.contains("EventHubSink failed permanently, stopping at once: "))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(
        line.contains("the SQL warehouse failed while connecting (permanent, SQL error 42119): "),
        "{line}"
    );
    assert!(
        line.contains(
            "(the free offer's monthly allowance is spent: the database is paused until the 1st). Fix: "
        ),
        "the limit is named: {line}"
    );
    assert!(
        line.contains("This database has reached the monthly free amount allowance"),
        "{line}"
    );
    for change in [
        "Fix: the Azure SQL Database free offer's monthly allowance",
        "sqlDatabaseFreeOffer=BillOverUsage",
        "sqlDatabaseTier=Basic",
        "FETCH_SCHEDULE",
    ] {
        assert!(line.contains(change), "{change} in {line}");
    }
    assert!(
        stopped
            .stdout
            .contains("Stopped at once by a failure another attempt would repeat"),
        "{}",
        stopped.stdout
    );
    assert_eq!(
        refusing.refused.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one sign-in, refused: not retried against a month-long pause"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_failure_line_names_the_limit_and_carries_the_lag_the_lag_query_reads() {
    let refusing = Resuming::refusing(FREE_ALLOWANCE).await;
    let coincap = CoinCap::start(
        vec![Reply::ok(page(1_747_000_000_000, &realistic_assets()))],
        Reply::status(402, r#"{"error":"out of credits"}"#),
    )
    .await;
    let mut handler = Binary::serve()
        .coincap(&coincap)
        .sql(&through(&refusing))
        .start()
        .await;

    let fetched = handler
        .post("TimerFetch", timer_payload().to_string())
        .await;
    assert_eq!(fetched.status, 200);
    let refused = handler
        .post(
            "EventHubSink",
            sink_payload(&fetched.events(), 0).to_string(),
        )
        .await;
    let spent = handler
        .post("TimerFetch", timer_payload().to_string())
        .await;
    let stopped = handler.stop("-TERM").await;

    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.body["fault"]["kind"], "permanent");
    assert_eq!(spent.status, 502, "{}", spent.body);
    // What Application Insights receives: the failure lines on stderr.
    let sink = stopped
        .stderr
        .lines()
        .find(|line| line.contains("Invocation failed. function=EventHubSink"))
        .unwrap_or_else(|| panic!("{}", stopped.stderr));
    let lag_ms: u64 = sink
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix("lag_ms="))
        .unwrap_or_else(|| panic!("the lag query reads lag_ms from this line too: {sink}"))
        .parse()
        .unwrap();
    assert!(
        lag_ms > 0,
        "the payload's events were enqueued in the past: {sink}"
    );
    assert!(sink.contains(" limit=sql_free_allowance "), "{sink}");
    assert!(
        sink.contains(
            " fault=permanent fix=\"the Azure SQL Database free offer's monthly allowance"
        ),
        "{sink}"
    );
    assert!(
        !sink.contains("rows_written="),
        "the no-rows alert counts only lines that wrote rows: {sink}"
    );
    let timer = stopped
        .stderr
        .lines()
        .find(|line| line.contains("Invocation failed. function=TimerFetch"))
        .unwrap_or_else(|| panic!("{}", stopped.stderr));
    assert!(
        timer.contains("coincap_status=402 retries=0 limit=coincap_credits "),
        "{timer}"
    );
    assert!(timer.contains("COINCAP_MONTHLY_CREDITS"), "{timer}");
}
