//! Where secrets come from ([`SecretSource`]) and the [`Secret`] type that never prints its value.
//!
//! In Azure secrets come from Key Vault through the managed identity ([`keyvault::KeyVault`]
//! behind a [`cache::CachedSecrets`]); without `KEY_VAULT_URL` they come from environment
//! variables ([`EnvSecrets`]), for local runs. [`source`] picks one from the settings.

pub mod cache;
pub mod keyvault;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::BoxFuture;
use crate::fault::{Fault, NameResolution, name_resolution};

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

/// Where secrets come from: names and addresses only, never values.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretsConfig {
    /// `KEY_VAULT_URL`; without it secrets come from environment variables.
    pub key_vault_url: Option<Url>,
    pub vault_names: VaultNames,
    /// The environment variable each secret is read from when secrets come from the environment.
    pub env_vars: EnvVars,
    /// `SECRET_TTL`: how long a fetched secret is used before it is fetched again.
    pub ttl: Duration,
    /// `AZURE_CLIENT_ID`: the user-assigned managed identity to use, if not the system-assigned one.
    pub azure_client_id: Option<String>,
}

/// The secrets the handler uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretName {
    CoinCapApiKey,
    /// The SQL warehouse's connection string (Azure SQL Database, a Synapse dedicated pool or SQL
    /// Server), when its login is not passwordless.
    SqlConnectionString,
}

impl SecretName {
    pub const ALL: [SecretName; 2] = [Self::CoinCapApiKey, Self::SqlConnectionString];

    /// What the secret is, for sentences.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CoinCapApiKey => "CoinCap API key",
            Self::SqlConnectionString => "SQL warehouse's connection string",
        }
    }

    /// The environment variable read when secrets come from the environment (the settings may
    /// name an older one instead: `EnvVars`).
    pub fn env_var(self) -> &'static str {
        match self {
            Self::CoinCapApiKey => "COINCAP_API_KEY",
            Self::SqlConnectionString => "SQL_CONNECTION_STRING",
        }
    }

    /// The setting that names this secret in Key Vault.
    pub fn vault_name_setting(self) -> &'static str {
        match self {
            Self::CoinCapApiKey => "COINCAP_API_KEY_SECRET",
            Self::SqlConnectionString => "SQL_CONNECTION_STRING_SECRET",
        }
    }

    /// The Key Vault secret name used when [`SecretName::vault_name_setting`] is unset.
    pub fn default_vault_name(self) -> &'static str {
        match self {
            Self::CoinCapApiKey => "coincap-api-key",
            Self::SqlConnectionString => "sql-connection-string",
        }
    }

    /// The default name this secret had before the SQL settings were renamed. Read when the vault
    /// lacks [`SecretName::default_vault_name`] and no setting names the secret, so a vault set up
    /// for an earlier version keeps working.
    pub fn old_default_vault_name(self) -> Option<&'static str> {
        match self {
            Self::CoinCapApiKey => None,
            Self::SqlConnectionString => Some("synapse-connection-string"),
        }
    }
}

/// The name of a secret in Key Vault: 1 to 127 ASCII letters, digits and dashes, as the vault
/// accepts them. Parsed at start-up so a typo in a setting fails there, not at the first fetch
/// (the name also goes into the request path, where a `/` or `?` would change its meaning).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VaultSecretName(String);

