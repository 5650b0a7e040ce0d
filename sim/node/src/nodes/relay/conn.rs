//! A client TCP connection of the relay host: one task owning the stream, and the
//! [`ConnLink`] through which the relay loop talks to it.
//!
//! - **Reading** is gated: the task reads a chunk, hands it to the loop, and reads again only
//!   once the loop has consumed it, so a connection never has more than one chunk in flight
//!   and a fast client is slowed by TCP, not buffered.
//! - **Writing** is bounded in bytes (a write that would queue more than the bound cuts the
//!   connection) and in time (a queue that makes no progress for the write timeout cuts it):
//!   a peer that does not read holds at most the bound, for at most the timeout. A write queue
//!   never outlives its connection: once the relay closes the connection the task writes
//!   what is queued within the linger time, then drops the stream.
//! - **Splicing**: when the relay hands the tunnel over, the task writes what is queued (the
//!   `TunnelAccept`), writes the early bytes upstream, and becomes the tunnel's pump
//!   ([`Net::tunnel`]).
//! - **Handoff**: a connection whose session lives on another shard is given back, stream and
//!   all, to the loop, which passes it on.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::inbox::{ConnEvent, Inbox};
use crate::net::{Net, TunnelLink};

/// The read size of a client connection's task (handshakes and media channels carry frames of
/// at most 2 KiB).
const READ_CHUNK: usize = 4096;

/// The bounds a connection's task enforces.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConnLimits {
    /// Most bytes queued for writing.
    pub(super) max_queued: usize,
    /// Longest a non-empty write queue may go without progress.
    pub(super) write_timeout: Duration,
    /// Longest a closing connection (or a tunnel's start) may take to write what it holds.
    pub(super) linger: Duration,
}

/// What the loop hands a connection's task to start a tunnel.
pub(super) struct SpliceOrder<S> {
    pub(super) upstream: S,
    pub(super) early: Vec<u8>,
    pub(super) link: TunnelLink,
}

/// The loop's side of a connection's task.
pub(super) struct ConnLink<S> {
    pub(super) peer: SocketAddr,
    queue: RefCell<VecDeque<Vec<u8>>>,
    queued: Cell<usize>,
    /// Bytes queued on every connection of the host.
    total: Rc<Cell<usize>>,
    close: Cell<bool>,
    /// The loop consumed the last chunk read.
    consumed: Cell<bool>,
    splice: RefCell<Option<SpliceOrder<S>>>,
    handoff: RefCell<Option<(u16, Vec<u8>)>>,
    notify: Notify,
}

impl<S> ConnLink<S> {
    pub(super) fn new(peer: SocketAddr, total: Rc<Cell<usize>>) -> Rc<Self> {
        Rc::new(ConnLink {
            peer,
            queue: RefCell::default(),
            queued: Cell::new(0),
            total,
            close: Cell::new(false),
            consumed: Cell::new(true),
            splice: RefCell::new(None),
            handoff: RefCell::new(None),
            notify: Notify::new(),
        })
    }

    /// Queues bytes; false (and nothing queued) when they would exceed `max` bytes.
    pub(super) fn send(&self, data: Vec<u8>, max: usize) -> bool {
        let len = data.len();
        if self.queued.get().saturating_add(len) > max {
            return false;
        }
        self.queued.set(self.queued.get() + len);
        self.total.set(self.total.get() + len);
        self.queue.borrow_mut().push_back(data);
        self.notify.notify_one();
        true
    }

    /// The relay closed the connection: write what is queued, then end.
    pub(super) fn close(&self) {
        self.close.set(true);
        self.notify.notify_one();
    }

    /// The loop consumed the last chunk: the task may read again.
    pub(super) fn consumed(&self) {
        self.consumed.set(true);
        self.notify.notify_one();
    }

    /// Starts the tunnel.
    pub(super) fn splice(&self, order: SpliceOrder<S>) {
        *self.splice.borrow_mut() = Some(order);
        self.notify.notify_one();
    }

    /// Gives the stream back to the loop, for shard `shard`, with the bytes read so far.
    pub(super) fn set_handoff(&self, shard: u16, data: Vec<u8>) {
        *self.handoff.borrow_mut() = Some((shard, data));
        self.notify.notify_one();
    }

    /// The handoff asked for, once the stream is back.
    pub(super) fn take_handoff(&self) -> Option<(u16, Vec<u8>)> {
        self.handoff.borrow_mut().take()
    }

    fn pop(&self) -> Option<Vec<u8>> {
        self.queue.borrow_mut().pop_front()
    }

    fn release(&self, n: usize) {
        let n = n.min(self.queued.get());
        self.queued.set(self.queued.get() - n);
        self.total.set(self.total.get().saturating_sub(n));
    }

