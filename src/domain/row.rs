//! `AssetRow` (a row the warehouse table accepts), `Reject` (a poison event and why), and the
//! mapping from event bodies to both.
//!
//! Parse, don't validate: every column holds a type that can only be built from valid input, so a
//! row that exists is a row every warehouse accepts (no NaN, no 300-character id, no NUL, no date
//! outside `datetime`).

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Datelike as _, NaiveDate, Timelike as _, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Text that fits a `(n)varchar(255)` column: at most 255 UTF-16 code units (what `nvarchar`
/// counts; a character outside the BMP takes two), no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Varchar255(String);

impl Varchar255 {
    pub const MAX_CHARS: usize = 255;

    fn parse(field: &'static str, text: &str) -> Result<Self, RejectReason> {
        if text.contains('\0') {
            return Err(RejectReason::ContainsNul { field });
        }
        let chars = text.encode_utf16().count();
        if chars > Self::MAX_CHARS {
            return Err(RejectReason::TooLong { field, chars });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A finite `float` (NaN and the infinities have no place in a SQL `float` column).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finite(f64);

impl Finite {
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A UTC instant with millisecond precision inside SQL Server's `datetime` range
/// (1753-01-01 to 9999-12-31).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WarehouseTime(DateTime<Utc>);

impl WarehouseTime {
    pub fn from_epoch_ms(ms: i64) -> Result<Self, RejectReason> {
        let earliest = NaiveDate::from_ymd_opt(1753, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());
        let latest = NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 997))
            .map(|d| d.and_utc());
        match (DateTime::from_timestamp_millis(ms), earliest, latest) {
            (Some(at), Some(earliest), Some(latest)) if at >= earliest && at <= latest => {
                Ok(Self(at))
            }
            _ => Err(RejectReason::TimestampOutOfRange(ms)),
        }
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }

    pub fn epoch_ms(self) -> i64 {
        self.0.timestamp_millis()
    }
}

impl fmt::Display for WarehouseTime {
    /// `2026-05-01T12:00:00.123`: the form both SQLite and `CAST(... AS datetime)` read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand rather than with a chrono format string, which is parsed on every call (a
        // batch prints two per row); the years are 1753-9999, always four digits.
        let at = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.timestamp_subsec_millis()
        )
    }
}

/// One row of `asset_statistics_history_v3` (the identity column is the warehouse's business).
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRow {
    pub id: Varchar255,
    pub asset_rank: Option<i64>,
    pub symbol: Option<Varchar255>,
    pub asset_name: Option<Varchar255>,
    pub supply: Option<Finite>,
    pub max_supply: Option<Finite>,
    pub market_cap_usd: Option<Finite>,
    pub volume_usd_24_hr: Option<Finite>,
    pub price_usd: Option<Finite>,
    pub change_percent_24_hr: Option<Finite>,
    pub vwap_24_hr: Option<Finite>,
    pub explorer: Option<Varchar255>,
    pub runtime_timestamp: WarehouseTime,
}

/// Why an event cannot become a row. The text starts with a stable code (`not_json: ...`) so
/// rejects can be grouped by kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RejectReason {
    #[error("not_json: {0}")]
    NotJson(String),
    #[error("not_an_object: the event is a JSON {0}, not an object")]
    NotAnObject(&'static str),
    #[error("missing_field: {0} is missing, null or empty")]
    MissingField(&'static str),
    #[error("wrong_type: {field} must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("not_a_number: {field} = {text:?}")]
    NotANumber { field: &'static str, text: String },
    #[error("not_finite: {field} = {text:?}")]
    NotFinite { field: &'static str, text: String },
    #[error("too_long: {field} has {chars} UTF-16 code units (the column holds {max})", max = Varchar255::MAX_CHARS)]
    TooLong { field: &'static str, chars: usize },
    #[error("contains_nul: {field} contains a NUL character")]
    ContainsNul { field: &'static str },
    #[error(
        "out_of_range: timestamp {0} ms is outside datetime's range (1753-01-01 to 9999-12-31)"
    )]
    TimestampOutOfRange(i64),
}

impl RejectReason {
    /// The stable code at the start of the text (`not_json`, `too_long`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "not_json",
            Self::NotAnObject(_) => "not_an_object",
            Self::MissingField(_) => "missing_field",
            Self::WrongType { .. } => "wrong_type",
            Self::NotANumber { .. } => "not_a_number",
            Self::NotFinite { .. } => "not_finite",
            Self::TooLong { .. } => "too_long",
            Self::ContainsNul { .. } => "contains_nul",
            Self::TimestampOutOfRange(_) => "out_of_range",
        }
    }
}

/// Where an event sat in Event Hubs: what an operator needs to find it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventCoordinates {
    pub partition_id: Option<String>,
    pub offset: Option<String>,
    pub sequence_number: Option<i64>,
    pub enqueued_time: Option<DateTime<Utc>>,
}

/// A poison event: kept whole, with the reason and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub raw_body: String,
    pub reason: RejectReason,
    pub coordinates: EventCoordinates,
}

