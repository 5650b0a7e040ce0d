//! Deterministic randomness, taken as an input.
//!
//! Nothing in `core` draws from a global random number generator. A machine that needs random
//! values (session ids, ticket nonces, jitter) is handed an [`Entropy`], a byte stream that is a
//! pure function of a 32-byte seed. The real-socket driver seeds it from the operating system;
//! the simulation seeds it from the scenario, so that every run replays bit for bit.
//!
//! The stream is the concatenation of the blocks
//! `HMAC-SHA256(key = seed, message = counter as u64, big-endian)` for `counter = 0, 1, 2, …`:
//! a keyed pseudo-random function in counter mode. Knowing outputs does not reveal the seed or
//! later outputs (as long as the seed itself is secret and unpredictable), so the same type is
//! fit for session ids and ticket nonces.
//!
//! ```
//! use cloudproxy_core::entropy::Entropy;
//!
//! let mut a = Entropy::from_u64(7);
//! let mut b = Entropy::from_u64(7);
//! assert_eq!(a.next_u64(), b.next_u64());
//! let die = a.next_below(6);
//! assert!(die < 6);
//! ```
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of one output block: the size of an HMAC-SHA256 tag.
const BLOCK_LEN: usize = 32;

/// HMAC-SHA256 keyed with a 32-byte key, built without a fallible constructor.
///
/// HMAC pads keys shorter than the hash's 64-byte block with zeros (RFC 2104, section 2), so
/// keying with the zero-padded block is the very same function as keying with the 32 bytes.
pub(crate) fn hmac_sha256(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    for (dst, src) in block.iter_mut().zip(key) {
        *dst = *src;
    }
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

/// A deterministic random byte source: HMAC-SHA256 of a block counter, keyed by a 32-byte seed.
///
/// Two sources built from the same seed yield the same stream, however it is consumed:
/// [`fill`](Entropy::fill), [`next_u64`](Entropy::next_u64) and
/// [`next_below`](Entropy::next_below) all draw bytes from the one stream, in order.
///
/// `Debug` shows how far the stream has been consumed, never the seed.
#[derive(Clone)]
pub struct Entropy {
    /// HMAC state keyed with the seed, cloned for every block.
    keyed: Hmac<Sha256>,
    /// Counter of the next block to compute.
    counter: u64,
    /// The current block.
    block: [u8; BLOCK_LEN],
    /// How many bytes of `block` have been handed out (`BLOCK_LEN` = none left).
    used: usize,
}

impl Entropy {
    /// A source seeded with 32 bytes. Use an unpredictable seed wherever the output must not be
    /// guessable (session ids, ticket nonces).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Entropy {
            keyed: hmac_sha256(&seed),
            counter: 0,
            block: [0; BLOCK_LEN],
            used: BLOCK_LEN,
        }
    }

    /// A source seeded from a `u64`, for tests and simulations: the seed is the big-endian bytes
    /// of `seed` repeated four times. Predictable by design; never use it for real secrets.
    pub fn from_u64(seed: u64) -> Self {
        let bytes = seed.to_be_bytes();
        let mut full = [0u8; 32];
        for (dst, src) in full.iter_mut().zip(bytes.iter().cycle()) {
            *dst = *src;
        }
        Entropy::from_seed(full)
    }

    /// An independent child source, seeded with the next 32 bytes of this stream. Handy to give
    /// every node of a simulation its own stream from one scenario seed.
    pub fn fork(&mut self) -> Entropy {
        Entropy::from_seed(self.next_array())
    }

    /// Fills `dest` with the next `dest.len()` bytes of the stream.
    pub fn fill(&mut self, dest: &mut [u8]) {
        let mut dest = dest;
        while !dest.is_empty() {
            if self.used >= BLOCK_LEN {
                self.refill();
            }
            let available = self.block.get(self.used..).unwrap_or_default();
            let n = available.len().min(dest.len());
            let (head, tail) = dest.split_at_mut(n);
            for (dst, src) in head.iter_mut().zip(available) {
                *dst = *src;
            }
            self.used += n;
            dest = tail;
        }
    }

    /// The next `N` bytes of the stream, as an array (for example a 16-byte ticket nonce).
    pub fn next_array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    /// The next 8 bytes of the stream, read as a big-endian `u64`.
    pub fn next_u64(&mut self) -> u64 {
        u64::from_be_bytes(self.next_array())
    }

    /// A uniformly distributed value in `0..n`, without modulo bias.
    ///
    /// Draws `u64`s and rejects those below `2^64 mod n`, so that the accepted range is an exact
    /// multiple of `n`; fewer than two draws are needed on average for any `n`. Returns 0 without
    /// drawing anything when `n == 0` (the range is empty; this is not an error worth a panic).
    pub fn next_below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // 2^64 mod n, computed in u64: (2^64 - n) mod n.
        let threshold = n.wrapping_neg() % n;
        loop {
            let x = self.next_u64();
            if x >= threshold {
                return x % n;
            }
        }
    }

    /// Computes the block for the current counter and advances the counter.
    fn refill(&mut self) {
        let mut mac = self.keyed.clone();
        mac.update(&self.counter.to_be_bytes());
        self.block = mac.finalize().into_bytes().into();
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }

    /// Total number of bytes handed out so far.
    fn bytes_drawn(&self) -> u128 {
        let full_blocks = u128::from(self.counter.saturating_sub(1));
        if self.counter == 0 {
            0
        } else {
            full_blocks * BLOCK_LEN as u128 + self.used as u128
        }
    }
}

