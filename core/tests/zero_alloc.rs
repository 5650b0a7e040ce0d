//! The relay's UDP media path allocates nothing per datagram once its buffer pool is warm,
//! when the driver gives the buffers back (`Relay::recycle`), as the drain contract says.
//!
//! A counting global allocator (its own test crate, so `unsafe` is allowed here and nowhere
//! in core) counts the allocations of the calling thread only, while a span is open; the
//! other tests of this crate run on other threads and are not counted.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::relay::{
    AllocId, ClientConn, Relay, RelayConfig, RelayInput, RelayOutput, POOL_MAX_BUFFERS,
};
use cloudproxy_core::time::{Clocks, Instant, UnixTime};
use cloudproxy_core::wire::{MediaFrame, Message, Ticket, TicketKey, MAX_MEDIA_PAYLOAD};

thread_local! {
    /// Whether this thread's allocations are being counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocations (and reallocations) of this thread while counting.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the calling thread's allocations while it counts.
struct Counting;

impl Counting {
    fn note() {
        // `try_with`: the allocator may run while the thread's locals are being torn down.
        let _ = COUNTING.try_with(|on| {
            if on.get() {
                let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            }
        });
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counting touches
// only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Counting::note();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Counting::note();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Counting::note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations `f` makes on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(Cell::get)
}

const KEY: TicketKey = TicketKey::from_bytes([0x42; 32]);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A relay with one open session and its upstream socket bound, ready to relay media.
struct Relayed {
    relay: Relay,
    now: Instant,
    session_id: u64,
    udp_port: u16,
    alloc: AllocId,
    /// The client's UDP address (its NAT's port for media).
    client: SocketAddr,
    /// The SD-RTN media edge.
    edge: SocketAddr,
    /// The client's datagram, encoded once.
    up: Vec<u8>,
    /// SD-RTN's payload.
    down: Vec<u8>,
    /// Buffers sent, to give back (the driver's send queue, in effect); kept capacity.
    sent: Vec<Vec<u8>>,
}

fn drain(relay: &mut Relay) -> Vec<RelayOutput> {
    std::iter::from_fn(|| relay.poll_output()).collect()
}

impl Relayed {
    /// Opens a session through the machine's own inputs: a tunnel with a ticket, its upstream
    /// connection, then a first media datagram that binds the upstream socket.
    fn open(payload_len: usize) -> Relayed {
        let now = Instant::from_millis(1_000_000);
        let unix = UnixTime::from_millis(1_767_225_600_000);
        let sdrtn = vec![
            "47.74.0.0/16".parse().unwrap(),
            "52.80.192.0/24".parse().unwrap(),
        ];
        let mut relay = Relay::new(
            RelayConfig::new(KEY, sdrtn),
            Entropy::from_u64(0x5eed),
            Clocks::new(now, unix),
        );
        let tunnel_peer = addr("198.18.0.7:50000");
        let conn = ClientConn(1);
        relay.handle_input(
            RelayInput::TcpAccepted {
                conn,
                peer: tunnel_peer,
            },
            now,
        );
        let ticket = Ticket::issue(
            &KEY,
            "demo-app",
            tunnel_peer.ip(),
            unix + Duration::from_secs(60),
            [1; 16],
        )
        .unwrap();
        let open = Message::TunnelOpen {
            ticket,
            destination: addr("47.74.211.17:4001"),
        };
        let data = open.to_bytes().unwrap();
        relay.handle_input(RelayInput::TcpData { conn, data: &data }, now);
        let upstream = drain(&mut relay)
            .into_iter()
            .find_map(|o| match o {
                RelayOutput::UpstreamConnect { conn, .. } => Some(conn),
                _ => None,
            })
            .expect("an upstream connect");
        relay.handle_input(RelayInput::UpstreamConnected { conn: upstream }, now);
        let accept = drain(&mut relay)
            .into_iter()
            .find_map(|o| match o {
                RelayOutput::TcpSend { data, .. } => Message::decode(&data).ok(),
                _ => None,
            })
            .expect("a TunnelAccept");
        let Message::TunnelAccept {
            session_id,
            udp_port,
            ..
        } = accept.0
        else {
            panic!("not a TunnelAccept: {accept:?}");
        };
        let client = addr("198.18.0.7:40000");
        let edge = addr("52.80.192.229:4700");
        let payload = vec![0xAB; payload_len];
        let mut up = Vec::new();
        MediaFrame {
            session_id,
            peer: edge,
            payload: &payload,
        }
        .encode_into(&mut up)
        .unwrap();
        relay.handle_input(
            RelayInput::UdpFromClient {
                local_port: udp_port,
                from: client,
                data: &up,
            },
            now,
        );
        let alloc = drain(&mut relay)
            .into_iter()
            .find_map(|o| match o {
                RelayOutput::UdpBind { alloc } => Some(alloc),
                _ => None,
            })
            .expect("an upstream socket");
        Relayed {
            relay,
            now,
            session_id,
            udp_port,
            alloc,
            client,
            edge,
            up,
            down: vec![0xCD; payload_len],
            sent: Vec::with_capacity(64),
        }
    }

    /// One datagram each way, outputs drained and checked (without allocating: a check that
    /// passes allocates nothing); the buffers are given back after each round when
    /// `recycle`, dropped otherwise.
    fn round(&mut self, recycle: bool) {
        self.now += Duration::from_millis(1);
        self.relay.handle_input(
            RelayInput::UdpFromClient {
                local_port: self.udp_port,
                from: self.client,
                data: &self.up,
            },
            self.now,
        );
        self.relay.handle_input(
            RelayInput::UdpFromUpstream {
                alloc: self.alloc,
                from: self.edge,
                data: &self.down,
            },
            self.now,
        );
        let mut outputs = 0;
        while let Some(out) = self.relay.poll_output() {
            outputs += 1;
            match out {
                RelayOutput::UdpToUpstream { alloc, to, data } => {
                    assert_eq!((alloc, to), (self.alloc, self.edge));
                    assert_eq!(data.len(), self.down.len());
                    assert!(data.iter().all(|&b| b == 0xAB), "the client's payload");
                    self.sent.push(data);
                }
                RelayOutput::UdpToClient {
                    local_port,
                    to,
                    data,
                } => {
                    assert_eq!((local_port, to), (self.udp_port, self.client));
                    let frame = MediaFrame {
                        session_id: self.session_id,
                        peer: self.edge,
                        payload: &self.down,
                    };
                    assert_eq!(frame.encoded_len(), data.len());
                    assert!(data.ends_with(&self.down));
                    self.sent.push(data);
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        assert_eq!(outputs, 2, "one datagram each way");
        for buf in self.sent.drain(..) {
            if recycle {
                self.relay.recycle(buf);
            }
        }
    }
}

const DATAGRAMS: usize = 1_000;

#[test]
fn recycled_buffers_relay_without_allocating() {
    for payload_len in [0, 160, 1_200, MAX_MEDIA_PAYLOAD] {
        let mut r = Relayed::open(payload_len);
        // Warm-up: the pool fills, the output queue reaches its size.
        for _ in 0..8 {
            r.round(true);
        }
        let spare = r.relay.spare_buffers();
        assert!(spare >= 2, "the pool holds the recycled buffers: {spare}");
        let up_before = r.relay.counters().udp_packets_up;
        let down_before = r.relay.counters().udp_packets_down;
        let n = allocations_in(|| {
            for _ in 0..DATAGRAMS {
                r.round(true);
            }
        });
        assert_eq!(
            n, 0,
            "{n} allocations relaying {DATAGRAMS} datagrams each way of {payload_len} bytes"
        );
        let counters = r.relay.counters();
        assert_eq!(counters.udp_packets_up - up_before, DATAGRAMS as u64);
        assert_eq!(counters.udp_packets_down - down_before, DATAGRAMS as u64);
        assert_eq!(r.relay.spare_buffers(), spare, "every buffer came back");
        // The first datagram's (dropped in `open`), then one each way, reused ever since.
        assert_eq!(r.relay.buffers_allocated(), 3);
        // Still relaying correctly afterwards.
        r.round(true);
    }
}

#[test]
fn without_recycling_every_datagram_allocates() {
    let mut r = Relayed::open(1_200);
    for _ in 0..8 {
        r.round(false);
    }
    assert_eq!(r.relay.spare_buffers(), 0);
    let n = allocations_in(|| {
        for _ in 0..DATAGRAMS {
            r.round(false);
        }
    });
    // One buffer per datagram each way: the counter counts.
    assert!(
        n >= 2 * DATAGRAMS as u64,
        "{n} allocations for {DATAGRAMS} datagrams each way"
    );
    assert_eq!(r.relay.counters().udp_packets_down, 8 + DATAGRAMS as u64);
}

#[test]
fn the_pool_stays_bounded() {
    let mut r = Relayed::open(100);
    for _ in 0..(POOL_MAX_BUFFERS + 100) {
        r.relay.recycle(Vec::with_capacity(2_000));
    }
    assert_eq!(r.relay.spare_buffers(), POOL_MAX_BUFFERS);
    r.relay.recycle(Vec::with_capacity(64 * 1024));
    assert_eq!(r.relay.spare_buffers(), POOL_MAX_BUFFERS);
    r.round(true);
    assert_eq!(r.relay.spare_buffers(), POOL_MAX_BUFFERS);
}
