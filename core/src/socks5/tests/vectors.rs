//! Byte vectors written from the text of RFC 1928 and RFC 1929, valid and invalid.

use super::*;

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn greeting_vectors() {
    check_valid(
        &[0x05, 0x01, 0x00],
        &Greeting::new(vec![Method::NoAuth]).unwrap(),
    );
    check_valid(
        &[0x05, 0x02, 0x00, 0x02],
        &Greeting::new(vec![Method::NoAuth, Method::UserPass]).unwrap(),
    );
    // Unknown methods and duplicates are kept as sent.
    check_valid(
        &[0x05, 0x04, 0x80, 0x01, 0x00, 0x80],
        &Greeting::new(vec![
            Method::Other(0x80),
            Method::Gssapi,
            Method::NoAuth,
            Method::Other(0x80),
        ])
        .unwrap(),
    );
    // The most methods there can be.
    let all: Vec<Method> = (0..=254u8).map(Method::from).collect();
    let bytes = concat(&[&[0x05, 0xFF], &(0..=254u8).collect::<Vec<_>>()]);
    check_valid(&bytes, &Greeting::new(all).unwrap());
}

#[test]
fn greeting_errors() {
    assert_eq!(
        Greeting::decode(&[]),
        Err(Socks5Error::Incomplete { needed: 3 })
    );
    assert_eq!(
        Greeting::decode(&[0x05, 0x03, 0x00]),
        Err(Socks5Error::Incomplete { needed: 5 })
    );
    assert_eq!(
        Greeting::decode(&[0x04, 0x01, 0x00]),
        Err(Socks5Error::BadVersion { found: 4 })
    );
    assert_eq!(
        Greeting::decode(&[0x05, 0x00]),
        Err(Socks5Error::ZeroMethods)
    );
    assert_eq!(Greeting::new(vec![]), Err(Socks5Error::ZeroMethods));
    assert_eq!(
        Greeting::new(vec![Method::NoAuth; 256]),
        Err(Socks5Error::TooManyMethods { count: 256 })
    );
    let greeting = Greeting::new(vec![Method::UserPass]).unwrap();
    assert!(greeting.offers(Method::UserPass) && !greeting.offers(Method::NoAuth));
}

#[test]
fn method_selection_vectors() {
    for (bytes, method) in [
        ([0x05, 0x00], Method::NoAuth),
        ([0x05, 0x01], Method::Gssapi),
        ([0x05, 0x02], Method::UserPass),
        ([0x05, 0xFF], Method::NoAcceptable),
        ([0x05, 0x7F], Method::Other(0x7F)),
    ] {
        check_valid(&bytes, &MethodSelection { method });
    }
    assert_eq!(
        MethodSelection::decode(&[0x01, 0x00]),
        Err(Socks5Error::BadVersion { found: 1 })
    );
}

#[test]
fn method_bytes() {
    for byte in 0..=255u8 {
        let method = Method::from(byte);
        assert_eq!(u8::from(method), byte);
        assert_eq!(method, Method::Other(byte), "equality goes by the byte");
        assert!(method.to_string().ends_with(&format!("({byte:#04x})")));
    }
    assert_eq!(Method::UserPass.to_string(), "username/password (0x02)");
    assert_eq!(
        Method::NoAcceptable.to_string(),
        "no acceptable methods (0xff)"
    );
}

#[test]
fn user_pass_vectors() {
    let request = UserPassRequest {
        credentials: Credentials::new("user", "pass").unwrap(),
    };
    check_valid(b"\x01\x04user\x04pass", &request);
    check_valid(&[0x01, 0x00], &UserPassReply { status: 0 });
    check_valid(&[0x01, 0x01], &UserPassReply { status: 1 });
    check_valid(&[0x01, 0xFF], &UserPassReply { status: 0xFF });
    assert!(UserPassReply { status: 0 }.is_success());
    assert!(!UserPassReply { status: 2 }.is_success());

    // Longest, and not UTF-8.
    let creds = Credentials::new(vec![0xC3; 255], vec![0x00; 255]).unwrap();
    let bytes = concat(&[&[0x01, 0xFF], &[0xC3; 255], &[0xFF], &[0x00; 255]]);
    check_valid(&bytes, &UserPassRequest { credentials: creds });
}

