//! The names of the settings: every one the handler reads, and the ones renamed (read under their
//! old name too).

/// Every app setting the handler reads (secret values come through [`crate::secrets`]). The README's
/// configuration table and local.settings.json.example list exactly these; tests keep them in step.
/// The old names of renamed ones ([`RENAMED`]) are read too, and named in the README's rows.
pub const SETTINGS: &[&str] = &[
    "FUNCTIONS_CUSTOMHANDLER_PORT",
    "EVENT_HUB_NAME",
    "EVENT_HUB_CONSUMER_GROUP",
    "FETCH_SCHEDULE",
    "COINCAP_BASE_URL",
    "COINCAP_LIMIT",
    "COINCAP_IDS",
    "COINCAP_API_KEY",
    "KEY_VAULT_URL",
    "COINCAP_API_KEY_SECRET",
    "SQL_CONNECTION_STRING_SECRET",
    "SQL_CONNECTION_STRING",
    "SECRET_TTL",
    "AZURE_CLIENT_ID",
    "COINCAP_TIMEOUT",
    "COINCAP_MAX_RETRIES",
    "COINCAP_RETRY_BASE",
    "COINCAP_RETRY_BUDGET",
    "COINCAP_MONTHLY_CREDITS",
    "WAREHOUSE",
    "SQL_SERVER",
    "SQL_DATABASE",
    "SQL_POOL_SIZE",
    "SQL_COMMAND_TIMEOUT",
    "SQL_IDLE_TIMEOUT",
    "SQL_AUTO_PAUSE_DELAY",
    "SQL_BULK_LOAD",
    "RUST_LOG",
];

/// A setting that was renamed: `name` is read first, `old` when `name` is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renamed {
    pub name: &'static str,
    pub old: &'static str,
}

/// The hint for a setting read under its old name, the same from every command (`check` warns,
/// `local` prints it, `serve` and `init-warehouse` log it): the names only, never the value.
impl std::fmt::Display for Renamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is the old name of {}: rename it (it still works for now)",
            self.old, self.name
        )
    }
}

/// The warehouse settings were named after Synapse; the warehouse may as well be Azure SQL
/// Database or SQL Server. The new name wins; both set to different values stop start-up.
pub const RENAMED: &[Renamed] = &[
    Renamed {
        name: "SQL_CONNECTION_STRING_SECRET",
        old: "SYNAPSE_CONNECTION_STRING_SECRET",
    },
    Renamed {
        name: "SQL_CONNECTION_STRING",
        old: "SYNAPSE_CONNECTION_STRING",
    },
    Renamed {
        name: "SQL_SERVER",
        old: "SYNAPSE_SERVER",
    },
    Renamed {
        name: "SQL_DATABASE",
        old: "SYNAPSE_DATABASE",
    },
    Renamed {
        name: "SQL_POOL_SIZE",
        old: "SYNAPSE_POOL_SIZE",
    },
    Renamed {
        name: "SQL_COMMAND_TIMEOUT",
        old: "SYNAPSE_COMMAND_TIMEOUT",
    },
];
