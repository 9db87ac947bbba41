//! The usual page read by hand in one pass: `{"data": [<assets>], "timestamp": <integer>}`, each
//! asset an object whose values are text without escapes or null (and whatever the keys the
//! event does not have hold, `tokens`). serde_json reads what this does not: another object where
//! it stands, an unusual page as a whole (see [`super::AssetsPage::read_each`]). Both read the
//! same (property-tested); by hand, a 2000-asset page costs a third of what a serde visitor does,
//! which looks up every key and goes through a visitor for every value. Each asset is read into
//! the same event, in place: an event is 400 bytes, and moving each costs more than reading it.

use std::borrow::Cow;

use serde::de::IgnoredAny;

use std::ops::{Deref, DerefMut};

use crate::domain::json::{Cursor, escape_at};
use crate::domain::{AssetEvent, Field, Parsed};

/// Reads the page, handing each asset to `each`: its timestamp when the page has one asset
/// list with at least one asset, each a JSON object, and one integer timestamp, no `error` key
/// and no key twice, and `each` took every asset. `None` for anything else (an asset that is not
/// an object or that `each` refused, a page serde_json would read differently or not at all).
pub(super) fn read_page<'a>(
    text: &'a str,
    mut each: impl FnMut(&mut AssetEvent<'a>) -> bool,
) -> Option<i64> {
    let mut page = Reader(Cursor::new(text));
    let (mut assets, mut timestamp) = (None, None);
    if !page.eat(b'{') {
        return None;
    }
    loop {
        if !page.eat(b'"') {
            return None;
        }
        let key = page.plain_string()?;
        if !page.eat(b':') {
            return None;
        }
        match key {
            "data" if assets.is_none() => assets = Some(page.assets(&mut each)?),
            "timestamp" if timestamp.is_none() => timestamp = Some(page.serde::<i64>()?),
            "data" | "timestamp" | "error" => return None,
            _ => {
                page.serde::<IgnoredAny>()?;
            }
        }
        if page.eat(b'}') {
            break;
        }
        if !page.eat(b',') {
            return None;
        }
    }
    page.skip_white_space();
    match (assets, timestamp) {
        (Some(1..), Some(timestamp)) if page.at == text.len() => Some(timestamp),
        _ => None,
    }
}

/// Where a reading is in the page's text (see [`Cursor`]).
struct Reader<'a>(Cursor<'a>);

impl<'a> Deref for Reader<'a> {
    type Target = Cursor<'a>;

    fn deref(&self) -> &Cursor<'a> {
        &self.0
    }
}

