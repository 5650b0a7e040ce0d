//! The relay host's UDP sockets: the media ports and one upstream socket per session that
//! sends media. Each socket has a reader task and a writer task; the relay loop never waits
//! on either.
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
use crate::net::{Net, Udp};

/// Datagrams one socket may have waiting to be sent.
pub(super) const SEND_QUEUE: usize = 256;

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
}

/// One socket's tasks and queue.
pub(super) struct Socket {
    pub(super) sends: Rc<SendQueue>,
    tasks: Vec<JoinHandle<()>>,
}

impl Socket {
    /// A socket being opened: datagrams queued meanwhile go out once it is.
    pub(super) fn pending() -> Socket {
        Socket {
            sends: Rc::default(),
            tasks: Vec::new(),
        }
    }

    /// Starts the reader and writer of `udp`, received datagrams tagged `source`.
    pub(super) fn start<N: Net>(
        &mut self,
        udp: Rc<N::Udp>,
        source: Source,
        inbox: &Rc<Inbox<N::Stream, N::Udp>>,
    ) {
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

    /// Ends the socket's tasks (the socket closes with the last of them).
    pub(super) fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Ends the reader only (the writer flushes the queue; for a graceful shutdown).
    pub(super) fn stop_reading(&self) {
        if let Some(reader) = self.tasks.iter().rev().nth(1) {
            reader.abort();
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn read<S, U: Udp>(udp: Rc<U>, source: Source, inbox: Rc<Inbox<S, U>>) {
    let waiting = Rc::new(Waiting::default());
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    let mut got = vec![(0usize, SocketAddr::from(([0, 0, 0, 0], 0))); PER_SOCKET_DATAGRAMS];
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
                    Ok(one) => {
                        got[0] = one;
                        1
                    }
                    Err(_) => break,
                }
            }
            Err(_) => break,
        };
        for (i, buf) in bufs.drain(..n.min(room)).enumerate() {
            let (len, from) = got[i];
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
