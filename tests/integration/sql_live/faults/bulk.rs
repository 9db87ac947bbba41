//! Rows by bulk load: a batch mixing new keys, keys already stored (by the text path) and keys
//! repeated inside the batch, counted exactly; and a server that refuses bulk load (the TDS proxy
//! answers the bulk load's rows with error 4834 in the server's place): the batch lands as SQL
//! text, the refusal is logged once and never met again in that process, and `check` and
//! `init-warehouse` say how rows go; and an invocation given up mid-bulk-load, whose connection
//! is never used again.

use coincap_stream::warehouse::sql::{BulkLoadSetting, SqlConfig};
use coincap_stream::warehouse::{SqlWarehouse, Warehouse};
use serde_json::json;

use super::super::support::*;
use super::{ENQUEUED, assert_stored, batch_of, counts, deliver, hub, proxy, serve, serve_with};
use crate::common::coincap::{CoinCap, page, realistic_assets};
use crate::common::run::Binary;
use crate::common::tds_proxy::Fault;
use crate::common::{app_root, hub_payload};

const TAKES: &str = "The server takes bulk load";
const REFUSED: &str = "The server refused bulk load into a session table";

/// An event of `id` (under `prefix`) at `ms`, priced `price`.
fn event(prefix: &str, id: &str, ms: i64, price: u32) -> String {
    json!({"id": format!("{prefix}{id}"), "priceUsd": price.to_string(), "timestamp": ms})
        .to_string()
}

/// `.005` s: SQL Server's `datetime` stores it as `.007` (1/300 s ticks), as it does `.006`.
const T0: i64 = 1_747_000_000_005;

/// Ten keys stored first by the text path, at a millisecond `datetime` has no tick for (`.005`);
/// then one batch: five of them again (found stored: the staged millisecond converted by the
/// server equals the text path's literal), ten new keys, one event twice, a case variant and a
/// 1 ms later twin of a new key (removed before the SQL is built), and two ids this engine's
/// collation compares as equal where the writer does not fold them (`ﬁ` and `fi`: the database
/// picks the first). The counters and the table say the same, exactly; the redelivery adds
/// nothing. In a run with `SQL_BULK_LOAD=off` the same batch goes as text, with the same counts.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_bulk_loaded_batch_mixing_new_stored_and_repeated_keys_is_counted_exactly() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let ligature_is_fi = scalar_i64(
        &connection,
        "SELECT CAST(CASE WHEN N'\u{FB01}x' = N'fix' AND N'BTC' = N'btc' THEN 1 ELSE 0 END AS bigint)",
    )
    .await
        == 1;
    assert!(
        ligature_is_fi,
        "the test database compares as the engine's default collation does"
    );
    let prefix = prefix();
    let text = SqlWarehouse::new(
        SqlConfig {
            bulk_load: BulkLoadSetting::Off,
            ..config()
        },
        secrets(&connection),
        None,
    );
    let stored: Vec<String> = (0..10)
        .map(|i| event(&prefix, &format!("a{i:02}"), T0, i))
        .collect();
    let report = text.write(batch_in(&stored, &prefix, 0)).await.unwrap();
    assert_eq!(report.rows_written, 10);

    let mut bodies: Vec<String> = (5..20)
        .map(|i| event(&prefix, &format!("a{i:02}"), T0, 100 + i))
        .collect();
    bodies.extend([
        event(&prefix, "a12", T0, 112),
        event(&prefix, "A13", T0, 201),
        event(&prefix, "a14", T0 + 1, 202),
        event(&prefix, "\u{FB01}x", T0, 203),
        event(&prefix, "fix", T0, 204),
    ]);
    let batch = hub_payload(&bodies, &hub(&prefix, ENQUEUED), 0).to_string();
    let mut handler = serve(&connection).await;
    let first = deliver(&mut handler, &batch).await;
    let again = deliver(&mut handler, &batch).await;
    let stopped = handler.stop("-TERM").await;

    // 20 events: 10 new keys and the ligature's, once; 5 stored, 3 repeated, 1 picked out.
    assert_eq!(counts(&first), (11, 9, 0));
    assert_eq!(counts(&again), (0, 20, 0));
    assert_stored(&connection, &prefix, 21, 0).await;
    let kept = client(&connection)
        .await
        .simple_query(format!(
            "SELECT id, CAST(priceUsd AS bigint) FROM {HISTORY} WHERE id LIKE N'{prefix}%' AND CAST(priceUsd AS bigint) >= 100 ORDER BY priceUsd"
        ))
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let kept: Vec<(String, i64)> = kept
        .iter()
        .map(|row| {
            let id = row.get::<&str, _>(0).unwrap();
            (
                id.trim_start_matches(&prefix).to_owned(),
                row.get::<i64, _>(1).unwrap(),
            )
        })
        .collect();
    let mut expected: Vec<(String, i64)> = (10..20)
        .map(|i| (format!("a{i:02}"), 100 + i64::from(i)))
        .collect();
    expected.push(("\u{FB01}x".into(), 203));
    assert_eq!(kept, expected, "the first event of each new key, as sent");
    let logs = format!("{}{}", stopped.stdout, stopped.stderr);
    let bulk = bulk_load() == BulkLoadSetting::Auto;
    assert_eq!(logs.matches(TAKES).count(), usize::from(bulk), "{logs}");
    assert!(!logs.contains(REFUSED), "{logs}");
}

