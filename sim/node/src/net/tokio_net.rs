//! [`Net`] over real tokio sockets, for `cloudproxy serve`, `edge` and `call`.
//!
//! Every node gets its own address: on one machine that is a loopback address of its own
//! (Linux routes all of `127.0.0.0/8` to the loopback interface, no setup needed), so that the
//! relay sees distinct clients and tickets bind to distinct addresses, as on a real network.
//! A [`TokioNet`] therefore carries the node's local IP:
//!
//! - binds to the unspecified address (`0.0.0.0:port`, what node code asks for) bind to
//!   `local_ip:port` instead; binds to a specific address are kept;
//! - outgoing TCP connections and UDP sockets take `local_ip` as their source address.
//!
//! With `local_ip` unspecified (`0.0.0.0`), everything binds as asked: a deployment that
//! serves on every interface.
//!
//! Names resolve through the system's resolver ([`tokio::net::lookup_host`]), unless the
//! node was given a fixed table ([`TokioNet::with_hosts`], `cloudproxy call --dns`), which then
//! answers the names it holds first, or a resolver of its own ([`TokioNet::with_resolver`],
//! `cloudproxy call --resolver`: the enterprise resolver of `cloudproxy netlab`), asked over
//! UDP for every other name instead of the system's.
//!
//! Two clocks, each from its own source: [`TokioNet::now`] is monotonic ([`monotonic_now`],
//! microseconds since the process's first reading; timers, rates, idle times), and
//! [`TokioNet::unix_now`] is the system's wall clock ([`wall_clock`]), the timeline of
//! tickets, on which access points and relays in different processes (or on different
//! machines) must agree. Nothing in the simulation uses this module.
//!
//! The listener and the UDP socket absorb the errors that concern one peer only, so that node
//! loops written as `while let Ok(..) = accept()` survive them: an accept that fails because
//! the process ran out of descriptors (`EMFILE`) waits a little and tries again (the kernel
//! keeps the pending connections queued meanwhile), an aborted connection is skipped, and an
//! ICMP error reported on a UDP socket (`ECONNREFUSED`) does not end its receive loop.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudproxy_core::time::{Instant, UnixTime};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

use super::{Listener, Net, Udp};

/// The real network, as seen from one node's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokioNet {
    local_ip: IpAddr,
    /// Listeners share their port with other sockets of the process (`SO_REUSEPORT`): one per
    /// worker, the kernel spreading connections over them.
    reuse_port: bool,
    /// Tunnels use the copy even where `splice(2)` exists (to compare the two).
    copy_tunnels: bool,
    /// The relay loop never submits sends on many sockets at once (io_uring).
    no_io_uring: bool,
    /// Names answered without asking the system's resolver (lower-case keys).
    hosts: Arc<BTreeMap<String, Vec<IpAddr>>>,
    /// The DNS resolver asked instead of the system's, if any.
    resolver: Option<SocketAddr>,
}

/// How long an accept loop waits after running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

impl TokioNet {
    /// The network seen from `local_ip` (`0.0.0.0` for "any interface, any source").
    pub fn new(local_ip: IpAddr) -> Self {
        TokioNet {
            local_ip,
            reuse_port: false,
            copy_tunnels: false,
            no_io_uring: false,
            hosts: Arc::default(),
            resolver: None,
        }
    }

    /// The same network, its listeners sharing their port with the other listeners of the
    /// process on the same address (`SO_REUSEPORT`: one per worker).
    pub fn with_reuse_port(mut self) -> Self {
        self.reuse_port = true;
        self
    }

    /// The same network, moving tunnels with the bounded copy instead of `splice(2)`.
    pub fn with_copy_tunnels(mut self) -> Self {
        self.copy_tunnels = true;
        self
    }

    /// The same network, its relay loops sending one socket at a time, never through
    /// io_uring (a host whose policy forbids it; [`Net::batch_sends`]).
    pub fn without_io_uring(mut self) -> Self {
        self.no_io_uring = true;
        self
    }

    /// The same network, asking the DNS resolver at `resolver` (over UDP, from the node's
    /// address) for every name the fixed table does not hold, instead of the system's
    /// resolver.
    pub fn with_resolver(mut self, resolver: SocketAddr) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The same network, answering the names in `hosts` itself (case-insensitive) and asking
    /// the system's resolver for every other name.
    pub fn with_hosts(mut self, hosts: BTreeMap<String, Vec<IpAddr>>) -> Self {
        let hosts = hosts
            .into_iter()
            .map(|(name, addrs)| (name.to_ascii_lowercase(), addrs))
            .collect();
        self.hosts = Arc::new(hosts);
        self
    }

