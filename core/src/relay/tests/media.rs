//! Media over UDP and over TCP media channels, keepalives and idle expiry.

use super::*;
use crate::wire::{CloseReason, FrameReader};

/// Alice's UDP address: same IP as her tunnel, another port (her NAT picked it).
fn alice_udp() -> SocketAddr {
    SocketAddr::new(alice().ip(), 40000)
}

fn media(session_id: u64, peer: SocketAddr, payload: &[u8]) -> Message {
    Message::MediaData {
        session_id,
        peer,
        payload: payload.to_vec(),
    }
}

#[test]
fn udp_media_flows_both_ways() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    let outs = h.udp(
        t.udp_port,
        alice_udp(),
        &media(t.session_id, edge(), b"rtp-1"),
    );
    let [RelayOutput::UdpBind { alloc }, RelayOutput::UdpToUpstream {
        alloc: a2,
        to,
        data,
    }] = outs.as_slice()
    else {
        panic!("{outs:?}");
    };
    assert_eq!((a2, *to, data.as_slice()), (alloc, edge(), &b"rtp-1"[..]));
    let alloc = *alloc;
    // The same allocation serves the next packets, to any SD-RTN peer.
    let other_edge: SocketAddr = "52.80.192.1:4701".parse().unwrap();
    let outs = h.udp(
        t.udp_port,
        alice_udp(),
        &media(t.session_id, other_edge, b"rtp-2"),
    );
    assert_eq!(
        udp_to_upstream(&outs),
        [(alloc, other_edge, b"rtp-2".to_vec())]
    );

    let outs = h.input(RelayInput::UdpFromUpstream {
        alloc,
        from: edge(),
        data: b"rtp-back",
    });
    assert_eq!(
        udp_to_clients(&outs),
        [(
            t.udp_port,
            alice_udp(),
            media(t.session_id, edge(), b"rtp-back")
        )]
    );
    // Alice's NAT rebinds: the latest valid source address wins.
    let rebound = SocketAddr::new(alice().ip(), 40001);
    h.udp(4600, rebound, &media(t.session_id, edge(), b"rtp-3"));
    let outs = h.input(RelayInput::UdpFromUpstream {
        alloc,
        from: edge(),
        data: b"x",
    });
    assert_eq!(udp_to_clients(&outs)[0].0, 4600);
    assert_eq!(udp_to_clients(&outs)[0].1, rebound);

    let c = h.relay.counters();
    assert_eq!((c.udp_packets_up, c.udp_bytes_up), (3, 15));
    assert_eq!((c.udp_packets_down, c.udp_bytes_down), (2, 9));
}

#[test]
fn udp_from_strangers_and_unknown_sessions_is_dropped() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    let stranger: SocketAddr = "100.200.9.9:40000".parse().unwrap();
    // The right session id from the wrong address, an unknown id, garbage, a client message
    // of the wrong kind.
    let msg = media(t.session_id, edge(), b"");
    let outs = h.udp(t.udp_port, stranger, &msg);
    assert!(udp_to_upstream(&outs).is_empty());
    // A stranger (no session here) gets silence, not even an Error.
    assert!(udp_to_clients(&outs).is_empty());
    // The session's own client, with a wrong id, is told: an Error never larger than the
    // request.
    let msg = media(t.session_id ^ 1, edge(), b"");
    let outs = h.udp(t.udp_port, alice_udp(), &msg);
    let replies = udp_to_clients(&outs);
    assert_eq!(replies.len(), 1);
    assert!(matches!(
        replies[0].2,
        Message::Error {
            code: ErrorCode::UnknownSession,
            ..
        }
    ));
    let sent_len = match &outs[..] {
        [.., RelayOutput::UdpToClient { data, .. }] => data.len(),
        _ => unreachable!(),
    };
    assert!(
        sent_len <= msg.encoded_len(),
        "never larger than the request"
    );
    let outs = h.udp(
        t.udp_port,
        alice_udp(),
        &media(t.session_id ^ 1, edge(), b"x"),
    );
    assert!(udp_to_upstream(&outs).is_empty());
    let outs = h.input(RelayInput::UdpFromClient {
        local_port: t.udp_port,
        from: alice_udp(),
        data: b"\x00\x01garbage",
    });
    assert!(outs.is_empty(), "no answer to garbage");
    let outs = h.udp(
        t.udp_port,
        alice_udp(),
        &Message::MediaChannelOpen {
            session_id: t.session_id,
        },
    );
    assert!(outs.is_empty());
    // A port the relay does not listen on (a confused driver): never answered from.
    let outs = h.udp(4499, alice_udp(), &media(t.session_id, edge(), b"x"));
    assert!(outs.is_empty());
    let c = h.relay.counters();
    assert_eq!(c.udp_dropped_from_client, 6);
    assert_eq!(c.refused_unknown_session, 3);
    assert_eq!(c.udp_error_replies_suppressed, 1);
    assert_eq!(c.udp_packets_up, 0);
    // Alice's own path was never set by the stranger.
    let outs = h.udp(t.udp_port, alice_udp(), &media(t.session_id, edge(), b"ok"));
    assert_eq!(udp_to_upstream(&outs).len(), 1);
}

