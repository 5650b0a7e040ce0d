//! The `relay` target's input language and the world it describes: the set-up (SD-RTN
//! blocks, bounds), the clients, the destinations, and the ops.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use cloudproxy_core::relay::{ApConfig, Cidr, RelayConfig};
use cloudproxy_core::wire::{RelayInfo, TicketKey};

use super::super::input::{self, Writer};

/// The key the access point and the relay share here (the relay unit tests' key).
pub const KEY: TicketKey = TicketKey::from_bytes([0x42; 32]);

/// [`Payload::ApRequest`] flag bit: send the request unpadded (as before the padding rule).
/// It is cleared from the flags byte on the wire.
pub(super) const UNPADDED: u8 = 0x40;

/// The application ids tickets and requests use.
pub const APPS: &[&str] = &["demo-app", "other-app", "x"];

/// The clients: behind an enterprise NAT (two ports), elsewhere, IPv6, and the first one's
/// address in IPv4-mapped form.
pub fn clients() -> [SocketAddr; 5] {
    [
        SocketAddr::from(([198, 18, 0, 7], 50000)),
        SocketAddr::from(([198, 18, 0, 7], 50001)),
        SocketAddr::from(([100, 200, 1, 9], 51000)),
        SocketAddr::from((Ipv6Addr::new(0x2600, 0, 0, 0, 0, 0, 0, 5), 5000)),
        SocketAddr::from((Ipv4Addr::new(198, 18, 0, 7).to_ipv6_mapped(), 5002)),
    ]
}

/// Destinations a client may name: SD-RTN first, then everything a relay must refuse.
pub fn destinations() -> Vec<SocketAddr> {
    [
        "47.74.211.17:4001",
        "52.80.192.229:4700",
        "47.74.0.1:9",
        "[2600:1f00::10]:4001",
        "10.1.2.3:4001",
        "47.74.211.17:0",
        "[::ffff:47.74.211.17]:4001",
        "52.80.193.1:4700",
        "127.0.0.1:4001",
        "[::1]:4001",
        "10.0.0.1:80",
        "192.168.0.112:80",
        "169.254.169.254:80",
        "0.0.0.0:80",
        "255.255.255.255:80",
        "224.0.0.1:5000",
        "[fe80::1]:80",
        "[fd00::1]:80",
        "100.64.0.1:80",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

/// The relays the access point hands out.
pub(super) fn ap_relays() -> Vec<RelayInfo> {
    vec![
        RelayInfo {
            addr: IpAddr::V4(Ipv4Addr::new(120, 92, 118, 34)),
            tcp_port: 4000,
            udp_port: 0,
        },
        RelayInfo {
            addr: IpAddr::V4(Ipv4Addr::new(120, 92, 18, 162)),
            tcp_port: 4000,
            udp_port: 0,
        },
    ]
}

/// A block, as this file checks it (independently of the relay's own [`Cidr`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Block {
    net: IpAddr,
    len: u8,
}

impl Block {
    const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Block {
        Block {
            net: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            len,
        }
    }

    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                self.len == 0 || (u32::from(net) ^ u32::from(ip)) >> (32 - u32::from(self.len)) == 0
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                self.len == 0
                    || (u128::from(net) ^ u128::from(ip)) >> (128 - u32::from(self.len)) == 0
            }
            _ => false,
        }
    }

    fn cidr(&self) -> Cidr {
        match Cidr::new(self.net, self.len) {
            Ok(c) => c,
            Err(err) => panic!("block {self:?}: {err}"),
        }
    }
}

/// Addresses no configuration here may reach (checked for the catch-all configuration).
pub(super) const NEVER: &[Block] = &[
    Block::v4(0, 0, 0, 0, 8),
    Block::v4(10, 0, 0, 0, 8),
    Block::v4(100, 64, 0, 0, 10),
    Block::v4(127, 0, 0, 0, 8),
    Block::v4(169, 254, 0, 0, 16),
    Block::v4(172, 16, 0, 0, 12),
    Block::v4(192, 168, 0, 0, 16),
    Block::v4(224, 0, 0, 0, 4),
    Block::v4(240, 0, 0, 0, 4),
];