/// A batch of event bodies turned into rows and rejects, duplicates inside the batch removed.
#[derive(Debug, Default)]
pub struct MappedBatch {
    pub rows: Vec<AssetRow>,
    pub rejects: Vec<Reject>,
    /// Events that repeated an earlier event's `(id, runtime_timestamp)` in the same batch.
    pub duplicates_in_batch: usize,
}

/// Maps every event of a batch; never fails: an event that cannot become a row becomes a reject.
pub fn map_events(events: impl IntoIterator<Item = (String, EventCoordinates)>) -> MappedBatch {
    let mut batch = MappedBatch::default();
    let mut seen = HashSet::new();
    for (body, coordinates) in events {
        match AssetRow::from_event_body(&body) {
            Ok(row) => {
                if seen.insert((row.id.clone(), row.runtime_timestamp)) {
                    batch.rows.push(row);
                } else {
                    batch.duplicates_in_batch += 1;
                }
            }
            Err(reason) => batch.rejects.push(Reject {
                raw_body: body,
                reason,
                coordinates,
            }),
        }
    }
    batch
}

impl AssetRow {
    /// Parses one event body (the seed's event: a CoinCap asset plus `timestamp`).
    ///
    /// Lenient where the source is: `rank` and the numeric fields may be strings or JSON numbers,
    /// null or missing optional fields become NULL (never 0). Strict where the table is: anything
    /// else is a [`RejectReason`].
    pub fn from_event_body(body: &str) -> Result<Self, RejectReason> {
        match Self::from_plain_event(body) {
            Some(row) => Ok(row),
            None => Self::from_any_event(body),
        }
    }

    /// The general path: any JSON, every reason for a reject.
    fn from_any_event(body: &str) -> Result<Self, RejectReason> {
        let value: Value =
            serde_json::from_str(body).map_err(|e| RejectReason::NotJson(e.to_string()))?;
        let Value::Object(event) = value else {
            return Err(RejectReason::NotAnObject(json_kind(&value)));
        };
        let id = text(&event, "id")?
            .filter(|id| !id.as_str().is_empty())
            .ok_or(RejectReason::MissingField("id"))?;
        Ok(Self {
            id,
            asset_rank: rank(&event)?,
            symbol: text(&event, "symbol")?,
            asset_name: text(&event, "name")?,
            supply: number(&event, "supply")?,
            max_supply: number(&event, "maxSupply")?,
            market_cap_usd: number(&event, "marketCapUsd")?,
            volume_usd_24_hr: number(&event, "volumeUsd24Hr")?,
            price_usd: number(&event, "priceUsd")?,
            change_percent_24_hr: number(&event, "changePercent24Hr")?,
            vwap_24_hr: number(&event, "vwap24Hr")?,
            explorer: text(&event, "explorer")?,
            runtime_timestamp: timestamp(&event)?,
        })
    }
}

