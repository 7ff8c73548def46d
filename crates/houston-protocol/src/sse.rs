//! Server-sent events framing for [`StreamEvent`]s.
//!
//! [`encode`] writes one event as an SSE frame whose `id:` is the event's `seq` and whose
//! `event:` is its type. [`SseDecoder`] is an incremental parser for the reading side (the
//! control plane's stream proxy, the CLI and tests): feed it bytes as they arrive and it
//! yields complete frames, whatever the chunk boundaries.

use crate::event::StreamEvent;

/// The heartbeat comment sent on idle streams.
pub const HEARTBEAT: &str = ": heartbeat\n\n";

/// Encodes one event as an SSE frame.
#[must_use]
pub fn encode(event: &StreamEvent) -> String {
    let data = serde_json::to_string(event).expect("stream events always serialize");
    format!("id: {}\nevent: {}\ndata: {}\n\n", event.seq, event.kind.type_name(), data)
}

/// One parsed SSE frame. Comment-only frames (heartbeats) are not yielded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseFrame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseFrame {
    /// Parses the frame's data as a [`StreamEvent`].
    ///
    /// # Errors
    /// Returns the JSON error when the data is not a stream event.
    pub fn to_event(&self) -> Result<StreamEvent, serde_json::Error> {
        serde_json::from_str(&self.data)
    }
}

/// Incremental SSE parser following the WHATWG event stream rules for the fields used here
/// (`id`, `event`, `data`, comments), with `\n`, `\r\n` and `\r` line endings.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    current: SseFrame,
    has_data: bool,
}

impl SseDecoder {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk of bytes and returns every frame it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseFrame> {
        self.buffer.extend_from_slice(chunk);
        let mut frames = Vec::new();
        while let Some((line_end, next_start)) = self.find_line_end() {
            let line = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            self.buffer.drain(..next_start);
            if let Some(frame) = self.take_line(&line) {
                frames.push(frame);
            }
        }
        frames
    }

    fn find_line_end(&self) -> Option<(usize, usize)> {
        let position = self.buffer.iter().position(|b| *b == b'\n' || *b == b'\r')?;
        if self.buffer[position] == b'\r' {
            // A lone `\r` at the end of the buffer may be the first half of `\r\n`.
            match self.buffer.get(position + 1) {
                Some(b'\n') => return Some((position, position + 2)),
                None => return None,
                Some(_) => return Some((position, position + 1)),
            }
        }
        Some((position, position + 1))
    }

    fn take_line(&mut self, line: &str) -> Option<SseFrame> {
        if line.is_empty() {
            if !self.has_data {
                self.current = SseFrame::default();
                return None;
            }
            self.has_data = false;
            return Some(std::mem::take(&mut self.current));
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "id" => self.current.id = Some(value.to_owned()),
            "event" => self.current.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use crate::ids::TurnId;

    fn delta(seq: u64, text: &str) -> StreamEvent {
        StreamEvent {
            seq,
            turn_id: TurnId::parse("t1").unwrap(),
            kind: EventKind::MessageDelta { text: text.into() },
        }
    }

    #[test]
    fn decodes_frames_split_at_every_byte() {
        let wire = format!("{}{}{}", encode(&delta(1, "a\nb")), HEARTBEAT, encode(&delta(2, "c")));
        let mut decoder = SseDecoder::new();
        let mut frames = Vec::new();
        for byte in wire.as_bytes() {
            frames.extend(decoder.feed(std::slice::from_ref(byte)));
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].id.as_deref(), Some("1"));
        assert_eq!(frames[0].event.as_deref(), Some("message.delta"));
        assert_eq!(frames[0].to_event().unwrap(), delta(1, "a\nb"));
        assert_eq!(frames[1].to_event().unwrap(), delta(2, "c"));
    }

    #[test]
    fn decodes_crlf_and_multiline_data() {
        let mut decoder = SseDecoder::new();
        let frames = decoder.feed(b"event: x\r\ndata: one\r\ndata: two\r\n\r\n");
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data, "one\ntwo");
    }
}
