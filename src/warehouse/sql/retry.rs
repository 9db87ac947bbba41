//! Which SQL failures are worth a retry. Either way the invocation fails and the retry policy
//! redelivers the batch; the rule decides how loudly: a transient failure is expected weather, a
//! permanent one is a bug or a misconfiguration to fix, logged with its SQL error number and, where
//! it is known, what to change ([`fault`]; the local runner stops on it).

use tiberius::error::{Error, IoErrorKind};

use crate::fault::Fault;

/// What to change when the server refuses the login.
pub const LOGIN_FIX: &str = "check the login: User Id and Password in SQL_CONNECTION_STRING (in Key Vault: the secret named by SQL_CONNECTION_STRING_SECRET); with passwordless login (SQL_SERVER), the identity needs a database user: `handler init-warehouse --app-identity <app name>`";
/// What to change when the database cannot be opened.
pub const DATABASE_FIX: &str = "check the database name (Database= or Initial Catalog= in SQL_CONNECTION_STRING; SQL_DATABASE only with passwordless login, beside SQL_SERVER), that it exists (`handler init-warehouse` creates it on SQL Server) and that the login may open it";
/// What to run when the writer's tables are missing or not as it needs them.
pub const TABLES_FIX: &str =
    "run `handler init-warehouse` with the same settings: it creates the tables and the lock row";
/// What to change when the server's certificate is refused.
pub const TLS_FIX: &str = "the server's TLS certificate was refused: Azure's are trusted as they are; a development server with a self-signed certificate needs TrustServerCertificate=true in SQL_CONNECTION_STRING";
/// What to change when the server's host name does not resolve.
pub const HOST_FIX: &str = "check the server's host name (Server= in SQL_CONNECTION_STRING, or SQL_SERVER): it does not resolve";

/// What to change when a free offer database has spent its month's allowance.
pub const FREE_ALLOWANCE_FIX: &str = "the Azure SQL Database free offer's monthly allowance (100,000 vCore-seconds) is spent and the database is paused until the 1st of next month (sqlDatabaseFreeOffer=AutoPause); events wait in the hub only as long as its retention: to write now, choose 'Continue using database with additional charges' on the database's Compute + Storage page (sqlDatabaseFreeOffer=BillOverUsage), or redeploy with sqlDatabaseTier=Basic (a flat rate, never paused); to last the month, fetch less often (FETCH_SCHEDULE; `handler check` says whether the database can pause between fetches)";
/// What to change when the server cannot look a service principal up in Microsoft Entra ID.
pub const SERVER_IDENTITY_FIX: &str = "the Azure SQL server needs its own identity with Microsoft Graph read permissions (User.Read.All, GroupMember.Read.All, Application.Read.All) or the Directory Readers role to create a user for an application: the template gives the server a system-assigned identity (output sqlServerPrincipalId); a Privileged Role Administrator grants it the role (docs/deploy.md, step 4)";

/// The free offer's allowance is spent: error 42119, "This database has reached the monthly free
/// amount allowance for the month of ... and is paused for the remainder of the month". Neither
/// is in Microsoft's documentation as stored ("Deploy Azure SQL Database for free" and its FAQ
/// say only that the database is inaccessible until the 1st); the number and the text are as
/// public code that handles them reports, so both are matched.
pub fn is_free_allowance(number: Option<u32>, message: &str) -> bool {
    number == Some(42119)
        || message
            .to_ascii_lowercase()
            .contains("monthly free amount allowance")
}

/// What to do when a dedicated pool is paused (MSSQLSERVER_42108: "Can not connect to the SQL pool
/// since it is paused. Please resume the SQL pool and try again."; "This error requires action
/// from the user").
pub const PAUSED_POOL_FIX: &str = "the dedicated SQL pool is paused: resume the pool (Azure portal, or `az synapse sql pool resume`); the batch is retried and written once it runs";

