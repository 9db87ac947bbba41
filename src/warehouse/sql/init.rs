//! `handler init-warehouse`: applies sql/ idempotently, then reports what the writer relies on.
//! Creates the `assets` schema, the history and rejects tables, the writer lock table (with its
//! one row) and the writes journal when missing (existing tables are left alone, a seed heap with
//! one clear warning; a rejects table of an earlier version gets its two hub columns) and, given
//! the app's identity, its user and grants. On an engine other than a Synapse dedicated pool
//! (SQL Server for development) the tables' `WITH (...)` clause is dropped and their clustered
//! index is created with `CREATE CLUSTERED INDEX`. The report and its advice are pure code in
//! [`catalog`], which also gives the writer its start-up warning ([`design_warning`]).
//! `handler check` reads the same facts without changing anything ([`inspect`]).

pub mod advice;
pub mod catalog;
mod database;
mod failure;
mod upgrade;

pub use database::{MASTER_FIX, is_master};
use database::{create_database, is_missing_database};
use failure::Step;
pub use failure::{ENTRA_FIX, InitCause, InitError};

pub use catalog::{ENGINE_EDITION_SYNAPSE, WRITER_LOCK_TABLE, design_warning};

use super::bulk;
use super::connection::{ConnectError, TdsClient, TdsManager};

use super::literal;
use super::statement::{HISTORY_TABLE, REJECTS_TABLE, WRITES_TABLE};
pub use catalog::Facts;
use catalog::query;

pub const HISTORY_DDL: &str = include_str!("../../../sql/asset_statistics_history_v3.sql");
pub const REJECTS_DDL: &str = include_str!("../../../sql/asset_statistics_rejects.sql");
pub const WRITER_LOCK_DDL: &str = include_str!("../../../sql/asset_statistics_writer_lock.sql");
pub const WRITES_DDL: &str = include_str!("../../../sql/asset_statistics_writes.sql");
pub const GRANTS: &str = include_str!("../../../sql/grant_app_identity.sql");

/// Every table init-warehouse creates, in order.
const TABLES: [(&str, &str); 4] = [
    (HISTORY_TABLE, HISTORY_DDL),
    (REJECTS_TABLE, REJECTS_DDL),
    (WRITER_LOCK_TABLE, WRITER_LOCK_DDL),
    (WRITES_TABLE, WRITES_DDL),
];

/// The DDL for an engine: as written for Synapse; elsewhere without its `WITH (...)` clause,
/// followed by a `CREATE CLUSTERED INDEX` on the clause's `CLUSTERED INDEX (...)` columns,
/// `UNIQUE` for the history table, whose columns are its key `(runtime_timestamp, id)`: SQL
/// Server engines enforce one row per key ("CREATE INDEX (Transact-SQL)": "A unique index is
/// one in which no two rows are permitted to have the same index key value"); a dedicated pool
/// enforces no unique index ("Primary key, foreign key, and unique key using dedicated SQL pool").
pub fn ddl_for_engine(ddl: &str, dedicated_pool: bool) -> String {
    let ddl = strip_comments(ddl);
    if dedicated_pool {
        return ddl;
    }
    let Some(with) = ddl.rfind("\nWITH") else {
        return ddl;
    };
    let mut out = format!("{};", ddl[..with].trim_end());
    if let (Some(table), Some(keys)) = (created_table(&ddl), clustered_keys(&ddl[with..])) {
        let unique = if table == HISTORY_TABLE {
            "UNIQUE "
        } else {
            ""
        };
        out.push_str(&format!(
            "\nCREATE {unique}CLUSTERED INDEX [{}] ON {table} ({keys});",
            catalog::clustered_index_name(table)
        ));
    }
    out
}

/// `assets.t` from `CREATE TABLE assets.t`.
fn created_table(ddl: &str) -> Option<&str> {
    ddl.strip_prefix("CREATE TABLE ")?.split_whitespace().next()
}

