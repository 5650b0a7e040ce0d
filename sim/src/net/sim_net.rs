//! [`Net`] over turmoil's simulated sockets.

use std::io;
use std::net::SocketAddr;

use cloudproxy_core::time::Instant;

use super::{Listener, Net, Udp};

/// The turmoil network, as seen from the host the node runs on.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimNet;

impl Net for SimNet {
    type Stream = turmoil::net::TcpStream;
    type Listener = turmoil::net::TcpListener;
    type Udp = turmoil::net::UdpSocket;

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(to).await
    }

    async fn listen(&self, at: SocketAddr) -> io::Result<Self::Listener> {
        turmoil::net::TcpListener::bind(at).await
    }

    async fn bind_udp(&self, at: SocketAddr) -> io::Result<Self::Udp> {
        turmoil::net::UdpSocket::bind(at).await
    }

    fn now(&self) -> Instant {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default();
        Instant::from_micros(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
    }
}

impl Listener for turmoil::net::TcpListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        turmoil::net::TcpListener::accept(self).await
    }
}

impl Udp for turmoil::net::UdpSocket {
    async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        turmoil::net::UdpSocket::send_to(self, data, to)
            .await
            .map(|_| ())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        turmoil::net::UdpSocket::recv_from(self, buf).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        turmoil::net::UdpSocket::local_addr(self)
    }
}