/// SQL Server / Azure SQL / Synapse error numbers that pass, each with the list that names it:
/// `[SqlClient]` is the default transient list of Microsoft.Data.SqlClient's retry logic
/// (`SqlConfigurableRetryFactory`, "SqlConfigurableRetryFactory Class" in the .NET API reference);
/// `[Azure SQL]` is "List of transient fault error codes" in "Troubleshooting connectivity issues
/// and other errors with Azure SQL Database and Azure SQL Managed Instance"; `[MSSQL]` is the error's
/// own page in "Database engine events and errors".
pub const TRANSIENT_SQL_ERRORS: &[u32] = &[
    64,    // connection dropped during login (SqlClient's test list of transient connection errors)
    233,   // no process on the other end of the pipe [SqlClient]
    615,   // could not find database ID: a stale cache during a reconfiguration [Azure SQL]
    926,   // database cannot be opened: the last stage of a reconfiguration [Azure SQL]
    997,   // overlapped I/O in progress during login (named pipes) [SqlClient]
    1204,  // cannot obtain a LOCK resource at this time [SqlClient]
    1205,  // deadlock victim [SqlClient]
    1222,  // lock request time out period exceeded [SqlClient]
    4060, // cannot open the database: a failover (see `fault` for a database never reached) [SqlClient, Azure SQL]
    4221, // login to a read-secondary while it recycles [SqlClient, Azure SQL]
    10053, // connection aborted by the host [SqlClient]
    10054, // connection reset by the peer [SqlClient]
    10060, // connection attempt timed out [SqlClient]
    10928, // resource limit reached [SqlClient]
    10929, // resource limit: minimum guarantee not met [SqlClient]
    40143, // the service has encountered an error processing the request [SqlClient]
    40197, // service error processing the request (a failover) [SqlClient, Azure SQL]
    40501, // service busy [SqlClient, Azure SQL]
    40540, // the service has encountered an error processing the request [SqlClient]
    40613, // database unavailable (also: a serverless database resuming) [SqlClient, Azure SQL]
    42109, // the SQL pool is warming up [MSSQL: MSSQLSERVER_42109]
    49918, // not enough resources to process the request [SqlClient, Azure SQL]
    49919, // too many create/update operations [SqlClient, Azure SQL]
    49920, // too many operations in progress [SqlClient, Azure SQL]
];

/// The server refused to convert a reject's body itself, and only that: the one refusal that
/// storing the bodies escaped cures (`refusals`). 33557097 is what SQL Server-compatible
/// engines built on PostgreSQL (Babelfish) answer for a NUL character, "Failed to convert from
/// data type varbinary to varchar, invalid byte sequence for encoding ...: 0x00"; the same number
/// covers other errors there (a missing table), so the message must speak of the conversion too.
/// SQL Server and Synapse store any text in `nvarchar(max)` and have no such refusal.
pub const BODY_CONVERSION_ERRORS: &[(u32, &str)] = &[(33557097, "invalid byte sequence")];

pub fn is_body_conversion(number: u32, message: &str) -> bool {
    BODY_CONVERSION_ERRORS
        .iter()
        .any(|(n, words)| *n == number && message.contains(words))
}

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
        42119 => Some(
            "the free offer's monthly allowance is spent: the database is paused until the 1st",
        ),
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

/// What another attempt would meet. Transient as [`is_transient`] says; of the permanent ones, a
/// refused login, a missing database or table, a paused pool and a refused certificate name their
/// fix. Error 4060 ("cannot open database") is transient here (Azure SQL answers it during a
/// failover; Microsoft lists it among the transient errors); one met before this process ever
/// reached the database is judged by the caller ([`super::connection::TdsManager`]).
pub fn fault(error: &Error) -> Fault {
    match error {
        Error::Tls(_) => Fault::permanent(TLS_FIX),
        Error::Server(token) if is_free_allowance(Some(token.code()), token.message()) => {
            Fault::permanent(FREE_ALLOWANCE_FIX)
        }
        Error::Server(token)
            if token
                .message()
                .contains("Server identity is not configured") =>
        {
            Fault::permanent(SERVER_IDENTITY_FIX)
        }
        Error::Server(token) => fault_of_number(token.code()),
        _ if is_transient(error) => Fault::Transient,
        _ => Fault::SELF_EXPLAINED,
    }
}

