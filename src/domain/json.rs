//! Compact JSON written straight into a `String`, escaped exactly as serde_json escapes it; either
//! as JSON text or nested as the contents of a JSON string (the host's double encoding: the Event
//! Hubs output binding takes each event as a string holding its JSON text). And the two scans the
//! quick readers of JSON text share: where the next escape is, and where a string ends.

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
    let Some(last) = bytes.last_chunk::<8>() else {
        return bytes.iter().any(|&byte| needs_escape_byte(byte));
    };
    let (words, _) = bytes.as_chunks::<8>();
    let any = words.iter().fold(false, |any, word| {
        any | (escape_mask(u64::from_le_bytes(*word)) != 0)
    });
    // The last eight bytes again, for the ones the chunks left over (the mask is exact as to
    // whether a word has any such byte).
    any | (escape_mask(u64::from_le_bytes(*last)) != 0)
}

fn needs_escape_byte(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
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

/// One in each byte.
const LOW: u64 = 0x0101_0101_0101_0101;
/// The high bit of each byte.
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit set in each byte of `word` that JSON escapes (a quote, a backslash, a control
/// character); exact up to the lowest one, which is all [`escape_at`] reads (the subtraction's
/// borrow can only mark bytes above a marked one).
fn escape_mask(word: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(LOW) & !x & HIGH;
    let control = word.wrapping_sub(LOW * 0x20) & !word & HIGH;
    zero(word ^ (LOW * u64::from(b'"'))) | zero(word ^ (LOW * u64::from(b'\\'))) | control
}

/// Where the first byte of `bytes` that JSON escapes is (`bytes.len()` when none is), looked for
/// eight bytes at a time. Inlined: the page reader calls it 50,000 times a page.
#[inline]
pub(crate) fn escape_at(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(word) = bytes[at..].first_chunk::<8>() {
        let mask = escape_mask(u64::from_le_bytes(*word));
        if mask != 0 {
            return at + (mask.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = &bytes[at..];
    at + tail
        .iter()
        .position(|&b| needs_escape_byte(b))
        .unwrap_or(tail.len())
}

/// The length of the JSON string that starts `text` (its quotes included), when it is one
/// serde_json accepts: no control character, only JSON's escapes (`\u` with four hex digits).
/// `None` otherwise.
///
/// A batch's events are a megabyte of text escaped twice, an escape every few bytes, where
/// serde_json's reader stops at each. Here the text is read 64 bytes at a time as bits
/// ([`Block`]): the closing quote is the first quote no backslash escapes ([`escaped`]), and the
/// escapes are all valid when each escapes a quote or a backslash; anything else is checked
/// escape by escape.
pub(crate) fn string_len(text: &[u8]) -> Option<usize> {
    if text.first() != Some(&b'"') {
        return None;
    }
    let mut carry = 0;
    for (n, chunk) in text[1..].chunks(64).enumerate() {
        let block = Block::of(chunk);
        let escaped = escaped(block.backslash, &mut carry);
        let ends = block.quote & !escaped;
        let before_end = match ends {
            0 => u64::MAX,
            ends => (1 << ends.trailing_zeros()) - 1,
        };
        let unusual = block.control | (escaped & !(block.quote | block.backslash));
        if unusual & before_end != 0 {
            return checked_string_len(text);
        }
        if ends != 0 {
            return Some(1 + 64 * n + ends.trailing_zeros() as usize + 1);
        }
    }
    None
}

/// 64 bytes of JSON text as bits: which are backslashes, quotes, control characters.
pub(crate) struct Block {
    pub(crate) backslash: u64,
    pub(crate) quote: u64,
    pub(crate) control: u64,
}

impl Block {
    /// The bits of `bytes` (at most 64; past its end, spaces).
    pub(crate) fn of(bytes: &[u8]) -> Self {
        let mut padded = [b' '; 64];
        let block = match bytes.first_chunk::<64>() {
            Some(block) => block,
            None => {
                padded[..bytes.len()].copy_from_slice(bytes);
                &padded
            }
        };
        let mut bits = Self {
            backslash: 0,
            quote: 0,
            control: 0,
        };
        for (i, lane) in block.as_chunks::<16>().0.iter().enumerate() {
            let (backslash, quote, control) = lane_bits(lane);
            bits.backslash |= u64::from(backslash) << (16 * i);
            bits.quote |= u64::from(quote) << (16 * i);
            bits.control |= u64::from(control) << (16 * i);
        }
        bits
    }
}

/// Backslash, quote and control-character bits of 16 bytes: three SSE2 compares and masks.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn lane_bits(lane: &[u8; 16]) -> (u16, u16, u16) {
    // SAFETY: the only requirement of a `target_feature` function is that the CPU has the
    // feature, and this is compiled only where SSE2 is enabled (all of x86-64 has it). Compilers
    // do not turn the byte-at-a-time form into these masks, hence the intrinsics.
    unsafe { sse2_lane_bits(lane) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn sse2_lane_bits(lane: &[u8; 16]) -> (u16, u16, u16) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8,
    };
    let (low, high) = lane.split_at(8);
    let half = |bytes: &[u8]| i64::from_le_bytes(bytes.try_into().unwrap_or_default());
    let bytes = _mm_set_epi64x(half(high), half(low));
    let equal =
        |byte: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(byte as i8))) as u16;
    // Unsigned `byte <= 0x1f` is `max(byte, 0x1f) == 0x1f`.
    let limit = _mm_set1_epi8(0x1f);
    let control = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(bytes, limit), limit)) as u16;
    (equal(b'\\'), equal(b'"'), control)
}

