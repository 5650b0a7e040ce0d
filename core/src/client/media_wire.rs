//! How media looks on each route: the route's addresses and ids, and one datagram's encoding
//! over UDP and over the TCP path.

use std::net::SocketAddr;

use crate::sdrtn::encode_media_frame;
use crate::socks5::{encode_udp_datagram, Address};
use crate::wire::Message;

/// The media side of the route.
#[derive(Debug)]
pub(super) enum MediaRoute {
    Cloud {
        relay_tcp: SocketAddr,
        relay_udp: Option<SocketAddr>,
        session_id: u64,
    },
    Socks {
        server: SocketAddr,
    },
    /// Through an HTTP proxy (type 3): TCP only.
    Http {
        proxy: SocketAddr,
    },
    Direct,
}

/// Where a SOCKS5 server relays UDP: its BND address, with an unspecified IP replaced by the
/// server's own. `None` when unusable (a domain name, port 0).
pub(super) fn udp_relay_addr(bound: &Address, server: SocketAddr) -> Option<SocketAddr> {
    match bound {
        Address::Ip(addr) if addr.port() != 0 => Some(if addr.ip().is_unspecified() {
            SocketAddr::new(server.ip(), addr.port())
        } else {
            *addr
        }),
        _ => None,
    }
}

/// One media datagram as it goes over UDP on `route`.
pub(super) fn encode_udp(route: &MediaRoute, peer: SocketAddr, payload: &[u8]) -> Vec<u8> {
    match route {
        MediaRoute::Cloud { session_id, .. } => Message::MediaData {
            session_id: *session_id,
            peer,
            payload: payload.to_vec(),
        }
        .to_bytes()
        .unwrap_or_default(),
        MediaRoute::Socks { .. } => {
            let mut out = Vec::new();
            encode_udp_datagram(&Address::Ip(peer), payload, &mut out);
            out
        }
        // An HTTP proxy has no UDP path; never used, raw like direct.
        MediaRoute::Direct | MediaRoute::Http { .. } => payload.to_vec(),
    }
}

/// One media datagram as it goes over the TCP path on `route`.
pub(super) fn encode_tcp(route: &MediaRoute, peer: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match route {
        MediaRoute::Cloud { session_id, .. } => {
            let msg = Message::MediaData {
                session_id: *session_id,
                peer,
                payload: payload.to_vec(),
            };
            let _ = msg.encode(&mut out);
        }
        MediaRoute::Socks { .. } | MediaRoute::Direct | MediaRoute::Http { .. } => {
            let _ = encode_media_frame(payload, &mut out);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn socks_bnd_unspecified_means_the_server() {
        let server: SocketAddr = "10.3.0.1:1080".parse().unwrap();
        let bnd = |s: &str| Address::Ip(s.parse().unwrap());
        assert_eq!(
            udp_relay_addr(&bnd("0.0.0.0:5000"), server),
            Some("10.3.0.1:5000".parse().unwrap())
        );
        assert_eq!(
            udp_relay_addr(&bnd("[::]:5000"), server),
            Some("10.3.0.1:5000".parse().unwrap())
        );
        assert_eq!(
            udp_relay_addr(&bnd("10.3.0.9:6000"), server),
            Some("10.3.0.9:6000".parse().unwrap())
        );
        assert_eq!(udp_relay_addr(&bnd("10.3.0.9:0"), server), None);
        let domain = Address::domain("relay.example", 5000).unwrap();
        assert_eq!(udp_relay_addr(&domain, server), None);
    }

    #[test]
    fn encodings_per_route() {
        let peer: SocketAddr = "198.51.100.1:4700".parse().unwrap();
        assert_eq!(encode_udp(&MediaRoute::Direct, peer, b"ab"), b"ab");
        assert_eq!(
            encode_tcp(&MediaRoute::Direct, peer, b"ab"),
            [0, 2, b'a', b'b']
        );
        let socks = MediaRoute::Socks {
            server: "10.3.0.1:1080".parse().unwrap(),
        };
        assert_eq!(
            encode_udp(&socks, peer, b"ab"),
            [0, 0, 0, 1, 198, 51, 100, 1, 0x12, 0x5C, b'a', b'b']
        );
        let cloud = MediaRoute::Cloud {
            relay_tcp: "10.2.0.1:4000".parse().unwrap(),
            relay_udp: None,
            session_id: 5,
        };
        let expected = Message::MediaData {
            session_id: 5,
            peer,
            payload: b"ab".to_vec(),
        };
        assert_eq!(
            Message::decode_datagram(&encode_udp(&cloud, peer, b"ab")),
            Ok(expected.clone())
        );
        assert_eq!(
            encode_tcp(&cloud, peer, b"ab"),
            expected.to_bytes().unwrap()
        );
    }
}
