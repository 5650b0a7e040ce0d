//! The relay's pool of datagram buffers: the media path's UDP outputs take their `Vec<u8>`
//! from it, and the driver gives them back once sent ([`Relay::recycle`]), so that a relayed
//! datagram allocates nothing once the pool is warm.
//!
//! Bounded both ways: at most [`POOL_MAX_BUFFERS`] buffers are kept, and only buffers whose
//! capacity is in [`POOL_KEPT_CAPACITY`] (every media frame fits without growing, none holds
//! more than the protocol's largest datagram), so the pool never holds more than
//! `POOL_MAX_BUFFERS * MAX_FRAME_LEN` bytes (about 514 KiB). Any other buffer given back is
//! dropped. A driver that never recycles still works: every output then allocates its
//! buffer.

use std::ops::RangeInclusive;

use super::Relay;
use crate::wire::{MAX_FRAME_LEN, MAX_MEDIA_FRAME_LEN};

/// Most buffers the pool keeps.
pub const POOL_MAX_BUFFERS: usize = 256;
/// The capacities of the buffers the pool keeps: room for the largest media frame
/// ([`MAX_MEDIA_FRAME_LEN`]), at most the protocol's largest datagram ([`MAX_FRAME_LEN`]).
pub const POOL_KEPT_CAPACITY: RangeInclusive<usize> = MAX_MEDIA_FRAME_LEN..=MAX_FRAME_LEN;

/// Spare datagram buffers, empty, each with a capacity in [`POOL_KEPT_CAPACITY`].
#[derive(Debug, Default)]
pub(super) struct BufferPool {
    free: Vec<Vec<u8>>,
    /// Buffers allocated because none was spare.
    allocated: u64,
}

impl BufferPool {
    /// An empty buffer with room for any media frame: a spare one, else a new one.
    pub(super) fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| {
            self.allocated += 1;
            Vec::with_capacity(MAX_FRAME_LEN)
        })
    }

    /// Keeps `buf` for reuse if there is room and its capacity is in [`POOL_KEPT_CAPACITY`];
    /// drops it otherwise. Whether it was kept.
    pub(super) fn give(&mut self, mut buf: Vec<u8>) -> bool {
        if self.free.len() >= POOL_MAX_BUFFERS || !POOL_KEPT_CAPACITY.contains(&buf.capacity()) {
            return false;
        }
        if self.free.capacity() == 0 {
            // The list's own storage, allocated once at its bound.
            self.free.reserve_exact(POOL_MAX_BUFFERS);
        }
        buf.clear();
        self.free.push(buf);
        true
    }

    /// How many buffers are kept.
    pub(super) fn len(&self) -> usize {
        self.free.len()
    }
}

impl Relay {
    /// Gives back the buffer of a [`RelayOutput::UdpToClient`](super::RelayOutput::UdpToClient)
    /// or [`RelayOutput::UdpToUpstream`](super::RelayOutput::UdpToUpstream) once its datagram
    /// is sent or dropped: the relay reuses it for a later output instead of allocating (see
    /// the drain contract, point 9). Optional; any `Vec<u8>` may be given; the pool keeps at
    /// most [`POOL_MAX_BUFFERS`], each of a capacity in [`POOL_KEPT_CAPACITY`], and drops the
    /// rest.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.pool.give(buf);
    }

    /// How many spare datagram buffers the relay holds (at most [`POOL_MAX_BUFFERS`]).
    pub fn spare_buffers(&self) -> usize {
        self.pool.len()
    }

    /// How many datagram buffers the relay has allocated because none was spare: with a
    /// driver that recycles, it stops growing once the pool is warm.
    pub fn buffers_allocated(&self) -> u64 {
        self.pool.allocated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_media_sized_buffers_up_to_its_bound() {
        let mut pool = BufferPool::default();
        let mut buf = pool.take();
        assert_eq!(buf.capacity(), MAX_FRAME_LEN);
        buf.extend_from_slice(&[1; 100]);
        assert!(pool.give(buf));
        let again = pool.take();
        assert!(again.is_empty(), "a kept buffer comes back empty");
        assert_eq!(again.capacity(), MAX_FRAME_LEN);
        assert_eq!(pool.len(), 0);
        assert_eq!(pool.allocated, 1, "the second take reused the first buffer");

        assert!(
            !pool.give(Vec::with_capacity(MAX_FRAME_LEN + 1)),
            "too large"
        );
        assert!(
            !pool.give(Vec::with_capacity(MAX_MEDIA_FRAME_LEN - 1)),
            "would grow"
        );
        assert!(pool.give(Vec::with_capacity(MAX_MEDIA_FRAME_LEN)));
        for _ in 1..POOL_MAX_BUFFERS {
            assert!(pool.give(Vec::with_capacity(MAX_FRAME_LEN)));
        }
        assert_eq!(pool.len(), POOL_MAX_BUFFERS);
        assert!(!pool.give(Vec::with_capacity(MAX_FRAME_LEN)), "full");
        assert_eq!(pool.len(), POOL_MAX_BUFFERS);
    }
}
