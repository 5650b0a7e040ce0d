//! `relay`: the cloud proxy's [`Relay`] and [`AccessPoint`] fed an arbitrary world.
//!
//! Input: a [`Setup`] (4 bytes: the SD-RTN blocks and small bounds, so that limits are hit),
//! then [`Op`]s: clients (five addresses, IPv4, IPv6 and IPv4-mapped) connect, send arbitrary
//! bytes or structurally valid frames built from the input's fields — `TunnelOpen`s with
//! tickets signed with the test key [`KEY`] (for the right client or another, fresh or
//! replayed, expired, tampered with, or issued by the access point), media, keepalives,
//! closes, cut frames — over TCP and UDP; SD-RTN answers, fails and closes; time advances.
//!
//! Checked after every step (all outputs drained):
//!
//! - **never an open relay**: every `UpstreamConnect` and `UdpToUpstream` goes to a destination
//!   inside the configured SD-RTN blocks, port not 0 (checked with this file's own CIDR code,
//!   not the relay's);
//! - **bounds**: sessions at most `max_sessions_total`, open sessions per client IP at most
//!   `max_sessions_per_client_ip`, buffered bytes bounded, media datagrams at most 1500 bytes;
//! - **ids**: nothing is sent on, or closed twice, a connection or socket that either side
//!   closed; new upstream ids are fresh; every `SessionClosed` ends an opened session;
//! - **no amplification**: an `Error` datagram is never larger than the datagram it answers,
//!   and at most `max_udp_error_replies_per_sec` go out at one instant;
//! - **timers**: after `handle_timeout(now)`, `poll_timeout` is later than `now`;
//! - **data plane**: a `Splice` names an open client connection and a connected, open
//!   upstream, once; no `TcpHandoff` with one shard; tunnel byte counters grow by exactly
//!   what the driver reported for spliced tunnels (and nothing for anything else); a failed
//!   bind is never followed by a `UdpToUpstream` or `UdpRelease` on that socket;
//! - **access point**: an answer is a valid `ApResponse` whose ticket verifies for the
//!   requester (for a valid request), or an `Error` no larger than the request.

mod script;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use cloudproxy_core::ap::{AccessPoint, ApInput, ApOutput};
use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::relay::{
    AllocId, ClientConn, Relay, RelayConfig, RelayEvent, RelayInput, RelayOutput, UpstreamConn,
};
use cloudproxy_core::time::Instant;
use cloudproxy_core::wire::{
    CloseReason, FrameReader, Message, Ticket, AP_REQUEST_PADDED_LEN, MAX_MEDIA_PAYLOAD,
};

use super::input;

use script::{ap_relays, Block, NEVER, UNPADDED};
pub use script::{clients, Dest, Op, Payload, Script, Setup, TicketSpec, APPS, KEY};

/// The world around the relay and the access point, and what it has seen of them.
struct World {
    /// Print every op and output (`FUZZ_TRACE=1`), to read a failing input.
    trace: bool,
    setup: Setup,
    blocks: Vec<Block>,
    config: RelayConfig,
    relay: Relay,
    ap: AccessPoint,
    now: Instant,
    /// Accepted client connections, in order, with their peer.
    conns: Vec<(ClientConn, SocketAddr)>,
    /// Client connections closed by either side.
    closed_conns: BTreeSet<ClientConn>,
    /// Upstream connections the relay opened, in order.
    upstreams: Vec<UpstreamConn>,
    closed_upstreams: BTreeSet<UpstreamConn>,
    /// Upstream sockets the relay bound, in order.
    allocs: Vec<AllocId>,
    released: BTreeSet<AllocId>,
    /// Every session id the relay opened, in order.
    sessions: Vec<u64>,
    /// Open sessions and their client's address.
    open: BTreeMap<u64, IpAddr>,
    /// Tickets the access point issued, in order.
    ap_tickets: Vec<Ticket>,
    /// `Error` datagrams sent at the current instant.
    errors_now: (Instant, u32),
    /// The relay ports client datagrams were delivered on.
    udp_ports_used: BTreeSet<u16>,
    /// Upstream connections reported connected.
    connected: BTreeSet<UpstreamConn>,
    /// Spliced tunnels: client connection → upstream connection.
    spliced: BTreeMap<ClientConn, UpstreamConn>,
    /// Sockets whose bind failed.
    bind_failed: BTreeSet<AllocId>,
    /// Tunnel bytes the relay must have counted: early bytes plus spliced reports (up, down).
    tunnel_bytes: (u64, u64),
}

