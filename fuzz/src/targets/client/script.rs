//! The `client` target's input language and the world it describes: the set-up (which proxy,
//! timeouts), the addresses answers pick from, and the ops.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use cloudproxy_core::client::{ClientConfig, CloudTransport, RaceConfig};
use cloudproxy_core::http_connect::BasicCredentials;
use cloudproxy_core::params::{ProxyHost, ProxyServer};
use cloudproxy_core::sdrtn::SdRtnEndpoints;
use cloudproxy_core::socks5::Credentials;
use cloudproxy_core::wire::RelayInfo;

use super::super::input::{self, Writer};

/// The access point's domain.
pub const DOMAIN: &str = "ap-proxy.agora.io";

/// The SD-RTN edge the client reaches.
pub fn sdrtn() -> SdRtnEndpoints {
    SdRtnEndpoints {
        signalling: SocketAddr::from(([47, 74, 211, 17], 4001)),
        media_udp: SocketAddr::from(([52, 80, 192, 229], 4700)),
        media_tcp: SocketAddr::from(([52, 80, 192, 229], 4701)),
    }
}

/// The enterprise SOCKS5 server.
pub fn socks5_server() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 5], 1080))
}

/// The enterprise HTTP proxy (type 3, beyond the seed).
pub fn http_proxy() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 8], 3128))
}

/// The HTTP proxy's DNS name.
pub const HTTP_PROXY_NAME: &str = "proxy.corp";

/// Addresses DNS answers and SOCKS5 replies pick from.
pub fn addresses() -> [IpAddr; 5] {
    [
        IpAddr::V4(Ipv4Addr::new(120, 92, 118, 34)),
        IpAddr::V4(Ipv4Addr::new(120, 92, 18, 162)),
        IpAddr::V4(Ipv4Addr::new(47, 74, 211, 17)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    ]
}

/// Relays access-point answers pick from (one has no TCP port, one no UDP port).
pub fn relays() -> [RelayInfo; 4] {
    let relay = |a: [u8; 4], tcp_port, udp_port| RelayInfo {
        addr: IpAddr::from(a),
        tcp_port,
        udp_port,
    };
    [
        relay([120, 92, 118, 34], 4000, 4500),
        relay([120, 92, 18, 162], 4000, 0),
        relay([47, 74, 211, 17], 0, 4600),
        relay([120, 92, 118, 34], 4001, 4650),
    ]
}

/// The client's configuration, from the first 3 bytes of the input (4 when bit 7 of the first
/// is set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Bits 0-1: proxy off, SOCKS5, cloud by domain, cloud by IP list. Bit 2: the access
    /// point's port is 8000 instead of 0 (the defaults). Bit 3: SOCKS5 credentials. Bit 4: at
    /// most 2 reconnect attempts. Bit 5: a 50 ms keepalive interval. Bit 6: an application id
    /// that cannot be encoded. Bit 7: a fourth byte, `d`, follows.
    pub a: u8,
    /// Bits 0-3: give up after 1..=16 s. Bits 4-7: the connect and AP timeouts, 100 ms ×
    /// (1..=16).
    pub b: u8,
    /// The seed of the client's entropy.
    pub c: u8,
    /// Beyond the seed (read only when bit 7 of `a` is set, else 0). Bits 0-1: as `a` says,
    /// an HTTP proxy (type 3) by address, an HTTP proxy by name with credentials, or automatic
    /// mode (direct first, the cloud proxy of `a` as the fallback, the default domain when
    /// `a` names none). Bit 2: racing (100 ms apart, 3 in flight). Bits 3-4: the cloud
    /// transport: the seed's, TCP 443 only, the seed's then 443, the seed's. Bit 5: the
    /// mid-call UDP loss fallback.
    pub d: u8,
}

impl input::Head for Setup {
    fn decode(u: &mut Unstructured<'_>) -> Setup {
        let a = input::byte(u);
        let b = input::byte(u);
        let c = input::byte(u);
        let d = if a & 0x80 == 0x80 { input::byte(u) } else { 0 };
        Setup { a, b, c, d }
    }
}

impl input::Encode for Setup {
    fn encode(&self, w: &mut Writer) {
        w.byte(self.a).byte(self.b).byte(self.c);
        if self.a & 0x80 == 0x80 {
            w.byte(self.d);
        }
    }
}

impl Setup {
    /// Whether the client talks through an HTTP proxy (no UDP, ever).
    pub(super) fn is_http(&self) -> bool {
        matches!(self.d & 3, 1 | 2)
    }