/// The relay's configuration, from the first 4 bytes of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Bits 0-1: SD-RTN (0, 1: the seed's blocks and an IPv6 block; 2: plus `10.1.0.0/16`;
    /// 3: catch-all `0.0.0.0/0` and `::/0`). Bit 2: no UDP ports. Bits 3-4: most sessions
    /// (1..=4). Bits 5-6: most sessions per client IP (1..=4). Bit 7: the access point serves
    /// `demo-app` only.
    pub a: u8,
    /// Bits 0-1: most pending handshakes (1..=4). Bits 2-4: most remembered nonces (1..=8).
    /// Bits 5-7: most UDP error replies per second (0..=7).
    pub b: u8,
    /// Bits 0-3: idle timeout (1..=16 s). Bits 4-7: handshake timeout (1..=16 s).
    pub c: u8,
    /// Bits 0-2: buffered bytes per session (32 << n). Bits 3-5: access point requests per
    /// address per window (1..=8).
    pub d: u8,
}

impl input::Head for Setup {
    fn decode(u: &mut Unstructured<'_>) -> Setup {
        Setup {
            a: input::byte(u),
            b: input::byte(u),
            c: input::byte(u),
            d: input::byte(u),
        }
    }
}

impl input::Encode for Setup {
    fn encode(&self, w: &mut Writer) {
        w.byte(self.a).byte(self.b).byte(self.c).byte(self.d);
    }
}

impl Setup {
    pub(super) fn blocks(&self) -> Vec<Block> {
        let mut blocks = vec![
            Block::v4(47, 74, 0, 0, 16),
            Block::v4(52, 80, 192, 0, 24),
            Block {
                net: IpAddr::V6(Ipv6Addr::new(0x2600, 0x1f00, 0, 0, 0, 0, 0, 0)),
                len: 32,
            },
        ];
        match self.a & 3 {
            2 => blocks.push(Block::v4(10, 1, 0, 0, 16)),
            3 => {
                blocks.push(Block::v4(0, 0, 0, 0, 0));
                blocks.push(Block {
                    net: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    len: 0,
                });
            }
            _ => {}
        }
        blocks
    }

    pub(super) fn catch_all(&self) -> bool {
        self.a & 3 == 3
    }

    pub(super) fn udp_ports(&self) -> RangeInclusive<u16> {
        if self.a & 4 == 4 {
            #[allow(clippy::reversed_empty_ranges)]
            {
                1..=0
            }
        } else {
            4500..=4502
        }
    }

    pub(super) fn relay_config(&self) -> RelayConfig {
        let mut config = RelayConfig::new(KEY, self.blocks().iter().map(Block::cidr).collect());
        config.udp_ports = self.udp_ports();
        config.max_sessions_total = 1 + usize::from((self.a >> 3) & 3);
        config.max_sessions_per_client_ip = 1 + usize::from((self.a >> 5) & 3);
        config.max_pending_handshakes = 1 + usize::from(self.b & 3);
        config.max_used_nonces = 1 + usize::from((self.b >> 2) & 7);
        config.max_udp_error_replies_per_sec = u32::from(self.b >> 5);
        config.idle_timeout = Duration::from_secs(1 + u64::from(self.c & 15));
        config.handshake_timeout = Duration::from_secs(1 + u64::from(self.c >> 4));
        config.max_buffered_bytes_per_session = 32 << (self.d & 7);
        config
    }

    pub(super) fn ap_config(&self) -> ApConfig {
        let mut config = ApConfig::new(KEY, ap_relays());
        config.udp_ports = self.udp_ports();
        config.max_requests_per_ip = 1 + u32::from((self.d >> 3) & 7);
        if self.a & 0x80 != 0 {
            config.allowed_apps = Some(vec![APPS[0].to_owned()]);
        }
        config
    }
}

