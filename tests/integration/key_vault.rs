//! The real `handler` binary reading its CoinCap key from Key Vault with the managed identity,
//! against local stand-ins that speak the real protocols: an App Service identity endpoint and an
//! HTTPS vault whose certificate comes from a CA made for the test (trusted via `SSL_CERT_FILE`).

use crate::common::azure::Azure;
use crate::common::coincap::{CoinCap, page, realistic_assets};
use crate::common::process::{Running, Stopped};
use crate::common::run::Binary;
use crate::common::{Answer, app_root, closed_port, timer_payload};

const KEY: &str = "vault-key-5d1e9a07c3";
const ROTATED_KEY: &str = "vault-key-rotated-8f42b6";

/// Azure on this machine, its CoinCap serving a page to `KEY`.
async fn azure(secrets: &[(&str, &str)]) -> Azure {
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    Azure::start(secrets, coincap, KEY).await
}

/// `handler serve` as a deployed Function App runs it against the Azure stand-ins, with a
/// temporary SQLite warehouse: callers add or change settings, then [`Handler::start`] it.
fn serve(azure: &Azure) -> Binary {
    Binary::serve().temporary_sqlite().azure(azure)
}

/// A running `handler serve`, posted to as the host does.
struct Handler {
    running: Running,
}

impl Handler {
    async fn start(serve: Binary) -> Self {
        Self {
            running: serve.start().await,
        }
    }

    async fn timer_fetch(&mut self) -> Answer {
        self.running
            .post("TimerFetch", timer_payload().to_string())
            .await
    }

    /// Every answer's body so far, as text, for the leak checks.
    fn bodies(&self) -> Vec<String> {
        self.running.bodies.clone()
    }

    /// Stops it with SIGTERM, as the host does; returns everything it wrote (stdout, stderr).
    async fn stop(self) -> (String, String) {
        let stopped = self.running.stop("-TERM").await;
        assert!(stopped.status.success(), "{}", stopped.status);
        (stopped.stdout, stopped.stderr)
    }
}

fn error_of(answer: &Answer) -> String {
    answer.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {}", answer.body))
        .to_owned()
}

#[tokio::test]
async fn timer_fetch_uses_the_vault_s_key_read_with_the_managed_identity_s_token() {
    let azure = azure(&[("coincap-api-key", KEY)]).await;
    let mut handler = Handler::start(serve(&azure)).await;

    let answer = handler.timer_fetch().await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.events().len(), 4);
    assert_eq!(azure.coincap_authorizations(), [format!("Bearer {KEY}")]);

    let seen = azure.vault.seen();
    assert_eq!(
        seen[0].authorization, None,
        "the first request carries no token and gets the challenge"
    );
    let authorized = azure.vault.authorized();
    assert_eq!(authorized.len(), 1, "{seen:?}");
    assert_eq!(authorized[0].secret, "coincap-api-key");
    assert!(authorized[0].api_version.is_some());
    let minted = azure.identity.seen();
    assert!(!minted.is_empty());
    for request in &minted {
        assert_eq!(
            request.identity_header.as_deref(),
            Some(azure.identity.header.as_str())
        );
        assert_eq!(request.query["resource"], "https://vault.azure.net");
        assert_eq!(request.query["api-version"], "2019-08-01");
        assert!(!request.query.contains_key("client_id"), "system-assigned");
    }

    let again = handler.timer_fetch().await;
    assert_eq!(again.status, 200);
    assert_eq!(
        azure.vault.authorized().len(),
        1,
        "the key is cached for SECRET_TTL"
    );

    let (stdout, stderr) = handler.stop().await;
    assert!(stdout.contains("Key Vault https://localhost:"), "{stdout}");
    assert!(
        !stderr.contains("not from Key Vault"),
        "no warning when secrets come from the vault: {stderr}"
    );
}

