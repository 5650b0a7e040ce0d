//! The cloud proxy (types 1 and 2): happy paths, media fallback, relay refusals.

use super::*;
use crate::wire::ErrorCode;

#[test]
fn type1_happy_path_signalling_and_udp_media_both_ways() {
    let mut h = Harness::new(config(Some(ProxyServer::default_cloud())));
    assert_eq!(h.client.state(), ConnectionState::Connecting);
    assert_eq!(h.take_resolve(), "ap-proxy.agora.io");
    h.assert_quiet();

    // The application talks before the connection exists: queued, in order.
    h.input(ClientInput::SendSignalling { data: b"hello " });
    h.input(ClientInput::SendSignalling { data: b"edge" });
    h.input(ClientInput::SendMedia {
        payload: b"too early",
    });
    assert_eq!(h.client.stats().media_dropped, 1);

    h.advance(ms(20));
    let aps = [ip("47.74.211.17"), ip("52.80.192.229")];
    h.input(ClientInput::Resolved {
        name: "AP-PROXY.agora.io.",
        addrs: &aps,
    });
    // First attempt: first address, first default port, over UDP and TCP at once.
    let ap = addr("47.74.211.17:1080");
    let req = h.take_udp(ap);
    let ap_conn = h.take_connect(ap);
    h.assert_quiet();
    h.connected(ap_conn);
    assert_eq!(request_id(&h.take_sent(ap_conn)), request_id(&req));

    // The UDP answer wins; the TCP attempt is closed.
    h.advance(ms(30));
    let relays = [relay("120.92.118.34", 4500), relay("120.92.18.162", 4501)];
    h.udp_data(ap, &ap_answer(request_id(&req), &relays));
    h.take_close(ap_conn);
    let relay_tcp = addr("120.92.118.34:4000");
    let tunnel = h.take_connect(relay_tcp);
    h.assert_quiet();
    h.connected(tunnel);
    let open = frames(&h.take_sent(tunnel));
    assert!(matches!(
        &open[..],
        [Message::TunnelOpen { destination, .. }] if *destination == sdrtn().signalling
    ));

    // TunnelAccept, with the first signalling bytes in the same segment, cut in two.
    h.advance(ms(50));
    let mut accept = tunnel_accept(77, 4555, 5_000);
    accept.extend_from_slice(b"welcome");
    h.tcp_data(tunnel, &accept[..7]);
    assert_eq!(h.client.state(), ConnectionState::Connecting);
    h.tcp_data(tunnel, &accept[7..]);
    assert_eq!(
        h.take_state(ConnectionState::Connected),
        StateReason::Joined
    );
    assert_eq!(
        h.take_event(),
        ClientEvent::ProxyConnected {
            proxy_type: 1,
            relay: relay_tcp,
            elapsed: ms(100)
        }
    );
    assert_eq!(h.take_signalling(), b"welcome");
    assert_eq!(h.take_sent(tunnel), b"hello edge");
    assert_eq!(h.client.stats().join_time, Some(ms(100)));

    // Media: the probe keepalive goes to the session's UDP port at once.
    let relay_udp = addr("120.92.118.34:4555");
    let probe = Message::decode_datagram(&h.take_udp(relay_udp)).unwrap();
    assert!(matches!(probe, Message::Keepalive { session_id: 77, .. }));
    h.assert_quiet();
    assert_eq!(h.client.media_path(), MediaPath::None);

    h.input(ClientInput::SendMedia { payload: b"rtp-1" });
    let sent = Message::decode_datagram(&h.take_udp(relay_udp)).unwrap();
    assert_eq!(
        sent,
        Message::MediaData {
            session_id: 77,
            peer: sdrtn().media_udp,
            payload: b"rtp-1".to_vec()
        }
    );
    let back = encode(&Message::MediaData {
        session_id: 77,
        peer: sdrtn().media_udp,
        payload: b"rtp-back".to_vec(),
    });
    h.udp_data(relay_udp, &back);
    h.take_path(MediaPath::Udp);
    assert_eq!(h.take_media(), (sdrtn().media_udp, b"rtp-back".to_vec()));

    // Signalling both ways on the tunnel, raw.
    h.input(ClientInput::SendSignalling { data: b"join #1" });
    assert_eq!(h.take_sent(tunnel), b"join #1");
    h.tcp_data(tunnel, b"joined");
    assert_eq!(h.take_signalling(), b"joined");

    // Media from anyone else, or for another session, is ignored.
    h.udp_data(addr("203.0.113.9:4555"), &back);
    let other = encode(&Message::MediaData {
        session_id: 78,
        peer: sdrtn().media_udp,
        payload: b"x".to_vec(),
    });
    h.udp_data(relay_udp, &other);
    h.assert_quiet();

    let stats = h.client.stats().clone();
    assert_eq!((stats.media_sent, stats.media_received), (1, 1));
    assert_eq!(stats.signalling_sent_bytes, 17);
    assert_eq!(stats.signalling_received_bytes, 13);
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.ap_queries, 1);
}

