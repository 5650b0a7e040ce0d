//! The machine against scripted proxies: tunnels, the 407 flows (same connection, new
//! connection, failures), statuses, timeouts, stale inputs; every stream split at every byte.

use super::*;

const TUNNEL: &[u8] = b"\x16\x03\x01\x00\x05tunnel bytes";
const OK: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";
const AUTH_LENGTH: &[u8] = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
    Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 6\r\n\r\nDenied";
const AUTH_CHUNKED: &[u8] = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
    Proxy-Authenticate: Basic realm=\"corp\"\r\nTransfer-Encoding: chunked\r\n\r\n\
    6;x=y\r\nDenied\r\n0\r\nX-Trailer: t\r\n\r\n";
const AUTH_CLOSE: &[u8] = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
    Proxy-Authenticate: Basic realm=\"corp\"\r\nConnection: close\r\nContent-Length: 6\r\n\r\nDenied";
const AUTH_HTTP10: &[u8] = b"HTTP/1.0 407 Proxy Authentication Required\r\n\
    Proxy-Authenticate: Basic realm=\"tinyproxy\"\r\nContent-Type: text/html\r\n\r\n<html>denied</html>";
const AUTH_HTTP10_KEEP: &[u8] = b"HTTP/1.0 407 Proxy Authentication Required\r\n\
    Proxy-Authenticate: Basic realm=\"corp\"\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";

fn established(conn: u32, head_bytes: &[u8]) -> HttpConnectOutput {
    HttpConnectOutput::Established {
        conn: ProxyConn(conn),
        head: head(head_bytes).0,
        early: Vec::new(),
    }
}

// --- Tunnels on the first connection -----------------------------------------------------------

#[test]
fn a_2xx_establishes_and_hands_back_the_early_tunnel_bytes() {
    let (outputs, tunnel) = check_every_split(false, &cat(&[OK, TUNNEL]));
    assert_eq!(outputs, [transmit(0, request(false)), established(0, OK)]);
    assert_eq!(tunnel, TUNNEL);
    // Any 2xx; its Content-Length is not a body: the bytes are the tunnel's.
    for ok in [
        &b"HTTP/1.1 201 Created\r\n\r\n"[..],
        b"HTTP/1.0 299 Whatever\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let (outputs, tunnel) = run_stream(true, &cat(&[ok, TUNNEL]), &[]);
        assert_eq!(outputs[1], established(0, ok));
        assert_eq!(tunnel, TUNNEL);
    }
}

#[test]
fn interim_responses_are_skipped_up_to_the_bound() {
    let interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n";
    let (outputs, tunnel) = check_every_split(false, &cat(&[interim, OK, TUNNEL]));
    assert_eq!(outputs, [transmit(0, request(false)), established(0, OK)]);
    assert_eq!(tunnel, TUNNEL);
    let five = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INTERIM_RESPONSES + 1);
    let (outputs, _) = run_stream(false, &cat(&[&five, OK]), &[]);
    assert_eq!(outputs[1], close(0));
    assert_eq!(
        failed(&outputs[2]),
        &HttpConnectError::TooManyInterimResponses { max: 4 }
    );
}

// --- The 407 round on the same connection ------------------------------------------------------

#[test]
fn a_407_with_a_length_body_is_answered_on_the_same_connection() {
    let (outputs, tunnel) = check_every_split(true, &cat(&[AUTH_LENGTH, OK, TUNNEL]));
    assert_eq!(
        outputs,
        [
            transmit(0, request(false)),
            transmit(0, request(true)),
            established(0, OK)
        ]
    );
    assert_eq!(tunnel, TUNNEL);
    let second = String::from_utf8(request(true)).unwrap();
    assert!(second.contains("\r\nProxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n"));
}

#[test]
fn a_407_with_a_chunked_body_is_answered_on_the_same_connection() {
    let (outputs, tunnel) = check_every_split(true, &cat(&[AUTH_CHUNKED, OK, TUNNEL]));
    assert_eq!(
        outputs,
        [
            transmit(0, request(false)),
            transmit(0, request(true)),
            established(0, OK)
        ]
    );
    assert_eq!(tunnel, TUNNEL);
}

#[test]
fn an_http10_407_with_keep_alive_is_answered_on_the_same_connection() {
    let (outputs, _) = check_every_split(true, &cat(&[AUTH_HTTP10_KEEP, OK]));
    assert_eq!(outputs[1], transmit(0, request(true)));
    assert_eq!(outputs[2], established(0, OK));
}

// --- The 407 round on a new connection ---------------------------------------------------------

/// After a 407 on connection 0 that needs a new connection: `Close(0)`, `Connect(1)`, then the
/// request with credentials on 1 and the tunnel.
fn check_reconnects(first: &[u8]) {
    let mut h = Harness::new(Some(alice()));
    assert_eq!(h.connected(0), [transmit(0, request(false))]);
    assert_eq!(h.data(0, first), [close(0), connect(1)]);
    assert_eq!(h.data(0, b"late bytes of the old connection"), []);
    assert_eq!(h.connected(1), [transmit(1, request(true))]);
    let out = h.data(1, &cat(&[OK, TUNNEL]));
    assert_eq!(
        out,
        [HttpConnectOutput::Established {
            conn: ProxyConn(1),
            head: head(OK).0,
            early: TUNNEL.to_vec()
        }]
    );
    assert_eq!(h.machine.ignored_inputs(), 1);
}

