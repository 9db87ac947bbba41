//! TimerFetch against the CoinCap stand-in: the events it publishes and every way CoinCap fails.

use std::time::Duration;

use serde_json::Value;

use crate::common::coincap::{CoinCap, Reply, V2_DEPRECATION, page, realistic_assets};
use crate::common::{API_KEY, TestApp, timer_payload};

const TIMESTAMP: i64 = 1_747_000_000_000;

#[tokio::test]
async fn publishes_one_compact_seed_event_per_asset_stamped_with_the_response_time() {
    let coincap = CoinCap::serving(page(TIMESTAMP, &realistic_assets())).await;
    let app = TestApp::spawn_with(
        &coincap.url,
        &[("COINCAP_IDS", "bitcoin,ethereum"), ("COINCAP_LIMIT", "50")],
        Some(API_KEY),
    )
    .await;

    let answer = app.post("TimerFetch", &timer_payload()).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    let events = answer.events();
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[0],
        r#"{"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bitcoin","supply":"19861234.0000000000000000","maxSupply":"21000000.0000000000000000","marketCapUsd":"1873456789012.3456789012345678","volumeUsd24Hr":"11234567890.1234567890123456","priceUsd":"94327.1234567890123456","changePercent24Hr":"-1.2345678901234567","vwap24Hr":"95012.9876543210987654","explorer":"https://blockchain.info/","timestamp":1747000000000}"#
    );
    let ethereum: Value = serde_json::from_str(&events[1]).unwrap();
    assert_eq!(
        ethereum["rank"], "2",
        "a numeric rank is published as the seed's string"
    );
    assert_eq!(ethereum["maxSupply"], Value::Null);
    assert!(ethereum.get("tokens").is_none());
    let o_neil: Value = serde_json::from_str(&events[3]).unwrap();
    assert_eq!(o_neil["name"], "O'Neil \"Moon\" München 币");
    for event in &events {
        assert!(!event.contains('\n'), "compact");
        let event: Value = serde_json::from_str(event).unwrap();
        assert_eq!(event["timestamp"], TIMESTAMP);
    }
    let seen = coincap.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].path_and_query,
        "/v3/assets?limit=50&ids=bitcoin%2Cethereum"
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    let counters = answer.timer_counters();
    assert_eq!(counters.events_out, 4);
    assert_eq!(counters.coincap_status, 200);
    assert_eq!(counters.retries, 0);
    let size = page(TIMESTAMP, &realistic_assets()).len() as u64;
    assert_eq!(
        counters.answer_bytes, size,
        "the credits are computed from the answer's real size"
    );
    assert_eq!(counters.credits, size.div_ceil(2500).max(1));
    let closing = answer.logs().pop().unwrap();
    assert!(
        closing.starts_with("Invocation finished. function=TimerFetch ")
            && closing.contains(" elapsed_ms="),
        "{closing}"
    );
}