    /// Drops whatever is still queued (the connection is gone).
    pub(super) fn drop_queue(&self) {
        self.queue.borrow_mut().clear();
        self.release(usize::MAX);
    }
}

/// What the task did with its stream in the end.
enum Exit<S> {
    /// The peer closed or the connection broke: report it.
    Lost,
    /// The relay closed it; nothing to report.
    Closed,
    /// Cut for not reading (bytes or time): report it as closed, and count it.
    Cut,
    /// A tunnel starts on it.
    Splice(S, SpliceOrder<S>),
    /// It goes to another shard.
    HandOff(S),
}

/// Runs a client connection until it ends (see the module docs).
pub(super) async fn run<N: Net>(
    net: N,
    id: u64,
    stream: N::Stream,
    link: Rc<ConnLink<N::Stream>>,
    inbox: Rc<Inbox<N::Stream, N::Udp>>,
    limits: ConnLimits,
    cuts: Rc<Cell<u64>>,
) {
    match serve(stream, &link, &inbox, id, limits).await {
        Exit::Lost => inbox.post(|i| {
            i.conn_events
                .borrow_mut()
                .push_back((id, ConnEvent::Closed))
        }),
        Exit::Closed => {}
        Exit::Cut => {
            cuts.set(cuts.get() + 1);
            inbox.post(|i| {
                i.conn_events
                    .borrow_mut()
                    .push_back((id, ConnEvent::Closed))
            });
        }
        Exit::HandOff(stream) => inbox.post(|i| i.handoffs.borrow_mut().push_back((id, stream))),
        Exit::Splice(client, order) => {
            let SpliceOrder {
                mut upstream,
                early,
                link: tunnel,
            } = order;
            let started = tokio::time::timeout(limits.linger, upstream.write_all(&early)).await;
            let end = match started {
                Ok(Ok(())) => net.tunnel(client, upstream, tunnel).await,
                _ => crate::net::TunnelEnd::UpstreamClosed,
            };
            inbox.post(|i| i.tunnel_ends.borrow_mut().push_back((id, end)));
        }
    }
    link.drop_queue();
    // The host's queued bytes fell (what this task wrote or dropped at the end) with no
    // event for the loop when the relay had closed it: wake the loop, so that it publishes
    // the gauge (once per connection, at its end).
    inbox.wake.notify_one();
}

async fn serve<S>(
    stream: S,
    link: &ConnLink<S>,
    inbox: &Inbox<S, impl Sized>,
    id: u64,
    limits: ConnLimits,
) -> Exit<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buf = vec![0u8; READ_CHUNK];
    // The chunk being written and how much of it is written.
    let mut front: Option<(Vec<u8>, usize)> = None;
    let mut stalled_since = tokio::time::Instant::now();
    loop {
        if link.handoff.borrow().is_some() {
            return Exit::HandOff(reader.unsplit(writer));
        }
        if front.is_none() {
            front = link.pop().map(|d| (d, 0));
            stalled_since = tokio::time::Instant::now();
        }
        let splicing = link.splice.borrow().is_some();
        if (splicing || link.close.get()) && front.is_none() {
            if splicing {
                let order = link.splice.borrow_mut().take();
                if let Some(order) = order {
                    return Exit::Splice(reader.unsplit(writer), order);
                }
            }
            let _ = tokio::time::timeout(limits.linger, writer.shutdown()).await;
            return Exit::Closed;
        }
        let closing = splicing || link.close.get();
        let can_read = link.consumed.get() && !closing;
        let deadline = stalled_since
            + if closing {
                limits.linger
            } else {
                limits.write_timeout
            };
        tokio::select! {
            biased;
            () = link.notify.notified() => {}
            written = async {
                let (data, at) = front.as_ref().map(|(d, at)| (d.as_slice(), *at)).unwrap_or_default();
                writer.write(&data[at..]).await
            }, if front.is_some() => match written {
                Ok(0) | Err(_) => return if closing { Exit::Closed } else { Exit::Lost },
                Ok(n) => {
                    link.release(n);
                    stalled_since = tokio::time::Instant::now();
                    if let Some((data, at)) = front.as_mut() {
                        *at += n;
                        if *at >= data.len() {
                            front = None;
                        }
                    }
                }
            },
            read = reader.read(&mut buf), if can_read => match read {
                Ok(0) | Err(_) => return Exit::Lost,
                Ok(n) => {
                    link.consumed.set(false);
                    let data = buf[..n].to_vec();
                    inbox.post(|i| i.conn_events.borrow_mut().push_back((id, ConnEvent::Data(data))));
                }
            },
            () = tokio::time::sleep_until(deadline), if front.is_some() => {
                // No progress for the whole timeout: a peer that does not read.
                return if closing { Exit::Closed } else { Exit::Cut };
            }
        }
    }
}
