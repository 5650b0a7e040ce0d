//! [`TlsNet`]: the [`Net`] decorator that speaks TLS on the TLS ports (see the module docs of
//! [`crate::tls`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

use cloudproxy_core::time::{Instant, UnixTime};
use rustls::ServerConfig;
use rustls_pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::stream::TlsStream;
use super::{HandshakeFailed, HandshakeWatch, Tls, ALPN};
use crate::net::{copy_tunnel, Listener, Net, TunnelEnd, TunnelLink};

/// Most names remembered for the server-name rule (addresses → the name they were resolved
/// from); past it the oldest answers are forgotten first (their addresses then verify as IP
/// SANs).
pub const MAX_REMEMBERED_NAMES: usize = 256;

/// A network that speaks TLS on its [`Tls`] ports (see [`crate::tls`]).
#[derive(Clone)]
pub struct TlsNet<N> {
    inner: N,
    tls: Tls,
    /// Addresses this network resolved, and the name each was resolved from.
    names: Rc<RefCell<Names>>,
}

/// The addresses resolved, bounded by [`MAX_REMEMBERED_NAMES`].
#[derive(Default)]
struct Names {
    by_ip: BTreeMap<IpAddr, (u64, String)>,
    next: u64,
}

impl Names {
    fn remember(&mut self, name: &str, addrs: &[IpAddr]) {
        for ip in addrs {
            self.next += 1;
            self.by_ip
                .insert(*ip, (self.next, name.to_ascii_lowercase()));
        }
        while self.by_ip.len() > MAX_REMEMBERED_NAMES {
            let oldest = self
                .by_ip
                .iter()
                .min_by_key(|(_, (n, _))| *n)
                .map(|(ip, _)| *ip);
            match oldest {
                Some(ip) => self.by_ip.remove(&ip),
                None => break,
            };
        }
    }
}

impl<N: Net> TlsNet<N> {
    /// `inner` with `tls` on its TLS ports.
    pub fn new(inner: N, tls: Tls) -> Self {
        TlsNet {
            inner,
            tls,
            names: Rc::default(),
        }
    }

    /// The network below.
    pub fn inner(&self) -> &N {
        &self.inner
    }

    /// The name a connection to `ip` verifies: the DNS name it was resolved from through this
    /// network, else the address itself (an IP SAN).
    pub fn server_name(&self, ip: IpAddr) -> ServerName<'static> {
        let names = self.names.borrow();
        names
            .by_ip
            .get(&ip)
            .and_then(|(_, name)| ServerName::try_from(name.clone()).ok())
            .unwrap_or(ServerName::IpAddress(ip.into()))
    }

    async fn connect_tls(
        &self,
        config: Arc<rustls::ClientConfig>,
        stream: N::Stream,
        to: SocketAddr,
    ) -> io::Result<TlsStream<N::Stream>> {
        let name = self.server_name(to.ip());
        let shown = match &name {
            ServerName::DnsName(d) => d.as_ref().to_owned(),
            _ => format!("IP {}", to.ip()),
        };
        let failed = |kind: io::ErrorKind, text: String| {
            if let Some(errors) = &self.tls.errors {
                errors(&text);
            }
            io::Error::new(kind, HandshakeFailed(text))
        };
        let stream = TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| failed(e.kind(), format!("TLS to {to} (verifying {shown}): {e}")))?;
        if stream.get_ref().1.alpn_protocol() != Some(ALPN) {
            let alpn = String::from_utf8_lossy(ALPN);
            let text = format!("TLS to {to}: the server did not select ALPN {alpn}");
            return Err(failed(io::ErrorKind::InvalidData, text));
        }
        Ok(TlsStream::Client(Box::new(stream)))
    }
}

impl<N: Net> Net for TlsNet<N> {
    type Stream = TlsStream<N::Stream>;
    type Listener = TlsListener<N::Listener>;
    type Udp = N::Udp;

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Stream> {
        let stream = self.inner.connect(to).await?;
        match &self.tls.client {
            Some(config) if self.tls.is_tls_port(to.port()) => {
                self.connect_tls(config.clone(), stream, to).await
            }
            _ => Ok(TlsStream::Plain(stream)),
        }
    }

    async fn listen(&self, at: SocketAddr) -> io::Result<Self::Listener> {
        let inner = self.inner.listen(at).await?;
        let server = self
            .tls
            .server
            .clone()
            .filter(|_| self.tls.is_tls_port(at.port()));
        let watch = HandshakeWatch {
            errors: self.tls.errors.clone(),
            counters: self.tls.counters.clone(),
        };
        Ok(TlsListener {
            inner,
            server,
            watch,
        })
    }

    async fn bind_udp(&self, at: SocketAddr) -> io::Result<Self::Udp> {
        self.inner.bind_udp(at).await
    }

    async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let answer = self.inner.resolve(name).await;
        if let Ok(addrs) = &answer {
            self.names.borrow_mut().remember(name, addrs);
        }
        answer
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn unix_now(&self) -> UnixTime {
        self.inner.unix_now()
    }

    fn batch_sends(&self) -> bool {
        // The datagrams are the inner network's, untouched by TLS.
        self.inner.batch_sends()
    }

    async fn tunnel(
        &self,
        client: Self::Stream,
        upstream: Self::Stream,
        link: TunnelLink,
    ) -> TunnelEnd {
        match (client, upstream) {
            // Both plain: the inner network's pump (splice(2) on Linux real sockets).
            (TlsStream::Plain(client), TlsStream::Plain(upstream)) => {
                self.inner.tunnel(client, upstream, link).await
            }
            // TLS on either side: the bytes must pass through rustls.
            (client, upstream) => copy_tunnel(client, upstream, link).await,
        }
    }
}

/// A listener that hands out TLS server streams when it listens on a TLS port.
pub struct TlsListener<L> {
    inner: L,
    server: Option<Arc<ServerConfig>>,
    watch: HandshakeWatch,
}

impl<L: Listener> Listener for TlsListener<L> {
    type Stream = TlsStream<L::Stream>;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = self.inner.accept().await?;
        let stream = match &self.server {
            Some(config) => {
                let accept = TlsAcceptor::from(config.clone()).accept(stream);
                TlsStream::accepting(accept, peer, self.watch.clone())
            }
            None => TlsStream::Plain(stream),
        };
        Ok((stream, peer))
    }
}
