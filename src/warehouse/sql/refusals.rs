//! When the server refuses a transaction for good, the batch must still land: a refusal that
//! comes back on every redelivery would hold back its partition forever. Three refusals have a
//! cure, each tried once, in a form the server takes (what the server does decides, never its
//! name):
//! - **bulk load** (a permission, a pool setting, an engine may refuse it): the rows the server
//!   refused to stage are sent as SQL text, and once that is written, rows go as text for the
//!   rest of the process ([`BulkLoad::refused`], logged once).
//! - **a duplicate key** (SQL Server engines enforce one row per key with a unique index): a
//!   writer outside the writer lock stored some of the keys meanwhile, or two ids the database
//!   compares as equal in a way the writer does not fold ([`super::keys::Collation::fold`])
//!   share a timestamp. The transaction is sent again with the database picking one row per key,
//!   the first of the batch ([`Duplicates::PickedByTheDatabase`]; staged rows are picked so
//!   already, and are staged and sent once more).
//! - **a reject's body**: SQL Server and Synapse store any text in `nvarchar(max)`, NUL included
//!   (one binary constant, see [`super::literal::nstring`]); other SQL Server-compatible engines
//!   refuse NUL. Before the first body holding NUL, one query asks the server to give NUL back
//!   ([`NUL_PROBE_SQL`]); where it does not, such bodies are stored escaped from then on. A
//!   transaction holding rejects that the server still refuses because it cannot convert a body
//!   ([`super::retry::BODY_CONVERSION_ERRORS`]) is sent again with every body escaped; any other
//!   permanent error stands, and the bodies stay as received.
//!
//! Escaped means a JSON string of printable ASCII ([`super::statement::escaped_body`]), marked in
//! the reject's reason: lossless, and readable back with any JSON reader. If a cure fails too,
//! its error stands (and the redelivery tries again).

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;

use chrono::Utc;

use super::bulk::{BulkLoad, STAGING};
use super::errors::sql_error;
use super::literal;
use super::outcomes::Ids;
use super::retry::{is_body_conversion, is_duplicate_key, is_transient};
use super::send::{Sent, Staging, send};
use super::session::Session;
use super::statement::{
    BATCH_LIMITS, BatchSql, BodyForm, Duplicates, Form, KeyTypes, Rows, build_batches,
};
use crate::domain::AssetRow;
use crate::fault::Fault;
use crate::text::excerpt;
use crate::warehouse::{Batch, WarehouseError};

/// Texts holding NUL, as the writer renders a reject body; each must come back exactly.
const NUL_SAMPLES: [&str; 2] = ["a\0b", "x\0"];

/// `SELECT` of [`NUL_SAMPLES`] in the shape a reject's body takes in the writer's insert.
pub static NUL_PROBE_SQL: LazyLock<String> = LazyLock::new(|| {
    let selects: Vec<String> = NUL_SAMPLES
        .iter()
        .map(|sample| {
            let mut value = String::new();
            literal::nstring(&mut value, sample);
            format!("SELECT CAST({value} AS nvarchar(max)) AS b")
        })
        .collect();
    format!("SELECT s.b FROM ({}) AS s", selects.join(" UNION ALL "))
});

/// Whether the probe's answer is every sample, exactly (in any order).
pub fn gives_nul_back(answer: &[Option<&str>]) -> bool {
    let mut got: Vec<Option<&str>> = answer.to_vec();
    let mut want: Vec<Option<&str>> = NUL_SAMPLES.iter().copied().map(Some).collect();
    got.sort_unstable();
    want.sort_unstable();
    got == want
}

/// The reason's note for bodies escaped because the probe failed.
pub const NO_NUL: &str = "this server does not store NUL (U+0000) characters as sent";

/// A permanent refusal by the server itself (it sent an error number).
fn refused_for_good(error: &WarehouseError) -> Option<(u32, &str)> {
    match error {
        WarehouseError::Sql {
            fault: Fault::Permanent { .. },
            number: Some(number),
            message,
            ..
        } => Some((*number, message)),
        _ => None,
    }
}

/// The server's answer to the NUL probe, asked once per process when first needed.
#[derive(Default)]
pub struct NulProbe(tokio::sync::OnceCell<bool>);

impl NulProbe {
    /// Takes `stores_nul` as the server's answer instead of asking it.
    pub fn assumed(stores_nul: bool) -> Self {
        Self(tokio::sync::OnceCell::new_with(Some(stores_nul)))
    }
}

