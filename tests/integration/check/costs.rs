//! What `handler check` says a schedule costs: the month's CoinCap credits against
//! `COINCAP_MONTHLY_CREDITS` (failing over it, naming what fits), and whether a serverless
//! database can pause between fetches (`SQL_AUTO_PAUSE_DELAY`).

use super::{PASSWORD, check, coincap, one_asset_bytes};
use crate::common::{API_KEY, closed_port};

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_over_the_monthly_credits_fails_before_they_are_spent_and_names_what_fits() {
    let coincap = coincap().await;
    let dir = tempfile::tempdir().unwrap();
    let output = check(&coincap)
        .env("COINCAP_API_KEY", API_KEY)
        .env("FETCH_SCHEDULE", "0 */5 * * * *")
        .env("COINCAP_LIMIT", "100")
        .sqlite(&dir.path().join("w.db"))
        .output()
        .await;
    let stdout = &output.stdout;

    assert!(!output.status.success(), "{stdout}");
    let bytes = one_asset_bytes();
    let a_call = 100 * bytes;
    let credits = a_call.div_ceil(2500);
    let line = stdout
        .lines()
        .find(|line| line.starts_with("FAIL  CoinCap credits:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.starts_with(&format!(
            "FAIL  CoinCap credits: about {} credits a month (8,928 calls in a 31-day month x {credits} credits for 100 assets",
            thousands(8928 * credits)
        )),
        "{line}"
    );
    assert!(
        line.contains("over COINCAP_MONTHLY_CREDITS=2,500. Fix: FETCH_SCHEDULE=\""),
        "{line}"
    );
    assert!(line.contains("COINCAP_MONTHLY_CREDITS="), "{line}");
    assert_eq!(coincap.seen().len(), 1, "still the one smallest call");
    assert_eq!(
        stdout.lines().last(),
        Some("1 of 5 checks did not pass: fix what they say and run `handler check` again.")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn for_a_serverless_database_check_says_whether_the_schedule_lets_it_pause() {
    let coincap = coincap().await;
    let (_closed, port) = closed_port();
    let run = |schedule: &'static str| {
        check(&coincap)
            .env("COINCAP_API_KEY", API_KEY)
            .env("FETCH_SCHEDULE", schedule)
            .sql(&format!(
                "Server=tcp:127.0.0.1,{port};Database=coincap;User Id=loader;Password={PASSWORD}"
            ))
            .env("SQL_AUTO_PAUSE_DELAY", "15m")
            .output()
    };

    let every_five = run("0 */5 * * * *").await.stdout;
    let line = every_five
        .lines()
        .find(|line| line.contains("warehouse auto-pause:"))
        .unwrap_or_else(|| panic!("{every_five}"));
    assert_eq!(
        line,
        "FAIL  warehouse auto-pause: it never pauses: the longest wait between fetches (5m) is shorter than the 16m 30s it must be quiet (SQL_IDLE_TIMEOUT, a reaper round, SQL_AUTO_PAUSE_DELAY), so it stays online and is billed every second. Fix: fetch less often (FETCH_SCHEDULE), or choose a database that bills a flat rate and never pauses (the template's sqlDatabaseTier=Basic), then unset SQL_AUTO_PAUSE_DELAY"
    );

    let hourly = run("0 0 * * * *").await.stdout;
    assert!(
        hourly.contains("ok    warehouse auto-pause: it can pause between fetches: the shortest wait (1h) outlasts the 16m 30s it must be quiet"),
        "{hourly}"
    );
}

/// `160704` -> `160,704`.
fn thousands(n: usize) -> String {
    coincap_stream::coincap::credits::thousands(n as u64)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_pause_delay_past_azure_s_maximum_is_refused_with_the_range_not_a_panic() {
    let coincap = coincap().await;
    let (_closed, port) = closed_port();
    for (delay, refused) in [
        ("10081m", true),
        ("18446744073709551615s", true),
        ("7days", false),
    ] {
        let output = check(&coincap)
            .env("COINCAP_API_KEY", API_KEY)
            .sql(&format!(
                "Server=tcp:127.0.0.1,{port};Database=coincap;User Id=loader;Password={PASSWORD}"
            ))
            .env("SQL_AUTO_PAUSE_DELAY", delay)
            .output()
            .await;
        let stdout = &output.stdout;
        assert_eq!(
            output.status.code(),
            Some(1),
            "{delay}: {stdout}\n{}",
            output.stderr
        );
        assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
        let settings = stdout.lines().next().unwrap();
        if refused {
            assert_eq!(
                settings,
                format!(
                    "FAIL  settings: setting SQL_AUTO_PAUSE_DELAY={delay:?} is invalid: expected the serverless database's auto-pause delay, from 15m (its minimum) to 7days (10,080 minutes, its maximum)"
                )
            );
        } else {
            assert!(settings.starts_with("ok    settings: "), "{stdout}");
            assert!(
                stdout.contains("warehouse auto-pause: it never pauses"),
                "{stdout}"
            );
        }
    }
}