/// The target: see the module docs.
pub fn run(data: &[u8]) {
    let script = Script::decode(data);
    let mut world = World::new(script.setup);
    for op in &script.ops {
        world.step(op);
    }
    // Let every timer run out: sessions idle out, nothing is left pending.
    world.advance(Duration::from_secs(3600));
    assert_eq!(
        world.relay.poll_timeout(),
        None,
        "a timer outlived every deadline"
    );
    assert_eq!(
        world.relay.session_count(),
        0,
        "a session outlived every deadline"
    );
    assert_eq!(
        world.relay.connection_count(),
        0,
        "a connection outlived every deadline"
    );
    assert!(
        world.open.is_empty(),
        "sessions never closed: {:?}",
        world.open
    );
}

impl World {
    fn new(setup: Setup) -> World {
        let config = setup.relay_config();
        let start = super::start_clocks();
        World {
            trace: std::env::var_os("FUZZ_TRACE").is_some(),
            setup,
            blocks: setup.blocks(),
            relay: Relay::new(config.clone(), Entropy::from_u64(0x5eed), start),
            ap: AccessPoint::new(setup.ap_config(), Entropy::from_u64(0xA9), start),
            config,
            now: start.at,
            conns: Vec::new(),
            closed_conns: BTreeSet::new(),
            upstreams: Vec::new(),
            closed_upstreams: BTreeSet::new(),
            allocs: Vec::new(),
            released: BTreeSet::new(),
            sessions: Vec::new(),
            open: BTreeMap::new(),
            ap_tickets: Vec::new(),
            errors_now: (Instant::EPOCH, 0),
            udp_ports_used: BTreeSet::new(),
            connected: BTreeSet::new(),
            spliced: BTreeMap::new(),
            bind_failed: BTreeSet::new(),
            tunnel_bytes: (0, 0),
        }
    }

    fn client(&self, pick: u8) -> SocketAddr {
        let all = clients();
        all[usize::from(pick) % all.len()]
    }

    fn session(&self, pick: u8) -> u64 {
        input::recent(&self.sessions, pick).unwrap_or(u64::from(pick))
    }

    /// Feeds `op` to the relay (or the access point), checking every output, then the
    /// tunnel byte counters.
    fn step(&mut self, op: &Op) {
        if self.trace {
            eprintln!("[{}] {op:?}", self.now);
        }
        match op {
            Op::Accept { client } => {
                let conn = ClientConn(self.conns.len() as u64 + 1);
                let peer = self.client(*client);
                self.conns.push((conn, peer));
                self.input(RelayInput::TcpAccepted { conn, peer }, None);
            }
            Op::Tcp { conn, payload } => {
                if let Some((conn, peer)) = input::recent(&self.conns, *conn) {
                    let data = self.bytes(payload, peer.ip());
                    self.input(RelayInput::TcpData { conn, data: &data }, None);
                }
            }
            Op::TcpClosed { conn } => {
                if let Some((conn, _)) = input::recent(&self.conns, *conn) {
                    self.closed_conns.insert(conn);
                    self.spliced.remove(&conn);
                    self.input(RelayInput::TcpClosed { conn }, None);
                }
            }
            Op::UpConnected { pick } => {
                if let Some(conn) = input::recent(&self.upstreams, *pick) {
                    if !self.closed_upstreams.contains(&conn) {
                        self.connected.insert(conn);
                    }
                    self.input(RelayInput::UpstreamConnected { conn }, None);
                }
            }
            Op::UpFailed { pick } => {
                if let Some(conn) = input::recent(&self.upstreams, *pick) {
                    self.closed_upstreams.insert(conn);
                    self.spliced.retain(|_, u| *u != conn);
                    self.input(RelayInput::UpstreamFailed { conn }, None);
                }
            }
            Op::UpData { pick, data } => {
                if let Some(conn) = input::recent(&self.upstreams, *pick) {
                    self.input(RelayInput::UpstreamData { conn, data }, None);
                }
            }
            Op::UpClosed { pick } => {
                if let Some(conn) = input::recent(&self.upstreams, *pick) {
                    self.closed_upstreams.insert(conn);
                    self.spliced.retain(|_, u| *u != conn);
                    self.input(RelayInput::UpstreamClosed { conn }, None);
                }
            }
            Op::Udp {
                client,
                port,
                payload,
            } => self.udp_from_client(*client, *port, payload),
            Op::UdpUp { pick, from, data } => {
                if let Some(alloc) = input::recent(&self.allocs, *pick) {
                    let from = from.addr();
                    self.input(RelayInput::UdpFromUpstream { alloc, from, data }, None);
                }
            }
            Op::Advance { ms } => self.advance(Duration::from_millis(u64::from(*ms))),
            Op::Ap { client, payload } => self.ap_datagram(*client, payload),
            Op::Activity { conn, up, down } => self.activity(*conn, *up, *down),
            Op::BindFailed { pick } => {
                if let Some(alloc) = input::recent(&self.allocs, *pick) {
                    if !self.released.contains(&alloc) {
                        self.bind_failed.insert(alloc);
                    }
                    self.input(RelayInput::UdpBindFailed { alloc }, None);
                }
            }
        }
        let c = self.relay.counters();
        assert_eq!(
            (c.tcp_bytes_up, c.tcp_bytes_down),
            self.tunnel_bytes,
            "tunnel byte counters"
        );
    }

