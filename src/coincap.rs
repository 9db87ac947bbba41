//! The CoinCap v3 client: `GET /assets` with the API key as a bearer token, and the retry rule
//! (which answers are worth another attempt, and how long to wait).

use std::error::Error as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use crate::fault::{Fault, Limit, NameResolution, name_resolution};
use crate::secrets::Secret;
use crate::spare::Spare;

pub mod credits;
mod limits;
mod page;
mod usual;

pub use limits::CREDITS_FIX;
use limits::{limit_of, status_message};
pub use page::{Assets, AssetsPage, read_page};

/// The buffer of the last page read, for the next one.
static PAGES: Spare = Spare::new();

pub const DEFAULT_COINCAP_BASE_URL: &str = "https://rest.coincap.io/v3";
/// CoinCap's reported maximum page size.
pub const MAX_COINCAP_LIMIT: u32 = 2000;

/// Everything TimerFetch needs to call CoinCap.
#[derive(Debug, Clone, PartialEq)]
pub struct CoinCapConfig {
    pub base_url: Url,
    pub limit: u32,
    pub ids: Option<String>,
    /// Per-attempt timeout of one HTTP request.
    pub timeout: Duration,
    /// Retries after the first attempt, for 402, 408, 429, 5xx, timeouts and connection errors.
    pub max_retries: u32,
    /// First backoff delay; it doubles on each retry (a `Retry-After` longer than it wins).
    pub retry_base: Duration,
    /// Total time one fetch may take, waits included: well under the function timeout.
    pub retry_budget: Duration,
    /// `COINCAP_MONTHLY_CREDITS`: the credits the plan gives a month, which the schedule must fit.
    pub monthly_credits: u64,
}

/// How many assets one call asks for: the ids given (up to the limit), else the limit.
impl CoinCapConfig {
    pub fn assets_a_call(&self) -> u64 {
        let limit = u64::from(self.limit);
        match &self.ids {
            Some(ids) => (ids.split(',').filter(|id| !id.is_empty()).count() as u64).min(limit),
            None => limit,
        }
    }
}

/// The longest single backoff wait, whatever the attempt number.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CoinCapError {
    #[error("CoinCap refused the API key (HTTP {status})")]
    Unauthorized { status: u16 },
    #[error("{}", status_message(*status, body))]
    Status {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    #[error("CoinCap request failed: {message}")]
    Transport { message: String },
    #[error("CoinCap answered HTTP {status} with a body that is not JSON: {excerpt}")]
    NotJson { status: u16, excerpt: String },
    #[error("CoinCap answered with an error: {0}")]
    Api(String),
    #[error(
        "CoinCap answered without an asset list (\"data\" is {0}): is COINCAP_BASE_URL a v3 API? (v2 is gone)"
    )]
    NotAnAssetList(String),
    #[error("CoinCap's answer has no integer \"timestamp\"")]
    NoTimestamp,
    #[error("CoinCap returned no assets (check COINCAP_IDS)")]
    Empty,
    #[error("{last} (gave up after {attempts} attempts in {elapsed_ms} ms)")]
    GaveUp {
        attempts: u32,
        elapsed_ms: u128,
        last: Box<CoinCapError>,
    },
}

