//! The named seed files of `fuzz/corpus/<target>/`, built in code.
//!
//! `cargo run --example write_seeds` (in `fuzz/`) writes them; `core/tests/fuzz_replay.rs`
//! checks that the committed files are exactly these bytes, so a seed never goes stale
//! silently when a format changes. Fuzzing adds its own discoveries to a *copy* of the corpus
//! (see `.ci/fuzz`); only named seeds live in git.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use cloudproxy_core::socks5::{
    encode_udp_datagram, Address, Command, Greeting, Method, MethodSelection, Reply, ReplyCode,
    Request, UserPassReply,
};
use cloudproxy_core::time::UnixTime;
use cloudproxy_core::wire::{CloseReason, ErrorCode, Message, RelayInfo, Ticket, FLAG_UDP_MEDIA};

use super::{engine_ops, relay};

mod ap_seeds;
mod http_connect;
mod machines;

/// One seed file: its target (the corpus folder), its file name and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seed {
    /// The target, and the name of its corpus folder.
    pub target: &'static str,
    /// The file name.
    pub name: &'static str,
    /// The contents.
    pub bytes: Vec<u8>,
}

fn seed(target: &'static str, name: &'static str, bytes: impl Into<Vec<u8>>) -> Seed {
    Seed {
        target,
        name,
        bytes: bytes.into(),
    }
}

/// Every seed, target by target.
pub fn all() -> Vec<Seed> {
    let mut out = params();
    out.extend(engine());
    out.extend(wire());
    out.extend(socks5());
    out.extend(machines::relay_seeds());
    out.extend(ap_seeds::ap_seeds());
    out.extend(machines::client_seeds());
    out.extend(http_connect::http_connect_seeds());
    out
}

/// Every `setParameters(...)` example of the seed document, as Java unescapes it, and a few
/// neighbours.
fn params() -> Vec<Seed> {
    let t = "params";
    vec![
        seed(
            t,
            "seed_enable_proxy_true.txt",
            r#"{"rtc.enable_proxy":true}"#,
        ),
        seed(
            t,
            "seed_enable_proxy_false.txt",
            r#"{"rtc.enable_proxy":false}"#,
        ),
        seed(
            t,
            "seed_type1_default_server.txt",
            r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", 0]}"#,
        ),
        seed(
            t,
            "seed_template_proxy_type.txt",
            r#"{"rtc.proxy_server":[proxy_type, "ip or dns", port]}"#,
        ),
        seed(
            t,
            "seed_type0_socks5.txt",
            r#"{"rtc.proxy_server":[0, "127.0.0.1", 1080]}"#,
        ),
        seed(
            t,
            "seed_type2_unescaped.txt",
            r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#,
        ),
        seed(
            t,
            "seed_type2_escaped.txt",
            r#"{"rtc.proxy_server":[2, "[\"192.168.0.112\",\"127.0.0.1\"]", 0]}"#,
        ),
        seed(
            t,
            "seed_java_literal_not_unescaped.txt",
            r#""{\"rtc.enable_proxy\":true}""#,
        ),
        seed(
            t,
            "canonical_type0_ipv6.txt",
            r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[0,"::1",1]}"#,
        ),
        seed(
            t,
            "type2_native_array_port.txt",
            r#"{"rtc.proxy_server":[2,["10.0.0.1","2001:db8::1"],8443],"rtc.enable_proxy":false}"#,
        ),
        seed(
            t,
            "other_feature_keys.txt",
            r#"{"che.audio.level":1,"rtc.enable_proxy":true,"che.video":{"w":[1,2.5e3]}}"#,
        ),
        seed(
            t,
            "duplicate_key.txt",
            r#"{"rtc.enable_proxy":true,"rtc.enable_proxy":false}"#,
        ),
        seed(
            t,
            "misspelt_keys.txt",
            r#"{"rtc.enable_proxi":true,"RTC.PROXY_SERVER":[0,"::1",1],"rtc.enableproxy":1}"#,
        ),
        seed(
            t,
            "byte_order_mark.txt",
            "\u{feff}{\"rtc.enable_proxy\":true}",
        ),
        seed(
            t,
            "java_escaped_type2.txt",
            r#"{\"rtc.proxy_server\":[2, \"[\\\"1.1.1.1\\\"]\", 0]}"#,
        ),
        seed(
            t,
            "seed_java_line_type2_quoted.txt",
            r#""{\"rtc.proxy_server\":[2, \"[\"192.168.0.112\",\"127.0.0.1\"]\", 0]}""#,
        ),
        seed(
            t,
            "port_beyond_u64.txt",
            r#"{"rtc.proxy_server":[1,"ap-proxy.agora.io",18446744073709551616]}"#,
        ),
        seed(
            t,
            "type3_http_proxy_with_credentials.txt",
            r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"Proxy.Corp.",3128,"alice","s:cret"]}"#,
        ),
        seed(
            t,
            "type3_http_proxy_url_host.txt",
            r#"{"rtc.proxy_server":[3,"http://alice:pw@proxy.corp:8080/",8080]}"#,
        ),
    ]
}

