//! # cloudproxy-core
//!
//! The pure, sans-IO protocol core of cloudproxy: everything that decides, nothing that waits.
//!
//! Nothing here reads a clock, opens a socket or draws from a global random number generator:
//! time and randomness come in as inputs, so every run is a deterministic function of them
//! (the build enforces the clock part: `clippy.toml` disallows `Instant::now` and
//! `SystemTime::now`).
//!
//! ## Modules
//!
//! The machines (each with the run loop below):
//!
//! - [`client`]: the SDK's proxy client: resolves, asks the access point, opens a tunnel
//!   through a relay (or goes through SOCKS5, or direct), fails over, falls back from UDP to
//!   TCP media, keeps alive, reconnects.
//! - [`ap`]: the cloud proxy's access point: requests in, relays and tickets out, bounded and
//!   rate-limited per client address and network, never amplifying.
//! - [`relay`]: the cloud proxy's relay: tickets, the no-open-relay rule, sessions, media
//!   allocations, quotas, idle expiry.
//! - [`app`]: the simulated SDK application on top of the proxy client: its script of SDK
//!   calls, (re)joining the channel, re-sends, join gating, media and signalling ticks, the
//!   events its report is folded from.
//!
//! The deliberate variants (no clock, so no timer half):
//!
//! - [`socks5`]: RFC 1928/1929 codecs and two handshake machines driven by bytes alone:
//!   `handle_bytes(&[u8]) -> Result<Progress, _>`, then drain `poll_transmit()`.
//! - [`engine`]: the SDK engine's life cycle and the rule of when proxy settings may change: a
//!   synchronous machine whose calls (`set_parameters`, `join`, `leave`) return the SDK's
//!   result at once, as the SDK's API does; it has no outputs to drain.
//!
//! Pure data, codecs and helpers:
//!
//! - [`params`]: the `setParameters` grammar for the proxy keys, with errors that name the
//!   key, the element and the reason, and a canonical form that re-parses to the same value.
//! - [`http_connect`]: `CONNECT` tunnels through an enterprise HTTP proxy (beyond the seed):
//!   a bounded response codec and a handshake machine with Basic authentication (its machine
//!   has the run loop below).
//! - [`wire`]: our cloud-proxy protocol's messages, tickets and framing (`decode` never
//!   panics; `encode(decode(b)) == b` for valid frames).
//! - [`sdrtn`]: what a client needs to know about an SD-RTN edge: its addresses, and how media
//!   datagrams are framed over TCP.
//! - [`entropy`]: the seeded randomness every machine is handed (ticket nonces, jitter).
//! - [`time`]: the two clocks a driver hands in: [`time::Instant`], monotonic microseconds on
//!   the driver's timeline (every `now`), and [`time::UnixTime`], the wall clock tickets expire
//!   in ([`time::Clocks`] at construction, then `ApInput::WallClock`, `RelayInput::WallClock`).
//!
//! ## Run loop
//!
//! Every machine has the same shape (str0m's, quinn-proto's), and its driver runs the same
//! loop. The driver owns every socket, the resolver and one timer; the machine owns every
//! rule.
//!
//! ```text
//! machine.handle_input(input, now)        // something happened: bytes, a connect, an answer
//! // or, when the timer fires:
//! machine.handle_timeout(now)
//! while let Some(output) = machine.poll_output() {
//!     carry_out(output)                  // send, connect, close, resolve; events to the trace
//! }
//! timer = machine.poll_timeout()          // None: no timer; call handle_timeout at (or after) it
//! ```
//!
//! 1. After **every** `handle_input` or `handle_timeout`, drain `poll_output` until `None` and
//!    carry out every output in the order given. Outputs are `#[must_use]`; none may be dropped
//!    (a close or a state change a driver swallows is a rule broken).
//! 2. Then re-arm the timer from `poll_timeout`. A late `handle_timeout` is fine, an early one
//!    does nothing; after it, `poll_timeout` is `None` or later than `now`.
//! 3. `now` never goes backwards (an earlier `now` is taken as the latest seen). Ids of
//!    connections and allocations are the machine's or the driver's as each module says;
//!    inputs naming ids that are gone are ignored and counted, never a panic.
//! 4. `now` is the driver's **monotonic** clock, never the wall clock. The machines that issue
//!    or check tickets (the access point and the relay) also need Unix time, and cannot be
//!    built without it: their constructors take [`time::Clocks`], both clocks read at one
//!    moment, from which they count Unix time forward with `now`. A driver that follows the
//!    system's wall clock (it may step) hands in a fresh reading (`ApInput::WallClock`,
//!    `RelayInput::WallClock`) before each input that may carry a ticket. No machine ever
//!    reads `now` as Unix time.
//!
//! Each machine's module writes its own contract out in full, with a doctest:
//! [`client`](client#drain-contract), [`ap`](ap#driving-an-accesspoint-the-drain-contract),
//! [`relay`], [`app`](app#drain-contract) (which refuses the application's own commands as
//! inputs, and fires its own timers only in `handle_timeout`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Bad input is an error, never a panic: no indexing that can go out of bounds, no unwrap or
// expect, no panic! outside the tests (a local allow says why its invariant holds).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod ap;
pub mod app;
pub mod client;
pub mod engine;
pub mod entropy;
pub mod http_connect;
pub mod params;
pub mod relay;
pub mod sdrtn;
pub mod socks5;
pub mod time;
pub mod wire;

#[cfg(test)]
mod test_support;