/// The form of a batch's transactions: reject bodies as received, unless one holds NUL and the
/// server does not give NUL back (asked once per process, when first needed).
pub async fn first_form(
    probe: &NulProbe,
    session: &mut Session<'_>,
    batch: &Batch,
) -> Result<Form<'static>, WarehouseError> {
    if !batch.rejects.iter().any(|r| r.raw_body.contains('\0')) {
        return Ok(Form::default());
    }
    let stores_nul = *probe
        .0
        .get_or_try_init(|| async {
            match session.run(&NUL_PROBE_SQL).await {
                Ok(results) => {
                    let answer: Vec<Option<&str>> = results
                        .first()
                        .map(|rows| rows.iter().map(|row| row.get::<&str, _>(0)).collect())
                        .unwrap_or_default();
                    Ok(gives_nul_back(&answer))
                }
                Err(error) if !is_transient(&error) => Ok(false),
                Err(error) => Err(sql_error("asking whether the server stores NUL", &error)),
            }
        })
        .await?;
    if session.is_broken() {
        // The probe's refusal broke the connection: the batch goes on a fresh one.
        session.renew().await?;
    }
    let bodies = match stores_nul {
        true => BodyForm::AsReceived,
        false => BodyForm::Escaped {
            all: false,
            why: NO_NUL,
        },
    };
    Ok(Form {
        bodies,
        ..Form::default()
    })
}

/// What a cure needs besides the transaction: the whole batch, how its keys compare, and whether
/// the server takes bulk load.
pub struct Cure<'a> {
    pub batch: &'a Batch,
    pub keys: &'a KeyTypes,
    pub round_trips: &'a AtomicU64,
    pub bulk: &'a BulkLoad,
}

/// A permanent failure to stage the rows by bulk load: the same rows as SQL text may be taken.
fn staging_refused(error: &WarehouseError) -> bool {
    matches!(
        error,
        WarehouseError::Sql { context, fault: Fault::Permanent { .. }, .. } if *context == STAGING
    )
}

/// `rows` to stage first, when `form` stages them.
fn staging<'a>(form: Form<'a>, rows: &'a [AssetRow]) -> Option<Staging<'a>> {
    match form.rows {
        Rows::Staged(table) => Some(Staging { table, rows }),
        Rows::Text => None,
    }
}

