use super::catalog::{
    Advice, Facts, Index, KeyGuarantee, Probe, TableDesign, advice, migration_sql, report,
    type_name,
};
use super::*;

fn index(kind: &str, keys: &[&str]) -> Index {
    Index {
        kind: kind.into(),
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        ..Index::default()
    }
}

fn unique(kind: &str, keys: &[&str]) -> Index {
    Index {
        unique: true,
        name: Some("cix_asset_statistics_history_v3".into()),
        ..index(kind, keys)
    }
}

/// What `init-warehouse` creates on a SQL Server engine.
fn sql_server_facts(history: Index) -> Facts {
    let mut facts = synapse_facts(TableDesign {
        distribution: None,
        distribution_column: None,
        indexes: vec![history],
    });
    facts.engine_edition = Some(3);
    facts.read_committed_snapshot = Some(false);
    facts
}

fn new_design() -> TableDesign {
    TableDesign {
        distribution: Some("HASH".into()),
        distribution_column: Some("id".into()),
        indexes: vec![index("CLUSTERED", &["runtime_timestamp", "id"])],
    }
}

fn seed_design() -> TableDesign {
    TableDesign {
        distribution: Some("ROUND_ROBIN".into()),
        distribution_column: None,
        indexes: vec![index("HEAP", &[])],
    }
}

fn synapse_facts(history: TableDesign) -> Facts {
    Facts {
        engine_edition: Some(6),
        database: Some("coincap".into()),
        read_committed_snapshot: Some(true),
        history: Some(history),
        history_id_type: Some("nvarchar(255)".into()),
        rejects: Some(TableDesign {
            distribution: Some("ROUND_ROBIN".into()),
            distribution_column: None,
            indexes: vec![index("CLUSTERED", &["partition_id", "sequence_number"])],
        }),
        lock_rows: Some(1),
    }
}

#[test]
fn synapse_gets_hash_distribution_and_the_clustered_index_as_written() {
    let ddl = ddl_for_engine(HISTORY_DDL, true);
    assert!(
        ddl.starts_with("CREATE TABLE assets.asset_statistics_history_v3"),
        "{ddl}"
    );
    assert!(ddl.contains("DISTRIBUTION = HASH([id])"), "{ddl}");
    assert!(
        ddl.contains("CLUSTERED INDEX ([runtime_timestamp], [id])"),
        "{ddl}"
    );
    assert!(!ddl.contains("HEAP") && !ddl.contains("--"), "{ddl}");
}

#[test]
fn sql_server_gets_the_same_tables_without_the_with_clause_and_with_the_clustered_index() {
    let history = ddl_for_engine(HISTORY_DDL, false);
    assert!(
        !history.contains("WITH") && !history.contains("DISTRIBUTION"),
        "{history}"
    );
    assert!(history.contains("IDENTITY(1,1)"));
    assert!(
        history.ends_with(");\nCREATE UNIQUE CLUSTERED INDEX [cix_asset_statistics_history_v3] ON assets.asset_statistics_history_v3 ([runtime_timestamp], [id]);"),
        "{history}"
    );
    let rejects = ddl_for_engine(REJECTS_DDL, false);
    assert!(
        rejects.ends_with("CREATE CLUSTERED INDEX [cix_asset_statistics_rejects] ON assets.asset_statistics_rejects ([partition_id], [sequence_number]);"),
        "{rejects}"
    );
    let lock = ddl_for_engine(WRITER_LOCK_DDL, false);
    assert!(
        lock.ends_with(");") && !lock.contains("INDEX") && !lock.contains("HEAP"),
        "{lock}"
    );
}

#[test]
fn the_writer_lock_table_has_the_name_the_writer_updates() {
    let ddl = ddl_for_engine(WRITER_LOCK_DDL, true);
    assert!(
        ddl.starts_with(&format!("CREATE TABLE {WRITER_LOCK_TABLE}\n")),
        "{ddl}"
    );
    assert!(
        ddl.contains("[lock_id] int NOT NULL") && ddl.contains("[last_write_at] datetime2(3) NULL")
    );
    assert!(ddl.contains("DISTRIBUTION = ROUND_ROBIN") && ddl.contains("HEAP"));
}

#[test]
fn the_seed_s_columns_are_all_there_one_bracketed_name_per_line() {
    let columns: Vec<&str> = HISTORY_DDL
        .lines()
        .filter_map(|line| line.trim().strip_prefix('[')?.split(']').next())
        .collect();
    assert_eq!(
        columns,
        [
            "id_asset_statistics_history",
            "id",
            "asset_rank",
            "symbol",
            "asset_name",
            "supply",
            "maxSupply",
            "marketCapUsd",
            "volumeUsd24Hr",
            "priceUsd",
            "changePercent24Hr",
            "vwap24Hr",
            "explorer",
            "runtime_timestamp",
        ]
    );
}

#[test]
fn every_design_choice_cites_microsoft_s_docs() {
    for title in [
        "Indexing tables in dedicated SQL pool",
        "Distributed tables design guidance",
        "Partitioning tables in dedicated SQL pool",
        "Cheat sheet for dedicated SQL pool",
    ] {
        assert!(HISTORY_DDL.contains(title), "{title}");
    }
    assert!(WRITER_LOCK_DDL.contains("Use transactions in dedicated SQL pool"));
    assert!(WRITER_LOCK_DDL.contains("analytics-platform-system/locking-behavior"));
}

#[test]
fn grants_quote_the_identity_name_and_let_it_update_the_writer_lock() {
    assert_eq!(
        grants_for("coincap-func]x"),
        [
            "CREATE USER [coincap-func]]x] FROM EXTERNAL PROVIDER;",
            "GRANT INSERT, SELECT ON SCHEMA::assets TO [coincap-func]]x];",
            "GRANT UPDATE ON OBJECT::assets.asset_statistics_writer_lock TO [coincap-func]]x];",
        ]
    );
}

