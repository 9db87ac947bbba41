//! `handler check` and `handler local` against the live server: the warehouse line with
//! `init-warehouse`'s report, and the fix each names for a refused login, a missing database and a
//! missing table (the local runner stopping at once on each). Ignored unless asked for, like the
//! rest of the live suite.

use super::support::{connection_string, execute, init, is_dedicated_pool, rows_go, serial};
use crate::common::app_root;
use crate::common::coincap::{CoinCap, page, realistic_assets};
use crate::common::process::Stopped;
use crate::common::run::Binary;

const LOCK: &str = "assets.asset_statistics_writer_lock";

async fn coincap() -> CoinCap {
    CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await
}

pub async fn check(coincap: &CoinCap, connection: &str, flags: &[&str]) -> (bool, String) {
    let output = Binary::check()
        .arg("--app-root")
        .arg(app_root())
        .args(flags)
        .coincap(coincap)
        .sql(connection)
        .output()
        .await;
    (output.status.success(), output.stdout)
}

/// `handler local` until it stops by itself (it must: the failure is permanent; the next tick
/// would be in an hour).
async fn local(coincap: &CoinCap, connection: &str) -> Stopped {
    Binary::local(&app_root())
        .args(["--every", "1h"])
        .coincap(coincap)
        .sql(connection)
        .output()
        .await
}

/// The connection string with one `key=value` part replaced.
pub fn with_part(connection: &str, key: &str, value: &str) -> String {
    connection
        .split(';')
        .map(|part| match part.split_once('=') {
            Some((k, _)) if k.trim().eq_ignore_ascii_case(key) => format!("{k}={value}"),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn password_of(connection: &str) -> Option<String> {
    connection.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("password")
            .then(|| v.to_owned())
    })
}

fn assert_stopped_at_once_with(stopped: &Stopped, fix: &str) {
    assert!(!stopped.status.success(), "{}", stopped.stdout);
    let failures: Vec<&str> = stopped
        .stdout
        .lines()
        .filter(|line| line.contains("EventHubSink failed"))
        .collect();
    assert_eq!(failures.len(), 1, "one line: {failures:?}");
    assert!(
        failures[0].starts_with("tick   1 | EventHubSink failed permanently, stopping at once: ")
            && failures[0].contains(fix),
        "{}",
        failures[0]
    );
    let verdict = stopped.stdout.lines().last().unwrap();
    assert!(
        verdict.starts_with(
            "Stopped at once by a failure another attempt would repeat: EventHubSink: "
        ) && verdict.contains(fix)
            && verdict.ends_with(". 4 fetched events were not written. No rows were written."),
        "the verdict carries the reason and its fix: {verdict}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn check_after_init_warehouse_reports_the_writer_ready_with_its_design() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let coincap = coincap().await;

    let (passed, stdout) = check(&coincap, &connection, &[]).await;

    assert!(passed, "{stdout}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("ok    warehouse database "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("(login from environment variable SQL_CONNECTION_STRING): reachable, ")
            && line.ends_with(&format!("{}; the writer's tables are ready", rows_go())),
        "{line}"
    );
    for reported in [
        "      What the writer relies on:",
        "        id column: ",
        "        assets.asset_statistics_writer_lock: 1 row (writers serialize on it)",
        "        is_read_committed_snapshot_on",
    ] {
        assert!(stdout.contains(reported), "{reported}: {stdout}");
    }
    assert!(
        stdout.contains("ok    CoinCap credits: about "),
        "the credits line, within the budget at the defaults: {stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("All 6 checks passed."));
    if let Some(password) = password_of(&connection) {
        assert!(!stdout.contains(&password), "the password is never shown");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_refused_login_and_a_missing_database_name_their_fix_and_stop_local_at_once() {
    let connection = connection_string();
    let _turn = serial().await;
    let coincap = coincap().await;
    let wrong_password = with_part(&connection, "Password", "not-the-password-5e");
    let no_database = with_part(
        &with_part(&connection, "Database", "coincap_missing_17"),
        "Initial Catalog",
        "coincap_missing_17",
    );
    let cases = [
        (
            wrong_password,
            "Fix: check the login: User Id and Password in SQL_CONNECTION_STRING",
        ),
        (
            no_database,
            "Fix: check the database name (Database= or Initial Catalog= in SQL_CONNECTION_STRING; SQL_DATABASE only with passwordless login, beside SQL_SERVER), that it exists (`handler init-warehouse` creates it on SQL Server)",
        ),
    ];
    for (settings, fix) in cases {
        let (passed, stdout) = check(&coincap, &settings, &[]).await;
        assert!(!passed, "{stdout}");
        let line = stdout
            .lines()
            .find(|line| line.starts_with("FAIL  warehouse "))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains(fix), "{line}");

        let stopped = local(&coincap, &settings).await;
        assert_stopped_at_once_with(&stopped, fix);
        assert!(!stopped.stderr.contains("not-the-password-5e"));
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn with_a_table_missing_check_changes_nothing_and_local_stops_naming_init_warehouse() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let dedicated_pool = is_dedicated_pool(&connection).await;
    let away = "asset_statistics_writer_lock_away_17";
    execute(&connection, &rename_lock(dedicated_pool, LOCK, away)).await;

    let outcome = tokio::spawn({
        let connection = connection.clone();
        async move {
            let coincap = coincap().await;
            let (passed, stdout) = check(&coincap, &connection, &[]).await;
            assert!(!passed, "{stdout}");
            assert!(
                stdout.contains(&format!(
                    "{LOCK} is missing. Fix: run `handler init-warehouse` with the same settings"
                )),
                "{stdout}"
            );
            // Read only: the table is still missing.
            let (_, again) = check(&coincap, &connection, &[]).await;
            assert!(again.contains(&format!("{LOCK} is missing")), "{again}");

            let stopped = local(&coincap, &connection).await;
            assert_stopped_at_once_with(
                &stopped,
                "Fix: run `handler init-warehouse` with the same settings",
            );
        }
    })
    .await;

    execute(
        &connection,
        &rename_lock(
            dedicated_pool,
            &format!("assets.{away}"),
            "asset_statistics_writer_lock",
        ),
    )
    .await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Renames a table: `RENAME OBJECT` on a pool, `sp_rename` elsewhere (with its object type, which
/// SQL Server takes and some compatible engines require).
fn rename_lock(dedicated_pool: bool, from: &str, to: &str) -> String {
    if dedicated_pool {
        format!("RENAME OBJECT {from} TO {to}")
    } else {
        format!("EXEC sp_rename N'{from}', N'{to}', N'OBJECT'")
    }
}