/// [`lane_bits`] a byte at a time (elsewhere, and as the reference the SSE2 form is tested
/// against).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn lane_bits_bytewise(lane: &[u8; 16]) -> (u16, u16, u16) {
    let (mut backslash, mut quote, mut control) = (0u16, 0u16, 0u16);
    for (i, &byte) in lane.iter().enumerate() {
        backslash |= u16::from(byte == b'\\') << i;
        quote |= u16::from(byte == b'"') << i;
        control |= u16::from(byte < 0x20) << i;
    }
    (backslash, quote, control)
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn lane_bits(lane: &[u8; 16]) -> (u16, u16, u16) {
    lane_bits_bytewise(lane)
}

/// The bits of the characters a backslash escapes (the one after each run of backslashes of odd
/// length), given a block's backslash bits; `carry` says whether the previous block's last
/// backslash escapes this block's first byte, and is updated for the next block. simdjson's
/// branchless method (Langdale and Lemire, "Parsing Gigabytes of JSON per Second", 2019).
pub(crate) fn escaped(backslash: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*carry;
    let follows_escape = (backslash << 1) | *carry;
    let odd_starts = backslash & !EVEN & !follows_escape;
    let (even_starts, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    (EVEN ^ (even_starts << 1)) & follows_escape
}

/// [`string_len`] escape by escape.
fn checked_string_len(text: &[u8]) -> Option<usize> {
    let mut at = 1;
    loop {
        at += escape_at(&text[at..]);
        while text.get(at) == Some(&b'\\') {
            at += match *text.get(at + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                b'u' if text.get(at + 2..at + 6)?.iter().all(u8::is_ascii_hexdigit) => 6,
                _ => return None,
            };
        }
        match *text.get(at)? {
            b'"' => return Some(at + 1),
            control if control < 0x20 => return None,
            // Plain text after an escape.
            _ => {}
        }
    }
}

/// A cursor over JSON text, shared by the hand readers of the usual forms (the host's envelope,
/// CoinCap's page). Always at a character boundary: it only ever steps over ASCII punctuation
/// and white space, or over a whole string or value.
pub(crate) struct Cursor<'a> {
    pub(crate) text: &'a str,
    pub(crate) at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// JSON's white space: space, tab, line feed, carriage return.
    pub(crate) fn skip_white_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Steps over white space and `byte`, if `byte` is next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        self.skip_white_space();
        let next = self.peek() == Some(byte);
        self.at += usize::from(next);
        next
    }

    /// The value serde_json reads next.
    pub(crate) fn serde<T: serde::Deserialize<'a>>(&mut self) -> Option<T> {
        let mut values = serde_json::Deserializer::from_str(&self.text[self.at..]).into_iter();
        let value = values.next()?.ok()?;
        self.at += values.byte_offset();
        Some(value)
    }

    /// Whether only white space is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.skip_white_space();
        self.at == self.text.len()
    }
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

    /// The length serde_json finds for the string that starts `bytes`.
    fn serde_string_len(bytes: &[u8]) -> Option<usize> {
        let mut reader = serde_json::Deserializer::from_slice(bytes);
        let raw = <&serde_json::value::RawValue as serde::Deserialize>::deserialize(&mut reader);
        raw.ok().map(|raw| raw.get().len())
    }

    #[test]
    fn a_string_ends_at_its_first_unescaped_quote() {
        assert_eq!(string_len(br#""" tail"#), Some(2));
        assert_eq!(string_len(br#""a\\"b"#), Some(5));
        assert_eq!(string_len(br#""a\"b" x"#), Some(6));
        assert_eq!(string_len(br#""\\\"q\u00e9\/" x"#), Some(15));
        for bad in [
            &br#""a\qb""#[..],
            br#""\u12g4""#,
            b"\"a\x01\"",
            br#""open"#,
            b"x\"\"",
        ] {
            assert_eq!(string_len(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    proptest::proptest! {
        #[test]
        fn the_escape_found_is_the_first_byte_json_escapes(bytes in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::num::u8::ANY,
                proptest::sample::select(b"a\"\\\x1f\x20\x7f\x80".to_vec()),
            ],
            0..40,
        )) {
            let naive = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            proptest::prop_assert_eq!(escape_at(&bytes), naive.unwrap_or(bytes.len()));
        }

        #[test]
        fn lane_bits_are_the_bytes_classes(lane in proptest::array::uniform16(proptest::prop_oneof![
            proptest::num::u8::ANY,
            proptest::sample::select(b"\"\\\x00\x1f\x20\x7f\x80\xff".to_vec()),
        ])) {
            proptest::prop_assert_eq!(lane_bits(&lane), lane_bits_bytewise(&lane));
        }

        #[test]
        fn a_string_is_found_and_checked_as_serde_json_does(
            text in "[a\"\\\\/bnu0-9fA\\x00-\\x1f é]{0,300}",
        ) {
            let bytes = format!("\"{text}");
            let serde = serde_string_len(bytes.as_bytes());
            proptest::prop_assert_eq!(string_len(bytes.as_bytes()), serde);
            proptest::prop_assert_eq!(checked_string_len(bytes.as_bytes()), serde);
        }
    }
}
