//! Tests of the proxy client: a scripted harness that plays the driver, the access point, the
//! relays, the SOCKS5 server and the edge by hand, byte by byte.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::params::ProxyServer;
use crate::sdrtn::SdRtnEndpoints;
use crate::time::UnixTime;
use crate::wire::{Message, RelayInfo, Ticket, TicketKey, RELAY_TCP_PORT};

mod beyond;
mod cloud;
mod failover;
mod others;
mod props;
mod racing;

/// The application id every test uses.
const APP_ID: &str = "test-app";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The edge every test reaches.
fn sdrtn() -> SdRtnEndpoints {
    SdRtnEndpoints {
        signalling: addr("198.51.100.1:8443"),
        media_udp: addr("198.51.100.1:4700"),
        media_tcp: addr("198.51.100.1:4701"),
    }
}

fn config(proxy: Option<ProxyServer>) -> ClientConfig {
    ClientConfig::new(proxy, APP_ID, sdrtn())
}

fn ip_list(ips: &[&str], port: u16) -> Option<ProxyServer> {
    Some(ProxyServer::CloudIpList {
        ips: ips.iter().map(|s| ip(s)).collect(),
        port,
    })
}

/// A relay on the standard TCP port.
fn relay(ip_text: &str, udp_port: u16) -> RelayInfo {
    RelayInfo {
        addr: ip(ip_text),
        tcp_port: RELAY_TCP_PORT,
        udp_port,
    }
}

fn ticket() -> Ticket {
    let key = TicketKey::from_bytes([7; 32]);
    Ticket::issue(
        &key,
        APP_ID,
        ip("192.0.2.50"),
        UnixTime::from_millis(10_000_000),
        [1; 16],
    )
    .unwrap()
}

fn encode(msg: &Message) -> Vec<u8> {
    msg.to_bytes().unwrap()
}

/// The request id of an encoded `ApRequest` (datagram or frame).
fn request_id(bytes: &[u8]) -> u32 {
    match Message::decode(bytes).unwrap().0 {
        Message::ApRequest {
            request_id,
            app_id,
            flags,
            ..
        } => {
            assert_eq!(bytes.len(), crate::wire::AP_REQUEST_PADDED_LEN, "padded");
            assert_eq!(app_id, APP_ID);
            assert_eq!(flags, crate::wire::FLAG_UDP_MEDIA);
            request_id
        }
        other => panic!("expected an ApRequest, got {other:?}"),
    }
}

fn ap_answer(request_id: u32, relays: &[RelayInfo]) -> Vec<u8> {
    encode(&Message::ApResponse {
        request_id,
        ticket: ticket(),
        ticket_lifetime_ms: 60_000,
        relays: relays.to_vec(),
    })
}

fn tunnel_accept(session_id: u64, udp_port: u16, keepalive_ms: u32) -> Vec<u8> {
    encode(&Message::TunnelAccept {
        session_id,
        udp_port,
        keepalive_interval_ms: keepalive_ms,
        idle_timeout_ms: 30_000,
    })
}

/// Decodes every message of a TCP byte stream.
fn frames(mut bytes: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (msg, used) = Message::decode(bytes).unwrap();
        out.push(msg);
        bytes = &bytes[used..];
    }
    out
}

/// The client, a virtual clock, and what the client asked for but the test has not looked at.
struct Harness {
    client: ProxyClient,
    now: Instant,
    out: VecDeque<ClientOutput>,
    events: VecDeque<ClientEvent>,
}

impl Harness {
    fn new(config: ClientConfig) -> Self {
        Harness::with_seed(config, 1)
    }

    fn with_seed(config: ClientConfig, seed: u64) -> Self {
        let now = Instant::from_millis(1_000_000);
        let client = ProxyClient::new(config, Entropy::from_u64(seed), now);
        let mut h = Harness {
            client,
            now,
            out: VecDeque::new(),
            events: VecDeque::new(),
        };
        h.drain();
        // Every client starts by reporting that it is connecting.
        assert_eq!(
            h.events.pop_front(),
            Some(ClientEvent::ConnectionStateChanged {
                state: ConnectionState::Connecting,
                reason: StateReason::Joining
            })
        );
        h
    }

