//! An enterprise HTTP proxy for the pair world (beyond the seed): `CONNECT host:port`, optional
//! Basic authentication (`407` with `Content-Length: 0`, the connection kept), then raw bytes
//! both ways. TCP only: it relays no UDP, by design of HTTP proxies.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cloudproxy_core::http_connect::{
    decide_connect, head_len, BasicCredentials, ConnectDecision, CHALLENGE, ESTABLISHED,
};

use super::net::{End, EndEvent};
use super::World;

/// The proxy: where it listens, whom it lets through, what it did.
#[derive(Debug)]
pub struct HttpProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `Some`: every `CONNECT` needs this `Proxy-Authorization`.
    pub credentials: Option<BasicCredentials>,
    /// `CONNECT` requests read.
    pub requests: usize,
    /// Tunnels opened.
    pub tunnels: usize,
    /// `407`s sent.
    pub challenges: usize,
    conns: BTreeMap<u64, ProxyConn>,
}

#[derive(Debug, Default)]
struct ProxyConn {
    /// The request head read so far (bounded).
    head: Vec<u8>,
    /// The tunnel is up (or being connected): bytes go upstream.
    tunnel: bool,
}

/// The largest request head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;

impl HttpProxy {
    /// A proxy on `addr`, asking for `credentials` when given.
    pub fn new(addr: SocketAddr, credentials: Option<BasicCredentials>) -> Self {
        HttpProxy {
            addr,
            credentials,
            requests: 0,
            tunnels: 0,
            challenges: 0,
            conns: BTreeMap::new(),
        }
    }

    pub(super) fn accept(&mut self, id: u64) {
        self.conns.insert(id, ProxyConn::default());
    }
}

impl World {
    /// An event on a client's connection to the proxy.
    pub(super) fn http_in(&mut self, id: u64, event: EndEvent) {
        let end = End::HttpIn(id);
        let Some(proxy) = self.http_proxy.as_mut() else {
            return;
        };
        match event {
            EndEvent::Data(data) => {
                let Some(conn) = proxy.conns.get_mut(&id) else {
                    return;
                };
                if conn.tunnel {
                    return self.tcp_send(End::HttpUp(id), data);
                }
                conn.head.extend_from_slice(&data);
                if conn.head.len() > MAX_HEAD {
                    return self.tcp_close(end);
                }
                let Some(len) = head_len(&conn.head) else {
                    return;
                };
                let head: Vec<u8> = conn.head.drain(..len).collect();
                proxy.requests += 1;
                match decide_connect(&head, proxy.credentials.as_ref()) {
                    ConnectDecision::Tunnel(target) => {
                        conn.tunnel = true;
                        proxy.tunnels += 1;
                        let proxy_ip = proxy.addr.ip();
                        self.connect(End::HttpUp(id), proxy_ip, target);
                    }
                    ConnectDecision::Challenge => {
                        proxy.challenges += 1;
                        self.tcp_send(end, CHALLENGE.as_bytes().to_vec());
                    }
                    ConnectDecision::Refuse(status) => {
                        let answer = format!("HTTP/1.1 {status}\r\nConnection: close\r\n\r\n");
                        self.tcp_send(end, answer.into_bytes());
                        self.tcp_close(end);
                    }
                    // A decision this proxy does not know: refused as a bad request.
                    _ => self.tcp_close(end),
                }
            }
            EndEvent::Closed => {
                if proxy.conns.remove(&id).is_some_and(|c| c.tunnel) {
                    self.tcp_close(End::HttpUp(id));
                }
            }
            EndEvent::Connected | EndEvent::Failed => {}
        }
    }

    /// An event on the proxy's upstream connection of a tunnel.
    pub(super) fn http_up(&mut self, id: u64, event: EndEvent) {
        let client = End::HttpIn(id);
        match event {
            EndEvent::Connected => {
                self.tcp_send(client, ESTABLISHED.as_bytes().to_vec());
            }
            EndEvent::Failed => {
                let answer = b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n".to_vec();
                self.tcp_send(client, answer);
                self.tcp_close(client);
            }
            EndEvent::Data(data) => self.tcp_send(client, data),
            EndEvent::Closed => self.tcp_close(client),
        }
    }
}
