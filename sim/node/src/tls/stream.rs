//! [`TlsStream`]: a stream of a [`TlsNet`](super::TlsNet), plain or TLS.
//!
//! A server stream starts in its handshake and completes it on its first read or write (the
//! accept loop never waits for a handshake). The nodes poll a stream's reads and writes from
//! one task (the relay's and the access point's connection tasks, `tokio::io::split` within
//! one task), which is what lets the handshake be driven from either. A handshake that fails
//! (no certificate the client accepts, the wrong ALPN) makes every later read and write fail
//! with the reason: the node sees a closed connection.
//!
//! A server stream can **move to another thread** (`serve`'s relay workers hand a connection
//! to the worker owning its session): [`TlsStream::into_server_parts`] takes an established
//! one apart into its IO and its rustls [`ServerConnection`] (keys, record sequence numbers,
//! and every byte received but not yet read: records not yet decrypted and plaintext not
//! yet handed out), and [`TlsStream::resumed`] puts it back together on the other side.
//! tokio-rustls has no constructor from an IO and a connection, so `resumed` runs the
//! acceptor with the moved connection in place of the fresh one (`accept_with`): the
//! connection is past its handshake, so the first read or write only writes out what rustls
//! still had to send, and the stream carries data from there.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustls::{ServerConfig, ServerConnection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::{client, server, Accept, TlsAcceptor};

use super::{HandshakeFailure, TlsCounters, TlsErrorSink, ALPN};
use std::sync::Arc;

/// A stream of a [`TlsNet`](super::TlsNet).
pub enum TlsStream<S> {
    /// Not TLS (not a TLS port, or no TLS configured for this side).
    Plain(S),
    /// A TLS client connection, handshake done.
    Client(Box<client::TlsStream<S>>),
    /// A TLS server connection in its handshake, the peer's address and who hears of how it
    /// ends (or one [`resumed`](TlsStream::resumed) after a move: its handshake is done).
    Accepting(Box<Accept<S>>, SocketAddr, HandshakeWatch),
    /// A TLS server connection, handshake done.
    Server(Box<server::TlsStream<S>>),
    /// A server handshake that failed, and why.
    Failed(io::ErrorKind, String),
}

/// Who hears of how a server handshake ends: the failure's text, and the counters.
#[derive(Clone, Default)]
pub struct HandshakeWatch {
    /// Told of a failure, its text naming the peer and the reason.
    pub errors: Option<TlsErrorSink>,
    /// Counts the handshake, completed or failed by class.
    pub counters: Option<Arc<TlsCounters>>,
}

impl HandshakeWatch {
    fn completed(&self) {
        if let Some(c) = &self.counters {
            c.count_completed();
        }
    }

    fn failed(&self, class: HandshakeFailure, why: &str) {
        if let Some(c) = &self.counters {
            c.count_failed(class);
        }
        if let Some(errors) = &self.errors {
            errors(why);
        }
    }
}

impl<S> std::fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            TlsStream::Plain(_) => "plain",
            TlsStream::Client(_) => "tls client",
            TlsStream::Accepting(..) => "tls server (handshake)",
            TlsStream::Server(_) => "tls server",
            TlsStream::Failed(..) => "tls server (failed)",
        };
        f.write_str(kind)
    }
}

impl<S> TlsStream<S> {
    /// A server stream whose handshake `accept` completes on first use; `watch` hears of how
    /// it ends.
    pub fn accepting(accept: Accept<S>, peer: SocketAddr, watch: HandshakeWatch) -> Self {
        TlsStream::Accepting(Box::new(accept), peer, watch)
    }

