//! The request envelope read in one pass: `Data` and `Metadata` as maps of entries whose JSON text
//! is only scanned (borrowed from the body), every other key skipped. The usual envelope is
//! skimmed ([`skim`]): its strings (a batch's events: a megabyte escaped twice) are found and
//! checked by a quick scan, everything else read by serde_json; any other goes to serde_json
//! whole.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{IgnoredAny, MapAccess, Visitor};

use crate::domain::json::{Cursor, string_len};
use serde::{Deserialize, Deserializer};

use super::*;

/// The envelope as one pass reads it: `Data` and `Metadata` (missing or null: empty; a string
/// holding an object: that object; `Err` names one that is something else). Other keys are
/// skipped; when a key repeats, the last one counts.
pub(super) struct Envelope<'a> {
    pub(super) data: Result<Entries<'a>, &'static str>,
    pub(super) metadata: Result<Entries<'a>, &'static str>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor(PhantomData))
    }
}

struct EnvelopeVisitor<'a>(PhantomData<Envelope<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an invocation envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope {
            data: Ok(Entries::new()),
            metadata: Ok(Entries::new()),
        };
        while let Some(key) = map.next_key::<Cow<'_, str>>()? {
            match &*key {
                "Data" => envelope.data = map.next_value::<EntriesOf<'a>>()?.named("Data"),
                "Metadata" => {
                    envelope.metadata = map.next_value::<EntriesOf<'a>>()?.named("Metadata");
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// `Data` or `Metadata`: its entries, or `None` when it is not an object (nor a string holding
/// one, nor null).
struct EntriesOf<'a>(Option<Entries<'a>>);

impl<'a> EntriesOf<'a> {
    fn named(self, key: &'static str) -> Result<Entries<'a>, &'static str> {
        self.0.ok_or(key)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for EntriesOf<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EntriesVisitor(PhantomData))
    }
}

