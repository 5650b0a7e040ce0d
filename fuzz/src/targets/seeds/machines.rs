//! The seeds of the state-machine targets, `relay` and `client`: scenario scripts, each a
//! path through the machine that short random inputs would rarely find.

use std::net::SocketAddr;

use cloudproxy_core::socks5::{encode_udp_datagram, Address};
use cloudproxy_core::wire::ErrorCode;

use super::super::{client, relay};
use super::{encode_with, seed, Seed};

/// The relay seeds' set-up: the seed's SD-RTN blocks, UDP ports on, 4 sessions (2 per
/// address), 4 pending handshakes, 8 nonces, 2 error replies per second, 16 s idle, 10 s
/// handshake, 1 KiB buffered per session, 8 access-point requests per window.
const RELAY_SETUP: relay::Setup = relay::Setup {
    a: 0x38,
    b: 0x5F,
    c: 0x9F,
    d: 0x3D,
};

pub(super) fn relay_seeds() -> Vec<Seed> {
    use relay::{Dest, Op, Payload, Script, TicketSpec};
    let t = "relay";
    let script = |ops: Vec<Op>| {
        Script {
            setup: RELAY_SETUP,
            ops,
        }
        .encode()
    };
    let own = |nonce: u8| TicketSpec {
        client: 0,
        lifetime_ms: 60_000,
        nonce,
        tamper: 0,
        app: 0,
        from_ap: 0,
    };
    let open = |ticket: TicketSpec, dest: u8, extra: &[u8]| Payload::TunnelOpen {
        ticket,
        dest: Dest::Known(dest),
        extra: extra.to_vec(),
    };
    let tunnel = |nonce: u8| {
        vec![
            Op::Accept { client: 0 },
            Op::Tcp {
                conn: 0,
                payload: open(own(nonce), 0, b"early signalling"),
            },
            Op::UpConnected { pick: 0 },
        ]
    };
    let media = |dest: Dest| Op::Udp {
        client: 0,
        port: 0,
        payload: Payload::Media {
            session: 0,
            dest,
            payload: b"\x80\x60rtp".to_vec(),
        },
    };

    let mut happy = tunnel(1);
    happy.extend([
        Op::UpData {
            pick: 0,
            data: b"signalling from SD-RTN".to_vec(),
        },
        Op::Tcp {
            conn: 0,
            payload: Payload::Raw(b"signalling to SD-RTN".to_vec()),
        },
        media(Dest::Known(1)),
        Op::UdpUp {
            pick: 0,
            from: Dest::Known(1),
            data: b"rtp back".to_vec(),
        },
        Op::Udp {
            client: 1,
            port: 0,
            payload: Payload::Keepalive { session: 0, seq: 1 },
        },
        Op::Advance { ms: 5_000 },
        Op::Udp {
            client: 0,
            port: 0,
            payload: Payload::Close {
                session: 0,
                reason: 0,
            },
        },
    ]);

    // A spliced tunnel: the driver reports what moved, the idle timer follows; a report for
    // a connection that is not a tunnel, and a late one, are ignored.
    let mut spliced = tunnel(2);
    spliced.extend([
        Op::Activity {
            conn: 0,
            up: 1200,
            down: 64_000,
        },
        Op::Advance { ms: 12_000 },
        Op::Activity {
            conn: 0,
            up: 0,
            down: 10,
        },
        Op::Accept { client: 2 },
        Op::Activity {
            conn: 0,
            up: 5,
            down: 5,
        },
        Op::Advance { ms: 20_000 },
        Op::Activity {
            conn: 1,
            up: 7,
            down: 7,
        },
    ]);
    // Two sessions send media; the first one's upstream socket cannot be bound.
    let mut bind_fails = tunnel(3);
    bind_fails.extend([
        media(Dest::Known(1)),
        Op::Accept { client: 1 },
        Op::Tcp {
            conn: 0,
            payload: open(own(4), 0, b""),
        },
        Op::UpConnected { pick: 0 },
        Op::Udp {
            client: 1,
            port: 0,
            payload: Payload::Media {
                session: 0,
                dest: Dest::Known(1),
                payload: b"rtp".to_vec(),
            },
        },
        Op::BindFailed { pick: 1 },
        media(Dest::Known(1)),
        Op::BindFailed { pick: 1 },
    ]);
    // A media channel, then a second one for the same session: it replaces the first.
    let mut replaced = tunnel(5);
    for _ in 0..2 {
        replaced.extend([
            Op::Accept { client: 0 },
            Op::Tcp {
                conn: 0,
                payload: Payload::ChannelOpen { session: 0 },
            },
            Op::Tcp {
                conn: 0,
                payload: Payload::Keepalive { session: 0, seq: 7 },
            },
        ]);
    }
    replaced.push(Op::UdpUp {
        pick: 0,
        from: Dest::Known(1),
        data: b"to the newer channel".to_vec(),
    });

    let ap_request = |app, flags| Op::Ap {
        client: 0,
        payload: Payload::ApRequest {
            app,
            flags,
            request_id: 0x0102_0304,
        },
    };
    let mut via_ap = vec![ap_request(0, 1)];
    via_ap.extend([
        Op::Accept { client: 1 },
        Op::Tcp {
            conn: 0,
            payload: open(
                TicketSpec {
                    from_ap: 1,
                    ..own(0)
                },
                0,
                b"",
            ),
        },
        Op::UpConnected { pick: 0 },
        // The same ticket again: a replay.
        Op::Accept { client: 0 },
        Op::Tcp {
            conn: 0,
            payload: open(
                TicketSpec {
                    from_ap: 1,
                    ..own(0)
                },
                1,
                b"",
            ),
        },
    ]);

    let mut forbidden = tunnel(2);
    for dest in [4u8, 5, 6, 7, 8, 9, 12] {
        forbidden.push(media(Dest::Known(dest)));
        forbidden.push(Op::Accept { client: 2 });
        forbidden.push(Op::Tcp {
            conn: 0,
            payload: open(own(10 + dest), dest, b""),
        });
    }
    forbidden.push(media(Dest::Raw(SocketAddr::from(([127, 0, 0, 1], 22)))));

    let mut refused_tickets = Vec::new();
    for spec in [
        own(3),
        own(3),
        TicketSpec {
            lifetime_ms: 0,
            ..own(4)
        },
        TicketSpec {
            tamper: 20,
            ..own(5)
        },
        TicketSpec {
            client: 3,
            ..own(6)
        },
        TicketSpec { app: 2, ..own(7) },
    ] {
        refused_tickets.push(Op::Accept { client: 0 });
        refused_tickets.push(Op::Tcp {
            conn: 0,
            payload: open(spec, 0, b""),
        });
    }
    refused_tickets.push(Op::UpFailed { pick: 0 });

    let mut channel = tunnel(8);
    channel.extend([
        Op::Accept { client: 1 },
        Op::Tcp {
            conn: 0,
            payload: Payload::ChannelOpen { session: 0 },
        },
        Op::Tcp {
            conn: 0,
            payload: Payload::Media {
                session: 0,
                dest: Dest::Known(1),
                payload: b"media over tcp".to_vec(),
            },
        },
        Op::Tcp {
            conn: 0,
            payload: Payload::Keepalive { session: 0, seq: 9 },
        },
        Op::UdpUp {
            pick: 0,
            from: Dest::Known(1),
            data: b"rtp back over tcp".to_vec(),
        },
        Op::TcpClosed { conn: 0 },
        Op::UpClosed { pick: 0 },
    ]);

    let mut idle = tunnel(9);
    idle.extend([
        media(Dest::Known(1)),
        Op::Advance { ms: 65_535 },
        media(Dest::Known(1)),
    ]);

    let garbage = vec![
        Op::Accept { client: 2 },
        Op::Tcp {
            conn: 0,
            payload: Payload::Raw(b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n".to_vec()),
        },
        Op::Accept { client: 3 },
        Op::Tcp {
            conn: 0,
            payload: Payload::Cut {
                inner: Box::new(open(own(11), 0, b"")),
                at: 40,
            },
        },
        Op::Advance { ms: 12_000 },
        Op::Udp {
            client: 4,
            port: 255,
            payload: Payload::Raw(b"\xc1\x0d\x01\x20\x00\x00".to_vec()),
        },
        ap_request(1, 0x80),
        Op::Ap {
            client: 3,
            payload: Payload::Raw(b"\xc1\x0d\x02\x01".to_vec()),
        },
    ];

    // Early signalling beyond the session's buffer while the upstream connection is opening.
    let mut overflow = vec![
        Op::Accept { client: 3 },
        Op::Tcp {
            conn: 0,
            payload: open(own(12), 3, &[0xAB; 255]),
        },
    ];
    for _ in 0..4 {
        overflow.push(Op::Tcp {
            conn: 0,
            payload: Payload::Raw(vec![0xCD; 255]),
        });
    }
    overflow.push(Op::UpConnected { pick: 0 });

    // The access point serving `demo-app` only, one request per address per window.
    let strict_ap = Script {
        setup: relay::Setup {
            a: RELAY_SETUP.a | 0x80,
            d: RELAY_SETUP.d & 0x07,
            ..RELAY_SETUP
        },
        ops: vec![
            ap_request(0, 1),
            ap_request(0, 1),
            Op::Ap {
                client: 2,
                payload: Payload::ApRequest {
                    app: 1,
                    flags: 0,
                    request_id: 9,
                },
            },
            Op::Advance { ms: 10_001 },
            ap_request(0, 0),
        ],
    }
    .encode();

    vec![
        seed(t, "ap_request.bin", script(vec![ap_request(0, 1)])),
        seed(t, "ap_rate_limit_and_unknown_app.bin", strict_ap),
        seed(t, "buffer_overflow_while_connecting.bin", script(overflow)),
        seed(t, "tunnel_media_keepalive_close.bin", script(happy)),
        seed(t, "ap_ticket_then_replay.bin", script(via_ap)),
        seed(t, "forbidden_destinations.bin", script(forbidden)),
        seed(t, "refused_tickets.bin", script(refused_tickets)),
        seed(t, "tcp_media_channel.bin", script(channel)),
        seed(t, "idle_timeout.bin", script(idle)),
        seed(t, "garbage_and_cut_frames.bin", script(garbage)),
        seed(t, "spliced_tunnel_activity_then_idle.bin", script(spliced)),
        seed(t, "udp_bind_fails_for_one_session.bin", script(bind_fails)),
        seed(
            t,
            "second_media_channel_replaces_the_first.bin",
            script(replaced),
        ),
    ]
}

pub(super) fn client_seeds() -> Vec<Seed> {
    use client::{Op, Payload, Script, Setup};
    let t = "client";
    let script = |a: u8, ops: Vec<Op>| {
        Script {
            setup: Setup {
                a,
                b: 0x3F,
                c: 1,
                d: 0,
            },
            ops,
        }
        .encode()
    };
    // Beyond the seed: bit 7 of `a` and the fourth byte.
    let beyond = |a: u8, d: u8, ops: Vec<Op>| {
        Script {
            setup: Setup {
                a: a | 0x80,
                b: 0x3F,
                c: 1,
                d,
            },
            ops,
        }
        .encode()
    };
    let accept = |udp_port| Payload::TunnelAccept {
        session_id: 0x5E55_1011_0000_0001,
        udp_port,
        keepalive_ms: 5_000,
    };
    let ap_response = Payload::ApResponse {
        relays: vec![0, 1],
        lifetime_ms: 60_000,
        stale: false,
    };

    let domain_happy = vec![
        Op::Resolved {
            name: 0,
            addrs: vec![0, 1],
        },
        Op::UdpData {
            from: 0,
            payload: ap_response.clone(),
        },
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: Payload::Concat(
                Box::new(accept(4500)),
                Box::new(Payload::Raw(b"signalling".to_vec())),
            ),
        },
        Op::SendSignalling {
            data: b"hello SD-RTN".to_vec(),
        },
        Op::SendMedia {
            data: b"\x80\x60rtp".to_vec(),
        },
        Op::UdpData {
            from: 0,
            payload: Payload::KeepaliveAck { echo: true, seq: 0 },
        },
        Op::UdpData {
            from: 0,
            payload: Payload::Media {
                from: 0,
                payload: b"rtp back".to_vec(),
            },
        },
        Op::WaitForTimer,
        Op::UdpData {
            from: 0,
            payload: Payload::Close { reason: 0 },
        },
        Op::WaitForTimer,
        Op::Leave,
    ];

    let ip_list_tcp = vec![
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: ap_response.clone(),
        },
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: accept(0),
        },
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: Payload::ChannelAccept,
        },
        Op::SendMedia {
            data: b"media over tcp".to_vec(),
        },
        Op::TcpData {
            conn: 0,
            payload: Payload::Concat(
                Box::new(Payload::Media {
                    from: 0,
                    payload: b"rtp".to_vec(),
                }),
                Box::new(Payload::KeepaliveAck { echo: true, seq: 0 }),
            ),
        },
        Op::TcpClosed { conn: 1 },
        Op::WaitForTimer,
    ];

    let socks = vec![
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: Payload::Socks5Method { method: 2 },
        },
        Op::TcpData {
            conn: 0,
            payload: Payload::Socks5Auth { status: 0 },
        },
        Op::TcpData {
            conn: 0,
            payload: Payload::Socks5Reply {
                code: 0,
                bound: 0,
                port: 4001,
            },
        },
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: Payload::Concat(
                Box::new(Payload::Socks5Method { method: 2 }),
                Box::new(Payload::Socks5Auth { status: 0 }),
            ),
        },
        Op::TcpData {
            conn: 0,
            payload: Payload::Socks5Reply {
                code: 0,
                bound: 1,
                port: 5000,
            },
        },
        Op::SendMedia {
            data: b"rtp".to_vec(),
        },
        Op::UdpData {
            from: 0,
            payload: Payload::Raw(encode_with(|o| {
                encode_udp_datagram(
                    &Address::Ip(SocketAddr::from(([52, 80, 192, 229], 4700))),
                    b"rtp back",
                    o,
                )
            })),
        },
        Op::TcpData {
            conn: 1,
            payload: Payload::Raw(b"signalling".to_vec()),
        },
        Op::TcpClosed { conn: 0 },
        Op::WaitForTimer,
    ];

    let direct = vec![
        Op::TcpConnected { conn: 0 },
        Op::SendMedia {
            data: b"rtp".to_vec(),
        },
        Op::Wait { ms: 3_000 },
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: Payload::SdrtnFrame {
                payload: b"rtp over tcp".to_vec(),
            },
        },
        Op::SendMedia {
            data: b"rtp".to_vec(),
        },
        Op::TcpClosed { conn: 1 },
        Op::WaitForTimer,
        Op::WaitForTimer,
    ];

    let refused = vec![
        Op::Resolved {
            name: 0,
            addrs: vec![3, 4],
        },
        Op::UdpData {
            from: 0,
            payload: Payload::Error {
                code: ErrorCode::UnknownApp.to_u16(),
                reason: b"unknown application id".to_vec(),
            },
        },
        Op::SendSignalling {
            data: b"dropped".to_vec(),
        },
        Op::WaitForTimer,
        Op::Leave,
    ];

    let give_up = {
        let mut ops = vec![Op::ResolveFailed { name: 0 }];
        for _ in 0..4 {
            ops.push(Op::WaitForTimer);
            ops.push(Op::Resolved {
                name: 0,
                addrs: Vec::new(),
            });
        }
        ops.push(Op::Wait { ms: 20_000 });
        ops
    };

    let http_by_name = vec![
        Op::Resolved {
            name: 0,
            addrs: vec![0],
        },
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: Payload::Http { kind: 1 },
        },
        Op::TcpData {
            conn: 0,
            payload: Payload::Concat(
                Box::new(Payload::Http { kind: 0 }),
                Box::new(Payload::Raw(b"signalling".to_vec())),
            ),
        },
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: Payload::Http { kind: 1 },
        },
        Op::TcpData {
            conn: 0,
            payload: Payload::Concat(
                Box::new(Payload::Http { kind: 0 }),
                Box::new(Payload::SdrtnFrame {
                    payload: b"rtp".to_vec(),
                }),
            ),
        },
        Op::SendMedia {
            data: b"rtp".to_vec(),
        },
        Op::TcpClosed { conn: 0 },
        Op::WaitForTimer,
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: Payload::Http { kind: 103 },
        },
        Op::WaitForTimer,
    ];

    let automatic = vec![
        Op::WaitForTimer,
        Op::Resolved {
            name: 0,
            addrs: vec![0, 1],
        },
        Op::WaitForTimer,
        Op::UdpData {
            from: 0,
            payload: ap_response.clone(),
        },
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: accept(4500),
        },
        Op::UdpData {
            from: 0,
            payload: Payload::KeepaliveAck { echo: true, seq: 0 },
        },
        Op::WaitForTimer,
        Op::WaitForTimer,
        Op::WaitForTimer,
        Op::WaitForTimer,
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: Payload::ChannelAccept,
        },
        Op::NetworkChanged { kind: 0 },
        Op::NetworkChanged { kind: 1 },
        Op::WaitForTimer,
        Op::TcpFailed { conn: 0 },
        Op::WaitForTimer,
    ];

    let tcp_443 = vec![
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: ap_response.clone(),
        },
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: accept(4500),
        },
        Op::TcpConnected { conn: 0 },
        Op::TcpData {
            conn: 0,
            payload: Payload::ChannelAccept,
        },
        Op::SendMedia {
            data: b"rtp".to_vec(),
        },
        Op::NetworkChanged { kind: 0 },
        Op::NetworkChanged { kind: 1 },
        Op::WaitForTimer,
        Op::Leave,
    ];

    vec![
        seed(
            t,
            "cloud_domain_udp_happy_path.bin",
            script(0x02, domain_happy),
        ),
        seed(
            t,
            "http_proxy_by_name_407_then_tunnels.bin",
            beyond(0x00, 0x02, http_by_name),
        ),
        seed(
            t,
            "automatic_falls_back_races_then_udp_loss.bin",
            beyond(0x02, 0x03 | 0x04 | (2 << 3) | 0x20, automatic),
        ),
        seed(t, "force_tcp_443_only.bin", beyond(0x03, 1 << 3, tcp_443)),
        seed(t, "cloud_ip_list_tcp_only.bin", script(0x07, ip_list_tcp)),
        seed(t, "socks5_userpass_udp_associate.bin", script(0x09, socks)),
        seed(t, "direct_udp_falls_back_to_tcp.bin", script(0x00, direct)),
        seed(t, "ap_refuses_unknown_app.bin", script(0x02, refused)),
        seed(t, "dns_fails_then_gives_up.bin", script(0x12, give_up)),
    ]
}