/// [`fault`] of an error the server sent, by its number.
pub fn fault_of_number(number: u32) -> Fault {
    match number {
        n if is_transient_number(n) => Fault::Transient,
        n if is_login_number(n) => Fault::permanent(LOGIN_FIX),
        // SQL Server's "database does not exist" (and the development engine's, at login).
        911 => Fault::permanent(DATABASE_FIX),
        // "Invalid object name": a table the writer needs is missing.
        208 => Fault::permanent(TABLES_FIX),
        42108 => Fault::permanent(PAUSED_POOL_FIX),
        42119 => Fault::permanent(FREE_ALLOWANCE_FIX),
        // "Microsoft Entra service principals with Azure SQL": creating a user for an
        // application without the server's identity and its Graph permissions.
        33134 => Fault::permanent(SERVER_IDENTITY_FIX),
        _ => Fault::SELF_EXPLAINED,
    }
}

/// The server's message without tiberius' wrapping ("Token error: '...' on server X executing on
/// line 1 (code: ..., state: ..., class: ...)"); the SQL error number is reported beside it.
pub fn message(error: &Error) -> String {
    match error {
        Error::Server(token) => token.message().to_owned(),
        // Without the advice on tiberius' own API that follows the reason.
        Error::Tls(reason) => format!(
            "the TLS handshake failed: {}",
            crate::text::user_words(reason.split(". To connect anyway").next().unwrap_or(reason))
        ),
        // tiberius' bound on the login handshake; its text names its own API.
        Error::Io {
            kind: IoErrorKind::TimedOut,
            message,
        } if message.contains("handshake") => "the server accepted the connection but did not finish the login handshake in time (it may be starting, overloaded, or not a SQL server)".into(),
        // tiberius' bound on one command (SQL_COMMAND_TIMEOUT); its text names its own API.
        Error::Io {
            kind: IoErrorKind::TimedOut,
            message,
        } if message.contains("command_timeout") || message.contains("command result") => {
            let within = message
                .split_once("within ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .map(|bound| format!(", {bound}"))
                .unwrap_or_default();
            format!(
                "the server did not answer within SQL_COMMAND_TIMEOUT{within}; the connection is dropped (the server may still be working on the batch: it is retried, and what it wrote is counted then)"
            )
        }
        other => crate::text::user_words(&other.to_string()),
    }
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
    sql_error_number(error).is_some_and(is_login_number)
}

fn is_login_number(number: u32) -> bool {
    matches!(number, 18456 | 18452 | 18470 | 18486 | 18487 | 18488)
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
            42109,
        ] {
            assert!(is_transient_number(code), "{code}");
        }
        for code in [8152, 245, 8114, 2627, 102, 208, 18456, 42108, 33557097] {
            assert!(!is_transient_number(code), "{code}");
        }
    }

    #[test]
    fn the_numbers_sqlclient_and_azure_sql_call_transient_are_transient() {
        // "SqlConfigurableRetryFactory Class": the inner transient error list.
        let sqlclient = [
            1204, 1205, 1222, 49918, 49919, 49920, 4060, 4221, 40143, 40613, 40501, 40540, 40197,
            10929, 10928, 10060, 10054, 10053, 997, 233,
        ];
        // "Troubleshooting connectivity issues and other errors with Azure SQL Database and
        // Azure SQL Managed Instance": list of transient fault error codes.
        let azure_sql = [
            926, 4060, 40197, 40501, 40613, 49918, 49919, 49920, 4221, 615,
        ];
        for code in sqlclient.into_iter().chain(azure_sql) {
            assert_eq!(fault_of_number(code), Fault::Transient, "{code}");
        }
        let mut sorted = TRANSIENT_SQL_ERRORS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, TRANSIENT_SQL_ERRORS, "kept in order, each once");
    }

    #[test]
    fn a_paused_pool_names_its_fix_resume_the_pool() {
        let fault = fault_of_number(42108);
        assert!(fault.is_permanent());
        assert!(
            fault.fix().unwrap().contains("resume the pool"),
            "{fault:?}"
        );
    }

    #[test]
    fn only_the_refusal_of_a_body_s_conversion_is_a_body_conversion() {
        let nul = "Failed to convert from data type varbinary to varchar, invalid byte sequence for encoding \"WIN1252\": 0x00";
        assert!(is_body_conversion(33557097, nul));
        assert!(
            !is_body_conversion(33557097, "relation \"assets.x\" does not exist"),
            "the same number for a missing table"
        );
        for code in [8152, 2628, 245, 8114, 2627, 102, 208, 1205, 40613] {
            assert!(!is_body_conversion(code, nul), "{code}");
        }
    }

    #[test]
    fn a_refused_login_a_missing_database_or_table_and_a_refused_certificate_name_their_fix() {
        assert_eq!(fault_of_number(18456).fix(), Some(LOGIN_FIX));
        assert_eq!(fault_of_number(911).fix(), Some(DATABASE_FIX));
        assert_eq!(fault_of_number(208).fix(), Some(TABLES_FIX));
        assert_eq!(
            fault(&Error::Tls("unknown issuer".into())).fix(),
            Some(TLS_FIX)
        );
        assert_eq!(fault_of_number(8152), Fault::SELF_EXPLAINED);
        assert_eq!(fault(&Error::Protocol("bad".into())), Fault::SELF_EXPLAINED);
    }

    #[test]
    fn a_resuming_database_and_a_failover_stay_transient() {
        // 40613: an auto-paused Azure SQL serverless database while it resumes; 42109: a Synapse
        // pool warming up; 4060: a failover (before the first connection, see TdsManager).
        for code in [40613, 42109, 4060, 40501, 1205] {
            assert_eq!(fault_of_number(code), Fault::Transient, "{code}");
        }
        assert_eq!(fault(&io(IoErrorKind::ConnectionRefused)), Fault::Transient);
    }

    #[test]
    fn a_command_timeout_is_said_with_its_setting_not_the_library_s_api() {
        let error = Error::Io {
            kind: IoErrorKind::TimedOut,
            message: "the server did not send the next part of the command result within 10s (it may have stalled, or be responding too slowly for the configured bound); the connection is now out of sync and must be dropped. Adjust the bound with `Config::command_timeout`, or pass `None` to wait indefinitely.".into(),
        };
        let said = message(&error);
        assert!(
            !said.contains("Config::") && !said.contains("None"),
            "{said}"
        );
        assert!(
            said.starts_with("the server did not answer within SQL_COMMAND_TIMEOUT, 10s;"),
            "{said}"
        );
    }

    #[test]
    fn a_handshake_timeout_is_said_without_naming_the_library_s_api() {
        let error = Error::Io {
            kind: IoErrorKind::TimedOut,
            message: "the connection handshake (prelogin, TLS negotiation and login) did not complete within 15s; ... or change the bound with `Config::handshake_timeout`.".into(),
        };
        let said = message(&error);
        assert!(!said.contains("Config::"), "{said}");
        assert!(
            said.contains("did not finish the login handshake in time"),
            "{said}"
        );
    }

    #[test]
    fn a_spent_free_allowance_is_permanent_by_number_or_by_its_words() {
        assert!(is_free_allowance(Some(42119), ""));
        assert!(is_free_allowance(
            Some(40613),
            "This database has reached the monthly free amount allowance for the month of May 2026 and is paused for the remainder of the month."
        ));
        assert!(!is_free_allowance(
            Some(40613),
            "Database 'x' on server 'y' is not currently available."
        ));
        assert!(!is_free_allowance(None, ""));
        let fix = fault_of_number(42119).fix().unwrap().to_owned();
        for what in [
            "sqlDatabaseFreeOffer=BillOverUsage",
            "sqlDatabaseTier=Basic",
            "FETCH_SCHEDULE",
            "1st",
        ] {
            assert!(fix.contains(what), "{fix}");
        }
        assert!(meaning(42119).unwrap().contains("paused until the 1st"));
        assert_eq!(fault_of_number(33134).fix(), Some(SERVER_IDENTITY_FIX));
    }

    #[test]
    fn a_tls_failure_is_told_without_advice_on_tiberius_api() {
        let error = Error::Tls("the server's certificate was rejected: UnknownIssuer. To connect anyway you can: (1) trust ...".into());
        assert_eq!(
            message(&error),
            "the TLS handshake failed: the server's certificate was rejected: UnknownIssuer"
        );
    }

    #[test]
    fn a_message_other_than_the_server_s_is_the_error_s_own() {
        assert_eq!(
            message(&Error::Protocol("bad".into())),
            "Protocol error: bad"
        );
    }
}
