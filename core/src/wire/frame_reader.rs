//! Reassembly of messages from a byte stream.

use super::{DecodeError, Message, MAX_FRAME_LEN};

/// Cuts a TCP byte stream into messages, with a bounded buffer.
///
/// Push bytes as they arrive, pop whole messages. The buffer never holds more than one
/// largest message ([`FrameReader::CAPACITY`] bytes): [`push`](FrameReader::push) takes only
/// what fits and says how much it took, and a full buffer always holds a whole message (or an
/// invalid one), so popping always makes room again.
///
/// A tunnel connection switches to raw bytes after `TunnelOpen` (on the relay) or
/// `TunnelAccept` (on the client): stop popping there and call
/// [`take_rest`](FrameReader::take_rest) to get the signalling bytes that arrived with it.
///
/// ```
/// use cloudproxy_core::wire::{FrameReader, Message};
///
/// let accept = Message::TunnelAccept {
///     session_id: 1,
///     udp_port: 4500,
///     keepalive_interval_ms: 5_000,
///     idle_timeout_ms: 30_000,
/// };
/// let mut stream = accept.to_bytes().unwrap();
/// stream.extend_from_slice(b"raw signalling");
///
/// let mut reader = FrameReader::new();
/// let (first, second) = stream.split_at(10);
/// assert_eq!(reader.push(first), 10);
/// assert_eq!(reader.pop(), Ok(None));
/// assert_eq!(reader.push(second), second.len());
/// assert_eq!(reader.pop(), Ok(Some(accept)));
/// assert_eq!(reader.take_rest(), b"raw signalling");
/// ```
#[derive(Clone, Debug, Default)]
pub struct FrameReader {
    /// Received bytes; those before `start` have been popped already.
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    start: usize,
}

impl FrameReader {
    /// The most bytes the reader ever buffers: one largest message.
    pub const CAPACITY: usize = MAX_FRAME_LEN;

    /// An empty reader.
    pub fn new() -> Self {
        FrameReader::default()
    }

    /// How many unconsumed bytes are buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// How many bytes [`push`](FrameReader::push) would take now (a driver can read at most
    /// this much from its socket).
    pub fn space(&self) -> usize {
        Self::CAPACITY.saturating_sub(self.buffered())
    }

    /// Appends as much of `data` as fits and returns how many bytes were taken; the caller keeps
    /// the rest and pushes it again after popping.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.space());
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend(data.iter().take(n));
        n
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    ///
    /// An error is final: the stream cannot be resynchronised, and the same error is returned
    /// again until the reader is dropped. Answer with [`Message::Error`] and close.
    pub fn pop(&mut self) -> Result<Option<Message>, DecodeError> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        match Message::decode(pending) {
            Ok((msg, used)) => {
                self.start = self.start.saturating_add(used).min(self.buf.len());
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                Ok(Some(msg))
            }
            Err(DecodeError::Incomplete { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Takes every unconsumed byte out of the reader, leaving it empty: the raw bytes that
    /// followed the last popped message.
    pub fn take_rest(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.start.min(self.buf.len()));
        self.buf.clear();
        self.start = 0;
        rest
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::{CloseReason, MAX_MEDIA_PAYLOAD};
    use std::net::SocketAddr;

    fn big() -> Message {
        Message::MediaData {
            session_id: 9,
            peer: SocketAddr::from(([0u16; 8], 9)),
            payload: vec![0xEE; MAX_MEDIA_PAYLOAD],
        }
    }

    #[test]
    fn backpressure_bounds_the_buffer() {
        let msg = big();
        let frame = msg.to_bytes().unwrap();
        let stream: Vec<u8> = frame.iter().chain(&frame).chain(&frame).copied().collect();
        let mut reader = FrameReader::new();
        let mut rest = &stream[..];
        let mut popped = 0;
        while !rest.is_empty() || reader.buffered() > 0 {
            let n = reader.push(rest);
            rest = &rest[n..];
            assert!(reader.buffered() <= FrameReader::CAPACITY);
            while let Some(m) = reader.pop().unwrap() {
                assert_eq!(m, msg);
                popped += 1;
            }
        }
        assert_eq!(popped, 3);
    }

    #[test]
    fn a_full_buffer_always_pops() {
        let mut reader = FrameReader::new();
        let small = Message::Close {
            session_id: 1,
            reason: CloseReason::Normal,
        }
        .to_bytes()
        .unwrap();
        let stream: Vec<u8> = small.iter().copied().cycle().take(5_000).collect();
        let n = reader.push(&stream);
        assert_eq!(n, FrameReader::CAPACITY);
        assert_eq!(reader.space(), 0);
        assert_eq!(reader.push(&stream[n..]), 0);
        assert!(reader.pop().unwrap().is_some());
        assert_eq!(reader.space(), small.len());
    }

    #[test]
    fn errors_are_sticky() {
        let mut reader = FrameReader::new();
        reader.push(&[0xC1, 0x0D, 9]);
        assert_eq!(reader.pop(), Err(DecodeError::UnsupportedVersion(9)));
        reader.push(&[0x30, 0, 9]);
        assert_eq!(reader.pop(), Err(DecodeError::UnsupportedVersion(9)));
        assert_eq!(reader.take_rest(), [0xC1, 0x0D, 9, 0x30, 0, 9]);
        assert_eq!(reader.buffered(), 0);
        assert_eq!(reader.pop(), Ok(None));
    }
}
