//! The real `handler` binary, started the way the Functions host starts it.

use std::time::Duration;

use crate::common::coincap::{CoinCap, page, realistic_assets};
use crate::common::{
    API_KEY, Answer, app_root, free_port, handler, serve, signal, timer_payload, wait_ready,
};

#[tokio::test]
async fn serves_on_the_host_s_port_and_stops_cleanly_on_sigterm() {
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = serve(port, &coincap.url, &dir.path().join("w.db"))
        .current_dir(app_root())
        .spawn()
        .unwrap();
    wait_ready(port).await;

    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/TimerFetch"))
        .header(
            "X-Azure-Functions-InvocationId",
            "00000000-0000-4000-8000-000000000000",
        )
        .body(timer_payload().to_string())
        .send()
        .await
        .unwrap();
    let answer = Answer::read(response).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.events().len(), 4);

    signal(&child, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("Custom handler listening"), "{stdout}");
    assert!(stdout.contains("Custom handler stopped"), "{stdout}");
    assert!(
        stderr.contains("not from Key Vault"),
        "one warning about where secrets come from: {stderr}"
    );
    assert!(
        !stdout.contains(API_KEY) && !stderr.contains(API_KEY),
        "the key is never logged"
    );
}

#[tokio::test]
async fn a_failed_invocation_writes_its_reason_to_stderr() {
    let coincap = CoinCap::serving(crate::common::coincap::V2_DEPRECATION.into()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = serve(port, &coincap.url, &dir.path().join("w.db"))
        .spawn()
        .unwrap();
    wait_ready(port).await;
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/TimerFetch"))
        .body(timer_payload().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 502);
    // Ctrl-C (SIGINT) stops it as cleanly as SIGTERM.
    signal(&child, "-INT");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let stderr =
        String::from_utf8_lossy(&child.wait_with_output().await.unwrap().stderr).into_owned();
    assert!(
        stderr.contains("ERROR") && stderr.contains("without an asset list"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_mode_defaults_to_synapse_and_a_missing_login_fails_the_batch_not_the_process() {
    let port = free_port();
    let mut child = handler()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .spawn()
        .unwrap();
    wait_ready(port).await;
    let answer = post_one_event(port).await;
    assert_eq!(
        answer.status, 503,
        "the retry policy redelivers: {}",
        answer.body
    );
    let error = answer.body["error"].as_str().unwrap();
    assert!(error.contains("SYNAPSE_CONNECTION_STRING"), "{error}");
    signal(&child, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("warehouse=synapse (connection string secret)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_bad_setting_is_named_at_start_up() {
    let output = handler()
        .env("COINCAP_LIMIT", "lots")
        .env("WAREHOUSE", "sqlite:/tmp/never-created.db")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("COINCAP_LIMIT"), "{stderr}");
}

#[tokio::test]
async fn an_unreachable_pool_fails_the_batch_as_transient_without_leaking_the_login() {
    let port = free_port();
    let closed = free_port();
    let password = "pw-4f1d9c-never-logged";
    let mut child = handler()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("WAREHOUSE", "synapse")
        .env(
            "SYNAPSE_CONNECTION_STRING",
            format!("Server=tcp:127.0.0.1,{closed};Database=coincap;User Id=loader;Password={password};TrustServerCertificate=true"),
        )
        .spawn()
        .unwrap();
    wait_ready(port).await;
    let answer = post_one_event(port).await;
    assert_eq!(
        answer.status, 503,
        "the retry policy redelivers: {}",
        answer.body
    );
    let error = answer.body["error"].as_str().unwrap();
    assert!(
        error.contains("transient") && error.contains(&format!("cannot reach 127.0.0.1:{closed}")),
        "{error}"
    );
    signal(&child, "-TERM");
    tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    let logs = format!(
        "{}{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        answer.body
    );
    assert!(
        !logs.contains(password),
        "the connection string never reaches a log or an answer"
    );
}

/// One valid event to EventHubSink on the binary at `port`, as the host posts a batch.
async fn post_one_event(port: u16) -> Answer {
    let bodies = vec![r#"{"id":"bitcoin","timestamp":1747000000000}"#.to_owned()];
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/EventHubSink"))
        .body(crate::common::sink_payload(&bodies, 0).to_string())
        .send()
        .await
        .unwrap();
    Answer::read(response).await
}
