//! The `ap` target's input language: the set-up (small caps, so that every bound is hit),
//! the clients, the payloads and the ops.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use cloudproxy_core::ap::ApConfig;
use cloudproxy_core::wire::{Message, RelayInfo, TicketKey};

use super::super::input::{self, Writer};

/// The key the access point signs with here.
pub const KEY: TicketKey = TicketKey::from_bytes([0xA9; 32]);

/// Most bytes one payload expands to.
const MAX_PAYLOAD: usize = 16 * 1024;

/// The application ids requests use.
pub const APPS: &[&str] = &["demo-app", "other-app", "x"];

/// The clients: two addresses of one IPv4 `/24`, one of another, the first one IPv4-mapped,
/// two addresses of one IPv6 `/64`, another `/64` of the same `/56`, another `/56`.
pub fn clients() -> [SocketAddr; 8] {
    let v6 = |s: [u16; 8], port| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(s)), port);
    [
        SocketAddr::from(([198, 51, 100, 7], 50000)),
        SocketAddr::from(([198, 51, 100, 8], 50001)),
        SocketAddr::from(([203, 0, 113, 9], 51000)),
        SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped()),
            50002,
        ),
        v6([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1], 5000),
        v6([0x2001, 0xdb8, 0, 1, 0, 0, 0, 2], 5001),
        v6([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1], 5002),
        v6([0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 1], 5003),
    ]
}

/// The access point's own sockets (the answer to a datagram must leave from its socket).
pub fn locals() -> [SocketAddr; 2] {
    [
        SocketAddr::from(([47, 74, 211, 17], 8000)),
        SocketAddr::from(([47, 74, 211, 17], 1080)),
    ]
}

/// The relays handed out: IPv6 ones too, so that answers reach their largest size.
pub(super) fn relays() -> Vec<RelayInfo> {
    (1..=8u16)
        .map(|i| RelayInfo {
            addr: if i % 2 == 0 {
                IpAddr::V6(Ipv6Addr::new(0x2600, 0x1f00, 0, 0, 0, 0, 0, i))
            } else {
                IpAddr::V4(Ipv4Addr::new(120, 92, 118, i as u8))
            },
            tcp_port: 4000,
            udp_port: 0,
        })
        .collect()
}

/// The configuration, from the first 4 bytes of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Bits 0-1: most TCP connections (1..=4). Bits 2-3: per address (1..=4). Bits 4-5: per
    /// network (1..=4). Bit 6: `demo-app` only. Bit 7: no relay.
    pub a: u8,
    /// Bits 0-2: requests per address per window (0..=7). Bits 3-5: per network (0..=14, by
    /// twos). Bits 6-7: tracked addresses (1..=4).
    pub b: u8,
    /// Bits 0-3: TCP idle timeout (1..=16 s). Bits 4-7: requests per connection (1..=16).
    pub c: u8,
    /// Bits 0-2: rate window (1..=8 s). Bits 3-4: tracked networks (1..=4).
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
    /// The access point's configuration.
    pub fn config(&self) -> ApConfig {
        let relays = if self.a & 0x80 != 0 {
            Vec::new()
        } else {
            relays()
        };
        let mut config = ApConfig::new(KEY, relays);
        config.max_tcp_connections = 1 + usize::from(self.a & 3);
        config.max_tcp_connections_per_ip = 1 + usize::from((self.a >> 2) & 3);
        config.max_tcp_connections_per_prefix = 1 + usize::from((self.a >> 4) & 3);
        if self.a & 0x40 != 0 {
            config.allowed_apps = Some(vec![APPS[0].to_owned()]);
        }
        config.max_requests_per_ip = u32::from(self.b & 7);
        config.max_requests_per_prefix = 2 * u32::from((self.b >> 3) & 7);
        config.max_tracked_ips = 1 + usize::from(self.b >> 6);
        config.tcp_idle_timeout = Duration::from_secs(1 + u64::from(self.c & 15));
        config.max_requests_per_tcp_connection = 1 + u32::from(self.c >> 4);
        config.rate_window = Duration::from_secs(1 + u64::from(self.d & 7));
        config.max_tracked_prefixes = 1 + usize::from((self.d >> 3) & 3);
        config
    }
}

