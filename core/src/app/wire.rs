//! What the simulated SDK application sends over the proxy: signalling messages and media
//! packets, built so that every loss, reorder, duplicate or corruption is counted.
//!
//! **Signalling** is a byte stream of lines, each one JSON object (at most
//! [`MAX_LINE_LEN`] bytes):
//! `{"t":"join","ch":"room","uid":7,"seq":1}` and `{"t":"msg","seq":2,"body":"..."}` from the
//! client; `{"t":"ack","seq":2}` from the edge for every message it received, in order.
//!
//! **Media** packets: `uid u32 | seq u32 | checksum u32 | payload`, big-endian, where the
//! checksum is FNV-1a over `uid | seq | payload`. The edge forwards each packet unchanged to
//! the other members of the sender's channel. The application's payloads start with its send
//! stamp, `sent_us u64` (the sender's `now` in microseconds, on its own monotonic clock: see
//! [`media_sent_us`]), from which the receiver computes RFC 3550 jitter.
//!
//! ```
//! use cloudproxy_core::app::{media_packet, read_media, LineReader, Signal};
//!
//! let packet = media_packet(7, 42, b"hello");
//! let header = read_media(&packet).unwrap();
//! assert_eq!((header.uid, header.seq, header.intact), (7, 42, true));
//!
//! let mut reader = LineReader::default();
//! let line = Signal::Ack { seq: 3 }.to_line();
//! assert_eq!(reader.push(&line[..4]), Ok(vec![]));
//! assert_eq!(reader.push(&line[4..]), Ok(vec![Signal::Ack { seq: 3 }]));
//! ```

use serde::{Deserialize, Serialize};

/// The longest signalling line accepted.
pub const MAX_LINE_LEN: usize = 4096;
/// Media header length.
pub const MEDIA_HEADER_LEN: usize = 12;

/// One signalling message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Signal {
    /// Client → edge: join a channel.
    Join {
        /// The channel name.
        ch: String,
        /// The user id.
        uid: u32,
        /// Sequence number.
        seq: u64,
    },
    /// Client → edge: an application message.
    Msg {
        /// Sequence number.
        seq: u64,
        /// The text.
        body: String,
    },
    /// Edge → client: message `seq` was received.
    Ack {
        /// The acknowledged sequence number.
        seq: u64,
    },
}

impl Signal {
    /// The message as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// The sequence number of a client message.
    pub fn seq(&self) -> u64 {
        match self {
            Signal::Join { seq, .. } | Signal::Msg { seq, .. } | Signal::Ack { seq } => *seq,
        }
    }
}

/// Cuts a signalling byte stream into messages. Holds at most [`MAX_LINE_LEN`] bytes of an
/// unfinished line.
#[derive(Debug, Default)]
pub struct LineReader {
    buf: Vec<u8>,
}

/// A signalling stream broke its framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// A line is longer than [`MAX_LINE_LEN`].
    #[error("signalling line longer than {MAX_LINE_LEN} bytes")]
    TooLong,
    /// A line is not a signalling message.
    #[error("signalling line is not a message: {0}")]
    Invalid(String),
}

impl LineReader {
    /// Adds bytes and returns every whole message they complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Signal>, LineError> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let signal =
                serde_json::from_slice(text).map_err(|e| LineError::Invalid(e.to_string()))?;
            out.push(signal);
        }
        if self.buf.len() > MAX_LINE_LEN {
            return Err(LineError::TooLong);
        }
        Ok(out)
    }
}

