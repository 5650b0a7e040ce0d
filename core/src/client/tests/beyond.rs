//! Beyond the seed: the HTTP proxy (type 3), automatic mode, TCP 443 only, network changes and
//! the mid-call UDP loss fallback. Every output is checked.

use super::*;
use crate::client::config::CloudTransport;
use crate::client::MAX_TLS_REASON_BYTES;
use crate::engine::CloudProxyType;
use crate::http_connect::{BasicCredentials, HttpConnectError};
use crate::params::{ProxyConfig, ProxyHost};
use crate::sdrtn::encode_media_frame;
use crate::wire::{AP_TLS_PORT, RELAY_TLS_PORT};

const PROXY: &str = "10.1.0.8:3128";

fn http(credentials: Option<(&str, &str)>) -> ClientConfig {
    config(Some(ProxyServer::HttpConnect {
        host: ProxyHost::Ip(ip("10.1.0.8")),
        port: 3128,
        credentials: credentials.map(|(u, p)| BasicCredentials::new(u, p).unwrap()),
    }))
}

fn connect_request(target: SocketAddr) -> Vec<u8> {
    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes()
}

/// Every output so far is a TCP or UDP action of some kind; none of them UDP.
fn assert_no_udp(h: &Harness) {
    assert!(
        !h.out
            .iter()
            .any(|o| matches!(o, ClientOutput::UdpSend { .. })),
        "{:#?}",
        h.out
    );
}

// --- Type 3: an HTTP proxy ---------------------------------------------------------------

#[test]
fn http_proxy_carries_signalling_and_tcp_media_and_never_udp() {
    let mut h = Harness::new(http(None));
    let proxy = addr(PROXY);
    let sig = h.take_connect(proxy);
    h.assert_quiet();
    h.connected(sig);
    assert_eq!(h.take_sent(sig), connect_request(sdrtn().signalling));
    // The proxy's answer and the edge's first bytes in one segment: handed on, not lost.
    h.input(ClientInput::SendSignalling { data: b"hello" });
    h.advance(ms(30));
    h.tcp_data(sig, b"HTTP/1.1 200 Connection established\r\n\r\nwelcome");
    assert_eq!(
        h.take_state(ConnectionState::Connected),
        StateReason::Joined
    );
    assert_eq!(
        h.take_event(),
        ClientEvent::ProxyConnected {
            proxy_type: 3,
            relay: proxy,
            elapsed: ms(30)
        }
    );
    assert_eq!(h.take_signalling(), b"welcome");
    assert_eq!(h.take_sent(sig), b"hello");

    // Media: a second tunnel, to the edge's media_tcp, at once; no UDP probe.
    let media = h.take_connect(proxy);
    assert_no_udp(&h);
    h.assert_quiet();
    h.connected(media);
    assert_eq!(h.take_sent(media), connect_request(sdrtn().media_tcp));
    let mut frame = Vec::new();
    encode_media_frame(b"rtp-back", &mut frame).unwrap();
    let mut answer = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
    answer.extend_from_slice(&frame);
    h.tcp_data(media, &answer);
    h.take_path(MediaPath::Tcp);
    assert_eq!(h.take_media(), (sdrtn().media_udp, b"rtp-back".to_vec()));
    h.input(ClientInput::SendMedia { payload: b"rtp-1" });
    let mut sent = Vec::new();
    encode_media_frame(b"rtp-1", &mut sent).unwrap();
    assert_eq!(h.take_sent(media), sent);
    // Signalling stays raw on its own tunnel.
    h.tcp_data(sig, b"joined");
    assert_eq!(h.take_signalling(), b"joined");
    h.assert_quiet();
}

