//! The relay's configuration.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::Cidr;
use crate::wire::{TicketKey, RELAY_UDP_PORTS};

/// Everything a [`Relay`](super::Relay) needs to know, fixed at construction.
///
/// `Default` gives the documented value of every field. Two of them must be replaced in any
/// real deployment: `key` (a placeholder) and `sdrtn` (empty: the default relay refuses every
/// destination).
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The key shared with the access point, to check tickets. Default: all zero bytes, a
    /// placeholder that every deployment must replace.
    pub key: TicketKey,
    /// The SD-RTN blocks the relay may reach, for signalling tunnels and media alike (see
    /// [`destination_allowed`](super::destination_allowed)). Default: none, so every
    /// destination is refused.
    pub sdrtn: Vec<Cidr>,
    /// The UDP ports the relay listens on for media; each session is told one of them in its
    /// `TunnelAccept` (and media is accepted on any of them). An empty range means no UDP
    /// media (the port announced is 0). Default: [`RELAY_UDP_PORTS`], 4500..=4650.
    pub udp_ports: RangeInclusive<u16>,
    /// How often clients should send keepalives on an idle media path, announced in
    /// `TunnelAccept`. Default: 5 s.
    pub keepalive_interval: Duration,
    /// A session with no traffic in either direction for this long is closed: no tunnel byte
    /// either way (as the driver reports them, at most
    /// [`RelayConfig::activity_report_interval`] late), no media, keepalive or `Close` from the
    /// client on any path, no media from SD-RTN. Announced in `TunnelAccept`. Default: 30 s
    /// (six keepalive intervals). A ticket's expiry never ends a session.
    pub idle_timeout: Duration,
    /// A connection that has not sent its first message (`TunnelOpen` or `MediaChannelOpen`)
    /// this long after being accepted is closed; so is a tunnel whose upstream connection is
    /// not established this long after the `TunnelOpen`. Default: 10 s.
    pub handshake_timeout: Duration,
    /// Most sessions at once, the ones still connecting included. Default: 10 000.
    pub max_sessions_total: usize,
    /// Most sessions at once for one client IP address. Enterprises put whole offices behind
    /// one NAT address, so this is generous. Default: 256.
    pub max_sessions_per_client_ip: usize,
    /// Most connections still in their handshake at once (accepted but no first message yet,
    /// or waiting for the upstream connection); more are refused at once. Default: 1 024.
    pub max_pending_handshakes: usize,
    /// Most of those pending handshakes from one client IP address, so that one address cannot
    /// hold every slot of [`RelayConfig::max_pending_handshakes`] (a quarter of them by
    /// default: an office behind one NAT address still joins at once). Default: 256.
    pub max_pending_handshakes_per_client_ip: usize,
    /// Most bytes the relay queues toward one side of a session: the bytes a client sends
    /// after its `TunnelOpen` while the upstream connection is being established. A session
    /// that exceeds it is closed. Default: 64 KiB.
    pub max_buffered_bytes_per_session: usize,
    /// Most ticket nonces remembered at once to refuse replays (each until its ticket
    /// expires). When full, new tunnels are refused with `QuotaExceeded` rather than
    /// forgetting a nonce. Default: 100 000.
    pub max_used_nonces: usize,
    /// Most `Error` datagrams the relay sends per second in answer to unauthenticated or
    /// refused UDP packets (each also no larger than the packet it answers, so the relay cannot
    /// amplify a reflection attack). 0 disables them. Default: 50.
    pub max_udp_error_replies_per_sec: u32,
    /// How often, at most, the driver reports the bytes a spliced tunnel moved
    /// ([`RelayInput::TunnelActivity`](super::RelayInput::TunnelActivity)) while they flow:
    /// the idle timer and the byte counters are at most this late. Announced in
    /// [`RelayOutput::Splice`](super::RelayOutput::Splice). Default: 1 s.
    pub activity_report_interval: Duration,
    /// Which shard of a relay this machine is, when one relay address is served by several
    /// machines (one per core): it draws session ids of its own shard only and announces UDP
    /// ports of its own shard only (see [`Shard`]). Default: the only shard.
    pub shard: Shard,
    /// The canary, a planted bug: skip the destination allow-list entirely, so that the
    /// relay forwards anywhere. It exists only in core's own tests and behind the `canary`
    /// feature (for the oracle tests that must catch it): no production build has the field,
    /// so none can turn the no-open-relay rule off. Default: false.
    #[cfg(any(test, feature = "canary"))]
    pub canary_skip_destination_check: bool,
}

impl RelayConfig {
    /// The default configuration with a real `key` and SD-RTN blocks.
    pub fn new(key: TicketKey, sdrtn: Vec<Cidr>) -> Self {
        RelayConfig {
            key,
            sdrtn,
            ..RelayConfig::default()
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            key: TicketKey::from_bytes([0; 32]),
            sdrtn: Vec::new(),
            udp_ports: RELAY_UDP_PORTS,
            keepalive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_sessions_total: 10_000,
            max_sessions_per_client_ip: 256,
            max_pending_handshakes: 1_024,
            max_pending_handshakes_per_client_ip: 256,
            max_buffered_bytes_per_session: 64 * 1024,
            max_used_nonces: 100_000,
            max_udp_error_replies_per_sec: 50,
            activity_report_interval: Duration::from_secs(1),
            shard: Shard::ONLY,
            #[cfg(any(test, feature = "canary"))]
            canary_skip_destination_check: false,
        }
    }
}

/// One shard of a relay served by `count` machines (a worker per core), this one being number
/// `index`.
///
/// Session ids carry their shard: `session_id % count == index`, so any worker can tell whose a
/// `MediaChannelOpen` is and hand the connection over
/// ([`RelayOutput::TcpHandoff`](super::RelayOutput::TcpHandoff)). The UDP ports of the
/// configured range are dealt out the same way: port `start + k` belongs to shard
/// `k % count`, and a session is announced one of its own shard's ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u16,
    /// How many shards serve the relay address, at least 1.
    pub count: u16,
}

impl Shard {
    /// The only shard of a relay served by one machine.
    pub const ONLY: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u16, count: u16) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// The shard that owns `session_id`.
    pub fn of_session(self, session_id: u64) -> u16 {
        u16::try_from(session_id % u64::from(self.count.max(1))).unwrap_or(0)
    }

    /// Whether `session_id` belongs to this shard.
    pub fn owns_session(self, session_id: u64) -> bool {
        self.of_session(session_id) == self.index
    }

    /// Whether the UDP port `port` of the range starting at `start` belongs to this shard.
    pub fn owns_port(self, start: u16, port: u16) -> bool {
        port >= start && (port - start) % self.count.max(1) == self.index
    }
}