impl fmt::Debug for Entropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entropy")
            .field("seed", &"<redacted>")
            .field("bytes_drawn", &self.bytes_drawn())
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The stream as the definition states it, computed independently of the buffering.
    fn reference_stream(seed: [u8; 32], len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut counter = 0u64;
        while out.len() < len {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&seed).unwrap();
            mac.update(&counter.to_be_bytes());
            out.extend_from_slice(&mac.finalize().into_bytes());
            counter += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn known_answer_first_block() {
        // HMAC-SHA256(key = 32 zero bytes, message = 8 zero bytes), computed with Python's hmac.
        let mut e = Entropy::from_seed([0; 32]);
        let block: [u8; 32] = e.next_array();
        assert_eq!(
            block,
            [
                0xf3, 0x75, 0x18, 0x0a, 0xba, 0x92, 0x88, 0x84, 0x01, 0xf1, 0x91, 0x9b, 0xe4, 0xa8,
                0x71, 0x5a, 0x62, 0x76, 0x3b, 0x65, 0xc1, 0xc1, 0x0e, 0x1d, 0x08, 0x58, 0xe8, 0x1d,
                0x4d, 0x6f, 0x9f, 0xd2
            ]
        );
    }

    #[test]
    fn padded_key_matches_plain_hmac() {
        let key = [0x5a; 32];
        let mut a = hmac_sha256(&key);
        let mut b = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        a.update(b"message");
        b.update(b"message");
        assert_eq!(a.finalize().into_bytes(), b.finalize().into_bytes());
    }

    #[test]
    fn same_seed_same_stream() {
        let mut a = Entropy::from_seed([9; 32]);
        let mut b = Entropy::from_seed([9; 32]);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = Entropy::from_u64(42);
        let mut d = Entropy::from_u64(42);
        assert_eq!(c.next_array::<100>(), d.next_array::<100>());
    }

    #[test]
    fn different_seeds_differ() {
        let mut a = Entropy::from_u64(1);
        let mut b = Entropy::from_u64(2);
        assert_ne!(a.next_array::<32>(), b.next_array::<32>());
        let mut c = Entropy::from_seed([0; 32]);
        let mut d = Entropy::from_seed({
            let mut s = [0; 32];
            s[31] = 1;
            s
        });
        assert_ne!(c.next_u64(), d.next_u64());
    }

    #[test]
    fn from_u64_spreads_the_value() {
        let mut seed = [0u8; 32];
        for chunk in seed.chunks_mut(8) {
            chunk.copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        }
        let mut a = Entropy::from_u64(0x0102_0304_0506_0708);
        let mut b = Entropy::from_seed(seed);
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn next_u64_is_big_endian_stream_bytes() {
        let stream = reference_stream([3; 32], 16);
        let mut e = Entropy::from_seed([3; 32]);
        assert_eq!(
            e.next_u64(),
            u64::from_be_bytes(stream[..8].try_into().unwrap())
        );
        assert_eq!(
            e.next_u64(),
            u64::from_be_bytes(stream[8..16].try_into().unwrap())
        );
    }

    #[test]
    fn next_below_edge_cases() {
        let mut e = Entropy::from_u64(5);
        let before = format!("{e:?}");
        assert_eq!(e.next_below(0), 0);
        assert_eq!(format!("{e:?}"), before, "n = 0 draws nothing");
        for _ in 0..50 {
            assert_eq!(e.next_below(1), 0);
            assert!(e.next_below(2) < 2);
            assert!(e.next_below(u64::MAX) < u64::MAX);
            assert!(e.next_below((1 << 63) + 1) < (1 << 63) + 1);
        }
    }

    #[test]
    fn next_below_covers_small_ranges() {
        let mut e = Entropy::from_u64(11);
        let mut seen = [0u32; 6];
        for _ in 0..6_000 {
            seen[e.next_below(6) as usize] += 1;
        }
        // Each face expects 1000; a fair source stays far inside these bounds.
        for count in seen {
            assert!((850..=1150).contains(&count), "{seen:?}");
        }
    }

    #[test]
    fn fork_is_deterministic_and_distinct() {
        let mut a = Entropy::from_u64(8);
        let mut b = Entropy::from_u64(8);
        let mut fa = a.fork();
        let mut fb = b.fork();
        assert_eq!(fa.next_u64(), fb.next_u64());
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(fa.next_u64(), a.next_u64());
    }

    #[test]
    fn debug_does_not_print_the_seed() {
        let mut e = Entropy::from_seed([0xAB; 32]);
        e.next_array::<40>();
        let text = format!("{e:?}");
        assert!(text.contains("redacted"), "{text}");
        assert!(text.contains("bytes_drawn: 40"), "{text}");
        assert!(!text.contains("171"), "{text}");
    }

    proptest! {
        #[test]
        fn fill_in_any_chunks_matches_the_stream(
            seed in any::<[u8; 32]>(),
            chunks in proptest::collection::vec(0usize..80, 0..20),
        ) {
            let total: usize = chunks.iter().sum();
            let expected = reference_stream(seed, total);
            let mut e = Entropy::from_seed(seed);
            let mut got = Vec::new();
            for len in chunks {
                let mut buf = vec![0u8; len];
                e.fill(&mut buf);
                got.extend_from_slice(&buf);
            }
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn next_below_is_below(seed in any::<u64>(), n in 1u64..) {
            let mut e = Entropy::from_u64(seed);
            prop_assert!(e.next_below(n) < n);
        }
    }
}
