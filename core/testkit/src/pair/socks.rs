//! The pair world's enterprise SOCKS5 server: the core's server handshake, CONNECT to any
//! address, and a UDP relay per association.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cloudproxy_core::socks5::{
    decode_udp_datagram, encode_udp_datagram, Address, Command, ReplyCode, ServerHandshake,
    ServerProgress,
};

use super::net::{End, EndEvent};
use super::World;

/// One client connection of the SOCKS5 server.
#[derive(Debug)]
struct SocksConn {
    handshake: ServerHandshake,
    /// The CONNECT's upstream (it shares the connection's id).
    upstream: Option<u64>,
    /// The UDP ASSOCIATE's relay port.
    udp_port: Option<u16>,
}

/// What the SOCKS5 server holds.
#[derive(Debug, Default)]
pub(super) struct SocksState {
    conns: BTreeMap<u64, SocksConn>,
    /// UDP relay ports: the association's connection, and the client's address once known.
    udp: BTreeMap<u16, (u64, Option<SocketAddr>)>,
}

impl World {
    fn socks_addr(&self) -> SocketAddr {
        self.socks
            .as_ref()
            .map(|(addr, _)| *addr)
            .expect("a SOCKS5 server in this world")
    }

    pub(super) fn socks_accept(&mut self, id: u64) {
        let policy = self
            .socks
            .as_ref()
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        let conn = SocksConn {
            handshake: ServerHandshake::new(policy),
            upstream: None,
            udp_port: None,
        };
        self.socks_state.conns.insert(id, conn);
    }

    /// Bytes or a close from a SOCKS5 client.
    pub(super) fn socks_in(&mut self, id: u64, event: EndEvent) {
        let end = End::SocksIn(id);
        match event {
            EndEvent::Data(data) => {
                let Some(conn) = self.socks_state.conns.get_mut(&id) else {
                    return;
                };
                if let Some(up) = conn.upstream {
                    return self.tcp_send(End::SocksUp(up), data);
                }
                let progress = conn.handshake.handle_bytes(&data);
                let out: Vec<Vec<u8>> =
                    std::iter::from_fn(|| conn.handshake.poll_transmit()).collect();
                for bytes in out {
                    self.tcp_send(end, bytes);
                }
                match progress {
                    Ok(ServerProgress::Request { request, .. }) => {
                        self.socks_request(id, request.command, request.dst)
                    }
                    Ok(ServerProgress::Pending) => {}
                    Err(_) => self.tcp_close(end),
                }
            }
            EndEvent::Closed => {
                if let Some(conn) = self.socks_state.conns.remove(&id) {
                    if conn.upstream.is_some() {
                        self.tcp_close(End::SocksUp(id));
                    }
                    if let Some(port) = conn.udp_port {
                        self.socks_state.udp.remove(&port);
                    }
                }
            }
            EndEvent::Connected | EndEvent::Failed => {}
        }
    }

    fn socks_request(&mut self, id: u64, command: Command, dst: Address) {
        let end = End::SocksIn(id);
        let socks_ip = self.socks_addr().ip();
        match (command, dst) {
            (Command::Connect, Address::Ip(dst)) => {
                if let Some(conn) = self.socks_state.conns.get_mut(&id) {
                    conn.upstream = Some(id);
                }
                self.connect(End::SocksUp(id), socks_ip, dst);
            }
            (Command::UdpAssociate, _) => {
                let port = 9_000 + (id % 1_000) as u16;
                self.socks_state.udp.insert(port, (id, None));
                let Some(conn) = self.socks_state.conns.get_mut(&id) else {
                    return;
                };
                conn.udp_port = Some(port);
                let relay = Address::Ip(SocketAddr::new(socks_ip, port));
                if let Ok(reply) = conn.handshake.reply(ReplyCode::Succeeded, relay) {
                    self.tcp_send(end, reply);
                }
            }
            _ => self.tcp_close(end),
        }
    }

    /// The CONNECT's upstream connection: its outcome and bytes go to the client.
    pub(super) fn socks_up(&mut self, id: u64, event: EndEvent) {
        let client_end = End::SocksIn(id);
        let code = match event {
            EndEvent::Connected => ReplyCode::Succeeded,
            EndEvent::Failed => ReplyCode::ConnectionRefused,
            EndEvent::Data(data) => return self.tcp_send(client_end, data),
            EndEvent::Closed => return self.tcp_close(client_end),
        };
        let Some(conn) = self.socks_state.conns.get_mut(&id) else {
            return;
        };
        if let Ok(reply) = conn.handshake.reply(code, Address::unspecified()) {
            self.tcp_send(client_end, reply);
        }
        if code != ReplyCode::Succeeded {
            self.tcp_close(client_end);
        }
    }

    /// A datagram on a UDP relay port: from the client, unwrapped and forwarded; from
    /// anywhere else, wrapped and sent to the client.
    pub(super) fn socks_udp_arrives(&mut self, port: u16, from: SocketAddr, data: Vec<u8>) {
        let Some((_, client)) = self.socks_state.udp.get(&port).copied() else {
            return;
        };
        let local = SocketAddr::new(self.socks_addr().ip(), port);
        if self.is_client_ip(from.ip()) {
            if let Ok((Address::Ip(dst), payload)) = decode_udp_datagram(&data) {
                let payload = payload.to_vec();
                if let Some(entry) = self.socks_state.udp.get_mut(&port) {
                    entry.1 = Some(from);
                }
                self.udp_send(local, dst, payload);
            }
        } else if let Some(client) = client {
            let mut out = Vec::new();
            encode_udp_datagram(&Address::Ip(from), &data, &mut out);
            self.udp_send(local, client, out);
        }
    }
}
