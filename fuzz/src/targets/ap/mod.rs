//! `ap`: the cloud proxy's [`AccessPoint`] fed arbitrary sequences of [`ApInput`]s.
//!
//! Input: a [`Setup`] (4 bytes: small caps, budgets and timeouts, so that every bound is hit),
//! then [`Op`]s: datagrams and TCP connections from eight clients (two addresses of one IPv4
//! `/24`, another `/24`, an IPv4-mapped form, two addresses of one IPv6 `/64`, another `/64`
//! of the same `/56`, another `/56`) carrying arbitrary bytes or `ApRequest`s padded, short or
//! broken, repeated (pipelined) or cut; accepts with fresh or reused ids, closes, time.
//!
//! Checked after every step (all outputs drained):
//!
//! - **no amplification**: a datagram earns at most one datagram, sent back to its sender
//!   from the socket it arrived on, never larger than it; on a connection, the answers never
//!   add up to more bytes than the connection delivered, and none is larger than
//!   [`AP_REQUEST_PADDED_LEN`]; an `ApResponse` answers only a request at least that long,
//!   and its ticket verifies for the requester;
//! - **ids**: nothing is sent on, or closed, a connection that was never accepted, was
//!   refused, or that either side closed; every accepted connection ends with exactly one
//!   `TcpClosed` event; the driver's closes are not echoed;
//! - **bounds**: open connections at most the global cap, per client address and per client
//!   network at most their caps (counted here from this file's own grouping of the clients);
//!   answers per connection at most the request cap; buffered bytes at most one frame per
//!   connection; the rate limiter's tables within their capacities; a bounded number of
//!   outputs per input;
//! - **timers**: after `handle_timeout(now)`, `poll_timeout` is later than `now`; in the end
//!   every connection and every rate-limit window runs out and nothing is left.

mod script;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cloudproxy_core::ap::{
    AccessPoint, ApConfig, ApConn, ApEvent, ApInput, ApOutput, TcpEnd, TcpRefusal,
};
use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::time::Instant;
use cloudproxy_core::wire::{FrameReader, Message, AP_REQUEST_PADDED_LEN};

use super::input;

pub use script::{clients, locals, Op, Payload, Script, Setup, KEY};

/// The client address of each of [`clients`] (0 and 3 are one IPv4 address, 4 and 5 one
/// IPv6 `/64`), and its client network (0, 1 and 3 one `/24`; 4, 5 and 6 one `/56`).
const ADDRESS_OF: [u8; 8] = [0, 1, 2, 0, 4, 4, 6, 7];
const NETWORK_OF: [u8; 8] = [0, 0, 2, 0, 4, 4, 4, 7];

/// What this file knows of one connection.
#[derive(Debug)]
struct ConnModel {
    client: usize,
    /// Bytes the client delivered.
    delivered: usize,
    /// Bytes the access point sent.
    answered: usize,
    /// Answers sent.
    answers: u32,
}

struct World {
    trace: bool,
    config: ApConfig,
    ap: AccessPoint,
    now: Instant,
    /// Every id handed to `TcpAccepted`, in order.
    ids: Vec<u64>,
    /// Connections the access point accepted and has not closed (nor been told are closed).
    open: BTreeMap<u64, ConnModel>,
}

/// The target: see the module docs.
pub fn run(data: &[u8]) {
    let script = Script::decode(data);
    let mut world = World::new(script.setup);
    for op in &script.ops {
        world.step(op);
    }
    world.advance(Duration::from_secs(3600));
    assert!(world.open.is_empty(), "connections outlived every deadline");
    assert_eq!(world.ap.tcp_connection_count(), 0);
    assert_eq!(world.ap.buffered_bytes(), 0);
    assert_eq!(
        world.ap.tracked_clients(),
        (0, 0),
        "windows outlived their end"
    );
    assert_eq!(world.ap.tcp_clients(), (0, 0));
    assert_eq!(
        world.ap.poll_timeout(),
        None,
        "a timer outlived every deadline"
    );
}

/// What an input was, for the checks of its outputs.
enum Fed {
    Datagram {
        local: SocketAddr,
        from: SocketAddr,
        len: usize,
    },
    Accept {
        id: u64,
        client: usize,
        /// The id is not open: a real accept (otherwise the machine must ignore it).
        fresh: bool,
        /// The refusal this file's model expects.
        expected: Option<TcpRefusal>,
    },
    Tcp(u64),
    Closed(u64),
    Timeout,
}

impl World {
    fn new(setup: Setup) -> World {
        let config = setup.config();
        let start = super::start_clocks();
        World {
            trace: std::env::var_os("FUZZ_TRACE").is_some(),
            ap: AccessPoint::new(config.clone(), Entropy::from_u64(0xA9), start),
            config,
            now: start.at,
            ids: Vec::new(),
            open: BTreeMap::new(),
        }
    }

