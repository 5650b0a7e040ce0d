//! Stream pumps: the glue between a sans-IO machine's connection ids and real streams.
//!
//! Each stream gets a reader task (bytes and closure become [`StreamEvent`]s on one channel, in
//! order) and a writer task (writes queued in order, then shutdown on close). The machine's
//! driver owns a [`StreamPumps`], feeds its outputs in and its events back to the machine.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::Net;

/// What happened on a stream.
#[derive(Debug)]
pub enum StreamEvent {
    /// An outgoing connection is up.
    Connected,
    /// An outgoing connection failed.
    Failed(String),
    /// Bytes arrived.
    Data(Vec<u8>),
    /// The peer closed or reset the stream.
    Closed,
}

enum Write {
    Data(Vec<u8>),
    Close,
}

/// The streams of one machine, keyed by its connection ids.
pub struct StreamPumps<K: Ord + Copy + 'static> {
    writers: BTreeMap<K, mpsc::UnboundedSender<Write>>,
    events: mpsc::UnboundedSender<(K, StreamEvent)>,
}

/// Read size of the reader tasks.
const READ_CHUNK: usize = 16 * 1024;

impl<K: Ord + Copy + 'static> StreamPumps<K> {
    /// Pumps whose events go to `events`.
    pub fn new(events: mpsc::UnboundedSender<(K, StreamEvent)>) -> Self {
        StreamPumps {
            writers: BTreeMap::new(),
            events,
        }
    }

    /// Opens an outgoing connection as `key`; `Connected` or `Failed` follows. A connect that
    /// takes longer than `timeout` fails.
    pub fn connect<N: Net>(&mut self, net: &N, key: K, to: SocketAddr, timeout: Duration) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.writers.insert(key, tx);
        let events = self.events.clone();
        let net = net.clone();
        tokio::task::spawn_local(async move {
            match tokio::time::timeout(timeout, net.connect(to)).await {
                Ok(Ok(stream)) => {
                    let _ = events.send((key, StreamEvent::Connected));
                    pump(stream, key, rx, events).await;
                }
                Ok(Err(e)) => {
                    let _ = events.send((key, StreamEvent::Failed(e.to_string())));
                }
                Err(_) => {
                    let _ = events.send((
                        key,
                        StreamEvent::Failed(format!("connect to {to} timed out")),
                    ));
                }
            }
        });
    }

    /// Takes an accepted stream as `key`.
    pub fn adopt<S>(&mut self, key: K, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        self.writers.insert(key, tx);
        let events = self.events.clone();
        tokio::task::spawn_local(pump(stream, key, rx, events));
    }

    /// Queues bytes on a stream (ignored for unknown keys).
    pub fn send(&self, key: K, data: Vec<u8>) {
        if let Some(w) = self.writers.get(&key) {
            let _ = w.send(Write::Data(data));
        }
    }

    /// Closes a stream after its queued writes.
    pub fn close(&mut self, key: K) {
        if let Some(w) = self.writers.remove(&key) {
            let _ = w.send(Write::Close);
        }
    }

    /// Forgets a stream the peer closed.
    pub fn forget(&mut self, key: K) {
        self.writers.remove(&key);
    }

    /// Closes every stream.
    pub fn close_all(&mut self) {
        for (_, w) in std::mem::take(&mut self.writers) {
            let _ = w.send(Write::Close);
        }
    }

    /// How many streams are open.
    pub fn len(&self) -> usize {
        self.writers.len()
    }

    /// Whether no stream is open.
    pub fn is_empty(&self) -> bool {
        self.writers.is_empty()
    }
}

async fn pump<S, K>(
    stream: S,
    key: K,
    mut writes: mpsc::UnboundedReceiver<Write>,
    events: mpsc::UnboundedSender<(K, StreamEvent)>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
    K: Copy + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let read_events = events.clone();
    let reading = tokio::task::spawn_local(async move {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = read_events.send((key, StreamEvent::Closed));
                    return;
                }
                Ok(n) => {
                    if read_events
                        .send((key, StreamEvent::Data(buf[..n].to_vec())))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    while let Some(write) = writes.recv().await {
        match write {
            Write::Data(data) => {
                if writer.write_all(&data).await.is_err() {
                    break;
                }
            }
            Write::Close => break,
        }
    }
    let _ = writer.shutdown().await;
    // Our side is done: stop reading too, so the task and the stream end.
    reading.abort();
}
