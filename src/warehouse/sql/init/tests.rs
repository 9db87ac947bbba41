use super::catalog::{Facts, Index, KeyGuarantee, Probe, TableDesign, type_name};
use super::*;
use crate::warehouse::sql::keys::{Collation, IdType, KeyTypes, TimeType};

pub(super) fn index(kind: &str, keys: &[&str]) -> Index {
    Index {
        kind: kind.into(),
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        ..Index::default()
    }
}

pub(super) fn unique(kind: &str, keys: &[&str]) -> Index {
    Index {
        unique: true,
        name: Some("cix_asset_statistics_history_v3".into()),
        ..index(kind, keys)
    }
}

/// What `init-warehouse` creates on a SQL Server engine.
pub(super) fn sql_server_facts(history: Index) -> Facts {
    let mut facts = synapse_facts(TableDesign {
        distribution: None,
        distribution_column: None,
        indexes: vec![history],
    });
    facts.engine_edition = Some(3);
    facts.read_committed_snapshot = Some(false);
    facts
}

pub(super) fn new_design() -> TableDesign {
    TableDesign {
        distribution: Some("HASH".into()),
        distribution_column: Some("id".into()),
        indexes: vec![index("CLUSTERED", &["runtime_timestamp", "id"])],
    }
}

pub(super) fn seed_design() -> TableDesign {
    TableDesign {
        distribution: Some("ROUND_ROBIN".into()),
        distribution_column: None,
        indexes: vec![index("HEAP", &[])],
    }
}

pub(super) fn synapse_facts(history: TableDesign) -> Facts {
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
        history_id_collation: Some("SQL_Latin1_General_CP1_CI_AS".into()),
        history_time_type: Some("datetime".into()),
        history_keys: Some(KeyTypes {
            id: IdType::from_catalog("nvarchar", 510).unwrap(),
            collation: Collation::from_name("SQL_Latin1_General_CP1_CI_AS").unwrap(),
            time: TimeType::DateTime,
        }),
        rejects_keyed_on_hub: true,
        writes_journal: true,
        ..Facts::default()
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
    assert_eq!(type_name("datetime2", 3), "datetime2(3)");
    assert_eq!(type_name("datetime", 3), "datetime");
}

#[test]
fn the_writer_reads_the_id_type_the_indexes_the_lock_and_the_engine_in_one_batch() {
    use sqlparser::dialect::MsSqlDialect;
    use sqlparser::parser::Parser;
    let sql = catalog::writer_facts_sql();
    let statements = Parser::parse_sql(&MsSqlDialect {}, &sql).unwrap();
    assert_eq!(statements.len(), 6, "six result sets: {sql}");
    assert!(sql.contains(&format!(
        "OBJECT_ID(N'{HISTORY_TABLE}') AND name IN (N'id', N'runtime_timestamp')"
    )));
    assert!(sql.contains("collation_name"), "{sql}");
    assert!(sql.contains("FROM sys.indexes"), "{sql}");
    assert!(sql.contains(&format!("FROM {WRITER_LOCK_TABLE};")), "{sql}");
    assert!(
        sql.contains("N'event_hub_namespace', N'event_hub_name'"),
        "{sql}"
    );
    assert!(
        sql.contains("OBJECT_ID(N'assets.asset_statistics_writes', N'U')"),
        "{sql}"
    );
    assert!(
        sql.ends_with("SELECT CAST(SERVERPROPERTY('EngineEdition') AS int);"),
        "a dedicated pool's staging table is distributed: {sql}"
    );
}

#[test]
fn the_writer_is_ready_with_the_three_tables_a_text_id_and_one_lock_row() {
    let ready = synapse_facts(new_design());
    assert!(writer_not_ready(&ready).is_empty());
    let seed = Facts {
        history_id_type: Some("varchar(255)".into()),
        ..synapse_facts(seed_design())
    };
    assert!(
        writer_not_ready(&seed).is_empty(),
        "slow, but the writer can write"
    );
    let empty = Facts {
        engine_edition: Some(2),
        ..Facts::default()
    };
    assert_eq!(
        writer_not_ready(&empty),
        [
            "assets.asset_statistics_history_v3 is missing",
            "assets.asset_statistics_rejects is missing",
            "assets.asset_statistics_writes is missing",
            "assets.asset_statistics_writer_lock is missing"
        ]
    );
    let earlier = Facts {
        rejects_keyed_on_hub: false,
        ..synapse_facts(new_design())
    };
    assert_eq!(
        writer_not_ready(&earlier),
        [
            "assets.asset_statistics_rejects has no event_hub_namespace and event_hub_name columns (rejects keyed on their hub)"
        ]
    );
    let odd = Facts {
        history_id_type: Some("int".into()),
        history_keys: None,
        lock_rows: Some(0),
        ..synapse_facts(new_design())
    };
    assert_eq!(
        writer_not_ready(&odd),
        [
            "assets.asset_statistics_history_v3's key is id int and runtime_timestamp datetime: the writer needs a char, varchar, nchar or nvarchar id and a datetime or datetime2 runtime_timestamp",
            "assets.asset_statistics_writer_lock holds 0 rows, not exactly 1"
        ]
    );
    // A time type the writer refuses is not ready either, whatever the id.
    let dated = Facts {
        history_time_type: Some("date".into()),
        history_keys: None,
        ..synapse_facts(new_design())
    };
    assert_eq!(
        writer_not_ready(&dated),
        [
            "assets.asset_statistics_history_v3's key is id nvarchar(255) and runtime_timestamp date: the writer needs a char, varchar, nchar or nvarchar id and a datetime or datetime2 runtime_timestamp"
        ]
    );
    assert_eq!(engine_name(Some(6)), "a Synapse dedicated SQL pool");
    assert_eq!(engine_name(Some(2)), "SQL Server");
}

#[test]
fn the_grants_reported_and_in_the_help_are_the_grants_of_the_sql_file() {
    let grants = grants_for("func-coincap");
    assert_eq!(grants.len(), 3, "{grants:?}");
    assert_eq!(
        grants[1],
        "GRANT INSERT, SELECT ON SCHEMA::assets TO [func-coincap];"
    );
    assert_eq!(
        grants[2],
        "GRANT UPDATE ON OBJECT::assets.asset_statistics_writer_lock TO [func-coincap];"
    );
    assert_eq!(
        GRANTED,
        "INSERT and SELECT on schema assets and UPDATE on assets.asset_statistics_writer_lock"
    );
}

#[test]
fn master_is_refused_whatever_its_case_and_an_unknown_database_is_not_master() {
    assert!(is_master(Some("master")) && is_master(Some("MASTER")));
    assert!(!is_master(Some("coincap")) && !is_master(None));
}