    /// Whether the cloud proxy is reached over TCP 443 only (no UDP, only port 443), and the
    /// client talks to nothing else.
    pub(super) fn is_tcp_443_only(&self) -> bool {
        self.d & 3 == 0 && (self.d >> 3) & 3 == 1 && self.a & 2 == 2
    }

    /// Most attempts of one race in flight.
    pub(super) fn max_in_flight(&self) -> usize {
        if self.d & 4 == 4 {
            3
        } else {
            1
        }
    }

    pub(super) fn config(&self) -> ClientConfig {
        let ap_port = if self.a & 4 == 4 { 8000 } else { 0 };
        let proxy = match self.a & 3 {
            0 => None,
            1 => Some(ProxyServer::Socks5(socks5_server())),
            2 => Some(ProxyServer::CloudDomain {
                domain: DOMAIN.to_owned(),
                port: ap_port,
            }),
            _ => Some(ProxyServer::CloudIpList {
                ips: addresses()[..2].to_vec(),
                port: ap_port,
            }),
        };
        let app_id = if self.a & 0x40 == 0 {
            "demo-app"
        } else {
            "bad app"
        };
        let mut config = ClientConfig::new(proxy, app_id, sdrtn());
        if self.a & 8 == 8 {
            config.socks5_credentials = Credentials::new("user", "pass").ok();
        }
        if self.a & 16 == 16 {
            config.max_reconnect_attempts = Some(2);
        }
        if self.a & 32 == 32 {
            config.keepalive_interval = Some(Duration::from_millis(50));
        }
        config.give_up_after = Duration::from_secs(1 + u64::from(self.b & 15));
        let step = Duration::from_millis(100 * (1 + u64::from(self.b >> 4)));
        config.connect_timeout = step;
        config.ap_attempt_timeout = step;
        config.resolve_timeout = step;
        config.udp_probe_timeout = step;
        config.max_pending_signalling = 1024;
        self.beyond(&mut config);
        config
    }

    /// The beyond-the-seed knobs of `d`.
    fn beyond(&self, config: &mut ClientConfig) {
        match self.d & 3 {
            1 => {
                config.proxy = Some(ProxyServer::HttpConnect {
                    host: ProxyHost::Ip(http_proxy().ip()),
                    port: http_proxy().port(),
                    credentials: None,
                });
            }
            2 => {
                config.proxy = Some(ProxyServer::HttpConnect {
                    host: ProxyHost::Domain(HTTP_PROXY_NAME.to_owned()),
                    port: http_proxy().port(),
                    credentials: BasicCredentials::new("alice", "secret").ok(),
                });
            }
            3 => {
                config.fallback_proxy = Some(match config.proxy.take() {
                    Some(server) if server.is_cloud() => server,
                    _ => ProxyServer::default_cloud(),
                });
            }
            _ => {}
        }
        if self.d & 4 == 4 {
            config.race = Some(RaceConfig {
                stagger: Duration::from_millis(100),
                max_in_flight: 3,
            });
        }
        config.cloud_transport = match (self.d >> 3) & 3 {
            1 => CloudTransport::Tcp443Only,
            2 => CloudTransport::StandardThen443,
            _ => CloudTransport::Standard,
        };
        config.udp_loss_fallback = self.d & 32 == 32;
    }
}

