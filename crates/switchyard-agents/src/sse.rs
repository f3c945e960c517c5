//! Reading server-sent events (the `data:` lines of an OpenAI-style or A2A stream), and a
//! streamed answer made of them.
//!
//! Written here because it is a dozen lines over the byte stream reqwest already gives,
//! and it must enforce this crate's limit on how much an agent may send.

use bytes::{Buf, BytesMut};

use crate::{AgentError, DeltaSink};

/// What one event of a streamed answer means to its protocol.
pub(crate) enum Step {
    /// A piece of the answer (empty: nothing to pass on).
    Piece(String),
    /// The last piece (possibly empty): the answer is complete.
    Last(String),
}

/// Reads a streamed answer within `limit` bytes: every event goes to `step` (with whether
/// any text has arrived yet), its pieces on to `sink`, until a [`Step::Last`]. A stream
/// that ends before that is a failure, since the answer would be cut off. `who` names the
/// other side in errors ("model", "agent").
pub(crate) async fn read_answer(
    mut response: reqwest::Response,
    limit: usize,
    who: &str,
    sink: &DeltaSink,
    mut step: impl FnMut(&str, bool) -> Result<Step, AgentError>,
) -> Result<String, AgentError> {
    let mut reader = SseReader::default();
    let mut answer = String::new();
    let mut received = 0usize;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| AgentError::Failed(format!("the {who}'s stream broke: {}", e.without_url())))?
    {
        received += chunk.len();
        if received > limit {
            return Err(AgentError::Failed(format!(
                "the {who}'s answer is larger than {limit} bytes"
            )));
        }
        for event in reader.feed(&chunk) {
            let (piece, last) = match step(&event, !answer.is_empty())? {
                Step::Piece(piece) => (piece, false),
                Step::Last(piece) => (piece, true),
            };
            if !piece.is_empty() {
                answer.push_str(&piece);
                let _ = sink.send(piece).await;
            }
            if last {
                return Ok(answer);
            }
        }
    }
    Err(AgentError::Failed(format!(
        "the {who}'s stream ended before it was done"
    )))
}

/// Splits a byte stream into the `data` payloads of its events (public for the fuzz
/// targets: however the bytes are split into chunks, the events are the same).
#[derive(Debug, Default)]
pub struct SseReader {
    buffer: BytesMut,
    data: String,
}

impl SseReader {
    /// Feeds bytes; returns the events completed by them.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
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
