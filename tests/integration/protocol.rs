//! The custom-handler contract every answer keeps, whatever the input.

use serde_json::json;

use crate::common::coincap::{CoinCap, Reply};
use crate::common::{TestApp, timer_payload};

async fn app() -> TestApp {
    let coincap = CoinCap::start(vec![], Reply::status(500, "{}")).await;
    TestApp::spawn(&coincap.url).await
}

#[tokio::test]
async fn get_root_answers_at_once_for_the_readiness_probe() {
    let app = app().await;
    let answer =
        crate::common::Answer::read(app.http.get(format!("{}/", app.url)).send().await.unwrap())
            .await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn an_unknown_function_is_404_with_a_json_error() {
    let app = app().await;
    let answer = app.post("NoSuchFunction", &timer_payload()).await;
    assert_eq!(answer.status, 404);
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("NoSuchFunction")
    );
}

#[tokio::test]
async fn a_get_on_a_function_is_405_with_a_json_error() {
    let app = app().await;
    let answer = crate::common::Answer::read(
        app.http
            .get(format!("{}/TimerFetch", app.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 405);
}

#[tokio::test]
async fn malformed_envelopes_are_400_with_a_json_error() {
    let app = app().await;
    for function in ["TimerFetch", "EventHubSink"] {
        for body in [
            "",
            "not json",
            "[1,2]",
            "\"text\"",
            r#"{"Data":[1]}"#,
            r#"{"Data":{},"Metadata":5}"#,
        ] {
            let answer = app.post_raw(function, body.to_owned()).await;
            assert_eq!(answer.status, 400, "{function} {body:?}: {}", answer.body);
            assert!(
                answer.body["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("malformed invocation")
            );
        }
    }
    for data in [
        json!({}),
        json!({"events": "not an array"}),
        json!({"events": 5}),
        json!({"events": {"a": 1}}),
    ] {
        let answer = app
            .post("EventHubSink", &json!({"Data": data, "Metadata": {}}))
            .await;
        assert_eq!(answer.status, 400, "{data}: {}", answer.body);
    }
    assert_eq!(
        app.count("asset_statistics_rejects"),
        0,
        "a malformed envelope writes nothing"
    );
}

#[tokio::test]
async fn arbitrary_bytes_never_crash_the_server() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let app = app().await;
    let mut runner = TestRunner::deterministic();
    let bytes = proptest::collection::vec(proptest::num::u8::ANY, 0..512);
    let json_like = "[\\[\\]{}\":,0-9a-zA-Z\\\\ ]{0,200}";
    for i in 0..200 {
        let body: Vec<u8> = if i % 2 == 0 {
            bytes.new_tree(&mut runner).unwrap().current()
        } else {
            json_like
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .into_bytes()
        };
        let function = if i % 3 == 0 {
            "TimerFetch"
        } else {
            "EventHubSink"
        };
        // Anything but a JSON object is a malformed invocation: 400, never a panic's 500. An
        // object may be a valid envelope (then the function runs, and may fail for its own
        // reasons: 502 from CoinCap, a reject written), but still never panics.
        let is_object =
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body).is_ok();
        let answer = app.post_raw(function, body).await;
        if is_object {
            assert_ne!(answer.status, 500, "{}", answer.body);
        } else {
            assert_eq!(answer.status, 400, "{}", answer.body);
        }
    }
    let answer =
        crate::common::Answer::read(app.http.get(format!("{}/", app.url)).send().await.unwrap())
            .await;
    assert_eq!(answer.status, 200, "still serving");
}