impl CoinCapError {
    /// The retry rule: rate limits, server errors, timeouts and connection failures may pass; a
    /// refused key, spent credits, a malformed answer, an unknown host name or a refused
    /// certificate will not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, body, .. } => {
                is_transient_status(*status)
                    && limit_of(*status, body) != Some(Limit::CoinCapCredits)
            }
            // Not a host name that does not resolve, nor a refused certificate.
            Self::Transport { .. } => self.fault() == Fault::Transient,
            _ => false,
        }
    }

    /// What another fetch would meet: a refused key, a base URL that is no CoinCap v3, ids CoinCap
    /// does not know, a host name that does not resolve or a refused certificate stay as they are
    /// until a setting changes; anything else may pass next time (the next tick tries again).
    pub fn fault(&self) -> Fault {
        const BASE_URL: &str = "check COINCAP_BASE_URL (CoinCap v3 is https://rest.coincap.io/v3)";
        match self {
            Self::Unauthorized { .. } => Fault::permanent(
                "set COINCAP_API_KEY to a key CoinCap accepts (with KEY_VAULT_URL: the vault's secret named by COINCAP_API_KEY_SECRET); keys are at https://pro.coincap.io/dashboard",
            ),
            Self::Status { status: 404, .. } | Self::NotAnAssetList(_) => {
                Fault::permanent(BASE_URL)
            }
            Self::Status { .. } if self.limit() == Some(Limit::CoinCapCredits) => {
                Fault::permanent(CREDITS_FIX)
            }
            Self::Empty => Fault::permanent("check COINCAP_IDS: CoinCap knows none of these ids"),
            Self::Transport { message } => match name_resolution(message) {
                Some(NameResolution::Unknown) => {
                    Fault::permanent(format!("{BASE_URL}: its host name does not resolve"))
                }
                _ if message.contains("certificate") => Fault::permanent(format!(
                    "{BASE_URL}: its TLS certificate was refused (is this machine's clock right? SSL_CERT_FILE names extra trusted roots)"
                )),
                _ => Fault::Transient,
            },
            Self::GaveUp { last, .. } => last.fault(),
            _ => Fault::Transient,
        }
    }

    /// The HTTP status CoinCap answered, if it answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status }
            | Self::Status { status, .. }
            | Self::NotJson { status, .. } => Some(*status),
            Self::Api(_) | Self::NotAnAssetList(_) | Self::NoTimestamp | Self::Empty => Some(200),
            Self::Transport { .. } => None,
            Self::GaveUp { last, .. } => last.status(),
        }
    }

    /// The limit of the CoinCap plan this answer says was reached, if any.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            Self::Status { status, body, .. } => limit_of(*status, body),
            Self::GaveUp { last, .. } => last.limit(),
            _ => None,
        }
    }

    pub fn is_unauthorized(&self) -> bool {
        match self {
            Self::Unauthorized { .. } => true,
            Self::GaveUp { last, .. } => last.is_unauthorized(),
            _ => false,
        }
    }

    /// Retries made before this error was final.
    pub fn retries(&self) -> u32 {
        match self {
            Self::GaveUp { attempts, .. } => attempts.saturating_sub(1),
            _ => 0,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// 408, 429 and every 5xx. (402, Payment Required, means the plan's credits are spent: another
/// attempt meets it again until the plan renews or grows.)
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status)
}

/// Exponential backoff: `base * 2^retry`, capped, never shorter than the server's `Retry-After`.
pub fn backoff(base: Duration, retry: u32, retry_after: Option<Duration>) -> Duration {
    let exponential = base
        .saturating_mul(2u32.saturating_pow(retry))
        .min(MAX_BACKOFF);
    retry_after.map_or(exponential, |server| server.max(exponential))
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

pub struct CoinCapClient {
    /// Built on first use, or by [`CoinCapClient::warm_up`] once the server listens: building it
    /// loads the system's root certificates (several milliseconds), which would otherwise delay
    /// the first answer to the host's readiness probe.
    http: OnceLock<reqwest::Client>,
    config: CoinCapConfig,
}

impl CoinCapClient {
    pub fn new(config: CoinCapConfig) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: OnceLock::new(),
            config,
        })
    }

    /// Builds the HTTP client now (call it off the async workers, after the server listens), so
    /// the first fetch does not pay for it either.
    pub fn warm_up(&self) {
        if let Err(error) = self.http() {
            tracing::warn!(%error, "Cannot build the CoinCap HTTP client yet; the first fetch will try again.");
        }
    }

    fn http(&self) -> Result<&reqwest::Client, reqwest::Error> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("coincap-stream/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.config.timeout)
            .build()?;
        // Two first uses at once build two clients; the first one set is kept.
        Ok(self.http.get_or_init(|| http))
    }

    /// `{base}/assets?limit=..[&ids=..]`.
    pub fn assets_url(&self) -> Url {
        let mut url = self.config.base_url.clone();
        let path = format!("{}/assets", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.query_pairs_mut()
            .append_pair("limit", &self.config.limit.to_string());
        if let Some(ids) = &self.config.ids {
            url.query_pairs_mut().append_pair("ids", ids);
        }
        url
    }

    /// Fetches one page of assets, retrying transient failures within the retry budget.
    pub async fn fetch_assets(&self, api_key: &Secret) -> Result<AssetsPage, CoinCapError> {
        let started = Instant::now();
        let url = self.assets_url();
        let mut retries = 0;
        loop {
            match self.attempt(&url, api_key).await {
                Ok(mut page) => {
                    page.retries = retries;
                    page.elapsed = started.elapsed();
                    return Ok(page);
                }
                Err(error) => {
                    let delay = backoff(self.config.retry_base, retries, error.retry_after());
                    let next_attempt_ends = started.elapsed() + delay + self.config.timeout;
                    let may_retry = error.is_transient()
                        && retries < self.config.max_retries
                        && next_attempt_ends <= self.config.retry_budget;
                    if !may_retry {
                        return Err(if retries == 0 {
                            error
                        } else {
                            CoinCapError::GaveUp {
                                attempts: retries + 1,
                                elapsed_ms: started.elapsed().as_millis(),
                                last: Box::new(error),
                            }
                        });
                    }
                    tracing::warn!(
                        error = %error,
                        retry = retries + 1,
                        delay_ms = delay.as_millis() as u64,
                        "CoinCap request failed, retrying."
                    );
                    tokio::time::sleep(delay).await;
                    retries += 1;
                }
            }
        }
    }

    async fn attempt(&self, url: &Url, api_key: &Secret) -> Result<AssetsPage, CoinCapError> {
        let response = self
            .http()
            .map_err(transport)?
            .get(url.clone())
            .header(AUTHORIZATION, format!("Bearer {}", api_key.expose()))
            .timeout(self.config.timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_body(response).await.map_err(transport)?;
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(CoinCapError::Unauthorized {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(CoinCapError::Status {
                status: status.as_u16(),
                body: excerpt(&String::from_utf8_lossy(&body)),
                retry_after,
            });
        }
        // The page's bytes become its text without a copy (checked to be UTF-8: JSON is).
        String::from_utf8(body)
            .map(|text| AssetsPage::new(status.as_u16(), text))
            .map_err(|error| CoinCapError::NotJson {
                status: status.as_u16(),
                excerpt: excerpt(&String::from_utf8_lossy(error.as_bytes())),
            })
    }
}

/// The whole body, into one buffer sized from `Content-Length` when there is one (growing a
/// buffer chunk by chunk copies the ~1 MB page several times, into fresh pages each time): the
/// previous page's buffer, kept when its [`AssetsPage`] was dropped.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    const MAX_PRESIZE: u64 = 64 * 1024 * 1024;
    let expected = response.content_length().unwrap_or(0).min(MAX_PRESIZE);
    let mut body = PAGES.take(expected as usize);
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, chrono::Utc::now())
}

