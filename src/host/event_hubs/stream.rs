//! A batch too large to hold whole, read a part at a time: `Data.<binding>` as the host sent it
//! (a JSON string holding the array of bodies, or a real array), both layers of escaping undone as
//! its bytes are read, each body made its own `String` only when its part is read.

use serde_json::Value;

use super::super::{EnvelopeError, InvocationRequest};
use crate::domain::EventBody;

/// The bodies of a batch, a part at a time ([`BodyStream::next_part`]).
pub struct BodyStream<'a> {
    source: Source<'a>,
    binding: String,
    /// A byte read ahead and not yet used.
    peeked: Option<u8>,
    started: bool,
    done: bool,
}

impl<'a> BodyStream<'a> {
    pub fn new(request: &InvocationRequest<'a>, binding: &str) -> Result<Self, EnvelopeError> {
        let bad = || EnvelopeError::BadBinding {
            binding: binding.to_owned(),
            expected: "a JSON array of event bodies, or a JSON string holding one",
        };
        let sent =
            request
                .data_as_sent(binding)
                .ok_or_else(|| match request.data_json(binding) {
                    None => EnvelopeError::MissingBinding(binding.to_owned()),
                    Some(_) => bad(),
                })?;
        let (text, escaped) = match sent.as_bytes() {
            [b'"', inner @ ..] => (inner, true),
            all @ [b'[', ..] => (all, false),
            _ => return Err(bad()),
        };
        Ok(Self {
            source: Source {
                text,
                at: 0,
                escaped,
                pending: Vec::new(),
            },
            binding: binding.to_owned(),
            peeked: None,
            started: false,
            done: false,
        })
    }

    /// How many bodies the batch holds (read once through, nothing kept).
    pub fn count(request: &InvocationRequest<'a>, binding: &str) -> Result<usize, EnvelopeError> {
        let mut stream = Self::new(request, binding)?;
        let mut count = 0;
        while let Some(part) = stream.next_part(1 << 20)? {
            count += part.len();
        }
        Ok(count)
    }

    /// The next bodies, as many as fit `max_bytes` (at least one); `None` after the last.
    pub fn next_part(
        &mut self,
        max_bytes: usize,
    ) -> Result<Option<Vec<EventBody<'static>>>, EnvelopeError> {
        if self.done {
            return Ok(None);
        }
        if !self.started {
            self.started = true;
            self.expect(b'[')?;
            match self.skip_space()? {
                Some(b']') => {
                    self.done = true;
                    return Ok(None);
                }
                first => self.peeked = first,
            }
        }
        let mut bodies = Vec::new();
        let mut bytes = 0;
        loop {
            let body = match self.skip_space()? {
                Some(b'"') => self.string()?,
                Some(first) => self.value(first)?,
                None => return Err(self.bad()),
            };
            bytes += body.len();
            bodies.push(EventBody::from(body));
            match self.skip_space()? {
                Some(b',') if bytes >= max_bytes => return Ok(Some(bodies)),
                Some(b',') => {}
                Some(b']') => {
                    self.done = true;
                    return Ok(Some(bodies));
                }
                _ => return Err(self.bad()),
            }
        }
    }

    fn bad(&self) -> EnvelopeError {
        EnvelopeError::BadBinding {
            binding: self.binding.clone(),
            expected: "a JSON array of event bodies, or a JSON string holding one",
        }
    }

    fn next(&mut self) -> Result<Option<u8>, EnvelopeError> {
        match self.peeked.take() {
            Some(byte) => Ok(Some(byte)),
            None => self.source.next().map_err(|()| self.bad()),
        }
    }

    /// The next byte that is not white space.
    fn skip_space(&mut self) -> Result<Option<u8>, EnvelopeError> {
        loop {
            match self.next()? {
                Some(b' ' | b'\t' | b'\n' | b'\r') => {}
                other => return Ok(other),
            }
        }
    }

    fn expect(&mut self, wanted: u8) -> Result<(), EnvelopeError> {
        match self.skip_space()? {
            Some(byte) if byte == wanted => Ok(()),
            _ => Err(self.bad()),
        }
    }

    /// A JSON string's text (its opening quote read), its escapes undone.
    fn string(&mut self) -> Result<String, EnvelopeError> {
        let mut text = Vec::new();
        loop {
            if self.peeked.is_none() {
                // Plain bytes, taken a run at a time: a body is mostly one run.
                text.extend_from_slice(self.source.run());
            }
            match self.next()?.ok_or_else(|| self.bad())? {
                b'"' => return String::from_utf8(text).map_err(|_| self.bad()),
                b'\\' => {
                    let done = {
                        let mut next = || self.next().ok().flatten();
                        unescape(&mut next, &mut text)
                    };
                    done.ok_or_else(|| self.bad())?;
                }
                byte if byte < 0x20 => return Err(self.bad()),
                byte => text.push(byte),
            }
        }
    }

    /// Any other JSON value (its first byte read), as its compact text: a binding without
    /// `dataType: string` sends bodies that are objects, numbers...
    fn value(&mut self, first: u8) -> Result<String, EnvelopeError> {
        let mut raw = vec![first];
        let (mut depth, mut in_string, mut escape) = (0i64, false, false);
        if matches!(first, b'[' | b'{') {
            depth = 1;
        }
        while depth > 0 || in_string {
            let byte = self.next()?.ok_or_else(|| self.bad())?;
            raw.push(byte);
            match (in_string, escape, byte) {
                (true, true, _) => escape = false,
                (true, false, b'\\') => escape = true,
                (true, false, b'"') => in_string = false,
                (false, _, b'"') => in_string = true,
                (false, _, b'[' | b'{') => depth += 1,
                (false, _, b']' | b'}') => depth -= 1,
                _ => {}
            }
        }
        if !matches!(first, b'[' | b'{') {
            // A number or a literal ends where a separator starts.
            loop {
                match self.next()? {
                    Some(byte @ (b',' | b']' | b' ' | b'\t' | b'\n' | b'\r')) => {
                        self.peeked = Some(byte);
                        break;
                    }
                    Some(byte) => raw.push(byte),
                    None => return Err(self.bad()),
                }
            }
        }
        let value: Value = serde_json::from_slice(&raw).map_err(|_| self.bad())?;
        Ok(value.to_string())
    }
}

