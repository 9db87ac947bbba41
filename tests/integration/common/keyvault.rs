//! An Azure Key Vault on `https://localhost:<port>/`, speaking the secrets REST protocol: a
//! request without the expected bearer token gets 401 and the `WWW-Authenticate` challenge, a
//! known secret its bundle, a missing one 404 `SecretNotFound`. Records every request it sees.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::tls::TestCa;

/// The challenge a real vault sends (public cloud, Microsoft's tenant in the docs' examples).
pub const CHALLENGE: &str = r#"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#;

/// One request as the vault saw it.
#[derive(Debug, Clone)]
pub struct VaultRequest {
    pub secret: String,
    pub authorization: Option<String>,
    pub api_version: Option<String>,
}

struct Inner {
    url: String,
    /// The only token accepted: the one the identity endpoint mints.
    token: String,
    /// name -> (value, version)
    secrets: HashMap<String, (String, u32)>,
    seen: Vec<VaultRequest>,
}

#[derive(Clone)]
pub struct KeyVault {
    /// The value for `KEY_VAULT_URL`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    handshake_failures: Arc<Mutex<Vec<String>>>,
}

impl KeyVault {
    /// A vault served over HTTPS with a certificate from `ca`, accepting only `token`.
    pub async fn start(ca: &TestCa, token: &str, secrets: &[(&str, &str)]) -> Self {
        let listener = ca.listener().await;
        let port = axum::serve::Listener::local_addr(&listener).unwrap().port();
        let url = format!("https://localhost:{port}/");
        let handshake_failures = Arc::clone(&listener.handshake_failures);
        let inner = Arc::new(Mutex::new(Inner {
            url: url.clone(),
            token: token.to_owned(),
            secrets: secrets
                .iter()
                .map(|(name, value)| (name.to_string(), (value.to_string(), 1)))
                .collect(),
            seen: Vec::new(),
        }));
        let app = Router::new()
            .route("/secrets/{name}", get(get_secret))
            .route("/secrets/{name}/", get(get_secret))
            .with_state(Arc::clone(&inner));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            inner,
            handshake_failures,
        }
    }

    /// Sets a new version of a secret (`az keyvault secret set`): a rotation.
    pub fn set_secret(&self, name: &str, value: &str) {
        let mut inner = self.inner.lock().unwrap();
        let version = inner.secrets.get(name).map_or(1, |(_, v)| v + 1);
        inner
            .secrets
            .insert(name.to_owned(), (value.to_owned(), version));
    }

    pub fn seen(&self) -> Vec<VaultRequest> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Requests that carried the accepted token (and so were answered with the secret or 404).
    pub fn authorized(&self) -> Vec<VaultRequest> {
        let token = format!("Bearer {}", self.inner.lock().unwrap().token);
        self.seen()
            .into_iter()
            .filter(|r| r.authorization.as_deref() == Some(token.as_str()))
            .collect()
    }

    /// TLS handshakes that failed, e.g. because the client does not trust the test CA.
    pub fn handshake_failures(&self) -> Vec<String> {
        self.handshake_failures.lock().unwrap().clone()
    }
}

async fn get_secret(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = super::query(&uri);
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut inner = inner.lock().unwrap();
    inner.seen.push(VaultRequest {
        secret: name.clone(),
        authorization: authorization.clone(),
        api_version: query.get("api-version").cloned(),
    });
    if authorization != Some(format!("Bearer {}", inner.token)) {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"code": "Unauthorized",
                "message": "AKV10000: Request is missing a Bearer or PoP token."}})),
        )
            .into_response();
        response
            .headers_mut()
            .insert("www-authenticate", CHALLENGE.parse().unwrap());
        return response;
    }
    if !query.contains_key("api-version") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"code": "BadParameter",
                "message": "The request URI contains an invalid parameter: api-version"}})),
        )
            .into_response();
    }
    match inner.secrets.get(&name) {
        Some((value, version)) => axum::Json(json!({
            "value": value,
            "id": format!("{}secrets/{name}/{version:032x}", inner.url),
            "attributes": {"enabled": true, "created": 1_767_225_600, "updated": 1_767_225_600,
                           "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
            "tags": {}
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": "SecretNotFound",
                "message": format!("A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")}})),
        )
            .into_response(),
    }
}
