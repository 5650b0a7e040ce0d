//! Property tests: arbitrary interleavings of datagrams, connections, bytes (padded, short,
//! broken, pipelined, split) and time from several clients never amplify, never write to a
//! connection that is not open, and keep every bound; in the end nothing is left.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::wire::{FrameReader, AP_REQUEST_PADDED_LEN};

/// Clients: two of one `/24`, one elsewhere, one IPv6.
fn clients() -> [SocketAddr; 4] {
    [
        "198.51.100.7:1".parse().unwrap(),
        "198.51.100.8:2".parse().unwrap(),
        "203.0.113.9:3".parse().unwrap(),
        "[2001:db8::1]:4".parse().unwrap(),
    ]
}

#[derive(Clone, Debug)]
enum Bytes {
    Raw(Vec<u8>),
    /// A request with this much padding (cut to what fits), `count` times.
    Request {
        padding: u16,
        count: usize,
    },
}

impl Bytes {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Bytes::Raw(b) => b.clone(),
            Bytes::Request { padding, count } => {
                let mut msg = Message::padded_ap_request(7, "app", FLAG_UDP_MEDIA);
                if let Message::ApRequest { padding_len, .. } = &mut msg {
                    *padding_len = (*padding).min(*padding_len);
                }
                msg.to_bytes().unwrap().repeat(*count)
            }
        }
    }
}

fn bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400).prop_map(Bytes::Raw),
        (prop_oneof![Just(u16::MAX), 0..400u16], 1..20usize)
            .prop_map(|(padding, count)| Bytes::Request { padding, count }),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Datagram(usize, Bytes),
    Accept(usize),
    /// Bytes on the `n`-th most recent connection, delivered in pieces of `chunk` bytes.
    Tcp(usize, Bytes, usize),
    Closed(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..4usize, bytes()).prop_map(|(c, b)| Op::Datagram(c, b)),
        2 => (0..4usize).prop_map(Op::Accept),
        4 => (0..4usize, bytes(), 1..400usize).prop_map(|(n, b, k)| Op::Tcp(n, b, k)),
        1 => (0..4usize).prop_map(Op::Closed),
        2 => (0..4_000u64).prop_map(Op::Advance),
    ]
}

proptest! {
    #[test]
    fn never_amplifies_and_keeps_every_bound(ops in prop::collection::vec(op(), 1..60)) {
        let mut cfg = config();
        cfg.max_tcp_connections = 3;
        cfg.max_tcp_connections_per_ip = 2;
        cfg.max_tcp_connections_per_prefix = 2;
        cfg.max_requests_per_ip = 6;
        cfg.max_requests_per_prefix = 9;
        cfg.max_tracked_ips = 2;
        cfg.max_tracked_prefixes = 2;
        cfg.tcp_idle_timeout = Duration::from_secs(2);
        cfg.max_requests_per_tcp_connection = 5;
        cfg.rate_window = Duration::from_secs(3);
        let mut h = Harness::new(cfg);
        let mut ids: Vec<u64> = Vec::new();
        let mut open: BTreeSet<u64> = BTreeSet::new();
        // Per connection: bytes delivered, bytes answered.
        let mut budget: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
        for op in ops {
            let out = match &op {
                Op::Datagram(c, b) => {
                    let data = b.bytes();
                    let out = h.udp(clients()[*c], &data);
                    if let Some(reply) = udp_reply(&out, clients()[*c]) {
                        prop_assert!(reply.len() <= data.len());
                    }
                    out
                }
                Op::Accept(c) => {
                    let id = ids.len() as u64 + 1;
                    ids.push(id);
                    let out = h.accept(id, clients()[*c]);
                    if out.is_empty() {
                        open.insert(id);
                        budget.insert(id, (0, 0));
                    }
                    out
                }
                Op::Tcp(n, b, chunk) => {
                    let Some(&id) = ids.iter().rev().nth(*n % ids.len().max(1)) else {
                        continue;
                    };
                    let data = b.bytes();
                    let mut out = Vec::new();
                    for piece in data.chunks(*chunk) {
                        if let Some(entry) = budget.get_mut(&id) {
                            entry.0 += piece.len();
                        }
                        out.extend(h.tcp(id, piece));
                    }
                    out
                }
                Op::Closed(n) => {
                    let Some(&id) = ids.iter().rev().nth(*n % ids.len().max(1)) else {
                        continue;
                    };
                    open.remove(&id);
                    h.closed(id)
                }
                Op::Advance(ms) => h.advance(Duration::from_millis(*ms)),
            };
            for o in &out {
                match o {
                    ApOutput::TcpSend { conn, data } => {
                        prop_assert!(open.contains(&conn.0), "{op:?}: send on {conn:?}");
                        prop_assert!(data.len() <= AP_REQUEST_PADDED_LEN);
                        let entry = budget.get_mut(&conn.0).unwrap();
                        entry.1 += data.len();
                        prop_assert!(entry.1 <= entry.0, "amplification on {conn:?}");
                    }
                    ApOutput::TcpClose { conn } => {
                        let refused_now = matches!(op, Op::Accept(_)) && !open.contains(&conn.0);
                        prop_assert!(open.remove(&conn.0) || refused_now, "close of {conn:?}");
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(h.ap.tcp_connection_count(), open.len());
            prop_assert!(open.len() <= 3);
            prop_assert!(h.ap.buffered_bytes() <= open.len() * FrameReader::CAPACITY);
            let (a, n) = h.ap.tracked_clients();
            prop_assert!(a <= 2 && n <= 2);
        }
        h.advance(Duration::from_secs(60));
        prop_assert_eq!(h.ap.tcp_connection_count(), 0);
        prop_assert_eq!(h.ap.tracked_clients(), (0, 0));
        prop_assert_eq!(h.ap.poll_timeout(), None);
    }
}