/// The error and its causes on one line (reqwest keeps the useful part in the sources).
fn transport(error: reqwest::Error) -> CoinCapError {
    let mut message = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.to_string()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    CoinCapError::Transport {
        message: crate::text::user_words(&message),
    }
}

/// What of CoinCap's answer goes into an error: its first 200 characters.
fn excerpt(text: &str) -> String {
    crate::text::excerpt(text.trim(), 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Parsed;

    #[test]
    fn rate_limits_and_server_errors_are_transient() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [400, 401, 402, 403, 404] {
            assert!(!is_transient_status(status), "{status}");
        }
        assert!(!CoinCapError::Unauthorized { status: 401 }.is_transient());
        assert!(
            CoinCapError::Transport {
                message: "reset".into()
            }
            .is_transient()
        );
    }

    #[test]
    fn a_refused_key_a_wrong_url_or_an_unknown_host_is_permanent_with_its_fix() {
        let fix = |error: CoinCapError| error.fault().fix().map(str::to_owned);
        let key = fix(CoinCapError::Unauthorized { status: 401 }).unwrap();
        assert!(key.contains("COINCAP_API_KEY"), "{key}");
        let gave_up = CoinCapError::GaveUp {
            attempts: 2,
            elapsed_ms: 5,
            last: Box::new(CoinCapError::Unauthorized { status: 403 }),
        };
        assert!(gave_up.fault().is_permanent());
        assert!(
            fix(CoinCapError::NotAnAssetList("an object".into()))
                .unwrap()
                .contains("COINCAP_BASE_URL")
        );
        let unknown = CoinCapError::Transport {
            message: "error sending request: client error (Connect): dns error: failed to lookup address information: Name or service not known".into(),
        };
        assert!(fix(unknown).unwrap().contains("does not resolve"));
        let certificate = CoinCapError::Transport {
            message: "client error (Connect): invalid peer certificate: UnknownIssuer".into(),
        };
        assert!(fix(certificate).unwrap().contains("certificate"));
    }

    #[test]
    fn rate_limits_outages_and_lost_connections_are_transient() {
        for error in [
            CoinCapError::Status {
                status: 429,
                body: String::new(),
                retry_after: None,
            },
            CoinCapError::Transport {
                message: "Connection refused (os error 111)".into(),
            },
            CoinCapError::Transport {
                message:
                    "failed to lookup address information: Temporary failure in name resolution"
                        .into(),
            },
            CoinCapError::NotJson {
                status: 200,
                excerpt: "<html>".into(),
            },
        ] {
            assert_eq!(error.fault(), Fault::Transient, "{error}");
        }
    }

    fn status(status: u16, body: &str) -> CoinCapError {
        CoinCapError::Status {
            status,
            body: body.into(),
            retry_after: None,
        }
    }

    #[test]
    fn spent_credits_are_permanent_say_so_and_name_the_settings_to_change() {
        for error in [
            status(402, "{}"),
            status(429, r#"{"error":"Monthly credit limit reached"}"#),
            CoinCapError::GaveUp {
                attempts: 5,
                elapsed_ms: 9,
                last: Box::new(status(402, "")),
            },
        ] {
            assert_eq!(error.limit(), Some(Limit::CoinCapCredits), "{error}");
            assert!(!error.is_transient(), "{error}");
            let fix = error.fault().fix().unwrap().to_owned();
            for setting in ["FETCH_SCHEDULE", "COINCAP_LIMIT", "COINCAP_MONTHLY_CREDITS"] {
                assert!(fix.contains(setting), "{fix}");
            }
            assert!(error.to_string().contains("credits are spent"), "{error}");
        }
    }

    #[test]
    fn a_rate_limit_is_transient_and_named() {
        let error = status(429, r#"{"error":"rate limited"}"#);
        assert_eq!(error.limit(), Some(Limit::CoinCapRateLimit));
        assert!(error.is_transient());
        assert_eq!(error.fault(), Fault::Transient);
        assert!(
            error
                .to_string()
                .starts_with("CoinCap's rate limit was hit (HTTP 429;")
        );
        assert_eq!(status(503, "down").limit(), None);
        assert_eq!(
            status(503, "down").to_string(),
            "CoinCap answered HTTP 503: down"
        );
    }

    #[test]
    fn backoff_doubles_caps_and_yields_to_retry_after() {
        let base = Duration::from_millis(500);
        assert_eq!(backoff(base, 0, None), Duration::from_millis(500));
        assert_eq!(backoff(base, 3, None), Duration::from_secs(4));
        assert_eq!(backoff(base, 30, None), MAX_BACKOFF);
        assert_eq!(
            backoff(base, 0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            backoff(base, 3, Some(Duration::from_secs(1))),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn a_v3_page_is_read() {
        let page = read_page(
            200,
            r#"{"data":[{"id":"bitcoin"},5],"timestamp":1747000000000}"#,
        )
        .unwrap();
        assert_eq!(page.assets.len(), 2);
        assert!(matches!(&page.assets[0], Parsed::Event(e) if e.id.as_text() == Some("bitcoin")));
        assert_eq!(page.assets[1], Parsed::NotAnObject("number"));
        assert_eq!(page.timestamp, 1_747_000_000_000);
    }

    #[test]
    fn a_repeated_key_takes_the_general_way_and_its_last_value_counts() {
        let text = r#"{"data":[{"id":"a"}],"timestamp":1,"data":[{"id":"b"},{"id":"c"}]}"#;
        let page = read_page(200, text).unwrap();
        assert_eq!(page.assets.len(), 2);
        let whole = AssetsPage::new(200, text.into());
        assert_eq!(whole.asset_texts(), vec![r#"{"id":"b"}"#, r#"{"id":"c"}"#]);
    }

    #[test]
    fn after_retries_a_malformed_page_says_how_many_attempts_it_took() {
        let mut page = AssetsPage::new(200, "{}".into());
        page.retries = 2;
        let error = page.read().unwrap_err();
        assert!(
            matches!(error, CoinCapError::GaveUp { attempts: 3, .. }),
            "{error}"
        );
        assert_eq!(error.retries(), 2);
    }

    #[test]
    fn the_v2_deprecation_body_is_an_error_not_zero_assets() {
        let error = read_page(
            200,
            r#"{"data":{"message":"We are deprecating this version of the CoinCap API"},"timestamp":1743465600000}"#,
        )
        .unwrap_err();
        assert!(matches!(error, CoinCapError::NotAnAssetList(_)), "{error}");
        assert!(error.to_string().contains("deprecating"));
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(matches!(
            read_page(200, "<html>oops</html>"),
            Err(CoinCapError::NotJson { .. })
        ));
        assert!(matches!(
            read_page(200, r#"{"error":"Invalid API key","timestamp":1}"#),
            Err(CoinCapError::Api(_))
        ));
        assert!(matches!(
            read_page(200, r#"{"data":[{"id":"x"}]}"#),
            Err(CoinCapError::NoTimestamp)
        ));
        assert!(matches!(
            read_page(200, r#"{"data":[],"timestamp":1}"#),
            Err(CoinCapError::Empty)
        ));
        assert!(matches!(
            read_page(200, "{}"),
            Err(CoinCapError::NotAnAssetList(_))
        ));
    }

    #[test]
    fn the_url_carries_limit_and_ids() {
        let config =
            crate::config::Config::from_lookup(crate::config::Mode::Local, |key| match key {
                "COINCAP_BASE_URL" => Some("http://127.0.0.1:9/v3/".into()),
                "COINCAP_IDS" => Some("bitcoin,ethereum".into()),
                _ => None,
            })
            .unwrap();
        let client = CoinCapClient::new(config.coincap).unwrap();
        assert_eq!(
            client.assets_url().as_str(),
            "http://127.0.0.1:9/v3/assets?limit=10&ids=bitcoin%2Cethereum"
        );
        assert_eq!(client.config.assets_a_call(), 2);
    }
}
