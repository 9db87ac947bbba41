//! The request envelope read in one pass: `Data` and `Metadata` as maps of entries whose JSON text
//! is only scanned (borrowed from the body), every other key skipped.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{IgnoredAny, MapAccess, Visitor};
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
            entries.insert(key, Entry::Raw(entry));
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
