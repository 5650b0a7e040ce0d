//! TLS connections that belong to another shard (**beyond the seed**): the bridge.
//!
//! Every relay worker accepts on the TLS port (`SO_REUSEPORT`, like the plain TCP port), so
//! the handshakes spread over the cores. A plain connection whose session is owned by
//! another shard moves there as it is: its descriptor and the bytes read
//! ([`super::workers`]). A TLS connection cannot: its keys and record sequence numbers live
//! in the rustls state of the worker that accepted it (rustls can export its secrets but not
//! import them, and kernel TLS, which would let the descriptor move, is not available
//! everywhere). So the accepting shard keeps the TLS side and hands the owner the plain end
//! of a loopback TCP pair: the owner serves it as any connection handed over (its bounds,
//! idle rules and counters apply to it, under the client's address), and this shard only
//! decrypts and encrypts between the two.
//!
//! Bounds: at most [`Bridges::max`] bridges per shard at once (twice the relay's
//! `max_sessions_total`: a session has a tunnel and a media channel); past it the connection
//! is dropped, as a full handoff queue drops one (the client retries). A bridge costs two
//! loopback descriptors and two 8 KiB copy buffers on top of the TLS connection, and ends
//! when either side closes: the owner closing its end (its own bounds, idle, shutdown) ends
//! the TLS connection.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cloudproxy_node::tls::{TlsCounters, TlsStream};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A connection moving between shards: the stream, the client's address, the bytes read.
pub type Moving = (std::net::TcpStream, SocketAddr, Vec<u8>);

/// Longest a loopback pair may take to connect.
const PAIR_TIMEOUT: Duration = Duration::from_secs(1);

/// Strangers (other local processes connecting to the pairing port) accepted and dropped
/// before a pairing gives up.
const MAX_STRANGERS: usize = 8;

/// Moves bytes between the client's TLS connection and the owner's end until the owner
/// closes (the client hears `close_notify`), or the client closes and the owner follows
/// within [`CLOSE_GRACE`]; then both are dropped.
async fn pump(tls: TlsStream<TcpStream>, near: TcpStream) {
    let (mut from_client, mut to_client) = tokio::io::split(tls);
    let (mut from_owner, mut to_owner) = near.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_owner).await;
        let _ = to_owner.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut from_owner, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::pin!(up, down);
    tokio::select! {
        () = &mut down => {}
        () = &mut up => {
            let _ = tokio::time::timeout(CLOSE_GRACE, down).await;
        }
    }
}

/// How long the owner may take to close its end once the client closed its own.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// One shard's TLS state, read by the metrics endpoint: its handshakes and its bridges.
#[derive(Debug, Default)]
pub struct ShardTls {
    /// The handshakes on this shard's TLS port.
    pub handshakes: Arc<TlsCounters>,
    /// TLS connections bridged to the shard owning their session, ever.
    pub bridged: AtomicU64,
    /// TLS connections that should have been bridged but were dropped (at the bound, a full
    /// queue, no loopback pair).
    pub bridge_dropped: AtomicU64,
}

/// A shard's bridges: the loopback listener pairs are made with, and the count open.
pub struct Bridges {
    /// Most bridges open at once.
    pub max: usize,
    open: Cell<usize>,
    listener: RefCell<Option<Rc<TcpListener>>>,
    /// One pairing at a time: each accept must be the pair of the connect before it.
    pairing: tokio::sync::Mutex<()>,
    stats: Arc<ShardTls>,
}

impl Bridges {
    /// A shard's bridges, at most `max` at once, counted in `stats`.
    pub fn new(max: usize, stats: Arc<ShardTls>) -> Rc<Self> {
        Rc::new(Bridges {
            max,
            open: Cell::new(0),
            listener: RefCell::new(None),
            pairing: tokio::sync::Mutex::new(()),
            stats,
        })
    }

    /// Bridges `tls` (client `peer`, plaintext `data` read so far) to the shard behind `to`,
    /// in a task of this shard; drops it when the bound is reached.
    pub fn start(
        self: &Rc<Self>,
        tls: TlsStream<TcpStream>,
        peer: SocketAddr,
        data: Vec<u8>,
        to: mpsc::Sender<Moving>,
    ) {
        if self.open.get() >= self.max {
            self.dropped(peer, "the bridge bound is reached");
            return;
        }
        self.open.set(self.open.get() + 1);
        let this = self.clone();
        tokio::task::spawn_local(async move {
            this.run(tls, peer, data, to).await;
            this.open.set(this.open.get().saturating_sub(1));
        });
    }

