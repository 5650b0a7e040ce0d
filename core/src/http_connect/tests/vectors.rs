//! The codec: requests byte-exact, base64 vectors, response heads in every chunking, every
//! bound at and past its limit, framing, keep-alive and challenge rules, body skipping.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::*;
use crate::http_connect::request::base64;
use crate::test_support::snapshot_settings;

// --- Requests --------------------------------------------------------------------------------

#[test]
fn base64_rfc4648_and_rfc7617_vectors() {
    for (input, output) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
        // RFC 7617 §2 and §2.1 (UTF-8).
        ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ("test:123\u{a3}", "dGVzdDoxMjPCow=="),
    ] {
        assert_eq!(base64(input.as_bytes()), output, "{input:?}");
    }
    assert_eq!(base64(&[0xFB, 0xFF, 0xBF]), "+/+/");
}

#[test]
fn requests_are_byte_exact() {
    let ip4 = Authority::from_socket_addr("203.0.113.10:8443".parse().unwrap()).unwrap();
    let ip6 = Authority::from_socket_addr("[2001:db8::1]:443".parse().unwrap()).unwrap();
    let name = Authority::domain("Edge-1.example.com", 4000).unwrap();
    let creds = BasicCredentials::new("Aladdin", "open sesame").unwrap();
    let cases: [(&Authority, Option<&BasicCredentials>, &[u8]); 4] = [
        (
            &ip4,
            None,
            b"CONNECT 203.0.113.10:8443 HTTP/1.1\r\nHost: 203.0.113.10:8443\r\n\r\n",
        ),
        (
            &ip6,
            None,
            b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
        ),
        (
            &name,
            None,
            b"CONNECT Edge-1.example.com:4000 HTTP/1.1\r\nHost: Edge-1.example.com:4000\r\n\r\n",
        ),
        (
            &ip4,
            Some(&creds),
            b"CONNECT 203.0.113.10:8443 HTTP/1.1\r\nHost: 203.0.113.10:8443\r\n\
              Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n",
        ),
    ];
    for (target, credentials, expected) in cases {
        let mut out = Vec::new();
        encode_request(target, credentials, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected)
        );
    }
    // A name that is an IP literal is the address.
    assert_eq!(
        Authority::domain("::1", 80).unwrap().to_string(),
        "[::1]:80"
    );
}

#[test]
fn targets_and_credentials_are_checked() {
    let long = "a".repeat(254);
    for (name, port) in [
        ("", 443),
        ("edge.example.com", 0),
        ("edge example.com", 443),
        ("edge.example.com\r\nX: y", 443),
        ("[::1]", 443),
        (long.as_str(), 443),
    ] {
        assert!(
            matches!(
                Authority::domain(name, port),
                Err(HttpConnectError::InvalidTarget { .. })
            ),
            "{name:?}"
        );
    }
    let sock: SocketAddr = "10.0.0.1:0".parse().unwrap();
    assert!(Authority::from_socket_addr(sock).is_err());
    let long = "p".repeat(256);
    for (user, password) in [
        ("", "x"),
        ("a:b", "x"),
        ("a\nb", "x"),
        ("a", "x\u{7f}"),
        (long.as_str(), "x"),
        ("a", long.as_str()),
    ] {
        assert!(
            matches!(
                BasicCredentials::new(user, password),
                Err(HttpConnectError::InvalidCredentials { .. })
            ),
            "{user:?}"
        );
    }
    assert!(BasicCredentials::new("bob", "").is_ok());
    assert!(BasicCredentials::new(&"u".repeat(255), &"p".repeat(255)).is_ok());
    let debug = format!("{:?}", alice());
    assert!(
        debug.contains("alice") && !debug.contains("secret"),
        "{debug}"
    );
}

// --- Response heads --------------------------------------------------------------------------

