//! SOCKS5 (type 0), proxy off, and leaving.

use super::*;
use crate::sdrtn::{encode_media_frame, MediaFrameReader};
use crate::socks5::{
    decode_udp_datagram, encode_udp_datagram, Address, Command, Credentials, ReplyCode, Request,
    ServerHandshake, ServerPolicy, ServerProgress, Socks5Error,
};

const SOCKS: &str = "10.3.0.1:1080";

/// Plays a SOCKS5 server on `conn` until the client's request is in; returns the server
/// machine (to reply with) and the request.
fn socks_request(
    h: &mut Harness,
    conn: ConnId,
    policy: ServerPolicy,
) -> (ServerHandshake, Request) {
    let mut server = ServerHandshake::new(policy);
    h.connected(conn);
    loop {
        let from_client = h.take_sent(conn);
        match server.handle_bytes(&from_client) {
            Ok(ServerProgress::Pending) => {
                let answer = server.poll_transmit().unwrap();
                h.tcp_data(conn, &answer);
            }
            Ok(ServerProgress::Request { request, leftover }) => {
                assert!(leftover.is_empty());
                return (server, request);
            }
            Err(e) => panic!("server handshake failed: {e}"),
        }
    }
}

fn socks_config(credentials: Option<Credentials>) -> ClientConfig {
    let mut cfg = config(Some(ProxyServer::Socks5(addr(SOCKS))));
    cfg.socks5_credentials = credentials;
    cfg
}

#[test]
fn type0_socks5_connect_then_udp_associate() {
    let creds = Credentials::new("alice", "s3cret").unwrap();
    let policy = ServerPolicy {
        credentials: Some(creds.clone()),
        allow_no_auth: false,
        ..ServerPolicy::default()
    };
    let mut h = Harness::new(socks_config(Some(creds)));
    let server = addr(SOCKS);
    let s1 = h.take_connect(server);
    h.assert_quiet();
    let (mut hs, request) = socks_request(&mut h, s1, policy.clone());
    assert_eq!(request.command, Command::Connect);
    assert_eq!(request.dst, Address::Ip(sdrtn().signalling));
    let mut reply = hs
        .reply(ReplyCode::Succeeded, Address::Ip(addr("10.3.0.1:40000")))
        .unwrap();
    reply.extend_from_slice(b"edge says hi");
    h.advance(ms(40));
    h.tcp_data(s1, &reply);
    assert_eq!(
        h.take_state(ConnectionState::Connected),
        StateReason::Joined
    );
    assert_eq!(
        h.take_event(),
        ClientEvent::ProxyConnected {
            proxy_type: 0,
            relay: server,
            elapsed: ms(40)
        }
    );
    assert_eq!(h.take_signalling(), b"edge says hi");
    h.input(ClientInput::SendSignalling { data: b"sig" });
    assert_eq!(h.take_sent(s1), b"sig");

    // Media: UDP ASSOCIATE on a second connection; the server binds 0.0.0.0:5000.
    let s2 = h.take_connect(server);
    let (mut hs2, request) = socks_request(&mut h, s2, policy);
    assert_eq!(request.command, Command::UdpAssociate);
    let reply = hs2
        .reply(ReplyCode::Succeeded, Address::Ip(addr("0.0.0.0:5000")))
        .unwrap();
    h.tcp_data(s2, &reply);
    h.assert_quiet();
    let udp_relay = addr("10.3.0.1:5000");
    h.input(ClientInput::SendMedia {
        payload: b"rtp-out",
    });
    let dgram = h.take_udp(udp_relay);
    let (dst, payload) = decode_udp_datagram(&dgram).unwrap();
    assert_eq!(dst, Address::Ip(sdrtn().media_udp));
    assert_eq!(payload, b"rtp-out");

    let mut back = Vec::new();
    encode_udp_datagram(&Address::Ip(sdrtn().media_udp), b"rtp-in", &mut back);
    h.udp_data(udp_relay, &back);
    h.take_path(MediaPath::Udp);
    assert_eq!(h.take_media(), (sdrtn().media_udp, b"rtp-in".to_vec()));
    h.assert_quiet();

    // The association ends with its control connection: media falls back to TCP.
    h.input(ClientInput::TcpClosed { conn: s2 });
    h.take_path(MediaPath::None);
    let s3 = h.take_connect(server);
    h.assert_quiet();
    let (_, request) = socks_request(
        &mut h,
        s3,
        ServerPolicy {
            credentials: Some(Credentials::new("alice", "s3cret").unwrap()),
            allow_no_auth: false,
            ..ServerPolicy::default()
        },
    );
    assert_eq!(request.dst, Address::Ip(sdrtn().media_tcp));
}

