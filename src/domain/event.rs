//! `AssetEvent`: one CoinCap asset stamped with the response time, the event on the hub.
//! TimerFetch reads it from the CoinCap page and writes it; EventHubSink reads it back. One type
//! for both, read in place: text borrows from the JSON it came from unless it held escapes.

use std::borrow::Cow;
use std::fmt;

use serde::ser::SerializeStruct as _;
use serde::{Serialize, Serializer};
use serde_json::Number;

use super::RejectReason;
use super::json::{JsonWriter, escape_at};

mod read;

/// One field of an event as the JSON holds it: reading never fails on a type, so the sink can
/// say which field is wrong and why (see `AssetRow::from_event`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Field<'a> {
    /// `null`, or the key is absent.
    #[default]
    Null,
    Text(Cow<'a, str>),
    Number(Number),
    /// A boolean, an array or an object (its JSON kind): no column takes one. Written as `null`;
    /// TimerFetch never publishes an event holding one (see [`AssetEvent::stamped`]).
    Other(&'static str),
}

impl Field<'_> {
    /// The same field, its text owned.
    pub fn into_owned(self) -> Field<'static> {
        match self {
            Self::Null => Field::Null,
            Self::Text(text) => Field::Text(Cow::Owned(text.into_owned())),
            Self::Number(number) => Field::Number(number),
            Self::Other(kind) => Field::Other(kind),
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    fn is_text_or_null(&self) -> bool {
        matches!(self, Self::Null | Self::Text(_))
    }
}

/// Declares the event's fields once: the table of wire keys ([`WireKey`]), the struct, its JSON
/// keys (in the order they are written), the key lookup used when reading, and the reader of the
/// usual event.
macro_rules! asset_event {
    ($($(#[$doc:meta])* $variant:ident $field:ident: $key:literal,)*) => {
        /// The event's fields as CoinCap spells them (its JSON keys), in the order they are
        /// written: the one table of them. The page readers, the event reader and writer, the row
        /// mapping ([`crate::domain::AssetRow`]) and the warehouse's column list name a field by
        /// its key here, so a field is added in one place (and a test of the column list fails
        /// until it has its column).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum WireKey {
            $($variant,)*
        }

        const FIELDS: usize = [$($key),*].len();

        impl WireKey {
            /// Every key, in the order they are written.
            pub const ALL: [WireKey; FIELDS] = [$(WireKey::$variant),*];

            /// The key as CoinCap spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(WireKey::$variant => $key,)*
                }
            }
        }

        /// The event TimerFetch publishes, one per asset, in the seed producer's format: the
        /// CoinCap v3 asset fields (numbers as the exact decimal strings CoinCap sent) plus the
        /// response `timestamp`. Unknown keys (`tokens`) are skipped when reading; when a key
        /// repeats, the last one counts (as in any JSON object model).
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct AssetEvent<'a> {
            $($(#[$doc])* pub $field: Field<'a>,)*
        }

        impl<'a> AssetEvent<'a> {
            /// [`AssetEvent::parse_usual`] for JSON text whose quotes are escaped twice
            /// (`TWICE`) or not. Field by field, each key's text a constant (compared in a few
            /// instructions). Escapes and control characters are what JSON escapes, and none is
            /// usual inside a value, so a value's text ends at the first one, which must be the
            /// closing quote.
            fn parse_usual_in<const TWICE: bool>(json: &'a str) -> Option<Self> {
                let quote = if TWICE { "\\\\\\\"" } else { "\"" };
                let mut rest = json;
                let mut event = Self::default();
                let mut separator = '{';
                $(
                    let token = if TWICE {
                        concat!("\\\\\\\"", $key, "\\\\\\\":")
                    } else {
                        concat!("\"", $key, "\":")
                    };
                    rest = rest.strip_prefix(separator)?.strip_prefix(token)?;
                    let (value, after) = usual_value(rest, quote)?;
                    event.$field = value;
                    rest = after;
                    separator = ',';
                )*
                let _ = separator;
                (rest == "}").then_some(event)
            }
        }

        impl<'a> AssetEvent<'a> {
            /// The JSON keys, in the order they are written.
            pub const KEYS: [&'static str; FIELDS] = [$($key),*];

            /// Each key as written after the one before it (`,"key":`), as JSON text and nested
            /// in a JSON string: written whole, the keys need no escaping checks.
            const WRITTEN_KEYS: [(&'static str, &'static str); FIELDS] =
                [$((concat!(",\"", $key, "\":"), concat!(",\\\"", $key, "\\\":"))),*];

            /// Each field with its key, in the order they are written.
            pub fn fields(&self) -> [(WireKey, &Field<'a>); FIELDS] {
                [$((WireKey::$variant, &self.$field)),*]
            }

            /// The field of `key`.
            pub fn get(&self, key: WireKey) -> &Field<'a> {
                match key {
                    $(WireKey::$variant => &self.$field,)*
                }
            }

            /// Where the value of the key spelled `key` goes (`None`: a key the event does not
            /// have, such as `tokens`): what both page readers and the event reader fill.
            pub(crate) fn slot(&mut self, key: &str) -> Option<&mut Field<'a>> {
                match key {
                    $($key => Some(&mut self.$field),)*
                    _ => None,
                }
            }
        }

        impl Serialize for AssetEvent<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut event = serializer.serialize_struct("AssetEvent", FIELDS)?;
                $(event.serialize_field($key, &self.$field)?;)*
                event.end()
            }
        }
    };
}