impl Cure<'_> {
    /// Sends one transaction; when the server refuses it for good, sends it again once per cure
    /// that applies (see the module's comment), each on a new connection (a refusal breaks the
    /// old one, which is dropped before the next is taken). A server that refuses to stage the
    /// rows by bulk load gets them as SQL text; once that is written, rows go as text from then
    /// on ([`BulkLoad::refused`]).
    pub async fn send_or_cure(
        &self,
        session: &mut Session<'_>,
        transaction: &BatchSql,
        form: Form<'_>,
        ids: &mut Ids,
    ) -> Result<Sent, WarehouseError> {
        let (earlier, sent_as) = (&mut ids.earlier, &mut ids.sent_as);
        let staged = staging(form, &self.batch.rows);
        let mut failed = match send(
            session,
            transaction,
            staged,
            earlier,
            sent_as,
            self.round_trips,
        )
        .await
        {
            Ok(sent) => return Ok(self.written(sent, transaction.staged, None)),
            Err(failed) => failed,
        };
        let mut form = form;
        let mut bulk_refused = None;
        if transaction.staged && staging_refused(&failed) {
            tracing::info!(error = %failed, "The server refused to stage the batch's rows by bulk load; sending them as SQL text.");
            form.rows = Rows::Text;
            match self.resend(session, transaction, form, ids).await {
                Ok(sent) => return Ok(self.written(sent, false, Some(&failed))),
                Err(again) => bulk_refused = Some(std::mem::replace(&mut failed, again)),
            }
        }
        let bulk_refused = bulk_refused.as_ref();
        if refused_for_good(&failed).is_some_and(|(number, _)| is_duplicate_key(number)) {
            let again = match form.rows {
                // The database already picks one row per key: another writer, outside the
                // writer lock, stored some of the keys meanwhile; the resend's probe sees them.
                Rows::Staged(_) => true,
                Rows::Text if form.duplicates == Duplicates::Probed => {
                    form.duplicates = Duplicates::PickedByTheDatabase;
                    true
                }
                Rows::Text => false,
            };
            if again {
                tracing::warn!(
                    error = %failed,
                    "A duplicate key refused the batch: another writer stored some of its keys, or two ids the database compares as equal share a timestamp. Sending it again with the database keeping the batch's first row per key."
                );
                let staged = matches!(form.rows, Rows::Staged(_));
                match self.resend(session, transaction, form, ids).await {
                    Ok(sent) => return Ok(self.written(sent, staged, bulk_refused)),
                    Err(again) => failed = again,
                }
            }
        }
        let Some((number, message)) = refused_for_good(&failed) else {
            return Err(failed);
        };
        // Only the refusal to convert a body is cured by escaping the bodies; any other permanent
        // error would meet the same transaction again, and the bodies must stay as received.
        if !is_body_conversion(number, message)
            || transaction.rejects.is_empty()
            || matches!(form.bodies, BodyForm::Escaped { all: true, .. })
        {
            return Err(failed);
        }
        let why = format!(
            "the server refused this batch as written (SQL error {number}: {})",
            excerpt(message, 160)
        );
        tracing::warn!(
            sql_error = number,
            rejects = transaction.rejects.len(),
            "The server refused to convert a reject's body; sending the batch again with its bodies escaped (marked in their reason)."
        );
        let form = Form {
            bodies: BodyForm::Escaped {
                all: true,
                why: &why,
            },
            ..form
        };
        let staged = matches!(form.rows, Rows::Staged(_));
        match self.resend(session, transaction, form, ids).await {
            Ok(sent) => Ok(self.written(sent, staged, bulk_refused)),
            Err(again) => {
                tracing::warn!(%again, "The batch with escaped bodies was refused too.");
                Err(failed)
            }
        }
    }

    /// A transaction written: its rows staged by bulk load (`staged`), or as text after the
    /// server refused to stage them (`bulk_refused`).
    fn written(&self, sent: Sent, staged: bool, bulk_refused: Option<&WarehouseError>) -> Sent {
        if staged {
            self.bulk.taken();
        }
        if let Some(refusal) = bulk_refused {
            self.bulk.refused(refusal);
        }
        sent
    }

    /// Builds `transaction`'s rows and rejects again in `form` (one or more transactions) and
    /// sends them on a new connection.
    async fn resend(
        &self,
        session: &mut Session<'_>,
        transaction: &BatchSql,
        form: Form<'_>,
        ids: &mut Ids,
    ) -> Result<Sent, WarehouseError> {
        let rows = &self.batch.rows[transaction.rows.clone()];
        let again = build_batches(
            rows,
            &self.batch.rejects[transaction.rejects.clone()],
            Utc::now(),
            self.keys,
            &BATCH_LIMITS,
            form,
        );
        session.renew().await?;
        let mut sent = Sent::default();
        for part in &again {
            let (earlier, sent_as) = (&mut ids.earlier, &mut ids.sent_as);
            let staged = staging(form, rows);
            sent += send(session, part, staged, earlier, sent_as, self.round_trips).await?;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_renders_each_sample_as_the_writer_renders_a_body() {
        assert_eq!(
            NUL_PROBE_SQL.as_str(),
            "SELECT s.b FROM (SELECT CAST(CAST(0x610000006200 AS nvarchar(max)) AS nvarchar(max)) AS b UNION ALL SELECT CAST(CAST(0x78000000 AS nvarchar(max)) AS nvarchar(max)) AS b) AS s"
        );
    }

    #[test]
    fn only_every_sample_exactly_means_nul_is_stored() {
        assert!(gives_nul_back(&[Some("x\0"), Some("a\0b")]));
        assert!(
            !gives_nul_back(&[Some("a\0b"), Some("x")]),
            "a trailing NUL dropped"
        );
        assert!(!gives_nul_back(&[Some("ab"), Some("x\0")]));
        assert!(!gives_nul_back(&[None, Some("x\0")]));
        assert!(!gives_nul_back(&[Some("a\0b")]));
        assert!(!gives_nul_back(&[]));
    }

    #[test]
    fn only_errors_numbered_by_the_server_and_not_transient_are_refusals() {
        let sql = |fault, number| WarehouseError::Sql {
            context: "writing a batch",
            number,
            fault,
            message: "no".into(),
        };
        let permanent = || Fault::permanent("change something");
        assert_eq!(
            refused_for_good(&sql(permanent(), Some(2627))),
            Some((2627, "no"))
        );
        assert_eq!(refused_for_good(&sql(Fault::Transient, Some(40613))), None);
        assert_eq!(refused_for_good(&sql(permanent(), None)), None);
        let store = WarehouseError::Store {
            context: "x",
            message: "y".into(),
        };
        assert_eq!(refused_for_good(&store), None);
    }
}
