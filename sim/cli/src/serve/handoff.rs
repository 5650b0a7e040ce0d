//! Connections that belong to another shard move there, plain or TLS (TLS is **beyond the
//! seed**).
//!
//! Every relay worker accepts on the relay's TCP port and on its TLS port (`SO_REUSEPORT`),
//! so connections and handshakes spread over the cores. A connection whose first message
//! names a session another shard owns (a media channel whose tunnel landed elsewhere) is
//! handed to the owner's handoff channel as a [`Moving`]: the descriptor (deregistered from
//! this shard's runtime), the client's address, the plaintext read so far and, for TLS, the
//! rustls [`ServerConnection`] (keys, record sequence numbers, and every byte received but
//! not yet handed out: nothing is lost). The owner registers the descriptor with its own
//! runtime, puts the TLS stream back together
//! ([`TlsStream::resumed`](cloudproxy_node::tls::TlsStream::resumed)) and serves it as any
//! connection handed over: its bounds, idle rules and counters apply to it, under the
//! client's address. The accepting shard keeps nothing.
//!
//! Cost: one channel message per moved connection (the rustls state boxed in it) and, on the
//! owner's side, a placeholder `ServerConnection` made and dropped at once while the stream
//! is put back together; no extra descriptors, buffers or copies, and no bound besides the
//! channel's: each shard's queue holds [`HANDOFF_QUEUE`] connections, and a connection
//! arriving at a full queue is dropped (the client retries), counted for TLS
//! (`cloudproxy_relay_tls_move_dropped_total`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cloudproxy_node::nodes::relay::HandoffOut;
use cloudproxy_node::tls::{ServerConfig, ServerConnection, TlsCounters, TlsStream};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Connections waiting to be taken over by a shard.
pub const HANDOFF_QUEUE: usize = 64;

/// A connection moving between shards.
#[derive(Debug)]
pub struct Moving {
    /// Its descriptor, non-blocking, registered with no runtime.
    pub stream: std::net::TcpStream,
    /// For a TLS connection, its rustls state (boxed: it is large); `None`: plain.
    pub tls: Option<Box<ServerConnection>>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The plaintext read so far (the first message, and whatever followed it).
    pub data: Vec<u8>,
}

/// One shard's TLS state, read by the metrics endpoint: its handshakes and its moves.
#[derive(Debug, Default)]
pub struct ShardTls {
    /// The handshakes on this shard's TLS port.
    pub handshakes: Arc<TlsCounters>,
    /// TLS connections moved to the shard owning their session, ever.
    pub moved: AtomicU64,
    /// TLS connections that should have moved but were dropped (a full handoff queue, or a
    /// stream that could not come apart).
    pub move_dropped: AtomicU64,
}

/// Sends a connection to its shard (see the module docs); `stats` counts the TLS ones.
pub fn handoff_out(
    senders: Vec<mpsc::Sender<Moving>>,
    stats: Arc<ShardTls>,
) -> HandoffOut<TlsStream<TcpStream>> {
    Box::new(move |shard, stream, peer, data| {
        let Some(tx) = senders.get(usize::from(shard)) else {
            return;
        };
        let (tcp, tls) = match stream.into_plain() {
            Ok(plain) => (plain, None),
            Err(tls) => match tls.into_server_parts() {
                Ok((tcp, connection)) => (tcp, Some(Box::new(connection))),
                // Not an established server stream (it cannot have read a first message):
                // nothing to move.
                Err(_) => {
                    stats.move_dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        };
        let is_tls = tls.is_some();
        let dropped = match tcp.into_std() {
            Ok(stream) => {
                let moving = Moving {
                    stream,
                    tls,
                    peer,
                    data,
                };
                tx.try_send(moving).is_err()
            }
            Err(_) => true,
        };
        match (is_tls, dropped) {
            (true, false) => {
                stats.moved.fetch_add(1, Ordering::Relaxed);
            }
            (true, true) => {
                stats.move_dropped.fetch_add(1, Ordering::Relaxed);
            }
            (false, _) => {}
        }
        if dropped {
            tracing::debug!(%peer, shard, tls = is_tls, "handoff queue full: connection dropped");
        }
    })
}

/// Registers connections from other shards with this shard's runtime, TLS ones resumed
/// (`server`: this relay's TLS configuration; without it a TLS connection is dropped).
pub fn take_over(
    mut rx: mpsc::Receiver<Moving>,
    server: Option<Arc<ServerConfig>>,
) -> mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr, Vec<u8>)> {
    let (tx, local) = mpsc::channel(HANDOFF_QUEUE);
    tokio::task::spawn_local(async move {
        while let Some(moving) = rx.recv().await {
            let Moving {
                stream,
                tls,
                peer,
                data,
            } = moving;
            let Ok(tcp) = TcpStream::from_std(stream) else {
                continue;
            };
            let stream = match (tls, &server) {
                (None, _) => TlsStream::Plain(tcp),
                (Some(connection), Some(config)) => {
                    TlsStream::resumed(tcp, *connection, config.clone(), peer)
                }
                (Some(_), None) => continue,
            };
            if tx.send((stream, peer, data)).await.is_err() {
                return;
            }
        }
    });
    local
}

#[cfg(test)]
#[path = "handoff_tests.rs"]
mod tests;
