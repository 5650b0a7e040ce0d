//! The seeds of the `http_connect` target: one script per flow of the machine (tunnel, the
//! 407 round on the same and on a new connection, each failure), proxies' answers as squid and
//! tinyproxy write them.

use super::super::http_connect::{Op, Script};
use super::{seed, Seed};

/// Indexes into [`RESPONSES`](super::super::http_connect::RESPONSES).
const OK: u8 = 0;
const OK_HTTP10: u8 = 1;
const AUTH_LENGTH: u8 = 2;
const AUTH_CLOSE: u8 = 4;
const AUTH_NTLM: u8 = 5;
const FORBIDDEN: u8 = 6;
const CONTINUE: u8 = 7;
const TUNNEL: u8 = 8;

pub(super) fn http_connect_seeds() -> Vec<Seed> {
    let t = "http_connect";
    let script = |credentials: bool, ops: Vec<Op>| Script { credentials, ops }.encode();
    let chunked_407: &[u8] = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
        Proxy-Authenticate: Basic realm=\"corp\"\r\nTransfer-Encoding: chunked\r\n\r\n6;x=y\r\nDen";
    let mut oversized = b"HTTP/1.1 200 OK\r\n".to_vec();
    while oversized.len() <= 17_000 {
        oversized.extend_from_slice(format!("X-Pad: {}\r\n", "v".repeat(4_000)).as_bytes());
    }
    vec![
        seed(
            t,
            "squid_200_early_tunnel_bytes.bin",
            script(
                false,
                vec![
                    Op::Connected(0),
                    Op::Data(
                        0,
                        b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01\x00\x05hello"
                            .to_vec(),
                    ),
                ],
            ),
        ),
        seed(
            t,
            "tinyproxy_http10_200.bin",
            script(
                false,
                vec![
                    Op::Connected(0),
                    Op::Known(0, OK_HTTP10),
                    Op::Known(0, TUNNEL),
                ],
            ),
        ),
        seed(
            t,
            "basic_407_keepalive_length_then_200.bin",
            script(
                true,
                vec![
                    Op::Connected(0),
                    Op::Known(0, AUTH_LENGTH),
                    Op::Known(0, OK),
                    Op::Known(0, TUNNEL),
                ],
            ),
        ),
        seed(
            t,
            "basic_407_chunked_split_then_200.bin",
            script(
                true,
                vec![
                    Op::Connected(0),
                    Op::Data(0, chunked_407.to_vec()),
                    Op::Data(0, b"ied\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\nearly".to_vec()),
                ],
            ),
        ),
        seed(
            t,
            "basic_407_connection_close_reconnect.bin",
            script(
                true,
                vec![
                    Op::Connected(0),
                    Op::Known(0, AUTH_CLOSE),
                    Op::Connected(1),
                    Op::Known(1, OK),
                ],
            ),
        ),
        seed(
            t,
            "basic_407_rejected_twice.bin",
            script(
                true,
                vec![
                    Op::Connected(0),
                    Op::Known(0, AUTH_LENGTH),
                    Op::Known(0, AUTH_LENGTH),
                ],
            ),
        ),
        seed(
            t,
            "basic_407_without_credentials.bin",
            script(false, vec![Op::Connected(0), Op::Known(0, AUTH_LENGTH)]),
        ),
        seed(
            t,
            "ntlm_only_407.bin",
            script(true, vec![Op::Connected(0), Op::Known(0, AUTH_NTLM)]),
        ),
        seed(
            t,
            "forbidden_403.bin",
            script(true, vec![Op::Connected(0), Op::Known(0, FORBIDDEN)]),
        ),
        seed(
            t,
            "continue_then_200.bin",
            script(
                false,
                vec![Op::Connected(0), Op::Known(0, CONTINUE), Op::Known(0, OK)],
            ),
        ),
        seed(
            t,
            "proxy_closes_mid_head.bin",
            script(
                false,
                vec![
                    Op::Connected(0),
                    Op::Data(0, b"HTTP/1.1 20".to_vec()),
                    Op::Closed(0),
                ],
            ),
        ),
        seed(
            t,
            "connect_failed.bin",
            script(false, vec![Op::ConnectFailed(0)]),
        ),
        seed(
            t,
            "timeout_while_connecting.bin",
            script(
                false,
                vec![Op::Wait(3_000), Op::Wait(3_000), Op::Connected(0)],
            ),
        ),
        seed(
            t,
            "not_http_socks5_reply.bin",
            script(false, vec![Op::Connected(0), Op::Data(0, vec![0x05, 0x00])]),
        ),
        seed(
            t,
            "oversized_head.bin",
            script(false, vec![Op::Connected(0), Op::Data(0, oversized)]),
        ),
    ]
}