    /// Whether this stream speaks TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self, TlsStream::Plain(_))
    }

    /// The plain stream, if this one is not TLS.
    pub fn into_plain(self) -> Result<S, Self> {
        match self {
            TlsStream::Plain(s) => Ok(s),
            other => Err(other),
        }
    }

    /// The IO and the rustls state of a TLS server stream whose handshake is done, to move
    /// it to another thread or runtime ([`TlsStream::resumed`] puts them back together);
    /// any other stream is given back as it is.
    pub fn into_server_parts(self) -> Result<(S, ServerConnection), Self> {
        match self {
            TlsStream::Server(s) => Ok(s.into_inner()),
            other => Err(other),
        }
    }

    /// The ALPN protocol agreed, once a TLS handshake is done.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            TlsStream::Client(s) => s.get_ref().1.alpn_protocol(),
            TlsStream::Server(s) => s.get_ref().1.alpn_protocol(),
            _ => None,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// A TLS server stream put back together from the parts
    /// [`into_server_parts`](TlsStream::into_server_parts) gave (`io` registered with this
    /// thread's runtime, `connection` from the peer at `peer`): it carries on where the other
    /// side left off, the bytes rustls held included. `config` only makes the placeholder
    /// connection that `connection` replaces (see the module docs); the handshake is not
    /// counted again.
    pub fn resumed(
        io: S,
        connection: ServerConnection,
        config: Arc<ServerConfig>,
        peer: SocketAddr,
    ) -> Self {
        let accept = TlsAcceptor::from(config).accept_with(io, move |fresh| *fresh = connection);
        TlsStream::accepting(accept, peer, HandshakeWatch::default())
    }

    /// Writes out the TLS records rustls still holds, if any. A write can hand rustls its
    /// bytes and report them taken while the socket is not ready (always so on the first
    /// write after a stream [moved](TlsStream::resumed): its new registration has not seen
    /// the socket writable yet); the nodes do not flush after each write, so every read and
    /// write pushes what is left (the waker is registered when the socket is still not
    /// ready). A failure here shows on the next write.
    fn push_pending(&mut self, cx: &mut Context<'_>) {
        let _ = match self {
            TlsStream::Client(s) if s.get_ref().1.wants_write() => {
                Pin::new(&mut **s).poll_flush(cx)
            }
            TlsStream::Server(s) if s.get_ref().1.wants_write() => {
                Pin::new(&mut **s).poll_flush(cx)
            }
            _ => return,
        };
    }

    /// Drives a server handshake to its end; `Ok` once the stream can carry data.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let TlsStream::Accepting(accept, peer, watch) = self {
            let (peer, watch) = (*peer, watch.clone());
            let done = ready!(Pin::new(&mut **accept).poll(cx));
            *self = match done {
                Ok(stream) if stream.get_ref().1.alpn_protocol() == Some(ALPN) => {
                    watch.completed();
                    TlsStream::Server(Box::new(stream))
                }
                Ok(_) => {
                    let why = format!(
                        "TLS from {peer}: the client did not offer ALPN {}",
                        String::from_utf8_lossy(ALPN)
                    );
                    watch.failed(HandshakeFailure::NoAlpn, &why);
                    TlsStream::Failed(io::ErrorKind::InvalidData, why)
                }
                Err(e) => {
                    let why = refusal(peer, &e);
                    watch.failed(HandshakeFailure::of(&e), &why);
                    TlsStream::Failed(e.kind(), why)
                }
            };
        }
        match self {
            TlsStream::Failed(kind, why) => Poll::Ready(Err(io::Error::new(*kind, why.clone()))),
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// What a failed server handshake says: rustls' reason, and what it means for ALPN.
fn refusal(peer: SocketAddr, e: &io::Error) -> String {
    let no_alpn = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| *r == rustls::Error::NoApplicationProtocol);
    if no_alpn {
        format!(
            "TLS from {peer}: {e} (the client did not offer ALPN {})",
            String::from_utf8_lossy(ALPN)
        )
    } else {
        format!("TLS from {peer}: {e}")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_handshake(cx))?;
        this.push_pending(cx);
        match this {
            TlsStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            TlsStream::Client(s) => Pin::new(&mut **s).poll_read(cx, buf),
            TlsStream::Server(s) => Pin::new(&mut **s).poll_read(cx, buf),
            TlsStream::Accepting(..) | TlsStream::Failed(..) => Poll::Ready(Ok(())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_handshake(cx))?;
        let written = match this {
            TlsStream::Plain(s) => return Pin::new(s).poll_write(cx, data),
            TlsStream::Client(s) => Pin::new(&mut **s).poll_write(cx, data),
            TlsStream::Server(s) => Pin::new(&mut **s).poll_write(cx, data),
            TlsStream::Accepting(..) | TlsStream::Failed(..) => return Poll::Ready(Ok(0)),
        };
        if let Poll::Ready(Ok(_)) = written {
            this.push_pending(cx);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TlsStream::Plain(s) => Pin::new(s).poll_flush(cx),
            TlsStream::Client(s) => Pin::new(&mut **s).poll_flush(cx),
            TlsStream::Server(s) => Pin::new(&mut **s).poll_flush(cx),
            TlsStream::Accepting(..) | TlsStream::Failed(..) => Poll::Ready(Ok(())),
        }
    }

    /// Sends TLS's `close_notify`, then shuts the stream down. A server stream still in (or
    /// failed in) its handshake has nothing to flush: it is dropped as it is.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TlsStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            TlsStream::Client(s) => Pin::new(&mut **s).poll_shutdown(cx),
            TlsStream::Server(s) => Pin::new(&mut **s).poll_shutdown(cx),
            TlsStream::Accepting(..) | TlsStream::Failed(..) => Poll::Ready(Ok(())),
        }
    }
}