#[test]
fn a_407_with_connection_close_is_answered_on_a_new_connection() {
    check_reconnects(AUTH_CLOSE);
    check_reconnects(&AUTH_CLOSE[..AUTH_CLOSE.len() - 6]); // before the body arrives
}

#[test]
fn an_http10_407_without_keep_alive_is_answered_on_a_new_connection() {
    check_reconnects(AUTH_HTTP10);
}

#[test]
fn a_407_whose_body_cannot_be_skipped_is_answered_on_a_new_connection() {
    let challenge = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n";
    for fields in [
        format!("Content-Length: {}\r\n", MAX_SKIPPED_BODY_LEN + 1),
        String::new(),
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n".to_owned(),
        "Content-Length: 5, 6\r\n".to_owned(),
    ] {
        check_reconnects(format!("{challenge}{fields}\r\n").as_bytes());
    }
    // A chunked body that turns out broken, or too large.
    let chunked = format!("{challenge}Transfer-Encoding: chunked\r\n\r\n");
    check_reconnects(format!("{chunked}6\r\nDenied!!").as_bytes());
    check_reconnects(format!("{chunked}10001\r\n").as_bytes());
}

#[test]
fn a_proxy_that_closes_during_the_407_body_is_answered_on_a_new_connection() {
    let mut h = Harness::new(Some(alice()));
    h.connected(0);
    assert_eq!(h.data(0, &AUTH_CHUNKED[..AUTH_CHUNKED.len() - 10]), []);
    // The proxy closed it: nothing to close, just the next connection.
    assert_eq!(h.closed(0), [connect(1)]);
    assert_eq!(h.connected(1), [transmit(1, request(true))]);
}

// --- Failures -----------------------------------------------------------------------------------

#[test]
fn a_407_without_credentials_is_a_clear_error() {
    let (outputs, _) = check_every_split(false, &cat(&[AUTH_LENGTH, OK]));
    assert_eq!(outputs[1], close(0));
    let error = failed(&outputs[2]);
    assert_eq!(
        error.to_string(),
        "the HTTP proxy requires authentication for CONNECT edge.example.com:443 (407 Proxy \
         Authentication Required; it offers Basic): configure the proxy's user name and password"
    );
    assert_eq!(outputs.len(), 3);
}

#[test]
fn a_second_407_means_the_credentials_were_rejected() {
    let (outputs, _) = check_every_split(true, &cat(&[AUTH_LENGTH, AUTH_LENGTH, OK]));
    assert_eq!(outputs[2], close(0));
    assert!(matches!(
        failed(&outputs[3]),
        HttpConnectError::AuthRejected { status: 407, .. }
    ));
    // Also on the new connection.
    let mut h = Harness::new(Some(alice()));
    h.connected(0);
    h.data(0, AUTH_CLOSE);
    h.connected(1);
    let out = h.data(1, AUTH_CLOSE);
    assert_eq!(out[0], close(1));
    assert!(matches!(
        failed(&out[1]),
        HttpConnectError::AuthRejected { .. }
    ));
}

#[test]
fn a_407_without_basic_is_unsupported() {
    for (fields, offered) in [
        (
            "Proxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate\r\n",
            "NTLM, Negotiate",
        ),
        ("", "no Proxy-Authenticate challenge"),
    ] {
        let text = format!(
            "HTTP/1.1 407 Proxy Authentication Required\r\n{fields}Content-Length: 0\r\n\r\n"
        );
        let (outputs, _) = run_stream(true, text.as_bytes(), &[]);
        assert_eq!(outputs[1], close(0));
        assert_eq!(
            failed(&outputs[2]),
            &HttpConnectError::AuthUnsupported {
                target: "edge.example.com:443".into(),
                offered: offered.into()
            }
        );
    }
}

#[test]
fn other_statuses_are_refusals_naming_status_and_reason() {
    for (response, status, reason) in [
        (
            &b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"[..],
            403,
            "Forbidden",
        ),
        (b"HTTP/1.0 502 Bad Gateway\r\n\r\n", 502, "Bad Gateway"),
        (
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            101,
            "Switching Protocols",
        ),
        (
            b"HTTP/1.1 302 Found\r\nLocation: http://portal/\r\n\r\n",
            302,
            "Found",
        ),
        (b"HTTP/1.1 405\r\n\r\n", 405, ""),
    ] {
        let (outputs, _) = check_every_split(true, response);
        assert_eq!(outputs[1], close(0));
        let error = failed(&outputs[2]);
        assert_eq!(
            error,
            &HttpConnectError::Refused {
                target: "edge.example.com:443".into(),
                status,
                reason: reason.into()
            }
        );
    }
    let long = format!("HTTP/1.1 403 {}\r\n\r\n", "é".repeat(500));
    let (outputs, _) = run_stream(false, long.as_bytes(), &[]);
    let HttpConnectError::Refused { reason, .. } = failed(&outputs[2]) else {
        panic!()
    };
    assert_eq!(reason.chars().count(), 64);
}