/// Bytes a client sends, on UDP or TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// An `ApRequest` with `padding` zero bytes (the padded length when `padding` is 0xFFFF),
    /// its flags byte as given (undefined bits make it undecodable).
    Request {
        /// Index into [`APPS`].
        app: u8,
        /// The flags byte.
        flags: u8,
        /// Padding bytes (cut to what fits); 0xFFFF: padded to the answered length.
        padding: u16,
    },
    /// `count` (1..=32) copies of a payload back to back.
    Repeat {
        /// How many.
        count: u8,
        /// What.
        inner: Box<Payload>,
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
    /// The padding value meaning "padded to the length the access point answers".
    pub const PADDED: u16 = 0xFFFF;

    fn decode(u: &mut Unstructured<'_>, depth: u8) -> Payload {
        match input::tag(u, 4) {
            0 => Payload::Raw(input::short_bytes(u)),
            1 => Payload::Request {
                app: input::byte(u),
                flags: input::byte(u),
                padding: input::be_u16(u),
            },
            2 if depth > 0 => Payload::Repeat {
                count: input::byte(u),
                inner: Box::new(Payload::decode(u, depth - 1)),
            },
            3 if depth > 0 => Payload::Cut {
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
            Payload::Request {
                app,
                flags,
                padding,
            } => {
                w.byte(1).byte(*app).byte(*flags).u16(*padding);
            }
            Payload::Repeat { count, inner } => {
                w.byte(2).byte(*count);
                inner.encode(w);
            }
            Payload::Cut { inner, at } => {
                w.byte(3);
                inner.encode(w);
                w.u16(*at);
            }
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Raw(bytes) => bytes.clone(),
            Payload::Request {
                app,
                flags,
                padding,
            } => {
                let app_id = APPS[usize::from(*app) % APPS.len()];
                let mut msg = Message::padded_ap_request(0x0A0B_0C0D, app_id, *flags & 1);
                if *padding != Payload::PADDED {
                    if let Message::ApRequest { padding_len, .. } = &mut msg {
                        *padding_len = (*padding).min(*padding_len);
                    }
                }
                let mut out = msg.to_bytes().unwrap_or_default();
                if let Some(byte) = out.get_mut(6 + 4 + 1 + app_id.len()) {
                    *byte = *flags;
                }
                out
            }
            Payload::Repeat { count, inner } => {
                let one = inner.bytes();
                let count = 1 + usize::from(*count) % 32;
                // At most 16 KiB per payload: the work per input stays small.
                let len = (one.len() * count).min(MAX_PAYLOAD);
                one.iter().copied().cycle().take(len).collect()
            }
            Payload::Cut { inner, at } => {
                let mut out = inner.bytes();
                if !out.is_empty() {
                    out.truncate(usize::from(*at) % out.len());
                }
                out
            }
        }
    }
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A datagram from a client to one of the access point's sockets.
    Datagram {
        /// Which client (modulo 8).
        client: u8,
        /// Which socket (modulo 2).
        local: u8,
        /// The datagram.
        payload: Payload,
    },
    /// A client connects; `reuse` 0 gives a fresh id, `n` reuses the `n`-th most recent id.
    Accept {
        /// Which client.
        client: u8,
        /// Id reuse (a confused driver).
        reuse: u8,
    },
    /// Bytes on a connection (0 = the most recent).
    Tcp {
        /// The connection pick.
        conn: u8,
        /// The bytes.
        payload: Payload,
    },
    /// A connection closes.
    TcpClosed {
        /// The connection pick.
        conn: u8,
    },
    /// Time passes; timers fire (called early, on time or late).
    Advance {
        /// Milliseconds.
        ms: u16,
    },
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match input::tag(u, 5) {
            0 => Op::Datagram {
                client: input::byte(u),
                local: input::byte(u),
                payload: Payload::decode(u, 2),
            },
            1 => Op::Accept {
                client: input::byte(u),
                reuse: input::byte(u),
            },
            2 => Op::Tcp {
                conn: input::byte(u),
                payload: Payload::decode(u, 2),
            },
            3 => Op::TcpClosed {
                conn: input::byte(u),
            },
            _ => Op::Advance {
                ms: input::be_u16(u),
            },
        })
    }
}

impl input::Encode for Op {
    /// Writes the op in the format [`Op::arbitrary`] reads.
    fn encode(&self, w: &mut Writer) {
        match self {
            Op::Datagram {
                client,
                local,
                payload,
            } => {
                w.byte(0).byte(*client).byte(*local);
                payload.encode(w);
            }
            Op::Accept { client, reuse } => {
                w.byte(1).byte(*client).byte(*reuse);
            }
            Op::Tcp { conn, payload } => {
                w.byte(2).byte(*conn);
                payload.encode(w);
            }
            Op::TcpClosed { conn } => {
                w.byte(3).byte(*conn);
            }
            Op::Advance { ms } => {
                w.byte(4).u16(*ms);
            }
        }
    }
}

/// A whole input: the set-up, then the ops.
pub type Script = input::Script<Setup, Op>;