    /// A client's datagram on one of the relay's UDP ports (`port` 255, or a port past the
    /// configured ones: port 9, where the relay listens on nothing).
    fn udp_from_client(&mut self, client: u8, port: u8, payload: &Payload) {
        let from = self.client(client);
        let ports = self.setup.udp_ports();
        let local_port = match ports.clone().nth(usize::from(port) % 3) {
            Some(p) if port != 255 => p,
            _ => 9,
        };
        let data = self.bytes(payload, from.ip());
        self.udp_ports_used.insert(local_port);
        self.input(
            RelayInput::UdpFromClient {
                local_port,
                from,
                data: &data,
            },
            Some(data.len()),
        );
    }

    /// A client's datagram to the access point: at most one answer, to the sender from the
    /// socket it came in on, then checked.
    fn ap_datagram(&mut self, client: u8, payload: &Payload) {
        let from = self.client(client);
        let data = self.bytes(payload, from.ip());
        let local = SocketAddr::from(([47, 74, 211, 17], 8000));
        let input = ApInput::Datagram {
            local,
            from,
            data: &data,
        };
        self.ap.handle_input(input, self.now);
        let mut answer = None;
        while let Some(out) = self.ap.poll_output() {
            match out {
                ApOutput::UdpSend { local: l, to, data } => {
                    assert!(l == local && to == from, "answered {to} from {l}");
                    assert!(answer.is_none(), "two answers to one datagram");
                    answer = Some(data);
                }
                ApOutput::Event(_) => {}
                other => panic!("the access point answers a datagram with {other:?}"),
            }
        }
        self.check_ap(from, &data, answer);
    }

    /// The driver reports bytes moved on a tunnel (counted only once it is spliced).
    fn activity(&mut self, conn: u8, up: u16, down: u16) {
        if let Some((client, _)) = input::recent(&self.conns, conn) {
            let (up, down) = (u64::from(up), u64::from(down));
            if self.spliced.contains_key(&client) {
                self.tunnel_bytes.0 += up;
                self.tunnel_bytes.1 += down;
            }
            let input = RelayInput::TunnelActivity {
                client,
                bytes_up: up,
                bytes_down: down,
            };
            self.input(input, None);
        }
    }