/// `[a], [b]` from a `WITH (... CLUSTERED INDEX ([a], [b]) ...)` clause (not a columnstore).
fn clustered_keys(with: &str) -> Option<&str> {
    let at = with.find("CLUSTERED INDEX")?;
    let rest = &with[at + "CLUSTERED INDEX".len()..];
    let open = rest.find('(')?;
    let close = rest.find(')')?;
    Some(rest[open + 1..close].trim())
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

async fn run(client: &mut TdsClient, sql: &str) -> Result<(), ConnectError> {
    client.simple_query(sql).await?.into_results().await?;
    Ok(())
}

async fn scalar_i32(client: &mut TdsClient, sql: &str) -> Result<Option<i32>, ConnectError> {
    let row = client.simple_query(sql).await?.into_row().await?;
    Ok(row.and_then(|row| row.get::<i32, _>(0)))
}

async fn scalar_text(client: &mut TdsClient, sql: &str) -> Result<Option<String>, ConnectError> {
    let row = client.simple_query(sql).await?.into_row().await?;
    Ok(row.and_then(|row| row.get::<&str, _>(0).map(str::to_owned)))
}

/// The engine edition (6: a Synapse dedicated pool) and the line that says so.
async fn detect_engine(client: &mut TdsClient) -> Result<(Option<i32>, String), ConnectError> {
    let edition = scalar_i32(client, catalog::ENGINE_EDITION_QUERY).await?;
    let line = format!(
        "Engine edition {}: {}.",
        edition.map_or("unknown".into(), |e| e.to_string()),
        if edition == Some(ENGINE_EDITION_SYNAPSE) {
            "Synapse dedicated SQL pool"
        } else {
            "not Synapse: tables without DISTRIBUTION, clustered indexes created separately"
        }
    );
    Ok((edition, line))
}

async fn ensure_schema(client: &mut TdsClient) -> Result<String, ConnectError> {
    if scalar_i32(client, "SELECT SCHEMA_ID(N'assets')")
        .await?
        .is_some()
    {
        return Ok("Schema assets exists.".into());
    }
    // CREATE SCHEMA must be alone in its batch.
    run(client, "CREATE SCHEMA assets").await?;
    Ok("Created schema assets.".into())
}

async fn ensure_table(
    client: &mut TdsClient,
    table: &str,
    ddl: &str,
    dedicated_pool: bool,
) -> Result<String, ConnectError> {
    if scalar_i32(client, &query::exists(table)).await?.is_some() {
        return Ok(format!("Table {table} exists: left as it is."));
    }
    run(client, &ddl_for_engine(ddl, dedicated_pool)).await?;
    Ok(format!("Created table {table}."))
}

/// The writer lock holds exactly one row: inserted when the table is empty.
async fn ensure_lock_row(client: &mut TdsClient) -> Result<Option<String>, ConnectError> {
    let count = format!("SELECT CAST(COUNT_BIG(*) AS int) FROM {WRITER_LOCK_TABLE}");
    if scalar_i32(client, &count).await? != Some(0) {
        return Ok(None);
    }
    run(
        client,
        &format!("INSERT INTO {WRITER_LOCK_TABLE} (lock_id, last_write_at) VALUES (1, NULL);"),
    )
    .await?;
    Ok(Some(format!(
        "Inserted the one row of {WRITER_LOCK_TABLE}."
    )))
}

/// What the app identity is granted, as `init-warehouse` reports it (and its `--help` says).
pub const GRANTED: &str =
    "INSERT and SELECT on schema assets and UPDATE on assets.asset_statistics_writer_lock";

async fn grant(
    client: &mut TdsClient,
    name: &str,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<(), InitError> {
    let mut principal = String::new();
    literal::nstring(&mut principal, name);
    let grants = grants_for(name);
    let exists = format!("SELECT DATABASE_PRINCIPAL_ID({principal})");
    let step = format!("creating user {name} from Microsoft Entra ID");
    if scalar_i32(client, &exists).await.step(&step)?.is_some() {
        say(format!("User {name} exists."));
    } else {
        if let Err(error) = run(client, &grants[0]).await {
            return Err(InitError {
                step,
                fix: Some(ENTRA_FIX.into()),
                error: Box::new(error.into()),
            });
        }
        say(format!("Created user {name} from Microsoft Entra ID."));
    }
    for grant in &grants[1..] {
        run(client, grant)
            .await
            .step(&format!("granting {name} its rights"))?;
    }
    say(format!("Granted {GRANTED} to {name}."));
    Ok(())
}

async fn read_facts(client: &mut TdsClient, edition: Option<i32>) -> Result<Facts, ConnectError> {
    let dedicated_pool = edition == Some(ENGINE_EDITION_SYNAPSE);
    let keys = catalog::read_key_columns(client, HISTORY_TABLE).await?;
    let (rejects_keyed_on_hub, writes_journal) = catalog::read_writer_tables(client).await?;
    let lock_rows = if scalar_i32(client, &query::exists(WRITER_LOCK_TABLE))
        .await?
        .is_some()
    {
        let count = format!("SELECT CAST(COUNT_BIG(*) AS int) FROM {WRITER_LOCK_TABLE}");
        scalar_i32(client, &count).await?.map(i64::from)
    } else {
        None
    };
    Ok(Facts {
        engine_edition: edition,
        database: scalar_text(client, query::DATABASE).await?,
        read_committed_snapshot: scalar_i32(client, query::READ_COMMITTED_SNAPSHOT)
            .await?
            .map(|on| on == 1),
        history: catalog::read_design(client, HISTORY_TABLE, dedicated_pool).await?,
        history_id_type: keys.id_type,
        history_id_collation: keys.id_collation,
        history_time_type: keys.time_type,
        history_keys: keys.keys,
        rejects: catalog::read_design(client, REJECTS_TABLE, dedicated_pool).await?,
        rejects_keyed_on_hub,
        lock_rows,
        writes_journal,
        bulk_load: None,
    })
}

/// What the writer relies on, read without changing anything (`handler check`): the engine
/// edition and the facts [`advice::report`] judges (bulk load is tried into a session table,
/// which goes with the session).
pub async fn inspect(manager: &TdsManager) -> Result<Facts, ConnectError> {
    let mut client = manager.connect_client().await?;
    let edition = scalar_i32(&mut client, catalog::ENGINE_EDITION_QUERY).await?;
    let mut facts = read_facts(&mut client, edition).await?;
    facts.bulk_load = Some(bulk::probe(manager, &facts).await);
    Ok(facts)
}

/// What keeps the writer from writing, as found (empty when it can write): a missing table, a
/// key the writer does not compare (an `id` that is not text, a `runtime_timestamp` that is not
/// `datetime` or `datetime2`: exactly what the writer refuses), a lock table without exactly one
/// row. `init-warehouse` fixes each.
pub fn writer_not_ready(facts: &Facts) -> Vec<String> {
    let mut wrong = Vec::new();
    match (&facts.history, &facts.history_keys) {
        (None, _) => wrong.push(format!("{HISTORY_TABLE} is missing")),
        (Some(_), Some(_)) => {}
        (Some(_), None) => wrong.push(catalog::unusable_key(
            facts.history_id_type.as_deref(),
            facts.history_time_type.as_deref(),
        )),
    }
    match (&facts.rejects, facts.rejects_keyed_on_hub) {
        (None, _) => wrong.push(format!("{REJECTS_TABLE} is missing")),
        (Some(_), false) => wrong.push(format!(
            "{REJECTS_TABLE} has no event_hub_namespace and event_hub_name columns (rejects keyed on their hub)"
        )),
        (Some(_), true) => {}
    }
    if !facts.writes_journal {
        wrong.push(format!("{WRITES_TABLE} is missing"));
    }
    match facts.lock_rows {
        Some(1) => {}
        None => wrong.push(format!("{WRITER_LOCK_TABLE} is missing")),
        Some(rows) => wrong.push(format!(
            "{WRITER_LOCK_TABLE} holds {rows} rows, not exactly 1"
        )),
    }
    wrong
}

/// The kind of server, from `SERVERPROPERTY('EngineEdition')`.
pub fn engine_name(edition: Option<i32>) -> &'static str {
    match edition {
        Some(ENGINE_EDITION_SYNAPSE) => "a Synapse dedicated SQL pool",
        Some(5) => "Azure SQL Database",
        Some(8) => "Azure SQL Managed Instance",
        Some(_) => "SQL Server",
        None => "an engine of unknown edition",
    }
}

/// What `init-warehouse` may do beyond the schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct InitOptions<'a> {
    /// Also create this app identity's user and grants.
    pub app_identity: Option<&'a str>,
    /// Create the tables in `master` if the settings name it (`--allow-master`).
    pub allow_master: bool,
}