impl VaultSecretName {
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = (1..=127).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err("a Key Vault secret name is 1 to 127 letters, digits and dashes".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VaultSecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Key Vault name of each secret (`COINCAP_API_KEY_SECRET`, `SQL_CONNECTION_STRING_SECRET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultNames {
    pub coincap_api_key: VaultSecretName,
    pub sql_connection_string: VaultSecretName,
    /// Read when the vault lacks `sql_connection_string`: the old default name, when no setting
    /// names the secret ([`SecretName::old_default_vault_name`]).
    pub sql_connection_string_fallback: Option<VaultSecretName>,
}

impl VaultNames {
    pub fn get(&self, name: SecretName) -> &VaultSecretName {
        match name {
            SecretName::CoinCapApiKey => &self.coincap_api_key,
            SecretName::SqlConnectionString => &self.sql_connection_string,
        }
    }

    /// The name read when the vault has no secret named [`VaultNames::get`].
    pub fn fallback(&self, name: SecretName) -> Option<&VaultSecretName> {
        match name {
            SecretName::CoinCapApiKey => None,
            SecretName::SqlConnectionString => self.sql_connection_string_fallback.as_ref(),
        }
    }
}

/// The environment variable each secret is read from without a vault: its name, or the old name
/// of a renamed one when only that is set (the settings decide, from their list of renamed ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVars {
    pub coincap_api_key: &'static str,
    pub sql_connection_string: &'static str,
}

impl EnvVars {
    pub fn get(&self, name: SecretName) -> &'static str {
        match name {
            SecretName::CoinCapApiKey => self.coincap_api_key,
            SecretName::SqlConnectionString => self.sql_connection_string,
        }
    }
}

impl Default for EnvVars {
    fn default() -> Self {
        Self {
            coincap_api_key: SecretName::CoinCapApiKey.env_var(),
            sql_connection_string: SecretName::SqlConnectionString.env_var(),
        }
    }
}

/// Why a secret could not be had. Every variant names where it was looked for and never holds a
/// value: these messages go to logs and to the host in error bodies.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretError {
    #[error("{var} is not set: set it to the {}", name.describe())]
    NotInEnvironment { name: SecretName, var: &'static str },
    #[error(
        "secret \"{secret}\" does not exist in Key Vault {vault}: create it (az keyvault secret set --vault-name <vault> --name {secret} --value ...) or set {setting} to its name"
    )]
    NotInVault {
        vault: String,
        secret: VaultSecretName,
        setting: &'static str,
    },
    /// The vault could not be read now (unreachable, busy, an answer it could not give).
    #[error("cannot read secret \"{secret}\" from Key Vault {vault}: {reason}")]
    Vault {
        vault: String,
        secret: VaultSecretName,
        reason: String,
    },
    /// The vault or Entra ID refused the identity: no token, or no role on the vault. The reason
    /// says what to grant or whom to sign in as.
    #[error("cannot read secret \"{secret}\" from Key Vault {vault}: {reason}")]
    Denied {
        vault: String,
        secret: VaultSecretName,
        reason: String,
    },
    #[error("cannot use Key Vault {vault}: {reason}")]
    Setup { vault: String, reason: String },
}

impl SecretError {
    /// Whether reading again can help: a secret that is not set or not in the vault, a refused
    /// identity and a vault that cannot be used stay so until someone changes something (each
    /// message says what); a vault that did not answer may answer next time, unless its host
    /// name does not resolve or its certificate was refused.
    pub fn fault(&self) -> Fault {
        match self {
            Self::NotInEnvironment { .. } | Self::NotInVault { .. } | Self::Denied { .. } => {
                Fault::SELF_EXPLAINED
            }
            Self::Setup { .. } => Fault::permanent(
                "sign in with `az login` on this machine; in Azure the Function App's managed identity reads the vault",
            ),
            Self::Vault { reason, .. } => match name_resolution(reason) {
                Some(NameResolution::Unknown) => {
                    Fault::permanent("check KEY_VAULT_URL: its host name does not resolve")
                }
                _ if reason.contains("certificate") => {
                    Fault::permanent("check KEY_VAULT_URL: the vault's TLS certificate was refused")
                }
                _ => Fault::Transient,
            },
        }
    }
}

/// A source of secrets. Implementations cache as they see fit; [`SecretSource::invalidate`] tells
/// them a value was refused (a rotated key), so the next `get` fetches it anew.
pub trait SecretSource: Send + Sync {
    fn get(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>>;

    fn invalidate(&self, _name: SecretName) {}

    /// Where secrets come from, for start-up logs (`environment`, `Key Vault https://...`).
    fn describe(&self) -> String;

    /// Where this secret's value was read, for errors about the value (never the value itself):
    /// `environment variable SQL_CONNECTION_STRING`, `Key Vault secret "sql-connection-string"`.
    fn origin(&self, name: SecretName) -> String {
        format!("secret {name:?}")
    }
}

/// Access tokens for passwordless login to the SQL warehouse (the managed identity in Azure, the
/// developer's `az login` on a laptop): the same Entra credential Key Vault is read with.
pub trait TokenSource: Send + Sync {
    fn token(&self, scope: &'static str) -> BoxFuture<'_, Result<Secret, String>>;
}

/// The source the settings ask for: Key Vault (cached, `SECRET_TTL`) when `KEY_VAULT_URL` is set,
/// else environment variables. Serve and local both build theirs here, so they cannot differ.
pub fn source(config: &SecretsConfig) -> Result<Arc<dyn SecretSource>, SecretError> {
    match &config.key_vault_url {
        Some(url) => {
            let vault = keyvault::KeyVault::new(
                url,
                config.vault_names.clone(),
                config.azure_client_id.as_deref(),
            )?;
            Ok(Arc::new(cache::CachedSecrets::new(vault, config.ttl)))
        }
        None => Ok(Arc::new(EnvSecrets {
            vars: config.env_vars.clone(),
        })),
    }
}

/// The Entra credential for tokens: the managed identity (user-assigned with `AZURE_CLIENT_ID`)
/// when the platform provides one, else the developer tools credential.
pub fn entra_tokens(config: &SecretsConfig) -> Result<Arc<dyn TokenSource>, SecretError> {
    Ok(Arc::new(keyvault::EntraTokens::new(
        config.azure_client_id.as_deref(),
    )?))
}

/// Secrets from environment variables, read at every `get` (nothing to cache or invalidate).
#[derive(Debug, Default, Clone)]
pub struct EnvSecrets {
    vars: EnvVars,
}

impl SecretSource for EnvSecrets {
    fn get(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>> {
        let var = self.vars.get(name);
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

    fn origin(&self, name: SecretName) -> String {
        format!("environment variable {}", self.vars.get(name))
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
            "COINCAP_API_KEY is not set: set it to the CoinCap API key"
        );
    }

    #[test]
    fn a_secret_missing_from_the_vault_names_the_vault_the_secret_and_the_setting() {
        let error = SecretError::NotInVault {
            vault: "https://kv-coincap.vault.azure.net/".into(),
            secret: VaultSecretName::parse("coincap-api-key").unwrap(),
            setting: "COINCAP_API_KEY_SECRET",
        };
        let text = error.to_string();
        assert!(
            text.contains("https://kv-coincap.vault.azure.net/"),
            "{text}"
        );
        assert!(text.contains("\"coincap-api-key\""), "{text}");
        assert!(text.contains("COINCAP_API_KEY_SECRET"), "{text}");
    }

    #[test]
    fn a_missing_or_refused_secret_is_permanent_and_an_unanswered_read_is_transient() {
        let secret = VaultSecretName::parse("coincap-api-key").unwrap();
        let vault = "https://kv-coincap.vault.azure.net/".to_owned();
        let denied = SecretError::Denied {
            vault: vault.clone(),
            secret: secret.clone(),
            reason: "Forbidden (grant the system-assigned managed identity the role Key Vault Secrets User on this vault)".into(),
        };
        assert_eq!(denied.fault(), Fault::SELF_EXPLAINED);
        let missing = SecretError::NotInEnvironment {
            name: SecretName::CoinCapApiKey,
            var: "COINCAP_API_KEY",
        };
        assert!(missing.fault().is_permanent());
        let unreachable = SecretError::Vault {
            vault: vault.clone(),
            secret: secret.clone(),
            reason: "connection refused".into(),
        };
        assert_eq!(unreachable.fault(), Fault::Transient);
        let unknown = SecretError::Vault {
            vault,
            secret,
            reason: "failed to lookup address information: Name or service not known".into(),
        };
        assert!(unknown.fault().fix().unwrap().contains("KEY_VAULT_URL"));
    }

    #[test]
    fn vault_secret_names_are_letters_digits_and_dashes() {
        assert!(VaultSecretName::parse("coincap-api-key").is_ok());
        assert!(VaultSecretName::parse("Key2").is_ok());
        assert!(VaultSecretName::parse(&"a".repeat(127)).is_ok());
        assert!(VaultSecretName::parse("").is_err());
        assert!(VaultSecretName::parse(&"a".repeat(128)).is_err());
        assert!(VaultSecretName::parse("coincap_api_key").is_err());
        assert!(VaultSecretName::parse("a/../b").is_err());
        assert!(VaultSecretName::parse("key?x=1").is_err());
    }

    #[test]
    fn every_secret_has_its_own_variable_setting_and_vault_name() {
        let vars: std::collections::HashSet<_> = SecretName::ALL.map(SecretName::env_var).into();
        let settings: std::collections::HashSet<_> =
            SecretName::ALL.map(SecretName::vault_name_setting).into();
        assert_eq!(vars.len(), SecretName::ALL.len());
        assert_eq!(settings.len(), SecretName::ALL.len());
        for name in SecretName::ALL {
            assert!(VaultSecretName::parse(name.default_vault_name()).is_ok());
            if let Some(old) = name.old_default_vault_name() {
                assert!(VaultSecretName::parse(old).is_ok());
                assert_ne!(old, name.default_vault_name());
            }
        }
    }

    #[test]
    fn environment_secrets_say_which_variable_they_read() {
        let secrets = EnvSecrets {
            vars: EnvVars {
                sql_connection_string: "SYNAPSE_CONNECTION_STRING",
                ..EnvVars::default()
            },
        };
        assert_eq!(
            secrets.origin(SecretName::SqlConnectionString),
            "environment variable SYNAPSE_CONNECTION_STRING"
        );
        assert_eq!(
            secrets.origin(SecretName::CoinCapApiKey),
            "environment variable COINCAP_API_KEY"
        );
    }
}
