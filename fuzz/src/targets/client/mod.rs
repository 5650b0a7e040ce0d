//! `client`: the SDK's [`ProxyClient`] fed arbitrary network input at arbitrary times.
//!
//! Input: a [`Setup`] (3 bytes: proxy off, SOCKS5, cloud by domain or by IP list, and a few
//! knobs; a fourth for what is beyond the seed: the HTTP proxy, automatic mode, racing, TCP
//! 443 only, the UDP loss fallback), then [`Op`]s: DNS answers and failures, TCP connects,
//! failures, closes and data, UDP datagrams, application commands, network changes, and time
//! passing (timers called early, late or on time). Data is arbitrary bytes or a structurally valid answer built from the input's fields
//! and what the client asked (the last `ApRequest`'s id, the last keepalive's sequence
//! number): `ApResponse`, `TunnelAccept`, media, keepalive acks, errors, closes, SOCKS5
//! replies, SD-RTN media frames, cut or glued together.
//!
//! Checked after every call (all outputs drained):
//!
//! - **timers**: `poll_timeout` is `None` or later than `now` (the latest `now` given);
//!   `None` in `Failed` and after `Leave`;
//! - **ids**: every `TcpConnect` has a fresh, increasing id; nothing is written on a
//!   connection either side closed, and none is closed twice by the client;
//! - **destinations**: every `TcpConnect` and `UdpSend` goes to an address the client was told
//!   about (configuration, SD-RTN, DNS answers) or whose bytes it received (access-point
//!   answers and SOCKS5 replies, including those the input cuts and glues into new ones);
//! - **states**: each `ConnectionStateChanged` is a real change along the documented
//!   transitions (or, in automatic mode, the one documented report of the same state with
//!   `FallbackToProxy`), and the last one is [`ProxyClient::state`]; in `Failed` and after
//!   `Leave` nothing is resolved, connected or sent;
//! - **counters**: media and signalling counters add up with what went in and came out;
//! - **beyond the seed**: through an HTTP proxy, and over TCP 443 only, nothing goes over UDP
//!   (and with TCP 443 only every connection is to port 443); connections open at once stay
//!   within the race's bound plus two (signalling and media).

mod script;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use cloudproxy_core::client::{
    ClientEvent, ClientInput, ClientOutput, ConnId, ConnectionState, NetworkChange, ProxyClient,
    StateReason,
};
use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::sdrtn::encode_media_frame;
use cloudproxy_core::socks5::{Address, MethodSelection, Reply, ReplyCode, UserPassReply};
use cloudproxy_core::time::Instant;
use cloudproxy_core::wire::{
    CloseReason, ErrorCode, Message, RelayInfo, Ticket, TicketKey, MAX_MEDIA_PAYLOAD,
};

use super::input;

pub use script::{
    addresses, http_proxy, relays, sdrtn, socks5_server, Op, Payload, Script, Setup,
    HTTP_PROXY_NAME,
};

/// The world around the client, and what it has seen of it.
struct World {
    /// Print every op and output (`FUZZ_TRACE=1`), to read a failing input.
    trace: bool,
    client: ProxyClient,
    now: Instant,
    /// Every connection the client opened, in order.
    conns: Vec<ConnId>,
    /// Connections the client closed.
    closed_by_client: BTreeSet<ConnId>,
    /// Connections the driver reported failed or closed.
    closed_by_peer: BTreeSet<ConnId>,
    /// Addresses the client was told about: configured, resolved, or in answers built here.
    told: BTreeSet<IpAddr>,
    /// Every byte fed to the client, per TCP connection (a stream) and per datagram: an
    /// address whose bytes appear in one of them may have been learnt from it (answers cut
    /// and glued by the input form new answers).
    fed_tcp: BTreeMap<ConnId, Vec<u8>>,
    fed_udp: Vec<Vec<u8>>,
    /// Datagram destinations, in order of first use.
    udp_peers: Vec<SocketAddr>,
    /// The last name the client asked to resolve.
    asked_name: String,
    /// The id of the last `ApRequest` the client sent.
    request_id: u32,
    /// The last session id this world handed out.
    session_id: u64,
    /// The last keepalive sequence number the client sent.
    keepalive_seq: u32,
    /// The client's public state, as its events tell it.
    state: ConnectionState,
    /// How many state changes were reported.
    changes: u32,
    /// Application input and delivered output, for the counters.
    media_calls: u64,
    signalling_given: u64,
    tcp_bytes_fed: u64,
    media_events: u64,
    signalling_events_bytes: u64,
    ticket: Ticket,
    setup: Setup,
}

