//! [`SqlWarehouse`]: one write, from a batch to its counts. It reads how the tables compare keys
//! (once per process), removes the rows and rejects the database would take for one, builds the
//! transactions ([`super::statement`]), their rows staged by bulk load where the server takes it
//! ([`super::bulk`]), sends each, curing a refusal a redelivery would only meet again
//! (`refusals`), and counts what was written, including what transactions whose answer
//! was lost wrote (`send`, `outcomes`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::Utc;

use super::bulk::BulkLoad;
use super::errors::{not_ready, sql_error};
use super::facts::{TableFacts, WRITER_FACTS_SQL};
use super::keys::{self, KeyTypes};
use super::outcomes::{Unreported, Unsettled, fingerprint};
use super::refusals::{Cure, NulProbe, first_form};
use super::send::Sent;
use super::session::{Connections, Session};
use super::settings::SqlConfig;
use super::statement::{BATCH_LIMITS, Form, Rows, StageTable, build_batches};
use crate::BoxFuture;
use crate::secrets::{SecretSource, TokenSource};
use crate::warehouse::{Batch, Warehouse, WarehouseError, WriteReport};

pub struct SqlWarehouse {
    connections: Connections,
    description: String,
    round_trips: AtomicU64,
    /// How the history table compares its key, and the staging table for it, read from the
    /// catalog on the first write.
    tables: OnceLock<Tables>,
    /// Whether rows are staged by bulk load.
    bulk: BulkLoad,
    /// Whether the server gives NUL back as sent: asked before the first body holding one.
    nul: NulProbe,
    unsettled: Unsettled,
}

impl SqlWarehouse {
    /// The writer over a pool that connects on first use (`Connections::new`).
    pub fn new(
        config: SqlConfig,
        secrets: Arc<dyn SecretSource>,
        tokens: Option<Arc<dyn TokenSource>>,
    ) -> Self {
        let bulk = BulkLoad::new(config.bulk_load);
        let (connections, description) = Connections::new(config, secrets, tokens);
        Self {
            connections,
            description,
            round_trips: AtomicU64::new(0),
            tables: OnceLock::new(),
            bulk,
            nul: NulProbe::default(),
            unsettled: Unsettled::default(),
        }
    }

    /// Takes `stores_nul` as the server's answer to the NUL probe instead of asking it: for tests
    /// that drive the refusal path on a server that refuses NUL.
    pub fn assume_server_stores_nul(self, stores_nul: bool) -> Self {
        Self {
            nul: NulProbe::assumed(stores_nul),
            ..self
        }
    }

    /// Transactions sent for writes so far, each one SQL batch: one per invocation unless the
    /// batch was bigger than the cap, two when a lost connection made it send one again. (A
    /// transaction whose rows are staged by bulk load is preceded by the bulk load's own
    /// requests: see [`super::bulk`].)
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// How the history table compares its key, and its staging table: cached, or read from the
    /// catalog with the facts the writer checks once (the tables as this version writes them;
    /// the table's design).
    async fn tables(&self, session: &mut Session<'_>) -> Result<&Tables, WarehouseError> {
        if let Some(tables) = self.tables.get() {
            return Ok(tables);
        }
        let results = session
            .run(&WRITER_FACTS_SQL)
            .await
            .map_err(|error| not_ready(sql_error("reading the tables' design", &error)))?;
        let facts = TableFacts::read(&results)?;
        // Concurrent first writes may both read; one stores the answer and warns.
        let mut first = false;
        let tables = self.tables.get_or_init(|| {
            first = true;
            Tables {
                stage: StageTable::new(&facts.keys, facts.dedicated_pool),
                keys: facts.keys,
            }
        });
        if first && let Some(warning) = facts.design_warning {
            tracing::warn!("{warning}");
        }
        Ok(tables)
    }

    async fn write_batch(&self, batch: Batch) -> Result<WriteReport, WarehouseError> {
        if batch.rows.is_empty() && batch.rejects.is_empty() {
            return Ok(WriteReport::default());
        }
        let mut session = self.connections.session().await?;
        let Tables { keys, stage } = self.tables(&mut session).await?;
        let mut batch = batch;
        let equal_keys = keys::remove_equal_keys(&mut batch.rows, keys);
        let repeated_rejects = keys::remove_repeated_rejects(&mut batch.rejects);
        let mut unreported = Unreported::take(&self.unsettled, fingerprint(&batch));
        let form = Form {
            rows: match batch.rows.is_empty() {
                true => Rows::Text,
                false => self.bulk.rows(stage),
            },
            ..first_form(&self.nul, &mut session, &batch).await?
        };
        let transactions = build_batches(
            &batch.rows,
            &batch.rejects,
            Utc::now(),
            keys,
            &BATCH_LIMITS,
            form,
        );
        if transactions.len() > 1 {
            tracing::info!(
                transactions = transactions.len(),
                rows = batch.rows.len(),
                rejects = batch.rejects.len(),
                "Batch larger than the SQL batch cap; writing it in several transactions."
            );
        }
        let cure = Cure {
            batch: &batch,
            keys,
            round_trips: &self.round_trips,
            bulk: &self.bulk,
        };
        let mut sent = Sent::default();
        for transaction in &transactions {
            // A failure (or this future dropped) leaves every transaction sent to look up when
            // the batch comes again: some may have committed without an answer counting them.
            sent += cure
                .send_or_cure(&mut session, transaction, form, &mut unreported.ids)
                .await?;
        }
        unreported.reported();
        let mut report = sent.report;
        // Rows an earlier, unanswered transaction wrote were found stored by this one: written
        // by this batch all the same, not duplicates.
        let earlier = sent.earlier;
        report.rows_written += earlier.rows_written;
        report.duplicates = report.duplicates.saturating_sub(earlier.rows_written);
        report.rejects_written += earlier.rejects_written;
        report.rejects_existing = report
            .rejects_existing
            .saturating_sub(earlier.rejects_written);
        report.duplicates += equal_keys as u64;
        report.rejects_existing += repeated_rejects as u64;
        Ok(report)
    }
}

/// What the writer knows of the tables once it has read the catalog.
struct Tables {
    keys: KeyTypes,
    stage: StageTable,
}

impl Warehouse for SqlWarehouse {
    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<WriteReport, WarehouseError>> {
        Box::pin(self.write_batch(batch))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