#[test]
fn keepalives_run_on_udp_and_acks_keep_the_relay_alive() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let c = open_cloud(
        &mut h,
        addr("10.1.0.1:8000"),
        &[relay("10.2.0.1", 4600)],
        4600,
    );
    let relay_udp = addr("10.2.0.1:4600");
    let first = h.take_udp(relay_udp);
    let ack = |seq| {
        encode(&Message::KeepaliveAck {
            session_id: c.session_id,
            seq,
        })
    };
    h.udp_data(relay_udp, &ack(1));
    h.take_path(MediaPath::Udp);
    assert!(matches!(
        Message::decode_datagram(&first).unwrap(),
        Message::Keepalive { seq: 1, .. }
    ));
    // Ten intervals, every keepalive answered: still connected.
    for _ in 0..10 {
        assert_eq!(h.fire_next_timer(), ms(1_000));
        let Message::Keepalive { seq, .. } =
            Message::decode_datagram(&h.take_udp(relay_udp)).unwrap()
        else {
            panic!()
        };
        h.udp_data(relay_udp, &ack(seq));
    }
    h.assert_quiet();
    assert_eq!(h.client.state(), ConnectionState::Connected);
}

#[test]
fn udp_silence_falls_back_to_the_tcp_media_channel() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let c = open_cloud(
        &mut h,
        addr("10.1.0.1:8000"),
        &[relay("10.2.0.1", 4600)],
        4600,
    );
    let relay_udp = addr("10.2.0.1:4600");
    h.take_udp(relay_udp);
    h.input(ClientInput::SendMedia { payload: b"lost-1" });
    h.take_udp(relay_udp);

    // Probes are repeated during the probe window, then the window closes.
    let mut waited = Duration::ZERO;
    while !h
        .out
        .iter()
        .any(|o| matches!(o, ClientOutput::TcpConnect { .. }))
    {
        waited += h.fire_next_timer();
        while h
            .out
            .iter()
            .any(|o| matches!(o, ClientOutput::UdpSend { to, .. } if *to == relay_udp))
        {
            h.take_udp(relay_udp);
        }
    }
    assert_eq!(waited, DEFAULT_UDP_PROBE_TIMEOUT);
    let channel = h.take_connect(c.relay_tcp);
    h.assert_quiet();

    // Media sent while the channel opens is dropped.
    h.input(ClientInput::SendMedia { payload: b"lost-2" });
    assert_eq!(h.client.stats().media_dropped, 1);

    h.connected(channel);
    assert_eq!(
        frames(&h.take_sent(channel)),
        [Message::MediaChannelOpen {
            session_id: c.session_id
        }]
    );
    // The accept and a first media frame in one segment.
    let mut accept = encode(&Message::MediaChannelAccept {
        session_id: c.session_id,
    });
    accept.extend(encode(&Message::MediaData {
        session_id: c.session_id,
        peer: sdrtn().media_udp,
        payload: b"over-tcp".to_vec(),
    }));
    h.tcp_data(channel, &accept);
    h.take_path(MediaPath::Tcp);
    assert_eq!(h.take_media(), (sdrtn().media_udp, b"over-tcp".to_vec()));

    h.input(ClientInput::SendMedia { payload: b"rtp" });
    assert_eq!(
        frames(&h.take_sent(channel)),
        [Message::MediaData {
            session_id: c.session_id,
            peer: sdrtn().media_udp,
            payload: b"rtp".to_vec()
        }]
    );
    // Keepalives now go framed on the channel.
    h.fire_next_timer();
    assert!(matches!(
        &frames(&h.take_sent(channel))[..],
        [Message::Keepalive { .. }]
    ));
    h.assert_quiet();
    // Signalling is unaffected.
    h.input(ClientInput::SendSignalling {
        data: b"still here",
    });
    assert_eq!(h.take_sent(c.tunnel), b"still here");
}

#[test]
fn a_relay_without_udp_goes_straight_to_the_media_channel() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let c = open_cloud(&mut h, addr("10.1.0.1:8000"), &[relay("10.2.0.1", 0)], 0);
    let channel = h.take_connect(c.relay_tcp);
    h.assert_quiet();
    h.connected(channel);
    h.take_sent(channel);
    h.tcp_data(
        channel,
        &encode(&Message::MediaChannelAccept {
            session_id: c.session_id,
        }),
    );
    h.take_path(MediaPath::Tcp);
}