    fn drain(&mut self) {
        while let Some(out) = self.client.poll_output() {
            match out {
                ClientOutput::Event(e) => self.events.push_back(e),
                other => self.out.push_back(other),
            }
        }
        if let Some(t) = self.client.poll_timeout() {
            assert!(t > self.now, "timer {t} not after now {}", self.now);
        }
    }

    fn input(&mut self, input: ClientInput<'_>) {
        self.client.handle_input(input, self.now);
        self.drain();
    }

    fn connected(&mut self, conn: ConnId) {
        self.input(ClientInput::TcpConnected { conn });
    }

    fn tcp_data(&mut self, conn: ConnId, data: &[u8]) {
        self.input(ClientInput::TcpData { conn, data });
    }

    fn udp_data(&mut self, from: SocketAddr, data: &[u8]) {
        self.input(ClientInput::UdpData { from, data });
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.client.handle_timeout(self.now);
        self.drain();
    }

    /// Moves the clock to the next timer and fires it; returns how far the clock moved.
    fn fire_next_timer(&mut self) -> Duration {
        let t = self.client.poll_timeout().expect("a timer");
        let moved = t.saturating_duration_since(self.now);
        self.now = t;
        self.client.handle_timeout(t);
        self.drain();
        moved
    }

    /// Removes and returns the first output `f` accepts.
    fn take<T>(&mut self, what: &str, mut f: impl FnMut(&ClientOutput) -> Option<T>) -> T {
        let pos = self.out.iter().position(|o| f(o).is_some());
        match pos {
            Some(pos) => {
                let o = self.out.remove(pos).unwrap();
                f(&o).unwrap()
            }
            None => panic!("expected {what}; outputs: {:#?}", self.out),
        }
    }

    fn take_resolve(&mut self) -> String {
        self.take("Resolve", |o| match o {
            ClientOutput::Resolve { name } => Some(name.clone()),
            _ => None,
        })
    }

    fn take_connect(&mut self, to: SocketAddr) -> ConnId {
        self.take(&format!("TcpConnect to {to}"), |o| match o {
            ClientOutput::TcpConnect { conn, to: t } if *t == to => Some(*conn),
            _ => None,
        })
    }

    fn take_udp(&mut self, to: SocketAddr) -> Vec<u8> {
        self.take(&format!("UdpSend to {to}"), |o| match o {
            ClientOutput::UdpSend { to: t, data } if *t == to => Some(data.clone()),
            _ => None,
        })
    }

    /// Every byte sent on `conn` so far, concatenated (at least one send).
    fn take_sent(&mut self, conn: ConnId) -> Vec<u8> {
        let mut all = self.take(&format!("TcpSend on {conn}"), |o| match o {
            ClientOutput::TcpSend { conn: c, data } if *c == conn => Some(data.clone()),
            _ => None,
        });
        while self.has_send(conn) {
            all.extend(self.take_sent(conn));
        }
        all
    }

    fn has_send(&self, conn: ConnId) -> bool {
        self.out
            .iter()
            .any(|o| matches!(o, ClientOutput::TcpSend { conn: c, .. } if *c == conn))
    }

    fn take_close(&mut self, conn: ConnId) {
        self.take(&format!("TcpClose of {conn}"), |o| match o {
            ClientOutput::TcpClose { conn: c } if *c == conn => Some(()),
            _ => None,
        })
    }

    fn has_close(&self, conn: ConnId) -> bool {
        self.out
            .iter()
            .any(|o| matches!(o, ClientOutput::TcpClose { conn: c } if *c == conn))
    }

    fn take_event(&mut self) -> ClientEvent {
        self.events.pop_front().expect("an event")
    }

    /// Removes the first event `f` accepts.
    fn take_event_where(&mut self, what: &str, f: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
        match self.events.iter().position(f) {
            Some(pos) => self.events.remove(pos).unwrap(),
            None => panic!("expected event {what}; events: {:#?}", self.events),
        }
    }