#[test]
fn a_non_http_or_oversized_answer_fails_and_closes() {
    let (outputs, _) = run_stream(false, b"\x05\x00", &[]);
    assert_eq!(outputs[1], close(0));
    assert_eq!(
        failed(&outputs[2]).to_string(),
        "the proxy's answer is not HTTP: it starts \"\\x05\\x00\" instead of \"HTTP/\" (is this an HTTP proxy?)"
    );
    let mut h = Harness::new(None);
    h.connected(0);
    let mut stream = b"HTTP/1.1 200 OK\r\n".to_vec();
    let line = format!("X: {}\r\n", "v".repeat(1000));
    while stream.len() <= MAX_HEAD_LEN {
        stream.extend_from_slice(line.as_bytes());
    }
    let mut out = Vec::new();
    for chunk in stream.chunks(100) {
        out.extend(h.data(0, chunk));
        assert!(h.machine.buffered_len() <= MAX_HEAD_LEN);
    }
    assert_eq!(out[0], close(0));
    assert_eq!(
        failed(&out[1]),
        &HttpConnectError::HeadTooLarge { max: MAX_HEAD_LEN }
    );
}

#[test]
fn connection_failures_need_no_close() {
    let mut h = Harness::new(None);
    let out = h.input(HttpConnectInput::ConnectFailed { conn: ProxyConn(0) });
    assert_eq!(
        out,
        [HttpConnectOutput::Failed {
            error: HttpConnectError::ProxyUnreachable
        }]
    );
    let mut h = Harness::new(None);
    assert_eq!(
        h.closed(0),
        [HttpConnectOutput::Failed {
            error: HttpConnectError::ProxyUnreachable
        }]
    );
    let mut h = Harness::new(None);
    h.connected(0);
    h.data(0, b"HTTP/1.1 200 Connection");
    let out = h.closed(0);
    assert_eq!(
        out,
        [HttpConnectOutput::Failed {
            error: HttpConnectError::ClosedEarly {
                target: "edge.example.com:443".into()
            }
        }]
    );
}

#[test]
fn the_handshake_deadline_covers_the_whole_handshake() {
    let mut h = Harness::new(Some(alice()));
    let deadline = T0 + DEFAULT_HANDSHAKE_TIMEOUT;
    assert_eq!(h.machine.poll_timeout(), Some(deadline));
    h.connected(0);
    h.data(0, AUTH_CLOSE);
    // The new connection does not restart the clock.
    assert_eq!(h.machine.poll_timeout(), Some(deadline));
    assert_eq!(
        h.advance(DEFAULT_HANDSHAKE_TIMEOUT - Duration::from_micros(1)),
        []
    );
    assert_eq!(
        h.advance(Duration::from_micros(1)),
        [
            close(1),
            HttpConnectOutput::Failed {
                error: HttpConnectError::Timeout {
                    target: "edge.example.com:443".into(),
                    timeout_ms: 5000
                }
            }
        ]
    );
    assert_eq!(h.machine.poll_timeout(), None);
    // An input at or after the deadline fires it first, and is ignored.
    let mut h = Harness::new(None);
    h.now = deadline;
    let out = h.connected(0);
    assert_eq!(out[0], close(0));
    assert!(matches!(failed(&out[1]), HttpConnectError::Timeout { .. }));
    // A zero timeout counts as one millisecond.
    let config = HttpConnectConfig {
        handshake_timeout: Duration::ZERO,
    };
    let m = HttpConnectClient::new(target(), None, config, T0);
    assert_eq!(m.poll_timeout(), Some(T0 + Duration::from_millis(1)));
}

#[test]
fn stale_and_late_inputs_are_ignored_and_counted() {
    let mut h = Harness::new(None);
    assert_eq!(h.data(0, OK), []); // before Connected
    assert_eq!(h.connected(1), []); // never asked for
    assert_eq!(h.data(7, OK), []);
    h.connected(0);
    assert_eq!(h.connected(0), []); // twice
    assert_eq!(h.machine.ignored_inputs(), 4);
    assert_eq!(h.data(0, OK).len(), 1);
    assert!(h.machine.is_finished());
    // The connection is the caller's now.
    assert_eq!(h.data(0, TUNNEL), []);
    assert_eq!(h.closed(0), []);
    assert_eq!(h.advance(Duration::from_secs(60)), []);
    assert_eq!(h.machine.ignored_inputs(), 6);
}

#[test]
fn outputs_and_connections_are_bounded_over_a_whole_life() {
    // The longest life: 407 on 0, reconnect, 407 on 1.
    let mut h = Harness::new(Some(alice()));
    h.connected(0);
    h.data(0, AUTH_CLOSE);
    h.connected(1);
    h.data(1, AUTH_LENGTH);
    let connects = h
        .outputs
        .iter()
        .filter(|o| matches!(o, HttpConnectOutput::Connect { .. }))
        .count();
    assert_eq!((connects, h.outputs.len()), (2, 7));
    assert!(h.machine.is_finished());
}
