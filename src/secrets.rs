//! Where secrets come from ([`SecretSource`]) and the [`Secret`] type that never prints its value.
//!
//! Today secrets come from environment variables ([`EnvSecrets`]); Key Vault through the managed
//! identity is a second implementation of the same trait.

use std::fmt;

use crate::BoxFuture;

/// A secret value. `Debug` and `Display` print `[REDACTED]`; only [`Secret::expose`] reveals it,
/// at the one place it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// The secrets the handler uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretName {
    CoinCapApiKey,
    SynapseConnectionString,
}

impl SecretName {
    /// The environment variable read when secrets come from the environment.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::CoinCapApiKey => "COINCAP_API_KEY",
            Self::SynapseConnectionString => "SYNAPSE_CONNECTION_STRING",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name:?} is not set: set the environment variable {var}")]
    NotInEnvironment { name: SecretName, var: &'static str },
}

/// A source of secrets. Implementations cache as they see fit; [`SecretSource::invalidate`] tells
/// them a value was refused (a rotated key), so the next `get` fetches it anew.
pub trait SecretSource: Send + Sync {
    fn get(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>>;

    fn invalidate(&self, _name: SecretName) {}

    /// Where secrets come from, for start-up logs (`environment`, `Key Vault https://...`).
    fn describe(&self) -> String;
}

/// Secrets from environment variables, read at every `get` (nothing to cache or invalidate).
#[derive(Debug, Default, Clone)]
pub struct EnvSecrets;

impl SecretSource for EnvSecrets {
    fn get(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>> {
        let var = name.env_var();
        let value = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
        Box::pin(async move {
            value
                .map(Secret::new)
                .ok_or(SecretError::NotInEnvironment { name, var })
        })
    }

    fn describe(&self) -> String {
        "environment variables".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[REDACTED]");
        assert_eq!(format!("{secret}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some([REDACTED])");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_missing_secret_names_the_variable_to_set() {
        let error = SecretError::NotInEnvironment {
            name: SecretName::CoinCapApiKey,
            var: "COINCAP_API_KEY",
        };
        assert_eq!(
            error.to_string(),
            "secret CoinCapApiKey is not set: set the environment variable COINCAP_API_KEY"
        );
    }
}
