//! An enterprise SOCKS5 server ([RFC 1928]), for SDKs configured with proxy type 0.
//!
//! Clients reach it on the `inside` network; it reaches the internet through the `outside`
//! network (which the caller may put behind the enterprise firewall). Per connection it runs a
//! [`ServerHandshake`] under the [`ServerPolicy`], then:
//!
//! - **CONNECT** to an IP address: connects on `outside` (giving up after
//!   [`CONNECT_TIMEOUT`]), replies `Succeeded` and copies bytes both ways (the client's early
//!   data first) until both directions have closed (a half-close is passed on). A refused
//!   connect is answered `ConnectionRefused`, a timeout `TtlExpired`, anything else
//!   `HostUnreachable`. Domain-name targets get `AddressTypeNotSupported`: the server has no
//!   resolver.
//! - **UDP ASSOCIATE**: binds two UDP sockets, one on `inside` for the client and one on
//!   `outside` for the internet (two, so that a firewalled `outside` never sees the client's
//!   datagrams as unsolicited), and replies with `own_ip` and the client socket's port: an
//!   ephemeral port, or the first free port of a configured range ([`run_socks5_ranged`],
//!   like dante's `udp.portrange`).
//!   Datagrams on the client socket are accepted only from the control connection's peer IP;
//!   the first valid one fixes the client's UDP address, after which only that address is
//!   the client. Their RFC 1928 §7 header is stripped and the payload sent to `DST` (`FRAG`
//!   ≠ 0 is dropped and counted). Datagrams arriving on the outside socket are wrapped with
//!   the sender's address and sent to the client, once its address is known. The association
//!   ends when its TCP connection closes (RFC 1928 §7).
//! - **BIND** is not implemented: even when the policy allows it, the reply is
//!   `CommandNotSupported`.
//!
//! A malformed handshake, or none within [`HANDSHAKE_TIMEOUT`], ends that connection only.
//!
//! [RFC 1928]: https://www.rfc-editor.org/rfc/rfc1928

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::socks5::{
    decode_udp_datagram, encode_udp_datagram, Address, Command, ReplyCode, Request,
    ServerHandshake, ServerPolicy, ServerProgress, Socks5Error,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::net::{Listener, Net, Udp};

/// How long a CONNECT may take before the client gets `TtlExpired`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to complete the handshake before the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Read size for the handshake and the control connection.
const READ_CHUNK: usize = 4 * 1024;
/// Receive buffer for relayed datagrams.
const UDP_BUF: usize = 64 * 1024;

/// What a SOCKS5 server did, shared with whoever runs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Socks5Stats {
    /// TCP connections accepted.
    pub connections: u64,
    /// CONNECT requests carried out (tunnel opened).
    pub connects_ok: u64,
    /// CONNECT requests answered with a failure reply.
    pub connects_failed: u64,
    /// UDP associations opened.
    pub udp_associations: u64,
    /// UDP ASSOCIATE requests refused by policy (reply 7 sent).
    pub udp_refused: u64,
    /// Datagrams relayed from clients to the internet.
    pub datagrams_out: u64,
    /// Datagrams relayed from the internet to clients.
    pub datagrams_in: u64,
    /// Client datagrams dropped because `FRAG` ≠ 0.
    pub frag_dropped: u64,
    /// Client datagrams dropped otherwise: from a stranger, a bad header, or a domain-name
    /// destination.
    pub datagrams_invalid: u64,
    /// Internet datagrams dropped because the client's UDP address was not known yet.
    pub datagrams_unroutable: u64,
    /// Connections ended by a failed, unfinished or timed-out handshake (other than
    /// [`udp_refused`](Socks5Stats::udp_refused)), or by a request the server does not carry
    /// out (BIND).
    pub handshake_errors: u64,
}

/// What every connection of one server shares.
struct Server<N> {
    inside: N,
    outside: N,
    own_ip: IpAddr,
    policy: ServerPolicy,
    /// The ports the client side of a UDP association binds to (`None`: an ephemeral port).
    udp_ports: Option<RangeInclusive<u16>>,
    stats: Rc<RefCell<Socks5Stats>>,
}

/// `0.0.0.0:port`: turmoil binds only unspecified or loopback addresses.
fn any(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
}