#[tokio::test]
async fn a_key_rotated_in_the_vault_works_at_the_next_invocation_without_a_restart() {
    let azure = azure(&[("coincap-api-key", KEY)]).await;
    let mut handler = Handler::start(serve(&azure)).await;
    assert_eq!(handler.timer_fetch().await.status, 200);

    azure.vault.set_secret("coincap-api-key", ROTATED_KEY);
    azure.coincap.set_keys(&[ROTATED_KEY]);
    let answer = handler.timer_fetch().await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.events().len(), 4);
    assert_eq!(
        azure.coincap_authorizations(),
        [
            format!("Bearer {KEY}"),
            format!("Bearer {KEY}"),
            format!("Bearer {ROTATED_KEY}")
        ],
        "the cached key, refused; then the rotated one"
    );
    assert_eq!(azure.vault.authorized().len(), 2, "one refresh");
    assert!(
        answer
            .logs()
            .iter()
            .any(|line| line.contains("retrying with the refreshed one")),
        "{:?}",
        answer.logs()
    );
    handler.stop().await;
}

#[tokio::test]
async fn the_vault_name_of_the_key_is_a_setting() {
    let azure = azure(&[("coincap-key-prod", KEY)]).await;
    let mut handler =
        Handler::start(serve(&azure).env("COINCAP_API_KEY_SECRET", "coincap-key-prod")).await;
    assert_eq!(handler.timer_fetch().await.status, 200);
    assert_eq!(azure.vault.authorized()[0].secret, "coincap-key-prod");
    handler.stop().await;
}

#[tokio::test]
async fn a_user_assigned_identity_is_asked_for_by_its_client_id() {
    let azure = azure(&[("coincap-api-key", KEY)]).await;
    let mut handler = Handler::start(
        serve(&azure).env("AZURE_CLIENT_ID", "0b4a1a4e-0000-4000-8000-00000000c11d"),
    )
    .await;
    assert_eq!(handler.timer_fetch().await.status, 200);
    let minted = azure.identity.seen();
    assert!(!minted.is_empty());
    for request in minted {
        assert_eq!(
            request.query["client_id"],
            "0b4a1a4e-0000-4000-8000-00000000c11d"
        );
    }
    handler.stop().await;
}

#[tokio::test]
async fn a_secret_missing_from_the_vault_fails_the_invocation_naming_the_vault_and_the_secret() {
    let azure = azure(&[]).await;
    let mut handler = Handler::start(serve(&azure)).await;

    let answer = handler.timer_fetch().await;

    assert_eq!(answer.status, 500);
    let error = error_of(&answer);
    assert!(error.contains(&azure.vault.url), "{error}");
    assert!(error.contains("\"coincap-api-key\""), "{error}");
    assert!(error.contains("does not exist"), "{error}");
    assert!(azure.coincap.seen().is_empty(), "no call without a key");
    let (_, stderr) = handler.stop().await;
    assert!(stderr.contains("does not exist in Key Vault"), "{stderr}");
}

#[tokio::test]
async fn an_unreachable_identity_endpoint_fails_the_invocation_naming_the_vault_and_the_secret() {
    let azure = azure(&[("coincap-api-key", KEY)]).await;
    let (_closed, port) = closed_port();
    let unreachable = format!("http://127.0.0.1:{port}/msi/token");
    let mut handler = Handler::start(serve(&azure).env("IDENTITY_ENDPOINT", &unreachable)).await;

    let answer = handler.timer_fetch().await;

    assert_eq!(answer.status, 500);
    let error = error_of(&answer);
    assert!(error.contains(&azure.vault.url), "{error}");
    assert!(error.contains("\"coincap-api-key\""), "{error}");
    assert!(
        error.contains("cannot get a token with the system-assigned managed identity"),
        "{error}"
    );
    assert!(azure.vault.authorized().is_empty());
    assert!(azure.coincap.seen().is_empty());
    handler.stop().await;
}

#[tokio::test]
async fn without_ssl_cert_file_the_handler_does_not_trust_the_test_vault() {
    let azure = azure(&[("coincap-api-key", KEY)]).await;
    let mut handler = Handler::start(serve(&azure).without("SSL_CERT_FILE")).await;

    let answer = handler.timer_fetch().await;

    assert_eq!(answer.status, 500);
    let error = error_of(&answer);
    assert!(error.contains(&azure.vault.url), "{error}");
    assert!(error.contains("certificate"), "{error}");
    assert!(azure.vault.seen().is_empty(), "no request got through");
    assert!(!azure.vault.handshake_failures().is_empty());
    handler.stop().await;
}

