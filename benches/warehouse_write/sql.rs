//! The SQL Server-family part of `warehouse_write`: both writers into an empty history and into 1
//! million rows, and where one batch's time goes on each path (see the bench's own comment).

use std::sync::Arc;
use std::time::{Duration, Instant};

use coincap_stream::BoxFuture;
use coincap_stream::secrets::{Secret, SecretError, SecretName, SecretSource};
use coincap_stream::warehouse::sql::bulk;
use coincap_stream::warehouse::sql::connection::{TdsClient, TdsManager};
use coincap_stream::warehouse::sql::init::{self, catalog};
use coincap_stream::warehouse::sql::statement::{
    BATCH_LIMITS, Form, HISTORY_TABLE, KeyTypes, Rows, StageTable, build_batches,
};
use coincap_stream::warehouse::sql::{BulkLoadSetting, SqlConfig, SqlLogin};
use coincap_stream::warehouse::{Batch, SqlWarehouse};

use super::{BATCH, Figures, HISTORY_ROWS, batch, median, samples, timed_write};

struct Fixed(String);

impl SecretSource for Fixed {
    fn get(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>> {
        let value = Secret::new(self.0.as_str());
        Box::pin(async move {
            match name {
                SecretName::SqlConnectionString => Ok(value),
                name => Err(SecretError::NotInEnvironment {
                    name,
                    var: name.env_var(),
                }),
            }
        })
    }

    fn describe(&self) -> String {
        "COINCAP_TEST_MSSQL".into()
    }
}

/// 1 million rows before the timed batches, 1000 assets per 5-minute tick, in one statement.
const FILL: &str = "INSERT INTO assets.asset_statistics_history_v3 (id, asset_rank, symbol, asset_name, supply, maxSupply, marketCapUsd, volumeUsd24Hr, priceUsd, changePercent24Hr, vwap24Hr, explorer, runtime_timestamp)
SELECT CONCAT(N'asset-', RIGHT(CONCAT('000', n % 1000), 4)), n % 1000 + 1, N'F', N'Filled', 1.0E0, NULL, 1.0E0, 1.0E0, 1.0E0, 0.0E0, NULL, NULL,
       DATEADD(minute, CAST(-5 * (n / 1000 + 1) AS int), CAST('2026-01-01T00:00:00' AS datetime))
FROM (SELECT TOP (1000000) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) - 1 AS n
      FROM sys.all_columns AS a CROSS JOIN sys.all_columns AS b CROSS JOIN sys.all_columns AS c) AS g";

/// Where one batch's time goes, part by part (each a median).
pub struct Split {
    writer: &'static str,
    parts: Vec<(&'static str, Duration)>,
}

impl Split {
    pub fn print(&self) {
        let total: Duration = self.parts.iter().map(|(_, time)| *time).sum();
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(name, time)| {
                format!(
                    "{name} {:.1} ms ({:.0}%)",
                    time.as_secs_f64() * 1e3,
                    100.0 * time.as_secs_f64() / total.as_secs_f64()
                )
            })
            .collect();
        println!(
            "sql {:<7} one {BATCH}-row batch, {:.1} ms: {}",
            self.writer,
            total.as_secs_f64() * 1e3,
            parts.join(", ")
        );
    }
}

async fn timed(client: &mut TdsClient, sql: &str) -> (Duration, bool) {
    let started = Instant::now();
    let ok = match client.simple_query(sql).await {
        Ok(stream) => stream.into_results().await.is_ok(),
        Err(_) => false,
    };
    (started.elapsed(), ok)
}