#[test]
fn user_pass_errors() {
    let decode = UserPassRequest::decode;
    assert_eq!(
        decode(&[0x05, 0x01]),
        Err(Socks5Error::BadAuthVersion { found: 5 })
    );
    assert_eq!(decode(&[0x01, 0x00]), Err(Socks5Error::EmptyUsername));
    assert_eq!(decode(b"\x01\x01u\x00"), Err(Socks5Error::EmptyPassword));
    assert_eq!(
        decode(b"\x01\x04us"),
        Err(Socks5Error::Incomplete { needed: 8 })
    );
    assert_eq!(
        decode(b"\x01\x04user\x04"),
        Err(Socks5Error::Incomplete { needed: 11 })
    );
    assert_eq!(
        UserPassReply::decode(&[0x05, 0x00]),
        Err(Socks5Error::BadAuthVersion { found: 5 })
    );
    assert_eq!(Credentials::new("", "p"), Err(Socks5Error::EmptyUsername));
    assert_eq!(Credentials::new("u", ""), Err(Socks5Error::EmptyPassword));
    assert_eq!(
        Credentials::new(vec![b'u'; 256], "p"),
        Err(Socks5Error::UsernameTooLong { len: 256 })
    );
    assert_eq!(
        Credentials::new("u", vec![b'p'; 300]),
        Err(Socks5Error::PasswordTooLong { len: 300 })
    );
}

