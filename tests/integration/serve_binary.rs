//! The real `handler` binary, started the way the Functions host starts it.

use std::time::{Duration, Instant};

use crate::common::coincap::{CoinCap, Reply, page, realistic_assets};
use crate::common::process::Running;
use crate::common::run::Binary;
use crate::common::{API_KEY, Answer, app_root, closed_port, timer_payload};

#[tokio::test]
async fn serves_on_the_host_s_port_and_stops_cleanly_on_sigterm() {
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut handler = Binary::serve()
        .coincap(&coincap)
        .sqlite(&dir.path().join("w.db"))
        .current_dir(&app_root())
        .start()
        .await;

    let answer = handler
        .post("TimerFetch", timer_payload().to_string())
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.events().len(), 4);

    let stopped = handler.stop("-TERM").await;
    assert!(stopped.status.success(), "{}", stopped.status);
    let (stdout, stderr) = (&stopped.stdout, &stopped.stderr);
    assert!(stdout.contains("Custom handler listening"), "{stdout}");
    assert!(
        stdout.contains("CoinCap credits if left running: about 1,488 credits a month (744 calls in a 31-day month x 2 credits for 10 assets"),
        "the start line says what the schedule costs: {stdout}"
    );
    assert!(
        stdout.contains("within COINCAP_MONTHLY_CREDITS=2,500."),
        "{stdout}"
    );
    assert!(stdout.contains("Custom handler stopped"), "{stdout}");
    assert!(
        stderr.contains("not from Key Vault"),
        "one warning about where secrets come from: {stderr}"
    );
    stopped.assert_never_shown(&[API_KEY]);
}

