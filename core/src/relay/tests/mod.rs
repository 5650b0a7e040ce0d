//! Scripted tests of the relay, and property tests.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::wire::{RelayInfo, Ticket, TicketKey};

mod dataplane;
mod media;
mod props;
mod rebind;
mod shutdown;
mod tunnel;

/// The key shared by the access point and the relay in these tests.
pub(super) const KEY: TicketKey = TicketKey::from_bytes([0x42; 32]);

/// A client behind an enterprise NAT.
pub(super) fn alice() -> SocketAddr {
    "198.18.0.7:50000".parse().unwrap()
}

/// Another client, elsewhere.
pub(super) fn bob() -> SocketAddr {
    "100.200.1.9:51000".parse().unwrap()
}

/// An SD-RTN signalling server.
pub(super) fn sig() -> SocketAddr {
    "47.74.211.17:4001".parse().unwrap()
}

/// An SD-RTN media edge.
pub(super) fn edge() -> SocketAddr {
    "52.80.192.229:4700".parse().unwrap()
}

/// The SD-RTN blocks of these tests.
pub(super) fn sdrtn() -> Vec<Cidr> {
    vec![
        "47.74.0.0/16".parse().unwrap(),
        "52.80.192.0/24".parse().unwrap(),
    ]
}

/// The configuration of these tests: defaults with our key and SD-RTN.
pub(super) fn config() -> RelayConfig {
    RelayConfig::new(KEY, sdrtn())
}

/// An established tunnel.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tunnel {
    /// The client's tunnel connection.
    pub(super) conn: ClientConn,
    /// Its upstream connection.
    pub(super) upstream: UpstreamConn,
    /// The session id from `TunnelAccept`.
    pub(super) session_id: u64,
    /// The UDP port from `TunnelAccept`.
    pub(super) udp_port: u16,
}

/// A relay on a virtual clock, with every output drained after every step.
pub(super) struct Harness {
    /// The machine under test.
    pub(super) relay: Relay,
    /// The virtual clock.
    pub(super) now: Instant,
    /// Both clocks at the relay's start: Unix time at any `now` follows from it.
    pub(super) start: Clocks,
    /// The next client connection id.
    next_conn: u64,
    /// The next ticket nonce.
    next_nonce: u64,
}

impl Harness {
    /// A relay with the test configuration, at t = 1000 s.
    pub(super) fn new() -> Self {
        Harness::with(config())
    }

    /// A relay with `config`.
    pub(super) fn with(config: RelayConfig) -> Self {
        let now = Instant::from_millis(1_000_000);
        let start = Clocks::new(now, crate::test_support::TEST_UNIX_EPOCH);
        Harness {
            relay: Relay::new(config, Entropy::from_u64(0x5eed), start),
            now,
            start,
            next_conn: 1,
            next_nonce: 1,
        }
    }

    /// Feeds an input and drains the outputs.
    pub(super) fn input(&mut self, input: RelayInput<'_>) -> Vec<RelayOutput> {
        self.relay.handle_input(input, self.now);
        self.drain()
    }

    /// Drains the outputs and checks the bookkeeping.
    pub(super) fn drain(&mut self) -> Vec<RelayOutput> {
        let mut outs = Vec::new();
        while let Some(out) = self.relay.poll_output() {
            outs.push(out);
        }
        self.relay.check_invariants();
        outs
    }

