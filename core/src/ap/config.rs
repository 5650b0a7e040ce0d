//! The access point's configuration.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::wire::{RelayInfo, TicketKey, RELAY_UDP_PORTS};

/// The access point's configuration. Every bound has a default suited to an internet-facing
/// access point; [`ApConfig::new`] takes the two fields that have none.
///
/// "Per IP" means per *client address*: an IPv4 address, or the IPv6 `/64` it lies in; "per
/// prefix" means per *client network*: the IPv4 `/24` or the IPv6 `/56` (see
/// [`client_address`](super::client_address) and [`client_network`](super::client_network)).
#[derive(Clone, Debug)]
pub struct ApConfig {
    /// The key shared with the relays, to sign tickets. Default: all zero bytes, a placeholder
    /// that every deployment must replace.
    pub key: TicketKey,
    /// The relays to hand out. Each answer lists up to [`MAX_RELAYS`](crate::wire::MAX_RELAYS)
    /// of them in an order shuffled per answer, so that load spreads (unless `shuffle_relays`
    /// is off). Their `udp_port` is ignored: each answer draws one from `udp_ports`. Default:
    /// none (every request is refused with `QuotaExceeded`).
    pub relays: Vec<RelayInfo>,
    /// Shuffle the relays per answer. `false` lists them in the order of `relays` in every
    /// answer: a fixed preference, or a check that explores each order in turn (as
    /// `check-firewall` does). Default: true.
    pub shuffle_relays: bool,
    /// The relays' UDP media ports; an empty range announces 0 (no UDP). Default:
    /// [`RELAY_UDP_PORTS`], 4500..=4650.
    pub udp_ports: RangeInclusive<u16>,
    /// How long a ticket is valid after it is issued (it only gates the opening of tunnels).
    /// Default: 120 s.
    pub ticket_lifetime: Duration,
    /// The application ids served; `None` serves any. Default: `None`.
    pub allowed_apps: Option<Vec<String>>,
    /// Most requests (UDP and TCP together) accepted per client address per `rate_window`;
    /// beyond it the first request gets `RateLimited`, the others silence until the window
    /// ends. Default: 20.
    pub max_requests_per_ip: u32,
    /// Most requests accepted per client network per `rate_window`, all its addresses
    /// together (same refusal). Default: 200, ten addresses' worth: the 256 addresses of a
    /// `/24` do not get 256 budgets.
    pub max_requests_per_prefix: u32,
    /// The rate limiter's window: fixed windows, each starting at the first request of its
    /// address (or network). Default: 10 s.
    pub rate_window: Duration,
    /// Most client addresses the rate limiter tracks at once. A window is forgotten only when
    /// it ends, never to make room: while the table is full, addresses it does not track share
    /// one overflow window with the per-prefix budget. Default: 4 096.
    pub max_tracked_ips: usize,
    /// Most client networks the rate limiter tracks at once (same rule, one overflow window).
    /// Default: 1 024.
    pub max_tracked_prefixes: usize,
    /// Most TCP connections open at once; more are closed at once. Default: 1 024.
    pub max_tcp_connections: usize,
    /// Most TCP connections open at once from one client address. Default: 8.
    pub max_tcp_connections_per_ip: usize,
    /// Most TCP connections open at once from one client network. Default: 64.
    pub max_tcp_connections_per_prefix: usize,
    /// A TCP connection that does not complete a request within this long of its accept, or
    /// of its previous answer, is closed (a slow client cannot hold a slot by trickling
    /// bytes). Default: 10 s.
    pub tcp_idle_timeout: Duration,
    /// Most requests answered on one TCP connection; it is closed after the last one (at
    /// least 1). Default: 16.
    pub max_requests_per_tcp_connection: u32,
}

impl ApConfig {
    /// The default configuration with a real `key` and relays.
    pub fn new(key: TicketKey, relays: Vec<RelayInfo>) -> Self {
        ApConfig {
            key,
            relays,
            ..ApConfig::default()
        }
    }
}

impl Default for ApConfig {
    fn default() -> Self {
        ApConfig {
            key: TicketKey::from_bytes([0; 32]),
            relays: Vec::new(),
            shuffle_relays: true,
            udp_ports: RELAY_UDP_PORTS,
            ticket_lifetime: Duration::from_secs(120),
            allowed_apps: None,
            max_requests_per_ip: 20,
            max_requests_per_prefix: 200,
            rate_window: Duration::from_secs(10),
            max_tracked_ips: 4_096,
            max_tracked_prefixes: 1_024,
            max_tcp_connections: 1_024,
            max_tcp_connections_per_ip: 8,
            max_tcp_connections_per_prefix: 64,
            tcp_idle_timeout: Duration::from_secs(10),
            max_requests_per_tcp_connection: 16,
        }
    }
}
