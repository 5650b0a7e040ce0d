//! Stream pumps: the glue between a sans-IO machine's connection ids and real streams.
//!
//! Each stream gets a reader task (bytes and closure become [`StreamEvent`]s on one bounded
//! channel, in order) and a writer task (writes queued in order, then shutdown on close). The machine's
//! driver owns a [`StreamPumps`], feeds its outputs in and its events back to the machine.
//!
//! Bytes queued for writing are counted ([`StreamPumps::queued_bytes`]). With a bound
//! ([`StreamPumps::with_queue_limit`]), a stream whose queue would exceed it (a peer that does
//! not read what it is sent) is cut at once: both its tasks end, the socket closes, and the
//! machine gets [`StreamEvent::Closed`] for it, so memory stays bounded by the limit times the
//! number of streams.
//!
//! Reading is bounded too: the events channel holds at most its capacity (say
//! [`EVENT_QUEUE`]) of events, each at most 16 KiB of data, and a reader whose events are not
//! taken waits, so a peer that sends faster than the machine takes stops being read (TCP's
//! own flow control then slows it down) instead of filling memory.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::Net;

/// What happened on a stream.
#[derive(Debug)]
pub enum StreamEvent {
    /// An outgoing connection is up.
    Connected,
    /// An outgoing connection failed.
    Failed(String),
    /// An outgoing connection to a TLS port connected, but its TLS handshake failed (**beyond
    /// the seed**: a [`TlsNet`](crate::tls::TlsNet)'s connect, [`crate::tls::HandshakeFailed`]).
    TlsFailed(String),
    /// Bytes arrived.
    Data(Vec<u8>),
    /// The peer closed or reset the stream.
    Closed,
}

enum Write {
    Data(Vec<u8>),
    Close,
}

/// The write side of one stream.
struct Writer {
    tx: mpsc::UnboundedSender<Write>,
    /// Bytes queued and not yet written, shared with the stream's task.
    queued: Rc<Cell<usize>>,
    /// The stream's tasks (the pump, then its reader), to cut a stream that overflows.
    tasks: Rc<RefCell<Vec<AbortHandle>>>,
}

/// The streams of one machine, keyed by its connection ids.
pub struct StreamPumps<K: Ord + Copy + 'static> {
    writers: BTreeMap<K, Writer>,
    events: mpsc::Sender<(K, StreamEvent)>,
    /// Bytes queued on every stream, written ones excluded.
    queued_total: Rc<Cell<usize>>,
    /// Most bytes queued on one stream before it is cut.
    max_queued_per_stream: usize,
    /// Streams cut for exceeding the bound.
    overflows: u64,
}

/// Read size of the reader tasks.
const READ_CHUNK: usize = 16 * 1024;

/// A good capacity for the events channel: 64 events, so at most 1 MiB read ahead of the
/// machine, all streams together.
pub const EVENT_QUEUE: usize = 64;