#[test]
fn udp_error_replies_are_rate_limited_and_never_amplify() {
    let mut cfg = config();
    cfg.max_udp_error_replies_per_sec = 3;
    let mut h = Harness::with(cfg);
    // Only a client of the relay is answered at all: alice has a session.
    h.establish(alice(), sig());
    let ka = Message::Keepalive {
        session_id: 77,
        seq: 1,
    };
    let mut replies = 0;
    for _ in 0..10 {
        for out in h.udp(4500, alice_udp(), &ka) {
            if let RelayOutput::UdpToClient { data, .. } = out {
                assert!(data.len() <= ka.encoded_len());
                replies += 1;
            }
        }
    }
    assert_eq!(replies, 3);
    assert_eq!(h.relay.counters().udp_error_replies_suppressed, 7);
    h.advance(Duration::from_secs(1));
    assert_eq!(udp_to_clients(&h.udp(4500, alice_udp(), &ka)).len(), 1);
}

#[test]
fn media_to_destinations_outside_sdrtn_is_dropped() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    for dest in super::tunnel::forbidden_destinations() {
        let outs = h.udp(t.udp_port, alice_udp(), &media(t.session_id, dest, b"x"));
        assert!(udp_to_upstream(&outs).is_empty(), "{dest}");
        assert!(!outs
            .iter()
            .any(|o| matches!(o, RelayOutput::UdpBind { .. })));
    }
    let n = super::tunnel::forbidden_destinations().len() as u64;
    assert_eq!(h.relay.counters().refused_destination, n);
    assert_eq!(h.relay.counters().udp_dropped_from_client, n);
}

#[test]
fn canary_switch_lets_media_to_forbidden_destinations_through() {
    let mut cfg = config();
    cfg.canary_skip_destination_check = true;
    let mut h = Harness::with(cfg);
    let t = h.establish(alice(), sig());
    let outs = h.udp(
        t.udp_port,
        alice_udp(),
        &media(t.session_id, "127.0.0.1:22".parse().unwrap(), b"x"),
    );
    assert_eq!(udp_to_upstream(&outs).len(), 1);
}

#[test]
fn upstream_datagrams_from_outside_sdrtn_or_unknown_allocs_are_dropped() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    let outs = h.udp(t.udp_port, alice_udp(), &media(t.session_id, edge(), b"x"));
    let (alloc, _, _) = udp_to_upstream(&outs)[0];
    for from in ["10.0.0.1:4700", "8.8.8.8:53", "52.80.192.229:0"] {
        let outs = h.input(RelayInput::UdpFromUpstream {
            alloc,
            from: from.parse().unwrap(),
            data: b"spoof",
        });
        assert!(outs.is_empty(), "{from}");
    }
    let outs = h.input(RelayInput::UdpFromUpstream {
        alloc: AllocId(999),
        from: edge(),
        data: b"x",
    });
    assert!(outs.is_empty());
    let outs = h.input(RelayInput::UdpFromUpstream {
        alloc,
        from: edge(),
        data: &[0; 1501],
    });
    assert!(outs.is_empty(), "too large to carry");
    assert_eq!(h.relay.counters().udp_dropped_from_upstream, 5);
}

#[test]
fn keepalives_are_acked_on_the_path_they_came_from() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    let outs = h.udp(
        4650,
        alice_udp(),
        &Message::Keepalive {
            session_id: t.session_id,
            seq: 41,
        },
    );
    assert_eq!(
        udp_to_clients(&outs),
        [(
            4650,
            alice_udp(),
            Message::KeepaliveAck {
                session_id: t.session_id,
                seq: 41
            }
        )]
    );
    assert_eq!(h.relay.counters().keepalives, 1);
}