/// Which ticket a `TunnelOpen` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketSpec {
    /// Issued to: 0 = the sender's own address, `n` = client `n - 1` (modulo 5).
    pub client: u8,
    /// Valid for this many milliseconds from now (0: already expired).
    pub lifetime_ms: u16,
    /// The nonce's first byte (the rest is zero): equal nonces are replays.
    pub nonce: u8,
    /// 0: intact; `n`: byte `n - 1` (modulo the length) of the encoding flipped.
    pub tamper: u8,
    /// The application id, from [`APPS`].
    pub app: u8,
    /// 0: a ticket made here; `n`: the `n`-th most recent ticket the access point issued
    /// (made here when there is none).
    pub from_ap: u8,
}

impl TicketSpec {
    fn decode(u: &mut Unstructured<'_>) -> TicketSpec {
        TicketSpec {
            client: input::byte(u),
            lifetime_ms: input::be_u16(u),
            nonce: input::byte(u),
            tamper: input::byte(u),
            app: input::byte(u),
            from_ap: input::byte(u),
        }
    }

    fn encode(&self, w: &mut Writer) {
        w.byte(self.client)
            .u16(self.lifetime_ms)
            .byte(self.nonce)
            .byte(self.tamper)
            .byte(self.app)
            .byte(self.from_ap);
    }
}

/// A destination: one of [`destinations`], or any address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Index into [`destinations`] (modulo its length).
    Known(u8),
    /// Any address.
    Raw(SocketAddr),
}

impl Dest {
    /// The byte that introduces a raw address.
    const RAW: u8 = 0xFF;

    fn decode(u: &mut Unstructured<'_>) -> Dest {
        match input::byte(u) {
            Dest::RAW => {
                let ip = if input::flag(u) {
                    IpAddr::V6(Ipv6Addr::from(input::array::<16>(u)))
                } else {
                    IpAddr::V4(Ipv4Addr::from(input::array::<4>(u)))
                };
                Dest::Raw(SocketAddr::new(ip, input::be_u16(u)))
            }
            i => Dest::Known(i),
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            Dest::Known(i) => {
                w.byte(*i);
            }
            Dest::Raw(addr) => {
                w.byte(Dest::RAW);
                match addr.ip() {
                    IpAddr::V4(ip) => w.flag(false).raw(&ip.octets()),
                    IpAddr::V6(ip) => w.flag(true).raw(&ip.octets()),
                };
                w.u16(addr.port());
            }
        }
    }

    pub(super) fn addr(&self) -> SocketAddr {
        match self {
            Dest::Known(i) => {
                let all = destinations();
                all[usize::from(*i) % all.len()]
            }
            Dest::Raw(addr) => *addr,
        }
    }
}

/// What a client sends, on TCP or UDP, to the relay or the access point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// A `TunnelOpen`, then `extra` bytes (early signalling).
    TunnelOpen {
        /// The ticket.
        ticket: TicketSpec,
        /// The signalling destination.
        dest: Dest,
        /// Bytes after the frame.
        extra: Vec<u8>,
    },
    /// A `MediaChannelOpen` for a recent session (see [`session`]).
    ChannelOpen {
        /// The session pick.
        session: u8,
    },
    /// A `MediaData`.
    Media {
        /// The session pick.
        session: u8,
        /// The SD-RTN peer.
        dest: Dest,
        /// The payload (cut to 1500 bytes).
        payload: Vec<u8>,
    },
    /// A `Keepalive`.
    Keepalive {
        /// The session pick.
        session: u8,
        /// The sequence number.
        seq: u32,
    },
    /// A `Close`.
    Close {
        /// The session pick.
        session: u8,
        /// The reason byte.
        reason: u8,
    },
    /// An `ApRequest`, padded to the length the access point answers unless bit 6 (0x40) of
    /// `flags` says otherwise (invalid flags are kept: they make an undecodable frame).
    ApRequest {
        /// Index into [`APPS`].
        app: u8,
        /// The flags byte (bit 6 cleared); bit 6: unpadded.
        flags: u8,
        /// The request id.
        request_id: u32,
    },
    /// Another payload, cut after `at` bytes (modulo its length).
    Cut {
        /// The payload.
        inner: Box<Payload>,
        /// Where to cut.
        at: u16,
    },
}

