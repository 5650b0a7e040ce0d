//! The relay host's UDP sockets: the media ports and one upstream socket per session that
//! sends media. A real socket is polled by the relay loop itself ([`super::poll`]); any other
//! (the simulation's) has a reader task and a writer task, described here. The relay loop
//! never waits on either.
//!
//! - The **reader** receives into pooled buffers of the protocol's largest datagram
//!   ([`DATAGRAM_SLOT`](super::inbox::DATAGRAM_SLOT)) and queues at most
//!   [`PER_SOCKET_DATAGRAMS`](super::inbox::PER_SOCKET_DATAGRAMS) for the loop; while that
//!   many wait it stops receiving and the kernel's buffer holds (or drops) the rest.
//! - The **writer** sends what the loop queued, in order. Its queue is bounded
//!   ([`SEND_QUEUE`]): when it is full the loop drops the datagram and counts it (UDP may lose
//!   packets; a relay must not stall on one slow socket).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::inbox::{Datagram, Inbox, Source, Waiting, PER_SOCKET_DATAGRAMS};
use super::poll::Polled;
use crate::net::{RecvMeta, Udp};

/// Datagrams one socket may have waiting to be sent.
pub(super) const SEND_QUEUE: usize = 256;
/// Datagrams the loop hands a polled socket at once (one `sendmmsg` on Linux, runs to one
/// destination segmented).
const SEND_BURST: usize = 64;

/// The loop's side of one socket's writer.
#[derive(Default)]
pub(super) struct SendQueue {
    queue: RefCell<VecDeque<(SocketAddr, Vec<u8>)>>,
    notify: Notify,
}

impl SendQueue {
    /// Queues a datagram; false (dropped) when the queue is full.
    pub(super) fn push(&self, to: SocketAddr, data: Vec<u8>) -> bool {
        let mut q = self.queue.borrow_mut();
        if q.len() >= SEND_QUEUE {
            return false;
        }
        q.push_back((to, data));
        self.notify.notify_one();
        true
    }

    /// Datagrams waiting.
    pub(super) fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Calls `f` with the datagrams at the front of the queue (at most [`SEND_BURST`]).
    pub(super) fn with_front<R>(&self, f: impl FnOnce(&[(SocketAddr, &[u8])]) -> R) -> R {
        let q = self.queue.borrow();
        let mut views = [(SocketAddr::from(([0, 0, 0, 0], 0)), &[][..]); SEND_BURST];
        let mut n = 0;
        for (view, (to, data)) in views.iter_mut().zip(q.iter()) {
            *view = (*to, data.as_slice());
            n += 1;
        }
        f(views.get(..n).unwrap_or_default())
    }

    /// Forgets the first `n` datagrams (sent, or refused).
    pub(super) fn drop_front(&self, n: usize) {
        let mut q = self.queue.borrow_mut();
        let n = n.min(q.len());
        q.drain(..n);
    }
}

/// One socket's queue, and its tasks (the plain path) or its polled state (real sockets, see
/// [`super::poll`]).
pub(super) struct Socket<U> {
    pub(super) sends: Rc<SendQueue>,
    tasks: Vec<JoinHandle<()>>,
    pub(super) polled: Option<Polled<U>>,
    /// On the loop's list of sockets to flush.
    pub(super) dirty: bool,
}

impl<U: Udp> Socket<U> {
    /// A socket being opened: datagrams queued meanwhile go out once it is.
    pub(super) fn pending() -> Self {
        Socket {
            sends: Rc::default(),
            tasks: Vec::new(),
            polled: None,
            dirty: false,
        }
    }

