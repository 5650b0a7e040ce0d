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
//!
//! Every datagram's buffer came from the relay machine's pool and goes back to it once sent
//! or dropped ([`Relay::recycle`](cloudproxy_core::relay::Relay::recycle)): a polled socket's
//! at once, through the loop's flush; a writer task's through its queue's spent list (at most
//! [`SPENT_MAX`] kept), which the loop empties when it next queues on that socket or releases
//! it.

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

/// Buffers a writer task keeps for the loop to give back to the machine; more are freed.
pub(super) const SPENT_MAX: usize = PER_SOCKET_DATAGRAMS;

/// The loop's side of one socket's writer.
#[derive(Default)]
pub(super) struct SendQueue {
    queue: RefCell<VecDeque<(SocketAddr, Vec<u8>)>>,
    notify: Notify,
    /// The writer task's sent buffers, for the loop to recycle (at most [`SPENT_MAX`]).
    spent: RefCell<Vec<Vec<u8>>>,
}

impl SendQueue {
    /// Queues a datagram; when the queue is full it is refused and handed back.
    pub(super) fn push(&self, to: SocketAddr, data: Vec<u8>) -> Result<(), Vec<u8>> {
        let mut q = self.queue.borrow_mut();
        if q.len() >= SEND_QUEUE {
            return Err(data);
        }
        q.push_back((to, data));
        self.notify.notify_one();
        Ok(())
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

    /// Takes the first `n` datagrams off the queue (sent, or refused), handing each buffer to
    /// `spent`.
    pub(super) fn drop_front(&self, n: usize, mut spent: impl FnMut(Vec<u8>)) {
        let mut q = self.queue.borrow_mut();
        let n = n.min(q.len());
        for (_, buf) in q.drain(..n) {
            spent(buf);
        }
    }

    /// Hands every buffer spent by the writer task, then (with `queued`) every datagram still
    /// queued, to `spent`.
    pub(super) fn drain_spent(&self, queued: bool, mut spent: impl FnMut(Vec<u8>)) {
        for buf in self.spent.borrow_mut().drain(..) {
            spent(buf);
        }
        if queued {
            for (_, buf) in self.queue.borrow_mut().drain(..) {
                spent(buf);
            }
        }
    }

    /// Keeps a buffer the writer task is done with, for the loop (freed when
    /// [`SPENT_MAX`] are kept already).
    fn keep_spent(&self, buf: Vec<u8>) {
        let mut spent = self.spent.borrow_mut();
        if spent.len() < SPENT_MAX {
            spent.push(buf);
        }
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
        // The burst's views on the stack: no allocation per burst.
        let mut views = [(SocketAddr::from(([0, 0, 0, 0], 0)), &[][..]); PER_SOCKET_DATAGRAMS];
        for (view, (to, data)) in views.iter_mut().zip(burst.iter()) {
            *view = (*to, data.as_slice());
        }
        let views = views.get(..burst.len()).unwrap_or_default();
        let done = match udp.try_send_batch(views) {
            Ok(n) => n.clamp(1, burst.len()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Wait until the socket takes one (the simulation's plain path always does).
                let (to, data) = burst.remove(0);
                let _ = udp.send_to(&data, to).await;
                sends.keep_spent(data);
                0
            }
            // A failed send (an ICMP error, a full buffer) loses that datagram only.
            Err(_) => 1,
        };
        for (_, data) in burst.drain(..done) {
            sends.keep_spent(data);
        }
    }
}

/// The host's count of datagrams it dropped because a send queue was full.
pub(super) type Dropped = Rc<Cell<u64>>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::UdpSocket;

    use super::*;

    /// A full queue hands the refused datagram back; taking datagrams off the front hands
    /// their buffers to the loop, in order.
    #[test]
    fn the_queue_hands_every_buffer_back() {
        let queue = SendQueue::default();
        let to = SocketAddr::from(([127, 0, 0, 1], 9));
        for i in 0..SEND_QUEUE {
            assert!(queue.push(to, vec![i as u8; 4]).is_ok());
        }
        assert_eq!(
            queue.push(to, vec![0xFF; 4]),
            Err(vec![0xFF; 4]),
            "full: handed back"
        );
        let mut spent = Vec::new();
        queue.drop_front(2, |buf| spent.push(buf));
        assert_eq!(spent, [vec![0; 4], vec![1; 4]]);
        assert_eq!(queue.len(), SEND_QUEUE - 2);
        queue.drain_spent(true, |buf| spent.push(buf));
        assert_eq!(
            (queue.len(), spent.len()),
            (0, SEND_QUEUE),
            "a released socket's too"
        );
    }

    /// The writer task (the simulation's path) keeps what it sent for the loop, at most
    /// SPENT_MAX, and the loop takes them back.
    #[test]
    fn the_writer_task_keeps_sent_buffers_for_the_loop() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, async {
            let udp = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let to = peer.local_addr().unwrap();
            let sends = Rc::new(SendQueue::default());
            let task = tokio::task::spawn_local(write(udp, sends.clone()));
            let total = SPENT_MAX + 8;
            let mut buf = [0u8; 64];
            for i in 0..total {
                assert!(sends.push(to, vec![i as u8; 10]).is_ok());
                let (n, _) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
                    .await
                    .expect("the writer sent it")
                    .unwrap();
                assert_eq!(&buf[..n], &[i as u8; 10]);
            }
            // The last send is kept once the writer is back at its queue.
            tokio::time::timeout(Duration::from_secs(5), async {
                while sends.spent.borrow().len() < SPENT_MAX {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .expect("the writer kept its sent buffers");
            let mut back = Vec::new();
            sends.drain_spent(false, |buf| back.push(buf));
            assert_eq!(back.len(), SPENT_MAX, "bounded: the rest were freed");
            assert_eq!(back[0], vec![0; 10], "the first sent, first kept");
            assert!(sends.spent.borrow().is_empty());
            task.abort();
        });
    }
}