fn engine() -> Vec<Seed> {
    use engine_ops::{Op, Script, Text};
    let t = "engine_ops";
    let script = |compat: bool, ops: Vec<Op>| Script { compat, ops }.encode();
    vec![
        seed(
            t,
            "join_leave_cycle.bin",
            script(
                false,
                vec![
                    Op::Set(Text::Known(0)),
                    Op::Join,
                    Op::Joined,
                    Op::Leave,
                    Op::Left,
                    Op::Set(Text::Known(1)),
                    Op::Join,
                ],
            ),
        ),
        seed(
            t,
            "set_while_in_channel.bin",
            script(
                false,
                vec![
                    Op::Set(Text::Known(2)),
                    Op::Join,
                    Op::Set(Text::Known(0)),
                    Op::Joined,
                    Op::Set(Text::Known(7)),
                    Op::Set(Text::Known(8)),
                    Op::Leave,
                    Op::Set(Text::Known(3)),
                    Op::Left,
                    Op::Set(Text::Known(3)),
                    Op::Join,
                ],
            ),
        ),
        seed(
            t,
            "rejected_join_and_leave.bin",
            script(
                false,
                vec![
                    Op::Leave,
                    Op::Joined,
                    Op::Left,
                    Op::Join,
                    Op::Join,
                    Op::Leave,
                    Op::Leave,
                    Op::Join,
                    Op::Left,
                    Op::Left,
                ],
            ),
        ),
        seed(
            t,
            "compat_type2_unescaped.bin",
            script(true, vec![Op::Set(Text::Known(5)), Op::Join]),
        ),
        seed(
            t,
            "strict_invalid_texts.bin",
            script(
                false,
                vec![
                    Op::Set(Text::Known(5)),
                    Op::Set(Text::Raw(br#"{"rtc.enable_proxy":tru"#.to_vec())),
                    Op::Set(Text::Known(9)),
                    Op::Set(Text::Known(11)),
                    Op::Join,
                    Op::Set(Text::Known(12)),
                ],
            ),
        ),
        seed(
            t,
            "cloud_proxy_types.bin",
            script(
                false,
                vec![
                    Op::Set(Text::Known(2)),
                    Op::Cloud(1),
                    Op::Cloud(2),
                    Op::Join,
                    Op::Cloud(0),
                    Op::Leave,
                    Op::Left,
                    Op::Cloud(0),
                    Op::Cloud(2),
                    Op::Set(Text::Known(14)),
                    Op::Join,
                    Op::Leave,
                    Op::Left,
                    Op::Cloud(0),
                    Op::Set(Text::Known(4)),
                    Op::Join,
                    Op::Cloud(7),
                ],
            ),
        ),
    ]
}

/// The test key's ticket of the wire seeds.
fn ticket(ip: IpAddr) -> Ticket {
    match Ticket::issue(
        &relay::KEY,
        "demo-app",
        ip,
        UnixTime::from_millis(1_700_000_060_000),
        [0x11; 16],
    ) {
        Ok(t) => t,
        Err(err) => panic!("seed ticket: {err}"),
    }
}

fn frame(msg: &Message) -> Vec<u8> {
    match msg.to_bytes() {
        Ok(bytes) => bytes,
        Err(err) => panic!("seed frame {msg:?}: {err}"),
    }
}

/// The `wire_decode` target's name.
const WIRE: &str = "wire_decode";

/// The tunnel accept of the wire seeds (alone, and at the head of a stream).
const TUNNEL_ACCEPT: Message = Message::TunnelAccept {
    session_id: 0x5E55_1011_0000_0001,
    udp_port: 4500,
    keepalive_interval_ms: 5_000,
    idle_timeout_ms: 30_000,
};

/// One frame of each message type, and a stream.
fn wire() -> Vec<Seed> {
    let mut seeds = wire_setup_frames();
    seeds.extend(wire_session_frames());
    seeds.extend(wire_streams());
    seeds
}

/// One frame of each message that sets a session up: the access point's request and answer,
/// an error, the tunnel's open and accept.
fn wire_setup_frames() -> Vec<Seed> {
    let t = WIRE;
    let client_ip = IpAddr::from([198, 18, 0, 7]);
    vec![
        seed(
            t,
            "ap_request.bin",
            frame(&Message::padded_ap_request(
                0x0102_0304,
                "demo-app",
                FLAG_UDP_MEDIA,
            )),
        ),
        seed(
            t,
            "ap_request_unpadded.bin",
            frame(&Message::ApRequest {
                request_id: 0x0102_0304,
                app_id: "demo-app".into(),
                flags: FLAG_UDP_MEDIA,
                padding_len: 0,
            }),
        ),
        seed(
            t,
            "ap_response.bin",
            frame(&Message::ApResponse {
                request_id: 0x0102_0304,
                ticket: ticket(client_ip),
                ticket_lifetime_ms: 120_000,
                relays: vec![
                    RelayInfo {
                        addr: IpAddr::from([120, 92, 118, 34]),
                        tcp_port: 4000,
                        udp_port: 4500,
                    },
                    RelayInfo {
                        addr: IpAddr::V6(Ipv6Addr::new(0x2600, 0x1f00, 0, 0, 0, 0, 0, 0x10)),
                        tcp_port: 4000,
                        udp_port: 0,
                    },
                ],
            }),
        ),
        seed(
            t,
            "error.bin",
            frame(&Message::error(
                ErrorCode::DestinationRefused,
                "destination 127.0.0.1:22 is not in SD-RTN",
            )),
        ),
        seed(
            t,
            "tunnel_open.bin",
            frame(&Message::TunnelOpen {
                ticket: ticket(client_ip),
                destination: SocketAddr::from(([47, 74, 211, 17], 4001)),
            }),
        ),
        seed(t, "tunnel_accept.bin", frame(&TUNNEL_ACCEPT)),
    ]
}

/// One frame of each message of an open session: the media channel, media, keepalives, the
/// close.
fn wire_session_frames() -> Vec<Seed> {
    let t = WIRE;
    vec![
        seed(
            t,
            "media_channel_open.bin",
            frame(&Message::MediaChannelOpen {
                session_id: 0x5E55_1011_0000_0001,
            }),
        ),
        seed(
            t,
            "media_channel_accept.bin",
            frame(&Message::MediaChannelAccept {
                session_id: 0x5E55_1011_0000_0001,
            }),
        ),
        seed(
            t,
            "media_data_ipv6.bin",
            frame(&Message::MediaData {
                session_id: 0x5E55_1011_0000_0001,
                peer: "[2600:1f00::10]:4700"
                    .parse()
                    .unwrap_or_else(|_| SocketAddr::from(([52, 80, 192, 229], 4700))),
                payload: b"\x80\x60rtp payload".to_vec(),
            }),
        ),
        seed(
            t,
            "media_data_ipv4.bin",
            frame(&Message::MediaData {
                session_id: 9,
                peer: SocketAddr::from(([52, 80, 192, 229], 4700)),
                payload: Vec::new(),
            }),
        ),
        seed(
            t,
            "keepalive.bin",
            frame(&Message::Keepalive {
                session_id: 7,
                seq: 42,
            }),
        ),
        seed(
            t,
            "keepalive_ack.bin",
            frame(&Message::KeepaliveAck {
                session_id: 7,
                seq: 42,
            }),
        ),
        seed(
            t,
            "close.bin",
            frame(&Message::Close {
                session_id: 7,
                reason: CloseReason::IdleTimeout,
            }),
        ),
    ]
}

/// Frames followed by what comes after them in one read: an accept then raw signalling, a
/// keepalive and its ack.
fn wire_streams() -> Vec<Seed> {
    let t = WIRE;
    let mut stream = frame(&TUNNEL_ACCEPT);
    stream.extend_from_slice(b"raw signalling after the accept");
    let mut two = frame(&Message::Keepalive {
        session_id: 7,
        seq: 1,
    });
    two.extend(frame(&Message::KeepaliveAck {
        session_id: 7,
        seq: 1,
    }));
    vec![
        seed(t, "stream_tunnel_accept_then_raw.bin", stream),
        seed(t, "stream_keepalive_and_ack.bin", two),
    ]
}

fn encode_with(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

fn socks5_request(command: Command, dst: &Address) -> Vec<u8> {
    encode_with(|o| {
        Request {
            command,
            dst: dst.clone(),
        }
        .encode(o)
    })
}

fn socks5_reply(code: ReplyCode, bound: &Address) -> Vec<u8> {
    encode_with(|o| {
        Reply {
            code,
            bound: bound.clone(),
        }
        .encode(o)
    })
}

fn socks5_greeting(methods: Vec<Method>) -> Vec<u8> {
    encode_with(|o| match Greeting::new(methods) {
        Ok(g) => g.encode(o),
        Err(err) => panic!("seed greeting: {err}"),
    })
}

fn socks5_selection(method: Method) -> Vec<u8> {
    encode_with(|o| MethodSelection { method }.encode(o))
}

/// The addresses the SOCKS5 seeds use: IPv4, IPv6, a domain, a bound address.
fn socks5_addresses() -> (Address, Address, Address, Address) {
    let ipv4 = Address::Ip(SocketAddr::from(([1, 2, 3, 4], 80)));
    let ipv6 = Address::Ip(SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        443,
    ));
    let domain = Address::domain("example.com", 443).unwrap_or_else(|_| Address::unspecified());
    let bound = Address::Ip(SocketAddr::from(([10, 0, 0, 1], 8080)));
    (ipv4, ipv6, domain, bound)
}

/// The RFC 1928/1929 vectors, and whole conversations for the machines.
fn socks5() -> Vec<Seed> {
    let t = "socks5";
    let (ipv4, ipv6, domain, bound) = socks5_addresses();
    let (request, reply) = (socks5_request, socks5_reply);
    let mut seeds = vec![
        seed(
            t,
            "rfc1928_greeting_noauth.bin",
            socks5_greeting(vec![Method::NoAuth]),
        ),
        seed(
            t,
            "rfc1928_greeting_noauth_userpass.bin",
            socks5_greeting(vec![Method::NoAuth, Method::UserPass]),
        ),
        seed(
            t,
            "rfc1928_method_noauth.bin",
            socks5_selection(Method::NoAuth),
        ),
        seed(
            t,
            "rfc1928_method_none_acceptable.bin",
            socks5_selection(Method::NoAcceptable),
        ),
        seed(
            t,
            "rfc1929_userpass_request.bin",
            b"\x01\x04user\x04pass".to_vec(),
        ),
        seed(
            t,
            "rfc1929_userpass_reply_success.bin",
            b"\x01\x00".to_vec(),
        ),
        seed(
            t,
            "rfc1928_connect_ipv4.bin",
            request(Command::Connect, &ipv4),
        ),
        seed(
            t,
            "rfc1928_connect_domain.bin",
            request(Command::Connect, &domain),
        ),
        seed(
            t,
            "rfc1928_connect_ipv6.bin",
            request(Command::Connect, &ipv6),
        ),
        seed(t, "rfc1928_bind_ipv4.bin", request(Command::Bind, &ipv4)),
        seed(
            t,
            "rfc1928_udp_associate.bin",
            request(Command::UdpAssociate, &Address::unspecified()),
        ),
        seed(
            t,
            "rfc1928_reply_succeeded.bin",
            reply(ReplyCode::Succeeded, &bound),
        ),
        seed(
            t,
            "rfc1928_reply_command_not_supported.bin",
            reply(ReplyCode::CommandNotSupported, &Address::unspecified()),
        ),
        seed(
            t,
            "rfc1928_udp_datagram.bin",
            encode_with(|o| encode_udp_datagram(&domain, b"\xaa\xbb", o)),
        ),
    ];
    seeds.extend(socks5_conversations(t));
    seeds
}

/// Whole SOCKS5 conversations: a client's side, a server's side for a BIND and for a CONNECT
/// with credentials.
fn socks5_conversations(t: &'static str) -> Vec<Seed> {
    let (ipv4, _, domain, bound) = socks5_addresses();
    // A client's whole side: greeting, credentials, CONNECT, early data.
    let mut client_side = socks5_greeting(vec![Method::NoAuth, Method::UserPass]);
    client_side.extend_from_slice(b"\x01\x04user\x04pass");
    client_side.extend(socks5_request(Command::Connect, &domain));
    client_side.extend_from_slice(b"early data");
    // A server's whole side for a BIND: method, first reply, second reply, data.
    let mut server_side = socks5_selection(Method::NoAuth);
    server_side.extend(socks5_reply(ReplyCode::Succeeded, &bound));
    server_side.extend(socks5_reply(ReplyCode::Succeeded, &ipv4));
    server_side.extend_from_slice(b"tunnel data");
    // ... and with credentials, for a CONNECT.
    let mut server_auth = socks5_selection(Method::UserPass);
    server_auth.extend(encode_with(|o| {
        UserPassReply {
            status: UserPassReply::SUCCESS,
        }
        .encode(o)
    }));
    server_auth.extend(socks5_reply(ReplyCode::Succeeded, &bound));
    vec![
        seed(
            t,
            "client_side_userpass_connect_early_data.bin",
            client_side,
        ),
        seed(t, "server_side_bind_two_replies.bin", server_side),
        seed(t, "server_side_userpass_connect.bin", server_auth),
    ]
}
