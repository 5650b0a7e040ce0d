//! Answers recorded from real proxies, replayed through the machine.
//!
//! Recorded on 2026-12-01 on loopback from Debian's squid 5.7 (Basic auth through
//! `basic_ncsa_auth`, `http_access allow authed`) and tinyproxy 1.11.1 (`BasicAuth alice
//! secret`), each sent the requests `encode_request` writes for `127.0.0.1:<port>` (no
//! credentials, `alice:secret`, `alice:wrong`, and a closed port) while a loopback target
//! answered `hello from target` at once; each file holds every byte read until the proxy
//! closed or went quiet for a second. What they show:
//!
//! - squid's 407 is HTTP/1.1, keep-alive, with a 3045-byte `Content-Length` body: the second
//!   request goes on the same connection after the body;
//! - tinyproxy's 407 is HTTP/1.0 with `Connection: close` and an unframed body: a new
//!   connection;
//! - both 200s carry the target's first bytes in the same read (`early`);
//! - tinyproxy answers wrong credentials with `401 Unauthorized`, squid with another 407;
//! - a closed target port is squid's `503 Service Unavailable`, tinyproxy's
//!   `500 Unable to connect`.

use super::*;

const SQUID_407: &[u8] = include_bytes!("recorded/squid_5.7_407.bin");
const SQUID_200: &[u8] = include_bytes!("recorded/squid_5.7_200_early.bin");
const SQUID_503: &[u8] = include_bytes!("recorded/squid_5.7_503_connect_failed.bin");
const TINY_407: &[u8] = include_bytes!("recorded/tinyproxy_1.11.1_407.bin");
const TINY_200: &[u8] = include_bytes!("recorded/tinyproxy_1.11.1_200_early.bin");
const TINY_401: &[u8] = include_bytes!("recorded/tinyproxy_1.11.1_401_wrong_credentials.bin");
const TINY_500: &[u8] = include_bytes!("recorded/tinyproxy_1.11.1_500_connect_failed.bin");
const EARLY: &[u8] = b"hello from target";

#[test]
fn squid_407_is_answered_on_the_same_connection() {
    let (h, used) = head(SQUID_407);
    assert_eq!(
        (h.version, h.status, h.keeps_alive()),
        (HttpVersion::Http11, 407, true)
    );
    assert_eq!(h.body_framing(), BodyFraming::Length(3045));
    assert_eq!(used + 3045, SQUID_407.len());
    let (outputs, tunnel) = check_every_split(true, &cat(&[SQUID_407, SQUID_200]));
    assert_eq!(outputs.len(), 3, "{outputs:?}");
    assert_eq!(outputs[1], transmit(0, request(true)));
    assert!(matches!(
        outputs[2],
        HttpConnectOutput::Established {
            conn: ProxyConn(0),
            ..
        }
    ));
    assert_eq!(tunnel, EARLY);
}

#[test]
fn tinyproxy_407_is_answered_on_a_new_connection() {
    let (h, _) = head(TINY_407);
    assert_eq!((h.version, h.keeps_alive()), (HttpVersion::Http10, false));
    let mut m = Harness::new(Some(alice()));
    m.connected(0);
    assert_eq!(m.data(0, TINY_407), [close(0), connect(1)]);
    assert_eq!(m.connected(1), [transmit(1, request(true))]);
    let out = m.data(1, TINY_200);
    let [HttpConnectOutput::Established { conn, head, early }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        (conn.0, head.reason.as_str()),
        (1, "Connection established")
    );
    assert_eq!(early, EARLY);
}

#[test]
fn wrong_credentials_are_rejected_by_both() {
    // squid: a second 407 on the same connection.
    let (outputs, _) = run_stream(true, &cat(&[SQUID_407, SQUID_407]), &[]);
    assert!(matches!(
        failed(&outputs[3]),
        HttpConnectError::AuthRejected { status: 407, .. }
    ));
    // tinyproxy: 401 on the new connection.
    let mut m = Harness::new(Some(alice()));
    m.connected(0);
    m.data(0, TINY_407);
    m.connected(1);
    let out = m.data(1, TINY_401);
    assert_eq!(
        failed(&out[1]).to_string(),
        "the HTTP proxy rejected the credentials for CONNECT edge.example.com:443: 401 \
         Unauthorized after Proxy-Authorization was sent"
    );
}

#[test]
fn no_credentials_and_closed_ports_are_clear_errors() {
    for recorded in [SQUID_407, TINY_407] {
        let (outputs, _) = run_stream(false, recorded, &[]);
        assert!(matches!(
            failed(&outputs[2]),
            HttpConnectError::AuthRequired { status: 407, offered, .. } if offered == "Basic"
        ));
    }
    for (recorded, status, reason) in [
        (SQUID_503, 503, "Service Unavailable"),
        (TINY_500, 500, "Unable to connect"),
    ] {
        let (outputs, _) = check_every_split(true, recorded);
        assert_eq!(
            failed(&outputs[2]),
            &HttpConnectError::Refused {
                target: "edge.example.com:443".into(),
                status,
                reason: reason.into()
            }
        );
    }
    // A 401 before any credentials were sent is just a refusal.
    let (outputs, _) = run_stream(true, TINY_401, &[]);
    assert!(matches!(
        failed(&outputs[2]),
        HttpConnectError::Refused { status: 401, .. }
    ));
}