    /// The network with no address of its own: binds and sources as the OS chooses.
    pub fn any() -> Self {
        TokioNet::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// The node's address.
    pub fn local_ip(&self) -> IpAddr {
        self.local_ip
    }

    /// Where a bind to `at` really binds: the unspecified address becomes the node's own.
    pub fn bind_addr(&self, at: SocketAddr) -> SocketAddr {
        if at.ip().is_unspecified() && !self.local_ip.is_unspecified() {
            SocketAddr::new(self.local_ip, at.port())
        } else {
            at
        }
    }

    /// The source address for traffic to `to`: the node's address when the families match.
    fn source_for(&self, to: SocketAddr) -> Option<SocketAddr> {
        (!self.local_ip.is_unspecified() && self.local_ip.is_ipv4() == to.is_ipv4())
            .then_some(SocketAddr::new(self.local_ip, 0))
    }
}

/// The system's wall clock as Unix time, the timeline of tickets ([`Net::unix_now`]).
pub fn wall_clock() -> UnixTime {
    // The real-socket nodes' one reading of the wall clock (clippy.toml).
    #[allow(clippy::disallowed_methods)]
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    UnixTime::from_duration_since_epoch(since)
}

/// The real-socket nodes' monotonic timeline ([`Net::now`]): microseconds since the first
/// reading in this process, shared by every node and thread of it (a relay's shards compare
/// their instants), never stepped by the wall clock.
pub fn monotonic_now() -> Instant {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    // The real-socket nodes' one reading of the monotonic clock (clippy.toml).
    #[allow(clippy::disallowed_methods)]
    let start = *START.get_or_init(std::time::Instant::now);
    Instant::from_micros(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
}

impl Net for TokioNet {
    type Stream = TcpStream;
    type Listener = TcpListener;
    type Udp = UdpSocket;

    async fn connect(&self, to: SocketAddr) -> io::Result<TcpStream> {
        let socket = if to.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(source) = self.source_for(to) {
            socket.bind(source)?;
        }
        let stream = socket.connect(to).await?;
        // Signalling and framed media are small writes that must not wait for Nagle.
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn listen(&self, at: SocketAddr) -> io::Result<TcpListener> {
        let at = self.bind_addr(at);
        let listen = || -> io::Result<TcpListener> {
            let socket = if at.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            if self.reuse_port {
                socket.set_reuseport(true)?;
            }
            socket.bind(at)?;
            socket.listen(1024)
        };
        listen().map_err(|e| io::Error::new(e.kind(), format!("cannot listen on tcp {at}: {e}")))
    }

    async fn bind_udp(&self, at: SocketAddr) -> io::Result<UdpSocket> {
        let at = self.bind_addr(at);
        UdpSocket::bind(at)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind udp {at}: {e}")))
    }

    async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        if let Some(addrs) = self.hosts.get(&name.to_ascii_lowercase()) {
            return Ok(addrs.clone());
        }
        if let Some(resolver) = self.resolver {
            return super::dns_client::resolve_a(self.local_ip, resolver, name).await;
        }
        let found = tokio::net::lookup_host((name, 0))
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let mut addrs: Vec<IpAddr> = Vec::new();
        for addr in found {
            if !addrs.contains(&addr.ip()) {
                addrs.push(addr.ip());
            }
        }
        if addrs.is_empty() {
            return Err(format!("{name}: no address"));
        }
        Ok(addrs)
    }

    fn now(&self) -> Instant {
        monotonic_now()
    }

    fn unix_now(&self) -> UnixTime {
        wall_clock()
    }

    fn batch_sends(&self) -> bool {
        cfg!(target_os = "linux") && !self.no_io_uring
    }

    async fn tunnel(
        &self,
        client: TcpStream,
        upstream: TcpStream,
        link: super::TunnelLink,
    ) -> super::TunnelEnd {
        #[cfg(target_os = "linux")]
        if !self.copy_tunnels {
            return super::splice::splice_tunnel(client, upstream, link).await;
        }
        super::copy_tunnel(client, upstream, link).await
    }
}

impl Listener for TcpListener {
    type Stream = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            match TcpListener::accept(self).await {
                Ok((stream, peer)) => {
                    // A peer that resets at once may leave no socket to configure: skip it.
                    if stream.set_nodelay(true).is_ok() {
                        return Ok((stream, peer));
                    }
                }
                Err(e) if out_of_descriptors(&e) => tokio::time::sleep(ACCEPT_BACKOFF).await,
                Err(e) if per_connection(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Udp for UdpSocket {
    async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        UdpSocket::send_to(self, data, to).await.map(|_| ())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            match UdpSocket::recv_from(self, buf).await {
                Err(e) if per_connection(&e) => {}
                other => return other,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        UdpSocket::local_addr(self)
    }

    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            match UdpSocket::try_recv_from(self, buf) {
                Err(e) if per_connection(&e) => {}
                other => return other,
            }
        }
    }

    fn try_send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        UdpSocket::try_send_to(self, data, to).map(|_| ())
    }

    #[cfg(unix)]
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        Some(self.as_raw_fd())
    }

    fn polled(&self) -> bool {
        true
    }

    fn poll_recv_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        UdpSocket::poll_recv_ready(self, cx)
    }

    fn poll_send_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        UdpSocket::poll_send_ready(self, cx)
    }

    fn clear_recv_ready(&self) {
        // A "would block" from try_io clears tokio's readiness, and only the readiness this
        // call saw: an event the driver records later sets it again.
        let _ = self.try_io(tokio::io::Interest::READABLE, || {
            Err::<(), io::Error>(io::ErrorKind::WouldBlock.into())
        });
    }

    #[cfg(target_os = "linux")]
    fn try_recv_batch(
        &self,
        bufs: &mut [Vec<u8>],
        got: &mut [super::RecvMeta],
    ) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let fd = self.as_raw_fd();
        loop {
            match self.try_io(tokio::io::Interest::READABLE, || {
                super::mmsg::recv(fd, bufs, got)
            }) {
                Err(e) if per_connection(&e) => {}
                other => return other,
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn enable_gro(&self) -> bool {
        use std::os::fd::AsRawFd;
        super::mmsg::enable_gro(self.as_raw_fd())
    }

    #[cfg(target_os = "linux")]
    fn try_send_batch(&self, batch: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let fd = self.as_raw_fd();
        self.try_io(tokio::io::Interest::WRITABLE, || {
            super::mmsg::send(fd, batch)
        })
    }
}

/// `EMFILE` / `ENFILE` / `ENOBUFS` / `ENOMEM`: the process or the system is out of resources
/// for a moment; the listener itself is fine.
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}

/// Errors about one peer (an aborted or reset connection, an ICMP error on UDP), not about the
/// socket.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}
