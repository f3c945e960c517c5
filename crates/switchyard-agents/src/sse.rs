//! Reading server-sent events (the `data:` lines of an OpenAI-style stream).
//!
//! Written here because it is a dozen lines over the byte stream reqwest already gives,
//! and it must enforce this crate's limit on how much an agent may send.

use bytes::{Buf, BytesMut};

/// Splits a byte stream into the `data` payloads of its events.
#[derive(Default)]
pub(crate) struct SseReader {
    buffer: BytesMut,
    data: String,
}

impl SseReader {
    /// Feeds bytes; returns the events completed by them.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line = self.buffer.split_to(end);
            self.buffer.advance(1);
            let line = String::from_utf8_lossy(&line);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(std::mem::take(&mut self.data));
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
            // Comments (":"), "event:", "id:" and "retry:" lines carry nothing needed here.
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks() {
        let mut r = SseReader::default();
        assert!(r.feed(b"data: {\"a\"").is_empty());
        assert_eq!(
            r.feed(b": 1}\n\n: comment\ndata: [DONE]\r\n\r\n"),
            vec!["{\"a\": 1}", "[DONE]"]
        );
        assert_eq!(
            r.feed(b"event: x\ndata: one\ndata: two\n\n"),
            vec!["one\ntwo"]
        );
    }
}
