//! Signalling tunnels: the handshake's checks, forwarding, closing, timeouts and quotas.

use super::*;
use crate::wire::{CloseReason, FLAG_UDP_MEDIA, RELAY_UDP_PORTS};

#[test]
fn tunnel_forwards_both_ways_and_keeps_early_bytes_in_order() {
    let mut h = Harness::new();
    let (conn, _) = h.accept(alice());
    let ticket = h.ticket(alice().ip());
    let mut first = Message::TunnelOpen {
        ticket,
        destination: sig(),
    }
    .to_bytes()
    .unwrap();
    first.extend_from_slice(b"early-1 ");
    // The open frame and the first early bytes arrive one byte at a time.
    let mut outs = Vec::new();
    for b in &first {
        outs.extend(h.tcp(conn, std::slice::from_ref(b)));
    }
    let (upstream, to) = upstream_connect(&outs).unwrap();
    assert_eq!(to, sig());
    assert!(h.tcp(conn, b"early-2").is_empty(), "held while connecting");
    assert_eq!(h.relay.buffered_bytes(), 15);

    let outs = h.input(RelayInput::UpstreamConnected { conn: upstream });
    let sent = messages(&tcp_sent(&outs, conn));
    let [Message::TunnelAccept {
        session_id,
        udp_port,
        keepalive_interval_ms,
        idle_timeout_ms,
    }] = sent.as_slice()
    else {
        panic!("{sent:?}");
    };
    assert_ne!(*session_id, 0);
    assert!(RELAY_UDP_PORTS.contains(udp_port));
    assert_eq!((*keepalive_interval_ms, *idle_timeout_ms), (5_000, 30_000));
    assert_eq!(upstream_sent(&outs, upstream), b"early-1 early-2");
    // The accept goes out before the early bytes are flushed.
    let accept_at = outs
        .iter()
        .position(|o| matches!(o, RelayOutput::TcpSend { .. }))
        .unwrap();
    let flush_at = outs
        .iter()
        .position(|o| matches!(o, RelayOutput::UpstreamSend { .. }))
        .unwrap();
    assert!(accept_at < flush_at);
    // Then the tunnel is handed to the driver, after the accept and the early bytes.
    let splice_at = outs
        .iter()
        .position(|o| matches!(o, RelayOutput::Splice { .. }))
        .unwrap();
    assert!(flush_at < splice_at);
    assert_eq!(
        outs[splice_at],
        RelayOutput::Splice {
            session_id: *session_id,
            client: conn,
            upstream,
            report_interval: Duration::from_secs(1),
        }
    );
    assert_eq!(
        events(&outs),
        [RelayEvent::SessionOpened {
            session_id: *session_id,
            client: alice(),
            destination: sig(),
            udp_port: *udp_port
        }]
    );
    assert_eq!(h.relay.buffered_bytes(), 0);

    // Spliced: raw bytes are the driver's. Fed here they break the contract and are ignored.
    let frame_like = Message::Keepalive {
        session_id: 1,
        seq: 2,
    }
    .to_bytes()
    .unwrap();
    assert_eq!(h.tcp(conn, &frame_like), []);
    let outs = h.input(RelayInput::UpstreamData {
        conn: upstream,
        data: b"from SD-RTN",
    });
    assert_eq!(outs, []);
    assert_eq!(h.relay.counters().ignored_inputs, 2);
    // The driver reports what it moved; the counters follow.
    assert_eq!(h.activity(conn, 18, 11), []);
    let c = h.relay.counters();
    assert_eq!((c.tcp_bytes_up, c.tcp_bytes_down), (15 + 18, 11));
    assert_eq!((c.sessions_opened, c.sessions_closed), (1, 0));
    assert_eq!(h.relay.session_count(), 1);
}