asset_event! {
    Id id: "id",
    Rank rank: "rank",
    Symbol symbol: "symbol",
    Name name: "name",
    Supply supply: "supply",
    MaxSupply max_supply: "maxSupply",
    MarketCapUsd market_cap_usd: "marketCapUsd",
    VolumeUsd24Hr volume_usd_24_hr: "volumeUsd24Hr",
    PriceUsd price_usd: "priceUsd",
    ChangePercent24Hr change_percent_24_hr: "changePercent24Hr",
    Vwap24Hr vwap_24_hr: "vwap24Hr",
    Explorer explorer: "explorer",
    /// The CoinCap response's `timestamp` (epoch milliseconds), shared by every asset of a call.
    Timestamp timestamp: "timestamp",
}

impl<'a> AssetEvent<'a> {
    /// Reads an event (or a CoinCap asset) from its JSON text; fails only on text that is not
    /// JSON or not a JSON object.
    pub fn parse(json: &'a str) -> Result<Self, RejectReason> {
        if let Some(event) = Self::parse_usual(json) {
            return Ok(event);
        }
        match serde_json::from_str(json) {
            Ok(Parsed::Event(event)) => Ok(event),
            Ok(Parsed::NotAnObject(kind)) => Err(RejectReason::NotAnObject(kind)),
            Err(error) => Err(RejectReason::NotJson(error.to_string())),
        }
    }

    /// The usual event, exactly as [`AssetEvent::to_body`] writes a published one: every key in
    /// order, text without escapes, null, an integer `timestamp`. Read by matching the text
    /// instead of through a JSON parser (a batch has a thousand); `None` for anything else,
    /// which serde_json then reads. Both give the same event (property-tested).
    pub(super) fn parse_usual(json: &'a str) -> Option<Self> {
        Self::parse_usual_in::<false>(json)
    }

    /// The usual event in its text escaped twice, as the host's batch holds it (see
    /// [`crate::domain::EventBody`]): read in place, text borrowed from the batch; `None` for
    /// anything else (then read from the body unescaped). The same event as from the body
    /// (property-tested).
    pub(crate) fn parse_usual_escaped_twice(text: &'a str) -> Option<Self> {
        Self::parse_usual_in::<true>(text)
    }