/// The text as the inner JSON reads it: the outer JSON string's escapes undone, or the array
/// itself.
struct Source<'a> {
    text: &'a [u8],
    at: usize,
    /// Whether `text` is the contents of a JSON string (the host's double encoding).
    escaped: bool,
    /// Bytes of an escaped character not yet given out, in reverse.
    pending: Vec<u8>,
}

impl<'a> Source<'a> {
    /// The bytes up to the next quote, backslash or control character (none pending): the same
    /// in both layers, so taken as they are.
    fn run(&mut self) -> &'a [u8] {
        if !self.pending.is_empty() {
            return &[];
        }
        let rest = &self.text[self.at.min(self.text.len())..];
        let end = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    /// The next byte; `None` at the end (the outer string's closing quote, or the text's end).
    fn next(&mut self) -> Result<Option<u8>, ()> {
        if let Some(byte) = self.pending.pop() {
            return Ok(Some(byte));
        }
        let Some(&byte) = self.text.get(self.at) else {
            return if self.escaped { Err(()) } else { Ok(None) };
        };
        self.at += 1;
        match byte {
            b'"' if self.escaped => Ok(None),
            b'\\' if self.escaped => {
                let mut decoded = Vec::with_capacity(4);
                let (text, at) = (self.text, &mut self.at);
                let mut next = || {
                    let byte = text.get(*at).copied();
                    *at += 1;
                    byte
                };
                unescape(&mut next, &mut decoded).ok_or(())?;
                decoded.reverse();
                self.pending = decoded;
                Ok(self.pending.pop())
            }
            byte => Ok(Some(byte)),
        }
    }
}