#[test]
fn ap_ticket_opens_a_tunnel_on_the_relay() {
    let mut h = Harness::new();
    let mut ap = AccessPoint::new(
        ApConfig::new(KEY, vec![relay_info("120.92.118.34")]),
        Entropy::from_u64(3),
        h.start,
    );
    let request = Message::padded_ap_request(1, "demo-app", FLAG_UDP_MEDIA);
    let local = "47.74.211.17:8000".parse().unwrap();
    ap.handle_input(
        crate::ap::ApInput::Datagram {
            local,
            from: alice(),
            data: &request.to_bytes().unwrap(),
        },
        h.now,
    );
    let Some(crate::ap::ApOutput::UdpSend { data: answer, .. }) = ap.poll_output() else {
        panic!("no answer")
    };
    let Message::ApResponse { ticket, .. } = Message::decode_datagram(&answer).unwrap() else {
        panic!()
    };
    // The tunnel may come from another source port of the same address.
    let other_port = SocketAddr::new(alice().ip(), 61000);
    let (conn, outs) = h.open_with(other_port, ticket, sig());
    assert!(upstream_connect(&outs).is_some(), "{outs:?}");
    assert!(!closes(&outs, conn));
}

#[test]
fn forged_expired_and_foreign_tickets_are_refused() {
    let mut h = Harness::new();
    // Forged: the MAC does not match.
    let mut forged = h.ticket(alice().ip());
    forged.mac[0] ^= 1;
    let (conn, outs) = h.open_with(alice(), forged, sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::TicketInvalid));
    // Altered: a longer expiry.
    let mut altered = h.ticket(alice().ip());
    altered.expires_at_ms += 3_600_000;
    let (conn, outs) = h.open_with(alice(), altered, sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::TicketInvalid));
    // Another key.
    let mut other = h.ticket(alice().ip());
    other = Ticket::issue(
        &TicketKey::from_bytes([1; 32]),
        &other.app_id,
        other.client_ip,
        other.expires_at(),
        other.nonce,
    )
    .unwrap();
    let (conn, outs) = h.open_with(alice(), other, sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::TicketInvalid));
    // Expired.
    let old = h.ticket(alice().ip());
    h.advance(Duration::from_secs(61));
    let (conn, outs) = h.open_with(alice(), old, sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::TicketExpired));
    // Issued to alice, presented by bob.
    let alices = h.ticket(alice().ip());
    let (conn, outs) = h.open_with(bob(), alices, sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::ClientMismatch));
    assert!(events(&outs).contains(&RelayEvent::Refused {
        code: ErrorCode::ClientMismatch,
        peer: bob(),
        transport: Transport::Tcp
    }));

    let c = h.relay.counters().clone();
    assert_eq!(c.refused_ticket_invalid, 3);
    assert_eq!(c.refused_ticket_expired, 1);
    assert_eq!(c.refused_client_mismatch, 1);
    assert_eq!(h.relay.session_count(), 0);
    assert_eq!(h.relay.connection_count(), 0);
}

#[test]
fn a_ticket_opens_one_tunnel_only() {
    let mut h = Harness::new();
    let ticket = h.ticket(alice().ip());
    let (first, outs) = h.open_with(alice(), ticket.clone(), sig());
    assert!(upstream_connect(&outs).is_some());
    let (conn, outs) = h.open_with(alice(), ticket.clone(), sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::TicketReplayed));
    // Still refused after the first tunnel is gone.
    h.input(RelayInput::TcpClosed { conn: first });
    let (conn, outs) = h.open_with(alice(), ticket, sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::TicketReplayed));
    assert_eq!(h.relay.counters().refused_ticket_replayed, 2);
}

#[test]
fn a_refused_ticket_is_not_burnt() {
    // A ticket refused for its destination can still open a tunnel to SD-RTN.
    let mut h = Harness::new();
    let ticket = h.ticket(alice().ip());
    let (conn, outs) = h.open_with(alice(), ticket.clone(), "10.0.0.1:4001".parse().unwrap());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::DestinationRefused));
    let (_, outs) = h.open_with(alice(), ticket, sig());
    assert!(upstream_connect(&outs).is_some());
}