#[test]
fn media_channel_over_tcp() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    let (ch, _) = h.accept(SocketAddr::new(alice().ip(), 50001));
    // The open and the first media frame arrive together.
    let mut bytes = Message::MediaChannelOpen {
        session_id: t.session_id,
    }
    .to_bytes()
    .unwrap();
    media(t.session_id, edge(), b"over-tcp")
        .encode(&mut bytes)
        .unwrap();
    let outs = h.tcp(ch, &bytes);
    assert_eq!(
        messages(&tcp_sent(&outs, ch)),
        [Message::MediaChannelAccept {
            session_id: t.session_id
        }]
    );
    let ups = udp_to_upstream(&outs);
    assert_eq!(ups.len(), 1);
    assert_eq!((ups[0].1, ups[0].2.as_slice()), (edge(), &b"over-tcp"[..]));
    let alloc = ups[0].0;
    assert!(events(&outs)
        .iter()
        .any(|e| matches!(e, RelayEvent::MediaChannelOpened { .. })));

    // Replies come back framed on the channel; keepalives too.
    let outs = h.input(RelayInput::UdpFromUpstream {
        alloc,
        from: edge(),
        data: b"back",
    });
    assert_eq!(
        messages(&tcp_sent(&outs, ch)),
        [media(t.session_id, edge(), b"back")]
    );
    // A keepalive split across two segments.
    let ka = Message::Keepalive {
        session_id: t.session_id,
        seq: 3,
    }
    .to_bytes()
    .unwrap();
    assert!(h.tcp(ch, &ka[..5]).is_empty());
    let outs = h.tcp(ch, &ka[5..]);
    assert_eq!(
        messages(&tcp_sent(&outs, ch)),
        [Message::KeepaliveAck {
            session_id: t.session_id,
            seq: 3
        }]
    );

    // A second channel replaces the first (whose client may not know it died): the old one
    // is closed without a word, media goes on the new one.
    let (ch2, _) = h.accept(alice());
    let outs = h.send(
        ch2,
        &Message::MediaChannelOpen {
            session_id: t.session_id,
        },
    );
    assert!(closes(&outs, ch) && !closes(&outs, ch2));
    assert!(tcp_sent(&outs, ch).is_empty());
    assert_eq!(
        messages(&tcp_sent(&outs, ch2)),
        [Message::MediaChannelAccept {
            session_id: t.session_id
        }]
    );
    assert_eq!(h.relay.counters().media_channels_replaced, 1);
    let outs = h.input(RelayInput::UdpFromUpstream {
        alloc,
        from: edge(),
        data: b"on the new one",
    });
    assert_eq!(
        messages(&tcp_sent(&outs, ch2)),
        [media(t.session_id, edge(), b"on the new one")]
    );
    let ch = ch2;
    // Channels from strangers or for unknown sessions are refused.
    let (ch3, _) = h.accept(bob());
    let outs = h.send(
        ch3,
        &Message::MediaChannelOpen {
            session_id: t.session_id,
        },
    );
    assert_eq!(refusal(&outs, ch3), Some(ErrorCode::UnknownSession));
    let (ch4, _) = h.accept(alice());
    let outs = h.send(ch4, &Message::MediaChannelOpen { session_id: 12345 });
    assert_eq!(refusal(&outs, ch4), Some(ErrorCode::UnknownSession));

    // A frame for another session closes the channel, not the session; UDP takes over.
    h.udp(
        t.udp_port,
        alice_udp(),
        &Message::Keepalive {
            session_id: t.session_id,
            seq: 4,
        },
    );
    let outs = h.send(
        ch,
        &Message::Keepalive {
            session_id: 1,
            seq: 1,
        },
    );
    assert_eq!(refusal(&outs, ch), Some(ErrorCode::UnknownSession));
    assert_eq!(h.relay.session_count(), 1);
    let outs = h.input(RelayInput::UdpFromUpstream {
        alloc,
        from: edge(),
        data: b"via udp",
    });
    assert_eq!(udp_to_clients(&outs)[0].1, alice_udp());
    // And a new channel may be opened.
    let (ch5, _) = h.accept(alice());
    let outs = h.send(
        ch5,
        &Message::MediaChannelOpen {
            session_id: t.session_id,
        },
    );
    assert!(!closes(&outs, ch5));
    assert_eq!(h.relay.counters().media_channels_opened, 3);
}

