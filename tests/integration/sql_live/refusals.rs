//! Batches the server refuses for good, which must land anyway: a reject body it cannot store
//! (NUL, on a server that refuses it) and a duplicate key (a SQL Server engine's unique index).

use std::time::Duration;

use super::support::*;
use super::write_one_reject;
use coincap_stream::warehouse::Warehouse;

/// SQL Server and Synapse store NUL in nvarchar: there the body is stored byte for byte. Some
/// SQL Server-compatible engines refuse NUL: there it is stored escaped, marked in its reason,
/// and decodes to exactly the body. What the server does (asked here on its own) decides which.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_body_with_many_nul_characters_reads_back_exactly() {
    let body: String = long_body(10_000)
        .chars()
        .enumerate()
        .map(|(i, c)| if i % 3 == 0 { '\0' } else { c })
        .collect();
    let stores_nul = server_stores_nul(&connection_string()).await;

    let (stored, reason) = write_one_reject(&body).await;

    if stores_nul {
        assert_eq!(stored, body, "byte for byte");
        assert!(!reason.contains("[raw_body"), "{reason}");
    } else {
        assert!(
            reason.ends_with("[raw_body escaped: this server does not store NUL (U+0000) characters as sent; it holds the body as a JSON string, every character outside printable ASCII as \\uXXXX: JSON-decode it to get the body]"),
            "{reason}"
        );
        assert!(stored.is_ascii() && stored.starts_with('"'), "escaped");
        assert_eq!(original_body(&stored, &reason), body, "reversible");
    }
}

/// A batch the server refuses because of a reject's body (here: NUL, on a server that refuses it,
/// sent as it is because the writer is told the server stores NUL) still lands: its rows once,
/// its rejects escaped and marked; the redelivery adds nothing.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_batch_refused_for_a_reject_body_lands_with_the_bodies_escaped() {
    let connection = connection_string();
    let stores_nul = server_stores_nul(&connection).await;
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    let mut bodies = events(&prefix, 30, 1_747_000_000_000);
    bodies.push("poison \0 with a NUL".into());
    bodies.push("plain poison: M\u{fc}nchen \u{5e01}".into());
    let warehouse = warehouse(&connection).assume_server_stores_nul(true);

    let first = warehouse
        .write(batch_in(&bodies, &prefix, 0))
        .await
        .unwrap();
    let again = warehouse
        .write(batch_in(&bodies, &prefix, 0))
        .await
        .unwrap();

    assert_eq!((first.rows_written, first.duplicates), (30, 0));
    assert_eq!((again.rows_written, again.duplicates), (0, 30));
    assert_eq!(count(&connection, &prefix).await, 30, "every row once");
    assert_eq!(rejects(&connection, &prefix).await, 2, "both rejects, once");
    let stored = client(&connection)
        .await
        .simple_query(format!(
            "SELECT raw_body, reason FROM {REJECTS} WHERE partition_id = '{prefix}' ORDER BY sequence_number"
        ))
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    for (row, body) in stored.iter().zip(&bodies[30..]) {
        let (raw, reason) = (
            row.get::<&str, _>(0).unwrap(),
            row.get::<&str, _>(1).unwrap(),
        );
        if stores_nul {
            assert_eq!(raw, body);
        } else {
            assert!(
                reason.contains(
                    "[raw_body escaped: the server refused this batch as written (SQL error "
                ),
                "{reason}"
            );
            assert_eq!(original_body(raw, reason), *body);
        }
    }
}

/// A writer outside the writer lock (another tool, an older version) stores some of a batch's
/// keys while the batch is being written: every key ends up once, the other writer's keys
/// counted as duplicates. How depends on the engine: SQL Server's duplicate check waits for the
/// other writer's locks, a pool's reads its uncommitted rows, and an engine with snapshot reads
/// inserts, is refused by the unique index, and sends the batch again with the database picking
/// one row per key.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn keys_stored_meanwhile_by_a_writer_outside_the_lock_are_counted_not_repeated() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    let bodies = events(&prefix, 40, 1_747_000_000_000);
    let mut intruder = client(&connection).await;
    intruder
        .simple_query(format!(
            "BEGIN TRAN; INSERT INTO {HISTORY} (id, runtime_timestamp) SELECT s.id, s.t FROM (SELECT N'{prefix}00000' AS id, CAST('2025-05-11T21:46:40.000' AS datetime) AS t UNION ALL SELECT N'{prefix}00001', CAST('2025-05-11T21:46:40.010' AS datetime)) AS s;"
        ))
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();

    let writer = tokio::spawn({
        let connection = connection.clone();
        let bodies = bodies.clone();
        async move { warehouse(&connection).write(batch(&bodies, 0)).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    intruder
        .simple_query("COMMIT TRAN;")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let report = writer.await.unwrap().unwrap();

    assert_eq!((report.rows_written, report.duplicates), (38, 2));
    assert_eq!(count(&connection, &prefix).await, 40);
    assert_eq!(repeated_keys(&connection, &prefix).await, 0);
}

/// Two ids that differ only in case share a timestamp: different rows to the writer, one key to
/// a database whose collation ignores case (SQL Server's default). Its unique index refuses the
/// second; the batch lands anyway, with one row for the pair, the other counted as a duplicate.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn ids_equal_to_the_database_in_one_batch_never_block_it() {
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let prefix = prefix();
    let same = scalar_i64(
        &connection,
        "SELECT CAST(CASE WHEN N'abc' = N'ABC' THEN 1 ELSE 0 END AS bigint)",
    )
    .await
        == 1;
    let enforced = init(&connection).await.contains("enforced by the database");
    let mut bodies = events(&prefix, 10, 1_747_000_000_000);
    let upper = bodies[0].replace(&format!("{prefix}00000"), &format!("{prefix}00000-X"));
    let lower = bodies[0].replace(&format!("{prefix}00000"), &format!("{prefix}00000-x"));
    bodies.extend([upper, lower]);
    let warehouse = warehouse(&connection);

    let first = warehouse.write(batch(&bodies, 0)).await.unwrap();
    let again = warehouse.write(batch(&bodies, 0)).await.unwrap();

    let pair = if same && enforced { 1 } else { 2 };
    assert_eq!(count(&connection, &prefix).await, 10 + pair);
    assert_eq!(first.rows_written, 10 + pair as u64);
    assert_eq!(first.rows_written + first.duplicates, 12);
    assert_eq!(again.rows_written, 0, "the redelivery adds nothing");
}
