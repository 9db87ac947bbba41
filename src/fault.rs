//! What a failure means to whoever would try again: [`Fault::Transient`] (another attempt may
//! pass) or [`Fault::Permanent`] (every attempt fails the same way until someone changes a
//! setting, a secret or the warehouse; it says what). Each layer classifies its own errors; a
//! failed invocation carries the verdict in its JSON body ([`Fault::KEY`]), where the local runner
//! reads it. The Functions host ignores that body and retries either way.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Fault {
    /// Weather: a lost connection, a busy or resuming server, a rate limit.
    Transient,
    /// A refused login or key, a missing database, table or secret, an unknown host name, an
    /// untrusted certificate. `fix` names what to change (a setting, a secret, a command) when the
    /// error's own message does not already say it.
    Permanent {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fix: Option<String>,
    },
}

impl Fault {
    /// The key of a failed invocation's body that holds the verdict.
    pub const KEY: &'static str = "fault";

    /// Permanent, with what to change.
    pub fn permanent(fix: impl Into<String>) -> Self {
        Self::Permanent {
            fix: Some(fix.into()),
        }
    }

    /// Permanent, where the error's message already says what to change.
    pub const SELF_EXPLAINED: Self = Self::Permanent { fix: None };

    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent { .. })
    }

    pub fn fix(&self) -> Option<&str> {
        match self {
            Self::Permanent { fix } => fix.as_deref(),
            Self::Transient => None,
        }
    }

    /// A failure and what to change, when the error does not already say it: `error. Fix: fix`.
    pub fn detail(&self, error: impl std::fmt::Display) -> String {
        match self.fix() {
            Some(fix) => format!("{error}. Fix: {fix}"),
            None => error.to_string(),
        }
    }

    /// The verdict as it travels in a failed invocation's body.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The verdict of a failed invocation's body; a body without one (another handler, a proxy's
    /// error page) is transient: the host's retry policy applies, as it would.
    pub fn of_body(body: &serde_json::Value) -> Self {
        Self::deserialize(&body[Self::KEY]).unwrap_or(Self::Transient)
    }
}

/// A limit of a plan or an offer that a failure says was reached. A failed invocation's line names
/// it (`limit=<key>`), so the queries, the workbook and an operator see which limit stopped the
/// pipeline, not only that rows are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// CoinCap's credits are spent (HTTP 402, or a 429 whose body says so).
    CoinCapCredits,
    /// CoinCap's rate limit (HTTP 429 that does not mention credits).
    CoinCapRateLimit,
    /// The Azure SQL Database free offer's monthly allowance is spent, and the database is paused
    /// until the 1st (`freeLimitExhaustionBehavior=AutoPause`).
    SqlFreeAllowance,
}

impl Limit {
    /// The value of the `limit=` key.
    pub fn key(self) -> &'static str {
        match self {
            Self::CoinCapCredits => "coincap_credits",
            Self::CoinCapRateLimit => "coincap_rate_limit",
            Self::SqlFreeAllowance => "sql_free_allowance",
        }
    }

    pub const ALL: [Self; 3] = [
        Self::CoinCapCredits,
        Self::CoinCapRateLimit,
        Self::SqlFreeAllowance,
    ];
}

/// Whether an I/O error's text says a host name could not be resolved, and if so whether the
/// resolver called it temporary (glibc's "Temporary failure in name resolution", musl's "Try
/// again": EAI_AGAIN) rather than unknown ("Name or service not known", "Name does not resolve":
/// EAI_NONAME). The standard library reports both only as text: "failed to lookup address
/// information: <gai_strerror>".
pub fn name_resolution(text: &str) -> Option<NameResolution> {
    let at = text.find("failed to lookup address information")?;
    let detail = &text[at..];
    Some(
        if detail.contains("Temporary failure") || detail.contains("Try again") {
            NameResolution::Temporary
        } else {
            NameResolution::Unknown
        },
    )
}

/// What the resolver said of a host name it could not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameResolution {
    /// No such name (a typo, or a resource that does not exist).
    Unknown,
    /// The resolver could not answer now (no network, a DNS hiccup).
    Temporary,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_verdict_travels_in_the_body_and_its_absence_is_transient() {
        let fault = Fault::permanent("set COINCAP_API_KEY");
        let body = json!({"error": "x", "fault": fault.to_json()});
        assert_eq!(
            body["fault"],
            json!({"kind": "permanent", "fix": "set COINCAP_API_KEY"})
        );
        assert_eq!(Fault::of_body(&body), fault);
        assert_eq!(
            Fault::of_body(&json!({"fault": {"kind": "transient"}})),
            Fault::Transient
        );
        assert_eq!(
            Fault::of_body(&json!({"fault": Fault::SELF_EXPLAINED.to_json()})),
            Fault::SELF_EXPLAINED
        );
        assert_eq!(Fault::of_body(&json!({"error": "x"})), Fault::Transient);
        assert_eq!(Fault::of_body(&json!("a proxy's page")), Fault::Transient);
    }

    #[test]
    fn an_unknown_host_name_is_told_from_a_resolver_that_cannot_answer_now() {
        let glibc = "cannot reach nosuch.example:1433: failed to lookup address information: Name or service not known";
        assert_eq!(name_resolution(glibc), Some(NameResolution::Unknown));
        let musl = "dns error: failed to lookup address information: Name does not resolve";
        assert_eq!(name_resolution(musl), Some(NameResolution::Unknown));
        let offline = "failed to lookup address information: Temporary failure in name resolution";
        assert_eq!(name_resolution(offline), Some(NameResolution::Temporary));
        let musl_offline = "failed to lookup address information: Try again";
        assert_eq!(
            name_resolution(musl_offline),
            Some(NameResolution::Temporary)
        );
        assert_eq!(name_resolution("Connection refused (os error 111)"), None);
    }
}
