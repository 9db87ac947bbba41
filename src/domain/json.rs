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

    pub(crate) fn display(&mut self, value: impl std::fmt::Display) {
        // Writing into a String cannot fail.
        let _ = write!(self.out, "{value}");
    }

    /// A JSON string holding `text`.
    pub(crate) fn string(&mut self, text: &str) {
        let quote = if self.nested { "\\\"" } else { "\"" };
        self.out.push_str(quote);
        if !needs_escape(text) {
            self.out.push_str(text);
        } else if self.nested {
            let mut once = String::with_capacity(text.len() + 8);
            escape(&mut once, text);
            escape(self.out, &once);
        } else {
            escape(self.out, text);
        }
        self.out.push_str(quote);
    }
}

/// Whether JSON needs an escape for any byte of `text` (a quote, a backslash, a control
/// character). Without an early exit, so the loop vectorises.
pub(crate) fn needs_escape(text: &str) -> bool {
    text.bytes().fold(false, |any, byte| {
        any | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
    })
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
        fn a_string_is_written_as_serde_json_writes_it(text in "\\PC*|[\\x00-\\x20\"\\\\a]{0,20}") {
            let once = serde_json::to_string(&text).unwrap();
            proptest::prop_assert_eq!(written(&text, false), once.clone());
            let twice = serde_json::to_string(&once).unwrap();
            proptest::prop_assert_eq!(written(&text, true), &twice[1..twice.len() - 1]);
        }
    }
}
