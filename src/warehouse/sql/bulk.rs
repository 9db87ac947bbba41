//! The bulk path's I/O: a batch's rows staged in the session's staging table by TDS bulk load
//! (what bcp and SqlBulkCopy send), whether the server takes it ([`BulkLoad`], found out by the
//! first write of a process), and the same question asked by `init-warehouse` and `check`
//! ([`probe`]). The SQL is [`super::stage`]'s.
//!
//! **A connection is clean or dropped.** Staging leaves the connection broken until the
//! transaction that reads the staged rows, and empties the table after its `COMMIT`, has been
//! answered ([`TdsConnection::stage`]); a bulk load that failed or was abandoned (a cancelled
//! invocation dropping it mid-stream) leaves it broken too. The pool drops a broken connection,
//! and the server drops the session's table with it, so a pooled connection's staging table is
//! always there and empty, or not there yet.

use std::sync::atomic::{AtomicU8, Ordering};

use super::connection::{TdsClient, TdsConnection, TdsManager};
use super::init::catalog::Facts;
use super::retry;
use super::settings::BulkLoadSetting;
use super::stage::{STAGE_TABLE, StageTable, staged_row};
use super::transaction::Rows;
use crate::domain::AssetRow;
use crate::warehouse::WarehouseError;

/// The context of an error met while staging rows: the server may refuse bulk load, where the
/// same rows as SQL text would be taken.
pub const STAGING: &str = "staging the rows by bulk load";

/// Sends `rows` into the staging table by bulk load, in order (each row's place in the slice is
/// its position), and checks that the server stored them all.
pub async fn load(client: &mut TdsClient, rows: &[AssetRow]) -> tiberius::Result<()> {
    let mut request = client.bulk_insert(STAGE_TABLE).await?;
    for (position, row) in rows.iter().enumerate() {
        request.send(staged_row(position, row)).await?;
    }
    let stored = request.finalize().await?.total();
    if stored != rows.len() as u64 {
        return Err(tiberius::error::Error::Protocol(
            format!("the bulk load stored {stored} of {} rows", rows.len()).into(),
        ));
    }
    Ok(())
}

impl TdsConnection {
    /// Stages `rows` on this connection, creating its staging table the first time. Leaves the
    /// connection broken, on success too: only the transaction that empties the table (run next,
    /// by [`TdsConnection::run`]) makes it clean again, so a connection whose staged rows were
    /// never written is dropped, never handed to the next batch with rows left in its table.
    pub async fn stage(&mut self, table: &StageTable, rows: &[AssetRow]) -> tiberius::Result<()> {
        self.broken = true;
        if !self.staging {
            self.client
                .simple_query(table.create.as_str())
                .await?
                .into_results()
                .await?;
            self.staging = true;
        }
        load(&mut self.client, rows).await
    }
}

const UNTRIED: u8 = 0;
const TAKEN: u8 = 1;
const REFUSED: u8 = 2;

/// Whether this process stages rows by bulk load: `SQL_BULK_LOAD`, and what the server did with
/// the first bulk load (each outcome logged once).
pub struct BulkLoad {
    setting: BulkLoadSetting,
    state: AtomicU8,
}

impl BulkLoad {
    pub fn new(setting: BulkLoadSetting) -> Self {
        Self {
            setting,
            state: AtomicU8::new(UNTRIED),
        }
    }

    /// How the next batch's rows go: staged in `table`, unless bulk load is off or was refused.
    pub fn rows<'a>(&self, table: &'a StageTable) -> Rows<'a> {
        match (self.setting, self.state.load(Ordering::Relaxed)) {
            (BulkLoadSetting::Off, _) | (_, REFUSED) => Rows::Text,
            _ => Rows::Staged(table),
        }
    }

    /// A batch staged by bulk load was written.
    pub fn taken(&self) {
        if self
            .state
            .compare_exchange(UNTRIED, TAKEN, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::info!(
                "The server takes bulk load: each batch's rows are staged in a session table, then inserted by one statement."
            );
        }
    }

    /// The server refused to stage a batch's rows, and the same rows as SQL text were written:
    /// rows go as text from now on.
    pub fn refused(&self, error: &WarehouseError) {
        if self.state.swap(REFUSED, Ordering::Relaxed) != REFUSED {
            tracing::warn!(
                error = %error,
                "The server refused bulk load into a session table; rows are written as SQL text from now on (SQL_BULK_LOAD=off skips the attempt)."
            );
        }
    }
}

/// What `init-warehouse` and `check` found of bulk load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkProbe {
    /// The server took one row into the writer's staging table.
    Taken,
    /// The server refused it, as it said.
    Refused(String),
    /// `SQL_BULK_LOAD=off`.
    Off,
    /// It could not be tried (a second connection failed).
    Untried(String),
}