#[test]
fn http_proxy_answers_a_407_with_the_credentials() {
    let mut h = Harness::new(http(Some(("alice", "secret"))));
    let sig = h.take_connect(addr(PROXY));
    h.connected(sig);
    assert_eq!(h.take_sent(sig), connect_request(sdrtn().signalling));
    h.tcp_data(
        sig,
        b"HTTP/1.1 407 Proxy Authentication Required\r\n\
          Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n",
    );
    let again = String::from_utf8(h.take_sent(sig)).unwrap();
    assert!(
        again.ends_with("Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n"),
        "{again}"
    );
    h.tcp_data(sig, b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(
        h.take_state(ConnectionState::Connected),
        StateReason::Joined
    );
    // The media tunnel, a handshake of its own, sends the credentials once challenged too.
    let media = h.take_connect(addr(PROXY));
    h.connected(media);
    assert_eq!(h.take_sent(media), connect_request(sdrtn().media_tcp));
}

#[test]
fn http_proxy_without_credentials_fails_at_once_on_a_407() {
    let mut h = Harness::new(http(None));
    let sig = h.take_connect(addr(PROXY));
    h.connected(sig);
    h.take_sent(sig);
    h.tcp_data(
        sig,
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n",
    );
    h.take_close(sig);
    let reason = h.take_state(ConnectionState::Failed);
    assert!(
        matches!(
            reason,
            StateReason::HttpProxyFailed(HttpConnectError::AuthRequired { .. })
        ),
        "{reason:?}"
    );
    assert!(reason
        .to_string()
        .contains("configure the proxy's user name and password"));
    assert_eq!(h.client.poll_timeout(), None);
    h.assert_quiet();
}

#[test]
fn http_proxy_refusals_are_fatal_unless_the_proxy_is_overloaded() {
    for (status, fatal) in [("403 Forbidden", true), ("503 Service Unavailable", false)] {
        let mut h = Harness::new(http(None));
        let sig = h.take_connect(addr(PROXY));
        h.connected(sig);
        h.take_sent(sig);
        h.tcp_data(sig, format!("HTTP/1.1 {status}\r\n\r\n").as_bytes());
        h.take_close(sig);
        let state = if fatal {
            ConnectionState::Failed
        } else {
            ConnectionState::Reconnecting
        };
        let reason = h.take_state(state);
        assert!(reason.to_string().contains(status), "{reason}");
    }
    // An unreachable proxy is retried.
    let mut h = Harness::new(http(None));
    let sig = h.take_connect(addr(PROXY));
    h.input(ClientInput::TcpFailed {
        conn: sig,
        reason: "refused",
    });
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::HttpProxyFailed(HttpConnectError::ProxyUnreachable)
    );
}

#[test]
fn http_proxy_by_name_is_resolved_first() {
    let mut h = Harness::new(config(Some(ProxyServer::HttpConnect {
        host: ProxyHost::Domain("proxy.corp".into()),
        port: 8080,
        credentials: None,
    })));
    assert_eq!(h.take_resolve(), "proxy.corp");
    h.assert_quiet();
    h.input(ClientInput::Resolved {
        name: "PROXY.corp.",
        addrs: &[ip("10.1.0.9"), ip("10.1.0.10")],
    });
    h.take_connect(addr("10.1.0.9:8080"));
    h.assert_quiet();
}

// --- Automatic mode -----------------------------------------------------------------------

fn automatic() -> ClientConfig {
    ClientConfig::for_join(
        &ProxyConfig::default(),
        Some(CloudProxyType::Automatic),
        APP_ID,
        sdrtn(),
    )
}

#[test]
fn automatic_mode_stays_direct_when_the_edge_answers() {
    let mut h = Harness::new(automatic());
    let conn = h.take_connect(sdrtn().signalling);
    h.assert_quiet();
    h.advance(ms(15));
    h.connected(conn);
    assert_eq!(
        h.take_state(ConnectionState::Connected),
        StateReason::Joined
    );
    // Direct: no ProxyConnected, no fallback.
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, ClientEvent::ProxyConnected { .. })));
    assert_eq!(h.client.stats().fallbacks_to_proxy, 0);
}

