//! The `Net` seam: what node code needs from a network (connect, listen, bind UDP, resolve a
//! name), with the real tokio implementation ([`TokioNet`], for `cloudproxy serve`, `edge` and
//! `call`). The simulation implements the same trait over turmoil in `cloudproxy-sim`.
//!
//! Node code is written once against [`Net`], uses `tokio::time` only, and never reads a wall
//! clock. Every node runs on a single-threaded runtime (turmoil's hosts are `LocalSet`s), so
//! nothing here needs to be `Send`.
//!
//! The enterprise firewall, the impairments, the capture and the enterprise resolver are
//! decorators of the simulation's network, outside the code under test.

mod dns_client;
pub mod dns_wire;
mod pumps;
mod tokio_net;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};

use cloudproxy_core::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

pub use pumps::{StreamEvent, StreamPumps};
pub use tokio_net::{unix_now, TokioNet};

/// A network as node code sees it.
pub trait Net: Clone + 'static {
    /// A connected TCP stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    /// A TCP listener.
    type Listener: Listener<Stream = Self::Stream>;
    /// A UDP socket.
    type Udp: Udp;

    /// Opens a TCP connection.
    fn connect(&self, to: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>>;
    /// Listens for TCP connections.
    fn listen(&self, at: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>>;
    /// Binds a UDP socket.
    fn bind_udp(&self, at: SocketAddr) -> impl Future<Output = io::Result<Self::Udp>>;
    /// Resolves a DNS name to its addresses, as this network's resolver answers it (the
    /// enterprise resolver in the simulation, the system's or a fixed table on real sockets).
    /// The error says why, naming the name.
    fn resolve(&self, name: &str) -> impl Future<Output = Result<Vec<IpAddr>, String>>;
    /// The current time on the timeline every node of this network shares (the simulation's
    /// elapsed time, or the Unix epoch for real sockets), so that tickets mean the same thing
    /// on the access point and on the relays.
    fn now(&self) -> Instant;
}

/// Sleeps until `deadline` on `net`'s timeline; forever when there is none.
pub async fn sleep_until<N: Net>(net: &N, deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep(at.saturating_duration_since(net.now())).await,
        None => std::future::pending().await,
    }
}

/// A TCP listener.
pub trait Listener: 'static {
    /// The accepted streams.
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    /// Waits for the next connection.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>>;
}

/// A UDP socket.
pub trait Udp: 'static {
    /// Sends one datagram.
    fn send_to(&self, data: &[u8], to: SocketAddr) -> impl Future<Output = io::Result<()>>;
    /// Receives one datagram.
    fn recv_from(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>>;
    /// The socket's local address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}
