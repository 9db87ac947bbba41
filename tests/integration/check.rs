//! `handler check` with the real binary, as a new user runs it before the first tick: one line per
//! dependency, exit 0 only when all pass, never a secret's value, nothing created. Against the
//! CoinCap stand-in, the HTTPS Key Vault and managed identity stand-ins, SQLite files and a closed
//! port; the SQL Server side runs in the live suite (sql_live/check.rs).

mod costs;
mod old_names;

use crate::common::azure::Azure;
use crate::common::coincap::{CoinCap, page, realistic_assets};
use crate::common::process::Stopped;
use crate::common::run::Binary;
use crate::common::{API_KEY, app_root, closed_port};

const VAULT_KEY: &str = "vault-key-0c5e27b9";
const PASSWORD: &str = "pw-51d0aa-never-shown";

/// A CoinCap stand-in answering one asset, as it does to `limit=1`.
async fn coincap() -> CoinCap {
    CoinCap::serving(one_asset_page()).await
}

fn one_asset_page() -> String {
    page(1_747_000_000_000, &realistic_assets()[..1])
}

/// The size of the stand-in's one-asset answer.
fn one_asset_bytes() -> usize {
    one_asset_page().len()
}

/// `handler check` against the stand-in, without a CoinCap key: each test says which.
fn check(coincap: &CoinCap) -> Binary {
    Binary::check()
        .env("COINCAP_BASE_URL", &coincap.url)
        .env("COINCAP_RETRY_BASE", "10ms")
}