/// Runs a SOCKS5 server listening on `0.0.0.0:listen_port` of `inside`, reaching the internet
/// through `outside`, until the host crashes (or the listener fails). `own_ip` is the server's
/// address as clients see it: it goes in UDP ASSOCIATE replies (a socket bound to `0.0.0.0`
/// cannot tell it).
pub async fn run_socks5<N: Net>(
    inside: N,
    outside: N,
    own_ip: IpAddr,
    listen_port: u16,
    policy: ServerPolicy,
    stats: Rc<RefCell<Socks5Stats>>,
) -> io::Result<()> {
    run_socks5_ranged(inside, outside, own_ip, listen_port, policy, None, stats).await
}

/// [`run_socks5`], binding the client side of each UDP association to the first free port of
/// `udp_ports` (dante's `udp.portrange`); `None` binds an ephemeral port. When every port of
/// the range is taken, the UDP ASSOCIATE is answered `GeneralFailure`.
pub async fn run_socks5_ranged<N: Net>(
    inside: N,
    outside: N,
    own_ip: IpAddr,
    listen_port: u16,
    policy: ServerPolicy,
    udp_ports: Option<RangeInclusive<u16>>,
    stats: Rc<RefCell<Socks5Stats>>,
) -> io::Result<()> {
    let listener = inside.listen(any(listen_port)).await?;
    let server = Rc::new(Server {
        inside,
        outside,
        own_ip,
        policy,
        udp_ports,
        stats,
    });
    loop {
        let (stream, peer) = listener.accept().await?;
        server.stats.borrow_mut().connections += 1;
        tokio::task::spawn_local(serve_client(server.clone(), stream, peer));
    }
}

/// Why a handshake ended without a request.
enum HandshakeEnd {
    /// The client closed (or the stream failed) first.
    Closed,
    /// The handshake machine failed (its error reply, if any, was sent).
    Failed(Socks5Error),
}

/// One client connection, from greeting to close.
async fn serve_client<N: Net>(server: Rc<Server<N>>, mut client: N::Stream, peer: SocketAddr) {
    let mut handshake = ServerHandshake::new(server.policy.clone());
    let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, negotiate(&mut handshake, &mut client));
    let (request, leftover) = match outcome.await {
        Ok(Ok(request)) => request,
        Ok(Err(HandshakeEnd::Failed(Socks5Error::UnsupportedCommand(Command::UdpAssociate)))) => {
            server.stats.borrow_mut().udp_refused += 1;
            let _ = client.shutdown().await;
            return;
        }
        Ok(Err(_)) | Err(_) => {
            server.stats.borrow_mut().handshake_errors += 1;
            let _ = client.shutdown().await;
            return;
        }
    };
    let Request { command, dst } = request;
    match (command, dst) {
        (Command::Connect, Address::Ip(dst)) => {
            connect(&server, handshake, client, dst, leftover).await;
        }
        (Command::Connect, Address::Domain(..)) => {
            server.stats.borrow_mut().connects_failed += 1;
            refuse(handshake, client, ReplyCode::AddressTypeNotSupported).await;
        }
        (Command::UdpAssociate, _) => associate(&server, handshake, client, peer).await,
        (Command::Bind, _) => {
            server.stats.borrow_mut().handshake_errors += 1;
            refuse(handshake, client, ReplyCode::CommandNotSupported).await;
        }
    }
}

/// Drives the handshake machine to the client's request (and the bytes that followed it).
async fn negotiate<S>(
    handshake: &mut ServerHandshake,
    client: &mut S,
) -> Result<(Request, Vec<u8>), HandshakeEnd>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match client.read(&mut buf).await {
            Ok(0) | Err(_) => return Err(HandshakeEnd::Closed),
            Ok(n) => n,
        };
        let progress = handshake.handle_bytes(&buf[..n]);
        if let Some(out) = handshake.poll_transmit() {
            if client.write_all(&out).await.is_err() {
                return Err(HandshakeEnd::Closed);
            }
        }
        match progress {
            Ok(ServerProgress::Pending) => {}
            Ok(ServerProgress::Request { request, leftover }) => return Ok((request, leftover)),
            Err(e) => return Err(HandshakeEnd::Failed(e)),
        }
    }
}

/// Sends a failure reply and closes.
async fn refuse<S>(mut handshake: ServerHandshake, mut client: S, code: ReplyCode)
where
    S: AsyncWrite + Unpin,
{
    if let Ok(reply) = handshake.reply(code, Address::unspecified()) {
        let _ = client.write_all(&reply).await;
    }
    let _ = client.shutdown().await;
}

/// The reply code for a failed connect.
fn connect_failure(e: &io::Error) -> ReplyCode {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ReplyCode::ConnectionRefused,
        io::ErrorKind::TimedOut => ReplyCode::TtlExpired,
        _ => ReplyCode::HostUnreachable,
    }
}