#[test]
fn debug_redacts_the_password() {
    let creds = Credentials::new("alice", "s3cr3t-pa55").unwrap();
    let shown = format!(
        "{creds:?} {:?}",
        UserPassRequest {
            credentials: creds.clone()
        }
    );
    assert!(shown.contains("alice"), "{shown}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    let (decoded, _) = UserPassRequest::decode(b"\x01\x05alice\x0bs3cr3t-pa55").unwrap();
    assert!(!format!("{decoded:?}").contains("s3cr3t"));
    assert_eq!(decoded.credentials, creds);
    assert_eq!(decoded.credentials.password(), b"s3cr3t-pa55");
    assert_ne!(creds, Credentials::new("alice", "s3cr3t-pa56").unwrap());
    assert_ne!(creds, Credentials::new("alice", "s3cr3t").unwrap());
}

#[test]
fn request_vectors() {
    // CONNECT 1.2.3.4:80
    check_valid(
        &[0x05, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0x00, 0x50],
        &Request {
            command: Command::Connect,
            dst: v4([1, 2, 3, 4], 80),
        },
    );
    // CONNECT example.com:443
    check_valid(
        b"\x05\x01\x00\x03\x0bexample.com\x01\xbb",
        &Request {
            command: Command::Connect,
            dst: domain("example.com", 443),
        },
    );
    // CONNECT [2001:db8::1]:8080
    let ip6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    check_valid(
        &concat(&[&[0x05, 0x01, 0x00, 0x04], &ip6, &[0x1F, 0x90]]),
        &Request {
            command: Command::Connect,
            dst: Address::Ip("[2001:db8::1]:8080".parse().unwrap()),
        },
    );
    // BIND, expecting a peer at 192.168.0.7:2121
    check_valid(
        &[0x05, 0x02, 0x00, 0x01, 192, 168, 0, 7, 0x08, 0x49],
        &Request {
            command: Command::Bind,
            dst: v4([192, 168, 0, 7], 2121),
        },
    );
    // UDP ASSOCIATE from a source not known yet
    check_valid(
        &[0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0],
        &Request {
            command: Command::UdpAssociate,
            dst: Address::unspecified(),
        },
    );
    // A 255-byte domain: the longest request.
    let name = vec![b'a'; 255];
    let bytes = concat(&[&[0x05, 0x01, 0x00, 0x03, 0xFF], &name, &[0x00, 0x01]]);
    assert_eq!(bytes.len(), Request::MAX_LEN);
    check_valid(
        &bytes,
        &Request {
            command: Command::Connect,
            dst: Address::domain(name, 1).unwrap(),
        },
    );
}

#[test]
fn request_errors() {
    let decode = Request::decode;
    assert_eq!(
        decode(&[0x04, 0x01]),
        Err(Socks5Error::BadVersion { found: 4 })
    );
    assert_eq!(decode(&[0x05, 0x00]), Err(Socks5Error::UnknownCommand(0)));
    assert_eq!(decode(&[0x05, 0x04]), Err(Socks5Error::UnknownCommand(4)));
    assert_eq!(
        decode(&[0x05, 0x01, 0x01]),
        Err(Socks5Error::BadReserved { found: 1 })
    );
    assert_eq!(
        decode(&[0x05, 0x01, 0x00, 0x02]),
        Err(Socks5Error::UnknownAddressType(2))
    );
    assert_eq!(
        decode(&[0x05, 0x01, 0x00, 0x00]),
        Err(Socks5Error::UnknownAddressType(0))
    );
    assert_eq!(
        decode(&[0x05, 0x01, 0x00, 0x03, 0x00]),
        Err(Socks5Error::EmptyDomain)
    );
    // Lower bounds, as tight as the bytes seen allow.
    assert_eq!(decode(&[0x05]), Err(Socks5Error::Incomplete { needed: 8 }));
    assert_eq!(
        decode(&[0x05, 0x01, 0x00, 0x01]),
        Err(Socks5Error::Incomplete { needed: 10 })
    );
    assert_eq!(
        decode(&[0x05, 0x01, 0x00, 0x04]),
        Err(Socks5Error::Incomplete { needed: 22 })
    );
    assert_eq!(
        decode(&[0x05, 0x01, 0x00, 0x03, 9]),
        Err(Socks5Error::Incomplete { needed: 16 })
    );
}

#[test]
fn reply_vectors_for_every_code() {
    let texts = [
        "succeeded",
        "general SOCKS server failure",
        "connection not allowed by ruleset",
        "network unreachable",
        "host unreachable",
        "connection refused",
        "TTL expired",
        "command not supported",
        "address type not supported",
    ];
    for byte in 0..=255u8 {
        let code = ReplyCode::from(byte);
        assert_eq!(code.to_u8(), byte);
        assert_eq!(
            code,
            ReplyCode::Unassigned(byte),
            "equality goes by the byte"
        );
        assert_eq!(code.is_success(), byte == 0);
        let text = code.to_string();
        match texts.get(usize::from(byte)) {
            Some(expected) => assert_eq!(&text, expected),
            None => {
                assert!(matches!(code, ReplyCode::Unassigned(b) if b == byte));
                assert_eq!(text, format!("unassigned reply code {byte:#04x}"));
            }
        }
        let bytes = [0x05, byte, 0x00, 0x01, 10, 0, 0, 1, 0x04, 0x38];
        check_valid(
            &bytes,
            &Reply {
                code,
                bound: v4([10, 0, 0, 1], 1080),
            },
        );
    }
    let named = [
        ReplyCode::Succeeded,
        ReplyCode::GeneralFailure,
        ReplyCode::NotAllowed,
        ReplyCode::NetworkUnreachable,
        ReplyCode::HostUnreachable,
        ReplyCode::ConnectionRefused,
        ReplyCode::TtlExpired,
        ReplyCode::CommandNotSupported,
        ReplyCode::AddressTypeNotSupported,
    ];
    for (byte, code) in named.into_iter().enumerate() {
        let decoded = ReplyCode::from(byte as u8);
        assert_eq!(
            std::mem::discriminant(&decoded),
            std::mem::discriminant(&code)
        );
    }
    // Reply 7 with the customary empty address, to a refused UDP ASSOCIATE.
    check_valid(
        &[0x05, 0x07, 0x00, 0x01, 0, 0, 0, 0, 0, 0],
        &Reply::unbound(ReplyCode::CommandNotSupported),
    );
    // A domain and an IPv6 bound address.
    check_valid(
        b"\x05\x00\x00\x03\x09proxy.lan\x04\x38",
        &Reply {
            code: ReplyCode::Succeeded,
            bound: domain("proxy.lan", 1080),
        },
    );
    check_valid(
        &concat(&[&[0x05, 0x00, 0x00, 0x04], &[0; 15], &[1], &[0x00, 0x35]]),
        &Reply {
            code: ReplyCode::Succeeded,
            bound: Address::Ip("[::1]:53".parse().unwrap()),
        },
    );
}

#[test]
fn reply_errors() {
    assert_eq!(
        Reply::decode(&[0x05, 0x00, 0x02]),
        Err(Socks5Error::BadReserved { found: 2 })
    );
    assert_eq!(
        Reply::decode(&[0x00, 0x5A]),
        Err(Socks5Error::BadVersion { found: 0 })
    );
    assert_eq!(
        Reply::decode(&[0x05, 0x00, 0x00, 0x05]),
        Err(Socks5Error::UnknownAddressType(5))
    );
}

#[test]
fn addresses() {
    check_valid(&[0x01, 127, 0, 0, 1, 0x00, 0x50], &v4([127, 0, 0, 1], 80));
    check_valid(b"\x03\x01a\x00\x00", &domain("a", 0));
    // Domains are bytes: not UTF-8 round-trips too.
    let odd = Address::domain(vec![0xFF, b'x'], 7).unwrap();
    check_valid(&[0x03, 0x02, 0xFF, b'x', 0x00, 0x07], &odd);
    assert_eq!(odd.to_string(), "\\xffx:7");
    assert_eq!(domain("example.com", 443).to_string(), "example.com:443");
    assert_eq!(v6([0; 16], 1).to_string(), "[::]:1");
    assert_eq!(Address::unspecified().to_string(), "0.0.0.0:0");
    assert_eq!(Address::domain("", 1), Err(Socks5Error::EmptyDomain));
    assert_eq!(
        Address::domain(vec![b'a'; 256], 1),
        Err(Socks5Error::DomainTooLong { len: 256 })
    );
    assert_eq!(domain("x", 9).port(), 9);
    // Flow info and scope id do not travel.
    let scoped = Address::Ip(SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::LOCALHOST,
        5,
        7,
        9,
    )));
    assert_eq!(
        to_bytes(&scoped),
        to_bytes(&v6(Ipv6Addr::LOCALHOST.octets(), 5))
    );
}

