//! A CoinCap v3 stand-in on 127.0.0.1 (over HTTP, or HTTPS with a test CA's certificate): checks
//! the bearer key, answers from a script, and records every request it sees.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::API_KEY;
use super::tls::TestCa;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
    pub delay: Duration,
    /// Answered only once this is notified: the test decides when the request is answered.
    pub gate: Option<Arc<Notify>>,
}

impl Reply {
    pub fn ok(body: impl Into<String>) -> Self {
        Self::status(200, body)
    }

    pub fn status(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
            retry_after: None,
            delay: Duration::ZERO,
            gate: None,
        }
    }

    pub fn retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.into());
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Held until `gate` is notified (a notification that comes first is kept for it).
    pub fn held_until(mut self, gate: Arc<Notify>) -> Self {
        self.gate = Some(gate);
        self
    }
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub path_and_query: String,
    pub authorization: Option<String>,
}

struct Inner {
    script: VecDeque<Reply>,
    /// Answered once the script is used up.
    fallback: Reply,
    keys: Vec<String>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct CoinCap {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl CoinCap {
    /// Starts a stand-in whose every answer is `fallback` after the `script` is used up.
    pub async fn start(script: Vec<Reply>, fallback: Reply) -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let url = format!("http://{}/v3", listener.local_addr().unwrap());
        Self::serve_on(listener, url, script, fallback)
    }

    /// The same over HTTPS on `https://localhost:<port>/v3`, with a certificate from `ca` (which
    /// the handler trusts only through `SSL_CERT_FILE`).
    pub async fn start_https(ca: &TestCa, script: Vec<Reply>, fallback: Reply) -> Self {
        let listener = ca.listener().await;
        let port = axum::serve::Listener::local_addr(&listener).unwrap().port();
        Self::serve_on(
            listener,
            format!("https://localhost:{port}/v3"),
            script,
            fallback,
        )
    }

    fn serve_on<L: axum::serve::Listener>(
        listener: L,
        url: String,
        script: Vec<Reply>,
        fallback: Reply,
    ) -> Self
    where
        L::Addr: std::fmt::Debug,
    {
        let inner = Arc::new(Mutex::new(Inner {
            script: script.into(),
            fallback,
            keys: vec![API_KEY.to_owned()],
            seen: Vec::new(),
        }));
        let app = Router::new()
            .route("/v3/assets", get(assets))
            .with_state(Arc::clone(&inner));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inner }
    }

    /// A stand-in that always answers this page.
    pub async fn serving(page: String) -> Self {
        Self::start(vec![], Reply::ok(page)).await
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Accept only these keys from now on (a rotated key).
    pub fn set_keys(&self, keys: &[&str]) {
        self.inner.lock().unwrap().keys = keys.iter().map(|k| k.to_string()).collect();
    }
}

async fn assets(State(inner): State<Arc<Mutex<Inner>>>, uri: Uri, headers: HeaderMap) -> Response {
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    let reply = {
        let mut inner = inner.lock().unwrap();
        inner.seen.push(Seen {
            at: Instant::now(),
            path_and_query: uri.to_string(),
            authorization: authorization.clone(),
        });
        let key_ok = inner
            .keys
            .iter()
            .any(|key| authorization.as_deref() == Some(&format!("Bearer {key}")));
        if !key_ok {
            Reply::status(401, r#"{"error":"Invalid API key"}"#)
        } else {
            let fallback = inner.fallback.clone();
            inner.script.pop_front().unwrap_or(fallback)
        }
    };
    if let Some(gate) = &reply.gate {
        gate.notified().await;
    }
    tokio::time::sleep(reply.delay).await;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    if let Some(retry_after) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", retry_after.parse().unwrap());
    }
    response
}

/// Realistic v3 assets: nulls, `tokens`, a numeric rank, quotes and unicode in names.
pub fn realistic_assets() -> Vec<Value> {
    vec![
        json!({"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bitcoin","supply":"19861234.0000000000000000",
               "maxSupply":"21000000.0000000000000000","marketCapUsd":"1873456789012.3456789012345678",
               "volumeUsd24Hr":"11234567890.1234567890123456","priceUsd":"94327.1234567890123456",
               "changePercent24Hr":"-1.2345678901234567","vwap24Hr":"95012.9876543210987654",
               "explorer":"https://blockchain.info/","tokens":{}}),
        json!({"id":"ethereum","rank":2,"symbol":"ETH","name":"Ethereum","supply":"120456789.1234567890000000",
               "maxSupply":null,"marketCapUsd":"398765432109.8765432109876543","volumeUsd24Hr":"6543210987.6543210987654321",
               "priceUsd":"3310.4567890123456789","changePercent24Hr":"0.8765432109876543",
               "vwap24Hr":"3298.1234567890123456","explorer":"https://etherscan.io/",
               "tokens":{"1":["0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"]}}),
        json!({"id":"tether","rank":"3","symbol":"USDT","name":"Tether","supply":"140123456789.0000000000000000",
               "maxSupply":null,"marketCapUsd":"140150000000.1234567890123456","volumeUsd24Hr":"45678901234.5678901234567890",
               "priceUsd":"1.0001903456789012","changePercent24Hr":"0.0123456789012345","vwap24Hr":null,
               "explorer":"https://www.omniexplorer.info/asset/31","tokens":{}}),
        json!({"id":"o-neil-coin","rank":"4","symbol":"O'N","name":"O'Neil \"Moon\" München 币","supply":null,
               "maxSupply":null,"marketCapUsd":null,"volumeUsd24Hr":null,"priceUsd":"0.0000000012345678",
               "changePercent24Hr":null,"vwap24Hr":null,"explorer":null,"tokens":{}}),
    ]
}

/// `{"data": [...], "timestamp": ...}`.
pub fn page(timestamp: i64, assets: &[Value]) -> String {
    json!({"data": assets, "timestamp": timestamp}).to_string()
}

/// `n` generated assets, for batching.
pub fn many_assets(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"id": format!("asset-{i}"), "rank": (i + 1).to_string(), "symbol": format!("A{i}"),
                   "name": format!("Asset {i}"), "supply": "1000.5", "maxSupply": null,
                   "marketCapUsd": format!("{}.25", i * 1000), "volumeUsd24Hr": "12.5",
                   "priceUsd": format!("{i}.125"), "changePercent24Hr": "-0.5", "vwap24Hr": "1.5",
                   "explorer": null, "tokens": {}})
        })
        .collect()
}

/// What CoinCap v2 answered during its deprecation: 200 without an asset list.
pub const V2_DEPRECATION: &str = r#"{"data":{"message":"We are deprecating this version of the CoinCap API. Please migrate to https://pro.coincap.io"},"timestamp":1743465600000}"#;
