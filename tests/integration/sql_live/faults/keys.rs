//! Keys as the database compares them: a recreated or a second hub's rejects, ids a
//! case-insensitive collation takes for one, timestamps `datetime` stores as one.

use serde_json::Value;

use super::super::support::*;
use super::{ENQUEUED, counts, deliver, hub, rejects_from, serve};
use crate::common::{Hub, hub_payload};
use coincap_stream::warehouse::Warehouse;

/// A hub deleted and created again numbers its events from 0 again (later enqueued times); a
/// second hub has its own numbers. Neither one's poison events are taken for another's; a
/// redelivery stores none twice; an event without coordinates is always stored.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_recreated_hub_and_a_second_hub_have_their_poison_events_stored() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let mut handler = serve(&connection).await;
    let prefix = prefix();
    let first = hub(&prefix, ENQUEUED);
    let recreated = hub(&prefix, "2026-05-02T08:00:00.000");
    let second = Hub {
        name: format!("{}-second", first.name),
        ..first.clone()
    };
    let poison = |n: usize| (0..n).map(|i| format!("poison {i}")).collect::<Vec<_>>();
    let mut answers = Vec::new();
    for hub in [&first, &first, &recreated, &second] {
        let batch = hub_payload(&poison(20), hub, 0).to_string();
        answers.push(counts(&deliver(&mut handler, &batch).await));
    }
    let mut bare: Value = hub_payload(&poison(2), &first, 0);
    bare["Metadata"] = serde_json::json!({});
    let without = [
        deliver(&mut handler, &bare.to_string()).await,
        deliver(&mut handler, &bare.to_string()).await,
    ];
    handler.stop("-TERM").await;

    assert_eq!(answers, [(0, 0, 20), (0, 0, 0), (0, 0, 20), (0, 0, 20)]);
    assert_eq!(
        rejects_from(&connection, &first.name).await,
        40,
        "first and recreated"
    );
    assert_eq!(rejects_from(&connection, &second.name).await, 20);
    for answer in &without {
        assert_eq!(counts(answer), (0, 0, 2), "always stored");
    }
    let nameless = scalar_i64(
        &connection,
        "SELECT COUNT_BIG(*) FROM assets.asset_statistics_rejects WHERE event_hub_name IS NULL AND raw_body IN (N'poison 0', N'poison 1') AND sequence_number IS NULL",
    )
    .await;
    assert!(nameless >= 4, "{nameless}");
}

/// Ids a case-insensitive collation takes for one (`...BTC` and `...btc`) and timestamps
/// `datetime` stores as one (.000 and .001) sharing a batch: the writer keeps the first of each
/// key, as the database compares, and counts the rest as duplicates.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn case_variant_ids_on_a_case_insensitive_column_keep_the_first_and_count_the_rest() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let insensitive = scalar_i64(
        &connection,
        "SELECT CAST(CASE WHEN N'BTC' = N'btc' THEN 1 ELSE 0 END AS bigint)",
    )
    .await;
    assert_eq!(
        insensitive, 1,
        "the test database compares ids case-insensitively"
    );
    let mut handler = serve(&connection).await;
    let prefix = prefix();
    let event = |id: &str, ms: i64, price: &str| {
        serde_json::json!({"id": format!("{prefix}{id}"), "priceUsd": price, "timestamp": ms})
            .to_string()
    };
    let bodies = vec![
        event("BTC", 1_747_000_000_000, "1"),
        event("btc", 1_747_000_000_000, "2"),
        event("Btc", 1_747_000_000_001, "3"),
        event("eth", 1_747_000_000_000, "4"),
    ];
    let batch = hub_payload(&bodies, &hub(&prefix, ENQUEUED), 0).to_string();
    let first = deliver(&mut handler, &batch).await;
    let again = deliver(&mut handler, &batch).await;
    handler.stop("-TERM").await;

    assert_eq!(counts(&first), (2, 2, 0));
    assert_eq!(counts(&again), (0, 4, 0));
    assert_eq!(count(&connection, &prefix).await, 2);
    let kept = client(&connection)
        .await
        .simple_query(format!(
            "SELECT id, CAST(priceUsd AS bigint), CONVERT(varchar(23), runtime_timestamp, 126) FROM {HISTORY} WHERE id LIKE N'{prefix}%' ORDER BY priceUsd"
        ))
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let kept: Vec<(String, i64, String)> = kept
        .iter()
        .map(|row| {
            let text = |i| row.get::<&str, _>(i).unwrap().to_owned();
            (text(0), row.get::<i64, _>(1).unwrap(), text(2))
        })
        .collect();
    assert_eq!(
        kept,
        [
            (
                format!("{prefix}BTC"),
                1,
                "2025-05-11T21:46:40.000".to_owned()
            ),
            (
                format!("{prefix}eth"),
                4,
                "2025-05-11T21:46:40.000".to_owned()
            ),
        ],
        "the first event of each key, as it was sent"
    );
}

/// A rejects table an earlier version created (keyed on partition and sequence number, without the
/// hub's columns): the writer refuses to write, naming `init-warehouse`, before writing anything;
/// `init-warehouse` adds the columns, saying so, and the batch is then written.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_rejects_table_of_an_earlier_version_is_refused_until_init_warehouse_adds_the_hub_columns()
 {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    for column in ["event_hub_namespace", "event_hub_name"] {
        execute(
            &connection,
            &format!("ALTER TABLE {REJECTS} DROP COLUMN {column}"),
        )
        .await;
    }
    let outcome = tokio::spawn({
        let connection = connection.clone();
        async move {
            let prefix = prefix();
            let mut bodies = events(&prefix, 10, 1_747_000_000_000);
            bodies.push("poison".into());
            let refused = warehouse(&connection)
                .write(batch_in(&bodies, &prefix, 0))
                .await
                .unwrap_err();
            let rows_meanwhile = count(&connection, &prefix).await;
            let upgraded = init(&connection).await;
            let report = warehouse(&connection)
                .write(batch_in(&bodies, &prefix, 0))
                .await
                .unwrap();
            (prefix, refused, rows_meanwhile, upgraded, report)
        }
    })
    .await;
    init(&connection).await;
    let (prefix, refused, rows_meanwhile, upgraded, report) =
        outcome.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));

    assert!(refused.fault().is_permanent(), "{refused}");
    let said = refused.to_string();
    assert!(
        said.contains("event_hub_namespace") && said.contains("init-warehouse"),
        "{said}"
    );
    assert_eq!(rows_meanwhile, 0, "nothing written before the refusal");
    assert!(
        upgraded.contains(
            "Added event_hub_namespace and event_hub_name to assets.asset_statistics_rejects"
        ),
        "{upgraded}"
    );
    assert_eq!((report.rows_written, report.rejects_written), (10, 1));
    assert_eq!(count(&connection, &prefix).await, 10);
    assert_eq!(rejects(&connection, &prefix).await, 1);
}