#[test]
fn type0_reply_7_to_udp_associate_falls_back_to_tcp_media() {
    let policy = ServerPolicy {
        udp_associate: false,
        ..ServerPolicy::default()
    };
    let mut h = Harness::new(socks_config(None));
    let server = addr(SOCKS);
    let s1 = h.take_connect(server);
    let (mut hs, _) = socks_request(&mut h, s1, policy.clone());
    let reply = hs
        .reply(ReplyCode::Succeeded, Address::Ip(addr("10.3.0.1:40000")))
        .unwrap();
    h.tcp_data(s1, &reply);
    h.take_state(ConnectionState::Connected);
    h.take_event_where("ProxyConnected", |e| {
        matches!(e, ClientEvent::ProxyConnected { proxy_type: 0, .. })
    });

    // UDP ASSOCIATE: the server answers reply 7 (command not supported).
    let s2 = h.take_connect(server);
    let mut hs2 = ServerHandshake::new(policy.clone());
    h.connected(s2);
    hs2.handle_bytes(&h.take_sent(s2)).unwrap();
    h.tcp_data(s2, &hs2.poll_transmit().unwrap());
    let request = h.take_sent(s2);
    assert_eq!(
        hs2.handle_bytes(&request),
        Err(Socks5Error::UnsupportedCommand(Command::UdpAssociate))
    );
    let refusal = hs2.poll_transmit().unwrap();
    assert_eq!(refusal[1], 0x07);
    h.tcp_data(s2, &refusal);
    h.take_close(s2);

    // A third connection: CONNECT to the edge's TCP media port, SD-RTN framing.
    let s3 = h.take_connect(server);
    h.assert_quiet();
    let (mut hs3, request) = socks_request(&mut h, s3, policy);
    assert_eq!(request.dst, Address::Ip(sdrtn().media_tcp));
    let mut reply = hs3
        .reply(ReplyCode::Succeeded, Address::Ip(addr("10.3.0.1:40001")))
        .unwrap();
    encode_media_frame(b"first", &mut reply).unwrap();
    h.tcp_data(s3, &reply);
    h.take_path(MediaPath::Tcp);
    assert_eq!(h.take_media(), (sdrtn().media_udp, b"first".to_vec()));

    h.input(ClientInput::SendMedia { payload: b"rtp" });
    h.input(ClientInput::SendMedia { payload: b"rtcp" });
    let mut reader = MediaFrameReader::new();
    let mut got = Vec::new();
    reader.push_all(&h.take_sent(s3), &mut got).unwrap();
    assert_eq!(got, [b"rtp".to_vec(), b"rtcp".to_vec()]);
    h.assert_quiet();
}

#[test]
fn type0_refusals() {
    // The server refuses the CONNECT: a retriable failure.
    let mut h = Harness::new(socks_config(None));
    let s1 = h.take_connect(addr(SOCKS));
    let (mut hs, _) = socks_request(&mut h, s1, ServerPolicy::default());
    let reply = hs
        .reply(ReplyCode::HostUnreachable, Address::unspecified())
        .unwrap();
    h.tcp_data(s1, &reply);
    h.take_close(s1);
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::Socks5Refused(Socks5Error::ServerRefused(ReplyCode::HostUnreachable))
    );

    // The server wants a password we do not have: fatal.
    let mut h = Harness::new(socks_config(None));
    let s1 = h.take_connect(addr(SOCKS));
    h.connected(s1);
    h.take_sent(s1);
    h.tcp_data(s1, &[0x05, 0xFF]);
    assert_eq!(
        h.take_state(ConnectionState::Failed),
        StateReason::Socks5Refused(Socks5Error::NoAcceptableMethod)
    );

    // The server is not there.
    let mut h = Harness::new(socks_config(None));
    let s1 = h.take_connect(addr(SOCKS));
    h.input(ClientInput::TcpFailed {
        conn: s1,
        reason: "refused",
    });
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::ProxyUnreachable
    );
}