    fn step(&mut self, op: &Op) {
        if self.trace {
            eprintln!("[{}] {op:?}", self.now);
        }
        let all = clients();
        match op {
            Op::Datagram {
                client,
                local,
                payload,
            } => {
                let from = all[usize::from(*client) % all.len()];
                let local = locals()[usize::from(*local) % 2];
                let data = payload.bytes();
                let input = ApInput::Datagram {
                    local,
                    from,
                    data: &data,
                };
                self.ap.handle_input(input, self.now);
                let len = data.len();
                self.drain(Fed::Datagram { local, from, len });
            }
            Op::Accept { client, reuse } => {
                let c = usize::from(*client) % all.len();
                let id = match input::recent(&self.ids, reuse.wrapping_sub(1)) {
                    Some(id) if *reuse != 0 => id,
                    _ => self.ids.len() as u64 + 1,
                };
                let fresh = !self.open.contains_key(&id);
                let expected = if fresh {
                    self.expected_refusal(c)
                } else {
                    None
                };
                self.ids.push(id);
                let conn = ApConn(id);
                self.ap
                    .handle_input(ApInput::TcpAccepted { conn, peer: all[c] }, self.now);
                self.drain(Fed::Accept {
                    id,
                    client: c,
                    fresh,
                    expected,
                });
            }
            Op::Tcp { conn, payload } => {
                if let Some(id) = input::recent(&self.ids, *conn) {
                    let data = payload.bytes();
                    if let Some(m) = self.open.get_mut(&id) {
                        m.delivered += data.len();
                    }
                    let input = ApInput::TcpData {
                        conn: ApConn(id),
                        data: &data,
                    };
                    self.ap.handle_input(input, self.now);
                    self.drain(Fed::Tcp(id));
                }
            }
            Op::TcpClosed { conn } => {
                if let Some(id) = input::recent(&self.ids, *conn) {
                    self.ap
                        .handle_input(ApInput::TcpClosed { conn: ApConn(id) }, self.now);
                    self.drain(Fed::Closed(id));
                }
            }
            Op::Advance { ms } => self.advance(Duration::from_millis(u64::from(*ms))),
        }
    }