#[test]
fn automatic_mode_falls_back_after_the_probe_time_and_reports_it() {
    let mut h = Harness::new(automatic());
    let conn = h.take_connect(sdrtn().signalling);
    h.assert_quiet();
    // The SYN is dropped: the probe time is up after 1 s.
    assert_eq!(h.fire_next_timer(), DEFAULT_DIRECT_PROBE_TIMEOUT);
    h.take_close(conn);
    let fallback = h.take_event();
    assert_eq!(
        fallback,
        ClientEvent::ConnectionStateChanged {
            state: ConnectionState::Connecting,
            reason: StateReason::FallbackToProxy {
                after: DEFAULT_DIRECT_PROBE_TIMEOUT,
                cause: Box::new(StateReason::DirectUnreachable),
            }
        }
    );
    assert_eq!(h.client.state(), ConnectionState::Connecting);
    let ClientEvent::ConnectionStateChanged { reason, .. } = &fallback else {
        unreachable!()
    };
    assert_eq!(
        reason.to_string(),
        "no direct connection to SD-RTN after 1000 ms (SD-RTN edge unreachable): falling back \
         to the cloud proxy"
    );
    // At once, the cloud proxy (the default domain).
    assert_eq!(h.take_resolve(), "ap-proxy.agora.io");
    h.assert_quiet();
    h.advance(ms(10));
    h.input(ClientInput::Resolved {
        name: "ap-proxy.agora.io",
        addrs: &[ip("10.1.0.1")],
    });
    let ap = addr("10.1.0.1:1080");
    let c = open_cloud(&mut h, ap, &[relay("10.2.0.1", 4600)], 4600);
    let connected = h
        .client
        .stats()
        .join_time
        .expect("joined through the proxy");
    assert!(connected >= DEFAULT_DIRECT_PROBE_TIMEOUT, "{connected:?}");
    assert_eq!(h.client.stats().fallbacks_to_proxy, 1);
    // A lost relay reconnects through the proxy again, not direct.
    h.input(ClientInput::TcpClosed { conn: c.tunnel });
    h.fire_next_timer();
    assert_eq!(h.take_resolve(), "ap-proxy.agora.io");
    assert!(!h
        .out
        .iter()
        .any(|o| matches!(o, ClientOutput::TcpConnect { to, .. } if *to == sdrtn().signalling)));
}

#[test]
fn automatic_mode_falls_back_at_once_when_the_edge_refuses() {
    let mut h = Harness::new(automatic());
    h.advance(ms(30));
    let conn = h.take_connect(sdrtn().signalling);
    h.input(ClientInput::TcpFailed {
        conn,
        reason: "refused",
    });
    let event = h.take_event();
    assert!(
        matches!(&event, ClientEvent::ConnectionStateChanged {
            reason: StateReason::FallbackToProxy { after, .. }, ..
        } if *after == ms(30)),
        "{event:?}"
    );
    assert_eq!(h.take_resolve(), "ap-proxy.agora.io");
}

#[test]
fn for_join_maps_each_cloud_proxy_type() {
    let list = ProxyConfig {
        enabled: false,
        server: ProxyServer::CloudIpList {
            ips: vec![ip("10.1.0.1")],
            port: 0,
        },
    };
    // No type: exactly the seed's client.
    let seed = ClientConfig::for_join(&list, None, APP_ID, sdrtn());
    assert_eq!(seed, config(None));
    let on = ProxyConfig {
        enabled: true,
        ..list.clone()
    };
    assert_eq!(
        ClientConfig::for_join(&on, None, APP_ID, sdrtn()),
        config(Some(list.server.clone()))
    );
    let auto = ClientConfig::for_join(&list, Some(CloudProxyType::Automatic), APP_ID, sdrtn());
    assert_eq!(
        (auto.proxy.clone(), auto.fallback_proxy.clone()),
        (None, Some(list.server.clone()))
    );
    assert_eq!(auto.cloud_transport, CloudTransport::StandardThen443);
    assert!(auto.is_automatic() && auto.race.is_some() && auto.udp_loss_fallback);
    let udp = ClientConfig::for_join(&list, Some(CloudProxyType::ForceUdp), APP_ID, sdrtn());
    assert_eq!(udp.proxy, Some(list.server.clone()));
    assert_eq!(udp.cloud_transport, CloudTransport::Standard);
    let tcp = ClientConfig::for_join(&list, Some(CloudProxyType::ForceTcp), APP_ID, sdrtn());
    assert_eq!(tcp.cloud_transport, CloudTransport::Tcp443Only);
    assert!(!tcp.is_automatic());
}