/// The target: see the module docs.
pub fn run(data: &[u8]) {
    let script = Script::decode(data);
    let mut world = World::new(&script.setup);
    for op in &script.ops {
        world.step(op);
    }
}

impl World {
    fn new(setup: &Setup) -> World {
        let config = setup.config();
        // The same two clocks as the access point's and the relay's worlds: the ticket's
        // expiry is a Unix time (an hour after the wall clock's reading), not a reading of the
        // monotonic clock.
        let clocks = super::start_clocks();
        let now = clocks.at;
        let mut told: BTreeSet<IpAddr> = [
            sdrtn().signalling.ip(),
            sdrtn().media_udp.ip(),
            sdrtn().media_tcp.ip(),
            socks5_server().ip(),
            http_proxy().ip(),
        ]
        .into_iter()
        .collect();
        told.extend(addresses()[..2].iter().copied());
        let ticket = Ticket::issue(
            &TicketKey::from_bytes([0x42; 32]),
            "demo-app",
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 7)),
            clocks.unix_at(now) + Duration::from_secs(3600),
            [7; 16],
        );
        let ticket = match ticket {
            Ok(t) => t,
            Err(err) => panic!("ticket: {err}"),
        };
        let client = ProxyClient::new(config, Entropy::from_u64(u64::from(setup.c)), now);
        let mut world = World {
            trace: std::env::var_os("FUZZ_TRACE").is_some(),
            client,
            now,
            conns: Vec::new(),
            closed_by_client: BTreeSet::new(),
            closed_by_peer: BTreeSet::new(),
            told,
            fed_tcp: BTreeMap::new(),
            fed_udp: Vec::new(),
            udp_peers: Vec::new(),
            asked_name: String::new(),
            request_id: 0,
            session_id: 0,
            keepalive_seq: 0,
            state: ConnectionState::Disconnected,
            changes: 0,
            media_calls: 0,
            signalling_given: 0,
            tcp_bytes_fed: 0,
            media_events: 0,
            signalling_events_bytes: 0,
            ticket,
            setup: *setup,
        };
        world.drain(false);
        world
    }

    fn conn(&self, pick: u8) -> Option<ConnId> {
        input::recent(&self.conns, pick)
    }

    /// Feeds `op` to the client, then drains and checks what came out.
    fn step(&mut self, op: &Op) {
        if self.trace {
            eprintln!("[{}] {op:?}", self.now);
        }
        let quiet = matches!(
            self.client.state(),
            ConnectionState::Failed | ConnectionState::Disconnected
        );
        let now = self.now;
        match op {
            Op::Resolved { name, addrs } => self.resolved(*name, addrs),
            Op::ResolveFailed { name } => {
                let name = self.name(*name);
                let input = ClientInput::ResolveFailed {
                    name: &name,
                    reason: "SERVFAIL",
                };
                self.client.handle_input(input, now);
            }
            Op::TcpConnected { conn } => {
                let Some(conn) = self.conn(*conn) else { return };
                self.client
                    .handle_input(ClientInput::TcpConnected { conn }, now);
            }
            Op::TcpFailed { conn } => {
                let Some(conn) = self.conn(*conn) else { return };
                self.closed_by_peer.insert(conn);
                let input = ClientInput::TcpFailed {
                    conn,
                    reason: "refused",
                };
                self.client.handle_input(input, now);
            }
            Op::TcpData { conn, payload } => {
                let Some(conn) = self.conn(*conn) else { return };
                let data = self.bytes(payload);
                self.fed_tcp
                    .entry(conn)
                    .or_default()
                    .extend_from_slice(&data);
                self.tcp_bytes_fed += data.len() as u64;
                self.client
                    .handle_input(ClientInput::TcpData { conn, data: &data }, now);
            }
            Op::TcpClosed { conn } => {
                let Some(conn) = self.conn(*conn) else { return };
                self.closed_by_peer.insert(conn);
                self.client
                    .handle_input(ClientInput::TcpClosed { conn }, now);
            }
            Op::UdpData { from, payload } => {
                let from = input::recent(&self.udp_peers, *from).unwrap_or(sdrtn().media_udp);
                let data = self.bytes(payload);
                self.fed_udp.push(data.clone());
                self.client
                    .handle_input(ClientInput::UdpData { from, data: &data }, now);
            }
            Op::SendSignalling { data } => {
                self.signalling_given += data.len() as u64;
                self.client
                    .handle_input(ClientInput::SendSignalling { data }, now);
            }
            Op::SendMedia { data } => {
                self.media_calls += 1;
                self.client
                    .handle_input(ClientInput::SendMedia { payload: data }, now);
            }
            Op::Leave => self.client.handle_input(ClientInput::Leave, now),
            Op::Wait { ms } => {
                self.now = now + Duration::from_millis(u64::from(*ms));
                self.client.handle_timeout(self.now);
            }
            Op::NetworkChanged { kind } => {
                let change = if kind & 1 == 1 {
                    NetworkChange::AddressChanged
                } else {
                    NetworkChange::PortChanged
                };
                self.client
                    .handle_input(ClientInput::NetworkChanged { change }, now);
            }
            Op::WaitForTimer => {
                if let Some(at) = self.client.poll_timeout() {
                    if at != Instant::MAX {
                        self.now = self.now.max(at);
                    }
                }
                self.client.handle_timeout(self.now);
            }
        }
        self.drain(quiet);
    }

    /// A DNS answer for the name `pick`ed (the one asked, or another) with the addresses
    /// `addrs` pick (the enterprise resolver puts its own proxy first for the proxy's name).
    fn resolved(&mut self, pick: u8, addrs: &[u8]) {
        let name = self.name(pick);
        let all = addresses();
        let mut addrs: Vec<IpAddr> = addrs
            .iter()
            .map(|&i| all[usize::from(i) % all.len()])
            .collect();
        if name == HTTP_PROXY_NAME && !addrs.is_empty() {
            // The enterprise resolver knows its own proxy.
            addrs.insert(0, http_proxy().ip());
        }
        self.told.extend(addrs.iter().copied());
        let input = ClientInput::Resolved {
            name: &name,
            addrs: &addrs,
        };
        self.client.handle_input(input, self.now);
    }

    /// Whether the client may know `ip`: it was told, or its bytes were fed to it.
    fn was_told(&self, ip: IpAddr) -> bool {
        let octets: Vec<u8> = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        self.told.contains(&ip)
            || self
                .fed_tcp
                .values()
                .chain(&self.fed_udp)
                .any(|bytes| bytes.windows(octets.len()).any(|w| w == octets))
    }

    fn name(&self, pick: u8) -> String {
        if pick == 0 {
            self.asked_name.clone()
        } else {
            "other.example".to_owned()
        }
    }

    /// The bytes a payload stands for.
    fn bytes(&mut self, payload: &Payload) -> Vec<u8> {
        let frame = |msg: Message| msg.to_bytes().unwrap_or_default();
        match payload {
            Payload::Raw(bytes) => bytes.clone(),
            Payload::ApResponse {
                relays: picks,
                lifetime_ms,
                stale,
            } => self.ap_response(picks, *lifetime_ms, *stale),
            Payload::TunnelAccept {
                session_id,
                udp_port,
                keepalive_ms,
            } => {
                self.session_id = *session_id;
                frame(Message::TunnelAccept {
                    session_id: *session_id,
                    udp_port: *udp_port,
                    keepalive_interval_ms: *keepalive_ms,
                    idle_timeout_ms: 30_000,
                })
            }
            Payload::ChannelAccept => frame(Message::MediaChannelAccept {
                session_id: self.session_id,
            }),
            Payload::Media { from, payload } => {
                let peer = match from {
                    0 => sdrtn().media_udp,
                    n => SocketAddr::new(addresses()[usize::from(*n) % 5], 4700),
                };
                frame(Message::MediaData {
                    session_id: self.session_id,
                    peer,
                    payload: payload[..payload.len().min(MAX_MEDIA_PAYLOAD)].to_vec(),
                })
            }
            Payload::KeepaliveAck { echo, seq } => frame(Message::KeepaliveAck {
                session_id: self.session_id,
                seq: if *echo { self.keepalive_seq } else { *seq },
            }),
            Payload::Error { code, reason } => frame(Message::error(
                ErrorCode::from_u16(*code),
                &String::from_utf8_lossy(reason),
            )),
            Payload::Close { reason } => frame(Message::Close {
                session_id: self.session_id,
                reason: CloseReason::from_u8(*reason),
            }),
            Payload::Socks5Method { .. }
            | Payload::Socks5Auth { .. }
            | Payload::Socks5Reply { .. } => self.socks5_bytes(payload),
            Payload::SdrtnFrame { payload } => {
                let mut out = Vec::new();
                if encode_media_frame(payload, &mut out).is_err() {
                    // Too long or empty for the framing: send the bad length as is.
                    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                    out.extend_from_slice(payload);
                }
                out
            }
            Payload::Cut { inner, at } => {
                let mut out = self.bytes(inner);
                if !out.is_empty() {
                    out.truncate(usize::from(*at) % out.len());
                }
                out
            }
            Payload::Concat(a, b) => {
                let mut out = self.bytes(a);
                out.extend(self.bytes(b));
                out
            }
            Payload::Http { kind } => match kind {
                0 => b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec(),
                1 => b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                       Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n"
                    .to_vec(),
                n => format!("HTTP/1.1 {} Refused\r\n\r\n", 400 + u16::from(*n)).into_bytes(),
            },
        }
    }

    /// An access point's answer to the last request (or, `stale`, to another), with the
    /// relays `picks` names (at most 9) and the world's ticket.
    fn ap_response(&mut self, picks: &[u8], lifetime_ms: u32, stale: bool) -> Vec<u8> {
        let all = relays();
        let relays: Vec<RelayInfo> = picks
            .iter()
            .take(9)
            .map(|&i| all[usize::from(i) % all.len()].clone())
            .collect();
        self.told.extend(relays.iter().map(|r| r.addr));
        let msg = Message::ApResponse {
            request_id: self.request_id ^ u32::from(stale),
            ticket: self.ticket.clone(),
            ticket_lifetime_ms: lifetime_ms,
            relays,
        };
        msg.to_bytes().unwrap_or_default()
    }

    /// A SOCKS5 server's method selection, authentication reply or request reply (its bound
    /// address is then one the client was told); nothing for any other payload.
    fn socks5_bytes(&mut self, payload: &Payload) -> Vec<u8> {
        let mut out = Vec::new();
        match payload {
            Payload::Socks5Method { method } => MethodSelection {
                method: (*method).into(),
            }
            .encode(&mut out),
            Payload::Socks5Auth { status } => UserPassReply { status: *status }.encode(&mut out),
            Payload::Socks5Reply { code, bound, port } => {
                let ip = addresses()[usize::from(*bound) % 5];
                self.told.insert(ip);
                Reply {
                    code: ReplyCode::from_u8(*code),
                    bound: Address::Ip(SocketAddr::new(ip, *port)),
                }
                .encode(&mut out);
            }
            _ => {}
        }
        out
    }

    /// Learns what the client asked from bytes it sent.
    fn learn(&mut self, data: &[u8]) {
        if let Ok((msg, _)) = Message::decode(data) {
            match msg {
                Message::ApRequest { request_id, .. } => self.request_id = request_id,
                Message::Keepalive { seq, .. } => self.keepalive_seq = seq,
                _ => {}
            }
        }
    }

    /// Drains the outputs, checking each, then the client as a whole. `quiet`: the call was
    /// made in `Failed` or after `Leave`.
    fn drain(&mut self, quiet: bool) {
        while let Some(out) = self.client.poll_output() {
            if self.trace {
                eprintln!("    {out:?}");
            }
            match out {
                ClientOutput::Resolve { name } => {
                    assert!(!quiet, "Resolve({name}) in state {}", self.state);
                    self.asked_name = name;
                }
                ClientOutput::TcpConnect { conn, to } => self.check_tcp_connect(conn, to, quiet),
                ClientOutput::TcpSend { conn, data } => {
                    assert!(!quiet, "TcpSend on {conn} in state {}", self.state);
                    assert!(
                        self.conns.contains(&conn),
                        "TcpSend on {conn}, never opened"
                    );
                    assert!(
                        !self.closed_by_client.contains(&conn),
                        "TcpSend on {conn} after closing it"
                    );
                    assert!(
                        !self.closed_by_peer.contains(&conn),
                        "TcpSend on {conn} after it failed or closed"
                    );
                    self.learn(&data);
                }
                ClientOutput::TcpClose { conn } => {
                    assert!(
                        self.conns.contains(&conn),
                        "TcpClose of {conn}, never opened"
                    );
                    assert!(
                        self.closed_by_client.insert(conn),
                        "TcpClose of {conn} twice"
                    );
                }
                ClientOutput::UdpSend { to, data } => {
                    assert!(!quiet, "UdpSend to {to} in state {}", self.state);
                    assert!(self.was_told(to.ip()), "UdpSend to {to}, never told");
                    assert!(
                        !self.setup.is_http() && !self.setup.is_tcp_443_only(),
                        "UdpSend to {to} through an HTTP proxy or over TCP 443 only"
                    );
                    if !self.udp_peers.contains(&to) {
                        self.udp_peers.push(to);
                    }
                    self.learn(&data);
                }
                ClientOutput::Event(event) => self.on_event(event),
            }
        }
        self.check_client();
    }

    /// A `TcpConnect` is allowed in this state, with a fresh increasing id, to an address the
    /// client was told (port 443 over TCP 443 only), within the race's bound plus two.
    fn check_tcp_connect(&mut self, conn: ConnId, to: SocketAddr, quiet: bool) {
        assert!(!quiet, "TcpConnect to {to} in state {}", self.state);
        if let Some(last) = self.conns.last() {
            assert!(conn > *last, "TcpConnect reuses {conn} (last {last})");
        }
        assert!(self.was_told(to.ip()), "TcpConnect to {to}, never told");
        if self.setup.is_tcp_443_only() {
            assert_eq!(to.port(), 443, "TCP 443 only, yet TcpConnect to {to}");
        }
        self.conns.push(conn);
        let open = self
            .conns
            .iter()
            .filter(|c| !self.closed_by_client.contains(c) && !self.closed_by_peer.contains(c))
            .count();
        let bound = self.setup.max_in_flight() + 2;
        assert!(open <= bound, "{open} connections open, bound {bound}");
    }

    /// The client as a whole after a drain: `state()` agrees with the events, a timer is after
    /// `now` and absent in `Failed` and `Disconnected`, the counters add up.
    fn check_client(&self) {
        assert_eq!(
            self.client.state(),
            self.state,
            "state() and the events disagree"
        );
        if let Some(at) = self.client.poll_timeout() {
            assert!(
                at > self.now,
                "poll_timeout {at} is not after now {}",
                self.now
            );
            assert!(
                !matches!(
                    self.state,
                    ConnectionState::Failed | ConnectionState::Disconnected
                ),
                "a timer in state {}",
                self.state
            );
        }
        let stats = self.client.stats();
        assert!(stats.media_sent + stats.media_dropped <= self.media_calls);
        assert!(
            stats.signalling_sent_bytes + stats.signalling_dropped_bytes <= self.signalling_given
        );
        assert_eq!(stats.media_received, self.media_events, "media_received");
        assert_eq!(
            stats.signalling_received_bytes, self.signalling_events_bytes,
            "signalling_received_bytes"
        );
        assert!(self.signalling_events_bytes <= self.tcp_bytes_fed);
    }

    fn on_event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::ConnectionStateChanged { state, reason } => {
                use ConnectionState::*;
                let from = self.state;
                let first = self.changes == 0;
                self.changes += 1;
                let fallback = matches!(reason, StateReason::FallbackToProxy { .. });
                if fallback {
                    assert!(
                        from == state && matches!(state, Connecting | Reconnecting),
                        "a fallback reported as {from} -> {state}"
                    );
                    assert!(self.setup.d & 3 == 3, "a fallback outside automatic mode");
                    return;
                }
                let allowed = matches!(
                    (from, state),
                    (Disconnected, Connecting) if first
                ) || matches!(
                    (from, state),
                    (Connecting, Connected | Reconnecting | Failed | Disconnected)
                        | (Connected, Reconnecting | Disconnected)
                        | (Reconnecting, Connected | Failed | Disconnected)
                        | (Failed, Disconnected)
                );
                assert!(allowed, "state change {from} -> {state} ({reason})");
                assert!(!reason.to_string().is_empty());
                self.state = state;
            }
            ClientEvent::MediaReceived { .. } => self.media_events += 1,
            ClientEvent::SignallingReceived(bytes) => {
                self.signalling_events_bytes += bytes.len() as u64;
            }
            // ProxyConnected, MediaPathChanged (and any event added later): this target states
            // no invariant for them.
            _ => {}
        }
    }
}
