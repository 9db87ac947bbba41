//! Secrets from Azure Key Vault, with the managed identity in Azure and the developer's
//! `az login` elsewhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, StatusCode, Url};
use azure_identity::{
    DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId,
};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};

use super::cache::Fetch;
use super::{Secret, SecretError, SecretName, VaultNames, VaultSecretName};
use crate::BoxFuture;

/// Which credential gets the vault's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The Function App's managed identity: the platform sets `IDENTITY_ENDPOINT` (and
    /// `IDENTITY_HEADER`). With a client id, that user-assigned identity; else the system-assigned one.
    Managed { client_id: Option<String> },
    /// Azure CLI, then Azure Developer CLI: a developer machine after `az login`.
    DeveloperTools,
}

impl Identity {
    /// `platform` reads the variables the platform sets (the process environment in production).
    pub fn detect(platform: impl Fn(&str) -> Option<String>, client_id: Option<&str>) -> Self {
        if platform("IDENTITY_ENDPOINT").is_some_and(|v| !v.trim().is_empty()) {
            Self::Managed {
                client_id: client_id.map(str::to_owned),
            }
        } else {
            Self::DeveloperTools
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::Managed { client_id: None } => "system-assigned managed identity",
            Self::Managed { client_id: Some(_) } => "user-assigned managed identity",
            Self::DeveloperTools => "developer tools credential (az login)",
        }
    }

    fn credential(&self) -> azure_core::Result<Arc<dyn TokenCredential>> {
        Ok(match self {
            Self::Managed { client_id } => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options: client_options(),
                }))?
            }
            Self::DeveloperTools => DeveloperToolsCredential::new(None)?,
        })
    }
}

/// Fewer and shorter retries than the SDK's default (8 retries over up to a minute): a fetch
/// happens inside an invocation, and a vault outage is covered by the cache anyway.
fn client_options() -> ClientOptions {
    ClientOptions {
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(200),
            max_retries: 3,
            max_total_elapsed: azure_core::time::Duration::seconds(10),
            max_delay: azure_core::time::Duration::seconds(2),
        }),
        ..ClientOptions::default()
    }
}

/// Entra access tokens from the same credential the vault uses: passwordless SQL login
/// (scope `https://database.windows.net/.default`). The credential caches tokens until shortly
/// before they expire, so "a fresh token per connection" costs no extra request.
pub struct EntraTokens {
    credential: Arc<dyn TokenCredential>,
    identity: Identity,
}

impl EntraTokens {
    pub fn new(client_id: Option<&str>) -> Result<Self, SecretError> {
        let identity = Identity::detect(|var| std::env::var(var).ok(), client_id);
        let credential = identity.credential().map_err(|error| SecretError::Setup {
            vault: "Entra ID".into(),
            reason: format!("{}: {}", identity.describe(), describe(&error)),
        })?;
        Ok(Self {
            credential,
            identity,
        })
    }
}

