//! How a step of `init-warehouse` fails: what it was doing, why, and what to change. The steps
//! before it were already reported as they were done.

use crate::warehouse::sql::connection::ConnectError;

/// What to change when the server cannot create a user from Microsoft Entra ID.
pub const ENTRA_FIX: &str = "this server has no Microsoft Entra principals (SQL Server without Entra authentication, or a development engine), or this login is not its Entra administrator. Leave out --app-identity here and give the app a SQL login of its own in SQL_CONNECTION_STRING, with the grants of sql/grant_app_identity.sql; on Azure, run it again signed in as the server's Entra administrator";

/// A step of `init-warehouse` that failed; the steps before it were reported as they were done.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed: {}", explained(.error, .fix.as_deref()))]
pub struct InitError {
    /// What it was doing: `creating table assets.x`.
    pub step: String,
    pub error: Box<InitCause>,
    /// What to change, when the cause does not say it.
    pub fix: Option<String>,
}

/// Why a step failed: the server or connection, or a refusal of ours.
#[derive(Debug, thiserror::Error)]
pub enum InitCause {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    Refused(String),
}

/// `error. Fix: fix`, the step's own fix first.
fn explained(error: &InitCause, fix: Option<&str>) -> String {
    let fault_fix = match error {
        InitCause::Connect(error) => error.fault().fix().map(str::to_owned),
        InitCause::Refused(_) => None,
    };
    match fix.map(str::to_owned).or(fault_fix) {
        Some(fix) => format!("{error}. Fix: {fix}"),
        None => error.to_string(),
    }
}

/// A step's result, named for its error.
pub(super) trait Step<T> {
    fn step(self, step: &str) -> Result<T, InitError>;
}

impl<T> Step<T> for Result<T, ConnectError> {
    fn step(self, step: &str) -> Result<T, InitError> {
        self.map_err(|error| InitError {
            step: step.to_owned(),
            error: Box::new(error.into()),
            fix: None,
        })
    }
}
