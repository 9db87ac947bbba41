//! A setting read under its old name gets one hint, in the same words, from every command that
//! reads the settings: `check` warns, `local` prints it among its start lines, `serve` logs it.

use super::coincap;
use crate::common::app_root;
use crate::common::run::Binary;

/// The hint for `SYNAPSE_CONNECTION_STRING`, as every command says it.
const HINT: &str = "SYNAPSE_CONNECTION_STRING is the old name of SQL_CONNECTION_STRING: rename it (it still works for now)";

/// The SQL warehouse, its connection string under the old name, on a host no resolver answers
/// (the first label has 64 characters), so a run stops at its first batch.
fn old_settings(binary: Binary) -> Binary {
    let host = format!("{}.invalid", "a".repeat(64));
    binary.env("WAREHOUSE", "sql").env(
        "SYNAPSE_CONNECTION_STRING",
        format!("Server=tcp:{host},1433;Database=coincap;User Id=loader;Password=pw;TrustServerCertificate=true"),
    )
}

fn lines_with<'a>(text: &'a str, hint: &str) -> Vec<&'a str> {
    text.lines().filter(|line| line.contains(hint)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_setting_name_gets_the_same_hint_from_check_local_and_serve() {
    let coincap = coincap().await;

    let checked = old_settings(Binary::check().arg("--app-root").arg(app_root()))
        .coincap(&coincap)
        .output()
        .await;
    assert_eq!(
        lines_with(&checked.stdout, HINT),
        [format!("warn  {HINT}")],
        "{}",
        checked.stdout
    );

    let local = old_settings(Binary::local(&app_root()))
        .coincap(&coincap)
        .args(["--ticks", "1"])
        .output()
        .await;
    assert_eq!(
        lines_with(&local.stdout, HINT),
        [format!("{HINT}.")],
        "{}",
        local.stdout
    );

    let served = old_settings(Binary::serve().current_dir(&app_root()))
        .coincap(&coincap)
        .start()
        .await
        .stop("-TERM")
        .await;
    let logged = lines_with(&served.stderr, HINT);
    assert!(
        logged.len() == 1 && logged[0].contains(&format!("{HINT}.")),
        "{}",
        served.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn init_warehouse_reads_the_settings_once_with_the_same_hint_wherever_it_runs() {
    // In the app root, with a schedule the app files would refuse (it reads neither) and in an
    // empty directory alike.
    let empty = tempfile::tempdir().unwrap();
    for (dir, schedule) in [
        (app_root(), None),
        (app_root(), Some("*/5 * * * *")),
        (empty.path().to_path_buf(), None),
    ] {
        let mut init = old_settings(Binary::init_warehouse().current_dir(&dir));
        if let Some(schedule) = schedule {
            init = init.env("FETCH_SCHEDULE", schedule);
        }
        let output = init.output().await;
        assert!(!output.status.success(), "{}", output.stdout);
        let logged = lines_with(&output.stderr, HINT);
        assert!(
            logged.len() == 1 && logged[0].contains(&format!("{HINT}.")),
            "in {}: {}",
            dir.display(),
            output.stderr
        );
        let host = format!("{}.invalid", "a".repeat(64));
        assert_eq!(
            output.stdout.lines().next(),
            Some(format!("Preparing database coincap on {host}:1433 (login from environment variable SYNAPSE_CONNECTION_STRING).").as_str()),
            "{}",
            output.stdout
        );
        assert!(
            output
                .stderr
                .contains("handler init-warehouse failed: connecting failed: "),
            "{}",
            output.stderr
        );
    }
}
