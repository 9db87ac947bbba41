//! An App Service managed identity endpoint on 127.0.0.1 (what `IDENTITY_ENDPOINT` points at in a
//! Function App): checks `X-IDENTITY-HEADER`, mints a bearer token, records every request.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// One token request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub query: HashMap<String, String>,
    pub identity_header: Option<String>,
}

struct Inner {
    header: String,
    token: String,
    seen: Vec<TokenRequest>,
}

#[derive(Clone)]
pub struct IdentityEndpoint {
    /// The value for `IDENTITY_ENDPOINT`.
    pub endpoint: String,
    /// The value for `IDENTITY_HEADER`: requests without it are refused, as the platform does.
    pub header: String,
    /// The access token it mints.
    pub token: String,
    inner: Arc<Mutex<Inner>>,
}

impl IdentityEndpoint {
    pub async fn start() -> Self {
        let header = format!("identity-header-{}", uuid::Uuid::new_v4().simple());
        let token = format!("eyJ0eXAiOiJKV1QifQ.test-{}", uuid::Uuid::new_v4().simple());
        let inner = Arc::new(Mutex::new(Inner {
            header: header.clone(),
            token: token.clone(),
            seen: Vec::new(),
        }));
        let app = Router::new()
            .route("/msi/token", get(mint))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let endpoint = format!("http://{}/msi/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            endpoint,
            header,
            token,
            inner,
        }
    }

    pub fn seen(&self) -> Vec<TokenRequest> {
        self.inner.lock().unwrap().seen.clone()
    }
}

async fn mint(State(inner): State<Arc<Mutex<Inner>>>, uri: Uri, headers: HeaderMap) -> Response {
    let query = super::query(&uri);
    let identity_header = headers
        .get("x-identity-header")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut inner = inner.lock().unwrap();
    inner.seen.push(TokenRequest {
        query: query.clone(),
        identity_header: identity_header.clone(),
    });
    if identity_header.as_deref() != Some(inner.header.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"code": "UnauthorizedRequest",
                "message": "The X-IDENTITY-HEADER header is missing or invalid."}})),
        )
            .into_response();
    }
    if query.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"code": "BadRequest", "message": "api-version"}})),
        )
            .into_response();
    }
    let resource = query.get("resource").cloned().unwrap_or_default();
    let expires_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    axum::Json(json!({
        "access_token": inner.token,
        "expires_on": expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": query.get("client_id").cloned().unwrap_or_else(|| "7e1a0000-0000-4000-8000-000000000001".into()),
    }))
    .into_response()
}