    /// The event TimerFetch publishes for a CoinCap v3 asset: stamped with the response time,
    /// `rank` as text (as the seed's events have it). `Err` names what does not have the v3 shape
    /// (an `id` that is not text, a field that is neither text nor null): such an asset is
    /// published as it came, so the sink keeps it in the rejects table.
    pub fn stamped(mut self, timestamp: i64) -> Result<Self, NotV3> {
        self.stamp(timestamp)?;
        Ok(self)
    }

    /// [`AssetEvent::stamped`] in place (an event is 400 bytes: moving each of a page's costs
    /// more than stamping it). On `Err` the event is left as it was.
    pub fn stamp(&mut self, timestamp: i64) -> Result<(), NotV3> {
        if !matches!(self.id, Field::Text(_)) {
            return Err(NotV3(WireKey::Id));
        }
        // Every other field is text or null (a number for `rank`; `timestamp` is replaced).
        let fields = self.fields();
        let wrong = fields.iter().find(|(key, field)| match *key {
            WireKey::Timestamp => false,
            WireKey::Rank => !(field.is_text_or_null() || matches!(field, Field::Number(_))),
            _ => !field.is_text_or_null(),
        });
        if let Some((key, _)) = wrong {
            return Err(NotV3(*key));
        }
        if let Field::Number(rank) = &self.rank {
            self.rank = Field::Text(Cow::Owned(rank.to_string()));
        }
        self.timestamp = Field::Number(timestamp.into());
        Ok(())
    }

    /// The compact JSON text sent as the event body.
    pub fn to_body(&self) -> String {
        let mut body = String::with_capacity(512);
        self.write(&mut JsonWriter::plain(&mut body));
        body
    }

    /// Appends the body escaped as the contents of a JSON string, as the Event Hubs output binding
    /// takes it (the body is never built on its own).
    pub fn write_escaped_body(&self, out: &mut String) {
        self.write(&mut JsonWriter::nested(out));
    }

    /// The same text serde_json writes for [`Serialize`], in one pass without a serializer.
    fn write(&self, json: &mut JsonWriter<'_>) {
        json.raw("{");
        let fields = self.fields().into_iter().zip(Self::WRITTEN_KEYS);
        for (i, ((_, field), (plain, nested))) in fields.enumerate() {
            // The first key without its comma.
            let first = usize::from(i == 0);
            json.raw_either(&plain[first..], &nested[first..]);
            match field {
                Field::Null | Field::Other(_) => json.raw("null"),
                Field::Text(text) => json.string(text),
                // An integer (the timestamp) without the formatting machinery: the same digits.
                Field::Number(number) => match number.as_i64() {
                    Some(integer) => json.raw(itoa::Buffer::new().format(integer)),
                    None => json.display(number),
                },
            }
        }
        json.raw("}");
    }
}

/// A value of the usual event and the text after it: `null`, a string without escapes, or a
/// non-negative integer of up to 18 digits (what serde_json reads as the same `u64`).
#[inline(always)]
fn usual_value<'a>(text: &'a str, quote: &str) -> Option<(Field<'a>, &'a str)> {
    if let Some(rest) = text.strip_prefix("null") {
        return Some((Field::Null, rest));
    }
    if let Some(rest) = text.strip_prefix(quote) {
        let end = escape_at(rest.as_bytes());
        let after = rest[end..].strip_prefix(quote)?;
        return Some((Field::Text(Cow::Borrowed(&rest[..end])), after));
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 18 || (digits > 1 && text.starts_with('0')) {
        return None;
    }
    let (number, rest) = text.split_at(digits);
    if !(rest.starts_with(',') || rest.starts_with('}')) {
        return None;
    }
    Some((Field::Number(number.parse::<u64>().ok()?.into()), rest))
}

/// Why a CoinCap asset is not a v3 asset: the key whose value is not what v3 sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotV3(pub WireKey);

impl fmt::Display for NotV3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            WireKey::Id => f.write_str("id must be a string"),
            key => write!(f, "{} must be a string or null", key.as_str()),
        }
    }
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null | Self::Other(_) => serializer.serialize_unit(),
            Self::Text(text) => serializer.serialize_str(text),
            Self::Number(number) => number.serialize(serializer),
        }
    }
}

