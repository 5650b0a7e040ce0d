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

mod datagrams;
mod dns_client;
pub mod dns_wire;
mod pumps;
// The modules with `unsafe`: the splice(2), pipe2(2), recvmmsg(2), sendmmsg(2) and io_uring
// calls, each with its SAFETY note.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod mmsg;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod splice;
mod tokio_net;
pub mod tunnel;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod uring;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};

use cloudproxy_core::time::{Instant, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};

pub use datagrams::{Datagrams, RecvMeta, GRO_MESSAGE_MAX};
pub use pumps::{StreamEvent, StreamPumps, EVENT_QUEUE};
pub use tokio_net::{monotonic_now, wall_clock, TokioNet};
pub use tunnel::{copy_tunnel, TunnelEnd, TunnelLink};

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
    /// The current time on this network's monotonic timeline, for timers, rates and idle
    /// times (the simulation's elapsed time; for real sockets the process's monotonic clock).
    /// Tickets do not use it: they take [`Net::unix_now`].
    fn now(&self) -> Instant;
    /// The wall clock: Unix time, the timeline of tickets (the access point writes their
    /// expiry in it, every relay checks it), handed to the machines beside [`Net::now`]. Real
    /// sockets read the system's clock; the simulation its virtual clock plus a fixed epoch.
    fn unix_now(&self) -> UnixTime;
    /// Whether a host's loop may submit a round's sends on many of this network's UDP sockets
    /// in one system call ([`uring::SendRing`], Linux; see [`Udp::raw_fd`]). By default no
    /// (the simulation's); real sockets on Linux yes unless turned off.
    fn batch_sends(&self) -> bool {
        false
    }
    /// Moves a spliced tunnel's bytes between `client` and `upstream` until it ends, reporting
    /// on `link` (see [`tunnel`]). By default a bounded-buffer copy ([`copy_tunnel`]), the
    /// simulation's; real sockets on Linux use `splice(2)`.
    fn tunnel(
        &self,
        client: Self::Stream,
        upstream: Self::Stream,
        link: TunnelLink,
    ) -> impl Future<Output = TunnelEnd> {
        copy_tunnel(client, upstream, link)
    }
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
    /// Receives one datagram if one is waiting, without waiting (`WouldBlock` otherwise).
    /// Lets a reader take a burst in one wake-up. By default always `WouldBlock` (the reader
    /// then waits in [`Udp::recv_from`] for each datagram: the simulation's plain path).
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let _ = buf;
        Err(io::ErrorKind::WouldBlock.into())
    }
    /// Sends one datagram if the socket can take it now (`WouldBlock` otherwise). By default
    /// always `WouldBlock` (the writer then waits in [`Udp::send_to`]).
    fn try_send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        let _ = (data, to);
        Err(io::ErrorKind::WouldBlock.into())
    }
    /// Receives up to `bufs.len()` waiting messages without waiting, each into its buffer,
    /// what each holds into `got`; how many (`WouldBlock` when none). A message is one
    /// datagram unless GRO is on ([`Udp::enable_gro`]); [`RecvMeta::datagrams`] gives them.
    /// By default one [`Udp::try_recv_from`]; real sockets on Linux take a burst in one
    /// `recvmmsg(2)`.
    fn try_recv_batch(&self, bufs: &mut [Vec<u8>], got: &mut [RecvMeta]) -> io::Result<usize> {
        let (Some(buf), Some(slot)) = (bufs.first_mut(), got.first_mut()) else {
            return Ok(0);
        };
        let (len, from) = self.try_recv_from(buf)?;
        *slot = RecvMeta::one(len, from);
        Ok(1)
    }
    /// Asks the kernel to coalesce datagrams that arrive together from one source into one
    /// message (UDP GRO, `UDP_GRO`), as a NIC's receive offload delivers them: one trip
    /// through the stack and one receive for many datagrams. Whether it is on. Only for a
    /// reader that cuts messages with [`RecvMeta::datagrams`] into buffers of
    /// [`GRO_MESSAGE_MAX`] bytes ([`Udp::try_recv_batch`]); by default off (false).
    fn enable_gro(&self) -> bool {
        false
    }
    /// The socket's descriptor, for a host that submits sends on many sockets at once
    /// ([`uring::SendRing`]): real sockets yes, by default none.
    #[cfg(unix)]
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
    /// Whether a host may drive this socket by readiness ([`Udp::poll_recv_ready`],
    /// [`Udp::poll_send_ready`] and the `try_*` calls) from its own loop, with no task of its
    /// own: real sockets yes. By default no: the host then gives the socket a reader and a
    /// writer task that wait in [`Udp::recv_from`] and [`Udp::send_to`] (the simulation's
    /// plain path).
    fn polled(&self) -> bool {
        false
    }
    /// Ready when a datagram may be waiting to be received (then `try_recv_*` says); else
    /// `cx`'s waker is woken when one may be. Only for a [`Udp::polled`] socket; by default
    /// an `Unsupported` error.
    fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = cx;
        Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
    }
    /// Ready when the socket may take a datagram to send (then `try_send_*` says); else
    /// `cx`'s waker is woken when it may. Only for a [`Udp::polled`] socket; by default an
    /// `Unsupported` error.
    fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = cx;
        Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
    }
    /// Forgets that the socket was ready to receive, without a system call: for a
    /// [`Udp::polled`] socket whose last batch came short (the kernel's queue was empty), so
    /// that the next [`Udp::poll_recv_ready`] waits for the next datagram instead of a
    /// receive that would find nothing. A datagram that arrived meanwhile still wakes it. By
    /// default nothing.
    fn clear_recv_ready(&self) {}
    /// Sends datagrams from the front of `batch` without waiting; how many went (`WouldBlock`
    /// when none could). By default [`Udp::try_send_to`] one after the other; real sockets on
    /// Linux send a burst in one `sendmmsg(2)`.
    fn try_send_batch(&self, batch: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        let mut sent = 0;
        for (to, data) in batch {
            match self.try_send_to(data, *to) {
                Ok(()) => sent += 1,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(sent)
    }
}