    /// The bytes a payload stands for, sent by a client at `own_ip`.
    fn bytes(&self, payload: &Payload, own_ip: IpAddr) -> Vec<u8> {
        let frame = |msg: Message| msg.to_bytes().unwrap_or_default();
        match payload {
            Payload::Raw(bytes) => bytes.clone(),
            Payload::TunnelOpen {
                ticket,
                dest,
                extra,
            } => {
                let mut out = self.tunnel_open(ticket, dest.addr(), own_ip);
                out.extend_from_slice(extra);
                out
            }
            Payload::ChannelOpen { session } => frame(Message::MediaChannelOpen {
                session_id: self.session(*session),
            }),
            Payload::Media {
                session,
                dest,
                payload,
            } => frame(Message::MediaData {
                session_id: self.session(*session),
                peer: dest.addr(),
                payload: payload[..payload.len().min(MAX_MEDIA_PAYLOAD)].to_vec(),
            }),
            Payload::Keepalive { session, seq } => frame(Message::Keepalive {
                session_id: self.session(*session),
                seq: *seq,
            }),
            Payload::Close { session, reason } => frame(Message::Close {
                session_id: self.session(*session),
                reason: CloseReason::from_u8(*reason),
            }),
            Payload::ApRequest {
                app,
                flags,
                request_id,
            } => {
                let app_id = APPS[usize::from(*app) % APPS.len()];
                let mut msg = Message::padded_ap_request(*request_id, app_id, *flags & 1);
                if *flags & UNPADDED != 0 {
                    if let Message::ApRequest { padding_len, .. } = &mut msg {
                        *padding_len = 0;
                    }
                }
                let mut out = frame(msg);
                // Undefined flag bits make a frame the decoder must refuse.
                if let Some(byte) = out.get_mut(6 + 4 + 1 + app_id.len()) {
                    *byte = *flags & !UNPADDED;
                }
                out
            }
            Payload::Cut { inner, at } => {
                let mut out = self.bytes(inner, own_ip);
                if !out.is_empty() {
                    out.truncate(usize::from(*at) % out.len());
                }
                out
            }
        }
    }

    /// A `TunnelOpen` frame for `dest` with the ticket `spec` describes.
    fn tunnel_open(&self, spec: &TicketSpec, dest: SocketAddr, own_ip: IpAddr) -> Vec<u8> {
        let issued = self.ap_tickets.len();
        let ticket = match spec.from_ap {
            n if n != 0 && issued > 0 => {
                self.ap_tickets[issued - 1 - usize::from(n - 1) % issued].clone()
            }
            _ => {
                let ip = match spec.client {
                    0 => own_ip,
                    n => self.client(n - 1).ip(),
                };
                let mut nonce = [0u8; 16];
                nonce[0] = spec.nonce;
                // Unix time as the relay counts it from its start.
                let expires = super::start_clocks().unix_at(self.now)
                    + Duration::from_millis(u64::from(spec.lifetime_ms));
                let app = APPS[usize::from(spec.app) % APPS.len()];
                match Ticket::issue(&KEY, app, ip, expires, nonce) {
                    Ok(t) => t,
                    Err(err) => panic!("issuing a ticket for {app}: {err}"),
                }
            }
        };
        let msg = Message::TunnelOpen {
            ticket,
            destination: dest,
        };
        let mut out = msg.to_bytes().unwrap_or_default();
        if spec.tamper != 0 && out.len() > 6 {
            // Flip a byte of the body (the header stays valid).
            let i = 6 + (usize::from(spec.tamper) - 1) % (out.len() - 6);
            out[i] ^= 0x5A;
        }
        out
    }

    /// Feeds an input at the current time, then drains and checks. `udp_len` is the length of
    /// a client datagram being answered, if that is what this is.
    fn input(&mut self, input: RelayInput<'_>, udp_len: Option<usize>) {
        self.relay.handle_input(input, self.now);
        self.drain(udp_len);
    }