/// Destinations no relay may reach with the test SD-RTN blocks.
pub(super) fn forbidden_destinations() -> Vec<SocketAddr> {
    [
        "127.0.0.1:4001",
        "10.0.0.1:4001",
        "192.168.1.1:4001",
        "172.16.0.1:4001",
        "169.254.169.254:80",
        "224.0.0.251:5353",
        "255.255.255.255:4001",
        "0.0.0.0:4001",
        "[::1]:4001",
        "[::ffff:10.0.0.1]:4001",
        "[::ffff:47.74.211.17]:4001",
        "[fd00::1]:4001",
        "[fe80::1]:4001",
        "47.74.211.17:0",
        "8.8.8.8:53",
        "47.75.0.1:4001",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

#[test]
fn destinations_outside_sdrtn_are_refused_and_counted() {
    let mut h = Harness::new();
    let forbidden = forbidden_destinations();
    for dest in &forbidden {
        let (conn, outs) = h.open(alice(), *dest);
        assert_eq!(
            refusal(&outs, conn),
            Some(ErrorCode::DestinationRefused),
            "{dest}"
        );
        assert!(upstream_connect(&outs).is_none(), "{dest}");
    }
    assert_eq!(
        h.relay.counters().refused_destination,
        forbidden.len() as u64
    );
    assert_eq!(h.relay.session_count(), 0);
}

#[test]
fn configured_private_blocks_are_reachable() {
    let mut cfg = config();
    cfg.sdrtn.push("10.1.0.0/16".parse().unwrap());
    let mut h = Harness::with(cfg);
    let (_, outs) = h.open(alice(), "10.1.2.3:4001".parse().unwrap());
    assert!(upstream_connect(&outs).is_some());
    let (conn, outs) = h.open(alice(), "10.2.0.1:4001".parse().unwrap());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::DestinationRefused));
}

#[test]
fn canary_switch_lets_forbidden_destinations_through() {
    let mut cfg = config();
    cfg.canary_skip_destination_check = true;
    let mut h = Harness::with(cfg);
    for dest in forbidden_destinations() {
        let (_, outs) = h.open(alice(), dest);
        assert_eq!(upstream_connect(&outs).map(|(_, to)| to), Some(dest));
    }
    assert_eq!(h.relay.counters().refused_destination, 0);
}

#[test]
fn session_quotas_per_client_and_in_total() {
    let mut cfg = config();
    cfg.max_sessions_per_client_ip = 2;
    cfg.max_sessions_total = 3;
    let mut h = Harness::with(cfg);
    h.establish(alice(), sig());
    h.open(SocketAddr::new(alice().ip(), 1), sig());
    let (conn, outs) = h.open(SocketAddr::new(alice().ip(), 2), sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::QuotaExceeded));
    let (_, outs) = h.open(bob(), sig());
    assert!(upstream_connect(&outs).is_some());
    let carol: SocketAddr = "100.200.1.10:5000".parse().unwrap();
    let (conn, outs) = h.open(carol, sig());
    assert_eq!(
        refusal(&outs, conn),
        Some(ErrorCode::QuotaExceeded),
        "total"
    );
    assert_eq!(h.relay.session_count(), 3);
    assert_eq!(h.relay.counters().refused_quota, 2);
}

