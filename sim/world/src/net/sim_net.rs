//! [`Net`] over turmoil's simulated sockets.

use std::io;
use std::net::SocketAddr;

use cloudproxy_core::time::{Instant, UnixTime};

use cloudproxy_node::net::{Listener, Net, Udp};

/// The turmoil network, as seen from the host the node runs on.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimNet;

/// A turmoil TCP listener, as the [`Net`] seam's [`Listener`].
pub struct SimListener(turmoil::net::TcpListener);

/// A turmoil UDP socket, as the [`Net`] seam's [`Udp`].
pub struct SimUdp(turmoil::net::UdpSocket);

impl Net for SimNet {
    type Stream = turmoil::net::TcpStream;
    type Listener = SimListener;
    type Udp = SimUdp;

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(to).await
    }

    async fn listen(&self, at: SocketAddr) -> io::Result<Self::Listener> {
        turmoil::net::TcpListener::bind(at).await.map(SimListener)
    }

    async fn bind_udp(&self, at: SocketAddr) -> io::Result<Self::Udp> {
        turmoil::net::UdpSocket::bind(at).await.map(SimUdp)
    }

    /// A bare simulated host has no resolver: the world wraps the hosts that resolve names in
    /// [`Resolving`](crate::dns::Resolving), the enterprise's resolver.
    async fn resolve(&self, name: &str) -> Result<Vec<std::net::IpAddr>, String> {
        Err(format!("{name}: this host has no resolver"))
    }

    fn now(&self) -> Instant {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default();
        Instant::from_micros(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
    }

    /// The virtual clock from [`SIM_UNIX_EPOCH`].
    fn unix_now(&self) -> UnixTime {
        SIM_UNIX_EPOCH + turmoil::sim_elapsed().unwrap_or_default()
    }
}

/// The wall-clock time at which every simulated run starts (2026-01-01T00:00:00Z): the
/// simulation's Unix time is its virtual clock from here, so that tickets carry a Unix time
/// unlike the machines' monotonic `now` (which starts at zero).
pub const SIM_UNIX_EPOCH: UnixTime = UnixTime::from_millis(1_767_225_600_000);

impl Listener for SimListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        self.0.accept().await
    }
}

impl Udp for SimUdp {
    async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        self.0.send_to(data, to).await.map(|_| ())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}
