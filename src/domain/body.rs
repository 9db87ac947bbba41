//! `EventBody`: an event's text as the sink receives it, read where it lies in the request.
//!
//! The host sends a batch as a JSON string holding a JSON array of strings, so a body arrives
//! escaped twice: `{"id":"a"}` is `\"{\\\"id\\\":\\\"a\\\"}\"` in the request. The usual body
//! is read in place from that text ([`AssetEvent::parse_usual_escaped_twice`]) and unescaped only
//! when it is not a row (the rejects table keeps the body as it was sent).

use super::json::{Block, escape_at, escaped};
use super::{AssetEvent, AssetRow, RejectReason};

/// An event's body: its text, or its text escaped twice where it lies in the host's batch.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBody<'a>(Repr<'a>);

#[derive(Debug, Clone, PartialEq)]
enum Repr<'a> {
    Text(String),
    /// Escaped twice, every run of backslashes in it one of the two [`EventBody::split`] takes.
    EscapedTwice(&'a str),
}

impl From<String> for EventBody<'_> {
    fn from(text: String) -> Self {
        Self(Repr::Text(text))
    }
}

impl<'a> EventBody<'a> {
    /// The bodies of a JSON array of strings whose text is the contents of a JSON string (the
    /// host's batch, its outer quotes taken off), read in place: `[\"...\",\"...\"]`. `None`
    /// unless every item is a string whose only escapes are quotes and backslashes (in the text,
    /// a run of backslashes is four per backslash of the body, then three and a quote for a
    /// quote of the body, or one and a quote for the item's end); anything else is read the
    /// general way. `contents` must be the contents of a JSON string serde_json accepts (no
    /// unescaped quote, no control character).
    pub fn split(contents: &'a str) -> Option<Vec<Self>> {
        let items = contents.strip_prefix('[')?.strip_suffix(']')?;
        split_in_blocks(items).or_else(|| split_escape_by_escape(items))
    }

    /// The body's text, as the producer sent it.
    pub fn into_text(self) -> String {
        match self.0 {
            Repr::Text(text) => text,
            Repr::EscapedTwice(text) => unescape_twice(text),
        }
    }

    /// The row this body makes, or why it makes none.
    pub fn to_row(&self) -> Result<AssetRow, RejectReason> {
        match &self.0 {
            Repr::Text(text) => AssetRow::from_event_body(text),
            Repr::EscapedTwice(text) => match AssetEvent::parse_usual_escaped_twice(text) {
                Some(event) => AssetRow::from_event(&event),
                None => AssetRow::from_event_body(&unescape_twice(text)),
            },
        }
    }
}