#[test]
fn tickets_are_checked_on_the_wall_clock_and_nonces_kept_on_the_monotonic_one() {
    let mut cfg = config();
    cfg.max_used_nonces = 1;
    let mut h = Harness::with(cfg);
    let wall = UnixTime::from_millis(1_764_547_200_000);
    assert!(h.input(RelayInput::WallClock(wall)).is_empty());
    let issue = |expires_at, nonce| {
        Ticket::issue(&KEY, "demo-app", alice().ip(), expires_at, [nonce; 16]).unwrap()
    };
    // Expired by the wall clock, though still in the future if `now` (1000 s) were read as
    // Unix time.
    let (conn, outs) = h.open_with(alice(), issue(UnixTime::from_millis(2_000_000), 1), sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::TicketExpired));
    // Valid for a minute of wall clock: opens, and its nonce fills the one-entry cache.
    let (_, outs) = h.open_with(alice(), issue(wall + Duration::from_secs(60), 2), sig());
    assert!(upstream_connect(&outs).is_some(), "{outs:?}");
    let (conn, outs) = h.open_with(alice(), issue(wall + Duration::from_secs(60), 3), sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::QuotaExceeded));
    // A minute later on both clocks the first nonce is forgotten: it was kept for the
    // ticket's minute on the monotonic timeline, not until its Unix expiry read as an instant.
    h.advance(Duration::from_secs(61));
    let wall = wall + Duration::from_secs(61);
    assert!(h.input(RelayInput::WallClock(wall)).is_empty());
    let (_, outs) = h.open_with(alice(), issue(wall + Duration::from_secs(60), 4), sig());
    assert!(upstream_connect(&outs).is_some(), "{outs:?}");
}

/// An access point's ticket for `client`, asked at the access point's monotonic `now`.
fn ap_ticket(ap: &mut AccessPoint, client: SocketAddr, now: Instant) -> Ticket {
    let request = Message::padded_ap_request(1, "demo-app", FLAG_UDP_MEDIA);
    let data = request.to_bytes().unwrap();
    let local = "47.74.211.17:8000".parse().unwrap();
    let from = client;
    ap.handle_input(
        crate::ap::ApInput::Datagram {
            local,
            from,
            data: &data,
        },
        now,
    );
    let Some(crate::ap::ApOutput::UdpSend { data: answer, .. }) = ap.poll_output() else {
        panic!("no answer")
    };
    while ap.poll_output().is_some() {}
    let Message::ApResponse { ticket, .. } = Message::decode_datagram(&answer).unwrap() else {
        panic!("not an answer: {answer:?}")
    };
    ticket
}

/// Regression: until the wall clock became a constructor argument, an access point or relay
/// given no `WallClock` input read its monotonic `now` as Unix time. Here neither gets one
/// after its start, and their monotonic clocks began years away from Unix time and from each
/// other: the access point's at zero, the relay's a day before. The old fallback issued this
/// ticket to expire in 1970 (the access point's `now` plus its lifetime) and had the relay
/// refuse it as expired, then accept a ticket long past its real expiry.
#[test]
fn tickets_are_judged_in_unix_time_when_the_monotonic_clocks_began_years_apart() {
    let day = Duration::from_secs(86_400);
    let t = crate::test_support::TEST_UNIX_EPOCH;
    let ap_start = Clocks::new(Instant::EPOCH, t);
    let ap_config = ApConfig::new(KEY, vec![relay_info("120.92.118.34")]);
    let mut ap = AccessPoint::new(ap_config, Entropy::from_u64(3), ap_start);
    // The relay booted a day before the access point: its `now` is a day ahead.
    let mut h = Harness::new();
    h.now = Instant::EPOCH;
    h.start = Clocks::new(h.now, UnixTime::from_millis(t.as_millis() - 86_400_000));
    h.relay = Relay::new(config(), Entropy::from_u64(9), h.start);
    h.now = Instant::EPOCH + day;

    // Issued 30 s into the access point's life: valid until t + 150 s in Unix time.
    let first = ap_ticket(&mut ap, alice(), Instant::EPOCH + Duration::from_secs(30));
    let second = ap_ticket(&mut ap, alice(), Instant::EPOCH + Duration::from_secs(30));
    assert_eq!(first.expires_at(), t + Duration::from_secs(150));
    assert!(
        first.expires_at() > UnixTime::from_millis(1_700_000_000_000),
        "not in 1970"
    );

    // At t + 100 s (the relay's `now` a day and 100 s): accepted.
    h.now = Instant::EPOCH + day + Duration::from_secs(100);
    assert_eq!(h.unix_now(), t + Duration::from_secs(100));
    let (conn, outs) = h.open_with(alice(), first, sig());
    assert!(upstream_connect(&outs).is_some(), "{outs:?}");
    assert!(!closes(&outs, conn));
    // At t + 151 s, a second after its expiry: refused.
    h.now = Instant::EPOCH + day + Duration::from_secs(151);
    let (conn, outs) = h.open_with(alice(), second, sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::TicketExpired));
    assert!(closes(&outs, conn));
}