/// The usual event, as TimerFetch publishes it: every field a string without escapes, or null,
/// and an integer `timestamp`. Read in place, without building a `Value` (a batch has thousands).
#[derive(Deserialize)]
struct PlainEvent<'a> {
    id: Option<&'a str>,
    rank: Option<&'a str>,
    symbol: Option<&'a str>,
    name: Option<&'a str>,
    supply: Option<&'a str>,
    #[serde(rename = "maxSupply")]
    max_supply: Option<&'a str>,
    #[serde(rename = "marketCapUsd")]
    market_cap_usd: Option<&'a str>,
    #[serde(rename = "volumeUsd24Hr")]
    volume_usd_24_hr: Option<&'a str>,
    #[serde(rename = "priceUsd")]
    price_usd: Option<&'a str>,
    #[serde(rename = "changePercent24Hr")]
    change_percent_24_hr: Option<&'a str>,
    #[serde(rename = "vwap24Hr")]
    vwap_24_hr: Option<&'a str>,
    explorer: Option<&'a str>,
    timestamp: Option<i64>,
}

impl AssetRow {
    /// The fast path of [`AssetRow::from_event_body`]: `None` for anything it does not read
    /// (another shape, an escape in a string, a value the row refuses), which the general path
    /// then reads, or rejects with its reason. Both apply the same conversions.
    fn from_plain_event(body: &str) -> Option<Self> {
        let event: PlainEvent<'_> = serde_json::from_str(body).ok()?;
        let text = |field: &'static str, value: Option<&str>| match value {
            None => Some(None),
            Some(text) => Varchar255::parse(field, text).ok().map(Some),
        };
        let number = |value: Option<&str>| match value {
            None => Some(None),
            Some(text) => decimal(text)
                .filter(|v| v.is_finite())
                .map(|v| Some(Finite(v))),
        };
        let id = text("id", event.id)??;
        if id.as_str().is_empty() {
            return None;
        }
        Some(Self {
            id,
            asset_rank: match event.rank {
                None => None,
                Some(rank) => Some(rank.trim().parse().ok()?),
            },
            symbol: text("symbol", event.symbol)?,
            asset_name: text("name", event.name)?,
            supply: number(event.supply)?,
            max_supply: number(event.max_supply)?,
            market_cap_usd: number(event.market_cap_usd)?,
            volume_usd_24_hr: number(event.volume_usd_24_hr)?,
            price_usd: number(event.price_usd)?,
            change_percent_24_hr: number(event.change_percent_24_hr)?,
            vwap_24_hr: number(event.vwap_24_hr)?,
            explorer: text("explorer", event.explorer)?,
            runtime_timestamp: WarehouseTime::from_epoch_ms(event.timestamp?).ok()?,
        })
    }
}

