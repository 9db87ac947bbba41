//! Sends one transaction (its rows staged first by bulk load when it reads them from the staging
//! table, [`super::bulk`]) and reads its answer. A transaction can end three ways for the writer:
//! answered (its counts read from its journal rows), refused (the server answered an error: with
//! `XACT_ABORT` it rolled back), or unknown (the connection was cut, or the reply never came: it
//! may have committed). A cut connection is replaced at once and the transaction sent again under
//! a new id, looking up the lost one first ([`super::journal`]): the lookup waits behind the
//! writer lock until the lost transaction has ended, so the counts say exactly what was written.
//! After a timeout the server may still be working on it: the invocation fails, and the writer
//! looks the transaction up when the batch comes again (`super::outcomes`).

use std::sync::atomic::{AtomicU64, Ordering};

use tiberius::error::{Error, IoErrorKind};

use super::bulk::STAGING;
use super::errors::sql_error;
use super::journal::{self, Earlier};
use super::session::Session;
use super::statement::{BatchSql, StageTable};
use crate::domain::AssetRow;
use crate::warehouse::{WarehouseError, WriteReport};

/// What a transaction whose rows are staged needs staged first: the staging table, and the rows
/// its `rows` range indexes.
#[derive(Clone, Copy)]
pub struct Staging<'a> {
    pub table: &'a StageTable,
    pub rows: &'a [AssetRow],
}

/// What a sent transaction wrote, and what the earlier transactions it looked up had written.
#[derive(Debug, Default)]
pub struct Sent {
    pub report: WriteReport,
    pub earlier: Earlier,
}

impl std::ops::AddAssign for Sent {
    fn add_assign(&mut self, other: Self) {
        self.report += other.report;
        self.earlier.parts += other.earlier.parts;
        self.earlier.rows_written += other.earlier.rows_written;
        self.earlier.rejects_written += other.earlier.rejects_written;
    }
}

/// How a failed attempt ended for the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The server refused it: rolled back.
    Refused,
    /// The connection was lost: unknown, worth sending again at once.
    Lost,
    /// No answer in time, or a reply that made no sense: unknown, not sent again now.
    Unknown,
}

fn ending(error: &Error) -> Ending {
    match error {
        Error::Server(_) => Ending::Refused,
        Error::Io {
            kind: IoErrorKind::TimedOut,
            ..
        } => Ending::Unknown,
        Error::Io { .. } => Ending::Lost,
        _ => Ending::Unknown,
    }
}

/// Sends `tx`, first looking up the `earlier` transactions (cleared once looked up); a `tx` whose
/// rows are staged is preceded by its rows' bulk load, from `staging`, on the same connection.
/// Every id it sends under is added to `sent_as` before it is sent: until the write's counts are
/// reported, those transactions may have written what no answer counted (see `super::outcomes`).
/// Counts each attempt in `round_trips`.
pub async fn send(
    session: &mut Session<'_>,
    tx: &BatchSql,
    staging: Option<Staging<'_>>,
    earlier: &mut Vec<String>,
    sent_as: &mut Vec<String>,
    round_trips: &AtomicU64,
) -> Result<Sent, WarehouseError> {
    sent_as.push(tx.id.clone());
    let error = match attempt(session, tx, staging, &tx.id, earlier, round_trips).await {
        Ok(sent) => {
            earlier.clear();
            return Ok(sent);
        }
        Err(error) => error,
    };
    if error.ending != Ending::Lost {
        // Refused (rolled back), or unknown and not worth a resend now (no reply in time: the
        // server may still be working on it).
        return Err(error.error);
    }
    tracing::warn!(error = %error.error, "Connection to the SQL database lost during a batch; sending it once more on a new connection, looking up first whether the lost one committed.");
    session.renew().await?;
    let mut lookups = earlier.clone();
    lookups.push(tx.id.clone());
    let id = journal::new_transaction_id();
    sent_as.push(id.clone());
    let sent = attempt(session, tx, staging, &id, &lookups, round_trips)
        .await
        .map_err(|again| again.error)?;
    if sent.earlier.parts > 0 {
        tracing::info!(
            rows_written = sent.earlier.rows_written,
            rejects_written = sent.earlier.rejects_written,
            "The lost transaction had committed: its rows count as written, not as duplicates."
        );
    }
    earlier.clear();
    Ok(sent)
}

/// One failed attempt.
struct Failed {
    error: WarehouseError,
    ending: Ending,
}

async fn attempt(
    session: &mut Session<'_>,
    tx: &BatchSql,
    staging: Option<Staging<'_>>,
    id: &str,
    earlier: &[String],
    round_trips: &AtomicU64,
) -> Result<Sent, Failed> {
    round_trips.fetch_add(1, Ordering::Relaxed);
    debug_assert!(
        !tx.staged || staging.is_some(),
        "staged rows come with the transaction"
    );
    if let (true, Some(staging)) = (tx.staged, staging) {
        let rows = staging.rows.get(tx.rows.clone()).unwrap_or_default();
        session
            .stage(staging.table, rows)
            .await
            .map_err(|error| Failed {
                ending: ending(&error),
                error: sql_error(STAGING, &error),
            })?;
    }
    let text = tx.text(id, earlier);
    let results = session.run(&text).await.map_err(|error| Failed {
        ending: ending(&error),
        error: sql_error("writing a batch", &error),
    })?;
    let (report, looked_up) =
        journal::read_answer(&results, tx, !earlier.is_empty()).map_err(|message| Failed {
            // The reply was read to the end, so the transaction committed; what it wrote is
            // unreadable here: the next delivery looks it up.
            ending: Ending::Unknown,
            error: WarehouseError::Store {
                context: "reading the batch's answer",
                message,
            },
        })?;
    Ok(Sent {
        report,
        earlier: looked_up.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_sent_again_and_a_timeout_is_left_unknown() {
        let io = |kind| Error::Io {
            kind,
            message: "x".into(),
        };
        assert_eq!(ending(&io(IoErrorKind::ConnectionReset)), Ending::Lost);
        assert_eq!(ending(&io(IoErrorKind::UnexpectedEof)), Ending::Lost);
        assert_eq!(ending(&io(IoErrorKind::TimedOut)), Ending::Unknown);
        assert_eq!(ending(&Error::Protocol("bad".into())), Ending::Unknown);
        // A server's error (`Error::Server`, which tiberius alone builds) is `Refused`: the live
        // suite's refusals show it.
    }
}