#[test]
fn an_index_leading_with_the_timestamp_or_with_both_keys_bounds_the_probe() {
    assert!(matches!(
        new_design().history_probe(),
        Probe::Bounded { .. }
    ));
    let heap_with_index = TableDesign {
        indexes: vec![
            index("HEAP", &[]),
            index("NONCLUSTERED", &["ID", "Runtime_Timestamp"]),
        ],
        ..seed_design()
    };
    assert!(matches!(
        heap_with_index.history_probe(),
        Probe::Bounded { .. }
    ));
    let by_id_only = TableDesign {
        indexes: vec![index("CLUSTERED", &["id"])],
        ..new_design()
    };
    assert!(matches!(
        by_id_only.history_probe(),
        Probe::ScansHistory { .. }
    ));
    let columnstore = TableDesign {
        indexes: vec![index("CLUSTERED COLUMNSTORE", &[])],
        ..new_design()
    };
    assert!(
        matches!(columnstore.history_probe(), Probe::ScansHistory { why } if why.contains("delta row groups"))
    );
}

#[test]
fn designs_read_as_their_ddl_spells_them() {
    assert_eq!(
        new_design().describe(),
        "HASH(id), CLUSTERED INDEX (runtime_timestamp, id)"
    );
    assert_eq!(seed_design().describe(), "ROUND_ROBIN, HEAP");
    let sql_server = TableDesign {
        distribution: None,
        ..new_design()
    };
    assert_eq!(
        sql_server.describe(),
        "CLUSTERED INDEX (runtime_timestamp, id)"
    );
}

#[test]
fn the_writer_warns_once_about_a_seed_heap_and_not_about_the_new_design() {
    assert_eq!(design_warning(&new_design()), None);
    let warning = design_warning(&seed_design()).unwrap();
    assert!(warning.starts_with("Table assets.asset_statistics_history_v3 is ROUND_ROBIN, HEAP: no index on (runtime_timestamp, id)"), "{warning}");
    assert!(warning.contains("CTAS, then RENAME OBJECT"), "{warning}");
}

#[test]
fn a_healthy_pool_reports_every_fact_and_nothing_to_change() {
    let lines = report(&synapse_facts(new_design()));
    let text = lines.join("\n");
    assert_eq!(lines[0], "What the writer relies on:");
    assert!(text.contains("  assets.asset_statistics_history_v3: HASH(id), CLUSTERED INDEX (runtime_timestamp, id) (duplicate check bounded by the batch's time window)"), "{text}");
    assert!(text.contains("  id column: nvarchar(255)\n"), "{text}");
    assert!(text.contains("  assets.asset_statistics_rejects: ROUND_ROBIN, CLUSTERED INDEX (partition_id, sequence_number)\n"), "{text}");
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
        text.contains(
            "id column: varchar(255) (ids outside the database's code page are stored as '?'"
        ),
        "{text}"
    );
    assert!(text.contains("To change what is wrong, run:\n  -- in database coincap: bound each batch's duplicate check"), "{text}");
    assert!(text.contains("  CREATE TABLE assets.asset_statistics_history_v3_new WITH (DISTRIBUTION = HASH([id]), CLUSTERED INDEX ([runtime_timestamp], [id])) AS SELECT * FROM assets.asset_statistics_history_v3;\n  RENAME OBJECT assets.asset_statistics_history_v3 TO asset_statistics_history_v3_seed;\n  RENAME OBJECT assets.asset_statistics_history_v3_new TO asset_statistics_history_v3;"), "{text}");
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
fn only_a_unique_index_on_exactly_the_key_enforces_it() {
    let design = |index: Index| TableDesign {
        indexes: vec![index],
        ..TableDesign::default()
    };
    for keys in [
        &["runtime_timestamp", "id"][..],
        &["ID", "Runtime_Timestamp"],
    ] {
        assert!(matches!(
            design(unique("NONCLUSTERED", keys)).key_guarantee(),
            KeyGuarantee::Enforced { .. }
        ));
    }
    assert_eq!(
        design(index("CLUSTERED", &["runtime_timestamp", "id"])).key_guarantee(),
        KeyGuarantee::WriterOnly
    );
    assert_eq!(
        design(unique("CLUSTERED", &["runtime_timestamp", "id", "symbol"])).key_guarantee(),
        KeyGuarantee::WriterOnly
    );
}

#[test]
fn column_types_read_as_ddl() {
    assert_eq!(type_name("nvarchar", 510), "nvarchar(255)");
    assert_eq!(type_name("varchar", 255), "varchar(255)");
    assert_eq!(type_name("nvarchar", -1), "nvarchar(max)");
    assert_eq!(type_name("bigint", 8), "bigint");
}

#[test]
fn the_writer_reads_the_id_type_the_indexes_and_the_lock_in_one_batch() {
    use sqlparser::dialect::MsSqlDialect;
    use sqlparser::parser::Parser;
    let sql = catalog::writer_facts_sql();
    let statements = Parser::parse_sql(&MsSqlDialect {}, &sql).unwrap();
    assert_eq!(statements.len(), 3, "three result sets: {sql}");
    assert!(sql.contains(&format!("OBJECT_ID(N'{HISTORY_TABLE}') AND name = N'id'")));
    assert!(sql.contains("FROM sys.indexes"), "{sql}");
    assert!(
        sql.ends_with(&format!("FROM {WRITER_LOCK_TABLE};")),
        "{sql}"
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