impl super::TokenSource for EntraTokens {
    fn token(&self, scope: &'static str) -> BoxFuture<'_, Result<Secret, String>> {
        Box::pin(async move {
            self.credential
                .get_token(&[scope], None)
                .await
                .map(|token| Secret::new(token.token.secret()))
                .map_err(|error| format!("{}: {}", self.identity.describe(), describe(&error)))
        })
    }
}

/// The vault checks that the resource in its 401 challenge matches its own host
/// (`*.vault.azure.net` for `https://vault.azure.net`), so a spoofed vault cannot collect a
/// token. A stand-in on this machine cannot match, so only there the check is off.
pub fn verify_challenge_resource(vault: &Url) -> bool {
    !matches!(vault.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// One vault, read with one credential.
pub struct KeyVault {
    client: SecretClient,
    url: String,
    names: VaultNames,
    identity: Identity,
    /// The vault name each secret was last read under (its name, or its fallback).
    read_as: Mutex<HashMap<SecretName, VaultSecretName>>,
}

impl KeyVault {
    /// Chooses the credential from the process environment (see [`Identity::detect`]).
    pub fn new(url: &Url, names: VaultNames, client_id: Option<&str>) -> Result<Self, SecretError> {
        let identity = Identity::detect(|var| std::env::var(var).ok(), client_id);
        let setup = |error: azure_core::Error| SecretError::Setup {
            vault: url.to_string(),
            reason: format!("{}: {}", identity.describe(), describe(&error)),
        };
        let credential = identity.credential().map_err(setup)?;
        let options = SecretClientOptions {
            client_options: client_options(),
            verify_challenge_resource: Some(verify_challenge_resource(url)),
            ..SecretClientOptions::default()
        };
        let client = SecretClient::new(url.as_str(), credential, Some(options)).map_err(setup)?;
        Ok(Self {
            client,
            url: url.to_string(),
            names,
            identity,
            read_as: Mutex::new(HashMap::new()),
        })
    }

    /// The secret under its configured name; when the vault has none by that name and the
    /// secret has a fallback (its old default name), under that one.
    async fn fetch_secret(&self, name: SecretName) -> Result<Secret, SecretError> {
        let primary = self.names.get(name);
        let result = match (
            self.fetch_named(name, primary).await,
            self.names.fallback(name),
        ) {
            (Err(SecretError::NotInVault { .. }), Some(fallback)) => {
                match self.fetch_named(name, fallback).await {
                    Ok(secret) => Ok((secret, fallback)),
                    // Neither exists: name the one to create, the current default.
                    Err(SecretError::NotInVault { .. }) => Err(SecretError::NotInVault {
                        vault: self.url.clone(),
                        secret: primary.clone(),
                        setting: name.vault_name_setting(),
                    }),
                    Err(error) => Err(error),
                }
            }
            (result, _) => result.map(|secret| (secret, primary)),
        };
        let (secret, read_as) = result?;
        let previous = lock(&self.read_as).insert(name, read_as.clone());
        if read_as != primary && previous.as_ref() != Some(read_as) {
            tracing::warn!(
                secret = %read_as,
                rename_to = %primary,
                "Secret read under its old default name; rename it in the vault."
            );
        }
        Ok(secret)
    }

    async fn fetch_named(
        &self,
        name: SecretName,
        secret: &VaultSecretName,
    ) -> Result<Secret, SecretError> {
        let secret = secret.clone();
        let failed = |reason: String| SecretError::Vault {
            vault: self.url.clone(),
            secret: secret.clone(),
            reason,
        };
        let denied = |reason: String| SecretError::Denied {
            vault: self.url.clone(),
            secret: secret.clone(),
            reason,
        };
        let response = match self.client.get_secret(secret.as_str(), None).await {
            Ok(response) => response,
            Err(error) if error.http_status() == Some(StatusCode::NotFound) => {
                return Err(SecretError::NotInVault {
                    vault: self.url.clone(),
                    secret,
                    setting: name.vault_name_setting(),
                });
            }
            Err(error) if error.http_status() == Some(StatusCode::Forbidden) => {
                return Err(denied(format!(
                    "{} (grant the {} the role Key Vault Secrets User on this vault)",
                    describe(&error),
                    self.identity.describe()
                )));
            }
            Err(error) if matches!(error.kind(), ErrorKind::Credential) => {
                return Err(denied(format!(
                    "cannot get a token with the {}: {}",
                    self.identity.describe(),
                    describe(&error)
                )));
            }
            Err(error) => return Err(failed(describe(&error))),
        };
        // Not the deserializer's message: it may quote the body, and the body holds the value.
        let model = response
            .into_model()
            .map_err(|_| failed("the vault's answer is not a secret bundle".into()))?;
        match model.value {
            Some(value) if !value.is_empty() => Ok(Secret::new(value)),
            _ => Err(failed("the secret has no value".into())),
        }
    }
}

impl Fetch for KeyVault {
    fn fetch(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>> {
        Box::pin(self.fetch_secret(name))
    }

    fn describe(&self) -> String {
        format!(
            "Key Vault {} with the {}",
            self.url,
            self.identity.describe()
        )
    }

    fn origin(&self, name: SecretName) -> String {
        let read_as = lock(&self.read_as).get(&name).cloned();
        let secret = read_as.unwrap_or_else(|| self.names.get(name).clone());
        format!("Key Vault {} secret \"{secret}\"", self.url)
    }
}

/// A poisoned lock only means another thread panicked while holding it; the map is still valid.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An SDK error in one line: its `Display` and those of its causes (the TLS or connection error
/// that explains it is often two levels down). Never `Debug`: it prints pages of backtrace. An
/// answer that could not be converted is said so, not quoted, since serde quotes the input.
fn describe(error: &azure_core::Error) -> String {
    if matches!(error.kind(), ErrorKind::DataConversion) {
        return "Azure's answer could not be read: it is not what Azure sends".into();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    crate::text::user_words(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_managed_identity_is_used_when_the_platform_provides_one() {
        let azure = platform(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41234/msi/token"),
            ("IDENTITY_HEADER", "x"),
        ]);
        assert_eq!(
            Identity::detect(&azure, None),
            Identity::Managed { client_id: None }
        );
        assert_eq!(
            Identity::detect(&azure, Some("0b4a1a4e-0000-4000-8000-000000000000")),
            Identity::Managed {
                client_id: Some("0b4a1a4e-0000-4000-8000-000000000000".into())
            }
        );
    }

    #[test]
    fn a_developer_machine_uses_the_developer_tools_credential() {
        assert_eq!(
            Identity::detect(platform(&[]), Some("ignored")),
            Identity::DeveloperTools
        );
        assert_eq!(
            Identity::detect(platform(&[("IDENTITY_ENDPOINT", "")]), None),
            Identity::DeveloperTools
        );
    }

    #[test]
    fn the_challenge_resource_check_is_off_only_for_a_vault_on_this_machine() {
        let url = |text| Url::parse(text).unwrap();
        assert!(verify_challenge_resource(&url(
            "https://kv-coincap.vault.azure.net/"
        )));
        assert!(verify_challenge_resource(&url(
            "https://localhost.attacker.example/"
        )));
        assert!(!verify_challenge_resource(&url("https://localhost:8443/")));
        assert!(!verify_challenge_resource(&url("https://127.0.0.1:8443/")));
    }

    #[test]
    fn an_answer_that_could_not_be_read_is_said_so_without_the_library_s_kind_or_the_answer() {
        let error = azure_core::Error::with_message(
            ErrorKind::DataConversion,
            "expected value at line 1 column 1: {\"value\":\"s3cr3t\"",
        );
        assert_eq!(
            describe(&error),
            "Azure's answer could not be read: it is not what Azure sends"
        );
    }

    #[test]
    fn an_sdk_error_is_described_with_its_causes_in_one_line() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = azure_core::Error::with_error(ErrorKind::Io, io, "cannot send the request");
        assert_eq!(
            describe(&error),
            "cannot send the request: connection refused"
        );
    }
}