    /// Moves the clock forward by `d`, firing every timer on the way.
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(at) = self.relay.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.relay.handle_timeout(self.now);
            self.drain(None);
            if let Some(next) = self.relay.poll_timeout() {
                assert!(
                    next > self.now,
                    "after handle_timeout({}), poll_timeout is {next}",
                    self.now
                );
            }
        }
        self.now = target;
    }

    fn dest_allowed(&self, to: SocketAddr) -> bool {
        if to.port() == 0 || !self.blocks.iter().any(|b| b.contains(to.ip())) {
            return false;
        }
        if self.setup.catch_all() {
            let ip = match to.ip() {
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(_) => return false,
                    None if v6.is_loopback() || v6.is_unspecified() => return false,
                    None if (v6.segments()[0] & 0xfe00) == 0xfc00 => return false,
                    None if (v6.segments()[0] & 0xffc0) == 0xfe80 => return false,
                    None if (v6.segments()[0] & 0xff00) == 0xff00 => return false,
                    None => return true,
                },
                ip => ip,
            };
            return !NEVER.iter().any(|b| b.contains(ip)) && ip != Ipv4Addr::BROADCAST;
        }
        true
    }

    /// Drains the relay's outputs, checking each.
    fn drain(&mut self, udp_len: Option<usize>) {
        while let Some(out) = self.relay.poll_output() {
            if self.trace {
                eprintln!("    {out:?}");
            }
            match out {
                RelayOutput::TcpSend { conn, .. } => self.assert_conn_open(conn, "TcpSend"),
                RelayOutput::TcpClose { conn } => {
                    self.assert_conn_open(conn, "TcpClose");
                    self.closed_conns.insert(conn);
                    self.spliced.remove(&conn);
                }
                RelayOutput::UpstreamConnect { conn, to } => {
                    assert!(
                        !self.upstreams.contains(&conn),
                        "UpstreamConnect reuses {conn:?}"
                    );
                    assert!(self.dest_allowed(to), "open relay: UpstreamConnect to {to}");
                    self.upstreams.push(conn);
                }
                RelayOutput::UpstreamSend { conn, data } => {
                    self.assert_upstream_open(conn, "UpstreamSend");
                    // Only the early bytes of a tunnel, before it is spliced.
                    assert!(
                        !self.spliced.values().any(|u| *u == conn),
                        "UpstreamSend on spliced {conn:?}"
                    );
                    self.tunnel_bytes.0 += data.len() as u64;
                }
                RelayOutput::UpstreamClose { conn } => {
                    self.assert_upstream_open(conn, "UpstreamClose");
                    self.closed_upstreams.insert(conn);
                    self.spliced.retain(|_, u| *u != conn);
                }
                RelayOutput::UdpToClient {
                    local_port,
                    to,
                    data,
                } => self.check_udp_to_client(local_port, to, &data, udp_len),
                RelayOutput::UdpBind { alloc } => {
                    assert!(!self.allocs.contains(&alloc), "UdpBind reuses {alloc:?}");
                    self.allocs.push(alloc);
                }
                RelayOutput::UdpToUpstream { alloc, to, data } => {
                    self.assert_alloc_usable(alloc, "UdpToUpstream on");
                    assert!(self.dest_allowed(to), "open relay: UdpToUpstream to {to}");
                    assert!(
                        data.len() <= MAX_MEDIA_PAYLOAD,
                        "a {}-byte datagram",
                        data.len()
                    );
                }
                RelayOutput::UdpRelease { alloc } => {
                    self.assert_alloc_usable(alloc, "UdpRelease of");
                    self.released.insert(alloc);
                }
                RelayOutput::Splice {
                    client, upstream, ..
                } => {
                    self.assert_conn_open(client, "Splice");
                    self.assert_upstream_open(upstream, "Splice");
                    assert!(
                        self.connected.contains(&upstream),
                        "Splice before connected"
                    );
                    assert!(
                        self.spliced.insert(client, upstream).is_none(),
                        "{client:?} spliced twice"
                    );
                }
                RelayOutput::TcpHandoff { conn, .. } => {
                    panic!("TcpHandoff of {conn:?} with one shard")
                }
                RelayOutput::Event(event) => self.on_event(event),
            }
        }
        self.check_bounds();
    }

    /// A datagram to a client goes out from a relay port where datagrams arrive; an `Error`
    /// is no larger than the datagram it answers (`udp_len`, when the input was one), and no
    /// more of them go out at one instant than the limit.
    fn check_udp_to_client(
        &mut self,
        local_port: u16,
        to: SocketAddr,
        data: &[u8],
        udp_len: Option<usize>,
    ) {
        assert!(
            self.setup.udp_ports().contains(&local_port)
                || self.udp_ports_used.contains(&local_port),
            "UdpToClient from port {local_port}, where nothing arrived"
        );
        if let Ok(Message::Error { .. }) = Message::decode_datagram(data) {
            if let Some(len) = udp_len {
                assert!(
                    data.len() <= len,
                    "amplification: a {}-byte Error to {to} answers {len} bytes",
                    data.len()
                );
            }
            if self.errors_now.0 != self.now {
                self.errors_now = (self.now, 0);
            }
            self.errors_now.1 += 1;
            assert!(
                self.errors_now.1 <= self.config.max_udp_error_replies_per_sec,
                "more UDP Error replies at one instant than the limit"
            );
        }
    }

    /// `alloc` was bound, not released, and its bind did not fail (`what` names the output).
    fn assert_alloc_usable(&self, alloc: AllocId, what: &str) {
        assert!(
            !self.bind_failed.contains(&alloc),
            "{what} {alloc:?}, whose bind failed"
        );
        assert!(
            self.allocs.contains(&alloc) && !self.released.contains(&alloc),
            "{what} {alloc:?}, not bound or released"
        );
    }

    /// Sessions within the total bound, buffered bytes within what the open connections may
    /// hold.
    fn check_bounds(&self) {
        let sessions = self.relay.session_count();
        assert!(
            sessions <= self.config.max_sessions_total,
            "{sessions} sessions, the bound is {}",
            self.config.max_sessions_total
        );
        let open_conns = self.conns.len() - self.closed_conns.len().min(self.conns.len());
        let buffered_bound =
            open_conns * (FrameReader::CAPACITY + self.config.max_buffered_bytes_per_session);
        assert!(
            self.relay.buffered_bytes() <= buffered_bound,
            "the relay holds {} bytes for {open_conns} connections",
            self.relay.buffered_bytes()
        );
    }

    fn on_event(&mut self, event: RelayEvent) {
        match event {
            RelayEvent::SessionOpened {
                session_id, client, ..
            } => {
                assert!(
                    !self.sessions.contains(&session_id),
                    "session {session_id} opened twice"
                );
                self.sessions.push(session_id);
                let ip = client.ip().to_canonical();
                self.open.insert(session_id, ip);
                let same_ip = self.open.values().filter(|&&other| other == ip).count();
                assert!(
                    same_ip <= self.config.max_sessions_per_client_ip,
                    "{same_ip} open sessions for {ip}, the bound is {}",
                    self.config.max_sessions_per_client_ip
                );
                assert!(self.open.len() <= self.config.max_sessions_total);
            }
            RelayEvent::SessionClosed { session_id, .. } => {
                assert!(
                    self.open.remove(&session_id).is_some(),
                    "session {session_id} closed but not open"
                );
            }
            _ => {}
        }
    }

    fn assert_conn_open(&self, conn: ClientConn, what: &str) {
        assert!(
            self.conns.iter().any(|(c, _)| *c == conn),
            "{what} on {conn:?}, never accepted"
        );
        assert!(
            !self.closed_conns.contains(&conn),
            "{what} on {conn:?}, already closed"
        );
    }

    fn assert_upstream_open(&self, conn: UpstreamConn, what: &str) {
        assert!(
            self.upstreams.contains(&conn),
            "{what} on {conn:?}, never opened"
        );
        assert!(
            !self.closed_upstreams.contains(&conn),
            "{what} on {conn:?}, already closed"
        );
    }

    /// Checks the access point's answer to `request` from `from`.
    fn check_ap(&mut self, from: SocketAddr, request: &[u8], answer: Option<Vec<u8>>) {
        if self.trace {
            eprintln!("    access point answers {answer:?}");
        }
        let Some(answer) = answer else {
            return;
        };
        match Message::decode_datagram(&answer) {
            Ok(Message::ApResponse {
                request_id,
                ticket,
                relays,
                ..
            }) => {
                assert!(
                    answer.len() <= request.len() && request.len() >= AP_REQUEST_PADDED_LEN,
                    "amplification: a {}-byte request earned a {}-byte ApResponse",
                    request.len(),
                    answer.len()
                );
                let Ok(Message::ApRequest {
                    request_id: asked, ..
                }) = Message::decode_datagram(request)
                else {
                    panic!("an ApResponse to something other than an ApRequest");
                };
                assert_eq!(request_id, asked, "the answer's request id");
                assert_eq!(
                    ticket.verify(&KEY, super::start_clocks().unix_at(self.now), from.ip()),
                    Ok(()),
                    "the access point's ticket does not verify"
                );
                assert!(!relays.is_empty() && relays.len() <= ap_relays().len());
                for relay in &relays {
                    assert!(
                        ap_relays()
                            .iter()
                            .any(|r| r.addr == relay.addr && r.tcp_port == relay.tcp_port),
                        "the access point handed out {relay:?}"
                    );
                }
                self.ap_tickets.push(ticket);
            }
            Ok(Message::Error { .. }) => assert!(
                answer.len() <= request.len(),
                "amplification: the access point answers {} bytes with {}",
                request.len(),
                answer.len()
            ),
            other => panic!("the access point answered {other:?}"),
        }
    }
}
