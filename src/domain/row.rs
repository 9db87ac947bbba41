//! `AssetRow`: a row the warehouse table accepts, made from an event or refused with a reason.
//!
//! Parse, don't validate: every column holds a type that can only be built from valid input, so a
//! row that exists is a row every warehouse accepts (no NaN, no 300-character id, no NUL, no date
//! outside `datetime`).

use super::finite::{decimal, trimmed};
use super::{AssetEvent, Field, Finite, RejectReason, Varchar255, WarehouseTime, WireKey};

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

impl AssetRow {
    /// Parses one event body (the seed's event: a CoinCap asset plus `timestamp`).
    pub fn from_event_body(body: &str) -> Result<Self, RejectReason> {
        Self::from_event(&AssetEvent::parse(body)?)
    }

    /// Lenient where the source is: `rank` and the numeric fields may be strings or JSON numbers,
    /// null or missing optional fields become NULL (never 0). Strict where the table is: anything
    /// else is a [`RejectReason`], for the first field (in column order) that is wrong.
    pub fn from_event(event: &AssetEvent<'_>) -> Result<Self, RejectReason> {
        use WireKey::*;
        let text = |key| text(key, event.get(key));
        let number = |key| number(key, event.get(key));
        let id = text(Id)?
            .filter(|id| !id.as_str().is_empty())
            .ok_or(RejectReason::MissingField(Id.as_str()))?;
        Ok(Self {
            id,
            asset_rank: rank(event.get(Rank))?,
            symbol: text(Symbol)?,
            asset_name: text(Name)?,
            supply: number(Supply)?,
            max_supply: number(MaxSupply)?,
            market_cap_usd: number(MarketCapUsd)?,
            volume_usd_24_hr: number(VolumeUsd24Hr)?,
            price_usd: number(PriceUsd)?,
            change_percent_24_hr: number(ChangePercent24Hr)?,
            vwap_24_hr: number(Vwap24Hr)?,
            explorer: text(Explorer)?,
            runtime_timestamp: timestamp(event.get(Timestamp))?,
        })
    }
}

/// Shortens echoed input so a reason stays one readable line.
/// A bad value as a reason quotes it: its first 64 characters.
fn excerpt(text: &str) -> String {
    crate::text::excerpt(text, 64)
}