/// A relay whose monotonic clock starts at zero judges tickets in Unix time years later, with
/// no reading after its start: the one it was built with counts forward with `now`.
#[test]
fn a_relay_counts_unix_time_forward_from_its_start_without_fresh_readings() {
    let mut h = Harness::new();
    h.now = Instant::EPOCH;
    h.start = Clocks::new(h.now, crate::test_support::TEST_UNIX_EPOCH);
    h.relay = Relay::new(config(), Entropy::from_u64(9), h.start);
    let t = crate::test_support::TEST_UNIX_EPOCH;
    let issue = |expires_at, nonce| {
        Ticket::issue(&KEY, "demo-app", alice().ip(), expires_at, [nonce; 16]).unwrap()
    };
    h.now = Instant::from_millis(1_000);
    // Valid until t + 60 s: opens at t + 1 s.
    let (_, outs) = h.open_with(alice(), issue(t + Duration::from_secs(60), 1), sig());
    assert!(upstream_connect(&outs).is_some(), "{outs:?}");
    // Expiring in 1970 (60 s after the Unix epoch, a minute after the relay's `now` of 1 s):
    // refused; the old fallback read `now` as Unix time and let it in.
    let (conn, outs) = h.open_with(alice(), issue(UnixTime::from_millis(61_000), 2), sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::TicketExpired));
    // At t + 61 s, the first kind of ticket has expired.
    h.now = Instant::from_millis(61_001);
    let (conn, outs) = h.open_with(alice(), issue(t + Duration::from_secs(60), 3), sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::TicketExpired));
}

#[test]
fn a_full_replay_cache_refuses_rather_than_forgets() {
    let mut cfg = config();
    cfg.max_used_nonces = 2;
    let mut h = Harness::with(cfg);
    let (a, _) = h.open(alice(), sig());
    let (b, _) = h.open(alice(), sig());
    h.input(RelayInput::TcpClosed { conn: a });
    h.input(RelayInput::TcpClosed { conn: b });
    let (conn, outs) = h.open(alice(), sig());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::QuotaExceeded));
    // Once the tickets expire their nonces are forgotten and room is made.
    h.advance(Duration::from_secs(60));
    let (_, outs) = h.open(alice(), sig());
    assert!(upstream_connect(&outs).is_some());
}

#[test]
fn pending_handshakes_are_bounded() {
    let mut cfg = config();
    cfg.max_pending_handshakes = 2;
    let mut h = Harness::with(cfg);
    h.accept(alice());
    h.open(alice(), sig());
    let (conn, outs) = h.accept(bob());
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::QuotaExceeded));
    assert_eq!(h.relay.connection_count(), 2);
    assert_eq!(h.relay.counters().tcp_accepted, 2);
}

#[test]
fn bad_first_messages_are_answered_and_closed() {
    let mut h = Harness::new();
    let mut bad_version = Message::MediaChannelOpen { session_id: 1 }
        .to_bytes()
        .unwrap();
    bad_version[2] = 9;
    let not_expected = Message::Keepalive {
        session_id: 1,
        seq: 1,
    }
    .to_bytes()
    .unwrap();
    let cases: [(&[u8], ErrorCode); 4] = [
        (b"GET / HTTP/1.1\r\n", ErrorCode::Malformed),
        (&bad_version, ErrorCode::UnsupportedVersion),
        (&not_expected, ErrorCode::Malformed),
        (&[0xC1, 0x0D, 1, 0x10, 0xFF, 0xFF], ErrorCode::Malformed),
    ];
    for (bytes, code) in cases {
        let (conn, _) = h.accept(alice());
        let outs = h.tcp(conn, bytes);
        assert_eq!(refusal(&outs, conn), Some(code), "{bytes:?}");
        // Later bytes on the closed connection are ignored.
        assert!(h.tcp(conn, b"more").is_empty());
    }
    let c = h.relay.counters();
    assert_eq!((c.refused_malformed, c.refused_unsupported_version), (3, 1));
    assert_eq!(c.ignored_inputs, 4);
}