// --- TCP 443 only --------------------------------------------------------------------------

#[test]
fn force_tcp_uses_port_443_only_and_no_udp() {
    let mut cfg = config(ip_list(&["10.1.0.1", "10.1.0.2"], 0));
    cfg.cloud_transport = CloudTransport::Tcp443Only;
    let mut h = Harness::new(cfg);
    let ap = SocketAddr::new(ip("10.1.0.1"), AP_TLS_PORT);
    let ap_conn = h.take_connect(ap);
    assert_no_udp(&h);
    h.assert_quiet();
    h.connected(ap_conn);
    let request = h.take_sent(ap_conn);
    let Message::ApRequest {
        request_id, flags, ..
    } = Message::decode(&request).unwrap().0
    else {
        panic!()
    };
    assert_eq!(flags, 0, "no UDP media wanted");
    h.tcp_data(ap_conn, &ap_answer(request_id, &[relay("10.2.0.1", 4600)]));
    h.take_close(ap_conn);
    let tunnel = h.take_connect(SocketAddr::new(ip("10.2.0.1"), RELAY_TLS_PORT));
    h.connected(tunnel);
    h.take_sent(tunnel);
    // The relay offers a UDP port; it is not used.
    h.tcp_data(tunnel, &tunnel_accept(5, 4600, 1_000));
    h.take_state(ConnectionState::Connected);
    let channel = h.take_connect(SocketAddr::new(ip("10.2.0.1"), RELAY_TLS_PORT));
    assert_no_udp(&h);
    h.connected(channel);
    assert_eq!(
        frames(&h.take_sent(channel)),
        [Message::MediaChannelOpen { session_id: 5 }]
    );
    h.tcp_data(
        channel,
        &encode(&Message::MediaChannelAccept { session_id: 5 }),
    );
    h.take_path(MediaPath::Tcp);
    h.events.clear();
    h.assert_quiet();
}

fn force_tcp(max_reconnect_attempts: Option<u32>) -> Harness {
    let mut cfg = config(ip_list(&["10.1.0.1"], 0));
    cfg.cloud_transport = CloudTransport::Tcp443Only;
    cfg.max_reconnect_attempts = max_reconnect_attempts;
    Harness::new(cfg)
}

#[test]
fn a_failed_tls_handshake_with_the_access_point_is_the_reason_given() {
    let mut h = force_tcp(None);
    let ap = SocketAddr::new(ip("10.1.0.1"), AP_TLS_PORT);
    let text =
        "TLS to 10.1.0.1:443 (verifying IP 10.1.0.1): invalid peer certificate: UnknownIssuer";
    let c = h.take_connect(ap);
    h.input(ClientInput::TlsFailed {
        conn: c,
        reason: text,
    });
    // The round ends at the attempt's deadline.
    h.fire_next_timer();
    let reason = h.take_state(ConnectionState::Reconnecting);
    assert_eq!(reason, StateReason::TlsFailed(text.to_owned()));
    assert_eq!(reason.to_string(), format!("TLS handshake failed: {text}"));
}

#[test]
fn a_failed_tls_handshake_with_the_relay_is_named_and_not_blamed_for_a_later_failure() {
    let mut h = force_tcp(Some(1));
    let ap = SocketAddr::new(ip("10.1.0.1"), AP_TLS_PORT);
    let c = h.take_connect(ap);
    h.connected(c);
    let Message::ApRequest { request_id, .. } = Message::decode(&h.take_sent(c)).unwrap().0 else {
        panic!("not an AP request")
    };
    h.tcp_data(c, &ap_answer(request_id, &[relay("10.2.0.1", 4600)]));
    h.take_close(c);
    let tunnel = h.take_connect(SocketAddr::new(ip("10.2.0.1"), RELAY_TLS_PORT));
    let text = "TLS to 10.2.0.1:443: the server did not select ALPN cloudproxy/1";
    h.input(ClientInput::TlsFailed {
        conn: tunnel,
        reason: text,
    });
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::TlsFailed(text.to_owned())
    );
    // The next attempt fails plainly (refused): its give-up names that, not the handshake.
    h.fire_next_timer();
    let c = h.take_connect(ap);
    h.input(ClientInput::TcpFailed {
        conn: c,
        reason: "refused",
    });
    h.fire_next_timer();
    let StateReason::GaveUp(why) = h.take_state(ConnectionState::Failed) else {
        panic!("did not give up");
    };
    assert!(why.contains("no access point answered"), "{why}");
    assert!(!why.contains("TLS"), "{why}");
}

