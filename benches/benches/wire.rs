//! The wire codecs, every frame kind: encode into a reused buffer and decode it back, against
//! a `memcpy` of the same bytes into a reused buffer, in one criterion group per kind.
//! Throughput: the frame's bytes.
//!
//! Run: `cargo bench -p cloudproxy-benches --bench wire`

use std::hint::black_box;
use std::net::SocketAddr;

use cloudproxy_core::time::UnixTime;
use cloudproxy_core::wire::{CloseReason, ErrorCode, Message, RelayInfo, Ticket, TicketKey};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn frames() -> Vec<(&'static str, Message)> {
    let key = TicketKey::from_bytes([0x4b; 32]);
    let ticket = Ticket::issue(
        &key,
        "demo-app",
        "203.0.113.7".parse().unwrap(),
        UnixTime::from_millis(1_700_000_060_000),
        [0x11; 16],
    )
    .unwrap();
    let peer: SocketAddr = "198.51.100.20:8443".parse().unwrap();
    let relay = |last| RelayInfo {
        addr: format!("192.0.2.{last}").parse().unwrap(),
        tcp_port: 4000,
        udp_port: 4500,
    };
    vec![
        (
            "ap_request",
            Message::padded_ap_request(0x0102_0304, "demo-app", 1),
        ),
        (
            "ap_response",
            Message::ApResponse {
                request_id: 1,
                ticket: ticket.clone(),
                ticket_lifetime_ms: 60_000,
                relays: vec![relay(10), relay(11)],
            },
        ),
        (
            "error",
            Message::Error {
                code: ErrorCode::TicketExpired,
                reason: "expired".into(),
            },
        ),
        (
            "tunnel_open",
            Message::TunnelOpen {
                ticket,
                destination: peer,
            },
        ),
        (
            "tunnel_accept",
            Message::TunnelAccept {
                session_id: 0x0123_4567_89ab_cdef,
                udp_port: 4500,
                keepalive_interval_ms: 5000,
                idle_timeout_ms: 30_000,
            },
        ),
        (
            "media_channel_open",
            Message::MediaChannelOpen { session_id: 7 },
        ),
        (
            "media_channel_accept",
            Message::MediaChannelAccept { session_id: 7 },
        ),
        (
            "media_data",
            Message::MediaData {
                session_id: 7,
                peer,
                payload: vec![0x5a; 1200],
            },
        ),
        (
            "keepalive",
            Message::Keepalive {
                session_id: 7,
                seq: 9,
            },
        ),
        (
            "keepalive_ack",
            Message::KeepaliveAck {
                session_id: 7,
                seq: 9,
            },
        ),
        (
            "close",
            Message::Close {
                session_id: 7,
                reason: CloseReason::UpstreamClosed,
            },
        ),
    ]
}

fn codecs_vs_memcpy(c: &mut Criterion) {
    for (name, msg) in frames() {
        let bytes = msg.to_bytes().expect("every sample frame encodes");
        let mut group = c.benchmark_group(format!("wire_{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut copy = vec![0u8; bytes.len()];
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(&bytes));
                black_box(&copy);
            })
        });
        let mut out = Vec::with_capacity(bytes.len());
        group.bench_function("encode_decode", |b| {
            b.iter(|| {
                out.clear();
                black_box(&msg).encode(&mut out).expect("encodes");
                black_box(Message::decode_datagram(black_box(&out)).expect("decodes"))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, codecs_vs_memcpy);
criterion_main!(benches);