    /// Expects a state change to `state` among the pending events; returns its reason. When it
    /// is the last pending change, the client must be in that state now.
    fn take_state(&mut self, state: ConnectionState) -> StateReason {
        let event = self.take_event_where(
            &format!("state {state}"),
            |e| matches!(e, ClientEvent::ConnectionStateChanged { state: s, .. } if *s == state),
        );
        let later = self
            .events
            .iter()
            .any(|e| matches!(e, ClientEvent::ConnectionStateChanged { .. }));
        if !later {
            assert_eq!(self.client.state(), state);
        }
        match event {
            ClientEvent::ConnectionStateChanged { reason, .. } => reason,
            _ => unreachable!(),
        }
    }

    fn take_signalling(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(pos) = self
            .events
            .iter()
            .position(|e| matches!(e, ClientEvent::SignallingReceived(_)))
        {
            if let Some(ClientEvent::SignallingReceived(data)) = self.events.remove(pos) {
                all.extend(data);
            }
        }
        all
    }

    fn take_media(&mut self) -> (SocketAddr, Vec<u8>) {
        match self.take_event_where("MediaReceived", |e| {
            matches!(e, ClientEvent::MediaReceived { .. })
        }) {
            ClientEvent::MediaReceived { from, payload } => (from, payload),
            _ => unreachable!(),
        }
    }

    fn take_path(&mut self, path: MediaPath) {
        self.take_event_where(&format!("MediaPathChanged({path:?})"), |e| {
            *e == ClientEvent::MediaPathChanged(path)
        });
        assert_eq!(self.client.media_path(), path);
    }

    fn assert_quiet(&self) {
        assert!(self.out.is_empty(), "unexpected outputs: {:#?}", self.out);
        assert!(
            self.events.is_empty(),
            "unexpected events: {:#?}",
            self.events
        );
    }
}

/// A cloud session opened by [`open_cloud`].
struct Cloud {
    /// The AP candidate that answered.
    ap: SocketAddr,
    tunnel: ConnId,
    relay_tcp: SocketAddr,
    session_id: u64,
}

/// Drives a type-2 client (whose first AP candidate is `ap`) to `Connected` through the first
/// relay of `relays`: AP answered over UDP, tunnel accepted with `udp_port` and a 1 s
/// keepalive. Leaves the media probe's first keepalive in the outputs.
fn open_cloud(h: &mut Harness, ap: SocketAddr, relays: &[RelayInfo], udp_port: u16) -> Cloud {
    let req = h.take_udp(ap);
    let ap_conn = h.take_connect(ap);
    h.udp_data(ap, &ap_answer(request_id(&req), relays));
    h.take_close(ap_conn);
    accept_tunnel(h, ap, &relays[0], udp_port)
}

/// Accepts the tunnel the client opens to `relay`.
fn accept_tunnel(h: &mut Harness, ap: SocketAddr, relay: &RelayInfo, udp_port: u16) -> Cloud {
    let relay_tcp = SocketAddr::new(relay.addr, relay.tcp_port);
    let tunnel = h.take_connect(relay_tcp);
    h.connected(tunnel);
    let open = frames(&h.take_sent(tunnel));
    assert_eq!(
        open,
        [Message::TunnelOpen {
            ticket: ticket(),
            destination: sdrtn().signalling
        }]
    );
    let session_id = 0x5E55_1010;
    h.tcp_data(tunnel, &tunnel_accept(session_id, udp_port, 1_000));
    assert_eq!(
        h.take_state(ConnectionState::Connected),
        StateReason::Joined
    );
    let event = h.take_event_where("ProxyConnected", |e| {
        matches!(e, ClientEvent::ProxyConnected { .. })
    });
    assert!(matches!(event, ClientEvent::ProxyConnected { relay, .. } if relay == relay_tcp));
    Cloud {
        ap,
        tunnel,
        relay_tcp,
        session_id,
    }
}
