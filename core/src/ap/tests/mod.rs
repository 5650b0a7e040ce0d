//! Scripted tests of the access point: answers and refusals (`udp.rs`), the rate limiter
//! (`limits.rs`), the TCP side (`tcp.rs`), and properties over arbitrary input (`props.rs`).
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::wire::{ErrorCode, RelayInfo, TicketKey, FLAG_UDP_MEDIA, RELAY_TCP_PORT};

mod limits;
mod props;
mod tcp;
mod udp;

/// The key shared with the relays in these tests.
const KEY: TicketKey = TicketKey::from_bytes([0x42; 32]);

/// The access point's own UDP socket.
fn local() -> SocketAddr {
    "47.74.211.17:8000".parse().unwrap()
}

/// A client behind an enterprise NAT.
fn alice() -> SocketAddr {
    "198.18.0.7:50000".parse().unwrap()
}

/// Another client, elsewhere.
fn bob() -> SocketAddr {
    "100.200.1.9:51000".parse().unwrap()
}

/// `n` relays, 120.92.118.1 and up.
fn relays(n: u8) -> Vec<RelayInfo> {
    (1..=n)
        .map(|i| RelayInfo {
            addr: IpAddr::from([120, 92, 118, i]),
            tcp_port: RELAY_TCP_PORT,
            udp_port: 0,
        })
        .collect()
}

/// The defaults with our key and two relays.
fn config() -> ApConfig {
    ApConfig::new(KEY, relays(2))
}

/// A padded request for `app_id`.
fn padded(app_id: &str) -> Vec<u8> {
    Message::padded_ap_request(0xABCD, app_id, FLAG_UDP_MEDIA)
        .to_bytes()
        .unwrap()
}

/// A request in the unpadded form of version 1's first publication.
fn unpadded(app_id: &str) -> Vec<u8> {
    Message::ApRequest {
        request_id: 0xABCD,
        app_id: app_id.into(),
        flags: FLAG_UDP_MEDIA,
        padding_len: 0,
    }
    .to_bytes()
    .unwrap()
}

/// An access point on a virtual clock; every call drains and returns the outputs.
struct Harness {
    ap: AccessPoint,
    now: Instant,
    /// Both clocks at the access point's start.
    start: Clocks,
}

impl Harness {
    fn new(config: ApConfig) -> Self {
        let now = Instant::from_millis(5_000_000);
        let start = Clocks::new(now, crate::test_support::TEST_UNIX_EPOCH);
        Harness {
            ap: AccessPoint::new(config, Entropy::from_u64(42), start),
            now,
            start,
        }
    }

    /// Unix time at `now`, as the access point counts it from its start.
    fn unix_now(&self) -> UnixTime {
        self.start.unix_at(self.now)
    }

    fn drain(&mut self) -> Vec<ApOutput> {
        std::iter::from_fn(|| self.ap.poll_output()).collect()
    }

    fn input(&mut self, input: ApInput<'_>) -> Vec<ApOutput> {
        self.ap.handle_input(input, self.now);
        let out = self.drain();
        if let Some(at) = self.ap.poll_timeout() {
            assert!(at > self.now, "a deadline at or before now");
        }
        out
    }

    /// A datagram from `from`; returns its outputs.
    fn udp(&mut self, from: SocketAddr, data: &[u8]) -> Vec<ApOutput> {
        let local = local();
        self.input(ApInput::Datagram { local, from, data })
    }

    /// The reply to a datagram (checked: sent back to the sender from our socket, never
    /// larger than the request), decoded.
    fn ask(&mut self, from: SocketAddr, data: &[u8]) -> Option<Message> {
        let out = self.udp(from, data);
        let reply = udp_reply(&out, from);
        if let Some(reply) = &reply {
            assert!(reply.len() <= data.len(), "amplification: {out:?}");
        }
        reply.map(|r| Message::decode_datagram(&r).unwrap())
    }

    fn accept(&mut self, conn: u64, peer: SocketAddr) -> Vec<ApOutput> {
        self.input(ApInput::TcpAccepted {
            conn: ApConn(conn),
            peer,
        })
    }

    fn tcp(&mut self, conn: u64, data: &[u8]) -> Vec<ApOutput> {
        self.input(ApInput::TcpData {
            conn: ApConn(conn),
            data,
        })
    }

    fn closed(&mut self, conn: u64) -> Vec<ApOutput> {
        self.input(ApInput::TcpClosed { conn: ApConn(conn) })
    }

    /// Moves the clock by `d`, firing every deadline on the way; returns the outputs.
    fn advance(&mut self, d: Duration) -> Vec<ApOutput> {
        let until = self.now + d;
        let mut out = Vec::new();
        while let Some(at) = self.ap.poll_timeout().filter(|at| *at <= until) {
            self.now = at;
            self.ap.handle_timeout(at);
            out.extend(self.drain());
            assert!(self.ap.poll_timeout().is_none_or(|next| next > at));
        }
        self.now = until;
        out
    }
}

/// The datagram sent to `to`, checking there is at most one and it leaves from our socket.
fn udp_reply(out: &[ApOutput], to: SocketAddr) -> Option<Vec<u8>> {
    let sends: Vec<&ApOutput> = out
        .iter()
        .filter(|o| matches!(o, ApOutput::UdpSend { .. }))
        .collect();
    assert!(sends.len() <= 1, "{out:?}");
    sends.first().map(|o| match o {
        ApOutput::UdpSend {
            local: from,
            to: dest,
            data,
        } => {
            assert_eq!((*from, *dest), (local(), to));
            data.clone()
        }
        _ => unreachable!(),
    })
}

/// The bytes written on `conn`.
fn tcp_sent(out: &[ApOutput], conn: u64) -> Vec<Vec<u8>> {
    out.iter()
        .filter_map(|o| match o {
            ApOutput::TcpSend { conn: c, data } if c.0 == conn => Some(data.clone()),
            _ => None,
        })
        .collect()
}

/// Whether `conn` was closed.
fn tcp_closed(out: &[ApOutput], conn: u64) -> bool {
    out.contains(&ApOutput::TcpClose { conn: ApConn(conn) })
}

/// The events.
fn events(out: &[ApOutput]) -> Vec<ApEvent> {
    out.iter()
        .filter_map(|o| match o {
            ApOutput::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The code of an `Error`, panicking on anything else.
fn error_code(msg: Option<Message>) -> ErrorCode {
    match msg {
        Some(Message::Error { code, .. }) => code,
        other => panic!("not an error: {other:?}"),
    }
}

fn is_answer(msg: &Option<Message>) -> bool {
    matches!(msg, Some(Message::ApResponse { .. }))
}