/// Valid heads as real proxies send them, each followed by bytes that are not part of it.
const VALID: &[&[u8]] = &[
    b"HTTP/1.1 200 Connection established\r\n\r\n",
    b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n",
    b"HTTP/1.1 200\r\n\r\n",
    b"HTTP/1.1 204 \r\nVia: 1.1 gw\r\n\r\n",
    b"HTTP/1.1 407 Proxy Authentication Required\r\nServer: squid/5.7\r\n\
      Proxy-Authenticate: Basic realm=\"Squid\"\r\nContent-Type: text/html\r\n\
      Content-Length: 3520\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 403 Forbidden\nContent-Length: 0\n\n",
    b"HTTP/1.1 407 Auth\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Basic\r\n  realm=\"folded\"\r\n\r\n",
    b"HTTP/1.1 502 Bad Gateway \xe9t\xe9\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
];

#[test]
fn valid_heads_decode_in_every_chunking() {
    for bytes in VALID {
        let (whole, used) = head(bytes);
        assert_eq!(used, bytes.len());
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(b"\x16\x03\x01tunnel");
        assert_eq!(head(&longer), (whole.clone(), used));
        // Every strict prefix is incomplete.
        for cut in 0..bytes.len() {
            assert_eq!(ResponseHead::decode(&bytes[..cut]), Ok(None), "cut {cut}");
        }
        // Split in two at every byte boundary, and byte by byte.
        for cut in 0..used {
            let mut reader = HeadReader::new();
            assert_eq!(reader.push(&longer[..cut]), Ok(None));
            assert_eq!(
                reader.push(&longer[cut..]),
                Ok(Some((whole.clone(), used - cut))),
                "cut {cut}"
            );
        }
        let mut reader = HeadReader::new();
        for (i, b) in longer.iter().enumerate() {
            match reader.push(std::slice::from_ref(b)) {
                Ok(None) => assert!(i + 1 < used),
                Ok(Some((h, 1))) => {
                    assert_eq!((h, i + 1), (whole.clone(), used));
                    break;
                }
                other => panic!("byte {i}: {other:?}"),
            }
        }
    }
}

#[test]
fn heads_read_as_their_fields_say() {
    let (h, _) = head(VALID[1]);
    assert_eq!(h.version, HttpVersion::Http10);
    assert_eq!(
        h.values("PROXY-AGENT").collect::<Vec<_>>(),
        ["tinyproxy/1.11.1"]
    );
    let (h, _) = head(VALID[2]);
    assert_eq!((h.status, h.reason.as_str()), (200, ""));
    let (h, _) = head(VALID[6]);
    assert_eq!(h.headers[1].value, "Basic realm=\"folded\"");
    assert_eq!(h.headers.len(), 2);
    // Blank continuation lines and an empty first line add no whitespace.
    let (h, _) = head(b"HTTP/1.1 407 x\r\nA: v\r\n \r\nB:\r\n\tw\r\n\r\n");
    assert_eq!(
        (h.headers[0].value.as_str(), h.headers[1].value.as_str()),
        ("v", "w")
    );
    let (h, _) = head(VALID[7]);
    assert_eq!(h.reason, "Bad Gateway \u{fffd}t\u{fffd}");
    assert_eq!(h.values("x-empty").collect::<Vec<_>>(), [""]);
    assert_eq!(h.values("x-tab").collect::<Vec<_>>(), ["v"]);
}