/// A JSON value as an event, or the kind of JSON it is instead (what a CoinCap page's asset list
/// and an event body may hold).
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a page's assets are events, held side by side in one Vec; boxing each costs an allocation"
)]
pub enum Parsed<'a> {
    Event(AssetEvent<'a>),
    NotAnObject(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn every_key_of_the_table_has_its_field() {
        let mut event = AssetEvent::default();
        for key in WireKey::ALL {
            *event.slot(key.as_str()).unwrap() = Field::Text(Cow::Borrowed(key.as_str()));
        }
        for (key, value) in event.fields() {
            assert_eq!(value.as_text(), Some(key.as_str()));
            assert_eq!(event.get(key), value);
        }
        assert_eq!(AssetEvent::KEYS, WireKey::ALL.map(WireKey::as_str));
        assert!(event.slot("tokens").is_none());
    }

    const BITCOIN_V3: &str = r#"{"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bitcoin",
        "supply":"19861234.0000000000000000","maxSupply":"21000000.0000000000000000",
        "marketCapUsd":"1873456789012.3456789012345678","volumeUsd24Hr":"11234567890.1234567890123456",
        "priceUsd":"94327.1234567890123456","changePercent24Hr":"-1.2345678901234567",
        "vwap24Hr":"95012.9876543210987654","explorer":"https://blockchain.info/","tokens":{"x":["y"]}}"#;

    fn published(asset: &str) -> Result<String, NotV3> {
        AssetEvent::parse(asset)
            .unwrap()
            .stamped(1_747_000_000_000)
            .map(|event| event.to_body())
    }

    #[test]
    fn a_v3_asset_becomes_the_seed_event_with_exact_decimal_strings() {
        assert_eq!(
            published(BITCOIN_V3).unwrap(),
            r#"{"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bitcoin","supply":"19861234.0000000000000000","maxSupply":"21000000.0000000000000000","marketCapUsd":"1873456789012.3456789012345678","volumeUsd24Hr":"11234567890.1234567890123456","priceUsd":"94327.1234567890123456","changePercent24Hr":"-1.2345678901234567","vwap24Hr":"95012.9876543210987654","explorer":"https://blockchain.info/","timestamp":1747000000000}"#
        );
    }

    #[test]
    fn text_borrows_from_the_json_unless_it_held_escapes() {
        let event = AssetEvent::parse(r#"{"id":"bitcoin","name":"O\"Neil"}"#).unwrap();
        assert!(matches!(event.id, Field::Text(Cow::Borrowed("bitcoin"))));
        assert!(matches!(&event.name, Field::Text(Cow::Owned(name)) if name == "O\"Neil"));
    }

    #[test]
    fn a_numeric_rank_is_published_as_text() {
        let body = published(r#"{"id":"x","rank":7}"#).unwrap();
        assert!(body.contains(r#""rank":"7""#), "{body}");
    }

    #[test]
    fn null_and_missing_fields_are_published_as_null() {
        let body: Value =
            serde_json::from_str(&published(r#"{"id":"tether","maxSupply":null}"#).unwrap())
                .unwrap();
        assert_eq!(body["maxSupply"], Value::Null);
        assert_eq!(body["vwap24Hr"], Value::Null);
        assert_eq!(body.as_object().unwrap().len(), AssetEvent::KEYS.len());
    }

    #[test]
    fn an_asset_without_the_v3_shape_is_not_published_as_an_event() {
        let stamped = |asset: &'static str| AssetEvent::parse(asset).unwrap().stamped(1);
        assert_eq!(stamped(r#"{"rank":"1"}"#), Err(NotV3(WireKey::Id)));
        assert_eq!(stamped(r#"{"id":5}"#), Err(NotV3(WireKey::Id)));
        assert_eq!(
            stamped(r#"{"id":"x","priceUsd":1.5}"#),
            Err(NotV3(WireKey::PriceUsd))
        );
        assert_eq!(
            stamped(r#"{"id":"x","name":["a"]}"#),
            Err(NotV3(WireKey::Name))
        );
        assert_eq!(
            NotV3(WireKey::Name).to_string(),
            "name must be a string or null"
        );
    }

    #[test]
    fn the_last_of_repeated_keys_counts() {
        let event = AssetEvent::parse(r#"{"id":"a","id":"b","rank":1,"rank":null}"#).unwrap();
        assert_eq!(event.id.as_text(), Some("b"));
        assert_eq!(event.rank, Field::Null);
    }

    #[test]
    fn every_key_reads_into_its_own_field_and_is_written_back() {
        let json: String = format!(
            "{{{}}}",
            AssetEvent::KEYS
                .iter()
                .map(|key| format!(r#""{key}":"{key}-value""#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let event = AssetEvent::parse(&json).unwrap();
        assert_eq!(event.to_body(), json);
    }

    #[test]
    fn json_that_is_not_an_object_is_named_by_its_kind() {
        for (json, kind) in [
            ("[1,2]", "array"),
            ("\"x\"", "string"),
            ("5", "number"),
            ("-1.5", "number"),
            ("true", "boolean"),
            ("null", "null"),
        ] {
            assert_eq!(
                AssetEvent::parse(json),
                Err(RejectReason::NotAnObject(kind)),
                "{json}"
            );
        }
        assert_eq!(AssetEvent::parse("nope").unwrap_err().code(), "not_json");
        assert_eq!(AssetEvent::parse("{} x").unwrap_err().code(), "not_json");
    }

    #[test]
    fn a_published_event_is_read_by_matching_its_text() {
        let body = published(BITCOIN_V3).unwrap();
        let usual = AssetEvent::parse_usual(&body).expect("the usual event");
        assert_eq!(
            Ok(usual),
            serde_json::from_str::<AssetEvent>(&body).map_err(|_| ())
        );
        for unusual in [
            body.replace("\"rank\":\"1\"", "\"rank\":-1"),
            body.replace("Bitcoin", "Bit\\u0063oin"),
            body.replace(",\"symbol\"", ", \"symbol\""),
            body.replace("}", ",\"tokens\":{}}"),
            body.replace("1747000000000", "1747000000000.5"),
        ] {
            assert_eq!(AssetEvent::parse_usual(&unusual), None, "{unusual}");
        }
    }

    proptest::proptest! {
        #[test]
        fn matching_the_text_reads_what_serde_json_reads(
            texts in proptest::collection::vec(proptest::option::of("\\PC{0,12}|[\"\\\\a\n]{0,4}"), 13),
            number in proptest::prop_oneof![proptest::num::u64::ANY, 0..2_000_000_000_000u64],
            cut in proptest::option::of(0..400usize),
        ) {
            let mut event = AssetEvent::default();
            for ((key, text), i) in AssetEvent::KEYS.iter().zip(&texts).zip(0..) {
                let field = event.slot(key).unwrap();
                *field = match text {
                    Some(text) => Field::Text(Cow::Owned(text.clone())),
                    None if i % 2 == 0 => Field::Number(number.into()),
                    None => Field::Null,
                };
            }
            let mut body = event.to_body();
            if let Some(cut) = cut.filter(|cut| body.is_char_boundary(*cut)) {
                body.truncate(cut);
            }
            if let Some(usual) = AssetEvent::parse_usual(&body) {
                let serde: AssetEvent<'_> = serde_json::from_str(&body).unwrap();
                proptest::prop_assert_eq!(usual, serde);
            }
        }
    }

    #[test]
    fn values_no_column_takes_are_kept_as_their_kind() {
        let event = AssetEvent::parse(r#"{"id":true,"name":{"a":[1]},"rank":[]}"#).unwrap();
        assert_eq!(event.id, Field::Other("boolean"));
        assert_eq!(event.name, Field::Other("object"));
        assert_eq!(event.rank, Field::Other("array"));
    }
}