#[test]
fn proxy_off_goes_direct_and_falls_back_to_tcp_media() {
    let mut h = Harness::new(config(None));
    let signalling = h.take_connect(sdrtn().signalling);
    h.assert_quiet();
    h.connected(signalling);
    assert_eq!(
        h.take_state(ConnectionState::Connected),
        StateReason::Joined
    );
    // No proxy, no ProxyConnected; media waits for the application.
    h.assert_quiet();
    assert_eq!(h.client.poll_timeout(), None);

    h.input(ClientInput::SendMedia { payload: b"raw-1" });
    assert_eq!(h.take_udp(sdrtn().media_udp), b"raw-1");
    h.advance(ms(500));
    h.input(ClientInput::SendMedia { payload: b"raw-2" });
    assert_eq!(h.take_udp(sdrtn().media_udp), b"raw-2");
    // The probe window runs from the first datagram.
    assert_eq!(h.fire_next_timer(), ms(1_500));
    let media = h.take_connect(sdrtn().media_tcp);
    h.assert_quiet();
    h.connected(media);
    h.take_path(MediaPath::Tcp);
    h.input(ClientInput::SendMedia { payload: b"framed" });
    assert_eq!(h.take_sent(media), b"\x00\x06framed");
    h.tcp_data(media, b"\x00\x02hi\x00");
    assert_eq!(h.take_media(), (sdrtn().media_udp, b"hi".to_vec()));
    h.tcp_data(media, b"\x02ok");
    assert_eq!(h.take_media(), (sdrtn().media_udp, b"ok".to_vec()));

    // An invalid frame length breaks the media stream: closed, and media starts over later.
    h.tcp_data(media, &[0x00, 0x00]);
    h.take_close(media);
    h.take_path(MediaPath::None);
    h.assert_quiet();
    h.fire_next_timer();
    h.input(ClientInput::SendMedia { payload: b"again" });
    assert_eq!(h.take_udp(sdrtn().media_udp), b"again");
    h.udp_data(sdrtn().media_udp, b"udp works");
    h.take_path(MediaPath::Udp);
    assert_eq!(h.take_media(), (sdrtn().media_udp, b"udp works".to_vec()));

    // Signalling both ways, then the edge goes away.
    h.input(ClientInput::SendSignalling { data: b"up" });
    assert_eq!(h.take_sent(signalling), b"up");
    h.tcp_data(signalling, b"down");
    assert_eq!(h.take_signalling(), b"down");
    h.input(ClientInput::TcpClosed { conn: signalling });
    h.take_path(MediaPath::None);
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::ConnectionLost
    );
    h.fire_next_timer();
    let again = h.take_connect(sdrtn().signalling);
    h.input(ClientInput::TcpFailed {
        conn: again,
        reason: "unreachable",
    });
    h.assert_quiet();
    assert_eq!(h.client.state(), ConnectionState::Reconnecting);
}

#[test]
fn proxy_off_unreachable_edge() {
    let mut h = Harness::new(config(None));
    let conn = h.take_connect(sdrtn().signalling);
    h.input(ClientInput::TcpFailed {
        conn,
        reason: "no route",
    });
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::DirectUnreachable
    );
    // A connect that never completes is timed out by the client itself.
    h.fire_next_timer();
    let conn = h.take_connect(sdrtn().signalling);
    assert_eq!(h.fire_next_timer(), DEFAULT_CONNECT_TIMEOUT);
    h.take_close(conn);
    h.assert_quiet();
}

#[test]
fn leave_closes_everything_and_stops_the_clock() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let c = open_cloud(&mut h, addr("10.1.0.1:8000"), &[relay("10.2.0.1", 0)], 0);
    let channel = h.take_connect(c.relay_tcp);
    h.connected(channel);
    h.take_sent(channel);
    h.tcp_data(
        channel,
        &encode(&Message::MediaChannelAccept {
            session_id: c.session_id,
        }),
    );
    h.take_path(MediaPath::Tcp);
    h.assert_quiet();
    let _ = c.ap;

    h.input(ClientInput::Leave);
    h.take_close(c.tunnel);
    h.take_close(channel);
    h.take_path(MediaPath::None);
    assert_eq!(
        h.take_state(ConnectionState::Disconnected),
        StateReason::Left
    );
    h.assert_quiet();
    assert_eq!(h.client.poll_timeout(), None);

    // Everything after is ignored or dropped, and nothing is emitted.
    h.tcp_data(c.tunnel, b"late");
    h.input(ClientInput::SendSignalling { data: b"bye" });
    h.input(ClientInput::SendMedia { payload: b"bye" });
    h.input(ClientInput::Leave);
    h.advance(Duration::from_secs(3_600));
    h.assert_quiet();
    assert_eq!(h.client.stats().signalling_dropped_bytes, 3);
}

#[test]
fn leave_while_connecting() {
    let mut h = Harness::new(config(Some(ProxyServer::default_cloud())));
    h.take_resolve();
    h.input(ClientInput::SendSignalling { data: b"queued" });
    h.input(ClientInput::Leave);
    assert_eq!(
        h.take_state(ConnectionState::Disconnected),
        StateReason::Left
    );
    h.input(ClientInput::Resolved {
        name: "ap-proxy.agora.io",
        addrs: &[ip("10.0.0.1")],
    });
    h.assert_quiet();
    assert_eq!(h.client.stats().signalling_dropped_bytes, 6);
}

#[test]
fn same_seed_same_outputs() {
    let run = || {
        let mut h = Harness::with_seed(config(ip_list(&["10.1.0.1"], 8000)), 42);
        let mut log = Vec::new();
        for _ in 0..6 {
            h.fire_next_timer();
            log.extend(h.out.drain(..).map(|o| format!("{o:?}")));
            log.extend(h.events.drain(..).map(|e| format!("{e:?}")));
            log.push(h.now.to_string());
        }
        log
    };
    assert_eq!(run(), run());
}
