//! Reject bodies a server cannot store as received. SQL Server and Synapse store any text in
//! `nvarchar(max)`, NUL included (sent as one binary constant, see [`super::literal::nstring`]);
//! other SQL Server-compatible engines refuse NUL, and a refused body must not hold back the good
//! rows of its batch (the whole transaction fails, and its redelivery would fail the same way,
//! forever). What the server does decides, never its name:
//! - before the first body holding NUL, one query asks the server to give NUL back
//!   ([`NUL_PROBE_SQL`]); where it does not give it back exactly, bodies holding NUL are stored
//!   escaped from then on;
//! - a transaction holding rejects that the server refuses for good (a permanent SQL error) is
//!   built again with every one of its bodies escaped and sent once more; if that fails too, the
//!   first error stands.
//!
//! Escaped means a JSON string of printable ASCII ([`super::statement::escaped_body`]), marked
//! in the reject's reason: lossless, and readable back with any JSON reader.

use std::sync::LazyLock;

use bb8::PooledConnection;
use chrono::Utc;

use super::connection::TdsManager;
use super::literal;
use super::statement::{BatchSql, BodyForm, IdType, SYNAPSE_LIMITS, build_batches};
use super::{SynapseWarehouse, sql_error};
use crate::text::excerpt;
use crate::warehouse::{Batch, WarehouseError, WriteReport};

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

impl SynapseWarehouse {
    /// The form of reject bodies for a batch: as received, unless one holds NUL and the server
    /// does not give NUL back (asked once per process, when first needed).
    pub(super) async fn body_form<'a>(
        &'a self,
        connection: &mut PooledConnection<'a, TdsManager>,
        batch: &Batch,
    ) -> Result<BodyForm<'static>, WarehouseError> {
        if !batch.rejects.iter().any(|r| r.raw_body.contains('\0')) {
            return Ok(BodyForm::AsReceived);
        }
        let probe = &mut **connection;
        let stores_nul = *self
            .stores_nul
            .get_or_try_init(|| async move {
                match probe.run(&NUL_PROBE_SQL).await {
                    Ok(results) => {
                        let answer: Vec<Option<&str>> = results
                            .first()
                            .map(|rows| rows.iter().map(|row| row.get::<&str, _>(0)).collect())
                            .unwrap_or_default();
                        Ok(gives_nul_back(&answer))
                    }
                    Err(error) if !super::retry::is_transient(&error) => Ok(false),
                    Err(error) => Err(sql_error("asking whether the server stores NUL", &error)),
                }
            })
            .await?;
        if connection.broken {
            // The probe's refusal broke the connection: the batch goes on a fresh one.
            *connection = self.connection().await?;
        }
        if stores_nul {
            return Ok(BodyForm::AsReceived);
        }
        Ok(BodyForm::Escaped {
            all: false,
            why: NO_NUL,
        })
    }

    /// Sends one transaction; if the server refuses it for good and it holds rejects, sends it
    /// again with every body escaped (on a new connection: the refusal broke the old one).
    pub(super) async fn send_or_escape<'a>(
        &'a self,
        connection: &mut PooledConnection<'a, TdsManager>,
        batch: &Batch,
        transaction: &BatchSql,
        id_type: &IdType,
    ) -> Result<WriteReport, WarehouseError> {
        let refused = match self.send(connection, transaction).await {
            Err(
                error @ WarehouseError::Sql {
                    transient: false,
                    number: Some(_),
                    ..
                },
            ) if !transaction.rejects.is_empty() => error,
            other => return other,
        };
        let WarehouseError::Sql {
            number: Some(number),
            message,
            ..
        } = &refused
        else {
            return Err(refused);
        };
        let why = format!(
            "the server refused this batch as written (SQL error {number}: {})",
            excerpt(message, 160)
        );
        tracing::warn!(
            sql_error = number,
            rejects = transaction.rejects.len(),
            "The server refused a batch holding rejects; sending it again with their bodies escaped (marked in their reason)."
        );
        let again = build_batches(
            &batch.rows[transaction.rows.clone()],
            &batch.rejects[transaction.rejects.clone()],
            Utc::now(),
            id_type,
            &SYNAPSE_LIMITS,
            BodyForm::Escaped {
                all: true,
                why: &why,
            },
        );
        *connection = self.connection().await?;
        let mut report = WriteReport::default();
        for part in &again {
            match self.send(connection, part).await {
                Ok(part) => report += part,
                Err(error) => {
                    tracing::warn!(%error, "The batch with escaped bodies failed too.");
                    return Err(refused);
                }
            }
        }
        Ok(report)
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
}