/// Invalid heads, each with what is wrong: the snapshot pins the error texts.
fn invalid() -> Vec<(&'static str, Vec<u8>)> {
    let many_headers: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    vec![
        ("SOCKS5 reply", b"\x05\x00".to_vec()),
        ("TLS alert", b"\x15\x03\x01\x00\x02\x02\x28".to_vec()),
        ("HTML page", b"<html><body>blocked</body></html>".to_vec()),
        ("lower-case http", b"http/1.1 200 OK\r\n\r\n".to_vec()),
        ("empty first line", b"\r\n".to_vec()),
        ("HTTP/2.0", b"HTTP/2.0 200 OK\r\n\r\n".to_vec()),
        ("HTTP/2", b"HTTP/2 200\r\n\r\n".to_vec()),
        ("HTTP/1.2", b"HTTP/1.2 200 OK\r\n\r\n".to_vec()),
        ("no version", b"HTTP/ 200 OK\r\n\r\n".to_vec()),
        ("two spaces", b"HTTP/1.1  200 OK\r\n\r\n".to_vec()),
        ("short status", b"HTTP/1.1 20 OK\r\n\r\n".to_vec()),
        ("status 600", b"HTTP/1.1 600 Odd\r\n\r\n".to_vec()),
        ("status 099", b"HTTP/1.1 099 Odd\r\n\r\n".to_vec()),
        ("no space after status", b"HTTP/1.1 200OK\r\n\r\n".to_vec()),
        ("control in reason", b"HTTP/1.1 200 O\x00K\r\n\r\n".to_vec()),
        ("bare CR in reason", b"HTTP/1.1 200 O\rK\r\n\r\n".to_vec()),
        ("no colon", b"HTTP/1.1 200 OK\r\nJust text\r\n\r\n".to_vec()),
        ("empty name", b"HTTP/1.1 200 OK\r\n: v\r\n\r\n".to_vec()),
        (
            "space before colon",
            b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n".to_vec(),
        ),
        (
            "name not a token",
            b"HTTP/1.1 200 OK\r\nX(y): v\r\n\r\n".to_vec(),
        ),
        (
            "control in value",
            b"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n".to_vec(),
        ),
        (
            "bare CR in header",
            b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n".to_vec(),
        ),
        (
            "continuation first",
            b"HTTP/1.1 200 OK\r\n folded\r\n\r\n".to_vec(),
        ),
        (
            "status line too long",
            format!("HTTP/1.1 200 {}\r\n\r\n", "r".repeat(MAX_STATUS_LINE_LEN)).into_bytes(),
        ),
        (
            "header line too long",
            format!(
                "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
                "v".repeat(MAX_HEADER_LINE_LEN)
            )
            .into_bytes(),
        ),
        (
            "too many headers",
            format!("HTTP/1.1 200 OK\r\n{many_headers}\r\n").into_bytes(),
        ),
        (
            "head too large",
            format!(
                "HTTP/1.1 200 OK\r\n{}",
                format!("X: {}\r\n", "v".repeat(MAX_HEADER_LINE_LEN - 3)).repeat(3)
            )
            .into_bytes(),
        ),
    ]
}

#[test]
fn invalid_heads_are_refused_in_every_chunking() {
    for (label, bytes) in invalid() {
        let whole = ResponseHead::decode(&bytes);
        let Err(error) = &whole else {
            panic!("{label}: {whole:?}");
        };
        // The error comes at the same point whatever the chunking.
        for size in [1, 2, 7, 100] {
            let mut reader = HeadReader::new();
            let mut got = None;
            for chunk in bytes.chunks(size) {
                match reader.push(chunk) {
                    Ok(None) => assert!(reader.buffered_len() <= MAX_HEAD_LEN),
                    Ok(Some(done)) => panic!("{label}: {done:?}"),
                    Err(e) => {
                        got = Some(e);
                        break;
                    }
                }
            }
            let got = got.unwrap_or_else(|| panic!("{label}: no error in chunks of {size}"));
            // NotHttp quotes what it has seen, which depends on the chunking.
            if !matches!(error, HttpConnectError::NotHttp { .. }) {
                assert_eq!(&got, error, "{label}, chunks of {size}");
            }
        }
    }
}

#[test]
fn not_http_is_refused_at_the_first_wrong_byte() {
    let mut reader = HeadReader::new();
    assert!(matches!(
        reader.push(b"\x05"),
        Err(HttpConnectError::NotHttp { .. })
    ));
    let mut reader = HeadReader::new();
    assert_eq!(reader.push(b"HTT"), Ok(None));
    assert!(reader.push(b"X").is_err());
}