#[test]
fn a_tls_reason_is_kept_bounded() {
    let mut h = force_tcp(None);
    let c = h.take_connect(SocketAddr::new(ip("10.1.0.1"), AP_TLS_PORT));
    let long = "é".repeat(MAX_TLS_REASON_BYTES);
    h.input(ClientInput::TlsFailed {
        conn: c,
        reason: &long,
    });
    h.fire_next_timer();
    let StateReason::TlsFailed(kept) = h.take_state(ConnectionState::Reconnecting) else {
        panic!("not a TLS reason");
    };
    assert!(kept.len() <= MAX_TLS_REASON_BYTES && long.starts_with(&kept));
    assert_eq!(kept.len(), MAX_TLS_REASON_BYTES);
}

#[test]
fn the_automatic_ladder_ends_with_tcp_443_candidates() {
    let mut cfg = config(ip_list(&["10.1.0.1"], 8000));
    cfg.cloud_transport = CloudTransport::StandardThen443;
    let mut h = Harness::new(cfg);
    let standard = addr("10.1.0.1:8000");
    h.take_udp(standard);
    let c = h.take_connect(standard);
    h.input(ClientInput::TcpFailed {
        conn: c,
        reason: "refused",
    });
    let tls = SocketAddr::new(ip("10.1.0.1"), AP_TLS_PORT);
    let tls_conn = h.take_connect(tls);
    assert_no_udp(&h);
    h.connected(tls_conn);
    let req = request_id(&h.take_sent(tls_conn));
    h.tcp_data(tls_conn, &ap_answer(req, &[relay("10.2.0.1", 4600)]));
    h.take_close(tls_conn);
    // Answered on 443: the relay on 443 too.
    h.take_connect(SocketAddr::new(ip("10.2.0.1"), RELAY_TLS_PORT));
    h.assert_quiet();
}

// --- Network changes -------------------------------------------------------------------------

#[test]
fn an_address_change_reconnects_at_once_with_a_new_ticket() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let ap = addr("10.1.0.1:8000");
    let first_req = request_id(
        &h.out
            .iter()
            .find_map(|o| match o {
                ClientOutput::UdpSend { data, .. } => Some(data.clone()),
                _ => None,
            })
            .unwrap(),
    );
    let c = open_cloud(&mut h, ap, &[relay("10.2.0.1", 4600)], 4600);
    h.take_udp(addr("10.2.0.1:4600"));
    h.input(ClientInput::NetworkChanged {
        change: NetworkChange::AddressChanged,
    });
    h.take_close(c.tunnel);
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::NetworkChanged
    );
    // No backoff: a new access-point round (a new ticket) at once.
    let req = request_id(&h.take_udp(ap));
    assert_ne!(req, first_req);
    h.take_connect(ap);
    h.events.clear();
    h.assert_quiet();
    assert_eq!(h.client.stats().network_changes, 1);
    // After giving up or leaving there is nothing to change.
    h.input(ClientInput::Leave);
    h.out.clear();
    h.events.clear();
    h.input(ClientInput::NetworkChanged {
        change: NetworkChange::AddressChanged,
    });
    h.assert_quiet();
}

#[test]
fn a_port_change_sends_a_keepalive_at_once() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let c = open_cloud(
        &mut h,
        addr("10.1.0.1:8000"),
        &[relay("10.2.0.1", 4600)],
        4600,
    );
    let relay_udp = addr("10.2.0.1:4600");
    h.take_udp(relay_udp);
    h.input(ClientInput::NetworkChanged {
        change: NetworkChange::PortChanged,
    });
    let keepalive = Message::decode_datagram(&h.take_udp(relay_udp)).unwrap();
    assert!(
        matches!(keepalive, Message::Keepalive { session_id, .. } if session_id == c.session_id)
    );
    h.assert_quiet();
    assert_eq!(h.client.state(), ConnectionState::Connected);
    assert_eq!(h.client.stats().network_changes, 1);
}

