//! What the SDK's client needs to know about an SD-RTN edge: its addresses, and how media
//! datagrams are framed when they have to travel over a TCP stream.
//!
//! An edge listens on three addresses ([`SdRtnEndpoints`]): a TCP signalling port, a UDP media
//! port, and a TCP media port for clients that cannot use UDP. On the TCP media port every
//! datagram is sent as a frame:
//!
//! | size | field     | value                                              |
//! |------|-----------|----------------------------------------------------|
//! | 2    | `len`     | big-endian, `1..=`[`MAX_MEDIA_FRAME_PAYLOAD`]      |
//! | len  | `payload` | one media datagram                                 |
//!
//! A length of 0 or above [`MAX_MEDIA_FRAME_PAYLOAD`] is invalid: the stream cannot be
//! resynchronised, so the receiver closes the connection.
//!
//! ```
//! use cloudproxy_core::sdrtn::{encode_media_frame, MediaFrameReader};
//!
//! let mut stream = Vec::new();
//! encode_media_frame(b"rtp-1", &mut stream).unwrap();
//! encode_media_frame(b"rtp-2", &mut stream).unwrap();
//! assert_eq!(&stream[..2], [0, 5]);
//!
//! let mut reader = MediaFrameReader::new();
//! assert_eq!(reader.push(&stream), stream.len());
//! assert_eq!(reader.pop(), Ok(Some(b"rtp-1".to_vec())));
//! assert_eq!(reader.pop(), Ok(Some(b"rtp-2".to_vec())));
//! assert_eq!(reader.pop(), Ok(None));
//! ```
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;

use thiserror::Error;

/// Length of a media frame's header: the big-endian `u16` payload length.
pub const MEDIA_FRAME_HEADER_LEN: usize = 2;
/// Largest media datagram a frame carries (an Ethernet MTU, as for the relay's `MediaData`).
pub const MAX_MEDIA_FRAME_PAYLOAD: usize = 1500;
/// Largest whole frame: header plus the largest payload.
pub const MAX_MEDIA_FRAME_LEN: usize = MEDIA_FRAME_HEADER_LEN + MAX_MEDIA_FRAME_PAYLOAD;

/// The addresses of one SD-RTN edge, as the client needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SdRtnEndpoints {
    /// The TCP address of the edge's signalling service: a raw byte stream both ways.
    pub signalling: SocketAddr,
    /// The UDP address of the edge's media service: one media datagram per UDP datagram, no
    /// header.
    pub media_udp: SocketAddr,
    /// The TCP address for media when UDP is impossible: datagrams framed with
    /// [`encode_media_frame`].
    pub media_tcp: SocketAddr,
}

/// Why a media frame cannot be encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum MediaFrameError {
    /// A payload (to encode) or a length field (decoded) of 0: frames carry at least one byte.
    #[error("media frame length is 0 (must be 1..=1500)")]
    Empty,
    /// A payload (to encode) or a length field (decoded) above [`MAX_MEDIA_FRAME_PAYLOAD`].
    #[error("media frame length {len} exceeds 1500")]
    TooLong {
        /// The payload length, or the length field read from the stream.
        len: usize,
    },
}