/// What the network answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// An `ApResponse` listing relays picked from [`relays`].
    ApResponse {
        /// Relay picks (at most 9 are used: one more than a response may hold).
        relays: Vec<u8>,
        /// The ticket's lifetime.
        lifetime_ms: u32,
        /// Answer another request id than the last one asked.
        stale: bool,
    },
    /// A `TunnelAccept`.
    TunnelAccept {
        /// The session id (remembered for the messages below).
        session_id: u64,
        /// The relay's UDP port.
        udp_port: u16,
        /// The keepalive interval.
        keepalive_ms: u32,
    },
    /// A `MediaChannelAccept` for the last session.
    ChannelAccept,
    /// A `MediaData` of the last session from an SD-RTN address.
    Media {
        /// The source: 0 the edge's media address, else picked from [`addresses`].
        from: u8,
        /// The payload (cut to 1500 bytes).
        payload: Vec<u8>,
    },
    /// A `KeepaliveAck` of the last session.
    KeepaliveAck {
        /// Echo the last keepalive's sequence number (else `seq`).
        echo: bool,
        /// The sequence number otherwise.
        seq: u32,
    },
    /// An `Error`.
    Error {
        /// The code.
        code: u16,
        /// The reason (cut to the protocol's bound).
        reason: Vec<u8>,
    },
    /// A `Close` of the last session.
    Close {
        /// The reason byte.
        reason: u8,
    },
    /// A SOCKS5 method selection.
    Socks5Method {
        /// The method byte.
        method: u8,
    },
    /// An RFC 1929 verdict.
    Socks5Auth {
        /// The status byte.
        status: u8,
    },
    /// A SOCKS5 reply.
    Socks5Reply {
        /// The reply code.
        code: u8,
        /// The bound address: picked from [`addresses`].
        bound: u8,
        /// The bound port.
        port: u16,
    },
    /// An SD-RTN media frame (2-byte length, then the payload).
    SdrtnFrame {
        /// The payload.
        payload: Vec<u8>,
    },
    /// A payload cut after `at` bytes (modulo its length).
    Cut {
        /// The payload.
        inner: Box<Payload>,
        /// Where to cut.
        at: u16,
    },
    /// Two payloads back to back.
    Concat(Box<Payload>, Box<Payload>),
    /// An HTTP proxy's answer to `CONNECT` (beyond the seed): `200`, a `407` offering Basic
    /// (the connection kept, `Content-Length: 0`), or another status.
    Http {
        /// 0: 200, 1: 407, else the status `400 + kind` (`503` is retried, `403` is not).
        kind: u8,
    },
}

impl Payload {
    fn decode(u: &mut Unstructured<'_>, depth: u8) -> Payload {
        match input::tag(u, 15) {
            0 => Payload::Raw(input::short_bytes(u)),
            1 => Payload::ApResponse {
                relays: input::short_bytes(u),
                lifetime_ms: input::be_u32(u),
                stale: input::flag(u),
            },
            2 => Payload::TunnelAccept {
                session_id: input::be_u64(u),
                udp_port: input::be_u16(u),
                keepalive_ms: input::be_u32(u),
            },
            3 => Payload::ChannelAccept,
            4 => Payload::Media {
                from: input::byte(u),
                payload: input::long_bytes(u),
            },
            5 => Payload::KeepaliveAck {
                echo: input::flag(u),
                seq: input::be_u32(u),
            },
            6 => Payload::Error {
                code: input::be_u16(u),
                reason: input::short_bytes(u),
            },
            7 => Payload::Close {
                reason: input::byte(u),
            },
            8 => Payload::Socks5Method {
                method: input::byte(u),
            },
            9 => Payload::Socks5Auth {
                status: input::byte(u),
            },
            10 => Payload::Socks5Reply {
                code: input::byte(u),
                bound: input::byte(u),
                port: input::be_u16(u),
            },
            11 => Payload::SdrtnFrame {
                payload: input::long_bytes(u),
            },
            12 if depth > 0 => Payload::Cut {
                inner: Box::new(Payload::decode(u, depth - 1)),
                at: input::be_u16(u),
            },
            13 if depth > 0 => Payload::Concat(
                Box::new(Payload::decode(u, depth - 1)),
                Box::new(Payload::decode(u, depth - 1)),
            ),
            14 => Payload::Http {
                kind: input::byte(u),
            },
            _ => Payload::Raw(Vec::new()),
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            Payload::Raw(bytes) => {
                w.byte(0).short_bytes(bytes);
            }
            Payload::ApResponse {
                relays,
                lifetime_ms,
                stale,
            } => {
                w.byte(1).short_bytes(relays).u32(*lifetime_ms).flag(*stale);
            }
            Payload::TunnelAccept {
                session_id,
                udp_port,
                keepalive_ms,
            } => {
                w.byte(2).u64(*session_id).u16(*udp_port).u32(*keepalive_ms);
            }
            Payload::ChannelAccept => {
                w.byte(3);
            }
            Payload::Media { from, payload } => {
                w.byte(4).byte(*from).long_bytes(payload);
            }
            Payload::KeepaliveAck { echo, seq } => {
                w.byte(5).flag(*echo).u32(*seq);
            }
            Payload::Error { code, reason } => {
                w.byte(6).u16(*code).short_bytes(reason);
            }
            Payload::Close { reason } => {
                w.byte(7).byte(*reason);
            }
            Payload::Socks5Method { method } => {
                w.byte(8).byte(*method);
            }
            Payload::Socks5Auth { status } => {
                w.byte(9).byte(*status);
            }
            Payload::Socks5Reply { code, bound, port } => {
                w.byte(10).byte(*code).byte(*bound).u16(*port);
            }
            Payload::SdrtnFrame { payload } => {
                w.byte(11).long_bytes(payload);
            }
            Payload::Cut { inner, at } => {
                w.byte(12);
                inner.encode(w);
                w.u16(*at);
            }
            Payload::Concat(a, b) => {
                w.byte(13);
                a.encode(w);
                b.encode(w);
            }
            Payload::Http { kind } => {
                w.byte(14).byte(*kind);
            }
        }
    }
}

