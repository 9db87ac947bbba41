//! A page CoinCap answered, and how it is read: in one pass, each asset straight into an event
//! borrowing its text from the page.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use serde_json::value::RawValue;

use super::{CoinCapError, excerpt};
use crate::domain::{AssetEvent, Parsed};

/// One successful `GET /assets`: the page as CoinCap sent it, read by [`AssetsPage::read`].
#[derive(Debug, Clone)]
pub struct AssetsPage {
    pub(super) text: String,
    pub status: u16,
    /// Retries it took (0 when the first attempt succeeded).
    pub retries: u32,
    /// From the first attempt to the answer.
    pub(super) elapsed: Duration,
}

impl Drop for AssetsPage {
    /// Its buffer is kept for the next page.
    fn drop(&mut self) {
        super::PAGES.keep(std::mem::take(&mut self.text).into_bytes());
    }
}

/// A page's assets, read in place (text borrowed from the page).
#[derive(Debug)]
pub struct Assets<'a> {
    /// Each asset as an event (not yet stamped), or the kind of JSON it is instead of an object.
    pub assets: Vec<Parsed<'a>>,
    /// The response's `timestamp` (epoch milliseconds), to stamp on every asset.
    pub timestamp: i64,
}

impl AssetsPage {
    /// The page as CoinCap sent it (a 200 answer, UTF-8).
    pub fn new(status: u16, text: String) -> Self {
        Self {
            text,
            status,
            retries: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// Reads the assets in one pass over the page: `{"data":[...], "timestamp": <ms>}`; anything
    /// else is an error, never "zero assets" (after retries, the error says how many it took).
    pub fn read(&self) -> Result<Assets<'_>, CoinCapError> {
        read_page(self.status, &self.text).map_err(|last| {
            if self.retries == 0 {
                last
            } else {
                CoinCapError::GaveUp {
                    attempts: self.retries + 1,
                    elapsed_ms: self.elapsed.as_millis(),
                    last: Box::new(last),
                }
            }
        })
    }

    /// The page's length in bytes.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The usual page read in one pass, each asset handed to `each` as it is read (into the same
    /// event: none is kept): the page's timestamp when it is `{"data": [<assets>], "timestamp":
    /// <integer>}` with at least one asset, each a JSON object, no `error` key and no key twice,
    /// and `each` took every asset (answered `true`). `None` for anything else: what `each` was
    /// handed is then to be thrown away, and the page read by [`AssetsPage::read`], which says
    /// what is wrong with it.
    pub fn read_each<'a>(&'a self, each: impl FnMut(&mut AssetEvent<'a>) -> bool) -> Option<i64> {
        super::usual::read_page(&self.text, each)
    }

    /// The integer after the page's last `"timestamp":`, which CoinCap writes at the end: what
    /// the timestamp will be, before the assets are read (a guess, for the caller to check).
    pub fn timestamp_at_the_end(&self) -> Option<i64> {
        let key = "\"timestamp\"";
        let rest = &self.text[self.text.rfind(key)? + key.len()..];
        let rest = rest
            .trim_start_matches(JSON_WHITE_SPACE)
            .strip_prefix(':')?;
        let rest = rest.trim_start_matches(JSON_WHITE_SPACE);
        let end = rest
            .bytes()
            .position(|b| !(b.is_ascii_digit() || b == b'-'))
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    }

    /// Each asset's JSON text as CoinCap sent it, in order (a second reading of the page, for
    /// the rare asset published as it came).
    pub fn asset_texts(&self) -> Vec<&str> {
        let page: Option<HashMap<String, &RawValue>> = serde_json::from_str(&self.text).ok();
        page.and_then(|page| serde_json::from_str::<Vec<&RawValue>>(page.get("data")?.get()).ok())
            .map(|assets| assets.into_iter().map(RawValue::get).collect())
            .unwrap_or_default()
    }
}

const JSON_WHITE_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// `{"data": [...], "timestamp": <ms>}` read in one pass.
#[derive(serde::Deserialize)]
struct UsualPage<'a> {
    #[serde(borrow)]
    data: Option<Vec<Parsed<'a>>>,
    timestamp: Option<i64>,
    #[serde(default)]
    error: Present,
}

/// Whether a key is there at all, whatever its value (`"error": null` is an error answer too).
#[derive(Default)]
struct Present(bool);

impl<'de> serde::Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Self(true))
    }
}

/// Reads a 200 answer: `{"data":[...], "timestamp": <ms>}`; anything else is an error, never
/// "zero assets". Each asset is read straight into an event borrowing from the page: a
/// 2000-asset page is ~1 MB, and a `Value` tree of it (or a copy of each asset's text) costs more
/// than everything else TimerFetch does.
pub fn read_page(status: u16, text: &str) -> Result<Assets<'_>, CoinCapError> {
    // The usual answer in one pass; anything else (an `error` key, even null; no array; no integer
    // timestamp; a duplicate key) goes the general way below, which names what is wrong.
    if let Ok(page) = serde_json::from_str::<UsualPage>(text)
        && !page.error.0
        && let (Some(assets), Some(timestamp)) = (page.data, page.timestamp)
        && !assets.is_empty()
    {
        return Ok(Assets { assets, timestamp });
    }
    let not_json = || CoinCapError::NotJson {
        status,
        excerpt: excerpt(text),
    };
    let page: HashMap<String, &RawValue> = match serde_json::from_str(text) {
        Ok(page) => page,
        // Valid JSON that is not an object has no asset list.
        Err(_) => {
            serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|_| not_json())?;
            return Err(CoinCapError::NotAnAssetList("missing".into()));
        }
    };
    // The same compact text a parsed value prints, for messages.
    let compact = |raw: &RawValue| {
        serde_json::from_str::<Value>(raw.get())
            .map_or_else(|_| raw.get().to_owned(), |v| v.to_string())
    };
    if let Some(error) = page.get("error") {
        return Err(CoinCapError::Api(excerpt(&compact(error))));
    }
    let assets: Vec<Parsed<'_>> = match page.get("data") {
        Some(data) => serde_json::from_str(data.get())
            .map_err(|_| CoinCapError::NotAnAssetList(excerpt(&compact(data))))?,
        None => return Err(CoinCapError::NotAnAssetList("missing".into())),
    };
    let timestamp = page
        .get("timestamp")
        .and_then(|t| serde_json::from_str::<Value>(t.get()).ok())
        .and_then(|t| t.as_i64())
        .ok_or(CoinCapError::NoTimestamp)?;
    if assets.is_empty() {
        return Err(CoinCapError::Empty);
    }
    Ok(Assets { assets, timestamp })
}