/// Applies the schema and reports what the writer relies on, one line per step through `say` as
/// each is done (the first says where: `Preparing database coincap on ...`), so a failed step
/// follows what was already done. Creates the database the settings name when it is missing
/// (not on Azure, where a database is a billed resource made by the template), and refuses
/// `master` unless allowed.
pub async fn init_warehouse(
    manager: &TdsManager,
    options: InitOptions<'_>,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<(), InitError> {
    let target = manager.target().await.step("reading the settings")?;
    say(format!("Preparing {target}."));
    let refuse_master = |database: &str| InitError {
        step: "choosing the database".into(),
        error: Box::new(InitCause::Refused(format!(
            "the settings name database {database}, the server's system database; nothing was created"
        ))),
        fix: Some(MASTER_FIX.into()),
    };
    if is_master(target.database.as_deref()) && !options.allow_master {
        return Err(refuse_master(
            target.database.as_deref().unwrap_or("master"),
        ));
    }
    let mut client = match manager.connect_client().await {
        Ok(client) => client,
        Err(error) if is_missing_database(&error) => {
            let Some(database) = target.database.as_deref() else {
                return Err(error).step("connecting");
            };
            create_database(manager, database, &target.address, say).await?;
            manager.connect_client().await.step("connecting")?
        }
        Err(error) => return Err(error).step("connecting"),
    };
    let database = scalar_text(&mut client, query::DATABASE)
        .await
        .step("reading the database's name")?;
    if is_master(database.as_deref()) && !options.allow_master {
        return Err(refuse_master("master"));
    }
    let (edition, engine) = detect_engine(&mut client)
        .await
        .step("reading the engine edition")?;
    say(engine);
    let dedicated_pool = edition == Some(ENGINE_EDITION_SYNAPSE);
    say(ensure_schema(&mut client)
        .await
        .step("creating schema assets")?);
    for (table, ddl) in TABLES {
        say(ensure_table(&mut client, table, ddl, dedicated_pool)
            .await
            .step(&format!("creating table {table}"))?);
    }
    if let Some(line) = upgrade::rejects_keyed_on_hub(&mut client)
        .await
        .step(&format!("adding the hub's columns to {REJECTS_TABLE}"))?
    {
        say(line);
    }
    if let Some(line) = ensure_lock_row(&mut client)
        .await
        .step(&format!("inserting the row of {WRITER_LOCK_TABLE}"))?
    {
        say(line);
    }
    if let Some(name) = options.app_identity {
        grant(&mut client, name, say).await?;
    }
    let mut facts = read_facts(&mut client, edition)
        .await
        .step("reading the catalog")?;
    facts.bulk_load = Some(bulk::probe(manager, &facts).await);
    for line in advice::report(&facts) {
        say(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