#[tokio::test]
async fn an_asset_without_the_v3_shape_is_still_published_for_the_rejects_table() {
    let mut assets = realistic_assets();
    assets.push(serde_json::json!({"rank": "9", "name": "no id"}));
    let coincap = CoinCap::serving(page(TIMESTAMP, &assets)).await;
    let app = TestApp::spawn(&coincap.url).await;
    let answer = app.post("TimerFetch", &timer_payload()).await;
    assert_eq!(answer.status, 200);
    let events = answer.events();
    assert_eq!(events.len(), 5);
    let odd: Value = serde_json::from_str(&events[4]).unwrap();
    assert_eq!(odd["name"], "no id");
    assert_eq!(odd["timestamp"], TIMESTAMP);
    assert!(
        answer
            .logs()
            .iter()
            .any(|l| l.contains("does not have the v3 shape"))
    );
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let coincap = CoinCap::start(
        vec![Reply::status(429, r#"{"error":"rate limited"}"#).retry_after("1")],
        Reply::ok(page(TIMESTAMP, &realistic_assets())),
    )
    .await;
    let app = TestApp::spawn(&coincap.url).await;

    let answer = app.post("TimerFetch", &timer_payload()).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.events().len(), 4);
    let seen = coincap.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(1),
        "Retry-After: 1 honoured"
    );
    assert_eq!(answer.timer_counters().retries, 1);
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried() {
    let coincap = CoinCap::start(
        vec![
            Reply::status(503, "upstream down"),
            Reply::ok(page(TIMESTAMP, &realistic_assets())).delayed(Duration::from_secs(2)),
        ],
        Reply::ok(page(TIMESTAMP, &realistic_assets())),
    )
    .await;
    let app =
        TestApp::spawn_with(&coincap.url, &[("COINCAP_TIMEOUT", "300ms")], Some(API_KEY)).await;

    let answer = app.post("TimerFetch", &timer_payload()).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(coincap.seen().len(), 3);
    assert_eq!(answer.timer_counters().retries, 2);
}

#[tokio::test]
async fn retries_are_bounded_and_then_the_invocation_fails_with_nothing_published() {
    let coincap = CoinCap::start(vec![], Reply::status(502, "bad gateway")).await;
    let app =
        TestApp::spawn_with(&coincap.url, &[("COINCAP_MAX_RETRIES", "3")], Some(API_KEY)).await;

    let answer = app.post("TimerFetch", &timer_payload()).await;

    assert_eq!(answer.status, 502);
    assert_eq!(coincap.seen().len(), 4, "first attempt and three retries");
    let error = answer.body["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 502") && error.contains("gave up after 4 attempts"),
        "{error}"
    );
    assert!(answer.body.get("Outputs").is_none(), "nothing published");
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_fails_at_once() {
    let coincap = CoinCap::start(vec![], Reply::status(429, "{}").retry_after("3600")).await;
    let app = TestApp::spawn(&coincap.url).await;
    let answer = app.post("TimerFetch", &timer_payload()).await;
    assert_eq!(answer.status, 502);
    assert_eq!(coincap.seen().len(), 1);
    assert!(answer.body["error"].as_str().unwrap().contains("429"));
}

#[tokio::test]
async fn a_403_is_a_refused_key_too_and_is_not_retried() {
    let coincap = CoinCap::start(vec![], Reply::status(403, r#"{"error":"Forbidden"}"#)).await;
    let app = TestApp::spawn(&coincap.url).await;
    let answer = app.post("TimerFetch", &timer_payload()).await;
    assert_eq!(answer.status, 502);
    assert_eq!(coincap.seen().len(), 1);
    let error = answer.body["error"].as_str().unwrap();
    assert!(error.contains("refused the API key (HTTP 403)"), "{error}");
}

#[tokio::test]
async fn a_refused_key_fails_without_retrying() {
    let coincap = CoinCap::serving(page(TIMESTAMP, &realistic_assets())).await;
    let app = TestApp::spawn_with(&coincap.url, &[], Some("wrong-key")).await;

    let answer = app.post("TimerFetch", &timer_payload()).await;

    assert_eq!(answer.status, 502);
    assert_eq!(coincap.seen().len(), 1);
    let error = answer.body["error"].as_str().unwrap();
    assert!(error.contains("refused the API key (HTTP 401)"), "{error}");
    assert!(
        !error.contains("wrong-key"),
        "the key never appears in an error"
    );
    assert!(
        answer
            .logs()
            .iter()
            .any(|l| l.contains("coincap_status=401"))
    );
}

#[tokio::test]
async fn a_missing_key_names_the_setting() {
    let coincap = CoinCap::serving(page(TIMESTAMP, &realistic_assets())).await;
    let app = TestApp::spawn_with(&coincap.url, &[], None).await;
    let answer = app.post("TimerFetch", &timer_payload()).await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("COINCAP_API_KEY")
    );
    assert!(coincap.seen().is_empty());
}

#[tokio::test]
async fn answers_that_are_not_an_asset_list_fail_the_invocation() {
    let cases = [
        (V2_DEPRECATION.to_owned(), "v3"),
        ("<html>Service Unavailable</html>".to_owned(), "not JSON"),
        (
            r#"{"error":"Insufficient credits","timestamp":1}"#.to_owned(),
            "Insufficient credits",
        ),
        (r#"{"data":[],"timestamp":1}"#.to_owned(), "no assets"),
    ];
    for (body, expected) in cases {
        let coincap = CoinCap::serving(body.clone()).await;
        let app = TestApp::spawn(&coincap.url).await;
        let answer = app.post("TimerFetch", &timer_payload()).await;
        assert_eq!(answer.status, 502, "{body}");
        let error = answer.body["error"].as_str().unwrap();
        assert!(error.contains(expected), "{error}");
        assert_eq!(coincap.seen().len(), 1, "not retried: {body}");
    }
}

#[tokio::test]
async fn an_unreachable_coincap_fails_after_bounded_retries() {
    let (_closed, port) = crate::common::closed_port();
    let app = TestApp::spawn_with(
        &format!("http://127.0.0.1:{port}/v3"),
        &[("COINCAP_MAX_RETRIES", "2")],
        Some(API_KEY),
    )
    .await;
    let answer = app.post("TimerFetch", &timer_payload()).await;
    assert_eq!(answer.status, 502);
    let error = answer.body["error"].as_str().unwrap();
    assert!(
        error.contains("request failed") && error.contains("gave up after 3 attempts"),
        "{error}"
    );
}

#[tokio::test]
async fn spent_credits_fail_at_once_naming_the_limit_and_the_settings_that_fit() {
    let coincap = CoinCap::start(
        vec![],
        Reply::status(402, r#"{"error":"You have run out of API credits"}"#),
    )
    .await;
    let app = TestApp::spawn(&coincap.url).await;
    let answer = app.post("TimerFetch", &timer_payload()).await;

    assert_eq!(answer.status, 502);
    assert_eq!(
        coincap.seen().len(),
        1,
        "a 402 is not retried: the credits are spent"
    );
    let error = answer.body["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "CoinCap refused the call because the plan's credits are spent (HTTP 402)"
        ),
        "{error}"
    );
    assert_eq!(answer.body["fault"]["kind"], "permanent");
    let fix = answer.body["fault"]["fix"].as_str().unwrap();
    assert!(fix.contains("COINCAP_MONTHLY_CREDITS"), "{fix}");
    let line = answer.body["Logs"][0].as_str().unwrap();
    assert!(
        line.starts_with("Invocation failed. function=TimerFetch coincap_status=402 retries=0 limit=coincap_credits elapsed_ms="),
        "{line}"
    );
}

#[tokio::test]
async fn a_rate_limit_that_outlasts_the_retries_is_named_and_stays_transient() {
    let coincap = CoinCap::start(vec![], Reply::status(429, r#"{"error":"rate limited"}"#)).await;
    let app =
        TestApp::spawn_with(&coincap.url, &[("COINCAP_MAX_RETRIES", "1")], Some(API_KEY)).await;
    let answer = app.post("TimerFetch", &timer_payload()).await;

    assert_eq!(answer.status, 502);
    assert_eq!(coincap.seen().len(), 2);
    assert_eq!(answer.body["fault"]["kind"], "transient");
    let error = answer.body["error"].as_str().unwrap();
    assert!(
        error.starts_with("CoinCap's rate limit was hit (HTTP 429;"),
        "{error}"
    );
    let line = answer.body["Logs"][0].as_str().unwrap();
    assert!(line.contains(" limit=coincap_rate_limit "), "{line}");
}
