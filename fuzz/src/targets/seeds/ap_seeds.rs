//! The seeds of the `ap` target: scenario scripts through the access point's rules.

use super::super::ap::{Op, Payload, Script, Setup};
use super::{seed, Seed};

/// Set-up: 4 connections, 2 per address, 3 per network; every application; 5 requests per
/// address and 8 per network per 4-s window; 2 tracked addresses and 2 networks; 3-s idle
/// timeout; 4 requests per connection.
const SETUP: Setup = Setup {
    a: 0x27,
    b: 0x65,
    c: 0x32,
    d: 0x0B,
};

pub(super) fn ap_seeds() -> Vec<Seed> {
    let t = "ap";
    let script = |ops: Vec<Op>| Script { setup: SETUP, ops }.encode();
    let request = |app| Payload::Request {
        app,
        flags: 1,
        padding: Payload::PADDED,
    };
    let short = Payload::Request {
        app: 0,
        flags: 1,
        padding: 0,
    };
    let udp = |client, payload| Op::Datagram {
        client,
        local: 0,
        payload,
    };
    let tcp = |payload| Op::Tcp { conn: 0, payload };
    let accept = |client| Op::Accept { client, reuse: 0 };

    let udp_requests = vec![
        udp(0, request(0)),
        udp(4, request(1)),
        udp(0, short.clone()),
        udp(
            2,
            Payload::Request {
                app: 2,
                flags: 0x81,
                padding: Payload::PADDED,
            },
        ),
        udp(2, Payload::Raw(b"GET / HTTP/1.1\r\n".to_vec())),
        udp(
            7,
            Payload::Cut {
                inner: Box::new(request(0)),
                at: 200,
            },
        ),
    ];

    let tcp_split_and_pipelined = vec![
        accept(0),
        tcp(Payload::Cut {
            inner: Box::new(request(0)),
            at: 100,
        }),
        tcp(Payload::Raw(vec![0; 222])),
        tcp(Payload::Repeat {
            count: 5,
            inner: Box::new(request(1)),
        }),
        accept(4),
        tcp(short.clone()),
        accept(6),
        Op::TcpClosed { conn: 0 },
    ];

    // Two from one address, a third refused (per address); a third of its network, a fourth
    // refused (per network); a fourth connection, then one too many (total).
    let mut caps_and_idle: Vec<Op> = [0, 0, 0, 1, 1, 2, 4].into_iter().map(accept).collect();
    caps_and_idle.extend([
        tcp(Payload::Cut {
            inner: Box::new(request(0)),
            at: 10,
        }),
        Op::Advance { ms: 2_000 },
        tcp(Payload::Raw(vec![0; 5])),
        Op::Advance { ms: 1_500 },
        accept(7),
        Op::Accept {
            client: 1,
            reuse: 1,
        },
        Op::Advance { ms: 4_000 },
    ]);

    let mut prefix_flood: Vec<Op> = (0..24).map(|i| udp(i % 4, request(0))).collect();
    prefix_flood.extend((0..12).map(|i| udp(4 + i % 4, request(1))));
    prefix_flood.push(Op::Advance { ms: 4_000 });
    prefix_flood.push(udp(0, request(0)));

    vec![
        seed(t, "udp_padded_short_and_broken.bin", script(udp_requests)),
        seed(
            t,
            "tcp_split_pipelined_and_closed.bin",
            script(tcp_split_and_pipelined),
        ),
        seed(t, "tcp_caps_and_idle_timeouts.bin", script(caps_and_idle)),
        seed(
            t,
            "rate_limit_per_network_then_silence.bin",
            script(prefix_flood),
        ),
    ]
}