/// `handler check` with `SQL_BULK_LOAD` set to `bulk`, writing into `connection`: its output.
async fn check_with(coincap: &CoinCap, connection: &str, bulk: &str) -> String {
    let output = Binary::check()
        .arg("--app-root")
        .arg(app_root())
        .coincap(coincap)
        .sql(connection)
        .env("SQL_BULK_LOAD", bulk)
        .output()
        .await;
    output.stdout
}

/// `handler init-warehouse` (with `SQL_BULK_LOAD=auto`) through `connection`: its report.
async fn init_warehouse(connection: &str) -> String {
    let output = Binary::init_warehouse()
        .env("SQL_CONNECTION_STRING", connection)
        .env("SQL_BULK_LOAD", "auto")
        .output()
        .await;
    assert!(
        output.status.success(),
        "{}{}",
        output.stdout,
        output.stderr
    );
    output.stdout
}

/// `check`'s warehouse line.
fn warehouse_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|line| line.contains(" warehouse database "))
        .unwrap_or_else(|| panic!("{stdout}"))
}

const REPORTED: &str = "bulk load into a session table: refused (SQL error 4834: injected by the test proxy: bulk load refused 4834): the writer sends rows as SQL text";

/// A server that refuses bulk load (the proxy answers the bulk load's rows with error 4834, "You
/// do not have permission to use the bulk load statement", in the server's place): the batch
/// lands whole as SQL text, the refusal is logged once, and the process never tries bulk load
/// again (the proxy, armed again, is never met). `check` and `init-warehouse` meeting the same
/// refusal say rows go as text; without it, `init-warehouse` says bulk load is taken; with
/// `SQL_BULK_LOAD=off`, `check` says so.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_server_refusing_bulk_load_gets_the_rows_as_text_and_is_asked_once_per_process() {
    let (connection, _turn) = super::turn().await;
    let (proxy, via) = proxy(&connection).await;
    let mut handler = serve_with(&via, &[("SQL_BULK_LOAD", "auto")]).await;
    let (prefix, other) = (self::prefix(), self::prefix());

    proxy.arm(Fault::RefuseBulkLoad(4834));
    let first = deliver(
        &mut handler,
        &batch_of(&prefix, 60, 2, &hub(&prefix, ENQUEUED)),
    )
    .await;
    proxy.arm(Fault::RefuseBulkLoad(4834));
    let next = deliver(
        &mut handler,
        &batch_of(&other, 40, 1, &hub(&other, ENQUEUED)),
    )
    .await;
    let stopped = handler.stop("-TERM").await;

    assert_eq!(counts(&first), (60, 0, 2));
    assert_eq!(counts(&next), (40, 0, 1));
    assert_stored(&connection, &prefix, 60, 2).await;
    assert_stored(&connection, &other, 40, 1).await;
    assert_eq!(
        proxy.carried_out(),
        1,
        "the second batch never tried bulk load"
    );
    let logs = format!("{}{}", stopped.stdout, stopped.stderr);
    assert_eq!(logs.matches(REFUSED).count(), 1, "{logs}");
    assert!(logs.contains("SQL error 4834"), "{logs}");
    assert!(!logs.contains(TAKES), "{logs}");

    // Still armed: `check`'s probe meets the refusal.
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    let refused = check_with(&coincap, &via, "auto").await;
    assert_eq!(proxy.carried_out(), 2);
    assert!(
        warehouse_line(&refused).ends_with(
            " (as SQL text: the server refused bulk load); the writer's tables are ready"
        ),
        "{refused}"
    );
    assert!(
        refused.contains(&format!("        {REPORTED}")),
        "{refused}"
    );
    let taken = init_warehouse(&via).await;
    assert!(
        taken.contains("  bulk load into a session table: taken (each batch's rows are staged in #asset_statistics_stage by TDS bulk load, then inserted by one statement)"),
        "{taken}"
    );
    proxy.arm(Fault::RefuseBulkLoad(4834));
    let refused = init_warehouse(&via).await;
    assert_eq!(proxy.carried_out(), 3);
    assert!(refused.contains(&format!("  {REPORTED}")), "{refused}");
    let off = check_with(&coincap, &connection, "off").await;
    assert!(
        warehouse_line(&off)
            .ends_with(" (as SQL text: SQL_BULK_LOAD=off); the writer's tables are ready"),
        "{off}"
    );
    assert!(
        off.contains("        bulk load into a session table: off (SQL_BULK_LOAD=off): the writer sends rows as SQL text"),
        "{off}"
    );
}

/// The host gives up on an invocation while its rows' bulk load waits for the server's answer
/// (the proxy black-holes it): the handler's task is dropped mid-staging on a pool of one. The
/// connection, rows half-staged on it, is never handed to the next batch: the next batches are
/// written promptly and exactly, and the given-up batch's redelivery writes it whole.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn an_invocation_given_up_mid_bulk_load_leaves_no_rows_behind_on_its_connection() {
    let (connection, _turn) = super::turn().await;
    let (proxy, via) = proxy(&connection).await;
    let handler = serve_with(&via, &[("SQL_BULK_LOAD", "auto")]).await;
    super::given_up_then_next(&connection, &proxy, handler, Fault::BlackHoleBulkLoad).await;
}