async fn engine(client: &mut TdsClient) -> String {
    let engine = match client.simple_query("SELECT @@VERSION").await {
        Ok(stream) => stream
            .into_row()
            .await
            .ok()
            .flatten()
            .and_then(|row| row.get::<&str, _>(0).map(str::to_owned))
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    engine.lines().next().unwrap_or("unknown").to_owned()
        + " / "
        + engine.lines().last().unwrap_or("")
}

/// The batch's one transaction in `form`, and how long rendering it took.
fn render_timed(batch: &Batch, keys: &KeyTypes, form: Form<'_>) -> (String, Duration) {
    let started = Instant::now();
    let mut transactions = build_batches(
        &batch.rows,
        &batch.rejects,
        chrono::Utc::now(),
        keys,
        &BATCH_LIMITS,
        form,
    );
    (transactions.remove(0).sql, started.elapsed())
}

const TRUNCATE: &str = "TRUNCATE TABLE assets.asset_statistics_history_v3";

/// The text writer's batch into an empty history: rendering it here, the server receiving and
/// parsing it (the text behind a `THROW`, which ends the batch once it is parsed), and running it
/// (the rest of a real write of the same text).
async fn text_split(client: &mut TdsClient, keys: &KeyTypes) -> Split {
    let (mut render, mut parse, mut run) = (Vec::new(), Vec::new(), Vec::new());
    for sample in 0..samples() {
        assert!(timed(client, TRUNCATE).await.1);
        let batch = batch(sample as i64);
        let (sql, time) = render_timed(&batch, keys, Form::default());
        render.push(time);
        let (parsed, ok) = timed(client, &format!("THROW 50000, N'parsed', 1;\n{sql}")).await;
        assert!(!ok, "THROW ends the batch before the rest runs");
        parse.push(parsed);
        let (whole, ok) = timed(client, &sql).await;
        assert!(ok, "the batch is written");
        run.push(whole.saturating_sub(parsed));
    }
    Split {
        writer: "text",
        parts: vec![
            ("render", median(render)),
            ("send + server parse", median(parse)),
            ("server run", median(run)),
        ],
    }
}

/// The bulk writer's batch into an empty history: rendering its transaction here, staging the
/// rows (tiberius' column query, `INSERT BULK` and the rows), the transaction up to its answer
/// (the lock, the count, the insert), and its `COMMIT` with the staging table emptied (sent on
/// their own here, to time them; the writer sends the transaction as one text).
async fn bulk_split(client: &mut TdsClient, keys: &KeyTypes) -> Split {
    let table = StageTable::new(keys, false);
    assert!(timed(client, &table.create).await.1, "the staging table");
    let form = Form {
        rows: Rows::Staged(&table),
        ..Form::default()
    };
    let (mut render, mut stage, mut insert, mut commit) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for sample in 0..samples() {
        assert!(timed(client, TRUNCATE).await.1);
        let batch = batch(sample as i64);
        let (sql, time) = render_timed(&batch, keys, form);
        render.push(time);
        let started = Instant::now();
        bulk::load(client, &batch.rows)
            .await
            .expect("the rows staged");
        stage.push(started.elapsed());
        let at = sql.find("COMMIT TRAN;").expect("a transaction commits");
        let (body, tail) = sql.split_at(at);
        let (time, ok) = timed(client, body).await;
        assert!(ok, "the rows inserted");
        insert.push(time);
        let (time, ok) = timed(client, tail).await;
        assert!(ok, "committed");
        commit.push(time);
    }
    Split {
        writer: "bulk",
        parts: vec![
            ("render", median(render)),
            ("stage (bulk load)", median(stage)),
            ("lock + count + insert", median(insert)),
            ("commit + empty the stage", median(commit)),
        ],
    }
}

/// The writer with `bulk_load`, as EventHubSink builds it.
fn writer(secrets: &Arc<dyn SecretSource>, bulk_load: BulkLoadSetting) -> SqlWarehouse {
    SqlWarehouse::new(sql_config(bulk_load), Arc::clone(secrets), None)
}

fn sql_config(bulk_load: BulkLoadSetting) -> SqlConfig {
    SqlConfig {
        login: SqlLogin::ConnectionString,
        pool_size: 2,
        command_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(60),
        auto_pause_delay: None,
        bulk_load,
    }
}

/// Both writers into an empty history and into 1 million rows, and where a batch's time goes in
/// each.
pub async fn sql_server(connection: String) -> (String, [(&'static str, Figures); 2], [Split; 2]) {
    let secrets: Arc<dyn SecretSource> = Arc::new(Fixed(connection));
    let manager = TdsManager::new(
        sql_config(BulkLoadSetting::Auto),
        Arc::clone(&secrets),
        None,
    );
    // The test server's connection string may name master: the bench's tables go where it says.
    let options = init::InitOptions {
        app_identity: None,
        allow_master: true,
    };
    init::init_warehouse(&manager, options, &mut |line| eprintln!("{line}"))
        .await
        .expect("init-warehouse");
    let mut client = manager.connect_client().await.expect("a connection");
    let engine = engine(&mut client).await;
    let keys = catalog::read_key_columns(&mut client, HISTORY_TABLE)
        .await
        .expect("the key columns")
        .keys
        .expect("the history table's key types");
    let splits = [
        bulk_split(&mut client, &keys).await,
        text_split(&mut client, &keys).await,
    ];
    let writers = [
        ("sql bulk", writer(&secrets, BulkLoadSetting::Auto)),
        ("sql text", writer(&secrets, BulkLoadSetting::Off)),
    ];
    let mut empty = [Vec::new(), Vec::new()];
    for _ in 0..samples() {
        for ((_, warehouse), times) in writers.iter().zip(&mut empty) {
            assert!(timed(&mut client, TRUNCATE).await.1);
            times.push(timed_write(warehouse, batch(0)).await);
        }
    }
    assert!(timed(&mut client, TRUNCATE).await.1);
    let filling = Instant::now();
    assert!(timed(&mut client, FILL).await.1, "the history filled");
    eprintln!(
        "sql server: filled {HISTORY_ROWS} rows of history in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    let mut full = [Vec::new(), Vec::new()];
    for sample in 0..samples() {
        for (at, ((_, warehouse), times)) in writers.iter().zip(&mut full).enumerate() {
            // Fresh keys for each writer: ticks after the first samples'.
            let tick = (sample * 2 + at) as i64;
            times.push(timed_write(warehouse, batch(tick)).await);
        }
    }
    let [bulk_empty, text_empty] = empty;
    let [bulk_full, text_full] = full;
    let figures = [
        (
            writers[0].0,
            Figures {
                empty: median(bulk_empty),
                full: median(bulk_full),
            },
        ),
        (
            writers[1].0,
            Figures {
                empty: median(text_empty),
                full: median(text_full),
            },
        ),
    ];
    (engine, figures, splits)
}