impl<K: Ord + Copy + 'static> StreamPumps<K> {
    /// Pumps whose events go to `events` (bounded: see the module docs).
    pub fn new(events: mpsc::Sender<(K, StreamEvent)>) -> Self {
        StreamPumps {
            writers: BTreeMap::new(),
            events,
            queued_total: Rc::new(Cell::new(0)),
            max_queued_per_stream: usize::MAX,
            overflows: 0,
        }
    }

    /// Cuts any stream whose write queue would exceed `bytes` (see the module docs).
    pub fn with_queue_limit(mut self, bytes: usize) -> Self {
        self.max_queued_per_stream = bytes;
        self
    }

    /// A writer for a new stream, and what its task needs.
    fn writer(&mut self, key: K) -> (mpsc::UnboundedReceiver<Write>, Accounting) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Rc::new(Cell::new(0));
        let tasks = Rc::new(RefCell::new(Vec::new()));
        self.writers.insert(
            key,
            Writer {
                tx,
                queued: queued.clone(),
                tasks: tasks.clone(),
            },
        );
        let accounting = Accounting {
            queued,
            total: self.queued_total.clone(),
            tasks,
        };
        (rx, accounting)
    }

    /// Opens an outgoing connection as `key`; `Connected` or `Failed` follows. A connect that
    /// takes longer than `timeout` fails.
    pub fn connect<N: Net>(&mut self, net: &N, key: K, to: SocketAddr, timeout: Duration) {
        let (rx, accounting) = self.writer(key);
        let tasks = accounting.tasks.clone();
        let events = self.events.clone();
        let net = net.clone();
        let task = tokio::task::spawn_local(async move {
            match tokio::time::timeout(timeout, net.connect(to)).await {
                Ok(Ok(stream)) => {
                    if events.send((key, StreamEvent::Connected)).await.is_err() {
                        return;
                    }
                    pump(stream, key, rx, events, accounting).await;
                }
                Ok(Err(e)) => {
                    let failed = if crate::tls::is_handshake_failure(&e) {
                        StreamEvent::TlsFailed(e.to_string())
                    } else {
                        StreamEvent::Failed(e.to_string())
                    };
                    let _ = events.send((key, failed)).await;
                }
                Err(_) => {
                    let failed = StreamEvent::Failed(format!("connect to {to} timed out"));
                    let _ = events.send((key, failed)).await;
                }
            }
        });
        tasks.borrow_mut().push(task.abort_handle());
    }

    /// Takes an accepted stream as `key`.
    pub fn adopt<S>(&mut self, key: K, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
    {
        let (rx, accounting) = self.writer(key);
        let tasks = accounting.tasks.clone();
        let events = self.events.clone();
        let task = tokio::task::spawn_local(pump(stream, key, rx, events, accounting));
        tasks.borrow_mut().push(task.abort_handle());
    }

    /// Queues bytes on a stream (ignored for unknown keys). A stream whose queue would exceed
    /// the limit is cut instead, and reported [`StreamEvent::Closed`].
    pub fn send(&mut self, key: K, data: Vec<u8>) {
        let Some(w) = self.writers.get(&key) else {
            return;
        };
        let len = data.len();
        if w.queued.get().saturating_add(len) > self.max_queued_per_stream {
            self.cut(key);
            return;
        }
        if w.tx.send(Write::Data(data)).is_ok() {
            w.queued.set(w.queued.get() + len);
            self.queued_total.set(self.queued_total.get() + len);
        }
    }

    /// Cuts a stream: its tasks end now, unwritten bytes are dropped, the machine is told.
    fn cut(&mut self, key: K) {
        if let Some(w) = self.writers.remove(&key) {
            for task in w.tasks.borrow().iter() {
                task.abort();
            }
            self.queued_total
                .set(self.queued_total.get().saturating_sub(w.queued.replace(0)));
            self.overflows += 1;
            // The machine is told after whatever is already queued for it; when the queue is
            // full, a task waits for room (one per cut stream: bounded by the streams).
            if let Err(mpsc::error::TrySendError::Full(event)) =
                self.events.try_send((key, StreamEvent::Closed))
            {
                let events = self.events.clone();
                tokio::task::spawn_local(async move {
                    let _ = events.send(event).await;
                });
            }
        }
    }

    /// Closes a stream after its queued writes.
    pub fn close(&mut self, key: K) {
        if let Some(w) = self.writers.remove(&key) {
            let _ = w.tx.send(Write::Close);
        }
    }

    /// Forgets a stream the peer closed.
    pub fn forget(&mut self, key: K) {
        self.writers.remove(&key);
    }

    /// Closes every stream.
    pub fn close_all(&mut self) {
        for (_, w) in std::mem::take(&mut self.writers) {
            let _ = w.tx.send(Write::Close);
        }
    }

    /// Bytes queued for writing on every stream (those of closing streams included).
    pub fn queued_bytes(&self) -> usize {
        self.queued_total.get()
    }

    /// Streams cut because their queue exceeded the limit.
    pub fn overflows(&self) -> u64 {
        self.overflows
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

/// What a stream's task shares with its [`StreamPumps`].
struct Accounting {
    /// This stream's queued bytes.
    queued: Rc<Cell<usize>>,
    /// Every stream's.
    total: Rc<Cell<usize>>,
    /// The stream's tasks.
    tasks: Rc<RefCell<Vec<AbortHandle>>>,
}

impl Accounting {
    /// `n` queued bytes are gone (written, or dropped with the stream).
    fn release(&self, n: usize) {
        let n = n.min(self.queued.get());
        self.queued.set(self.queued.get() - n);
        self.total.set(self.total.get().saturating_sub(n));
    }
}

async fn pump<S, K>(
    stream: S,
    key: K,
    mut writes: mpsc::UnboundedReceiver<Write>,
    events: mpsc::Sender<(K, StreamEvent)>,
    accounting: Accounting,
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
                    let _ = read_events.send((key, StreamEvent::Closed)).await;
                    return;
                }
                Ok(n) => {
                    let data = buf.get(..n).unwrap_or_default().to_vec();
                    if read_events
                        .send((key, StreamEvent::Data(data)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    accounting.tasks.borrow_mut().push(reading.abort_handle());
    while let Some(write) = writes.recv().await {
        match write {
            Write::Data(data) => {
                let written = writer.write_all(&data).await;
                accounting.release(data.len());
                if written.is_err() {
                    break;
                }
            }
            Write::Close => break,
        }
    }
    // Whatever is still queued will never be written.
    accounting.release(usize::MAX);
    let _ = writer.shutdown().await;
    // Our side is done: stop reading too, so the task and the stream end.
    reading.abort();
}