/// [`EventBody::split`] of the array's items (`\"...\",\"...\"`) 64 bytes at a time, as bits
/// ([`Block`]). The array's own quotes and backslashes are those a backslash escapes; an item
/// opens and closes at the array's quotes that an even run of the array's backslashes precedes
/// (none, mostly: a quote of a body is `\\\"`, one backslash of the array and its quote).
/// `None` when the text holds another escape (a body with a backslash or a control character),
/// or anything unusual.
fn split_in_blocks(items: &str) -> Option<Vec<EventBody<'_>>> {
    let bytes = items.as_bytes();
    let mut bodies = Vec::with_capacity(items.len() / 256);
    // The escape carried into the next block, the array's backslashes of the last block; where
    // the open item starts; where the next item opens.
    let (mut carry, mut last_backslashes) = (0, 0u64);
    let (mut open, mut next) = (None, 0);
    for (n, chunk) in bytes.chunks(64).enumerate() {
        let block = Block::of(chunk);
        let escaped = escaped(block.backslash, &mut carry);
        let (quotes, backslashes) = (escaped & block.quote, escaped & block.backslash);
        // The array's characters stand two bytes apart (each is escaped): bits of those right
        // after one of its backslashes, and after two.
        let window = (u128::from(backslashes) << 64) | u128::from(last_backslashes);
        let after = |n: u32| (window << n >> 64) as u64;
        let (after_one, after_two) = (after(2), after(2) & after(4));
        last_backslashes = backslashes;
        // A run of the array's backslashes ends only at one of its quotes.
        let unusual = block.control
            | (escaped & !(block.quote | block.backslash))
            | (after_one & !(quotes | backslashes));
        if unusual != 0 {
            return None;
        }
        // Quotes after one backslash are a body's; after more, count the run.
        let mut delimiters = quotes & !after_one;
        let mut longer = quotes & after_two;
        while longer != 0 {
            let at = longer.trailing_zeros();
            longer &= longer - 1;
            let run = (1..=32)
                .take_while(|k| at + 64 >= 2 * k && window >> (at + 64 - 2 * k) & 1 == 1)
                .count();
            if run == 32 {
                return None;
            }
            if run % 2 == 0 {
                delimiters |= 1 << at;
            }
        }
        while delimiters != 0 {
            let at = 64 * n + delimiters.trailing_zeros() as usize;
            delimiters &= delimiters - 1;
            match open {
                None if at == next + 1 => open = Some(at + 1),
                None => return None,
                Some(start) => {
                    bodies.push(EventBody(Repr::EscapedTwice(&items[start..at - 1])));
                    open = None;
                    match bytes.get(at + 1) {
                        Some(b',') => next = at + 2,
                        None => next = bytes.len(),
                        Some(_) => return None,
                    }
                }
            }
        }
    }
    (open.is_none() && next == bytes.len()).then_some(bodies)
}

/// [`EventBody::split`] of the array's items escape by escape: a body may hold backslashes too
/// (four per backslash of the body).
fn split_escape_by_escape(items: &str) -> Option<Vec<EventBody<'_>>> {
    let bytes = items.as_bytes();
    let mut bodies = Vec::new();
    if items.is_empty() {
        return Some(bodies);
    }
    let mut at = 0;
    loop {
        if !items[at..].starts_with("\\\"") {
            return None;
        }
        at += 2;
        let start = at;
        let end = loop {
            at += escape_at(&bytes[at..]);
            let run = backslashes(&bytes[at..]);
            match (run % 4, bytes.get(at + run)) {
                (1, Some(b'"')) => break at + run - 1,
                (3, Some(b'"')) => at += run + 1,
                (0, Some(_)) if run > 0 => at += run,
                _ => return None,
            }
        };
        bodies.push(EventBody(Repr::EscapedTwice(&items[start..end])));
        at = end + 2;
        match bytes.get(at) {
            Some(b',') => at += 1,
            None => return Some(bodies),
            Some(_) => return None,
        }
    }
}

/// How many backslashes `bytes` starts with.
fn backslashes(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| b == b'\\').count()
}