/// CONNECT: opens the tunnel and copies until both directions are done.
async fn connect<N: Net>(
    server: &Server<N>,
    mut handshake: ServerHandshake,
    mut client: N::Stream,
    dst: SocketAddr,
    leftover: Vec<u8>,
) {
    let mut upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, server.outside.connect(dst)).await {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(e)) => {
                server.stats.borrow_mut().connects_failed += 1;
                refuse(handshake, client, connect_failure(&e)).await;
                return;
            }
            Err(_) => {
                server.stats.borrow_mut().connects_failed += 1;
                refuse(handshake, client, ReplyCode::TtlExpired).await;
                return;
            }
        };
    let Ok(reply) = handshake.reply(ReplyCode::Succeeded, Address::unspecified()) else {
        return;
    };
    server.stats.borrow_mut().connects_ok += 1;
    if client.write_all(&reply).await.is_err() {
        return;
    }
    if !leftover.is_empty() && upstream.write_all(&leftover).await.is_err() {
        let _ = client.shutdown().await;
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// The client side of a UDP association: an ephemeral port, or the first free one of the
/// server's range.
async fn bind_client_side<N: Net>(server: &Server<N>) -> io::Result<N::Udp> {
    let Some(range) = server.udp_ports.clone() else {
        return server.inside.bind_udp(any(0)).await;
    };
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "an empty UDP port range");
    for port in range {
        match server.inside.bind_udp(any(port)).await {
            Ok(socket) => return Ok(socket),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// UDP ASSOCIATE: relays datagrams until the control connection closes.
async fn associate<N: Net>(
    server: &Server<N>,
    mut handshake: ServerHandshake,
    mut control: N::Stream,
    peer: SocketAddr,
) {
    let sockets = async {
        let client_side = bind_client_side(server).await?;
        let remote_side = server.outside.bind_udp(any(0)).await?;
        let port = client_side.local_addr()?.port();
        io::Result::Ok((client_side, remote_side, port))
    };
    let (client_side, remote_side, port) = match sockets.await {
        Ok(sockets) => sockets,
        Err(_) => {
            server.stats.borrow_mut().handshake_errors += 1;
            refuse(handshake, control, ReplyCode::GeneralFailure).await;
            return;
        }
    };
    let bound = Address::Ip(SocketAddr::new(server.own_ip, port));
    let Ok(reply) = handshake.reply(ReplyCode::Succeeded, bound) else {
        return;
    };
    if control.write_all(&reply).await.is_err() {
        return;
    }
    server.stats.borrow_mut().udp_associations += 1;

    let stats = &server.stats;
    let mut client_addr: Option<SocketAddr> = None;
    let mut ctl_buf = vec![0u8; READ_CHUNK];
    let mut from_client = vec![0u8; UDP_BUF];
    let mut from_remote = vec![0u8; UDP_BUF];
    let mut wrapped = Vec::new();
    loop {
        tokio::select! {
            biased;
            read = control.read(&mut ctl_buf) => match read {
                // Anything the client sends on the control connection is ignored.
                Ok(n) if n > 0 => {}
                _ => break,
            },
            got = client_side.recv_from(&mut from_client) => {
                let Ok((n, from)) = got else { break };
                let is_client = match client_addr {
                    Some(addr) => from == addr,
                    None => from.ip() == peer.ip(),
                };
                if !is_client {
                    stats.borrow_mut().datagrams_invalid += 1;
                    continue;
                }
                match decode_udp_datagram(&from_client[..n]) {
                    Ok((Address::Ip(dst), payload)) => {
                        client_addr.get_or_insert(from);
                        if remote_side.send_to(payload, dst).await.is_ok() {
                            stats.borrow_mut().datagrams_out += 1;
                        }
                    }
                    Err(Socks5Error::Fragmented { .. }) => stats.borrow_mut().frag_dropped += 1,
                    Ok((Address::Domain(..), _)) | Err(_) => {
                        stats.borrow_mut().datagrams_invalid += 1;
                    }
                }
            }
            got = remote_side.recv_from(&mut from_remote) => {
                let Ok((n, from)) = got else { break };
                let Some(to) = client_addr else {
                    stats.borrow_mut().datagrams_unroutable += 1;
                    continue;
                };
                wrapped.clear();
                encode_udp_datagram(&Address::Ip(from), &from_remote[..n], &mut wrapped);
                if client_side.send_to(&wrapped, to).await.is_ok() {
                    stats.borrow_mut().datagrams_in += 1;
                }
            }
        }
    }
    let _ = control.shutdown().await;
}
