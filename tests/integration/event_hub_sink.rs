//! EventHubSink over HTTP into a temporary SQLite warehouse: rows, rejects, idempotence, failures.

use serde_json::Value;

use crate::common::coincap::{CoinCap, Reply, many_assets, page, realistic_assets};
use crate::common::{TestApp, sink_payload, timer_payload};

async fn app() -> TestApp {
    let coincap = CoinCap::start(vec![], Reply::status(500, "{}")).await;
    TestApp::spawn(&coincap.url).await
}

/// Events exactly as TimerFetch publishes them for a page of `assets`.
async fn published(assets: &[Value], timestamp: i64) -> Vec<String> {
    let coincap = CoinCap::serving(page(timestamp, assets)).await;
    let producer = TestApp::spawn(&coincap.url).await;
    producer.post("TimerFetch", &timer_payload()).await.events()
}

/// The payload of the protocol reference, byte for byte.
const REFERENCE: &str = include_str!("../fixtures/event_hubs_reference.json");

#[tokio::test]
async fn the_reference_batch_keeps_both_poison_events_with_their_coordinates() {
    let app = app().await;
    let answer = app.post_raw("EventHubSink", REFERENCE).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    type RejectRow = (
        String,
        String,
        String,
        Option<String>,
        Option<i64>,
        Option<String>,
    );
    let rejects: Vec<RejectRow> = app
        .db()
        .prepare("SELECT raw_body, reason_code, reason, event_offset, sequence_number, enqueued_time FROM asset_statistics_rejects ORDER BY sequence_number")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rejects.len(), 2);
    assert_eq!(rejects[0].0, r#"{"id":"bitcoin"}"#);
    assert_eq!(rejects[0].1, "missing_field");
    assert!(rejects[0].2.contains("timestamp"));
    assert_eq!(rejects[1].0, "not json");
    assert_eq!(rejects[1].1, "not_json");
    assert_eq!(rejects[1].3.as_deref(), Some("4294967400"));
    assert_eq!(rejects[1].4, Some(101));
    assert_eq!(rejects[1].5.as_deref(), Some("2026-05-01T12:00:00.456"));
    let counters = answer.sink_counters();
    assert_eq!(counters.events_in, 2);
    assert_eq!(counters.rejects, 2);
    assert_eq!(counters.rows_written, 0);
    assert!(counters.lag_ms.unwrap() > 0);
    assert!(answer.logs().iter().any(|l| l.starts_with(
        "Rejected event. reason_code=not_json partition=0 offset=4294967400 sequence_number=101"
    )));
}

#[tokio::test]
async fn timer_fetch_events_become_rows_with_exact_values() {
    let events = published(&realistic_assets(), 1_747_000_000_123).await;
    let app = app().await;

    let answer = app.post("EventHubSink", &sink_payload(&events, 0)).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.sink_counters().rows_written, 4);
    type Row = (
        String,
        Option<i64>,
        Option<String>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<String>,
        String,
    );
    let rows: Vec<Row> = app
        .db()
        .prepare("SELECT id, asset_rank, asset_name, priceUsd, maxSupply, vwap24Hr, explorer, runtime_timestamp FROM asset_statistics_history_v3 ORDER BY asset_rank")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].0, "bitcoin");
    assert_eq!(rows[0].3, Some("94327.1234567890123456".parse().unwrap()));
    assert_eq!(rows[0].7, "2025-05-11T21:46:40.123");
    assert_eq!(rows[1].1, Some(2), "numeric rank");
    assert_eq!(rows[1].4, None, "null maxSupply stays NULL");
    assert_eq!(rows[2].5, None, "null vwap24Hr stays NULL");
    assert_eq!(rows[3].2.as_deref(), Some("O'Neil \"Moon\" München 币"));
    assert_eq!(rows[3].6, None);
}