#[tokio::test]
async fn a_failed_invocation_writes_its_reason_to_stderr() {
    let coincap = CoinCap::serving(crate::common::coincap::V2_DEPRECATION.into()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut handler = Binary::serve()
        .coincap(&coincap)
        .sqlite(&dir.path().join("w.db"))
        .start()
        .await;
    let answer = handler
        .post("TimerFetch", timer_payload().to_string())
        .await;
    assert_eq!(answer.status, 502);
    // Ctrl-C (SIGINT) stops it as cleanly as SIGTERM.
    let stopped = handler.stop("-INT").await;
    assert!(stopped.status.success(), "{}", stopped.status);
    let stderr = stopped.stderr;
    assert!(
        stderr.contains("ERROR") && stderr.contains("without an asset list"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_refuses_to_start_without_a_secret_it_needs_with_the_line_check_prints() {
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    // serve's defaults: WAREHOUSE=sql, and no connection string.
    let served = Binary::serve()
        .coincap(&coincap)
        .current_dir(&app_root())
        .output()
        .await;
    assert_eq!(served.status.code(), Some(1), "{}", served.stdout);
    let refused = served
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("handler serve cannot start: "))
        .unwrap_or_else(|| panic!("{}", served.stderr));
    assert!(
        !served.stdout.contains("Custom handler listening"),
        "it never listens: {}",
        served.stdout
    );

    let checked = Binary::check()
        .arg("--serve")
        .coincap(&coincap)
        .current_dir(&app_root())
        .output()
        .await;
    assert_eq!(checked.status.code(), Some(1));
    let failed = checked
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("FAIL  secret SQL_CONNECTION_STRING: "))
        .unwrap_or_else(|| panic!("{}", checked.stdout));
    assert_eq!(
        refused,
        format!("secret SQL_CONNECTION_STRING: {failed}"),
        "the same line"
    );
    assert!(
        refused.contains("SQL_CONNECTION_STRING is not set"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_bare_handler_prints_its_help_naming_serve_and_starts_nothing() {
    let stopped = Binary::bare().output().await;
    assert_eq!(stopped.status.code(), Some(2), "{}", stopped.stdout);
    let help = format!("{}{}", stopped.stdout, stopped.stderr);
    assert!(help.contains("Usage: handler <COMMAND>"), "{help}");
    assert!(
        help.contains("serve") && help.contains("(what host.json starts)"),
        "{help}"
    );
    assert!(!help.contains("Custom handler listening"), "{help}");
}

#[tokio::test]
async fn serve_refuses_to_start_outside_a_functions_app_naming_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let stopped = Binary::serve()
        .env("COINCAP_API_KEY", API_KEY)
        .sqlite(&dir.path().join("w.db"))
        .current_dir(dir.path())
        .output()
        .await;
    assert_eq!(stopped.status.code(), Some(1));
    assert!(
        stopped
            .stderr
            .starts_with("handler serve cannot start: ./host.json: No such file or directory"),
        "{}",
        stopped.stderr
    );
}

#[tokio::test]
async fn a_bad_setting_is_named_at_start_up() {
    let stopped = Binary::serve()
        .env("COINCAP_LIMIT", "lots")
        .env("WAREHOUSE", "sqlite:/tmp/never-created.db")
        .output()
        .await;
    assert!(!stopped.status.success());
    assert!(
        stopped.stderr.contains("COINCAP_LIMIT"),
        "{}",
        stopped.stderr
    );
}

#[tokio::test]
async fn an_unreachable_pool_fails_the_batch_as_transient_without_leaking_the_login() {
    let (_closed, closed) = closed_port();
    let password = "pw-4f1d9c-never-logged";
    // The settings' old names (WAREHOUSE=synapse, SYNAPSE_*) keep working.
    let mut handler = Binary::serve()
        .env("COINCAP_API_KEY", API_KEY)
        .env("WAREHOUSE", "synapse")
        .env(
            "SYNAPSE_CONNECTION_STRING",
            format!("Server=tcp:127.0.0.1,{closed};Database=coincap;User Id=loader;Password={password};TrustServerCertificate=true"),
        )
        .start()
        .await;
    let answer = post_one_event(&mut handler).await;
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
    assert_eq!(answer.body["fault"]["kind"], "transient", "{}", answer.body);
    let stopped = handler.stop("-TERM").await;
    let logs = format!("{}{}{}", stopped.stdout, stopped.stderr, answer.body);
    assert!(
        !logs.contains(password),
        "the connection string never reaches a log or an answer"
    );
}

#[tokio::test]
async fn the_new_sql_names_reach_the_server_and_an_old_name_gets_one_hint_at_start() {
    let (_closed, closed) = closed_port();
    let mut handler = Binary::serve()
        .env("COINCAP_API_KEY", API_KEY)
        .sql(&format!("Server=tcp:127.0.0.1,{closed};Database=coincap;User Id=loader;Password=pw;TrustServerCertificate=true"))
        .env("SYNAPSE_POOL_SIZE", "2")
        .start()
        .await;
    let answer = post_one_event(&mut handler).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let error = answer.body["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("cannot reach 127.0.0.1:{closed}")),
        "{error}"
    );
    let stopped = handler.stop("-TERM").await;
    let hints: Vec<&str> = stopped
        .stderr
        .lines()
        .filter(|l| l.contains("old name"))
        .collect();
    assert_eq!(hints.len(), 1, "{}", stopped.stderr);
    assert!(
        hints[0].contains("SYNAPSE_POOL_SIZE") && hints[0].contains("SQL_POOL_SIZE"),
        "{}",
        hints[0]
    );
}

#[tokio::test]
async fn a_setting_set_under_both_names_to_different_values_stops_start_up_naming_both() {
    let secret = "Password=pw-77a1-never-shown";
    let stopped = Binary::serve()
        .sql(&format!("Server=a;{secret}"))
        .env("SYNAPSE_CONNECTION_STRING", format!("Server=b;{secret}"))
        .output()
        .await;
    assert!(!stopped.status.success());
    assert!(
        stopped
            .stderr
            .contains("SQL_CONNECTION_STRING and SYNAPSE_CONNECTION_STRING"),
        "{}",
        stopped.stderr
    );
    stopped.assert_never_shown(&[secret]);
}

#[tokio::test]
async fn sigterm_lets_the_invocation_in_flight_finish_then_exits_0() {
    // CoinCap takes 2 s to answer: SIGTERM arrives while TimerFetch waits for it.
    let coincap = CoinCap::start(
        vec![],
        Reply::ok(page(1_747_000_000_000, &realistic_assets())).delayed(Duration::from_secs(2)),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let handler = Binary::serve()
        .coincap(&coincap)
        .sqlite(&dir.path().join("w.db"))
        .start()
        .await;
    let url = format!("http://127.0.0.1:{}/TimerFetch", handler.port);
    let in_flight = tokio::spawn(async move {
        let response = reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/json")
            .header(
                "X-Azure-Functions-InvocationId",
                "00000000-0000-4000-8000-00000000000b",
            )
            .body(timer_payload().to_string())
            .send()
            .await
            .unwrap();
        Answer::read(response).await
    });
    let asked = Instant::now();
    while coincap.seen().is_empty() {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "TimerFetch never called CoinCap"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let stopped = handler.stop("-TERM").await;
    let answer = in_flight.await.unwrap();

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.events().len(), 4);
    assert!(stopped.status.success(), "{}", stopped.status);
    let stdout = &stopped.stdout;
    let stopping = stdout
        .find("Stopping: no new invocations; finishing those in flight.")
        .unwrap_or_else(|| panic!("{stdout}"));
    let stopped_at = stdout.find("Custom handler stopped.").unwrap();
    assert!(stopping < stopped_at, "{stdout}");
}

/// One valid event to EventHubSink, as the host posts a batch.
async fn post_one_event(handler: &mut Running) -> Answer {
    let bodies = vec![r#"{"id":"bitcoin","timestamp":1747000000000}"#.to_owned()];
    handler
        .post(
            "EventHubSink",
            crate::common::sink_payload(&bodies, 0).to_string(),
        )
        .await
}

#[tokio::test]
async fn over_the_monthly_credits_serve_warns_at_start_naming_the_setting_that_fits() {
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    let dir = tempfile::tempdir().unwrap();
    let handler = Binary::serve()
        .coincap(&coincap)
        .sqlite(&dir.path().join("w.db"))
        .env("FETCH_SCHEDULE", "0 */5 * * * *")
        .env("COINCAP_LIMIT", "100")
        .start()
        .await;
    let stopped = handler.stop("-TERM").await;
    let line = stopped
        .stdout
        .lines()
        .chain(stopped.stderr.lines())
        .find(|line| line.contains("CoinCap credits if left running"))
        .unwrap_or_else(|| panic!("{}\n{}", stopped.stdout, stopped.stderr));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("over COINCAP_MONTHLY_CREDITS=2,500. Fix: FETCH_SCHEDULE=\"0 0 */6 * * *\""),
        "{line}"
    );
    assert!(coincap.seen().is_empty(), "estimated before any call");
}
