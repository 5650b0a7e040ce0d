//! What one receive gave: a message of one datagram, or of several the kernel coalesced (UDP
//! GRO), cut back into its datagrams by [`RecvMeta::datagrams`].

use std::net::SocketAddr;

/// The largest message one receive may give a socket with GRO on: the kernel coalesces at
/// most 64 KiB (its `UDP_GRO_CNT_MAX` segments, `GRO_MAX_SIZE` bytes), so a buffer this long
/// never truncates one.
pub const GRO_MESSAGE_MAX: usize = 65_536;

/// One message of [`Udp::try_recv_batch`](super::Udp::try_recv_batch): `len` bytes from
/// `from`, datagrams of `stride` bytes each (the last may be shorter). A message of one
/// datagram has `stride == len`; only a socket with GRO on ([`Udp::enable_gro`](super::Udp::enable_gro))
/// gets more than one in a message, all from one source, all of the stride but the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes received.
    pub len: usize,
    /// Bytes of each datagram in them (the last may be shorter).
    pub stride: usize,
    /// The source of every datagram of the message.
    pub from: SocketAddr,
}

impl RecvMeta {
    /// A message of one datagram of `len` bytes.
    pub fn one(len: usize, from: SocketAddr) -> Self {
        RecvMeta {
            len,
            stride: len,
            from,
        }
    }

    /// The message's datagrams in `buf` (the buffer it was received into), in the order they
    /// were sent. An empty datagram is one empty slice; a buffer shorter than `len` gives
    /// what it holds.
    pub fn datagrams<'a>(&self, buf: &'a [u8]) -> Datagrams<'a> {
        let bytes = buf.get(..self.len).unwrap_or(buf);
        Datagrams {
            rest: bytes,
            stride: self.stride.max(1),
            empty_pending: bytes.is_empty(),
        }
    }

    /// How many datagrams the message holds.
    pub fn count(&self) -> usize {
        if self.len == 0 {
            1
        } else {
            self.len.div_ceil(self.stride.max(1))
        }
    }
}

impl Default for RecvMeta {
    fn default() -> Self {
        RecvMeta::one(0, SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

/// The datagrams of one message ([`RecvMeta::datagrams`]).
#[derive(Debug)]
pub struct Datagrams<'a> {
    rest: &'a [u8],
    stride: usize,
    /// A message of one empty datagram still gives it once.
    empty_pending: bool,
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.empty_pending {
            self.empty_pending = false;
            return Some(&[]);
        }
        if self.rest.is_empty() {
            return None;
        }
        let (one, rest) = self.rest.split_at(self.stride.min(self.rest.len()));
        self.rest = rest;
        Some(one)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9))
    }

    #[test]
    fn one_datagram_is_itself() {
        let buf = [7u8; 100];
        let m = RecvMeta::one(40, from());
        assert_eq!(m.datagrams(&buf).collect::<Vec<_>>(), vec![&buf[..40]]);
        assert_eq!(m.count(), 1);
    }

    #[test]
    fn an_empty_datagram_is_given_once() {
        let m = RecvMeta::one(0, from());
        assert_eq!(
            m.datagrams(&[1, 2, 3]).collect::<Vec<_>>(),
            vec![&[0u8; 0][..]]
        );
        assert_eq!(m.count(), 1);
    }

    #[test]
    fn coalesced_datagrams_are_cut_at_the_stride_the_last_shorter() {
        let buf: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let m = RecvMeta {
            len: 1000,
            stride: 300,
            from: from(),
        };
        let got: Vec<&[u8]> = m.datagrams(&buf).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(m.count(), 4);
        assert_eq!(got[0], &buf[..300]);
        assert_eq!(got[3], &buf[900..1000]);
        assert_eq!(got.concat(), buf);
    }

    #[test]
    fn a_bad_meta_never_reads_past_the_buffer_nor_loops() {
        let buf = [1u8; 10];
        let m = RecvMeta {
            len: 50,
            stride: 0,
            from: from(),
        };
        assert_eq!(m.datagrams(&buf).map(<[u8]>::len).sum::<usize>(), 10);
    }
}