#[test]
fn expired_ticket_fetches_a_new_one_from_the_ap() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let ap = addr("10.1.0.1:8000");
    let req = h.take_udp(ap);
    let ap_conn = h.take_connect(ap);
    h.udp_data(ap, &ap_answer(request_id(&req), &[relay("10.2.0.1", 4600)]));
    h.take_close(ap_conn);
    let tunnel = h.take_connect(addr("10.2.0.1:4000"));
    h.connected(tunnel);
    h.take_sent(tunnel);
    h.tcp_data(
        tunnel,
        &encode(&Message::Error {
            code: ErrorCode::TicketExpired,
            reason: "expired".into(),
        }),
    );
    h.take_close(tunnel);
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::TunnelRefused(ErrorCode::TicketExpired)
    );
    h.assert_quiet();
    // After the backoff: a new round at the AP that answered, with a new request id.
    h.fire_next_timer();
    let req2 = h.take_udp(ap);
    assert_ne!(request_id(&req2), request_id(&req));
    h.take_connect(ap);
    assert_eq!(h.client.stats().ap_queries, 2);
    assert_eq!(h.client.stats().reconnect_attempts, 1);
}

#[test]
fn a_refusing_relay_is_skipped_for_the_next_one_with_the_same_ticket() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let ap = addr("10.1.0.1:8000");
    let req = h.take_udp(ap);
    h.take_connect(ap);
    let relays = [relay("10.2.0.1", 4600), relay("10.2.0.2", 4600)];
    h.udp_data(ap, &ap_answer(request_id(&req), &relays));
    let first = h.take_connect(addr("10.2.0.1:4000"));
    h.connected(first);
    h.take_sent(first);
    h.tcp_data(
        first,
        &encode(&Message::Error {
            code: ErrorCode::QuotaExceeded,
            reason: String::new(),
        }),
    );
    h.take_close(first);
    let c = accept_tunnel(&mut h, ap, &relays[1], 4600);
    assert_eq!(c.relay_tcp, addr("10.2.0.2:4000"));
}

#[test]
fn unknown_app_is_fatal() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1", "10.1.0.2"], 0)));
    let ap = addr("10.1.0.1:1080");
    h.take_udp(ap);
    let conn = h.take_connect(ap);
    h.connected(conn);
    h.take_sent(conn);
    h.tcp_data(
        conn,
        &encode(&Message::Error {
            code: ErrorCode::UnknownApp,
            reason: "who?".into(),
        }),
    );
    h.take_close(conn);
    assert_eq!(
        h.take_state(ConnectionState::Failed),
        StateReason::ApRefused(ErrorCode::UnknownApp)
    );
    assert_eq!(h.client.poll_timeout(), None);
    h.assert_quiet();
}

#[test]
fn an_invalid_app_id_fails_at_once() {
    let mut cfg = config(ip_list(&["10.1.0.1"], 0));
    cfg.app_id = "has space".into();
    let mut h = Harness::new(cfg);
    assert!(matches!(
        h.take_state(ConnectionState::Failed),
        StateReason::InvalidConfig(_)
    ));
    h.assert_quiet();
    assert_eq!(h.client.poll_timeout(), None);
}

#[test]
fn relay_close_message_over_udp_is_relay_death() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let c = open_cloud(
        &mut h,
        addr("10.1.0.1:8000"),
        &[relay("10.2.0.1", 4600)],
        4600,
    );
    let relay_udp = addr("10.2.0.1:4600");
    h.take_udp(relay_udp);
    // A close for another session is ignored; ours ends the session.
    let close = |session_id| {
        encode(&Message::Close {
            session_id,
            reason: crate::wire::CloseReason::IdleTimeout,
        })
    };
    h.udp_data(relay_udp, &close(c.session_id + 1));
    h.assert_quiet();
    h.udp_data(relay_udp, &close(c.session_id));
    h.take_close(c.tunnel);
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::RelayLost
    );
    h.assert_quiet();
}

#[test]
fn signalling_queue_is_bounded() {
    let mut cfg = config(ip_list(&["10.1.0.1"], 8000));
    cfg.max_pending_signalling = 10;
    let mut h = Harness::new(cfg);
    h.input(ClientInput::SendSignalling { data: b"123456" });
    h.input(ClientInput::SendSignalling { data: b"789012" });
    h.input(ClientInput::SendSignalling { data: b"3456" });
    assert_eq!(h.client.stats().signalling_dropped_bytes, 6);
    let c = open_cloud(
        &mut h,
        addr("10.1.0.1:8000"),
        &[relay("10.2.0.1", 4600)],
        4600,
    );
    assert_eq!(h.take_sent(c.tunnel), b"1234563456");
}
