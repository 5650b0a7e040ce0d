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

/// Both clocks at the start of the access point's, the relay's and the client's fuzz worlds:
/// their virtual monotonic clock at 1,000 s, the wall clock at 2026-01-01T00:00:00Z. Years
/// apart, so that a machine reading one clock for the other fails the targets' ticket checks.
/// The worlds give no fresh reading after it: Unix time is this reading counted forward with
/// `now`.
pub fn start_clocks() -> cloudproxy_core::time::Clocks {
    use cloudproxy_core::time::{Clocks, Instant, UnixTime};
    Clocks::new(
        Instant::from_millis(1_000_000),
        UnixTime::from_millis(1_767_225_600_000),
    )
}

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