#[tokio::test]
async fn no_log_line_or_response_body_holds_a_secret_value_even_at_trace_level() {
    let azure = azure(&[("coincap-api-key", KEY)]).await;
    let mut handler = Handler::start(serve(&azure).env("RUST_LOG", "trace")).await;

    assert_eq!(handler.timer_fetch().await.status, 200);
    azure.vault.set_secret("coincap-api-key", ROTATED_KEY);
    azure.coincap.set_keys(&[ROTATED_KEY]);
    assert_eq!(handler.timer_fetch().await.status, 200);
    // Refused and not rotated: the failure's error and logs go to the host too.
    azure.coincap.set_keys(&["another-key"]);
    assert_eq!(handler.timer_fetch().await.status, 502);
    let bodies = handler.bodies();
    let (stdout, stderr) = handler.stop().await;

    assert!(
        stdout.contains("Custom handler listening"),
        "the logs were captured"
    );
    for secret in [KEY, ROTATED_KEY, azure.identity.token.as_str()] {
        assert!(!stdout.contains(secret), "stdout holds {secret}");
        assert!(!stderr.contains(secret), "stderr holds {secret}");
        for body in &bodies {
            assert!(!body.contains(secret), "a response holds {secret}: {body}");
        }
    }
}

/// `handler local --ticks 1` with the vault's settings; its output once it has stopped.
async fn run_local(azure: &Azure) -> Stopped {
    Binary::local(&app_root())
        .args(["--every", "1s", "--ticks", "1"])
        .temporary_sqlite()
        .azure(azure)
        .output()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_runner_reads_the_key_from_the_vault_too() {
    let azure = azure(&[("coincap-api-key", KEY)]).await;

    let output = run_local(&azure).await;

    let (stdout, stderr) = (&output.stdout, &output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(azure.coincap_authorizations(), [format!("Bearer {KEY}")]);
    assert_eq!(azure.vault.authorized().len(), 1);
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_runner_stops_at_once_when_the_vault_lacks_the_key() {
    let azure = azure(&[]).await;

    let output = run_local(&azure).await;

    assert!(!output.status.success());
    let screen = &output.stdout;
    assert!(
        screen.starts_with("handler local cannot start: ")
            && screen.contains("\"coincap-api-key\" does not exist in Key Vault"),
        "{screen}"
    );
    assert!(
        !screen.contains("pro.coincap.io"),
        "the fix is in the vault, not a new CoinCap key: {screen}"
    );
    assert!(azure.coincap.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_laptop_a_failed_developer_sign_in_is_said_in_words_not_credential_types() {
    let azure = azure(&[("coincap-api-key", KEY)]).await;
    // No managed identity, and neither `az` nor `azd` on the PATH: the developer tools' sign-in
    // fails, each tool in its own words.
    let no_tools = tempfile::tempdir().unwrap();
    let output = Binary::local(&app_root())
        .args(["--ticks", "1"])
        .temporary_sqlite()
        .azure(&azure)
        .without("IDENTITY_ENDPOINT")
        .without("IDENTITY_HEADER")
        .env("PATH", no_tools.path())
        .output()
        .await;

    assert!(!output.status.success());
    let screen = &output.stdout;
    assert!(
        screen.starts_with("handler local cannot start: secret \"coincap-api-key\"")
            && screen.contains("the sign-in through the Azure CLI (az login) failed")
            && screen
                .contains("the sign-in through the Azure Developer CLI (azd auth login) failed"),
        "{screen}"
    );
    assert!(azure.coincap.seen().is_empty());
}

/// `handler serve` writing to the SQL database, with its connection string in the vault: what
/// EventHubSink answers for one event, and what the handler wrote to stderr.
async fn sink_with_connection_string_in_vault(
    azure: &Azure,
    extra: &[(&'static str, String)],
) -> (Answer, String) {
    let mut handler = Handler::start(
        serve(azure)
            .env("WAREHOUSE", "sql")
            .settings(extra.iter().cloned()),
    )
    .await;
    let bodies = vec![r#"{"id":"bitcoin","timestamp":1747000000000}"#.to_owned()];
    let answer = handler
        .running
        .post(
            "EventHubSink",
            crate::common::sink_payload(&bodies, 0).to_string(),
        )
        .await;
    let (_, stderr) = handler.stop().await;
    (answer, stderr)
}

/// A connection string to a port nothing listens on (kept closed while `port`'s socket lives).
fn unreachable_server(port: u16) -> String {
    format!(
        "Server=tcp:127.0.0.1,{port};Database=coincap;User Id=loader;Password=pw-vault-3e9;TrustServerCertificate=true"
    )
}

fn secrets_read(azure: &Azure) -> Vec<String> {
    azure
        .vault
        .authorized()
        .into_iter()
        .map(|request| request.secret)
        .collect()
}

#[tokio::test]
async fn the_connection_string_is_read_under_its_new_default_name() {
    let (_closed, port) = closed_port();
    let azure = azure(&[
        ("sql-connection-string", &unreachable_server(port)),
        ("synapse-connection-string", "Server=tcp:never-read,1433"),
    ])
    .await;
    let (answer, _) = sink_with_connection_string_in_vault(&azure, &[]).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let error = error_of(&answer);
    assert!(
        error.contains(&format!("cannot reach 127.0.0.1:{port}")),
        "{error}"
    );
    assert_eq!(secrets_read(&azure), ["sql-connection-string"]);
}

#[tokio::test]
async fn a_vault_set_up_before_the_rename_keeps_working_through_the_old_default_name() {
    let (_closed, port) = closed_port();
    let azure = azure(&[("synapse-connection-string", &unreachable_server(port))]).await;
    let (answer, stderr) = sink_with_connection_string_in_vault(&azure, &[]).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let error = error_of(&answer);
    assert!(
        error.contains(&format!("cannot reach 127.0.0.1:{port}")),
        "the old secret was read and used: {error}"
    );
    assert_eq!(
        secrets_read(&azure),
        ["sql-connection-string", "synapse-connection-string"]
    );
    assert_eq!(
        stderr
            .matches("Secret read under its old default name")
            .count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("pw-vault-3e9"), "{stderr}");
}

#[tokio::test]
async fn without_either_default_name_the_error_names_the_new_one_and_its_setting() {
    let azure = azure(&[]).await;
    let (answer, _) = sink_with_connection_string_in_vault(&azure, &[]).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let error = error_of(&answer);
    assert!(
        error.contains("\"sql-connection-string\" does not exist"),
        "{error}"
    );
    assert!(error.contains("SQL_CONNECTION_STRING_SECRET"), "{error}");
    assert_eq!(
        secrets_read(&azure),
        ["sql-connection-string", "synapse-connection-string"]
    );
}

#[tokio::test]
async fn a_secret_named_by_a_setting_is_the_only_name_read() {
    let (_closed, port) = closed_port();
    let azure = azure(&[("synapse-connection-string", &unreachable_server(port))]).await;
    let (answer, _) = sink_with_connection_string_in_vault(
        &azure,
        &[("SQL_CONNECTION_STRING_SECRET", "warehouse-login".into())],
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let error = error_of(&answer);
    assert!(
        error.contains("\"warehouse-login\" does not exist"),
        "{error}"
    );
    assert_eq!(secrets_read(&azure), ["warehouse-login"]);
}

#[tokio::test]
async fn a_broken_connection_string_names_the_vault_secret_it_came_from_not_its_content() {
    let azure = azure(&[(
        "synapse-connection-string",
        "jdbc:sqlserver://;password=pw-broken-51c;encrypt=maybe",
    )])
    .await;
    let (answer, stderr) = sink_with_connection_string_in_vault(&azure, &[]).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let error = error_of(&answer);
    assert!(
        error.contains("secret \"synapse-connection-string\" is not a valid"),
        "{error}"
    );
    assert!(!error.contains("pw-broken") && !stderr.contains("pw-broken"));
}