#[test]
fn every_bound_holds_at_its_limit_and_refuses_one_past() {
    // Status line: exactly MAX_STATUS_LINE_LEN bytes without CRLF.
    let status = |len: usize| {
        let reason = "r".repeat(len - "HTTP/1.1 200 ".len());
        format!("HTTP/1.1 200 {reason}\r\n\r\n").into_bytes()
    };
    assert!(head(&status(MAX_STATUS_LINE_LEN)).0.reason.len() > 1000);
    assert_eq!(
        ResponseHead::decode(&status(MAX_STATUS_LINE_LEN + 1)),
        Err(HttpConnectError::StatusLineTooLong { max: 1024 })
    );
    // Also with bare LF line ends.
    let bare = String::from_utf8(status(MAX_STATUS_LINE_LEN))
        .unwrap()
        .replace("\r\n", "\n");
    assert!(ResponseHead::decode(bare.as_bytes()).unwrap().is_some());
    // Header line.
    let header =
        |len: usize| format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "v".repeat(len - 3)).into_bytes();
    assert!(head(&header(MAX_HEADER_LINE_LEN)).1 > MAX_HEADER_LINE_LEN);
    assert_eq!(
        ResponseHead::decode(&header(MAX_HEADER_LINE_LEN + 1)),
        Err(HttpConnectError::HeaderLineTooLong { line: 2, max: 8192 })
    );
    // Header count.
    let headers = |n: usize| {
        let fields: String = (0..n).map(|i| format!("X-{i}: v\r\n")).collect();
        format!("HTTP/1.1 200 OK\r\n{fields}\r\n").into_bytes()
    };
    assert_eq!(head(&headers(MAX_HEADERS)).0.headers.len(), 64);
    assert_eq!(
        ResponseHead::decode(&headers(MAX_HEADERS + 1)),
        Err(HttpConnectError::TooManyHeaders { max: 64 })
    );
    // Whole head: exactly MAX_HEAD_LEN bytes, then one more.
    let sized = |total: usize| {
        let mut text = String::from("HTTP/1.1 200 OK\r\n");
        let end = "\r\n";
        while text.len() + end.len() < total {
            let room = total - text.len() - end.len();
            let line = room.min(MAX_HEADER_LINE_LEN + 2);
            assert!(line >= 5);
            text.push_str(&format!("X: {}\r\n", "v".repeat(line - 5)));
        }
        text.push_str(end);
        assert_eq!(text.len(), total);
        text.into_bytes()
    };
    let exact = sized(MAX_HEAD_LEN);
    assert_eq!(head(&exact).1, MAX_HEAD_LEN);
    let over = sized(MAX_HEAD_LEN + 1);
    assert_eq!(
        ResponseHead::decode(&over),
        Err(HttpConnectError::HeadTooLarge { max: 16384 })
    );
}