/// FNV-1a, 32 bits.
fn fnv1a(parts: &[&[u8]]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for part in parts {
        for byte in *part {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    hash
}

/// Builds a media packet.
pub fn media_packet(uid: u32, seq: u32, payload: &[u8]) -> Vec<u8> {
    let sum = fnv1a(&[&uid.to_be_bytes(), &seq.to_be_bytes(), payload]);
    let mut out = Vec::with_capacity(MEDIA_HEADER_LEN + payload.len());
    out.extend_from_slice(&uid.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&sum.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Bytes of the send stamp at the start of an application's media payload.
pub const MEDIA_STAMP_LEN: usize = 8;

/// A media payload of `len` bytes (at least [`MEDIA_STAMP_LEN`]) stamped `sent_us`, the rest
/// filled with `fill`.
pub fn stamped_payload(sent_us: u64, len: usize, fill: u8) -> Vec<u8> {
    let mut payload = Vec::with_capacity(len.max(MEDIA_STAMP_LEN));
    payload.extend_from_slice(&sent_us.to_be_bytes());
    payload.resize(len.max(MEDIA_STAMP_LEN), fill);
    payload
}

/// The send stamp of a media packet (header included): microseconds on the *sender's* clock,
/// comparable only with other stamps of the same sender (the receiver's transit time `R − S`
/// carries the two clocks' offset, which cancels in RFC 3550's `D`). `None` when the payload
/// is shorter than a stamp.
///
/// ```
/// use cloudproxy_core::app::{media_packet, media_sent_us, stamped_payload};
///
/// let packet = media_packet(7, 1, &stamped_payload(1_234_567, 188, 0));
/// assert_eq!(packet.len(), 200);
/// assert_eq!(media_sent_us(&packet), Some(1_234_567));
/// assert_eq!(media_sent_us(&media_packet(7, 1, b"short")), None);
/// ```
pub fn media_sent_us(packet: &[u8]) -> Option<u64> {
    let payload = packet.get(MEDIA_HEADER_LEN..)?;
    let (stamp, _) = payload.split_first_chunk::<MEDIA_STAMP_LEN>()?;
    Some(u64::from_be_bytes(*stamp))
}

/// A media packet's header, read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaHeader {
    /// The sender.
    pub uid: u32,
    /// The sender's sequence number.
    pub seq: u32,
    /// Whether the checksum matches.
    pub intact: bool,
}

/// Reads a media packet's header; `None` when shorter than a header.
pub fn read_media(packet: &[u8]) -> Option<MediaHeader> {
    let (header, payload) = packet.split_first_chunk::<MEDIA_HEADER_LEN>()?;
    let [u0, u1, u2, u3, s0, s1, s2, s3, c0, c1, c2, c3] = *header;
    let (uid, seq) = ([u0, u1, u2, u3], [s0, s1, s2, s3]);
    let sum = u32::from_be_bytes([c0, c1, c2, c3]);
    let intact = fnv1a(&[&uid, &seq, payload]) == sum;
    Some(MediaHeader {
        uid: u32::from_be_bytes(uid),
        seq: u32::from_be_bytes(seq),
        intact,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn media_round_trip_and_corruption() {
        let packet = media_packet(7, 42, b"hello");
        assert_eq!(
            read_media(&packet),
            Some(MediaHeader {
                uid: 7,
                seq: 42,
                intact: true
            })
        );
        let mut bad = packet.clone();
        bad[14] ^= 1;
        assert!(!read_media(&bad).unwrap().intact);
        assert_eq!(read_media(&packet[..5]), None);
        assert_eq!(
            read_media(&packet[..MEDIA_HEADER_LEN]).map(|h| h.intact),
            Some(false)
        );
    }

    #[test]
    fn lines_split_anywhere() {
        let mut stream = Signal::Join {
            ch: "room".into(),
            uid: 1,
            seq: 1,
        }
        .to_line();
        assert_eq!(
            stream,
            b"{\"t\":\"join\",\"ch\":\"room\",\"uid\":1,\"seq\":1}\n"
        );
        stream.extend(
            Signal::Msg {
                seq: 2,
                body: "hi".into(),
            }
            .to_line(),
        );
        for cut in 0..stream.len() {
            let mut reader = LineReader::default();
            let mut got = reader.push(&stream[..cut]).unwrap();
            got.extend(reader.push(&stream[cut..]).unwrap());
            assert_eq!(got.len(), 2);
            assert_eq!(got[1].seq(), 2);
        }
        assert_eq!(
            LineReader::default().push(&[b'x'; MAX_LINE_LEN + 1]),
            Err(LineError::TooLong)
        );
        assert!(matches!(
            LineReader::default().push(b"{\"t\":\"nope\"}\n"),
            Err(LineError::Invalid(_))
        ));
    }
}
