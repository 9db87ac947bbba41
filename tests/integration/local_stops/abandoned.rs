//! What the verdict of an abandoned run names: the failure that kept the events unwritten, never
//! that the batches queued behind it were abandoned with them, nor a tick that failed meanwhile
//! (a failed fetch loses no fetched event).

use std::time::Duration;

use super::{PASSWORD, connection_to, local};
use crate::common::coincap::{CoinCap, Reply, page, realistic_assets};
use crate::common::{closed_port, fast_retry_app_root};

#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_run_names_the_failure_that_kept_the_events_unwritten() {
    // Two ticks fetch; every later one fails (CoinCap answers 503, not retried): behind the first
    // batch, which the closed port keeps failing, wait the second tick's batch and the failed
    // ticks.
    let page = page(1_747_000_000_000, &realistic_assets());
    let coincap = CoinCap::start(
        vec![Reply::ok(page.clone()), Reply::ok(page)],
        Reply::status(503, "upstream down"),
    )
    .await;
    let (_closed, port) = closed_port();
    let root = fast_retry_app_root();
    let child = local(root.path(), &coincap.url)
        .sql(&connection_to(&format!("127.0.0.1,{port}")))
        .env("COINCAP_MAX_RETRIES", "0")
        .args(["--every", "100ms", "--drain-timeout", "1s"])
        .spawn();
    child
        .wait_for(Duration::from_secs(30), |stdout, _| {
            coincap.seen().len() >= 4 && stdout.contains("tick   1 | EventHubSink failed (failure")
        })
        .await;

    child.signal("-TERM");
    let stopped = child.finish(Duration::from_secs(30)).await;

    assert!(!stopped.status.success(), "{}", stopped.stdout);
    assert!(
        stopped
            .stdout
            .contains("\nAbandoning: the drain deadline of 1s"),
        "{}",
        stopped.stdout
    );
    assert!(
        stopped
            .stdout
            .contains("tick   3 | TimerFetch failed: CoinCap answered HTTP 503"),
        "the failed tick is shown where it happened: {}",
        stopped.stdout
    );
    assert!(
        stopped.stdout.contains("fetched 8, published 8, written 0")
            && stopped.stdout.contains("dropped 0, not written 8"),
        "{}",
        stopped.stdout
    );
    let verdict = stopped.stdout.lines().last().unwrap();
    assert!(
        verdict.starts_with(&format!(
            "Not written: 8 fetched events (left unwritten at the stop; the last failure: EventHubSink: the SQL warehouse failed while connecting (transient): cannot reach 127.0.0.1:{port}: Connection refused"
        )) && verdict.ends_with("). No rows were written."),
        "{}",
        stopped.stdout
    );
    stopped.assert_never_shown(&[PASSWORD]);
}
