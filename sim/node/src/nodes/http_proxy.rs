//! An enterprise HTTP proxy (**beyond the seed**, proxy type 3): the web proxy most
//! enterprises run (squid, tinyproxy), as far as an SDK uses it: `CONNECT host:port`.
//!
//! Clients reach it on the `inside` network; it reaches the internet through the `outside`
//! network (which the caller puts behind the enterprise firewall). Per connection:
//!
//! - it reads one request head (at most [`MAX_HEAD_LEN`] bytes, within [`HANDSHAKE_TIMEOUT`]);
//! - anything but `CONNECT ip:port HTTP/1.x` is answered `405` (another method) or `400`
//!   (a malformed line, a target that is not an IP address and port: the proxy has no
//!   resolver) and closed;
//! - with credentials configured, a request without the matching
//!   `Proxy-Authorization: Basic ...` is answered `407` with `Proxy-Authenticate: Basic` and
//!   `Content-Length: 0`, and the connection is kept for the next request (as squid does);
//! - otherwise it connects on `outside` (giving up after [`CONNECT_TIMEOUT`]): `502` when the
//!   connect fails, `504` when it times out; on success `200 Connection established`, then the
//!   bytes the client sent after its head, then a bounded copy both ways until either side
//!   closes.
//!
//! It carries no UDP: HTTP proxies cannot, by design.

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::http_connect::{
    decide_connect, head_len, BasicCredentials, ConnectDecision, CHALLENGE, ESTABLISHED,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::net::{copy_tunnel, Listener, Net, TunnelLink};

/// How long a client may take to send a complete request head.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connect upstream may take before the client gets `504`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read; a longer one gets `431` and the connection is closed.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// Requests answered on one connection before it is closed (a bound on 407 loops).
pub const MAX_REQUESTS_PER_CONNECTION: u32 = 4;

/// What an HTTP proxy did, shared with whoever runs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpProxyStats {
    /// TCP connections accepted.
    pub connections: u64,
    /// Request heads read.
    pub requests: u64,
    /// `407`s sent (requests without the right credentials).
    pub challenges: u64,
    /// Tunnels opened (`200` sent).
    pub tunnels: u64,
    /// Requests refused (`400`, `405`, `431`) or connects that failed (`502`, `504`).
    pub refused: u64,
}

/// What every connection of one server shares.
struct Server<N> {
    outside: N,
    credentials: Option<BasicCredentials>,
    stats: Rc<RefCell<HttpProxyStats>>,
}

/// Runs an HTTP proxy listening on `0.0.0.0:listen_port` of `inside`, reaching the internet
/// through `outside`, asking for `credentials` when given, until the host crashes (or the
/// listener fails).
pub async fn run_http_proxy<N: Net>(
    inside: N,
    outside: N,
    listen_port: u16,
    credentials: Option<BasicCredentials>,
    stats: Rc<RefCell<HttpProxyStats>>,
) -> io::Result<()> {
    let at = SocketAddr::from((Ipv4Addr::UNSPECIFIED, listen_port));
    let listener = inside.listen(at).await?;
    let server = Rc::new(Server {
        outside,
        credentials,
        stats,
    });
    loop {
        let (stream, _peer) = listener.accept().await?;
        server.stats.borrow_mut().connections += 1;
        tokio::task::spawn_local(serve_client(server.clone(), stream));
    }
}

/// One client connection: request heads until a tunnel opens, then the tunnel.
async fn serve_client<N: Net>(server: Rc<Server<N>>, mut client: N::Stream) {
    let mut buf: Vec<u8> = Vec::new();
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        let read = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_head(&mut client, &mut buf));
        let head = match read.await {
            Ok(Ok(Some(head))) => head,
            Ok(Ok(None)) => {
                server.stats.borrow_mut().refused += 1;
                let _ = answer(&mut client, "431 Request Header Fields Too Large").await;
                return;
            }
            Ok(Err(_)) | Err(_) => return,
        };
        server.stats.borrow_mut().requests += 1;
        match decide_connect(&head, server.credentials.as_ref()) {
            ConnectDecision::Tunnel(to) => return tunnel(&server, client, to, buf).await,
            ConnectDecision::Challenge => {
                server.stats.borrow_mut().challenges += 1;
                if client.write_all(CHALLENGE.as_bytes()).await.is_err() {
                    return;
                }
            }
            ConnectDecision::Refuse(status) => {
                server.stats.borrow_mut().refused += 1;
                let _ = answer(&mut client, status).await;
                return;
            }
            // A decision this proxy does not know: refused as a bad request.
            _ => {
                server.stats.borrow_mut().refused += 1;
                let _ = answer(&mut client, "400 Bad Request").await;
                return;
            }
        }
    }
}

/// Connects to `to` and, on success, copies bytes both ways (`early`: what the client sent
/// after its head).
async fn tunnel<N: Net>(server: &Server<N>, mut client: N::Stream, to: SocketAddr, early: Vec<u8>) {
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, server.outside.connect(to)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(_)) => return refuse(server, &mut client, "502 Bad Gateway").await,
        Err(_) => return refuse(server, &mut client, "504 Gateway Timeout").await,
    };
    server.stats.borrow_mut().tunnels += 1;
    let mut upstream = upstream;
    if client.write_all(ESTABLISHED.as_bytes()).await.is_err() {
        return;
    }
    if !early.is_empty() && upstream.write_all(&early).await.is_err() {
        return;
    }
    copy_tunnel(client, upstream, TunnelLink::default()).await;
}

async fn refuse<S: tokio::io::AsyncWrite + Unpin>(
    server: &Server<impl Net>,
    client: &mut S,
    status: &str,
) {
    server.stats.borrow_mut().refused += 1;
    let _ = answer(client, status).await;
}

/// Writes a final answer that closes the connection.
async fn answer<S: tokio::io::AsyncWrite + Unpin>(client: &mut S, status: &str) -> io::Result<()> {
    let text = format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    client.write_all(text.as_bytes()).await?;
    client.shutdown().await
}

/// Reads until `buf` holds a whole head; returns it (taken from `buf`), `None` when it grew
/// beyond [`MAX_HEAD_LEN`]. An error when the client closed first.
async fn read_head<S: tokio::io::AsyncRead + Unpin>(
    client: &mut S,
    buf: &mut Vec<u8>,
) -> io::Result<Option<Vec<u8>>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(len) = head_len(buf) {
            return Ok(Some(buf.drain(..len).collect()));
        }
        if buf.len() > MAX_HEAD_LEN {
            return Ok(None);
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}
