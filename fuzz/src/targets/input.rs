//! The byte format of the structured targets' inputs: a small, stable language read through
//! [`arbitrary::Unstructured`], and its mirror [`Writer`] for the seed files.
//!
//! The op types of `engine_ops`, `relay` and `client` implement [`Arbitrary`] by hand on top
//! of these readers rather than with `#[derive(Arbitrary)]`, for one reason: a derived format
//! depends on `arbitrary`'s internals (enum tags are 4-byte integers scaled into range,
//! collection lengths are read from the *end* of the input), so a seed written by hand would
//! change meaning with the crate's version. Here every value is read from the front, in a
//! format this file fixes:
//!
//! | value             | bytes                                                      |
//! |-------------------|------------------------------------------------------------|
//! | tag / `u8`        | 1 byte (a tag is taken modulo the number of variants)      |
//! | `u16`, `u32`, `u64` | 2, 4, 8 bytes, big-endian                                |
//! | `bool`            | 1 byte, odd = true                                         |
//! | short bytes       | a 1-byte length, then that many bytes (fewer if the input ends) |
//! | long bytes        | a 2-byte big-endian length, then that many bytes (same)    |
//!
//! A read past the end gives zeros (and empty byte strings), so every byte string is a valid
//! input: libFuzzer's mutations never fall off the format, and a truncated seed is still a
//! meaningful, shorter run.

use arbitrary::{Arbitrary, Unstructured};

/// Most ops one input runs (bounds the work per execution).
pub const MAX_OPS: usize = 256;

/// One byte (0 past the end).
pub fn byte(u: &mut Unstructured<'_>) -> u8 {
    u8::arbitrary(u).unwrap_or(0)
}

/// A tag in `0..variants` (`variants` > 0).
pub fn tag(u: &mut Unstructured<'_>, variants: u8) -> u8 {
    byte(u) % variants.max(1)
}

/// A boolean: an odd byte.
pub fn flag(u: &mut Unstructured<'_>) -> bool {
    byte(u) & 1 == 1
}

/// `N` bytes, zero-padded past the end.
pub fn array<const N: usize>(u: &mut Unstructured<'_>) -> [u8; N] {
    let mut out = [0u8; N];
    for b in &mut out {
        *b = byte(u);
    }
    out
}

/// A big-endian `u16`.
pub fn be_u16(u: &mut Unstructured<'_>) -> u16 {
    u16::from_be_bytes(array(u))
}

/// A big-endian `u32`.
pub fn be_u32(u: &mut Unstructured<'_>) -> u32 {
    u32::from_be_bytes(array(u))
}

/// A big-endian `u64`.
pub fn be_u64(u: &mut Unstructured<'_>) -> u64 {
    u64::from_be_bytes(array(u))
}

/// Up to 255 bytes after a 1-byte length.
pub fn short_bytes(u: &mut Unstructured<'_>) -> Vec<u8> {
    let len = usize::from(byte(u));
    take(u, len)
}

/// Up to 65 535 bytes after a 2-byte length.
pub fn long_bytes(u: &mut Unstructured<'_>) -> Vec<u8> {
    let len = usize::from(be_u16(u));
    take(u, len)
}

fn take(u: &mut Unstructured<'_>, len: usize) -> Vec<u8> {
    let len = len.min(u.len());
    u.bytes(len).map(<[u8]>::to_vec).unwrap_or_default()
}

/// Reads ops until the input ends (at most [`MAX_OPS`]).
pub fn ops<'a, T: Arbitrary<'a>>(u: &mut Unstructured<'a>) -> Vec<T> {
    let mut out = Vec::new();
    while !u.is_empty() && out.len() < MAX_OPS {
        match T::arbitrary(u) {
            Ok(op) => out.push(op),
            Err(_) => break,
        }
    }
    out
}

/// Picks element `pick` counted from the most recent (0 = the last), `None` when empty.
pub fn recent<T: Copy>(items: &[T], pick: u8) -> Option<T> {
    let len = items.len();
    if len == 0 {
        return None;
    }
    items.get(len - 1 - usize::from(pick) % len).copied()
}

/// A part of a structured input written back in the format it is read in (the seed files
/// are made with it).
pub trait Encode {
    /// Writes `self` in the format it is read in.
    fn encode(&self, w: &mut Writer);
}

/// The set-up bytes at the head of an input, read before the ops.
pub trait Head: Encode + Sized {
    /// Reads the set-up (zeros past the end).
    fn decode(u: &mut Unstructured<'_>) -> Self;
}

/// A whole input of a target whose set-up is `S` and whose steps are `O`: the set-up, then
/// ops until the input ends (at most [`MAX_OPS`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script<S, O> {
    /// The configuration.
    pub setup: S,
    /// What happens, in order.
    pub ops: Vec<O>,
}

impl<S: Head, O: Encode + for<'a> Arbitrary<'a>> Script<S, O> {
    /// Reads a script.
    pub fn decode(data: &[u8]) -> Self {
        let mut u = Unstructured::new(data);
        let setup = S::decode(&mut u);
        Script {
            setup,
            ops: ops(&mut u),
        }
    }

    /// Writes the script in the format [`Script::decode`] reads.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.setup.encode(&mut w);
        for op in &self.ops {
            op.encode(&mut w);
        }
        w.into_bytes()
    }
}

/// Writes inputs in the format above (the seed files are made with it).
#[derive(Clone, Debug, Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// An empty input.
    pub fn new() -> Self {
        Writer(Vec::new())
    }

    /// One byte (a tag, a `u8`).
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }

    /// A boolean.
    pub fn flag(&mut self, b: bool) -> &mut Self {
        self.byte(u8::from(b))
    }

    /// Raw bytes (an array).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// Short bytes (at most 255; longer input is cut).
    pub fn short_bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let bytes = &bytes[..bytes.len().min(255)];
        self.byte(bytes.len() as u8).raw(bytes)
    }

    /// Long bytes (at most 65 535; longer input is cut).
    pub fn long_bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let bytes = &bytes[..bytes.len().min(65_535)];
        self.u16(bytes.len() as u16).raw(bytes)
    }

    /// The input.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}
