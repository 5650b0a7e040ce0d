//! The bodies of the fuzz targets: one function `fn(&[u8])` per attack surface, which panics
//! when a property breaks.
//!
//! This module tree uses only `cloudproxy-core`, `arbitrary` and `std` (no `libfuzzer-sys`, no
//! `crate::` paths), so that the main workspace's `core/tests/fuzz_replay.rs` includes it with
//! `#[path]` and replays every corpus and regression file through the very same functions on
//! stable Rust. The files in `fuzz/fuzz_targets/` are one-line shims over [`TARGETS`].

pub mod ap;
pub mod client;
pub mod engine_ops;
pub mod http_connect;
pub mod input;
pub mod params;
pub mod relay;
pub mod seeds;
pub mod socks5;
pub mod wire_decode;

/// A fuzz target: its name (the name of its `fuzz_targets/` file and of its corpus and
/// regression folders) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("params", params::run),
    ("engine_ops", engine_ops::run),
    ("wire_decode", wire_decode::run),
    ("socks5", socks5::run),
    ("relay", relay::run),
    ("ap", ap::run),
    ("client", client::run),
    ("http_connect", http_connect::run),
];

/// The body of the target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