impl Payload {
    fn decode(u: &mut Unstructured<'_>, depth: u8) -> Payload {
        match input::tag(u, 8) {
            0 => Payload::Raw(input::short_bytes(u)),
            1 => Payload::TunnelOpen {
                ticket: TicketSpec::decode(u),
                dest: Dest::decode(u),
                extra: input::short_bytes(u),
            },
            2 => Payload::ChannelOpen {
                session: input::byte(u),
            },
            3 => Payload::Media {
                session: input::byte(u),
                dest: Dest::decode(u),
                payload: input::long_bytes(u),
            },
            4 => Payload::Keepalive {
                session: input::byte(u),
                seq: input::be_u32(u),
            },
            5 => Payload::Close {
                session: input::byte(u),
                reason: input::byte(u),
            },
            6 => Payload::ApRequest {
                app: input::byte(u),
                flags: input::byte(u),
                request_id: input::be_u32(u),
            },
            _ if depth > 0 => Payload::Cut {
                inner: Box::new(Payload::decode(u, depth - 1)),
                at: input::be_u16(u),
            },
            _ => Payload::Raw(Vec::new()),
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            Payload::Raw(bytes) => {
                w.byte(0).short_bytes(bytes);
            }
            Payload::TunnelOpen {
                ticket,
                dest,
                extra,
            } => {
                w.byte(1);
                ticket.encode(w);
                dest.encode(w);
                w.short_bytes(extra);
            }
            Payload::ChannelOpen { session } => {
                w.byte(2).byte(*session);
            }
            Payload::Media {
                session,
                dest,
                payload,
            } => {
                w.byte(3).byte(*session);
                dest.encode(w);
                w.long_bytes(payload);
            }
            Payload::Keepalive { session, seq } => {
                w.byte(4).byte(*session).u32(*seq);
            }
            Payload::Close { session, reason } => {
                w.byte(5).byte(*session).byte(*reason);
            }
            Payload::ApRequest {
                app,
                flags,
                request_id,
            } => {
                w.byte(6).byte(*app).byte(*flags).u32(*request_id);
            }
            Payload::Cut { inner, at } => {
                w.byte(7);
                inner.encode(w);
                w.u16(*at);
            }
        }
    }
}

