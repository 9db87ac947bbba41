//! Compact JSON written straight into a `String`, escaped exactly as serde_json escapes it; either
//! as JSON text or nested as the contents of a JSON string (the host's double encoding: the Event
//! Hubs output binding takes each event as a string holding its JSON text).

use std::fmt::Write as _;

/// Where JSON goes, and whether it goes inside a JSON string.
pub(crate) struct JsonWriter<'o> {
    out: &'o mut String,
    nested: bool,
}

impl<'o> JsonWriter<'o> {
    /// JSON text.
    pub(crate) fn plain(out: &'o mut String) -> Self {
        Self { out, nested: false }
    }

    /// The JSON text escaped as the contents of a JSON string (without the surrounding quotes).
    pub(crate) fn nested(out: &'o mut String) -> Self {
        Self { out, nested: true }
    }

    /// Punctuation, numbers, `null`: text without quotes, backslashes or control characters,
    /// the same in both forms.
    pub(crate) fn raw(&mut self, text: &str) {
        debug_assert!(!needs_escape(text), "{text:?}");
        self.out.push_str(text);
    }

    /// Text known beforehand in both forms (a key with its quotes, `,"key":`): `plain` as JSON
    /// text, `nested` as its escaped form.
    pub(crate) fn raw_either(&mut self, plain: &str, nested: &str) {
        self.out.push_str(if self.nested { nested } else { plain });
    }

    pub(crate) fn display(&mut self, value: impl std::fmt::Display) {
        // Writing into a String cannot fail.
        let _ = write!(self.out, "{value}");
    }

    /// A JSON string holding `text`.
    pub(crate) fn string(&mut self, text: &str) {
        self.quote();
        if !needs_escape(text) {
            self.out.push_str(text);
        } else if self.nested {
            let mut once = String::with_capacity(text.len() + 8);
            escape(&mut once, text);
            escape(self.out, &once);
        } else {
            escape(self.out, text);
        }
        self.quote();
    }

    /// A string's quote. Each form a text of known length: written in place, not by a call to
    /// `memcpy` (as a text chosen between the two would be).
    fn quote(&mut self) {
        if self.nested {
            self.out.push_str("\\\"");
        } else {
            self.out.push('"');
        }
    }
}

/// Whether JSON needs an escape for any byte of `text` (a quote, a backslash, a control
/// character): eight bytes at a time.
pub(crate) fn needs_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() < 8 {
        return bytes.iter().any(|&byte| needs_escape_byte(byte));
    }
    let mut words = bytes.chunks_exact(8);
    let any = words
        .by_ref()
        .fold(false, |any, word| any | (escape_mask(word) != 0));
    // The last eight bytes again, for the ones `chunks_exact` left over.
    any | (escape_mask(&bytes[bytes.len() - 8..]) != 0)
}

/// Where the first byte JSON needs an escape for is (a quote, a backslash, a control
/// character): how a reader finds the end of a string, eight bytes at a time. Inlined: a page
/// has 50,000 strings, most a word or two long.
#[inline]
pub(crate) fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    for (i, word) in words.by_ref().enumerate() {
        let mask = escape_mask(word);
        if mask != 0 {
            // The lowest byte marked is one that needs an escape (see `escape_mask`).
            return Some(i * 8 + (mask.trailing_zeros() / 8) as usize);
        }
    }
    let rest = words.remainder();
    let at = rest.iter().position(|&byte| needs_escape_byte(byte))?;
    Some(bytes.len() - rest.len() + at)
}

fn needs_escape_byte(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The high bit of each of 8 bytes (in little-endian order) that needs an escape, all at once:
/// a byte's high bit ends up set in `word - 0x20 * ONES` where the byte is below 0x20, and in
/// `(word ^ b * ONES) - ONES` where it equals `b`, unless the byte had its own high bit set
/// (masked out by `!word`); the "determine if a word has a byte less than n" and "has a zero
/// byte" tricks of <https://graphics.stanford.edu/~seander/bithacks.html#HasLessInWord>. A
/// borrow may also mark bytes above one that is marked already, never below: the lowest byte
/// marked is exact, and so is whether any is.
fn escape_mask(word: &[u8]) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
    let below_space = word.wrapping_sub(ONES * 0x20);
    let quote = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
    let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
    (below_space | quote | backslash) & !word & (ONES * 0x80)
}

/// `text` as the contents of a JSON string, escaped as serde_json escapes it: quote, backslash
/// and the control characters (short forms where JSON has them, `\u00XX` otherwise).
pub(crate) fn escape(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let short = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AssetEvent, Field};

    fn written(text: &str, nested: bool) -> String {
        let mut out = String::new();
        let mut writer = if nested {
            JsonWriter::nested(&mut out)
        } else {
            JsonWriter::plain(&mut out)
        };
        writer.string(text);
        out
    }

    #[test]
    fn control_characters_quotes_and_backslashes_are_escaped() {
        assert_eq!(written("a\"b\\c\n\u{1}", false), r#""a\"b\\c\n\u0001""#);
        assert_eq!(written("\u{7f}é", false), "\"\u{7f}é\"");
        assert_eq!(written("plain", true), r#"\"plain\""#);
    }

    proptest::proptest! {
        #[test]
        fn eight_bytes_at_a_time_find_what_one_at_a_time_finds(
            text in "[\\x00-\\x7f]{0,24}|[\\x1f-\\x23\\x5b-\\x5d\\x7f-\\x81\\xa2\\xdc\\u{100}-\\u{200}a]{0,24}",
        ) {
            proptest::prop_assert_eq!(needs_escape(&text), text.bytes().any(needs_escape_byte));
            proptest::prop_assert_eq!(
                first_to_escape(text.as_bytes()),
                text.bytes().position(needs_escape_byte)
            );
        }

        #[test]
        fn an_event_is_written_as_serde_json_writes_it_in_both_forms(
            texts in proptest::collection::vec(proptest::option::of("\\PC{0,6}|[\"\\\\a\n]{0,3}"), 13),
            timestamp in proptest::num::i64::ANY,
        ) {
            let mut event = AssetEvent { timestamp: Field::Number(timestamp.into()), ..AssetEvent::default() };
            let fields = [
                &mut event.id, &mut event.rank, &mut event.symbol, &mut event.name, &mut event.supply,
                &mut event.max_supply, &mut event.market_cap_usd, &mut event.volume_usd_24_hr,
                &mut event.price_usd, &mut event.change_percent_24_hr, &mut event.vwap_24_hr,
                &mut event.explorer,
            ];
            for (field, text) in fields.into_iter().zip(&texts) {
                *field = text.clone().map_or(Field::Null, |text| Field::Text(text.into()));
            }
            let body = event.to_body();
            proptest::prop_assert_eq!(&body, &serde_json::to_string(&event).unwrap());
            let mut nested = String::new();
            event.write_escaped_body(&mut nested);
            let quoted = serde_json::to_string(&body).unwrap();
            proptest::prop_assert_eq!(nested, &quoted[1..quoted.len() - 1]);
        }

        #[test]
        fn a_string_is_written_as_serde_json_writes_it(text in "\\PC*|[\\x00-\\x20\"\\\\a]{0,20}") {
            let once = serde_json::to_string(&text).unwrap();
            proptest::prop_assert_eq!(written(&text, false), once.clone());
            let twice = serde_json::to_string(&once).unwrap();
            proptest::prop_assert_eq!(written(&text, true), &twice[1..twice.len() - 1]);
        }
    }
}
