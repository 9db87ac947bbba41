//! `handler init-warehouse`: applies sql/ idempotently. Creates the `assets` schema and both
//! tables when missing (existing tables are left alone) and, given the app's identity, its user
//! and grants. On an engine other than a Synapse dedicated pool (SQL Server for development) the
//! tables' `WITH (DISTRIBUTION ..., HEAP)` clause is dropped.

use super::connection::{ConnectError, TdsClient, TdsManager};
use super::literal;

pub const HISTORY_DDL: &str = include_str!("../../../sql/asset_statistics_history_v3.sql");
pub const REJECTS_DDL: &str = include_str!("../../../sql/asset_statistics_rejects.sql");
pub const GRANTS: &str = include_str!("../../../sql/grant_app_identity.sql");

/// `SERVERPROPERTY('EngineEdition')` of a Synapse dedicated SQL pool.
pub const ENGINE_EDITION_SYNAPSE: i32 = 6;

/// The DDL for an engine: as written for Synapse, without its `WITH (...)` clause elsewhere.
pub fn ddl_for_engine(ddl: &str, synapse: bool) -> String {
    let ddl = strip_comments(ddl);
    if synapse {
        return ddl;
    }
    match ddl.rfind("\nWITH") {
        Some(with) => format!("{};", ddl[..with].trim_end()),
        None => ddl,
    }
}

fn strip_comments(sql: &str) -> String {
    sql.lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// The grant statements for one identity name, one per entry.
pub fn grants_for(app_identity: &str) -> Vec<String> {
    strip_comments(GRANTS)
        .lines()
        .map(|line| line.replace("[<app-name>]", &literal::identifier(app_identity)))
        .collect()
}

async fn scalar_i32(client: &mut TdsClient, sql: &str) -> Result<Option<i32>, ConnectError> {
    let row = client.simple_query(sql).await?.into_row().await?;
    Ok(row.and_then(|row| row.get::<i32, _>(0)))
}

async fn exists(client: &mut TdsClient, sql: &str) -> Result<bool, ConnectError> {
    Ok(scalar_i32(client, sql).await?.is_some())
}

/// Applies the schema; returns what it did, one line per step, for the terminal.
pub async fn init_warehouse(
    manager: &TdsManager,
    app_identity: Option<&str>,
) -> Result<Vec<String>, ConnectError> {
    let mut client = manager.connect_client().await?;
    let mut done = Vec::new();
    let edition = scalar_i32(
        &mut client,
        "SELECT CAST(SERVERPROPERTY('EngineEdition') AS int)",
    )
    .await?;
    let synapse = edition == Some(ENGINE_EDITION_SYNAPSE);
    done.push(format!(
        "Engine edition {}: {}.",
        edition.map_or("unknown".into(), |e| e.to_string()),
        if synapse {
            "Synapse dedicated SQL pool"
        } else {
            "not Synapse, tables without DISTRIBUTION/HEAP"
        }
    ));
    if exists(&mut client, "SELECT SCHEMA_ID(N'assets')").await? {
        done.push("Schema assets exists.".into());
    } else {
        // CREATE SCHEMA must be alone in its batch.
        client
            .simple_query("CREATE SCHEMA assets")
            .await?
            .into_results()
            .await?;
        done.push("Created schema assets.".into());
    }
    for (table, ddl) in [
        (super::statement::HISTORY_TABLE, HISTORY_DDL),
        (super::statement::REJECTS_TABLE, REJECTS_DDL),
    ] {
        let probe = format!("SELECT CAST(OBJECT_ID(N'{table}', N'U') AS int)");
        if exists(&mut client, &probe).await? {
            done.push(format!("Table {table} exists: left as it is."));
        } else {
            client
                .simple_query(ddl_for_engine(ddl, synapse))
                .await?
                .into_results()
                .await?;
            done.push(format!("Created table {table}."));
        }
    }
    if let Some(name) = app_identity {
        let mut principal = String::new();
        literal::nstring(&mut principal, name);
        let grants = grants_for(name);
        if exists(
            &mut client,
            &format!("SELECT DATABASE_PRINCIPAL_ID({principal})"),
        )
        .await?
        {
            done.push(format!("User {name} exists."));
        } else {
            client
                .simple_query(grants[0].as_str())
                .await?
                .into_results()
                .await?;
            done.push(format!("Created user {name} from the external provider."));
        }
        for grant in &grants[1..] {
            client
                .simple_query(grant.as_str())
                .await?
                .into_results()
                .await?;
        }
        done.push(format!(
            "Granted INSERT, SELECT on schema assets to {name}."
        ));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synapse_keeps_distribution_and_heap() {
        let ddl = ddl_for_engine(HISTORY_DDL, true);
        assert!(
            ddl.starts_with("CREATE TABLE assets.asset_statistics_history_v3"),
            "{ddl}"
        );
        assert!(ddl.contains("DISTRIBUTION = ROUND_ROBIN") && ddl.contains("HEAP"));
        assert!(!ddl.contains("--"));
    }

    #[test]
    fn sql_server_gets_the_same_table_without_the_with_clause() {
        for source in [HISTORY_DDL, REJECTS_DDL] {
            let ddl = ddl_for_engine(source, false);
            assert!(!ddl.contains("WITH") && !ddl.contains("HEAP"), "{ddl}");
            assert!(ddl.ends_with(");"), "{ddl}");
            assert!(ddl.contains("IDENTITY(1,1)"));
        }
    }

    #[test]
    fn the_seed_s_columns_are_all_there() {
        for column in [
            "id_asset_statistics_history",
            "[id]",
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
        ] {
            assert!(HISTORY_DDL.contains(column), "{column}");
        }
    }

    #[test]
    fn grants_quote_the_identity_name() {
        assert_eq!(
            grants_for("coincap-func]x"),
            [
                "CREATE USER [coincap-func]]x] FROM EXTERNAL PROVIDER;",
                "GRANT INSERT, SELECT ON SCHEMA::assets TO [coincap-func]]x];"
            ]
        );
    }
}