    /// Moves the clock forward by `d`, firing every timer on the way (and once more, early).
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        // An early call is harmless.
        self.ap.handle_timeout(self.now);
        self.drain(Fed::Timeout);
        while let Some(at) = self.ap.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.ap.handle_timeout(self.now);
            self.drain(Fed::Timeout);
            if let Some(next) = self.ap.poll_timeout() {
                assert!(
                    next > self.now,
                    "after handle_timeout({}), poll_timeout is {next}",
                    self.now
                );
            }
        }
        self.now = target;
    }

    /// Drains the outputs of the input `fed`, checking each, then the bounds.
    fn drain(&mut self, fed: Fed) {
        let mut udp_sends = 0;
        let mut count = 0usize;
        let open_before = self.open.len();
        while let Some(out) = self.ap.poll_output() {
            if self.trace {
                eprintln!("    {out:?}");
            }
            count += 1;
            match out {
                ApOutput::UdpSend { local, to, data } => {
                    udp_sends += 1;
                    let Fed::Datagram {
                        local: l,
                        from,
                        len,
                    } = fed
                    else {
                        panic!("a datagram sent, not in answer to a datagram");
                    };
                    assert!(udp_sends == 1, "two answers to one datagram");
                    assert_eq!((local, to), (l, from), "answered from or to elsewhere");
                    assert!(
                        data.len() <= len,
                        "amplification: {} bytes answer a {len}-byte datagram",
                        data.len()
                    );
                    self.check_answer(&data, from, len);
                }
                ApOutput::TcpSend { conn, data } => {
                    assert!(
                        matches!(fed, Fed::Tcp(id) if id == conn.0),
                        "TcpSend on {conn:?}, not in answer to its bytes"
                    );
                    let cap = self.config.max_requests_per_tcp_connection.max(1);
                    let Some(m) = self.open.get_mut(&conn.0) else {
                        panic!("TcpSend on {conn:?}, not open");
                    };
                    m.answered += data.len();
                    m.answers += 1;
                    assert!(
                        m.answered <= m.delivered,
                        "amplification: {} bytes answer {} on {conn:?}",
                        m.answered,
                        m.delivered
                    );
                    assert!(data.len() <= AP_REQUEST_PADDED_LEN);
                    assert!(m.answers <= cap, "{} answers, the cap is {cap}", m.answers);
                    let from = clients()[m.client];
                    self.check_answer(&data, from, AP_REQUEST_PADDED_LEN);
                }
                ApOutput::TcpClose { conn } => match fed {
                    Fed::Accept {
                        id,
                        fresh,
                        expected,
                        ..
                    } => assert!(
                        conn.0 == id && fresh && expected.is_some(),
                        "TcpClose of {conn:?} at its accept, expected {expected:?}"
                    ),
                    _ => assert!(
                        self.open.remove(&conn.0).is_some(),
                        "TcpClose of {conn:?}, not open"
                    ),
                },
                ApOutput::Event(event) => self.on_event(event, &fed),
            }
        }
        if let Fed::Accept {
            id,
            client,
            fresh,
            expected,
        } = fed
        {
            assert_eq!(count, if fresh && expected.is_some() { 2 } else { 0 });
            if fresh && expected.is_none() {
                let conn = ConnModel {
                    client,
                    delivered: 0,
                    answered: 0,
                    answers: 0,
                };
                self.open.insert(id, conn);
            }
        }
        let bound = match fed {
            Fed::Datagram { .. } | Fed::Accept { .. } => 2,
            Fed::Closed(_) => 1,
            Fed::Tcp(_) => 2 * self.config.max_requests_per_tcp_connection.max(1) as usize + 2,
            // Each connection whose deadline passed: its close and its event.
            Fed::Timeout => 2 * open_before,
        };
        assert!(count <= bound, "{count} outputs for one input");
        self.check_bounds();
    }

    fn on_event(&mut self, event: ApEvent, fed: &Fed) {
        match event {
            ApEvent::TcpRefused { conn, cause, .. } => {
                let Fed::Accept { id, expected, .. } = fed else {
                    panic!("{conn:?} refused ({cause:?}) after its accept");
                };
                assert_eq!(conn.0, *id);
                assert_eq!(Some(cause), *expected, "the caps disagree with the model");
            }
            ApEvent::TcpClosed { conn, end, .. } => {
                if end == TcpEnd::PeerClosed {
                    assert!(matches!(fed, Fed::Closed(id) if *id == conn.0));
                    assert!(self.open.remove(&conn.0).is_some(), "{conn:?} closed twice");
                } else {
                    // The TcpClose came just before and removed it.
                    assert!(
                        !self.open.contains_key(&conn.0),
                        "closed without a TcpClose"
                    );
                }
            }
            _ => {}
        }
    }

    /// The cap that must refuse a new connection from client `c`, in the order the access
    /// point documents: total, per address, per network.
    fn expected_refusal(&self, c: usize) -> Option<TcpRefusal> {
        let (address, network) = self.open_from(c);
        if self.open.len() >= self.config.max_tcp_connections {
            Some(TcpRefusal::TooManyConnections)
        } else if address >= self.config.max_tcp_connections_per_ip {
            Some(TcpRefusal::TooManyFromIp)
        } else if network >= self.config.max_tcp_connections_per_prefix {
            Some(TcpRefusal::TooManyFromPrefix)
        } else {
            None
        }
    }

    /// Open connections from the address and the network of client `c`.
    fn open_from(&self, c: usize) -> (usize, usize) {
        let same = |groups: &[u8; 8]| {
            self.open
                .values()
                .filter(|m| groups[m.client] == groups[c])
                .count()
        };
        (same(&ADDRESS_OF), same(&NETWORK_OF))
    }

    fn check_bounds(&self) {
        let open = self.open.len();
        assert_eq!(
            self.ap.tcp_connection_count(),
            open,
            "open connections disagree"
        );
        assert!(open <= self.config.max_tcp_connections);
        for m in self.open.values() {
            let (address, network) = self.open_from(m.client);
            assert!(address <= self.config.max_tcp_connections_per_ip);
            assert!(network <= self.config.max_tcp_connections_per_prefix);
        }
        assert!(self.ap.buffered_bytes() <= open * FrameReader::CAPACITY);
        let (addresses, networks) = self.ap.tracked_clients();
        assert!(addresses <= self.config.max_tracked_ips);
        assert!(networks <= self.config.max_tracked_prefixes);
    }

    /// An answer to `from`'s request of `len` bytes: a valid `ApResponse` (only to a padded
    /// request) whose ticket verifies for `from`, or an `Error`.
    fn check_answer(&self, answer: &[u8], from: SocketAddr, len: usize) {
        match Message::decode_datagram(answer) {
            Ok(Message::ApResponse {
                request_id,
                ticket,
                relays,
                ..
            }) => {
                assert!(
                    len >= AP_REQUEST_PADDED_LEN,
                    "an ApResponse to a short request"
                );
                assert_eq!(request_id, 0x0A0B_0C0D);
                // Unix time as the access point counts it from its start.
                let unix_now = super::start_clocks().unix_at(self.now);
                assert_eq!(ticket.verify(&KEY, unix_now, from.ip()), Ok(()));
                assert!(relays.iter().all(|r| self
                    .config
                    .relays
                    .iter()
                    .any(|c| c.addr == r.addr && c.tcp_port == r.tcp_port)));
            }
            Ok(Message::Error { .. }) => {}
            other => panic!("the access point answered {other:?}"),
        }
    }
}