#[tokio::test(flavor = "multi_thread")]
async fn with_local_settings_every_check_passes_with_the_cheapest_call_and_creates_nothing() {
    let coincap = coincap().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let output = check(&coincap)
        .env("COINCAP_API_KEY", API_KEY)
        .env("COINCAP_LIMIT", "2000")
        .env("COINCAP_IDS", "bitcoin,ethereum")
        .sqlite(&db)
        .output()
        .await;
    let (stdout, stderr) = (&output.stdout, &output.stderr);

    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        6,
        "one line per check and the verdict: {stdout}"
    );
    assert!(
        lines[0].starts_with("ok    settings: every setting parses (defaults of `handler local`;"),
        "{stdout}"
    );
    assert_eq!(
        lines[1],
        "ok    secret COINCAP_API_KEY: readable from environment variables"
    );
    let coincap_line = format!(
        "ok    CoinCap {}: the API key is accepted (GET /v3/assets?limit=1: 1 asset, ",
        coincap.url
    );
    assert!(lines[2].starts_with(&coincap_line), "{stdout}");
    assert!(
        lines[2].ends_with(
            "bytes, about 1 credit; CoinCap reportedly bills 1 credit per 2.5 KB of answer)"
        ),
        "{stdout}"
    );
    let bytes = one_asset_bytes();
    assert_eq!(
        lines[3],
        format!(
            "ok    CoinCap credits: about 744 credits a month (744 calls in a 31-day month x 1 credit for 2 assets, {} bytes a call: {bytes} bytes an asset, from a real answer of {bytes} bytes for 1; CoinCap reportedly bills 1 credit per 2.5 KB), within COINCAP_MONTHLY_CREDITS=2,500",
            2 * bytes
        ),
        "hourly (the default) for the 2 ids, from the size of the one-asset answer"
    );
    assert_eq!(
        lines[4],
        format!(
            "ok    warehouse: the SQLite file {} does not exist yet: the first write creates it and its tables",
            db.display()
        )
    );
    assert_eq!(lines[5], "All 5 checks passed.");
    let seen = coincap.seen();
    assert_eq!(seen.len(), 1, "one call");
    assert_eq!(
        seen[0].path_and_query, "/v3/assets?limit=1",
        "the smallest call, whatever COINCAP_LIMIT and COINCAP_IDS say"
    );
    assert!(!db.exists(), "check creates no file");
    assert!(!stdout.contains(API_KEY) && !stderr.contains(API_KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_key_and_a_missing_directory_fail_their_lines_with_the_fix_and_the_exit_code() {
    let coincap = coincap().await;
    let output = check(&coincap)
        .env("COINCAP_API_KEY", "not-the-key-77aa")
        .env("WAREHOUSE", "sqlite:/no-such-directory-17/local.db")
        .output()
        .await;
    let stdout = &output.stdout;

    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "FAIL  CoinCap {}: CoinCap refused the API key (HTTP 401). Fix: set COINCAP_API_KEY",
            coincap.url
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  warehouse: the warehouse failed while checking the SQLite file: the directory /no-such-directory-17 does not exist"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skip  CoinCap credits: no answer to measure (see above)"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some(
            "3 of 5 checks did not pass (1 not tried): fix what they say and run `handler check` again."
        )
    );
    assert!(!stdout.contains("not-the-key-77aa"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_setting_is_the_one_line_and_nothing_is_called() {
    let coincap = coincap().await;
    let output = check(&coincap)
        .env("COINCAP_API_KEY", API_KEY)
        .env("COINCAP_LIMIT", "lots")
        .output()
        .await;
    let stdout = &output.stdout;
    assert!(!output.status.success());
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "FAIL  settings: setting COINCAP_LIMIT=\"lots\" is invalid: expected a whole number from 1 to 2000",
            "1 of 1 checks did not pass: fix what they say and run `handler check` again."
        ]
    );
    assert!(coincap.seen().is_empty());
}

/// `handler check --serve` with a deployed app's settings on this machine: Key Vault through the
/// managed identity (stand-ins speaking the real protocols), `serve`'s defaults.
async fn check_deployed(azure: &Azure) -> Stopped {
    check(&azure.coincap)
        .arg("--serve")
        .azure(azure)
        .output()
        .await
}

async fn azure(secrets: &[(&str, &str)]) -> Azure {
    Azure::start(secrets, coincap().await, VAULT_KEY).await
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_deployed_app_s_settings_each_secret_is_read_by_name_and_the_pool_is_tried() {
    let (_closed, port) = closed_port();
    let connection = format!(
        "Server=tcp:127.0.0.1,{port};Database=coincap;User Id=loader;Password={PASSWORD};TrustServerCertificate=true"
    );
    let azure = azure(&[
        ("coincap-api-key", VAULT_KEY),
        ("synapse-connection-string", &connection),
    ])
    .await;

    let output = check_deployed(&azure).await;
    let (stdout, stderr) = (&output.stdout, &output.stderr);

    assert!(!output.status.success(), "the pool is down: {stdout}");
    let vault = format!(
        "readable from Key Vault {} with the system-assigned managed identity (cached for 15m)",
        azure.vault.url
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("defaults of `handler serve`; WAREHOUSE=sql; secrets from Key Vault"),
        "{stdout}"
    );
    assert_eq!(
        lines[1],
        format!("ok    secret \"coincap-api-key\" (named by COINCAP_API_KEY_SECRET): {vault}")
    );
    // A vault an earlier version was deployed with: its secret still has the old default name.
    assert_eq!(
        lines[2],
        format!(
            "ok    secret \"sql-connection-string\" (named by SQL_CONNECTION_STRING_SECRET): {vault}; found as Key Vault {} secret \"synapse-connection-string\", the old default name: set SQL_CONNECTION_STRING_SECRET to that name, or rename the secret",
            azure.vault.url
        )
    );
    assert!(
        lines[3].starts_with(&format!(
            "ok    CoinCap {}: the API key is accepted",
            azure.coincap.url
        )),
        "{stdout}"
    );
    assert!(
        lines[4].starts_with("ok    CoinCap credits: about 1,488 credits a month (744 calls in a 31-day month x 2 credits for 10 assets"),
        "serve's defaults are the free plan's too: {stdout}"
    );
    assert_eq!(
        lines[5],
        format!(
            "FAIL  warehouse database coincap on 127.0.0.1:{port} (login from Key Vault {} secret \"synapse-connection-string\"): cannot reach 127.0.0.1:{port}: Connection refused (os error 111)",
            azure.vault.url
        )
    );
    assert_eq!(
        lines[6],
        "1 of 6 checks did not pass: fix what they say and run `handler check` again."
    );
    let authorized: Vec<String> = azure
        .vault
        .authorized()
        .into_iter()
        .map(|r| r.secret)
        .collect();
    assert_eq!(
        authorized,
        [
            "coincap-api-key",
            "sql-connection-string",
            "synapse-connection-string"
        ],
        "each secret read once (the connection string under its new default name, missing, then its old)"
    );
    for secret in [VAULT_KEY, PASSWORD, azure.identity.token.as_str()] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret value was printed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_missing_from_the_vault_is_named_with_its_setting_and_what_needs_it_is_not_tried()
{
    let azure = azure(&[]).await;

    let output = check_deployed(&azure).await;
    let stdout = &output.stdout;

    assert!(!output.status.success());
    assert!(
        stdout.contains(&format!("FAIL  secret \"coincap-api-key\" (named by COINCAP_API_KEY_SECRET): secret \"coincap-api-key\" does not exist in Key Vault {}: create it", azure.vault.url)),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "FAIL  secret \"sql-connection-string\" (named by SQL_CONNECTION_STRING_SECRET)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("skip  CoinCap: no API key to try (see above)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skip  warehouse: no login to try (see above)"),
        "{stdout}"
    );
    assert!(azure.coincap.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_local_refuses_fails_check_with_the_same_words() {
    let coincap = coincap().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db");
    let five_fields = "*/5 * * * *";
    let refused = "FETCH_SCHEDULE: \"*/5 * * * *\" is not a six-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}, e.g. \"0 */5 * * * *\")";
    for flags in [&[][..], &["--serve"][..]] {
        let output = check(&coincap)
            .args(flags)
            .env("COINCAP_API_KEY", API_KEY)
            .sqlite(&db)
            .env("FETCH_SCHEDULE", five_fields)
            .output()
            .await;
        assert_eq!(output.status.code(), Some(1), "{}", output.stdout);
        assert_eq!(
            output.stdout,
            format!(
                "FAIL  settings: {refused}\n1 of 1 checks did not pass: fix what they say and run `handler check` again.\n"
            )
        );
    }
    let local = Binary::local(&app_root())
        .coincap(&coincap)
        .sqlite(&db)
        .env("FETCH_SCHEDULE", five_fields)
        .output()
        .await;
    assert_eq!(local.status.code(), Some(1));
    assert_eq!(
        local.stdout,
        format!("handler local cannot start: {refused}\n"),
        "local refuses what check refuses, in the same words"
    );
    assert!(coincap.seen().is_empty(), "neither fetched");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reads_host_json_from_the_app_root_as_local_does() {
    let coincap = coincap().await;
    let empty = tempfile::tempdir().unwrap();
    let output = check(&coincap)
        .env("COINCAP_API_KEY", API_KEY)
        .arg("--app-root")
        .arg(empty.path())
        .output()
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", output.stdout);
    assert!(
        output.stdout.starts_with(&format!(
            "FAIL  settings: {}/host.json: No such file or directory",
            empty.path().display()
        )),
        "{}",
        output.stdout
    );
    let output = check(&coincap)
        .env("COINCAP_API_KEY", API_KEY)
        .arg("--app-root")
        .arg(app_root())
        .output()
        .await;
    assert!(
        output.stdout.lines().next().unwrap().ends_with(&format!(
            "the app in {} is read as the host reads it: TimerFetch fires on the NCRONTAB schedule \"0 0 * * * *\", EventHubSink takes batches of up to 1000 from hub \"coincaphub\"",
            app_root().display()
        )),
        "{}",
        output.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_string_without_warehouse_sql_is_named_as_ignored_and_the_sqlite_file_shown_whole()
 {
    let coincap = coincap().await;
    let dir = tempfile::tempdir().unwrap();
    let output = check(&coincap)
        .env("COINCAP_API_KEY", API_KEY)
        .env(
            "SQL_CONNECTION_STRING",
            format!("Server=tcp:db,1433;Database=coincap;User Id=u;Password={PASSWORD}"),
        )
        .env("WAREHOUSE", "sqlite:rows.db")
        .current_dir(dir.path())
        .arg("--app-root")
        .arg(app_root())
        .output()
        .await;
    let stdout = &output.stdout;
    assert!(output.status.success(), "a warning fails nothing: {stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[1],
        "warn  SQL_CONNECTION_STRING is set but ignored: WAREHOUSE=sqlite:rows.db writes into a SQLite file; set WAREHOUSE=sql to write into the SQL database",
        "{stdout}"
    );
    assert!(
        lines[0].contains(&format!(
            "WAREHOUSE=sqlite:{}",
            dir.path().join("rows.db").display()
        )),
        "the file, whole: {stdout}"
    );
    assert_eq!(
        lines.last().copied(),
        Some("All 5 checks passed, with 1 warning.")
    );
    output.assert_never_shown(&[PASSWORD]);
}