/// One thing that happens to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// The resolver answers.
    Resolved {
        /// 0: the name asked last; otherwise another name.
        name: u8,
        /// Address picks from [`addresses`] (empty: NXDOMAIN).
        addrs: Vec<u8>,
    },
    /// The resolver fails.
    ResolveFailed {
        /// As for `Resolved`.
        name: u8,
    },
    /// A connection comes up (0 = the most recent).
    TcpConnected {
        /// The connection pick.
        conn: u8,
    },
    /// A connection fails.
    TcpFailed {
        /// The connection pick.
        conn: u8,
    },
    /// Bytes arrive on a connection.
    TcpData {
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
    /// A datagram arrives.
    UdpData {
        /// Its source: an address the client sent to (0 = the most recent), or, with none,
        /// the edge's media address.
        from: u8,
        /// The datagram.
        payload: Payload,
    },
    /// The application sends signalling.
    SendSignalling {
        /// The bytes.
        data: Vec<u8>,
    },
    /// The application sends a media datagram.
    SendMedia {
        /// The datagram.
        data: Vec<u8>,
    },
    /// The application leaves.
    Leave,
    /// Time passes and `handle_timeout` is called (early, on time or late).
    Wait {
        /// Milliseconds.
        ms: u16,
    },
    /// The clock jumps to the client's next deadline and `handle_timeout` is called.
    WaitForTimer,
    /// The driver reports a network change (beyond the seed): odd, the address changed;
    /// even, the UDP port.
    NetworkChanged {
        /// Which change.
        kind: u8,
    },
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match input::tag(u, 13) {
            0 => Op::Resolved {
                name: input::byte(u),
                addrs: input::short_bytes(u),
            },
            1 => Op::ResolveFailed {
                name: input::byte(u),
            },
            2 => Op::TcpConnected {
                conn: input::byte(u),
            },
            3 => Op::TcpFailed {
                conn: input::byte(u),
            },
            4 => Op::TcpData {
                conn: input::byte(u),
                payload: Payload::decode(u, 2),
            },
            5 => Op::TcpClosed {
                conn: input::byte(u),
            },
            6 => Op::UdpData {
                from: input::byte(u),
                payload: Payload::decode(u, 2),
            },
            7 => Op::SendSignalling {
                data: input::short_bytes(u),
            },
            8 => Op::SendMedia {
                data: input::long_bytes(u),
            },
            9 => Op::Leave,
            10 => Op::Wait {
                ms: input::be_u16(u),
            },
            12 => Op::NetworkChanged {
                kind: input::byte(u),
            },
            _ => Op::WaitForTimer,
        })
    }
}

impl input::Encode for Op {
    /// Writes the op in the format [`Op::arbitrary`] reads.
    fn encode(&self, w: &mut Writer) {
        match self {
            Op::Resolved { name, addrs } => {
                w.byte(0).byte(*name).short_bytes(addrs);
            }
            Op::ResolveFailed { name } => {
                w.byte(1).byte(*name);
            }
            Op::TcpConnected { conn } => {
                w.byte(2).byte(*conn);
            }
            Op::TcpFailed { conn } => {
                w.byte(3).byte(*conn);
            }
            Op::TcpData { conn, payload } => {
                w.byte(4).byte(*conn);
                payload.encode(w);
            }
            Op::TcpClosed { conn } => {
                w.byte(5).byte(*conn);
            }
            Op::UdpData { from, payload } => {
                w.byte(6).byte(*from);
                payload.encode(w);
            }
            Op::SendSignalling { data } => {
                w.byte(7).short_bytes(data);
            }
            Op::SendMedia { data } => {
                w.byte(8).long_bytes(data);
            }
            Op::Leave => {
                w.byte(9);
            }
            Op::Wait { ms } => {
                w.byte(10).u16(*ms);
            }
            Op::WaitForTimer => {
                w.byte(11);
            }
            Op::NetworkChanged { kind } => {
                w.byte(12).byte(*kind);
            }
        }
    }
}

/// A whole input: the set-up, then the ops.
pub type Script = input::Script<Setup, Op>;