/// Appends the frame of one media datagram to `out`: the big-endian length, then `payload`.
/// On error nothing is written.
///
/// ```
/// use cloudproxy_core::sdrtn::{encode_media_frame, MediaFrameError};
///
/// let mut out = Vec::new();
/// encode_media_frame(&[0xAB; 3], &mut out).unwrap();
/// assert_eq!(out, [0, 3, 0xAB, 0xAB, 0xAB]);
/// assert_eq!(encode_media_frame(&[], &mut out), Err(MediaFrameError::Empty));
/// assert_eq!(out.len(), 5);
/// ```
pub fn encode_media_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<(), MediaFrameError> {
    let len = check_len(payload.len())?;
    out.reserve(MEDIA_FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Checks a payload length and returns it as the `u16` of the header.
fn check_len(len: usize) -> Result<u16, MediaFrameError> {
    if len == 0 {
        return Err(MediaFrameError::Empty);
    }
    if len > MAX_MEDIA_FRAME_PAYLOAD {
        return Err(MediaFrameError::TooLong { len });
    }
    u16::try_from(len).map_err(|_| MediaFrameError::TooLong { len })
}

/// Cuts a TCP media stream into datagrams, with a bounded buffer.
///
/// Push bytes as they arrive, pop datagrams. The buffer never holds more than one largest frame
/// ([`MediaFrameReader::CAPACITY`] bytes): [`push`](MediaFrameReader::push) takes only what fits
/// and says how much it took; a full buffer always holds a whole frame (or an invalid length),
/// so popping always makes room again.
///
/// An invalid length is final: [`pop`](MediaFrameReader::pop) returns the same error until the
/// reader is dropped, and the connection should be closed.
#[derive(Clone, Debug, Default)]
pub struct MediaFrameReader {
    /// Received bytes; those before `start` have been popped already.
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    start: usize,
}

impl MediaFrameReader {
    /// The most bytes the reader ever buffers: one largest frame.
    pub const CAPACITY: usize = MAX_MEDIA_FRAME_LEN;

    /// An empty reader.
    pub fn new() -> Self {
        MediaFrameReader::default()
    }

    /// How many unconsumed bytes are buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// How many bytes [`push`](MediaFrameReader::push) would take now.
    pub fn space(&self) -> usize {
        Self::CAPACITY.saturating_sub(self.buffered())
    }

    /// Appends as much of `data` as fits and returns how many bytes were taken; the caller keeps
    /// the rest and pushes it again after popping.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.space());
        if self.start > 0 {
            self.buf.drain(..self.start.min(self.buf.len()));
            self.start = 0;
        }
        self.buf.extend(data.iter().take(n));
        n
    }

    /// The next whole datagram, `Ok(None)` when more bytes are needed, an error when the next
    /// length field is invalid.
    pub fn pop(&mut self) -> Result<Option<Vec<u8>>, MediaFrameError> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let Some(&[hi, lo]) = pending.get(..MEDIA_FRAME_HEADER_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        check_len(len)?;
        let end = MEDIA_FRAME_HEADER_LEN + len;
        let Some(payload) = pending.get(MEDIA_FRAME_HEADER_LEN..end) else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.start = self.start.saturating_add(end).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(payload))
    }

    /// Pushes all of `data`, popping as it goes, and appends the datagrams to `out` in order.
    /// On error, `out` holds the datagrams that preceded the invalid length.
    pub fn push_all(
        &mut self,
        mut data: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), MediaFrameError> {
        loop {
            let taken = self.push(data);
            data = data.get(taken..).unwrap_or_default();
            let mut popped = false;
            while let Some(datagram) = self.pop()? {
                out.push(datagram);
                popped = true;
            }
            // A full buffer always holds a whole frame or an error, so `taken == 0` with
            // nothing popped only happens when `data` is empty.
            if data.is_empty() || (taken == 0 && !popped) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_big_endian_length() {
        let mut out = vec![0xFF];
        encode_media_frame(&[1; 300], &mut out).unwrap();
        assert_eq!(&out[..3], [0xFF, 0x01, 0x2C]);
        assert_eq!(out.len(), 1 + 2 + 300);
    }

    #[test]
    fn encode_rejects_bad_lengths_and_writes_nothing() {
        let mut out = Vec::new();
        assert_eq!(
            encode_media_frame(&[], &mut out),
            Err(MediaFrameError::Empty)
        );
        assert_eq!(
            encode_media_frame(&[0; 1501], &mut out),
            Err(MediaFrameError::TooLong { len: 1501 })
        );
        assert!(out.is_empty());
        encode_media_frame(&[0; 1500], &mut out).unwrap();
        assert_eq!(out.len(), MAX_MEDIA_FRAME_LEN);
    }

    #[test]
    fn reader_waits_for_whole_frames() {
        let mut stream = Vec::new();
        encode_media_frame(b"hello", &mut stream).unwrap();
        let mut reader = MediaFrameReader::new();
        for byte in &stream[..stream.len() - 1] {
            assert_eq!(reader.push(&[*byte]), 1);
            assert_eq!(reader.pop(), Ok(None));
        }
        reader.push(&stream[stream.len() - 1..]);
        assert_eq!(reader.pop(), Ok(Some(b"hello".to_vec())));
        assert_eq!(reader.buffered(), 0);
    }

    #[test]
    fn invalid_lengths_are_sticky_errors() {
        let mut reader = MediaFrameReader::new();
        reader.push(&[0, 0, 9]);
        assert_eq!(reader.pop(), Err(MediaFrameError::Empty));
        assert_eq!(reader.pop(), Err(MediaFrameError::Empty));

        let mut reader = MediaFrameReader::new();
        reader.push(&[0x05, 0xDD]);
        assert_eq!(reader.pop(), Err(MediaFrameError::TooLong { len: 1501 }));
        let mut reader = MediaFrameReader::new();
        let mut out = Vec::new();
        assert_eq!(
            reader.push_all(&[0, 1, 7, 0xFF, 0xFF], &mut out),
            Err(MediaFrameError::TooLong { len: 0xFFFF })
        );
        assert_eq!(out, [vec![7]]);
    }

    #[test]
    fn backpressure_bounds_the_buffer() {
        let mut stream = Vec::new();
        for _ in 0..3 {
            encode_media_frame(&[0xEE; MAX_MEDIA_FRAME_PAYLOAD], &mut stream).unwrap();
        }
        let mut reader = MediaFrameReader::new();
        let mut rest = &stream[..];
        let mut popped = 0;
        while !rest.is_empty() || reader.buffered() > 0 {
            let n = reader.push(rest);
            rest = &rest[n..];
            assert!(reader.buffered() <= MediaFrameReader::CAPACITY);
            while let Some(d) = reader.pop().unwrap() {
                assert_eq!(d.len(), MAX_MEDIA_FRAME_PAYLOAD);
                popped += 1;
            }
        }
        assert_eq!(popped, 3);
        let mut reader = MediaFrameReader::new();
        let mut out = Vec::new();
        reader.push_all(&stream, &mut out).unwrap();
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn endpoints_are_plain_data() {
        let ep = SdRtnEndpoints {
            signalling: "10.0.0.1:8443".parse().unwrap(),
            media_udp: "10.0.0.1:4700".parse().unwrap(),
            media_tcp: "10.0.0.1:4701".parse().unwrap(),
        };
        let copy = ep;
        assert_eq!(copy, ep);
    }

    proptest! {
        #[test]
        fn round_trip_in_any_chunking(
            datagrams in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 1..=MAX_MEDIA_FRAME_PAYLOAD), 0..8),
            cuts in proptest::collection::vec(1usize..4000, 0..16),
        ) {
            let mut stream = Vec::new();
            for d in &datagrams {
                encode_media_frame(d, &mut stream).unwrap();
            }
            let mut reader = MediaFrameReader::new();
            let mut got = Vec::new();
            let mut rest = &stream[..];
            let mut cuts = cuts.into_iter().cycle();
            while !rest.is_empty() {
                let take = cuts.next().unwrap_or(rest.len()).min(rest.len());
                reader.push_all(&rest[..take], &mut got).unwrap();
                rest = &rest[take..];
            }
            prop_assert_eq!(got, datagrams);
            prop_assert_eq!(reader.buffered(), 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let mut reader = MediaFrameReader::new();
            let _ = reader.push_all(&bytes, &mut Vec::new());
            prop_assert!(reader.buffered() <= MediaFrameReader::CAPACITY);
        }
    }
}
