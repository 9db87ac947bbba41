use super::super::catalog::{Index, TableDesign};
use super::super::tests::{
    index, new_design, seed_design, sql_server_facts, synapse_facts, unique,
};
use super::*;

#[test]
fn a_healthy_pool_reports_every_fact_and_nothing_to_change() {
    let lines = report(&synapse_facts(new_design()));
    let text = lines.join("\n");
    assert_eq!(lines[0], "What the writer relies on:");
    assert!(text.contains("  assets.asset_statistics_history_v3: HASH(id), CLUSTERED INDEX (runtime_timestamp, id) (duplicate check bounded by the batch's time window)"), "{text}");
    assert!(text.contains("  id column: nvarchar(255), collation SQL_Latin1_General_CP1_CI_AS (case-insensitive, accent-sensitive, kana-insensitive, width-insensitive: the writer keeps the first of the ids it calls equal in a batch)\n"), "{text}");
    assert!(text.contains("  runtime_timestamp column: datetime (rounds to .000, .003 or .007 s: two timestamps 1 ms apart can be one key)\n"), "{text}");
    assert!(text.contains("  assets.asset_statistics_rejects: ROUND_ROBIN, CLUSTERED INDEX (partition_id, sequence_number) (keyed on hub, partition, sequence number and enqueued time)\n"), "{text}");
    assert!(
        text.contains("  assets.asset_statistics_writes: present"),
        "{text}"
    );
    assert!(
        text.contains("  assets.asset_statistics_writer_lock: 1 row (writers serialize on it)"),
        "{text}"
    );
    assert!(text.contains("is_read_committed_snapshot_on = 1"), "{text}");
    assert!(!text.contains("Warning"), "{text}");
    assert_eq!(lines.last().unwrap(), "Nothing to change.");
}

#[test]
fn a_seed_table_gets_one_warning_and_the_ctas_and_rename_to_run_in_the_pool_s_database() {
    let mut facts = synapse_facts(seed_design());
    facts.history_id_type = Some("varchar(255)".into());
    let text = report(&facts).join("\n");
    assert_eq!(text.matches("Warning:").count(), 1, "{text}");
    assert!(
        text.contains("(the seed's design: the duplicate check scans all history)"),
        "{text}"
    );
    assert!(
        text.contains("id column: varchar(255), collation SQL_Latin1_General_CP1_CI_AS (")
            && text.contains("(ids outside the database's code page are stored as '?'"),
        "{text}"
    );
    assert!(text.contains("To change what is wrong, run:\n  -- in database coincap: bound each batch's duplicate check"), "{text}");
    assert!(text.contains("  CREATE TABLE assets.asset_statistics_history_v3_new WITH (DISTRIBUTION = HASH([id]), CLUSTERED INDEX ([runtime_timestamp], [id])) AS SELECT * FROM assets.asset_statistics_history_v3;\n  RENAME OBJECT assets.asset_statistics_history_v3 TO asset_statistics_history_v3_seed;\n  RENAME OBJECT assets.asset_statistics_history_v3_new TO asset_statistics_history_v3;"), "{text}");
}

#[test]
fn an_earlier_rejects_table_and_a_missing_journal_say_so() {
    let mut facts = synapse_facts(new_design());
    facts.rejects_keyed_on_hub = false;
    facts.writes_journal = false;
    facts.history_time_type = Some("datetime2(3)".into());
    let text = report(&facts).join("\n");
    assert!(text.contains("(keyed on partition and sequence number alone: run `handler init-warehouse` to add the hub's columns)"), "{text}");
    assert!(
        text.contains(
            "  assets.asset_statistics_writes: missing (the writer refuses to write without it)"
        ),
        "{text}"
    );
    assert!(
        text.contains("  runtime_timestamp column: datetime2(3) (keeps every millisecond)"),
        "{text}"
    );
}

#[test]
fn read_uncommitted_on_synapse_is_changed_from_master() {
    let mut facts = synapse_facts(new_design());
    facts.database = Some("pool]1".into());
    facts.read_committed_snapshot = Some(false);
    assert_eq!(
        advice(&facts),
        [Advice {
            run_in: "master".into(),
            sql: "ALTER DATABASE [pool]]1] SET READ_COMMITTED_SNAPSHOT ON;".into(),
            why: "optional: readers (reports, dashboards) then see only committed batches; the writer is safe either way".into(),
        }]
    );
    assert!(
        report(&facts)
            .join("\n")
            .contains("the pool reads READ UNCOMMITTED")
    );
}

#[test]
fn a_lock_table_with_several_rows_is_reported_with_the_fix() {
    let mut facts = synapse_facts(new_design());
    facts.lock_rows = Some(3);
    let text = report(&facts).join("\n");
    assert!(
        text.contains("assets.asset_statistics_writer_lock: 3 rows, expected exactly 1"),
        "{text}"
    );
    assert!(
        text.contains("  DELETE FROM assets.asset_statistics_writer_lock;"),
        "{text}"
    );
    facts.lock_rows = None;
    assert!(
        report(&facts)
            .join("\n")
            .contains("writer_lock: missing (writers cannot serialize)")
    );
}

