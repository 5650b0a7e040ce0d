//! The proxy's side of `CONNECT`, for the simulated enterprise proxies (the pair world's and
//! the turmoil world's): where a request head ends, and what a proxy that tunnels only to IP
//! addresses answers it. Pure: the drivers read and write the bytes.

use std::net::SocketAddr;

use super::BasicCredentials;

/// What a proxy answers one request head.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectDecision {
    /// Connect to this address; once connected, answer [`ESTABLISHED`] and copy both ways.
    Tunnel(SocketAddr),
    /// The credentials are missing or wrong: answer [`CHALLENGE`] and keep the connection
    /// for the next request (as squid does).
    Challenge,
    /// Answer this status (`400 Bad Request`: a malformed request line, a version that is
    /// not HTTP/1.x, a target that is not `ip:port`; `405 Method Not Allowed`: another
    /// method) and close.
    Refuse(&'static str),
}

/// The `407` a proxy that wants Basic credentials answers, with an empty body.
pub const CHALLENGE: &str = "HTTP/1.1 407 Proxy Authentication Required\r\n\
                             Proxy-Authenticate: Basic realm=\"corp\"\r\n\
                             Content-Length: 0\r\n\r\n";

/// The `200` that opens a tunnel.
pub const ESTABLISHED: &str = "HTTP/1.1 200 Connection established\r\n\r\n";

/// The length of the request head at the start of `buf` (its empty line included), or `None`
/// while it is incomplete.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// What to answer the request head `head` (up to its empty line) when every tunnel needs
/// `credentials` (`None`: none needed). The field name `Proxy-Authorization` is matched in any
/// case, its value exactly.
///
/// ```
/// use cloudproxy_core::http_connect::{decide_connect, BasicCredentials, ConnectDecision};
/// let head = b"CONNECT 120.92.118.34:4000 HTTP/1.1\r\nHost: 120.92.118.34:4000\r\n\r\n";
/// assert_eq!(decide_connect(head, None), ConnectDecision::Tunnel("120.92.118.34:4000".parse().unwrap()));
/// let user = BasicCredentials::new("alice", "s3cret").unwrap();
/// assert_eq!(decide_connect(head, Some(&user)), ConnectDecision::Challenge);
/// assert_eq!(decide_connect(b"GET / HTTP/1.1\r\n\r\n", None), ConnectDecision::Refuse("405 Method Not Allowed"));
/// ```
pub fn decide_connect(head: &[u8], credentials: Option<&BasicCredentials>) -> ConnectDecision {
    const BAD: ConnectDecision = ConnectDecision::Refuse("400 Bad Request");
    let Ok(text) = std::str::from_utf8(head) else {
        return BAD;
    };
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return BAD;
    };
    if method != "CONNECT" {
        return ConnectDecision::Refuse("405 Method Not Allowed");
    }
    if !version.starts_with("HTTP/1.") {
        return BAD;
    }
    let Ok(target) = target.parse::<SocketAddr>() else {
        return BAD;
    };
    if let Some(expected) = credentials {
        let wanted = expected.header_value();
        let given = lines.any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case("proxy-authorization") && value.trim() == wanted
            })
        });
        if !given {
            return ConnectDecision::Challenge;
        }
    }
    ConnectDecision::Tunnel(target)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn decides_connect_requests() {
        let ok = b"CONNECT 120.92.118.34:4000 HTTP/1.1\r\nHost: x\r\n\r\n";
        let to: SocketAddr = "120.92.118.34:4000".parse().unwrap();
        assert_eq!(decide_connect(ok, None), ConnectDecision::Tunnel(to));
        assert_eq!(head_len(ok), Some(ok.len()));
        assert_eq!(head_len(&ok[..ok.len() - 1]), None);
        let refused = |head: &[u8]| match decide_connect(head, None) {
            ConnectDecision::Refuse(status) => status,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(b"GET / HTTP/1.1\r\n\r\n"), "405 Method Not Allowed");
        assert_eq!(
            refused(b"CONNECT edge.example:443 HTTP/1.1\r\n\r\n"),
            "400 Bad Request"
        );
        assert_eq!(
            refused(b"CONNECT 1.2.3.4:5 HTTP/2\r\n\r\n"),
            "400 Bad Request"
        );
        assert_eq!(refused(b"CONNECT\r\n\r\n"), "400 Bad Request");
        assert_eq!(refused(b"\xff\xfe\r\n\r\n"), "400 Bad Request");
        let user = BasicCredentials::new("alice", "s3cret").unwrap();
        assert_eq!(decide_connect(ok, Some(&user)), ConnectDecision::Challenge);
        let with = |c: &BasicCredentials| {
            format!(
                "CONNECT 120.92.118.34:4000 HTTP/1.1\r\nproxy-AUTHORIZATION: {}\r\n\r\n",
                c.header_value()
            )
        };
        let tunnel = decide_connect(with(&user).as_bytes(), Some(&user));
        assert_eq!(tunnel, ConnectDecision::Tunnel(to));
        let wrong = BasicCredentials::new("alice", "guess").unwrap();
        let challenged = decide_connect(with(&wrong).as_bytes(), Some(&user));
        assert_eq!(challenged, ConnectDecision::Challenge);
    }
}