/// The text of a body [`EventBody::split`] found: each run of four backslashes is one, three
/// and a quote are a quote.
fn unescape_twice(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    loop {
        let plain = escape_at(&bytes[at..]);
        out.push_str(&text[at..at + plain]);
        at += plain;
        let run = backslashes(&bytes[at..]);
        if run == 0 {
            // The end (a quote or a control character cannot be in a split body).
            out.push_str(&text[at..]);
            return out;
        }
        out.extend(std::iter::repeat_n('\\', run / 4));
        at += run - run % 4;
        if run % 4 == 3 && bytes.get(at + 3) == Some(&b'"') {
            out.push('"');
            at += 4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `bodies` as the host sends them: a JSON array of strings, as the contents of a JSON string.
    fn batch(bodies: &[&str]) -> String {
        let array = serde_json::to_string(bodies).unwrap();
        let string = serde_json::to_string(&array).unwrap();
        string[1..string.len() - 1].to_owned()
    }

    fn texts(bodies: Vec<EventBody<'_>>) -> Vec<String> {
        bodies.into_iter().map(EventBody::into_text).collect()
    }

    #[test]
    fn bodies_are_split_in_place_and_unescaped_only_when_asked() {
        let contents = batch(&[r#"{"id":"a \"q\" \\"}"#, "not json", ""]);
        let bodies = EventBody::split(&contents).unwrap();
        assert!(matches!(&bodies[0].0, Repr::EscapedTwice(text) if text.contains(r#"\\\"q"#)));
        assert_eq!(
            texts(bodies),
            [r#"{"id":"a \"q\" \\"}"#, "not json", ""].map(String::from)
        );
        assert_eq!(EventBody::split("[]"), Some(Vec::new()));
    }

    #[test]
    fn anything_but_quotes_and_backslashes_is_left_to_the_general_way() {
        for contents in [
            batch(&["line\nbreak"]),
            batch(&["tab\t"]),
            batch(&["\u{1}"]),
            r#"[\"a\", \"b\"]"#.to_owned(),
            r#"[\"a\",1]"#.to_owned(),
            r#"[\"a\"]x"#.to_owned(),
            r#"[\"a\u0022]"#.to_owned(),
        ] {
            assert_eq!(EventBody::split(&contents), None, "{contents}");
        }
    }

    #[test]
    fn a_body_read_in_place_maps_to_the_row_its_text_maps_to() {
        let event = r#"{"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bitcoin","supply":"1.5","maxSupply":null,"marketCapUsd":"2","volumeUsd24Hr":"3","priceUsd":"4","changePercent24Hr":"-5","vwap24Hr":"6","explorer":"https://x/","timestamp":1680191532104}"#;
        let quoted = event.replace("Bitcoin", r#"Bit \"coin\""#);
        let contents = batch(&[event, &quoted, "nope"]);
        let bodies = EventBody::split(&contents).unwrap();
        let Repr::EscapedTwice(text) = &bodies[0].0 else {
            panic!("read in place");
        };
        assert!(AssetEvent::parse_usual_escaped_twice(text).is_some());
        for (body, text) in bodies.iter().zip([event, &quoted, "nope"]) {
            assert_eq!(body.to_row(), AssetRow::from_event_body(text));
        }
    }

    proptest! {
        #[test]
        fn any_bodies_split_to_themselves_or_are_left_to_the_general_way(
            bodies in proptest::collection::vec("[a\"\\\\{}:,\\n é]{0,60}", 0..8),
        ) {
            let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
            let contents = batch(&bodies);
            let has_control = bodies.iter().any(|b| b.contains('\n'));
            let items = &contents[1..contents.len() - 1];
            if let Some(in_blocks) = split_in_blocks(items) {
                prop_assert_eq!(Some(in_blocks), split_escape_by_escape(items));
            }
            match EventBody::split(&contents) {
                Some(split) => prop_assert_eq!(texts(split), bodies),
                None => prop_assert!(has_control, "{}", contents),
            }
        }

        #[test]
        fn an_event_read_in_place_is_the_event_read_from_its_text(
            texts in proptest::collection::vec(proptest::option::of("[a\"\\\\é:,{}]{0,6}"), 13),
            timestamp in 0..2_000_000_000_000u64,
        ) {
            // In the usual order (a `Value` would sort the keys).
            let values = texts.iter().map(|text| serde_json::to_string(text).unwrap());
            let fields: Vec<String> = AssetEvent::KEYS
                .iter()
                .zip(values)
                .map(|(key, value)| match *key {
                    "timestamp" => format!("\"{key}\":{timestamp}"),
                    _ => format!("\"{key}\":{value}"),
                })
                .collect();
            let body = format!("{{{}}}", fields.join(","));
            let contents = batch(&[&body]);
            let split = EventBody::split(&contents).unwrap();
            let Repr::EscapedTwice(text) = &split[0].0 else { panic!("read in place") };
            prop_assert_eq!(
                AssetEvent::parse_usual_escaped_twice(text),
                AssetEvent::parse_usual(&body)
            );
            prop_assert_eq!(split[0].to_row(), AssetRow::from_event_body(&body));
        }
    }
}