#[test]
fn unreachable_upstream_is_reported_and_closed() {
    let mut h = Harness::new();
    let (conn, outs) = h.open(alice(), sig());
    let (upstream, _) = upstream_connect(&outs).unwrap();
    let outs = h.input(RelayInput::UpstreamFailed { conn: upstream });
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::UpstreamUnreachable));
    assert!(!outs.contains(&RelayOutput::UpstreamClose { conn: upstream }));
    assert_eq!(h.relay.session_count(), 0);
    assert_eq!(h.relay.counters().refused_upstream_unreachable, 1);
    assert_eq!(h.relay.counters().sessions_opened, 0);
}

#[test]
fn either_side_closing_ends_the_session() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    // Give the session a UDP path: the end is announced there.
    h.udp(
        t.udp_port,
        SocketAddr::new(alice().ip(), 40000),
        &Message::Keepalive {
            session_id: t.session_id,
            seq: 1,
        },
    );
    let outs = h.input(RelayInput::UpstreamClosed { conn: t.upstream });
    assert!(closes(&outs, t.conn));
    assert!(!outs.contains(&RelayOutput::UpstreamClose { conn: t.upstream }));
    assert!(udp_to_clients(&outs).iter().any(|(_, _, m)| *m
        == Message::Close {
            session_id: t.session_id,
            reason: CloseReason::UpstreamClosed
        }));
    assert!(events(&outs).contains(&RelayEvent::SessionClosed {
        session_id: t.session_id,
        reason: SessionEnd::UpstreamClosed
    }));

    let t = h.establish(alice(), sig());
    let outs = h.input(RelayInput::TcpClosed { conn: t.conn });
    assert_eq!(
        outs.iter()
            .filter(|o| !matches!(o, RelayOutput::Event(_)))
            .collect::<Vec<_>>(),
        [&RelayOutput::UpstreamClose { conn: t.upstream }]
    );
    assert!(events(&outs).contains(&RelayEvent::SessionClosed {
        session_id: t.session_id,
        reason: SessionEnd::ClientClosed
    }));
    assert_eq!(h.relay.session_count(), 0);
    assert_eq!(h.relay.counters().sessions_closed, 2);
    assert_eq!(h.relay.poll_timeout(), None);
    // Late inputs for the closed ids are ignored.
    assert!(h
        .input(RelayInput::UpstreamData {
            conn: t.upstream,
            data: b"late"
        })
        .is_empty());
    assert!(h.tcp(t.conn, b"late").is_empty());
}

#[test]
fn client_leaving_while_connecting_cancels_the_upstream() {
    let mut h = Harness::new();
    let (conn, outs) = h.open(alice(), sig());
    let (upstream, _) = upstream_connect(&outs).unwrap();
    let outs = h.input(RelayInput::TcpClosed { conn });
    assert_eq!(outs, [RelayOutput::UpstreamClose { conn: upstream }]);
    assert!(h
        .input(RelayInput::UpstreamConnected { conn: upstream })
        .is_empty());
    assert_eq!(h.relay.counters().sessions_opened, 0);
}

#[test]
fn silent_connections_time_out() {
    let mut h = Harness::new();
    let (conn, _) = h.accept(alice());
    h.tcp(conn, &[0xC1, 0x0D]);
    assert_eq!(
        h.relay.poll_timeout(),
        Some(h.now + Duration::from_secs(10))
    );
    assert!(h.advance(Duration::from_millis(9_999)).is_empty());
    let outs = h.advance(Duration::from_millis(1));
    assert!(closes(&outs, conn));
    assert_eq!(
        events(&outs),
        [RelayEvent::HandshakeTimedOut { peer: alice() }]
    );
    assert_eq!(h.relay.counters().handshake_timeouts, 1);
    assert_eq!(h.relay.connection_count(), 0);
}

