//! cloudproxy's fuzz targets, as a library.
//!
//! Each file in `fuzz_targets/` is a one-line [`libfuzzer_sys::fuzz_target!`] shim over a
//! function of [`targets`]; the functions themselves need nothing but `cloudproxy-core` and
//! `arbitrary`, so `core/tests/fuzz_replay.rs` replays the committed corpora and regressions
//! through them with `cargo test` on stable. See `fuzz/README.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod targets;

pub use targets::{target, TARGETS};
