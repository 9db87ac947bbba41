//! A reject body as stored in `raw_body`: whole, or truncated past the cap with its length and
//! SHA-256 in the reason; as received, or escaped (a JSON string of printable ASCII, marked in the
//! reason) where the server cannot store it as it is (see [`super::refusals`]). Pure.

use std::borrow::Cow;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// How reject bodies go into `raw_body`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BodyForm<'a> {
    /// As received: `N'...'`, or one binary constant when the body holds NUL.
    #[default]
    AsReceived,
    /// As a JSON string of printable ASCII ([`escaped_body`]): for bodies holding NUL
    /// (`all: false`) or for every body (`all: true`), on a server that cannot store them as
    /// they are; `why` says so in the reason.
    Escaped { all: bool, why: &'a str },
}

impl BodyForm<'_> {
    fn escapes(&self, body: &str) -> Option<&str> {
        match *self {
            Self::Escaped { all, why } if all || body.contains('\0') => Some(why),
            _ => None,
        }
    }
}

/// A reject body as stored, and the note its reason then carries (empty when none):
/// - whole, or its first `max_units` UTF-16 code units (never splitting a character), with the
///   full length and the SHA-256 of the whole body (of its UTF-8 bytes, as the event carried
///   it), so the original can be matched;
/// - as received, or escaped ([`escaped_body`]) where `form` says so, with why.
pub fn stored_body<'b>(
    body: &'b str,
    max_units: usize,
    form: BodyForm<'_>,
) -> (Cow<'b, str>, String) {
    let (kept, mut note) = truncated_body(body, max_units);
    match form.escapes(kept) {
        None => (Cow::Borrowed(kept), note),
        Some(why) => {
            note.push_str(&format!(
                " [raw_body escaped: {why}; it holds the body as a JSON string, every character outside printable ASCII as \\uXXXX: JSON-decode it to get the body]"
            ));
            (Cow::Owned(escaped_body(kept)), note)
        }
    }
}

fn truncated_body(body: &str, max_units: usize) -> (&str, String) {
    // A UTF-8 byte never stands for more than one UTF-16 code unit.
    if body.len() <= max_units {
        return (body, String::new());
    }
    let total = body.encode_utf16().count();
    if total <= max_units {
        return (body, String::new());
    }
    let (kept, units) = prefix_units(body, max_units);
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    let note = format!(
        " [raw_body truncated: its first {units} of {total} UTF-16 code units are stored; SHA-256 of the whole body (UTF-8): {hex}]"
    );
    (kept, note)
}

/// `body` as a JSON string (quotes included) of printable ASCII alone: `"` and `\` escaped by a
/// backslash, every other character outside `' '..='~'` as `\uXXXX` per UTF-16 code unit. Any
/// server stores that text as it is, and any JSON reader (`OPENJSON(N'[' + raw_body + N']')` in
/// T-SQL) gives the body back exactly.
pub fn escaped_body(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2);
    out.push('"');
    for c in body.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    // Writing into a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

/// The longest prefix of `text` of at most `max_units` UTF-16 code units, and its length in them.
pub(super) fn prefix_units(text: &str, max_units: usize) -> (&str, usize) {
    let mut units = 0;
    for (at, c) in text.char_indices() {
        if units + c.len_utf16() > max_units {
            return (&text[..at], units);
        }
        units += c.len_utf16();
    }
    (text, units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sha256_is_the_standard_digest() {
        let (_, note) = stored_body("abc", 1, BodyForm::AsReceived);
        assert!(
            note.ends_with("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad]"),
            "SHA-256 of \"abc\" (FIPS 180-2)"
        );
    }

    #[test]
    fn a_body_within_the_cap_is_stored_whole() {
        let body = "é".repeat(10);
        assert_eq!(
            stored_body(&body, 10, BodyForm::AsReceived),
            (Cow::Borrowed(body.as_str()), String::new())
        );
        assert_eq!(
            stored_body("", 0, BodyForm::AsReceived),
            (Cow::Borrowed(""), String::new())
        );
    }

    const WHY: &str = "the server said no";

    #[test]
    fn an_escaped_body_is_printable_ascii_json() {
        assert_eq!(
            escaped_body("a\0\"b\\ é 😀\n~\u{7f}"),
            r#""a\u0000\"b\\ \u00e9 \ud83d\ude00\u000a~\u007f""#
        );
        assert_eq!(escaped_body(""), "\"\"");
    }

    #[test]
    fn only_bodies_with_nul_are_escaped_unless_all_are() {
        let nul_only = BodyForm::Escaped {
            all: false,
            why: WHY,
        };
        let (kept, note) = stored_body("plain", 100, nul_only);
        assert_eq!((kept.as_ref(), note.as_str()), ("plain", ""));
        let (kept, note) = stored_body("a\0b", 100, nul_only);
        assert_eq!(kept, r#""a\u0000b""#);
        assert_eq!(
            note,
            r" [raw_body escaped: the server said no; it holds the body as a JSON string, every character outside printable ASCII as \uXXXX: JSON-decode it to get the body]"
        );
        let all = BodyForm::Escaped {
            all: true,
            why: WHY,
        };
        assert_eq!(stored_body("plain", 100, all).0, r#""plain""#);
    }

    #[test]
    fn a_truncated_body_is_escaped_after_the_cut_and_says_both() {
        let body = format!("{}\0{}", "a".repeat(5), "b".repeat(20));
        let all = BodyForm::Escaped {
            all: true,
            why: WHY,
        };
        let (kept, note) = stored_body(&body, 8, all);
        assert_eq!(kept, r#""aaaaa\u0000bb""#);
        assert!(
            note.starts_with(" [raw_body truncated: its first 8 of 26"),
            "{note}"
        );
        assert!(note.ends_with("JSON-decode it to get the body]"), "{note}");
    }

    proptest::proptest! {
        #[test]
        fn an_escaped_body_reads_back_as_the_body(body in "\\PC*|[\0-\u{7f}]{0,40}|.{0,20}") {
            let escaped = escaped_body(&body);
            proptest::prop_assert!(escaped.bytes().all(|b| (b' '..=b'~').contains(&b)), "{}", escaped);
            let back: String = serde_json::from_str(&escaped).unwrap();
            proptest::prop_assert_eq!(back, body);
        }
    }
}
