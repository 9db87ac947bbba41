//! Which SQL failures are worth a retry. Either way the invocation fails and the retry policy
//! redelivers the batch; the rule decides how loudly: a transient failure is expected weather, a
//! permanent one is a bug or a misconfiguration to fix, logged with its SQL error number.

use tiberius::error::Error;

/// SQL Server / Synapse error numbers that pass: throttling, failover, connection drops.
pub const TRANSIENT_SQL_ERRORS: &[u32] = &[
    64,    // connection dropped during login
    233,   // no process on the other end of the pipe
    1205,  // deadlock victim
    4060,  // database unavailable (failover)
    10053, // connection aborted by the host
    10054, // connection reset by the peer
    10060, // connection attempt timed out
    10928, // resource limit reached
    10929, // resource limit: minimum guarantee not met
    40197, // service error processing the request
    40501, // service busy
    40613, // database unavailable
    49918, // not enough resources to process the request
    49919, // too many create/update operations
    49920, // too many operations in progress
];

/// What an error number means for this pipeline, where the server's own message leaves a reader
/// guessing.
pub fn meaning(number: u32) -> Option<&'static str> {
    match number {
        // "Serverless compute tier for Azure SQL Database": "If a serverless database is paused,
        // the first connection attempt resumes the database and returns an error stating that
        // the database is unavailable with error code 40613. Once the database resumes, retry
        // the connection. Databases generally resume in less than one minute."
        40613 => Some(
            "the database is unavailable: an auto-paused serverless database answers this while it resumes, generally within a minute; the batch is retried",
        ),
        2601 | 2627 => Some("a unique index refused a key that is already stored"),
        _ => None,
    }
}

/// The named retry rule: connection-level failures and the listed error numbers are transient.
pub fn is_transient(error: &Error) -> bool {
    match error {
        Error::Io { .. } | Error::Routing { .. } => true,
        Error::Server(token) => is_transient_number(token.code()),
        _ => false,
    }
}

pub fn is_transient_number(number: u32) -> bool {
    TRANSIENT_SQL_ERRORS.contains(&number)
}

/// The SQL error number, when the server sent one.
pub fn sql_error_number(error: &Error) -> Option<u32> {
    match error {
        Error::Server(token) => Some(token.code()),
        _ => None,
    }
}

/// A unique index refused a key already stored: 2627 (a unique constraint) and 2601 (a unique
/// index), "Database engine events and errors" in Microsoft's SQL Server documentation.
pub fn is_duplicate_key(number: u32) -> bool {
    matches!(number, 2601 | 2627)
}

/// Login failures (18456 and friends) mean the credential is wrong or was rotated.
pub fn is_login_failure(error: &Error) -> bool {
    matches!(
        sql_error_number(error),
        Some(18456 | 18452 | 18470 | 18486 | 18487 | 18488)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiberius::error::{Error, IoErrorKind};

    fn io(kind: IoErrorKind) -> Error {
        Error::Io {
            kind,
            message: "x".into(),
        }
    }

    #[test]
    fn lost_connections_and_timeouts_are_transient() {
        assert!(is_transient(&io(IoErrorKind::ConnectionReset)));
        assert!(is_transient(&io(IoErrorKind::TimedOut)));
        assert!(is_transient(&io(IoErrorKind::BrokenPipe)));
        assert!(is_transient(&Error::Routing {
            host: "x".into(),
            port: 1433
        }));
    }

    #[test]
    fn protocol_and_conversion_errors_are_permanent() {
        assert!(!is_transient(&Error::Protocol("bad".into())));
        assert!(!is_transient(&Error::Conversion("bad".into())));
        assert!(!is_transient(&Error::Tls("unknown issuer".into())));
    }

    #[test]
    fn a_database_resuming_from_auto_pause_is_transient_and_says_so() {
        assert!(is_transient_number(40613));
        assert!(meaning(40613).unwrap().contains("resumes"));
        assert_eq!(meaning(18456), None);
    }

    #[test]
    fn every_listed_number_is_transient_and_data_errors_are_not() {
        for code in [
            40501, 40613, 40197, 49918, 49919, 49920, 10928, 10929, 4060, 233, 10053, 10054, 10060,
        ] {
            assert!(is_transient_number(code), "{code}");
        }
        for code in [8152, 245, 8114, 2627, 102, 208, 18456] {
            assert!(!is_transient_number(code), "{code}");
        }
    }
}