    /// Starts receiving on `udp`, received datagrams tagged `source`: polled by the loop
    /// when the socket can be ([`Udp::polled`]), else with a reader and a writer task.
    pub(super) fn start<S: 'static>(
        &mut self,
        udp: Rc<U>,
        source: Source,
        inbox: &Rc<Inbox<S, U>>,
    ) {
        if udp.polled() {
            // The bind task (if any) has finished: nothing of it is kept.
            self.tasks.clear();
            self.polled = Some(Polled::new(udp, source, &inbox.ready));
            return;
        }
        let (reader, inbox) = (udp.clone(), inbox.clone());
        self.tasks
            .push(tokio::task::spawn_local(read(reader, source, inbox)));
        let sends = self.sends.clone();
        self.tasks.push(tokio::task::spawn_local(write(udp, sends)));
    }

    /// Adds a task to end with the socket (the bind of a pending one).
    pub(super) fn own(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Ends the reader only (the writer flushes the queue; for a graceful shutdown).
    pub(super) fn stop_reading(&mut self) {
        if let Some(polled) = &mut self.polled {
            polled.reading = false;
        }
        if let Some(reader) = self.tasks.iter().rev().nth(1) {
            reader.abort();
        }
    }
}

impl<U> Drop for Socket<U> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn read<S, U: Udp>(udp: Rc<U>, source: Source, inbox: Rc<Inbox<S, U>>) {
    let waiting = Rc::new(Waiting::default());
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    let mut got = vec![RecvMeta::default(); PER_SOCKET_DATAGRAMS];
    loop {
        while waiting.count.get() >= PER_SOCKET_DATAGRAMS {
            waiting.room.notified().await;
        }
        // A burst without waiting (one system call where the socket batches), else one wait
        // for the next datagram.
        let room = PER_SOCKET_DATAGRAMS - waiting.count.get();
        while bufs.len() < room {
            bufs.push(inbox.buffer());
        }
        let n = match udp.try_recv_batch(&mut bufs[..room], &mut got[..room]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Idle: wait holding one buffer and give the others back to the pool (bounded,
                // shared by the worker), so an idle socket costs one buffer, not a burst's.
                for buf in bufs.drain(bufs.len().min(1)..) {
                    inbox.recycle(buf);
                }
                let Some(buf) = bufs.first_mut() else {
                    continue;
                };
                match udp.recv_from(buf).await {
                    Ok((len, from)) => {
                        got[0] = RecvMeta::one(len, from);
                        1
                    }
                    Err(_) => break,
                }
            }
            Err(_) => break,
        };
        for (i, buf) in bufs.drain(..n.min(room)).enumerate() {
            // This reader never turns GRO on: each message is one datagram.
            let RecvMeta { len, from, .. } = got[i];
            waiting.count.set(waiting.count.get() + 1);
            let datagram = Datagram {
                source,
                from,
                buf,
                len,
                waiting: waiting.clone(),
            };
            inbox.datagrams.borrow_mut().push_back(datagram);
        }
        // The loop runs once this task waits: a burst costs it one wake-up.
        if n > 0 {
            inbox.wake.notify_one();
        }
    }
    for buf in bufs {
        inbox.recycle(buf);
    }
}

async fn write<U: Udp>(udp: Rc<U>, sends: Rc<SendQueue>) {
    let mut burst: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
    loop {
        {
            let mut q = sends.queue.borrow_mut();
            while burst.len() < PER_SOCKET_DATAGRAMS {
                let Some(item) = q.pop_front() else { break };
                burst.push(item);
            }
        }
        if burst.is_empty() {
            sends.notify.notified().await;
            continue;
        }
        let views: Vec<(SocketAddr, &[u8])> =
            burst.iter().map(|(to, d)| (*to, d.as_slice())).collect();
        match udp.try_send_batch(&views) {
            Ok(n) => {
                drop(views);
                burst.drain(..n.clamp(1, burst.len()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                drop(views);
                // Wait until the socket takes one (the simulation's plain path always does).
                let (to, data) = burst.remove(0);
                let _ = udp.send_to(&data, to).await;
            }
            // A failed send (an ICMP error, a full buffer) loses that datagram only.
            Err(_) => {
                drop(views);
                burst.remove(0);
            }
        }
    }
}

/// The host's count of datagrams it dropped because a send queue was full.
pub(super) type Dropped = Rc<Cell<u64>>;
