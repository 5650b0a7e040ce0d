//! What the benchmarks share: the loopback world they run in ([`world`]), the relay processes
//! and their CPU, memory and descriptor accounting ([`procs`]), the loops that drive traffic
//! through a relay ([`drive`]), a two-party call through `serve` or straight to the edge
//! ([`call`]), and the results files, ratios, goals and the comparison with
//! the committed reference ([`results`]).
//!
//! Every relay runs in a child process (`bench_relay`, found with
//! `env!("CARGO_BIN_EXE_bench_relay")` by the benchmark targets), so that its CPU time is the
//! kernel's accounting of that process. Traffic goes to loopback addresses only, and every loop
//! is bounded in count and time.

#![warn(missing_docs)]
// Benchmarks measure wall and CPU time (clippy.toml disallows the system clocks for the
// simulation's sake).
#![allow(clippy::disallowed_methods)]

pub mod call;
pub mod drive;
pub mod procs;
pub mod results;
pub mod world;