#[test]
fn framing_follows_rfc9112_section_6_3() {
    let framing = |fields: &str| {
        let text = format!("HTTP/1.1 407 x\r\n{fields}\r\n");
        head(text.as_bytes()).0.body_framing()
    };
    assert_eq!(framing(""), BodyFraming::UntilClose);
    assert_eq!(framing("Content-Length: 12\r\n"), BodyFraming::Length(12));
    assert_eq!(
        framing("Content-Length: 12, 12\r\nContent-Length: 12\r\n"),
        BodyFraming::Length(12)
    );
    assert_eq!(framing("Content-Length: 12, 13\r\n"), BodyFraming::Unclear);
    assert_eq!(framing("Content-Length: +12\r\n"), BodyFraming::Unclear);
    assert_eq!(
        framing("Content-Length: 99999999999999999999\r\n"),
        BodyFraming::Unclear
    );
    assert_eq!(
        framing("Transfer-Encoding: chunked\r\n"),
        BodyFraming::Chunked
    );
    assert_eq!(
        framing("Transfer-Encoding: gzip, CHUNKED\r\n"),
        BodyFraming::Chunked
    );
    assert_eq!(
        framing("Transfer-Encoding: chunked, gzip\r\n"),
        BodyFraming::UntilClose
    );
    assert_eq!(
        framing("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
        BodyFraming::Unclear
    );
    let empty = |status: u16| {
        head(format!("HTTP/1.1 {status} x\r\nContent-Length: 9\r\n\r\n").as_bytes())
            .0
            .body_framing()
    };
    assert_eq!(empty(100), BodyFraming::Empty);
    assert_eq!(empty(204), BodyFraming::Empty);
    assert_eq!(empty(304), BodyFraming::Empty);
    assert_eq!(empty(407), BodyFraming::Length(9));
}

#[test]
fn keep_alive_follows_rfc9112_section_9_3() {
    let keeps = |version: &str, fields: &str| {
        let text = format!("HTTP/{version} 407 x\r\n{fields}\r\n");
        head(text.as_bytes()).0.keeps_alive()
    };
    assert!(keeps("1.1", ""));
    assert!(!keeps("1.1", "Connection: close\r\n"));
    assert!(!keeps("1.1", "Connection: Upgrade, CLOSE\r\n"));
    assert!(!keeps("1.1", "Proxy-Connection: close\r\n"));
    assert!(!keeps("1.0", ""));
    assert!(keeps("1.0", "Connection: Keep-Alive\r\n"));
    assert!(!keeps(
        "1.0",
        "Connection: keep-alive\r\nConnection: close\r\n"
    ));
}

#[test]
fn challenges_name_their_schemes() {
    let schemes = |fields: &str| {
        let (h, _) = head(format!("HTTP/1.1 407 x\r\n{fields}\r\n").as_bytes());
        (h.auth_schemes(), h.offers_basic())
    };
    assert_eq!(schemes(""), (vec![], false));
    assert_eq!(
        schemes("Proxy-Authenticate: Basic realm=\"a, b\", charset=\"UTF-8\"\r\n"),
        (vec!["Basic".to_owned()], true)
    );
    assert_eq!(
        schemes("Proxy-Authenticate: Negotiate YII=, NTLM\r\nProxy-Authenticate: Digest realm=\"x\", nonce=\"n\", qop=\"auth\"\r\n"),
        (vec!["Negotiate".to_owned(), "NTLM".to_owned(), "Digest".to_owned()], false)
    );
    assert_eq!(
        schemes("Proxy-Authenticate: basic realm=\"x\\\", y\"\r\nProxy-Authenticate: BASIC\r\n"),
        (vec!["basic".to_owned()], true)
    );
    let many: String = (0..20).map(|i| format!("S{i}, ")).collect();
    let (listed, basic) = schemes(&format!("Proxy-Authenticate: {many}Basic\r\n"));
    assert_eq!((listed.len(), basic), (MAX_LISTED_SCHEMES, true));
}

#[test]
fn heads_round_trip_through_encode() {
    for bytes in VALID {
        let (h, _) = head(bytes);
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(head(&out).0, h);
    }
}

// --- Bodies ----------------------------------------------------------------------------------

/// Skips `body` (in chunks of `size`) and returns how many bytes it took, or why not.
fn skip(framing: BodyFraming, body: &[u8], size: usize) -> Result<Option<usize>, Unskippable> {
    let Some(mut skipper) = BodySkipper::new(framing)? else {
        return Ok(Some(0));
    };
    let mut used = 0;
    for chunk in body.chunks(size.max(1)) {
        if let Some(n) = skipper.skip(chunk)? {
            return Ok(Some(used + n));
        }
        used += chunk.len();
    }
    Ok(None)
}

#[test]
fn bodies_are_read_past_in_every_chunking() {
    let chunked: &[u8] =
        b"5;name=\"v\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let bare: &[u8] = b"3\nabc\n0\n\n";
    for (framing, body) in [
        (BodyFraming::Length(6), &b"Denied"[..]),
        (BodyFraming::Chunked, chunked),
        (BodyFraming::Chunked, bare),
        (BodyFraming::Chunked, b"0\r\n\r\n"),
    ] {
        let mut longer = body.to_vec();
        longer.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        for size in 1..=longer.len() {
            assert_eq!(
                skip(framing, &longer, size),
                Ok(Some(body.len())),
                "{framing:?} {size}"
            );
        }
        assert_eq!(skip(framing, &body[..body.len() - 1], 3), Ok(None));
    }
    assert_eq!(skip(BodyFraming::Empty, b"HTTP", 1), Ok(Some(0)));
    assert_eq!(skip(BodyFraming::Length(0), b"HTTP", 1), Ok(Some(0)));
}

#[test]
fn unskippable_bodies_say_why() {
    assert_eq!(
        BodySkipper::new(BodyFraming::UntilClose),
        Err(Unskippable::Framing)
    );
    assert_eq!(
        BodySkipper::new(BodyFraming::Unclear),
        Err(Unskippable::Framing)
    );
    assert_eq!(
        BodySkipper::new(BodyFraming::Length(MAX_SKIPPED_BODY_LEN + 1)),
        Err(Unskippable::TooLarge)
    );
    for (body, why) in [
        (&b"x\r\n"[..], Unskippable::BadChunk),
        (b"\r\n", Unskippable::BadChunk),
        (b" 5\r\n", Unskippable::BadChunk),
        (b"5\r\nhelloXX", Unskippable::BadChunk),
        (b"5\rx", Unskippable::BadChunk),
        (b"5;\x01\r\n", Unskippable::BadChunk),
        (b"0\r\nX\rY\r\n", Unskippable::BadChunk),
        (b"10001\r\n", Unskippable::TooLarge),
        (b"FFFFFFFFFFFFFFFFF\r\n", Unskippable::TooLarge),
    ] {
        assert_eq!(
            skip(BodyFraming::Chunked, body, 1),
            Err(why),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    // Many small chunks add up past the bound.
    let chunk = format!("400\r\n{}\r\n", "x".repeat(0x400));
    let body = chunk.repeat(65);
    assert_eq!(
        skip(BodyFraming::Chunked, body.as_bytes(), 4096),
        Err(Unskippable::TooLarge)
    );
    let long_ext = format!("1;{}\r\n", "e".repeat(1100));
    assert_eq!(
        skip(BodyFraming::Chunked, long_ext.as_bytes(), 64),
        Err(Unskippable::BadChunk)
    );
}

// --- Error texts -----------------------------------------------------------------------------

#[test]
fn snapshot_error_texts() {
    let mut report = String::new();
    for (label, bytes) in invalid() {
        let error = ResponseHead::decode(&bytes).unwrap_err();
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
            .escape_debug()
            .to_string();
        writeln!(report, "{label}: {shown}\n  -> {error}").unwrap();
    }
    let t = target().to_string();
    let machine_errors = [
        Authority::domain("a b", 1).unwrap_err(),
        Authority::domain("edge.example.com", 0).unwrap_err(),
        BasicCredentials::new("a:b", "x").unwrap_err(),
        HttpConnectError::TooManyInterimResponses {
            max: MAX_INTERIM_RESPONSES,
        },
        HttpConnectError::AuthRequired {
            target: t.clone(),
            status: 407,
            reason: "Proxy Authentication Required".into(),
            offered: "Basic".into(),
        },
        HttpConnectError::AuthUnsupported {
            target: t.clone(),
            offered: "NTLM, Negotiate".into(),
        },
        HttpConnectError::AuthRejected {
            target: t.clone(),
            status: 407,
            reason: "Proxy Authentication Required".into(),
        },
        HttpConnectError::Refused {
            target: t.clone(),
            status: 403,
            reason: "Forbidden".into(),
        },
        HttpConnectError::ProxyUnreachable,
        HttpConnectError::ClosedEarly { target: t.clone() },
        HttpConnectError::Timeout {
            target: t,
            timeout_ms: 5000,
        },
    ];
    for error in machine_errors {
        writeln!(report, "-> {error}").unwrap();
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("http_connect_errors", report));
}