#[test]
fn upstream_connect_times_out() {
    let mut h = Harness::new();
    let (conn, outs) = h.open(alice(), sig());
    let (upstream, _) = upstream_connect(&outs).unwrap();
    let outs = h.advance(Duration::from_secs(10));
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::UpstreamUnreachable));
    assert!(outs.contains(&RelayOutput::UpstreamClose { conn: upstream }));
    assert_eq!(h.relay.session_count(), 0);
}

#[test]
fn too_many_early_bytes_close_the_session() {
    let mut cfg = config();
    cfg.max_buffered_bytes_per_session = 100;
    let mut h = Harness::with(cfg);
    let (conn, outs) = h.open(alice(), sig());
    let (upstream, _) = upstream_connect(&outs).unwrap();
    assert!(h.tcp(conn, &[7; 100]).is_empty());
    let outs = h.tcp(conn, &[7]);
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::QuotaExceeded));
    assert!(outs.contains(&RelayOutput::UpstreamClose { conn: upstream }));
    assert_eq!(h.relay.counters().buffer_overflows, 1);
    assert_eq!(h.relay.buffered_bytes(), 0);
    // Early bytes sent in the same segment as the open count too.
    let (conn, _) = h.accept(alice());
    let ticket = h.ticket(alice().ip());
    let mut bytes = Message::TunnelOpen {
        ticket,
        destination: sig(),
    }
    .to_bytes()
    .unwrap();
    bytes.extend_from_slice(&[0; 101]);
    let outs = h.tcp(conn, &bytes);
    assert_eq!(refusal(&outs, conn), Some(ErrorCode::QuotaExceeded));
}

#[test]
fn ticket_expiry_does_not_cut_an_established_session() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    for _ in 0..20 {
        assert_eq!(h.advance(Duration::from_secs(20)), []);
        h.activity(t.conn, 4, 0);
    }
    assert_eq!(
        h.relay.session_count(),
        1,
        "400 s, far past the ticket's 60 s"
    );
}

#[test]
fn a_hostile_client_does_not_disturb_a_good_session() {
    let mut h = Harness::new();
    let good = h.establish(alice(), sig());
    let mallory: SocketAddr = "100.200.9.9:666".parse().unwrap();
    // Garbage, a media channel for alice's session, a forged ticket, UDP noise and a
    // spoofed-id keepalive from another address.
    let (m1, _) = h.accept(mallory);
    h.tcp(m1, &[0xFF; 5000]);
    let (m2, _) = h.accept(mallory);
    let outs = h.send(
        m2,
        &Message::MediaChannelOpen {
            session_id: good.session_id,
        },
    );
    assert_eq!(refusal(&outs, m2), Some(ErrorCode::UnknownSession));
    let mut forged = h.ticket(alice().ip());
    forged.client_ip = mallory.ip();
    h.open_with(mallory, forged, sig());
    h.input(RelayInput::UdpFromClient {
        local_port: good.udp_port,
        from: mallory,
        data: &[0xC1, 0x0D, 1, 0x20, 0, 0],
    });
    h.udp(
        good.udp_port,
        mallory,
        &Message::Close {
            session_id: good.session_id,
            reason: CloseReason::Normal,
        },
    );
    // Mallory's own tunnel dies with its own bad frame; alice's does not notice.
    let bad = h.establish(mallory, sig());
    h.input(RelayInput::UpstreamClosed { conn: bad.upstream });
    assert_eq!(h.activity(good.conn, 10, 11), []);
    assert_eq!(h.relay.session_count(), 1);
    assert_eq!(h.relay.counters().sessions_closed, 1);
}
