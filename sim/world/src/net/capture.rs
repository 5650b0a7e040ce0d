//! The capturing decorator: every packet a host sends goes into the world's pcap
//! ([`crate::pcap`]). It wraps a host's whole network, outermost, and records at the sender
//! only, so each packet is in the pcap once. Without a capture it is a plain pass-through.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::pcap::{isn, on_host, Flags, Sink};

use cloudproxy_node::net::{Listener, Net, Udp};

/// A stream that knows its two endpoints (to write them into packet headers).
pub trait StreamAddrs {
    /// `(local, peer)`.
    fn stream_addrs(&self) -> io::Result<(SocketAddr, SocketAddr)>;
}

impl StreamAddrs for turmoil::net::TcpStream {
    fn stream_addrs(&self) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.local_addr()?, self.peer_addr()?))
    }
}

impl StreamAddrs for tokio::net::TcpStream {
    fn stream_addrs(&self) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.local_addr()?, self.peer_addr()?))
    }
}

/// The time on the host's timeline, in µs.
type Clock = Rc<dyn Fn() -> u64>;

/// A host's network with everything it sends recorded.
#[derive(Clone)]
pub struct Captured<N> {
    inner: N,
    sink: Option<Sink>,
    host: IpAddr,
    clock: Clock,
}

impl<N: Net> Captured<N> {
    /// `inner`, the network of the host at `host`, recording into `sink` (none: pass-through).
    pub(crate) fn new(inner: N, sink: Option<Sink>, host: IpAddr) -> Self {
        let net = inner.clone();
        Captured {
            inner,
            sink,
            host,
            clock: Rc::new(move || net.now().as_micros()),
        }
    }
}

/// Sequence-number bookkeeping of one captured TCP connection, at one end.
struct Tcp {
    sink: Sink,
    clock: Clock,
    local: SocketAddr,
    peer: SocketAddr,
    /// The next sequence number this end sends.
    snd_nxt: u32,
    /// The next sequence number this end expects: what it acknowledges.
    rcv_nxt: u32,
    fin_sent: bool,
    fin_received: bool,
}

/// The MSS of the synthesized segments.
fn mss(local: SocketAddr, peer: SocketAddr) -> usize {
    if local.is_ipv4() && peer.is_ipv4() {
        1460
    } else {
        1440
    }
}

impl Tcp {
    fn new(sink: Sink, clock: Clock, local: SocketAddr, peer: SocketAddr) -> Self {
        Tcp {
            sink,
            clock,
            local,
            peer,
            snd_nxt: isn(local, peer).wrapping_add(1),
            rcv_nxt: isn(peer, local).wrapping_add(1),
            fin_sent: false,
            fin_received: false,
        }
    }

    fn data(&mut self, bytes: &[u8]) {
        let now = (self.clock)();
        let chunks = bytes.chunks(mss(self.local, self.peer));
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.enumerate() {
            let flags = Flags {
                ack: true,
                psh: i == last,
                ..Flags::default()
            };
            self.sink.tcp(
                now,
                self.local,
                self.peer,
                self.snd_nxt,
                self.rcv_nxt,
                flags,
                chunk,
            );
            self.snd_nxt = self.snd_nxt.wrapping_add(chunk.len() as u32);
        }
    }

    fn fin(&mut self) {
        if self.fin_sent {
            return;
        }
        self.fin_sent = true;
        let flags = Flags {
            ack: true,
            fin: true,
            ..Flags::default()
        };
        let now = (self.clock)();
        self.sink.tcp(
            now,
            self.local,
            self.peer,
            self.snd_nxt,
            self.rcv_nxt,
            flags,
            &[],
        );
        self.snd_nxt = self.snd_nxt.wrapping_add(1);
    }

    fn read(&mut self, n: usize) {
        if n == 0 {
            if !self.fin_received {
                self.fin_received = true;
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            }
        } else {
            self.rcv_nxt = self.rcv_nxt.wrapping_add(n as u32);
        }
    }
}

/// A TCP stream whose segments are recorded.
pub struct CapturedStream<S> {
    inner: S,
    tcp: Option<Tcp>,
}

impl<S> CapturedStream<S> {
    fn plain(inner: S) -> Self {
        CapturedStream { inner, tcp: None }
    }
}