impl DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'a> Reader<'a> {
    /// The text of a string without escapes, its opening quote read; `None` if it has one (or
    /// a control character, or no end). Inlined: there are 25 in an asset.
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'a str> {
        let rest = &self.text.as_bytes()[self.at..];
        let end = escape_at(rest);
        if rest.get(end) != Some(&b'"') {
            return None;
        }
        let text = &self.text[self.at..self.at + end];
        self.at += end + 1;
        Some(text)
    }

    /// The asset list, each asset handed to `each`: how many there were.
    fn assets(&mut self, each: &mut impl FnMut(&mut AssetEvent<'a>) -> bool) -> Option<usize> {
        if !self.eat(b'[') {
            return None;
        }
        if self.eat(b']') {
            return Some(0);
        }
        let mut count = 0;
        let mut event = AssetEvent::default();
        loop {
            self.skip_white_space();
            let start = self.at;
            if self.usual_asset(&mut event).is_none() {
                self.at = start;
                match self.serde::<Parsed<'a>>()? {
                    Parsed::Event(other) => event = other,
                    Parsed::NotAnObject(_) => return None,
                }
            }
            if !each(&mut event) {
                return None;
            }
            count += 1;
            if self.eat(b']') {
                return Some(count);
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// Reads into `event` an object whose values are text without escapes or null, and anything
    /// for the keys the event does not have; `None` for anything else, for serde_json to read.
    fn usual_asset(&mut self, event: &mut AssetEvent<'a>) -> Option<()> {
        *event = AssetEvent::default();
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            if !self.eat(b'"') {
                return None;
            }
            let key = self.plain_string()?;
            if !self.eat(b':') {
                return None;
            }
            self.skip_white_space();
            let field = event.slot(key);
            let value = match self.peek()? {
                b'"' => {
                    self.at += 1;
                    Field::Text(Cow::Borrowed(self.plain_string()?))
                }
                b'n' if self.text[self.at..].starts_with("null") => {
                    self.at += "null".len();
                    Field::Null
                }
                _ if field.is_none() => {
                    self.serde::<IgnoredAny>()?;
                    Field::Null
                }
                _ => return None,
            };
            // When a key repeats, the last one counts (as serde_json reads it too).
            if let Some(field) = field {
                *field = value;
            }
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// An object as read by hand alone, and as serde_json reads it; checks that reading a page of
    /// it hands out what serde_json reads (reading by hand or by serde_json where it stands).
    fn both_ways(asset: &str) -> (Option<AssetEvent<'_>>, Option<AssetEvent<'_>>) {
        let page = format!(r#"{{"data":[{asset}],"timestamp":1}}"#);
        let mut handed = None;
        let read = read_page(&page, |event| {
            handed = Some(format!("{event:?}"));
            true
        });
        let serde = match serde_json::from_str(asset) {
            Ok(Parsed::Event(event)) => Some(event),
            _ => None,
        };
        // A page that is not read is thrown away (whatever was handed out before), and one is
        // read whenever its asset is.
        let handed = read.and(handed);
        assert!(read.is_some() || serde.is_none(), "{page}");
        assert_eq!(handed, serde.as_ref().map(|event| format!("{event:?}")));
        let mut reader = Reader(Cursor::new(asset));
        let mut event = AssetEvent::default();
        let usual = reader.usual_asset(&mut event).map(|()| event);
        reader.skip_white_space();
        (usual.filter(|_| reader.at == asset.len()), serde)
    }

    #[test]
    fn usual_assets_are_read_by_hand_and_other_objects_by_serde_json() {
        for (asset, by_hand) in [
            (
                r#"{"id":"bitcoin","rank":"1","maxSupply":null,"tokens":{"1":["0xab"]}}"#,
                true,
            ),
            (r#" { "id" : "a" , "id" : "b" , "x" : [ 1 , {} ] } "#, true),
            ("{}", true),
            (r#"{"id":"O\"Neil"}"#, false),
            (r#"{"rank":7}"#, false),
            (r#"{"name":["a"]}"#, false),
            (r#"{"n\u0061me":"a"}"#, false),
        ] {
            let (usual, serde) = both_ways(asset);
            assert!(serde.is_some(), "{asset}");
            assert_eq!(usual.is_some(), by_hand, "{asset}");
            if by_hand {
                assert_eq!(usual, serde, "{asset}");
            }
        }
    }

    #[test]
    fn a_page_with_an_asset_that_is_not_an_object_is_not_read() {
        for asset in ["[1]", "null", "\"x\"", "5"] {
            let page = format!(r#"{{"data":[{{}},{asset}],"timestamp":1}}"#);
            assert_eq!(read_page(&page, |_| true), None, "{page}");
        }
        assert_eq!(
            read_page(r#"{"data":[{}],"timestamp":1}"#, |_| true),
            Some(1)
        );
    }

    #[test]
    fn what_serde_json_refuses_is_refused() {
        for asset in [
            r#"{"id":"a",}"#,
            r#"{"id":"a" "rank":"1"}"#,
            r#"{"id":nul}"#,
            r#"{"id":nullx}"#,
            "{\"id\":\"a\u{1}\"}",
            r#"{"tokens":{"1":}}"#,
            r#"{"id":"a"#,
            "",
        ] {
            let (usual, serde) = both_ways(asset);
            assert_eq!((usual, serde), (None, None), "{asset}");
        }
    }

    proptest! {
        #[test]
        fn by_hand_reads_what_serde_json_reads(
            fields in proptest::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(AssetEvent::KEYS.to_vec()).prop_map(str::to_owned),
                        "[a-z\"\\\\]{0,4}",
                    ],
                    prop_oneof![
                        "\\PC{0,6}|[\"\\\\a\n\u{1}]{0,3}".prop_map(|text| serde_json::to_string(&text).unwrap()),
                        Just("null".to_owned()),
                        Just("-1.5e3".to_owned()),
                        Just("[{\"a\":[true]}]".to_owned()),
                        Just("\"\u{1}\"".to_owned()),
                    ],
                ),
                0..8,
            ),
            space in proptest::sample::select(vec!["", " ", "\n\t"]),
            cut in proptest::option::of(0..200usize),
        ) {
            let fields: Vec<String> = fields
                .iter()
                .map(|(key, value)| format!("{space}{}{space}:{space}{value}", serde_json::to_string(key).unwrap()))
                .collect();
            let mut asset = format!("{{{}{space}}}", fields.join(","));
            if let Some(cut) = cut.filter(|cut| asset.is_char_boundary(*cut)) {
                asset.truncate(cut);
            }
            let (usual, serde) = both_ways(&asset);
            if usual.is_some() {
                prop_assert_eq!(usual, serde);
            }
        }
    }
}