    /// Moves the clock forward by `d`, firing every timer on the way.
    pub(super) fn advance(&mut self, d: Duration) -> Vec<RelayOutput> {
        let target = self.now + d;
        let mut outs = Vec::new();
        while let Some(at) = self.relay.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.relay.handle_timeout(self.now);
            outs.extend(self.drain());
        }
        self.now = target;
        outs
    }

    /// Unix time at `now`, as the relay counts it from its start (no fresh reading given).
    pub(super) fn unix_now(&self) -> UnixTime {
        self.start.unix_at(self.now)
    }

    /// A valid ticket for `ip`, with a fresh nonce, valid for a minute.
    pub(super) fn ticket(&mut self, ip: IpAddr) -> Ticket {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.next_nonce.to_be_bytes());
        self.next_nonce += 1;
        Ticket::issue(
            &KEY,
            "demo-app",
            ip,
            self.unix_now() + Duration::from_secs(60),
            nonce,
        )
        .unwrap()
    }

    /// Accepts a new client connection from `peer`.
    pub(super) fn accept(&mut self, peer: SocketAddr) -> (ClientConn, Vec<RelayOutput>) {
        let conn = ClientConn(self.next_conn);
        self.next_conn += 1;
        let outs = self.input(RelayInput::TcpAccepted { conn, peer });
        (conn, outs)
    }

    /// Bytes from a client connection.
    pub(super) fn tcp(&mut self, conn: ClientConn, data: &[u8]) -> Vec<RelayOutput> {
        self.input(RelayInput::TcpData { conn, data })
    }

    /// The driver's report of what a spliced tunnel moved.
    pub(super) fn activity(&mut self, client: ClientConn, up: u64, down: u64) -> Vec<RelayOutput> {
        self.input(RelayInput::TunnelActivity {
            client,
            bytes_up: up,
            bytes_down: down,
        })
    }

    /// A message from a client connection.
    pub(super) fn send(&mut self, conn: ClientConn, msg: &Message) -> Vec<RelayOutput> {
        self.tcp(conn, &msg.to_bytes().unwrap())
    }

    /// A new connection from `peer` sending `TunnelOpen` with `ticket` to `destination`.
    pub(super) fn open_with(
        &mut self,
        peer: SocketAddr,
        ticket: Ticket,
        destination: SocketAddr,
    ) -> (ClientConn, Vec<RelayOutput>) {
        let (conn, _) = self.accept(peer);
        let outs = self.send(
            conn,
            &Message::TunnelOpen {
                ticket,
                destination,
            },
        );
        (conn, outs)
    }

    /// A new connection from `peer` sending a valid `TunnelOpen` to `destination`.
    pub(super) fn open(
        &mut self,
        peer: SocketAddr,
        destination: SocketAddr,
    ) -> (ClientConn, Vec<RelayOutput>) {
        let ticket = self.ticket(peer.ip());
        self.open_with(peer, ticket, destination)
    }

    /// A tunnel from `peer` to `destination`, established.
    pub(super) fn establish(&mut self, peer: SocketAddr, destination: SocketAddr) -> Tunnel {
        let (conn, outs) = self.open(peer, destination);
        let (upstream, to) = upstream_connect(&outs).expect("an upstream connection");
        assert_eq!(to, destination);
        let outs = self.input(RelayInput::UpstreamConnected { conn: upstream });
        let Some(Message::TunnelAccept {
            session_id,
            udp_port,
            ..
        }) = messages(&tcp_sent(&outs, conn)).first().cloned()
        else {
            panic!("no TunnelAccept in {outs:?}");
        };
        Tunnel {
            conn,
            upstream,
            session_id,
            udp_port,
        }
    }

    /// A datagram from a client to the relay's port `local_port`.
    pub(super) fn udp(
        &mut self,
        local_port: u16,
        from: SocketAddr,
        msg: &Message,
    ) -> Vec<RelayOutput> {
        let data = msg.to_bytes().unwrap();
        self.input(RelayInput::UdpFromClient {
            local_port,
            from,
            data: &data,
        })
    }
}

/// The bytes sent to client connection `conn`, concatenated.
pub(super) fn tcp_sent(outs: &[RelayOutput], conn: ClientConn) -> Vec<u8> {
    outs.iter()
        .filter_map(|o| match o {
            RelayOutput::TcpSend { conn: c, data } if *c == conn => Some(data.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

/// The bytes sent on upstream connection `conn`, concatenated.
pub(super) fn upstream_sent(outs: &[RelayOutput], conn: UpstreamConn) -> Vec<u8> {
    outs.iter()
        .filter_map(|o| match o {
            RelayOutput::UpstreamSend { conn: c, data } if *c == conn => Some(data.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

/// The messages of a byte stream (all of them must be whole).
pub(super) fn messages(mut bytes: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (msg, used) = Message::decode(bytes).expect("a whole message");
        out.push(msg);
        bytes = &bytes[used..];
    }
    out
}

/// The `UpstreamConnect` among the outputs.
pub(super) fn upstream_connect(outs: &[RelayOutput]) -> Option<(UpstreamConn, SocketAddr)> {
    outs.iter().find_map(|o| match o {
        RelayOutput::UpstreamConnect { conn, to } => Some((*conn, *to)),
        _ => None,
    })
}

/// The code of the `Error` frame sent to `conn`, which must then be closed.
pub(super) fn refusal(outs: &[RelayOutput], conn: ClientConn) -> Option<ErrorCode> {
    let code = messages(&tcp_sent(outs, conn))
        .iter()
        .find_map(|m| match m {
            Message::Error { code, .. } => Some(*code),
            _ => None,
        })?;
    assert!(
        closes(outs, conn),
        "an Error is followed by a close: {outs:?}"
    );
    Some(code)
}

/// Whether `conn` is closed by the outputs.
pub(super) fn closes(outs: &[RelayOutput], conn: ClientConn) -> bool {
    outs.contains(&RelayOutput::TcpClose { conn })
}

/// The events among the outputs.
pub(super) fn events(outs: &[RelayOutput]) -> Vec<RelayEvent> {
    outs.iter()
        .filter_map(|o| match o {
            RelayOutput::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The datagrams sent to clients, decoded: (local port, to, message).
pub(super) fn udp_to_clients(outs: &[RelayOutput]) -> Vec<(u16, SocketAddr, Message)> {
    outs.iter()
        .filter_map(|o| match o {
            RelayOutput::UdpToClient {
                local_port,
                to,
                data,
            } => Some((*local_port, *to, Message::decode_datagram(data).unwrap())),
            _ => None,
        })
        .collect()
}

/// The datagrams sent upstream: (alloc, to, payload).
pub(super) fn udp_to_upstream(outs: &[RelayOutput]) -> Vec<(AllocId, SocketAddr, Vec<u8>)> {
    outs.iter()
        .filter_map(|o| match o {
            RelayOutput::UdpToUpstream { alloc, to, data } => Some((*alloc, *to, data.clone())),
            _ => None,
        })
        .collect()
}

/// A relay entry for the access point.
pub(super) fn relay_info(addr: &str) -> RelayInfo {
    RelayInfo {
        addr: addr.parse().unwrap(),
        tcp_port: crate::wire::RELAY_TCP_PORT,
        udp_port: 0,
    }
}