/// Undoes one JSON escape (its backslash read) into `out` as UTF-8; `None` for a malformed one.
fn unescape(next: &mut impl FnMut() -> Option<u8>, out: &mut Vec<u8>) -> Option<()> {
    let byte = match next()? {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => {
            let unit = |next: &mut dyn FnMut() -> Option<u8>| -> Option<u32> {
                (0..4).try_fold(0u32, |n, _| {
                    Some(n * 16 + char::from(next()?).to_digit(16)?)
                })
            };
            let high = unit(next)?;
            let code = if (0xD800..0xDC00).contains(&high) {
                // A surrogate pair: `\uD83D\uDE00`.
                if next()? != b'\\' || next()? != b'u' {
                    return None;
                }
                let low = unit(next)?;
                if !(0xDC00..0xE000).contains(&low) {
                    return None;
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            } else {
                high
            };
            let c = char::from_u32(code)?;
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            return Some(());
        }
        _ => return None,
    };
    out.push(byte);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::event_hubs::ReceivedBatch;
    use crate::host::event_hubs::batch_request;

    fn texts(parts: Vec<Vec<EventBody<'static>>>) -> Vec<Vec<String>> {
        parts
            .into_iter()
            .map(|part| part.into_iter().map(EventBody::into_text).collect())
            .collect()
    }

    fn parts(body: &str, max: usize) -> Result<Vec<Vec<String>>, EnvelopeError> {
        let request = InvocationRequest::parse(body.as_bytes())?;
        let mut stream = BodyStream::new(&request, "events")?;
        let mut parts = Vec::new();
        while let Some(part) = stream.next_part(max)? {
            parts.push(part);
        }
        Ok(texts(parts))
    }

    #[test]
    fn bodies_read_in_parts_are_the_bodies_read_whole() {
        let bodies = [
            r#"{"id":"bitcoin","name":"O'Neil \"Moon\"","x":"a\\b"}"#,
            "not json\n\ttab \u{0} nul é 😀 \u{1}",
            "",
            "[1,2]",
        ];
        let body = batch_request(&bodies);
        let request = InvocationRequest::parse(body.as_bytes()).unwrap();
        let whole: Vec<String> = ReceivedBatch::from_request(&request, "events")
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.body.into_text())
            .collect();
        assert_eq!(whole, bodies);
        let small = parts(&body, 1).unwrap();
        assert_eq!(
            small.len(),
            3,
            "a part holds at least the bytes asked for: {small:?}"
        );
        assert_eq!(small.concat(), whole);
        assert_eq!(parts(&body, usize::MAX).unwrap(), [whole]);
        assert_eq!(BodyStream::count(&request, "events").unwrap(), 4);
    }

    #[test]
    fn a_real_array_and_bodies_that_are_not_strings_read_as_the_whole_reading_does() {
        let body =
            r#"{"Data":{"events":["a\"b", {"id": "x", "n": [1, "]"]}, 12.5, null]},"Metadata":{}}"#;
        assert_eq!(
            parts(body, 1).unwrap(),
            [
                vec!["a\"b".to_owned()],
                vec![r#"{"id":"x","n":[1,"]"]}"#.to_owned()],
                vec!["12.5".to_owned()],
                vec!["null".to_owned()],
            ]
        );
        let empty = r#"{"Data":{"events":"[]"},"Metadata":{}}"#;
        assert_eq!(parts(empty, 1).unwrap(), Vec::<Vec<String>>::new());
    }

    #[test]
    fn a_malformed_batch_is_an_envelope_error_not_a_panic() {
        for data in [
            r#""[\"a\""#,
            r#""[\"a\\\"""#,
            r#""[\"\\ud83d\"]""#,
            r#""[1,]""#,
            r#""{}""#,
            "7",
            r#"["a" "b"]"#,
        ] {
            let body = format!(r#"{{"Data":{{"events":{data}}},"Metadata":{{}}}}"#);
            assert!(parts(&body, 1).is_err(), "{data}");
        }
        let missing = r#"{"Data":{},"Metadata":{}}"#;
        let request = InvocationRequest::parse(missing.as_bytes()).unwrap();
        assert!(matches!(
            BodyStream::new(&request, "events"),
            Err(EnvelopeError::MissingBinding(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bodies_read_in_parts_as_sent(
            bodies in proptest::collection::vec("\\PC{0,30}|[\0-\u{7f}]{0,20}", 0..8),
            max in 1usize..64,
        ) {
            let body = batch_request(&bodies);
            let read: Vec<String> = parts(&body, max).unwrap().into_iter().flatten().collect();
            proptest::prop_assert_eq!(read, bodies);
        }
    }
}