#[test]
fn media_channel_garbage_closes_only_the_channel() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    let (ch, _) = h.accept(alice());
    h.send(
        ch,
        &Message::MediaChannelOpen {
            session_id: t.session_id,
        },
    );
    let outs = h.tcp(ch, &[0xAB; 64]);
    assert_eq!(refusal(&outs, ch), Some(ErrorCode::Malformed));
    assert!(!closes(&outs, t.conn));
    assert_eq!(h.relay.session_count(), 1);
    // A closed channel frees the slot.
    let (ch2, _) = h.accept(alice());
    h.send(
        ch2,
        &Message::MediaChannelOpen {
            session_id: t.session_id,
        },
    );
    h.input(RelayInput::TcpClosed { conn: ch2 });
    let (ch3, _) = h.accept(alice());
    let outs = h.send(
        ch3,
        &Message::MediaChannelOpen {
            session_id: t.session_id,
        },
    );
    assert!(!closes(&outs, ch3));
}

#[test]
fn media_channel_is_bounded_by_one_frame() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    let (ch, _) = h.accept(alice());
    h.send(
        ch,
        &Message::MediaChannelOpen {
            session_id: t.session_id,
        },
    );
    // A large burst of frames in one segment is consumed whole.
    let mut burst = Vec::new();
    for i in 0..50u8 {
        media(t.session_id, edge(), &[i; 1000])
            .encode(&mut burst)
            .unwrap();
    }
    burst.extend_from_slice(&[0xC1, 0x0D, 1]);
    let outs = h.tcp(ch, &burst);
    assert_eq!(udp_to_upstream(&outs).len(), 50);
    assert_eq!(h.relay.buffered_bytes(), 3);
    assert!(h.relay.buffered_bytes() <= FrameReader::CAPACITY);
}

#[test]
fn idle_sessions_expire_and_release_everything() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    let outs = h.udp(t.udp_port, alice_udp(), &media(t.session_id, edge(), b"x"));
    let (alloc, _, _) = udp_to_upstream(&outs)[0];
    let (ch, _) = h.accept(alice());
    h.send(
        ch,
        &Message::MediaChannelOpen {
            session_id: t.session_id,
        },
    );
    // Traffic keeps it alive: 25 s, then a keepalive, then 25 s.
    assert!(h.advance(Duration::from_secs(25)).is_empty());
    h.udp(
        t.udp_port,
        alice_udp(),
        &Message::Keepalive {
            session_id: t.session_id,
            seq: 1,
        },
    );
    assert!(h.advance(Duration::from_secs(25)).is_empty());
    assert_eq!(h.relay.session_count(), 1);
    let outs = h.advance(Duration::from_secs(5));
    let close = Message::Close {
        session_id: t.session_id,
        reason: CloseReason::IdleTimeout,
    };
    assert_eq!(
        udp_to_clients(&outs),
        [(t.udp_port, alice_udp(), close.clone())]
    );
    assert_eq!(messages(&tcp_sent(&outs, ch)), [close]);
    assert!(closes(&outs, ch) && closes(&outs, t.conn));
    assert!(outs.contains(&RelayOutput::UpstreamClose { conn: t.upstream }));
    assert!(outs.contains(&RelayOutput::UdpRelease { alloc }));
    assert!(events(&outs).contains(&RelayEvent::SessionClosed {
        session_id: t.session_id,
        reason: SessionEnd::IdleTimeout
    }));
    assert_eq!(h.relay.counters().idle_timeouts, 1);
    assert_eq!(h.relay.session_count(), 0);
    assert_eq!(h.relay.connection_count(), 0);
    assert_eq!(h.relay.poll_timeout(), None);
}

#[test]
fn upstream_media_and_tunnel_bytes_count_as_activity() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    for _ in 0..10 {
        h.advance(Duration::from_secs(20));
        h.activity(t.conn, 0, 9);
    }
    // A report of nothing moved is no activity.
    h.activity(t.conn, 0, 0);
    assert_eq!(h.relay.session_count(), 1);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.relay.session_count(), 0);
}

#[test]
fn close_from_the_client_ends_the_session() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    let outs = h.udp(
        t.udp_port,
        alice_udp(),
        &Message::Close {
            session_id: t.session_id,
            reason: CloseReason::Normal,
        },
    );
    assert!(closes(&outs, t.conn));
    assert!(outs.contains(&RelayOutput::UpstreamClose { conn: t.upstream }));
    assert!(events(&outs).contains(&RelayEvent::SessionClosed {
        session_id: t.session_id,
        reason: SessionEnd::ClientSentClose
    }));
    assert_eq!(h.relay.session_count(), 0);
}