/// A decimal string as a float (surrounding spaces allowed; empty is not a number).
fn decimal(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    text.parse().ok()
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Shortens echoed input so a reason stays one readable line.
fn excerpt(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

fn text(
    event: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Varchar255>, RejectReason> {
    match event.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Varchar255::parse(field, s).map(Some),
        Some(_) => Err(RejectReason::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn number(event: &Map<String, Value>, field: &'static str) -> Result<Option<Finite>, RejectReason> {
    let (parsed, text) = match event.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => (decimal(s), s.clone()),
        Some(Value::Number(n)) => (n.as_f64(), n.to_string()),
        Some(_) => {
            return Err(RejectReason::WrongType {
                field,
                expected: "a decimal string or a number",
            });
        }
    };
    match parsed {
        Some(value) if value.is_finite() => Ok(Some(Finite(value))),
        Some(_) => Err(RejectReason::NotFinite {
            field,
            text: excerpt(&text),
        }),
        None => Err(RejectReason::NotANumber {
            field,
            text: excerpt(&text),
        }),
    }
}

fn rank(event: &Map<String, Value>) -> Result<Option<i64>, RejectReason> {
    const FIELD: &str = "rank";
    match event.get(FIELD) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            s.trim()
                .parse()
                .map(Some)
                .map_err(|_| RejectReason::NotANumber {
                    field: FIELD,
                    text: excerpt(s),
                })
        }
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| RejectReason::NotANumber {
                field: FIELD,
                text: n.to_string(),
            }),
        Some(_) => Err(RejectReason::WrongType {
            field: FIELD,
            expected: "an integer or an integer string",
        }),
    }
}

fn timestamp(event: &Map<String, Value>) -> Result<WarehouseTime, RejectReason> {
    const FIELD: &str = "timestamp";
    let ms = match event.get(FIELD) {
        None | Some(Value::Null) => return Err(RejectReason::MissingField(FIELD)),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    let ms = ms.ok_or(RejectReason::WrongType {
        field: FIELD,
        expected: "epoch milliseconds as an integer",
    })?;
    WarehouseTime::from_epoch_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    const BITCOIN: &str = r#"{"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bitcoin","supply":"19332443.0000000000000000","maxSupply":"21000000.0000000000000000","marketCapUsd":"547205357840.2894946660999555","volumeUsd24Hr":"7843196880.5992743425954912","priceUsd":"28305.0289009148763385","changePercent24Hr":"-0.5321226064725184","vwap24Hr":"28485.3107379122638250","explorer":"https://blockchain.info/","timestamp":1680191532104}"#;

    fn with(field: &str, value: Value) -> String {
        let mut event: Map<String, Value> = serde_json::from_str(BITCOIN).unwrap();
        event.insert(field.to_owned(), value);
        Value::Object(event).to_string()
    }

    fn without(field: &str) -> String {
        let mut event: Map<String, Value> = serde_json::from_str(BITCOIN).unwrap();
        event.remove(field);
        Value::Object(event).to_string()
    }

    fn reject(body: &str) -> RejectReason {
        AssetRow::from_event_body(body).unwrap_err()
    }

    #[test]
    fn the_seed_event_maps_to_every_column() {
        let row = AssetRow::from_event_body(BITCOIN).unwrap();
        assert_eq!(row.id.as_str(), "bitcoin");
        assert_eq!(row.asset_rank, Some(1));
        assert_eq!(row.symbol.unwrap().as_str(), "BTC");
        assert_eq!(row.asset_name.unwrap().as_str(), "Bitcoin");
        let exact = |text: &str| text.parse::<f64>().unwrap();
        assert_eq!(
            row.supply.unwrap().get(),
            exact("19332443.0000000000000000")
        );
        assert_eq!(
            row.max_supply.unwrap().get(),
            exact("21000000.0000000000000000")
        );
        assert_eq!(
            row.market_cap_usd.unwrap().get(),
            exact("547205357840.2894946660999555")
        );
        assert_eq!(
            row.volume_usd_24_hr.unwrap().get(),
            exact("7843196880.5992743425954912")
        );
        assert_eq!(
            row.price_usd.unwrap().get(),
            exact("28305.0289009148763385")
        );
        assert_eq!(
            row.change_percent_24_hr.unwrap().get(),
            exact("-0.5321226064725184")
        );
        assert_eq!(
            row.vwap_24_hr.unwrap().get(),
            exact("28485.3107379122638250")
        );
        assert_eq!(row.explorer.unwrap().as_str(), "https://blockchain.info/");
        assert_eq!(row.runtime_timestamp.to_string(), "2023-03-30T15:52:12.104");
    }

    #[test]
    fn null_and_missing_numbers_stay_null_never_zero() {
        let row = AssetRow::from_event_body(&with("maxSupply", Value::Null)).unwrap();
        assert_eq!(row.max_supply, None);
        let row = AssetRow::from_event_body(&without("vwap24Hr")).unwrap();
        assert_eq!(row.vwap_24_hr, None);
    }

    #[test]
    fn rank_and_numbers_may_be_json_numbers() {
        let row = AssetRow::from_event_body(&with("rank", 7.into())).unwrap();
        assert_eq!(row.asset_rank, Some(7));
        let row = AssetRow::from_event_body(&with("priceUsd", 1.5.into())).unwrap();
        assert_eq!(row.price_usd.unwrap().get(), 1.5);
    }

    #[test]
    fn quotes_and_unicode_in_names_are_kept() {
        let row = AssetRow::from_event_body(&with("name", "O'Neil \"币\" München".into())).unwrap();
        assert_eq!(row.asset_name.unwrap().as_str(), "O'Neil \"币\" München");
    }

    #[test]
    fn a_body_that_is_not_json_is_rejected() {
        assert_eq!(reject("not json").code(), "not_json");
    }

    #[test]
    fn a_json_array_is_not_an_event() {
        assert_eq!(reject("[1,2]"), RejectReason::NotAnObject("array"));
    }

    #[test]
    fn an_event_without_id_is_rejected() {
        assert_eq!(reject(&without("id")), RejectReason::MissingField("id"));
        assert_eq!(
            reject(&with("id", "".into())),
            RejectReason::MissingField("id")
        );
        assert_eq!(
            reject(&with("id", Value::Null)),
            RejectReason::MissingField("id")
        );
    }

    #[test]
    fn an_unparsable_number_is_rejected_with_its_text() {
        assert_eq!(
            reject(&with("priceUsd", "12,5".into())),
            RejectReason::NotANumber {
                field: "priceUsd",
                text: "12,5".into()
            }
        );
        assert_eq!(reject(&with("supply", "".into())).code(), "not_a_number");
    }

    #[test]
    fn non_finite_numbers_are_rejected() {
        for text in ["NaN", "inf", "-infinity", "1e999"] {
            assert_eq!(
                reject(&with("marketCapUsd", text.into())).code(),
                "not_finite",
                "{text}"
            );
        }
    }

    #[test]
    fn a_name_longer_than_255_characters_is_rejected() {
        let long = "é".repeat(256);
        assert_eq!(
            reject(&with("name", long.into())),
            RejectReason::TooLong {
                field: "name",
                chars: 256
            }
        );
        let fits = "é".repeat(255);
        assert!(AssetRow::from_event_body(&with("name", fits.into())).is_ok());
        // Outside the BMP a character takes two code units in nvarchar.
        let emoji = "🚀".repeat(128);
        assert_eq!(
            reject(&with("name", emoji.into())),
            RejectReason::TooLong {
                field: "name",
                chars: 256
            }
        );
    }

    #[test]
    fn a_nul_character_is_rejected() {
        assert_eq!(
            reject(&with("symbol", "B\0TC".into())),
            RejectReason::ContainsNul { field: "symbol" }
        );
    }

    #[test]
    fn wrong_types_are_rejected() {
        assert_eq!(reject(&with("name", 5.into())).code(), "wrong_type");
        assert_eq!(reject(&with("priceUsd", true.into())).code(), "wrong_type");
        assert_eq!(reject(&with("rank", "first".into())).code(), "not_a_number");
        assert_eq!(reject(&with("rank", 1.5.into())).code(), "not_a_number");
    }

    #[test]
    fn timestamps_must_be_present_and_inside_datetime_range() {
        assert_eq!(
            reject(&without("timestamp")),
            RejectReason::MissingField("timestamp")
        );
        assert_eq!(
            reject(&with("timestamp", "soon".into())).code(),
            "wrong_type"
        );
        assert_eq!(
            reject(&with("timestamp", 253_402_300_800_000_i64.into())),
            RejectReason::TimestampOutOfRange(253_402_300_800_000)
        );
        assert_eq!(
            reject(&with("timestamp", (-6_900_000_000_000_i64).into())).code(),
            "out_of_range"
        );
    }

    #[test]
    fn a_long_bad_value_is_shortened_in_the_reason() {
        let reason = reject(&with("priceUsd", "x".repeat(1000).into())).to_string();
        assert!(reason.len() < 120, "{reason}");
    }

    #[test]
    fn duplicates_inside_a_batch_are_removed_and_counted() {
        let other = with("id", "ethereum".into());
        let batch = map_events(
            [BITCOIN, &other, BITCOIN, "garbage"]
                .into_iter()
                .map(|b| (b.to_owned(), EventCoordinates::default())),
        );
        assert_eq!(batch.rows.len(), 2);
        assert_eq!(batch.duplicates_in_batch, 1);
        assert_eq!(batch.rejects.len(), 1);
        assert_eq!(batch.rejects[0].raw_body, "garbage");
    }

    #[test]
    fn a_published_event_takes_the_fast_path_to_the_same_row() {
        let tether = r#"{"id":"tether","rank":"3","symbol":"USDT","name":"Tether München 币","supply":"140123456789.0000000000000000","maxSupply":null,"marketCapUsd":"140150000000.1234567890123456","volumeUsd24Hr":"45678901234.5678901234567890","priceUsd":"1.0001903456789012","changePercent24Hr":"-0.0123456789012345","vwap24Hr":null,"explorer":"https://www.omniexplorer.info/asset/31","timestamp":1747000000123}"#;
        for body in [BITCOIN, tether] {
            let fast = AssetRow::from_plain_event(body).expect("a plain event");
            assert_eq!(Ok(fast), AssetRow::from_any_event(body));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_body_becomes_a_row_or_a_reject_without_panicking(body in ".{0,300}") {
            let _ = AssetRow::from_event_body(&body);
        }

        #[test]
        fn any_json_object_becomes_a_row_or_a_reject_without_panicking(
            fields in proptest::collection::hash_map(
                proptest::sample::select(vec!["id", "rank", "name", "priceUsd", "timestamp", "maxSupply", "x"]),
                proptest::prop_oneof![
                    proptest::strategy::Just(Value::Null),
                    proptest::num::i64::ANY.prop_map(Value::from),
                    proptest::num::f64::ANY.prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
                    ".{0,20}".prop_map(Value::from),
                    proptest::bool::ANY.prop_map(Value::from),
                ],
                0..7,
            )
        ) {
            let body = Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()).to_string();
            if let Ok(row) = AssetRow::from_event_body(&body) {
                proptest::prop_assert!(row.price_usd.is_none_or(|p| p.get().is_finite()));
                proptest::prop_assert!(!row.id.as_str().is_empty());
            }
        }

        #[test]
        fn the_fast_path_reads_every_event_exactly_as_the_general_path(
            fields in proptest::collection::hash_map(
                proptest::sample::select(vec!["id", "rank", "symbol", "name", "supply", "priceUsd", "vwap24Hr", "explorer", "timestamp", "tokens"]),
                proptest::prop_oneof![
                    proptest::strategy::Just(Value::Null),
                    proptest::num::i64::ANY.prop_map(Value::from),
                    (1_000_000_000_000_i64..2_000_000_000_000).prop_map(Value::from),
                    proptest::num::f64::ANY.prop_map(|f| Value::from(f.to_string())),
                    "[ 0-9.eE+-]{0,12}".prop_map(Value::from),
                    ".{0,20}".prop_map(Value::from),
                ],
                0..10,
            )
        ) {
            let body = Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()).to_string();
            if let Some(fast) = AssetRow::from_plain_event(&body) {
                proptest::prop_assert_eq!(Ok(fast), AssetRow::from_any_event(&body));
            }
        }

        #[test]
        fn any_finite_decimal_string_round_trips_exactly(price in proptest::num::f64::NORMAL | proptest::num::f64::ZERO) {
            let body = with("priceUsd", price.to_string().into());
            let row = AssetRow::from_event_body(&body).unwrap();
            proptest::prop_assert_eq!(row.price_usd.unwrap().get(), price);
        }
    }
}