struct EntriesVisitor<'a>(PhantomData<Entries<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
    type Value = EntriesOf<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Entries::new();
        while let Some(key) = map.next_key::<String>()? {
            let entry = map.next_value::<&'a RawValue>()?;
            entries.insert(key, Entry::Raw(entry.get()));
        }
        Ok(EntriesOf(Some(entries)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(EntriesOf(Some(Entries::new())))
    }

    /// Double encoded: a string holding the object's JSON text.
    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(EntriesOf(
            match decode_owned(Value::String(text.to_owned())) {
                Value::Null => Some(Entries::new()),
                Value::Object(object) => Some(
                    object
                        .into_iter()
                        .map(|(key, value)| (key, Entry::Value(value)))
                        .collect(),
                ),
                _ => None,
            },
        ))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(EntriesOf(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(EntriesOf(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(EntriesOf(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(EntriesOf(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(EntriesOf(None))
    }
}

/// The usual envelope: a JSON object whose `Data` and `Metadata` are objects (or absent), with
/// keys without escapes. Its strings are found and checked by [`string_len`] (as serde_json checks
/// a string it skips), its other values read by serde_json. `None` for anything else, which
/// [`Envelope`] then reads (and says what is wrong); both read the same entries (property-tested).
pub(super) fn skim(body: &[u8]) -> Option<(Entries<'_>, Entries<'_>)> {
    let mut skim = Skim(Cursor::new(std::str::from_utf8(body).ok()?));
    let (mut data, mut metadata) = (Entries::new(), Entries::new());
    skim.object(|skim, key| {
        match key {
            "Data" => data = skim.entries()?,
            "Metadata" => metadata = skim.entries()?,
            _ => {
                skim.value()?;
            }
        }
        Some(())
    })?;
    skim.0.at_end().then_some((data, metadata))
}

/// The envelope's reader (see [`Cursor`]).
struct Skim<'a>(Cursor<'a>);

impl<'a> Skim<'a> {
    /// An object, `entry` called on each key to read its value.
    fn object(&mut self, mut entry: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if !self.0.eat(b'{') {
            return None;
        }
        if self.0.eat(b'}') {
            return Some(());
        }
        loop {
            self.0.skip_white_space();
            let key = self.string()?;
            let key = &key[1..key.len() - 1];
            if key.contains('\\') || !self.0.eat(b':') {
                return None;
            }
            self.0.skip_white_space();
            entry(self, key)?;
            if self.0.eat(b'}') {
                return Some(());
            }
            if !self.0.eat(b',') {
                return None;
            }
        }
    }

    /// A JSON string's text, quotes included.
    fn string(&mut self) -> Option<&'a str> {
        let cursor = &mut self.0;
        let len = string_len(&cursor.text.as_bytes()[cursor.at..])?;
        let string = cursor.text.get(cursor.at..cursor.at + len)?;
        cursor.at += len;
        Some(string)
    }

    /// Any JSON value's text.
    fn value(&mut self) -> Option<&'a str> {
        if self.0.peek()? == b'"' {
            return self.string();
        }
        self.0.serde::<&RawValue>().map(RawValue::get)
    }

    /// `Data` or `Metadata` as an object of entries.
    fn entries(&mut self) -> Option<Entries<'a>> {
        let mut entries = Entries::new();
        self.object(|skim, key| {
            let value = skim.value()?;
            entries.insert(key.to_owned(), Entry::Raw(value));
            Some(())
        })?;
        Some(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::event_hubs::batch_request;

    /// What serde_json reads, for comparison.
    fn through_serde(body: &[u8]) -> Option<(Entries<'_>, Entries<'_>)> {
        match serde_json::from_slice::<Envelope<'_>>(body) {
            Ok(Envelope {
                data: Ok(data),
                metadata: Ok(metadata),
            }) => Some((data, metadata)),
            _ => None,
        }
    }

    #[test]
    fn the_host_s_batch_is_skimmed_to_what_serde_json_reads() {
        let body = batch_request(&[r#"{"id":"a \"q\" \\ é"}"#, "not json", "\u{1}\n"]);
        let skimmed = skim(body.as_bytes()).expect("the usual envelope");
        assert_eq!(Some(&skimmed), through_serde(body.as_bytes()).as_ref());
        assert!(skimmed.0.contains_key("events") && skimmed.1.contains_key("OffsetArray"));
    }

    #[test]
    fn whitespace_is_skipped_and_anything_unusual_left_to_serde_json() {
        let spaced = b" { \"Data\" : { \"a\" : [1, 2] , \"b\" : \"x\" } ,\n\"Metadata\":{} } ";
        let (data, _) = skim(spaced).unwrap();
        assert_eq!(data.get("a"), Some(&Entry::Raw("[1, 2]")));
        assert_eq!(data.get("b"), Some(&Entry::Raw("\"x\"")));
        for unusual in [
            &br#"{"Data":null}"#[..],
            br#"{"Data":"{\"a\":1}"}"#,
            br#"{"D\u0061ta":{}}"#,
            br#"{"Data":{}} x"#,
            br#"{"Data":{"a":1,}}"#,
            b"[]",
            b"{\"Data\":{\"a\":\"\xff\"}}",
        ] {
            assert_eq!(skim(unusual), None, "{}", String::from_utf8_lossy(unusual));
        }
    }

    proptest::proptest! {
        #[test]
        fn a_skimmed_envelope_is_one_serde_json_reads_the_same(
            bodies in proptest::collection::vec("[a\"\\\\{}\\[\\],: \\x01é]{0,12}", 1..4),
            at in proptest::num::usize::ANY,
            byte in proptest::sample::select(b"\"\\{}[],: u0a\x01\n".to_vec()),
        ) {
            let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
            let mut body = batch_request(&bodies).into_bytes();
            let at = at % body.len();
            body[at] = byte;
            if let Some(skimmed) = skim(&body) {
                proptest::prop_assert_eq!(Some(skimmed), through_serde(&body));
            }
        }
    }
}