/// Deleting repeated keys (the first stored kept), then the unique index.
const DEDUPLICATE: &str = "DELETE FROM assets.asset_statistics_history_v3 WHERE [id_asset_statistics_history] IN (SELECT [id_asset_statistics_history] FROM (SELECT [id_asset_statistics_history], ROW_NUMBER() OVER (PARTITION BY [id], [runtime_timestamp] ORDER BY [id_asset_statistics_history]) AS n FROM assets.asset_statistics_history_v3) AS d WHERE d.n > 1);";
const UNIQUE_INDEX: &str = "CREATE UNIQUE CLUSTERED INDEX [cix_asset_statistics_history_v3] ON assets.asset_statistics_history_v3 ([runtime_timestamp], [id]);";

#[test]
fn sql_server_builds_the_unique_index_in_place_and_gets_no_isolation_advice() {
    let facts = sql_server_facts(index("HEAP", &[]));
    let advice = advice(&facts);
    assert_eq!(advice.len(), 1, "{advice:?}");
    assert_eq!(advice[0].sql, format!("{DEDUPLICATE}\n{UNIQUE_INDEX}"));
    assert!(
        advice[0].why.contains("enforce one row per key"),
        "{advice:?}"
    );
    assert_eq!(
        migration_sql(false, "assets.t", "HEAP", "[a]"),
        "CREATE CLUSTERED INDEX [cix_t] ON assets.t ([a]);"
    );
}

#[test]
fn the_report_says_who_keeps_one_row_per_key() {
    let enforced = report(&sql_server_facts(unique(
        "CLUSTERED",
        &["runtime_timestamp", "id"],
    )))
    .join("\n");
    assert!(enforced.contains("  one row per (id, runtime_timestamp): enforced by the database (UNIQUE CLUSTERED INDEX (runtime_timestamp, id)); the writer's lock and duplicate check keep writers from colliding on it\n"), "{enforced}");
    assert!(enforced.contains("Nothing to change."), "{enforced}");
    let pool = report(&synapse_facts(new_design())).join("\n");
    assert!(pool.contains("  one row per (id, runtime_timestamp): kept by the writer (its lock and duplicate check; a dedicated pool enforces no unique index)"), "{pool}");
}

#[test]
fn an_older_sql_server_index_that_is_not_unique_gets_the_upgrade() {
    let old = Index {
        name: Some("cix_asset_statistics_history_v3".into()),
        ..index("CLUSTERED", &["runtime_timestamp", "id"])
    };
    let facts = sql_server_facts(old);
    let text = report(&facts).join("\n");
    assert!(text.contains("kept by the writer alone (no unique index; the advice below lets the database enforce it)"), "{text}");
    assert!(
        !text.contains("Warning:"),
        "the duplicate check is bounded: {text}"
    );
    let advice = advice(&facts);
    assert_eq!(advice.len(), 1, "{advice:?}");
    assert_eq!(
        advice[0].sql,
        format!(
            "{DEDUPLICATE}\nDROP INDEX [cix_asset_statistics_history_v3] ON assets.asset_statistics_history_v3;\n{UNIQUE_INDEX}"
        )
    );
}

#[test]
fn rejects_need_an_index_on_their_key_not_a_clustered_one() {
    let mut facts = sql_server_facts(unique("CLUSTERED", &["runtime_timestamp", "id"]));
    facts.rejects = Some(TableDesign {
        indexes: vec![
            index("HEAP", &[]),
            index("NONCLUSTERED", &["partition_id", "sequence_number"]),
        ],
        ..TableDesign::default()
    });
    assert!(advice(&facts).is_empty(), "{:?}", advice(&facts));
    facts.rejects = Some(TableDesign {
        indexes: vec![index("HEAP", &[])],
        ..TableDesign::default()
    });
    let advice = advice(&facts);
    assert_eq!(advice.len(), 1);
    assert!(
        advice[0].sql.contains("[cix_asset_statistics_rejects]"),
        "{advice:?}"
    );
}

#[test]
fn the_report_says_how_rows_reach_the_server_once_bulk_load_was_tried() {
    use crate::warehouse::sql::bulk::BulkProbe;
    let mut facts = synapse_facts(new_design());
    assert!(
        !report(&facts).join("\n").contains("bulk load"),
        "not tried: not said"
    );
    facts.bulk_load = Some(BulkProbe::Refused("SQL error 4834: no".into()));
    let lines = report(&facts);
    let at = lines
        .iter()
        .position(|line| {
            line.starts_with("  bulk load into a session table: refused (SQL error 4834: no)")
        })
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(
        lines[at - 1].starts_with("  assets.asset_statistics_writes: "),
        "beside the tables it writes: {lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "Nothing to change.",
        "a refusal is no fault to fix"
    );
}
