//! Azure as a deployed Function App sees it, on this machine: the managed identity endpoint, Key
//! Vault over HTTPS (trusting a test CA) holding the given secrets, and CoinCap accepting the key
//! the vault holds; [`Azure::settings`] are the app settings that point the handler at them.

use super::coincap::CoinCap;
use super::identity::IdentityEndpoint;
use super::keyvault::KeyVault;
use super::tls::TestCa;

pub struct Azure {
    pub ca: TestCa,
    pub identity: IdentityEndpoint,
    pub vault: KeyVault,
    pub coincap: CoinCap,
}

impl Azure {
    /// The vault holds `secrets`; `coincap` accepts only `key` from now on.
    pub async fn start(secrets: &[(&str, &str)], coincap: CoinCap, key: &str) -> Self {
        let ca = TestCa::new();
        let identity = IdentityEndpoint::start().await;
        let vault = KeyVault::start(&ca, &identity.token, secrets).await;
        coincap.set_keys(&[key]);
        Self {
            ca,
            identity,
            vault,
            coincap,
        }
    }

    /// The settings a Function App gives the handler, plus the test CA.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KEY_VAULT_URL", self.vault.url.clone()),
            ("IDENTITY_ENDPOINT", self.identity.endpoint.clone()),
            ("IDENTITY_HEADER", self.identity.header.clone()),
            ("SSL_CERT_FILE", self.ca.ca_file.display().to_string()),
            ("COINCAP_BASE_URL", self.coincap.url.clone()),
            ("COINCAP_RETRY_BASE", "10ms".into()),
        ]
    }

    /// The `Authorization` header of every call CoinCap received, in order.
    pub fn coincap_authorizations(&self) -> Vec<String> {
        self.coincap
            .seen()
            .into_iter()
            .map(|seen| seen.authorization.unwrap_or_default())
            .collect()
    }
}
