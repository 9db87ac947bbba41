//! The Event Hubs output binding's value, as TimerFetch answers it.

use crate::host::JsonText;

/// The Event Hubs output binding's value: an array of JSON strings, one event body each (a
/// string element is sent verbatim; see the protocol notes), written as one text.
#[derive(Debug)]
pub struct OutputEvents {
    text: String,
    count: usize,
}

impl OutputEvents {
    /// An empty array written into `buffer` (emptied first: one kept from an earlier answer, its
    /// memory already mapped), with room for `bytes` of escaped bodies (and for the answer
    /// written around them, see `InvocationResponse::into_json`).
    pub fn with_capacity_in(bytes: usize, mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        buffer.reserve(bytes + 16 * 1024);
        let mut text = String::from_utf8(buffer).expect("an empty buffer is UTF-8");
        text.push('[');
        Self { text, count: 0 }
    }

    /// Appends an event whose body `write` appends already escaped as a JSON string's contents
    /// (as `AssetEvent::write_escaped_body` does).
    pub fn push_escaped(&mut self, write: impl FnOnce(&mut String)) {
        self.open();
        write(&mut self.text);
        self.text.push('"');
    }

    /// Appends an event body.
    pub fn push(&mut self, body: &str) {
        self.open();
        let quoted = serde_json::to_string(body).expect("a string serialises");
        self.text.push_str(&quoted[1..]);
    }

    fn open(&mut self) {
        if self.count > 0 {
            self.text.push(',');
        }
        self.count += 1;
        self.text.push('"');
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The array's JSON text.
    pub fn finish(mut self) -> JsonText {
        self.text.push(']');
        JsonText::written(self.text)
    }
}