/// One step of the world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A client connects to the relay's TCP port.
    Accept {
        /// Which client (modulo 5).
        client: u8,
    },
    /// Bytes on a client connection (0 = the most recent).
    Tcp {
        /// The connection pick.
        conn: u8,
        /// The bytes.
        payload: Payload,
    },
    /// A client connection closes.
    TcpClosed {
        /// The connection pick.
        conn: u8,
    },
    /// An upstream connection comes up.
    UpConnected {
        /// The upstream pick (0 = the most recent).
        pick: u8,
    },
    /// An upstream connection fails.
    UpFailed {
        /// The upstream pick.
        pick: u8,
    },
    /// SD-RTN sends bytes on an upstream connection.
    UpData {
        /// The upstream pick.
        pick: u8,
        /// The bytes.
        data: Vec<u8>,
    },
    /// SD-RTN closes an upstream connection.
    UpClosed {
        /// The upstream pick.
        pick: u8,
    },
    /// A datagram from a client to one of the relay's UDP ports.
    Udp {
        /// Which client.
        client: u8,
        /// Which port: `n` picks among the relay's ports; 255 is a port it does not have.
        port: u8,
        /// The datagram.
        payload: Payload,
    },
    /// A datagram from SD-RTN on an upstream socket.
    UdpUp {
        /// The socket pick (0 = the most recent).
        pick: u8,
        /// Its source.
        from: Dest,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Time passes; timers fire.
    Advance {
        /// Milliseconds.
        ms: u16,
    },
    /// A datagram from a client to the access point.
    Ap {
        /// Which client.
        client: u8,
        /// The datagram.
        payload: Payload,
    },
    /// The driver reports what a spliced tunnel moved (sent for any connection: for one
    /// that is not a spliced tunnel it must be ignored).
    Activity {
        /// The client connection pick (0 = the most recent).
        conn: u8,
        /// Bytes up.
        up: u16,
        /// Bytes down.
        down: u16,
    },
    /// An upstream UDP socket could not be bound.
    BindFailed {
        /// The socket pick (0 = the most recent).
        pick: u8,
    },
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match input::tag(u, 13) {
            0 => Op::Accept {
                client: input::byte(u),
            },
            1 => Op::Tcp {
                conn: input::byte(u),
                payload: Payload::decode(u, 2),
            },
            2 => Op::TcpClosed {
                conn: input::byte(u),
            },
            3 => Op::UpConnected {
                pick: input::byte(u),
            },
            4 => Op::UpFailed {
                pick: input::byte(u),
            },
            5 => Op::UpData {
                pick: input::byte(u),
                data: input::short_bytes(u),
            },
            6 => Op::UpClosed {
                pick: input::byte(u),
            },
            7 => Op::Udp {
                client: input::byte(u),
                port: input::byte(u),
                payload: Payload::decode(u, 2),
            },
            8 => Op::UdpUp {
                pick: input::byte(u),
                from: Dest::decode(u),
                data: input::long_bytes(u),
            },
            9 => Op::Advance {
                ms: input::be_u16(u),
            },
            10 => Op::Ap {
                client: input::byte(u),
                payload: Payload::decode(u, 2),
            },
            11 => Op::Activity {
                conn: input::byte(u),
                up: input::be_u16(u),
                down: input::be_u16(u),
            },
            _ => Op::BindFailed {
                pick: input::byte(u),
            },
        })
    }
}

impl input::Encode for Op {
    /// Writes the op in the format [`Op::arbitrary`] reads.
    fn encode(&self, w: &mut Writer) {
        match self {
            Op::Accept { client } => {
                w.byte(0).byte(*client);
            }
            Op::Tcp { conn, payload } => {
                w.byte(1).byte(*conn);
                payload.encode(w);
            }
            Op::TcpClosed { conn } => {
                w.byte(2).byte(*conn);
            }
            Op::UpConnected { pick } => {
                w.byte(3).byte(*pick);
            }
            Op::UpFailed { pick } => {
                w.byte(4).byte(*pick);
            }
            Op::UpData { pick, data } => {
                w.byte(5).byte(*pick).short_bytes(data);
            }
            Op::UpClosed { pick } => {
                w.byte(6).byte(*pick);
            }
            Op::Udp {
                client,
                port,
                payload,
            } => {
                w.byte(7).byte(*client).byte(*port);
                payload.encode(w);
            }
            Op::UdpUp { pick, from, data } => {
                w.byte(8).byte(*pick);
                from.encode(w);
                w.long_bytes(data);
            }
            Op::Advance { ms } => {
                w.byte(9).u16(*ms);
            }
            Op::Ap { client, payload } => {
                w.byte(10).byte(*client);
                payload.encode(w);
            }
            Op::Activity { conn, up, down } => {
                w.byte(11).byte(*conn).u16(*up).u16(*down);
            }
            Op::BindFailed { pick } => {
                w.byte(12).byte(*pick);
            }
        }
    }
}

/// A whole input: the set-up, then the ops.
pub type Script = input::Script<Setup, Op>;