impl BulkProbe {
    /// How rows go, for `check`'s warehouse line.
    pub fn rows_go(&self) -> &'static str {
        match self {
            Self::Taken => " (staged by bulk load)",
            Self::Refused(_) => " (as SQL text: the server refused bulk load)",
            Self::Off => " (as SQL text: SQL_BULK_LOAD=off)",
            Self::Untried(_) => "",
        }
    }

    /// The line of `init-warehouse`'s report.
    pub fn report(&self) -> String {
        let what = "  bulk load into a session table:";
        match self {
            Self::Taken => format!(
                "{what} taken (each batch's rows are staged in {STAGE_TABLE} by TDS bulk load, then inserted by one statement)"
            ),
            Self::Refused(why) => format!(
                "{what} refused ({why}): the writer sends rows as SQL text, with the same result, more slowly"
            ),
            Self::Off => {
                format!("{what} off (SQL_BULK_LOAD=off): the writer sends rows as SQL text")
            }
            Self::Untried(why) => {
                format!("{what} not tried ({why}): the writer finds out on its first write")
            }
        }
    }
}

/// An event as TimerFetch publishes one: the probe's row.
const SAMPLE: &str = r#"{"id":"bulk-load-probe","rank":"1","symbol":"P","name":"Probe","priceUsd":"1.5","timestamp":1767225600000}"#;

/// Stages one row as the writer would, on a connection of its own (a refused bulk load may leave
/// it unusable), into the staging table for the history table `facts` describe, then drops the
/// table: nothing outside the session is changed.
pub async fn probe(manager: &TdsManager, facts: &Facts) -> BulkProbe {
    if manager.bulk_load() == BulkLoadSetting::Off {
        return BulkProbe::Off;
    }
    let keys = facts.history_keys.clone().unwrap_or_default();
    let table = StageTable::new(&keys, facts.is_dedicated_pool());
    let mut client = match manager.connect_client().await {
        Ok(client) => client,
        Err(error) => return BulkProbe::Untried(error.to_string()),
    };
    let sample: Vec<AssetRow> = AssetRow::from_event_body(SAMPLE).into_iter().collect();
    let staged = async {
        client
            .simple_query(table.create.as_str())
            .await?
            .into_results()
            .await?;
        load(&mut client, &sample).await?;
        client
            .simple_query(format!("DROP TABLE {STAGE_TABLE}"))
            .await?
            .into_results()
            .await
    };
    match staged.await {
        Ok(_) => BulkProbe::Taken,
        Err(error) => BulkProbe::Refused(match retry::sql_error_number(&error) {
            Some(number) => format!("SQL error {number}: {}", retry::message(&error)),
            None => retry::message(&error),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Fault;
    use crate::warehouse::sql::keys::KeyTypes;

    #[test]
    fn rows_are_staged_until_refused_or_turned_off() {
        let table = StageTable::new(&KeyTypes::default(), false);
        let auto = BulkLoad::new(BulkLoadSetting::Auto);
        assert_eq!(auto.rows(&table), Rows::Staged(&table));
        auto.taken();
        assert_eq!(auto.rows(&table), Rows::Staged(&table));
        let refusal = WarehouseError::Sql {
            context: STAGING,
            number: Some(4834),
            fault: Fault::SELF_EXPLAINED,
            message: "You do not have permission to use the bulk load statement.".into(),
        };
        auto.refused(&refusal);
        assert_eq!(auto.rows(&table), Rows::Text, "refused: text from now on");
        auto.taken();
        assert_eq!(auto.rows(&table), Rows::Text, "and for good");
        let off = BulkLoad::new(BulkLoadSetting::Off);
        assert_eq!(off.rows(&table), Rows::Text);
    }

    #[test]
    fn the_probe_s_outcome_is_said_in_the_report_and_on_check_s_line() {
        assert!(
            BulkProbe::Taken
                .report()
                .contains(": taken (each batch's rows are staged")
        );
        let refused = BulkProbe::Refused("SQL error 4834: no".into());
        assert_eq!(
            refused.report(),
            "  bulk load into a session table: refused (SQL error 4834: no): the writer sends rows as SQL text, with the same result, more slowly"
        );
        assert_eq!(
            refused.rows_go(),
            " (as SQL text: the server refused bulk load)"
        );
        assert_eq!(
            BulkProbe::Off.rows_go(),
            " (as SQL text: SQL_BULK_LOAD=off)"
        );
        assert!(
            AssetRow::from_event_body(SAMPLE).is_ok(),
            "the probe's row is a row"
        );
    }
}