#[test]
fn udp_blocked_mid_call_moves_media_to_tcp_on_the_same_session() {
    let mut cfg = config(ip_list(&["10.1.0.1"], 8000));
    cfg.udp_loss_fallback = true;
    let mut h = Harness::new(cfg);
    let c = open_cloud(
        &mut h,
        addr("10.1.0.1:8000"),
        &[relay("10.2.0.1", 4600)],
        4600,
    );
    let relay_udp = addr("10.2.0.1:4600");
    h.take_udp(relay_udp);
    let ack = |seq| {
        encode(&Message::KeepaliveAck {
            session_id: c.session_id,
            seq,
        })
    };
    h.udp_data(relay_udp, &ack(1));
    h.take_path(MediaPath::Udp);
    // UDP is blocked from now on: nothing comes back. Keepalives every second (the relay's).
    let blocked_at = h.now;
    let mut channel = None;
    while channel.is_none() {
        h.fire_next_timer();
        while h
            .out
            .iter()
            .any(|o| matches!(o, ClientOutput::UdpSend { to, .. } if *to == relay_udp))
        {
            h.take_udp(relay_udp);
        }
        channel = h.out.iter().find_map(|o| match o {
            ClientOutput::TcpConnect { conn, to } if *to == c.relay_tcp => Some(*conn),
            _ => None,
        });
        assert!(h.now.saturating_duration_since(blocked_at) < ms(10_000));
    }
    // Bound: 2 keepalive intervals (1 s) + the UDP probe (2 s).
    let took = h.now.saturating_duration_since(blocked_at);
    assert_eq!(took, ms(2_000) + DEFAULT_UDP_PROBE_TIMEOUT);
    let channel = h.take_connect(c.relay_tcp);
    h.take_path(MediaPath::None);
    h.connected(channel);
    assert_eq!(
        frames(&h.take_sent(channel)),
        [Message::MediaChannelOpen {
            session_id: c.session_id
        }]
    );
    h.tcp_data(
        channel,
        &encode(&Message::MediaChannelAccept {
            session_id: c.session_id,
        }),
    );
    h.take_path(MediaPath::Tcp);
    // The session never ended: still connected, the same tunnel, no reconnect.
    assert_eq!(h.client.state(), ConnectionState::Connected);
    assert!(!h.has_close(c.tunnel));
    let stats = h.client.stats();
    assert_eq!((stats.udp_loss_fallbacks, stats.reconnects), (1, 0));
}

#[test]
fn a_reprobe_that_gets_an_answer_stays_on_udp() {
    let mut cfg = config(ip_list(&["10.1.0.1"], 8000));
    cfg.udp_loss_fallback = true;
    let mut h = Harness::new(cfg);
    let c = open_cloud(
        &mut h,
        addr("10.1.0.1:8000"),
        &[relay("10.2.0.1", 4600)],
        4600,
    );
    let relay_udp = addr("10.2.0.1:4600");
    h.take_udp(relay_udp);
    let ack = encode(&Message::KeepaliveAck {
        session_id: c.session_id,
        seq: 1,
    });
    h.udp_data(relay_udp, &ack);
    h.take_path(MediaPath::Udp);
    // One keepalive lost, then the relay answers the re-probe.
    h.fire_next_timer();
    h.take_udp(relay_udp);
    h.fire_next_timer();
    h.take_udp(relay_udp);
    h.udp_data(relay_udp, &ack);
    h.assert_quiet();
    assert_eq!(h.client.media_path(), MediaPath::Udp);
    // Nothing falls back afterwards.
    for _ in 0..3 {
        h.fire_next_timer();
        h.take_udp(relay_udp);
        h.udp_data(relay_udp, &ack);
    }
    h.assert_quiet();
    assert_eq!(h.client.stats().udp_loss_fallbacks, 0);
}