    async fn run(
        &self,
        tls: TlsStream<TcpStream>,
        peer: SocketAddr,
        data: Vec<u8>,
        to: mpsc::Sender<Moving>,
    ) {
        let (near, far) = match self.pair().await {
            Ok(pair) => pair,
            Err(e) => return self.dropped(peer, &format!("no loopback pair: {e}")),
        };
        let Ok(far) = far.into_std() else {
            return self.dropped(peer, "the loopback pair cannot move");
        };
        if to.try_send((far, peer, data)).is_err() {
            return self.dropped(peer, "handoff queue full");
        }
        self.stats.bridged.fetch_add(1, Ordering::Relaxed);
        pump(tls, near).await;
    }

    fn dropped(&self, peer: SocketAddr, why: &str) {
        self.stats.bridge_dropped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "a TLS connection for another shard dropped: {why}");
    }

    /// A connected loopback TCP pair: (this shard's end, the owner's end).
    async fn pair(&self) -> io::Result<(TcpStream, TcpStream)> {
        let _one_at_a_time = self.pairing.lock().await;
        let listener = self.listener().await?;
        let at = listener.local_addr()?;
        tokio::time::timeout(PAIR_TIMEOUT, async {
            let near = TcpStream::connect(at).await?;
            let mine = near.local_addr()?;
            for _ in 0..=MAX_STRANGERS {
                let (far, from) = listener.accept().await?;
                if from == mine {
                    near.set_nodelay(true)?;
                    far.set_nodelay(true)?;
                    return Ok((near, far));
                }
            }
            Err(io::Error::other("too many strangers on the pairing port"))
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "pairing timed out"))?
    }

    /// The pairing listener (on 127.0.0.1, an ephemeral port), made on first use.
    async fn listener(&self) -> io::Result<Rc<TcpListener>> {
        if let Some(l) = self.listener.borrow().as_ref() {
            return Ok(l.clone());
        }
        let l = Rc::new(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?);
        *self.listener.borrow_mut() = Some(l.clone());
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connected loopback pair through a listener of its own: (client, server).
    async fn client_and_server() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let at = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(at), listener.accept());
        (client.unwrap(), server.unwrap().0)
    }

    fn run(test: impl std::future::Future<Output = ()>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, async {
            tokio::time::timeout(Duration::from_secs(10), test)
                .await
                .expect("the test's bound");
        });
    }

    #[test]
    fn a_bridged_connection_carries_both_ways_and_closes_with_its_owner() {
        run(async {
            let stats = Arc::new(ShardTls::default());
            let bridges = Bridges::new(4, stats.clone());
            let (mut client, server) = client_and_server().await;
            let peer = client.local_addr().unwrap();
            let (tx, mut rx) = mpsc::channel(1);
            bridges.start(TlsStream::Plain(server), peer, b"read".to_vec(), tx);
            let (far, from, data) = rx.recv().await.unwrap();
            assert_eq!((from, data.as_slice()), (peer, &b"read"[..]));
            assert_eq!(stats.bridged.load(Ordering::Relaxed), 1);
            assert_eq!(bridges.open.get(), 1);
            let mut far = TcpStream::from_std(far).unwrap();

            client.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            far.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            far.write_all(b"pong").await.unwrap();
            client.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"pong");

            // The owner closes: the client's connection ends, and so does the bridge.
            drop(far);
            assert_eq!(client.read(&mut buf).await.unwrap(), 0);
            while bridges.open.get() > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
    }

    #[test]
    fn past_the_bound_a_connection_is_dropped_and_counted() {
        run(async {
            let stats = Arc::new(ShardTls::default());
            let bridges = Bridges::new(0, stats.clone());
            let (mut client, server) = client_and_server().await;
            let peer = client.local_addr().unwrap();
            let (tx, mut rx) = mpsc::channel(1);
            bridges.start(TlsStream::Plain(server), peer, Vec::new(), tx);
            assert_eq!(client.read(&mut [0u8; 4]).await.unwrap(), 0);
            assert!(rx.recv().await.is_none(), "nothing handed over");
            assert_eq!(stats.bridge_dropped.load(Ordering::Relaxed), 1);
            assert_eq!(stats.bridged.load(Ordering::Relaxed), 0);
        });
    }
}
