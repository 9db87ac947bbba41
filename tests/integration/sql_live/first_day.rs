//! What a newcomer meets on the first day against a real server, through the binary: the
//! database `init-warehouse` creates when it is missing, `master` refused by `init-warehouse` and
//! `check` unless allowed (and `check` naming the database rows go to), `--app-identity` on a
//! server without Microsoft Entra principals (what was done, then the fix), and the server's
//! expected refusal of the NUL probe never logged as an error by `serve`.

use super::check::{check, with_part};
use super::support::*;
use crate::common::coincap::{CoinCap, page, realistic_assets};
use crate::common::process::Stopped;
use crate::common::run::Binary;
use crate::common::{API_KEY, app_root, sink_payload};

/// `handler init-warehouse` with `connection` and `flags`, to its end.
async fn init_warehouse(connection: &str, flags: &[&str]) -> Stopped {
    Binary::init_warehouse()
        .args(flags)
        .env("SQL_CONNECTION_STRING", connection)
        .current_dir(&app_root())
        .output()
        .await
}

/// `connection` naming `database` instead.
fn naming(connection: &str, database: &str) -> String {
    with_part(
        &with_part(connection, "Database", database),
        "Initial Catalog",
        database,
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (SQL Server or the engine: a login that may create databases)"]
async fn init_warehouse_creates_the_database_the_settings_name_and_check_then_names_it() {
    let connection = connection_string();
    let _turn = serial().await;
    let database = format!("coincap_{}", &prefix()[1..9]);
    let fresh = naming(&connection, &database);
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;

    let (passed, before) = check(&coincap, &fresh, &[]).await;
    assert!(!passed, "{before}");
    assert!(
        before.contains("`handler init-warehouse` creates it on SQL Server"),
        "check names the fix: {before}"
    );

    let created = init_warehouse(&fresh, &[]).await;
    assert!(created.status.success(), "{}", created.stderr);
    let lines: Vec<&str> = created.stdout.lines().collect();
    assert!(
        lines[1].starts_with(&format!("Created database {database} on ")),
        "{}",
        created.stdout
    );
    assert!(
        created
            .stdout
            .contains("Created table assets.asset_statistics_history_v3."),
        "{}",
        created.stdout
    );

    let (passed, after) = check(&coincap, &fresh, &[]).await;
    assert!(passed, "{after}");
    assert!(
        after.contains(&format!(
            "rows are written into database {database}{}; the writer's tables are ready",
            rows_go()
        )),
        "check names the database rows go to: {after}"
    );
    execute(&connection, &format!("DROP DATABASE [{database}]")).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn master_is_refused_by_init_warehouse_and_check_unless_allowed() {
    let connection = connection_string();
    let _turn = serial().await;
    let master = naming(&connection, "master");

    let refused = init_warehouse(&master, &[]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", refused.stdout);
    assert_eq!(
        refused.stderr,
        "handler init-warehouse failed: choosing the database failed: the settings name database master, the server's system database; nothing was created. Fix: name your own database: Database= in SQL_CONNECTION_STRING (or SQL_DATABASE with passwordless login), e.g. Database=coincap, which `handler init-warehouse` creates when it is missing; or pass --allow-master if master is meant\n"
    );
    assert!(!refused.stdout.contains("Created"), "{}", refused.stdout);

    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    let (passed, stdout) = check(&coincap, &master, &[]).await;
    assert!(!passed, "{stdout}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("FAIL  warehouse database master on "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("rows would be written into database master, the server's system database. Fix: name your own database"),
        "{line}"
    );
    let (_, allowed) = check(&coincap, &master, &["--allow-master"]).await;
    assert!(
        !allowed.contains("the server's system database"),
        "--allow-master: {allowed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL on a server without Microsoft Entra principals (SQL Server, the engine)"]
async fn app_identity_without_entra_principals_says_what_was_done_then_the_fix() {
    let connection = connection_string();
    let _turn = serial().await;
    let failed = init_warehouse(&connection, &["--app-identity", "func-coincap-17"]).await;

    assert_eq!(failed.status.code(), Some(1), "{}", failed.stdout);
    // What was done before the failed step is on the screen already.
    assert!(
        failed.stdout.contains("Created schema assets.")
            || failed.stdout.contains("Schema assets exists."),
        "{}",
        failed.stdout
    );
    for table in [
        "assets.asset_statistics_history_v3",
        "assets.asset_statistics_rejects",
        "assets.asset_statistics_writer_lock",
    ] {
        assert!(failed.stdout.contains(table), "{table}: {}", failed.stdout);
    }
    let error = failed.stderr.trim_end();
    assert!(
        error.starts_with(
            "handler init-warehouse failed: creating user func-coincap-17 from Microsoft Entra ID failed: "
        ) && error.ends_with(&format!("Fix: {}", coincap_stream::warehouse::sql::init::ENTRA_FIX)),
        "{error}"
    );
    let help = Binary::init_warehouse().arg("--help").output().await;
    let said: String = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains(&format!(
            "grants it {}",
            coincap_stream::warehouse::sql::init::GRANTED
        )),
        "the help names the grants made: {said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn the_nul_probe_s_expected_refusal_is_not_logged_as_an_error_by_serve() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    let mut serve = Binary::serve()
        .current_dir(&app_root())
        .sql(&connection)
        .env("COINCAP_API_KEY", API_KEY)
        .start()
        .await;

    // A poison event holding NUL: the writer asks the server once whether it stores NUL.
    let mut bodies = events(&prefix, 3, 1_747_000_000_000);
    bodies.push("not json \u{0} at all".to_owned());
    let payload = sink_payload(&bodies, 0);
    let mut payload = payload.to_string();
    payload = payload.replace(
        "\"PartitionId\":\"3\"",
        &format!("\"PartitionId\":\"{prefix}\""),
    );
    let answer = serve.post("EventHubSink", payload).await;
    let stopped = serve.stop("-TERM").await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(count(&connection, &prefix).await, 3);
    assert_eq!(rejects(&connection, &prefix).await, 1);
    let errors: Vec<&str> = stopped
        .stderr
        .lines()
        .filter(|line| line.contains("ERROR"))
        .collect();
    assert!(
        errors.is_empty(),
        "an invocation that answered 200 logs no error: {errors:?}"
    );
}