#[tokio::test]
async fn a_redelivered_batch_adds_no_rows() {
    let events = published(&many_assets(50), 1_747_000_000_000).await;
    let app = app().await;
    let payload = sink_payload(&events, 0);

    let first = app.post("EventHubSink", &payload).await;
    let again = app.post("EventHubSink", &payload).await;

    assert_eq!(first.sink_counters().rows_written, 50);
    assert_eq!(again.status, 200);
    assert_eq!(again.sink_counters().rows_written, 0);
    assert_eq!(again.sink_counters().duplicates, 50);
    assert_eq!(app.count("asset_statistics_history_v3"), 50);
}

#[tokio::test]
async fn duplicates_inside_a_batch_are_written_once() {
    let events = published(&realistic_assets(), 1_747_000_000_000).await;
    let app = app().await;
    let doubled: Vec<String> = events.iter().chain(events.iter()).cloned().collect();
    let answer = app.post("EventHubSink", &sink_payload(&doubled, 0)).await;
    assert_eq!(answer.sink_counters().rows_written, 4);
    assert_eq!(answer.sink_counters().duplicates, 4);
    assert_eq!(app.count("asset_statistics_history_v3"), 4);
}

#[tokio::test]
async fn poison_events_go_to_the_rejects_table_and_the_rest_is_written() {
    let mut events = published(&realistic_assets(), 1_747_000_000_000).await;
    let long_name = events[0].replace("\"Bitcoin\"", &format!("\"{}\"", "x".repeat(256)));
    let nan_price = events[1].replace("\"3310.4567890123456789\"", "\"NaN\"");
    let no_id = events[2].replace("\"id\":\"tether\",", "");
    let far_future = events[3].replace("1747000000000", "253402300800000");
    events.extend([
        long_name,
        nan_price,
        no_id,
        far_future,
        "\u{1F4A9} not json".into(),
        "[]".into(),
    ]);
    let app = app().await;

    let answer = app.post("EventHubSink", &sink_payload(&events, 10)).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.sink_counters().rows_written, 4);
    assert_eq!(answer.sink_counters().rejects, 6);
    let codes: Vec<String> = app
        .db()
        .prepare("SELECT reason_code FROM asset_statistics_rejects ORDER BY sequence_number")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        codes,
        [
            "too_long",
            "not_finite",
            "missing_field",
            "out_of_range",
            "not_json",
            "not_an_object"
        ]
    );
    let again = app.post("EventHubSink", &sink_payload(&events, 10)).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        app.count("asset_statistics_rejects"),
        6,
        "a redelivered reject is stored once"
    );
}

#[tokio::test]
async fn a_warehouse_failure_fails_the_invocation_and_the_redelivery_writes_it_whole() {
    let events = published(&many_assets(20), 1_747_000_000_000).await;
    let mut with_poison = events.clone();
    with_poison.push("not json".into());
    let app = app().await;
    app.db()
        .execute_batch(
            "CREATE TRIGGER fail_inserts BEFORE INSERT ON asset_statistics_history_v3
             WHEN NEW.id = 'asset-7' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let payload = sink_payload(&with_poison, 0);

    let failed = app.post("EventHubSink", &payload).await;

    assert_eq!(failed.status, 503, "{}", failed.body);
    assert!(
        failed.body["error"]
            .as_str()
            .unwrap()
            .contains("injected failure")
    );
    assert_eq!(
        app.count("asset_statistics_history_v3"),
        0,
        "nothing half-written"
    );
    assert_eq!(
        app.count("asset_statistics_rejects"),
        0,
        "rejects share the transaction"
    );

    app.db().execute_batch("DROP TRIGGER fail_inserts").unwrap();
    let retried = app.post("EventHubSink", &payload).await;
    assert_eq!(retried.status, 200);
    assert_eq!(app.count("asset_statistics_history_v3"), 20);
    assert_eq!(app.count("asset_statistics_rejects"), 1);
}

#[tokio::test]
async fn an_empty_batch_succeeds_and_writes_nothing() {
    let app = app().await;
    let answer = app.post("EventHubSink", &sink_payload(&[], 0)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.sink_counters().events_in, 0);
    assert_eq!(answer.sink_counters().lag_ms, None);
}
