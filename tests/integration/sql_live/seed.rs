//! A database the seed tutorial prepared: its `varchar` heap, written into and migrated.

use super::support::*;
use coincap_stream::warehouse::Warehouse;

/// Ids outside the code page are stored as '?' in a varchar column; the writer compares keys in
/// the column's own type, so replaying the batch adds nothing.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_replay_into_a_seed_shaped_varchar_table_adds_nothing() {
    with_seed_table(|connection| async move {
        let report = init(&connection).await;
        assert_eq!(report.matches("Warning:").count(), 1, "{report}");
        assert!(report.contains("the seed's design"), "{report}");
        assert!(report.contains("id column: varchar(255)"), "{report}");
        let prefix = prefix();
        let bodies: Vec<String> = events(&prefix, 20, 1_747_000_000_000)
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                body.replace(
                    &format!("{prefix}{i:05}"),
                    &format!("{prefix}m\u{fc}nchen-\u{5e01}-{i:02}"),
                )
            })
            .collect();
        let warehouse = warehouse(&connection);
        let first = warehouse.write(batch(&bodies, 0)).await.unwrap();
        let again = warehouse.write(batch(&bodies, 0)).await.unwrap();
        assert_eq!((first.rows_written, first.duplicates), (20, 0));
        assert_eq!((again.rows_written, again.duplicates), (0, 20));
        assert_eq!(
            count(&connection, &prefix).await,
            20,
            "nothing added by the replay"
        );
    })
    .await;
}

/// A database prepared by the seed holds its heap (and, from its replays, repeated rows):
/// `init-warehouse` warns once and prints the migration, which runs as printed; afterwards the
/// table is in the design the writer wants, and writes into it add nothing twice.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn init_warehouse_on_a_seed_table_prints_a_migration_that_runs() {
    with_seed_table(|connection| async move {
        let prefix = prefix();
        let bodies = events(&prefix, 40, 1_747_000_000_000);
        warehouse(&connection).write(batch(&bodies, 0)).await.unwrap();
        // What the seed's replays left: the same key twice.
        execute(
            &connection,
            &format!(
                "INSERT INTO {HISTORY} (id, runtime_timestamp) SELECT id, runtime_timestamp FROM {HISTORY} WHERE id LIKE N'{prefix}%' AND id < N'{prefix}00010'"
            ),
        )
        .await;
        assert_eq!(count(&connection, &prefix).await, 50);

        let report = init(&connection).await;
        assert_eq!(report.matches("Warning:").count(), 1, "{report}");
        let migration = advice(&report, "bound each batch's duplicate check");
        execute(&connection, &migration).await;

        let after = init(&connection).await;
        assert!(!after.contains("Warning:"), "{after}");
        assert!(
            after.contains("(duplicate check bounded by the batch's time window)"),
            "{after}"
        );
        assert_eq!(count(&connection, &prefix).await, 40, "one row per key kept");
        let again = warehouse(&connection).write(batch(&bodies, 0)).await.unwrap();
        assert_eq!((again.rows_written, again.duplicates), (0, 40));
    })
    .await;
}