impl<S> Drop for CapturedStream<S> {
    fn drop(&mut self) {
        // The simulated stack sends FIN when a stream is dropped without a shutdown.
        if let Some(tcp) = self.tcp.as_mut() {
            tcp.fin();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CapturedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(tcp)) = (&result, this.tcp.as_mut()) {
            let n = buf.filled().len() - before;
            if n > 0 || room {
                tcp.read(n);
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CapturedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(tcp)) = (&result, this.tcp.as_mut()) {
            if *n > 0 {
                tcp.data(&buf[..*n]);
            }
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        if let (Poll::Ready(Ok(())), Some(tcp)) = (&result, this.tcp.as_mut()) {
            tcp.fin();
        }
        result
    }
}

/// A connect under way. Its SYN is recorded once the outcome is known: with the handshake when
/// it succeeds, alone when it fails, is given up (a firewall dropped it and the caller's timer
/// fired), or is still pending when the capture ends.
struct PendingConnect {
    sink: Sink,
    id: u64,
    at: u64,
}

impl Drop for PendingConnect {
    fn drop(&mut self) {
        self.sink.abandon_connect(self.id);
    }
}

impl<N> Net for Captured<N>
where
    N: Net,
    N::Stream: StreamAddrs,
{
    type Stream = CapturedStream<N::Stream>;
    type Listener = CapturedListener<N::Listener>;
    type Udp = CapturedUdp<N::Udp>;

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Stream> {
        let Some(sink) = &self.sink else {
            return self.inner.connect(to).await.map(CapturedStream::plain);
        };
        let at = (self.clock)();
        let pending = PendingConnect {
            sink: sink.clone(),
            id: sink.begin_connect(at, self.host, to),
            at,
        };
        let result = self.inner.connect(to).await;
        let now = (self.clock)();
        match result {
            Ok(stream) => {
                sink.end_connect(pending.id);
                let (local, peer) = match stream.stream_addrs() {
                    Ok((local, peer)) => (on_host(local, self.host), peer),
                    Err(_) => (
                        SocketAddr::new(self.host, sink.synthetic_port(self.host)),
                        to,
                    ),
                };
                let (c, s) = (isn(local, peer), isn(peer, local));
                let syn = Flags {
                    syn: true,
                    ..Flags::default()
                };
                let syn_ack = Flags { ack: true, ..syn };
                let ack = Flags {
                    ack: true,
                    ..Flags::default()
                };
                sink.tcp(pending.at, local, peer, c, 0, syn, &[]);
                sink.tcp(now, peer, local, s, c.wrapping_add(1), syn_ack, &[]);
                sink.tcp(
                    now,
                    local,
                    peer,
                    c.wrapping_add(1),
                    s.wrapping_add(1),
                    ack,
                    &[],
                );
                sink.tcp_flow(pending.at, self.host, to, true);
                Ok(CapturedStream {
                    inner: stream,
                    tcp: Some(Tcp::new(sink.clone(), self.clock.clone(), local, peer)),
                })
            }
            Err(e) => {
                let local = sink.abandon_connect(pending.id);
                if let (Some(local), io::ErrorKind::ConnectionRefused) = (local, e.kind()) {
                    let syn = isn(local, to);
                    let rst = Flags {
                        rst: true,
                        ack: true,
                        ..Flags::default()
                    };
                    sink.tcp(now, to, local, 0, syn.wrapping_add(1), rst, &[]);
                    sink.comment_last("connect refused: rejected (RST)");
                }
                Err(e)
            }
        }
    }

    async fn listen(&self, at: SocketAddr) -> io::Result<Self::Listener> {
        Ok(CapturedListener {
            inner: self.inner.listen(at).await?,
            sink: self.sink.clone(),
            host: self.host,
            at,
            clock: self.clock.clone(),
        })
    }

    async fn bind_udp(&self, at: SocketAddr) -> io::Result<Self::Udp> {
        let inner = self.inner.bind_udp(at).await?;
        let local = on_host(inner.local_addr().unwrap_or(at), self.host);
        Ok(CapturedUdp {
            inner,
            sink: self.sink.clone(),
            local,
            clock: self.clock.clone(),
        })
    }

    async fn resolve(&self, name: &str) -> Result<Vec<std::net::IpAddr>, String> {
        let asked = (self.clock)();
        let result = self.inner.resolve(name).await;
        if let Some(sink) = &self.sink {
            crate::pcap_dns::record(sink, self.host, asked, (self.clock)(), name, &result);
        }
        result
    }

    fn now(&self) -> cloudproxy_core::time::Instant {
        self.inner.now()
    }

    fn unix_now(&self) -> cloudproxy_core::time::UnixTime {
        self.inner.unix_now()
    }
}

/// A listener whose accepted streams are recorded.
pub struct CapturedListener<L> {
    inner: L,
    sink: Option<Sink>,
    host: IpAddr,
    at: SocketAddr,
    clock: Clock,
}

impl<L> Listener for CapturedListener<L>
where
    L: Listener,
    L::Stream: StreamAddrs,
{
    type Stream = CapturedStream<L::Stream>;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, from) = self.inner.accept().await?;
        let Some(sink) = &self.sink else {
            return Ok((CapturedStream::plain(stream), from));
        };
        // The connecting side recorded the handshake.
        let (local, peer) = stream.stream_addrs().unwrap_or((self.at, from));
        let tcp = Tcp::new(
            sink.clone(),
            self.clock.clone(),
            on_host(local, self.host),
            peer,
        );
        Ok((
            CapturedStream {
                inner: stream,
                tcp: Some(tcp),
            },
            from,
        ))
    }
}

/// A UDP socket whose datagrams are recorded.
pub struct CapturedUdp<U> {
    inner: U,
    sink: Option<Sink>,
    /// Its address, with the host's IP for a wildcard bind.
    local: SocketAddr,
    clock: Clock,
}

impl<U: Udp> Udp for CapturedUdp<U> {
    async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        if let Some(sink) = &self.sink {
            sink.udp((self.clock)(), self.local, to, data);
        }
        self.inner.send_to(data, to).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.recv_from(buf).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