#[test]
fn udp_datagram_vectors() {
    // RSV RSV FRAG ATYP 10.0.0.1 :53 payload
    let dgram = [
        0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, 0x00, 0x35, 0xDE, 0xAD, 0xBE, 0xEF,
    ];
    let (dst, payload) = decode_udp_datagram(&dgram).unwrap();
    assert_eq!(dst, v4([10, 0, 0, 1], 53));
    assert_eq!(payload, [0xDE, 0xAD, 0xBE, 0xEF]);
    let mut out = Vec::new();
    encode_udp_datagram(&dst, payload, &mut out);
    assert_eq!(out, dgram);
    check_valid(
        &dgram[..10],
        &UdpHeader {
            frag: 0,
            dst: v4([10, 0, 0, 1], 53),
        },
    );

    // An empty payload, a domain destination.
    let dgram = b"\x00\x00\x00\x03\x0bexample.com\x01\xbb";
    assert_eq!(
        decode_udp_datagram(dgram),
        Ok((domain("example.com", 443), &[][..]))
    );

    // FRAG = 1: dropped, whatever follows; the header codec keeps it.
    let fragment = [0x00, 0x00, 0x01, 0x01, 10, 0, 0, 1, 0x00, 0x35, 0xAA];
    assert_eq!(
        decode_udp_datagram(&fragment),
        Err(Socks5Error::Fragmented { frag: 1 })
    );
    assert_eq!(
        decode_udp_datagram(&[0, 0, 0x81]),
        Err(Socks5Error::Fragmented { frag: 0x81 })
    );
    check_valid(
        &fragment[..10],
        &UdpHeader {
            frag: 1,
            dst: v4([10, 0, 0, 1], 53),
        },
    );

    // A datagram is whole: short is truncated, never incomplete.
    for cut in 0..10 {
        assert!(
            matches!(decode_udp_datagram(&dgram[..cut]), Err(Socks5Error::Truncated { needed }) if needed > cut),
            "cut {cut}"
        );
    }
    assert_eq!(
        decode_udp_datagram(&[0x00, 0x01, 0x00, 0x01, 1, 1, 1, 1, 0, 1]),
        Err(Socks5Error::BadReserved { found: 1 })
    );
    assert_eq!(
        decode_udp_datagram(&[0x00, 0x00, 0x00, 0x09, 1, 1, 1, 1, 0, 1]),
        Err(Socks5Error::UnknownAddressType(9))
    );
}

#[test]
fn errors_display() {
    let cases = [
        (
            Socks5Error::Incomplete { needed: 10 },
            "incomplete message: at least 10 bytes needed",
        ),
        (
            Socks5Error::BadVersion { found: 4 },
            "bad SOCKS version 0x04 (expected 0x05)",
        ),
        (
            Socks5Error::UnknownAddressType(2),
            "unknown address type 0x02",
        ),
        (
            Socks5Error::Fragmented { frag: 3 },
            "fragmented UDP datagram (FRAG = 3) dropped",
        ),
        (
            Socks5Error::ServerRefused(ReplyCode::CommandNotSupported),
            "request refused by the server: command not supported",
        ),
        (
            Socks5Error::UnsupportedCommand(Command::UdpAssociate),
            "command UDP ASSOCIATE not supported by policy",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
}