fn text(key: WireKey, value: &Field<'_>) -> Result<Option<Varchar255>, RejectReason> {
    let field = key.as_str();
    match value {
        Field::Null => Ok(None),
        Field::Text(text) => Varchar255::parse(field, text).map(Some),
        Field::Number(_) | Field::Other(_) => Err(RejectReason::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn number(key: WireKey, value: &Field<'_>) -> Result<Option<Finite>, RejectReason> {
    let field = key.as_str();
    let parsed = match value {
        Field::Null => return Ok(None),
        Field::Text(text) => decimal(text),
        Field::Number(number) => number.as_f64(),
        Field::Other(_) => {
            return Err(RejectReason::WrongType {
                field,
                expected: "a decimal string or a number",
            });
        }
    };
    let text = || match value {
        Field::Number(number) => number.to_string(),
        _ => excerpt(value.as_text().unwrap_or_default()),
    };
    match parsed {
        Some(parsed) => Finite::new(parsed)
            .map(Some)
            .ok_or_else(|| RejectReason::NotFinite {
                field,
                text: text(),
            }),
        None => Err(RejectReason::NotANumber {
            field,
            text: text(),
        }),
    }
}

fn rank(value: &Field<'_>) -> Result<Option<i64>, RejectReason> {
    const FIELD: &str = WireKey::Rank.as_str();
    match value {
        Field::Null => Ok(None),
        Field::Text(text) => {
            trimmed(text)
                .parse()
                .map(Some)
                .map_err(|_| RejectReason::NotANumber {
                    field: FIELD,
                    text: excerpt(text),
                })
        }
        Field::Number(number) => {
            number
                .as_i64()
                .map(Some)
                .ok_or_else(|| RejectReason::NotANumber {
                    field: FIELD,
                    text: number.to_string(),
                })
        }
        Field::Other(_) => Err(RejectReason::WrongType {
            field: FIELD,
            expected: "an integer or an integer string",
        }),
    }
}

fn timestamp(value: &Field<'_>) -> Result<WarehouseTime, RejectReason> {
    const FIELD: &str = WireKey::Timestamp.as_str();
    let ms = match value {
        Field::Null => return Err(RejectReason::MissingField(FIELD)),
        Field::Number(number) => number.as_i64(),
        Field::Text(text) => trimmed(text).parse().ok(),
        Field::Other(_) => None,
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
    use serde::Deserialize as _;
    use serde_json::{Map, Value};

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

    /// The reference reading: the whole body as a `Value` tree first (where a repeated key has
    /// already been resolved to its last value), then the event from the tree.
    fn through_a_value_tree(body: &str) -> Result<AssetRow, RejectReason> {
        let value: Value =
            serde_json::from_str(body).map_err(|e| RejectReason::NotJson(e.to_string()))?;
        let kind = match &value {
            Value::Object(_) => {
                return AssetRow::from_event(&AssetEvent::deserialize(&value).unwrap());
            }
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
        };
        Err(RejectReason::NotAnObject(kind))
    }

    #[test]
    fn a_published_event_reads_in_place_to_the_same_row_as_through_a_value_tree() {
        let tether = r#"{"id":"tether","rank":"3","symbol":"USDT","name":"Tether München 币","supply":"140123456789.0000000000000000","maxSupply":null,"marketCapUsd":"140150000000.1234567890123456","volumeUsd24Hr":"45678901234.5678901234567890","priceUsd":"1.0001903456789012","changePercent24Hr":"-0.0123456789012345","vwap24Hr":null,"explorer":"https://www.omniexplorer.info/asset/31","timestamp":1747000000123}"#;
        for body in [BITCOIN, tether] {
            let row = AssetRow::from_event_body(body);
            assert!(row.is_ok());
            assert_eq!(row, through_a_value_tree(body));
        }
    }

    #[test]
    fn a_repeated_key_counts_with_its_last_value() {
        let body = BITCOIN.replace(r#""rank":"1""#, r#""rank":"x","priceUsd":"1.5","rank":"2""#);
        let row = AssetRow::from_event_body(&body).unwrap();
        assert_eq!(row.asset_rank, Some(2));
        assert_eq!(
            row.price_usd.unwrap().get(),
            "28305.0289009148763385".parse::<f64>().unwrap()
        );
    }

    #[test]
    fn unknown_fields_and_escaped_text_are_read() {
        let body = BITCOIN.replace(
            r#""name":"Bitcoin""#,
            r#""tokens":{"1":["0xab"]},"name":"Bit\u0063oin \"\u5e01\"""#,
        );
        let row = AssetRow::from_event_body(&body).unwrap();
        assert_eq!(row.asset_name.unwrap().as_str(), "Bitcoin \"币\"");
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
        fn reading_in_place_gives_what_reading_through_a_value_tree_gives(
            fields in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["id", "rank", "symbol", "name", "supply", "priceUsd", "vwap24Hr", "explorer", "timestamp", "tokens"]),
                    proptest::prop_oneof![
                        proptest::strategy::Just(Value::Null),
                        proptest::num::i64::ANY.prop_map(Value::from),
                        (1_000_000_000_000_i64..2_000_000_000_000).prop_map(Value::from),
                        (1_000_000_000_000_i64..2_000_000_000_000).prop_map(|t| Value::from(t.to_string())),
                        proptest::num::f64::ANY.prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
                        proptest::num::f64::ANY.prop_map(|f| Value::from(f.to_string())),
                        "[ 0-9.eE+-]{0,12}".prop_map(Value::from),
                        ".{0,20}".prop_map(Value::from),
                        proptest::bool::ANY.prop_map(Value::from),
                        proptest::collection::vec(proptest::num::i32::ANY, 0..3).prop_map(|v| serde_json::json!(v)),
                    ],
                ),
                0..12,
            ),
            not_an_object in proptest::option::weighted(0.1, proptest::prop_oneof![
                proptest::strategy::Just("[1,2]".to_owned()),
                proptest::strategy::Just("null".to_owned()),
                ".{0,10}".prop_map(|s| Value::from(s).to_string()),
                proptest::num::i64::ANY.prop_map(|n| n.to_string()),
            ]),
        ) {
            // Written by hand so that keys can repeat.
            let pairs: Vec<String> = fields
                .iter()
                .map(|(key, value)| format!("{}:{value}", Value::from(*key)))
                .collect();
            let body = not_an_object.unwrap_or_else(|| format!("{{{}}}", pairs.join(",")));
            proptest::prop_assert_eq!(AssetRow::from_event_body(&body), through_a_value_tree(&body));
        }

        #[test]
        fn any_finite_decimal_string_round_trips_exactly(price in proptest::num::f64::NORMAL | proptest::num::f64::ZERO) {
            let body = with("priceUsd", price.to_string().into());
            let row = AssetRow::from_event_body(&body).unwrap();
            proptest::prop_assert_eq!(row.price_usd.unwrap().get(), price);
        }
    }
}
