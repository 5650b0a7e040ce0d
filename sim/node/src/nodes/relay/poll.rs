//! The relay loop's own UDP readiness: every [`Udp::polled`] socket of the host (real sockets)
//! is received from and sent on by the loop itself, with no task and no buffer of its own.
//!
//! Each socket has two small wakers, one per direction. When the kernel says a socket may be
//! read (or written again), its waker puts it on the [`ReadyList`] (once, however often it is
//! woken) and wakes the loop; the loop then takes a bounded batch from each socket on the
//! list into the loop's one set of receive buffers, feeds the datagrams to the machine, and
//! sends what the machine queued, every socket's queue at the end of the round (one
//! `sendmmsg` each, runs to one destination segmented). So:
//!
//! - an idle socket holds its two wakers and an empty queue: no task, no receive buffer;
//! - one wake-up of the loop serves every socket that became ready meanwhile;
//! - a socket that had a full batch goes back on the list behind the others (fair), one whose
//!   sends would block waits for its send waker, its queue bounded ([`SEND_QUEUE`](super::udp::SEND_QUEUE)).
//!
//! Sockets that are not polled (the simulation's) keep their reader and writer tasks
//! ([`super::udp`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use tokio::sync::Notify;

use super::inbox::{Source, DATAGRAM_SLOT, PER_SOCKET_DATAGRAMS};
use super::udp::SendQueue;
use crate::net::{Datagrams, RecvMeta, Udp, GRO_MESSAGE_MAX};

/// Which way a socket became ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dir {
    Recv,
    Send,
}

/// Sockets that became ready, in the order they did, and the loop's wake-up.
#[derive(Default)]
pub(super) struct ReadyList {
    list: Mutex<Vec<Arc<SocketWaker>>>,
    /// Wakes the loop.
    pub(super) notify: Notify,
}

impl ReadyList {
    /// Takes the sockets ready now (each then may queue itself again).
    pub(super) fn take(&self, into: &mut Vec<Arc<SocketWaker>>) {
        if let Ok(mut list) = self.list.lock() {
            into.append(&mut list);
        }
        for w in into.iter() {
            w.queued.store(false, Ordering::Release);
        }
    }
}

/// One direction of one socket: puts it on the ready list when woken.
pub(super) struct SocketWaker {
    pub(super) source: Source,
    pub(super) dir: Dir,
    queued: AtomicBool,
    ready: Arc<ReadyList>,
}

impl SocketWaker {
    fn new(source: Source, dir: Dir, ready: &Arc<ReadyList>) -> Arc<Self> {
        Arc::new(SocketWaker {
            source,
            dir,
            queued: AtomicBool::new(false),
            ready: ready.clone(),
        })
    }
}

impl Wake for SocketWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            if let Ok(mut list) = self.ready.list.lock() {
                list.push(self.clone());
            }
        }
        self.ready.notify.notify_one();
    }
}

/// A socket the loop polls itself.
pub(super) struct Polled<U> {
    pub(super) udp: std::rc::Rc<U>,
    recv: Arc<SocketWaker>,
    send: Arc<SocketWaker>,
    /// Reading stopped (a graceful shutdown only flushes).
    pub(super) reading: bool,
    /// The kernel may coalesce datagrams from one source into one message (UDP GRO).
    gro: bool,
}

impl<U: Udp> Polled<U> {
    /// A socket of `source`, put on the ready list at once so that the first poll registers
    /// its wakers, with UDP GRO on where the kernel has it (the loop cuts each message into
    /// its datagrams).
    pub(super) fn new(udp: std::rc::Rc<U>, source: Source, ready: &Arc<ReadyList>) -> Self {
        let gro = udp.enable_gro();
        let polled = Polled {
            udp,
            recv: SocketWaker::new(source, Dir::Recv, ready),
            send: SocketWaker::new(source, Dir::Send, ready),
            reading: true,
            gro,
        };
        polled.recv.wake_by_ref();
        polled
    }

    /// Receives one batch into `bufs` without waiting, registering the receive waker when
    /// there is nothing or the batch came short; how many messages ([`RecvBufs::get`]), and
    /// whether the socket must be served again (its waker is not registered).
    pub(super) fn recv(&self, bufs: &mut RecvBufs) -> (usize, bool) {
        if !self.reading {
            return (0, false);
        }
        if self.gro {
            bufs.fit_gro();
        }
        let waker = Waker::from(self.recv.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            match self.udp.poll_recv_ready(&mut cx) {
                Poll::Ready(Ok(())) => {}
                // Nothing to read now (or a socket error: the next datagram wakes it again).
                Poll::Ready(Err(_)) | Poll::Pending => return (0, false),
            }
            match self.udp.try_recv_batch(&mut bufs.bufs, &mut bufs.got) {
                // A full batch: there may be more. Until a receive would block, the waker is
                // not registered: the socket is served again next round, behind the others.
                Ok(n) if n >= bufs.bufs.len() => return (n, true),
                // A short batch: the kernel's queue was empty. Forget the readiness (no
                // receive that would find nothing) and register the waker.
                Ok(n) => {
                    self.udp.clear_recv_ready();
                    if self.udp.poll_recv_ready(&mut cx).is_pending() {
                        return (n, false);
                    }
                    // A datagram came in between: serve it next round.
                    return (n, true);
                }
                // Readiness cleared: the next poll registers the waker (or finds more).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // An error about one datagram (the socket stays): try again next round.
                Err(_) => return (0, true),
            }
        }
    }

    /// Whether the socket may take a datagram now, as far as its readiness says (else its send
    /// waker is registered): for the loop's submit of many sockets' sends at once.
    pub(super) fn send_ready(&self) -> bool {
        let waker = Waker::from(self.send.clone());
        let mut cx = Context::from_waker(&waker);
        matches!(self.udp.poll_send_ready(&mut cx), Poll::Ready(Ok(())))
    }

    /// Sends from the front of `queue` until it is empty or the socket would block (then the
    /// send waker is registered); datagrams a send refused are dropped. Every buffer sent or
    /// dropped goes to `spent` (the loop gives it back to the machine).
    pub(super) fn flush(&self, queue: &SendQueue, mut spent: impl FnMut(Vec<u8>)) {
        let waker = Waker::from(self.send.clone());
        let mut cx = Context::from_waker(&waker);
        while queue.len() > 0 {
            match self.udp.poll_send_ready(&mut cx) {
                Poll::Ready(Ok(())) => {}
                // The send waker puts the socket on the ready list when it may send again.
                Poll::Pending => return,
                Poll::Ready(Err(_)) => {
                    queue.drop_front(1, &mut spent);
                    continue;
                }
            }
            let sent = queue.with_front(|views| self.udp.try_send_batch(views));
            match sent {
                Ok(n) => queue.drop_front(n.max(1), &mut spent),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // A failed send (an ICMP error, a full buffer) loses that datagram only.
                Err(_) => queue.drop_front(1, &mut spent),
            }
        }
    }
}

/// The loop's receive buffers: one batch of messages, shared by every polled socket of the
/// loop. Each holds the protocol's largest datagram, or, once a socket with GRO on is read,
/// the largest message the kernel coalesces ([`GRO_MESSAGE_MAX`]; per loop, not per socket).
pub(super) struct RecvBufs {
    bufs: Vec<Vec<u8>>,
    got: Vec<RecvMeta>,
}

impl RecvBufs {
    pub(super) fn new() -> Self {
        RecvBufs {
            bufs: (0..PER_SOCKET_DATAGRAMS)
                .map(|_| vec![0; DATAGRAM_SLOT])
                .collect(),
            got: vec![RecvMeta::default(); PER_SOCKET_DATAGRAMS],
        }
    }

    /// Grows every buffer to [`GRO_MESSAGE_MAX`] (once): a coalesced message never truncated.
    fn fit_gro(&mut self) {
        for buf in &mut self.bufs {
            if buf.len() < GRO_MESSAGE_MAX {
                buf.resize(GRO_MESSAGE_MAX, 0);
            }
        }
    }

    /// Message `i` of the last batch: its source, its datagrams (one, or those the kernel
    /// coalesced) in order, and how many.
    pub(super) fn get(&self, i: usize) -> Option<(SocketAddr, Datagrams<'_>, usize)> {
        let meta = self.got.get(i)?;
        Some((meta.from, meta.datagrams(self.bufs.get(i)?), meta.count()))
    }
}

impl Default for RecvBufs {
    /// No buffers (a placeholder while the loop's own are lent out).
    fn default() -> Self {
        RecvBufs {
            bufs: Vec::new(),
            got: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::time::Duration;

    use tokio::net::UdpSocket;

    use super::*;

    async fn bound() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    /// Waits (bounded) until the ready list has an entry, and takes it.
    async fn next_ready(ready: &Arc<ReadyList>) -> Vec<Arc<SocketWaker>> {
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                ready.take(&mut got);
                if !got.is_empty() {
                    return;
                }
                ready.notify.notified().await;
            }
        })
        .await
        .expect("a socket became ready");
        got
    }

    /// A polled socket is on the ready list once at start (to register), off it while idle,
    /// back on it once (however many datagrams came) when datagrams arrive; a batch takes
    /// them in order, and the socket's queue is sent by `flush`.
    #[tokio::test(flavor = "current_thread")]
    async fn readiness_round_trip() {
        let ready: Arc<ReadyList> = Arc::default();
        let udp = Rc::new(bound().await);
        let at = udp.local_addr().unwrap();
        let polled = Polled::new(udp.clone(), Source::Alloc(7), &ready);
        let mut bufs = RecvBufs::new();

        let first = next_ready(&ready).await;
        assert_eq!(first.len(), 1);
        assert_eq!(
            (first[0].source, first[0].dir),
            (Source::Alloc(7), Dir::Recv)
        );
        assert_eq!(
            polled.recv(&mut bufs),
            (0, false),
            "nothing yet: waker registered"
        );

        let peer = bound().await;
        for i in 0..3u8 {
            peer.send_to(&[i; 100], at).await.unwrap();
        }
        let woken = next_ready(&ready).await;
        assert_eq!(woken.len(), 1, "one entry however many datagrams");
        assert_eq!(woken[0].dir, Dir::Recv);
        let mut seen = Vec::new();
        // The three may take more than one wake-up to arrive: read until all are in.
        tokio::time::timeout(Duration::from_secs(5), async {
            while seen.len() < 3 {
                let (n, again) = polled.recv(&mut bufs);
                assert!(!again, "a short batch registers the waker");
                for i in 0..n {
                    let (from, datagrams, count) = bufs.get(i).unwrap();
                    assert_eq!(from, peer.local_addr().unwrap());
                    assert_eq!(count, 1, "datagrams sent one by one come one by one");
                    seen.extend(datagrams.map(<[u8]>::to_vec));
                }
                if n == 0 {
                    next_ready(&ready).await;
                }
            }
        })
        .await
        .expect("every datagram read");
        assert_eq!(
            polled.recv(&mut bufs),
            (0, false),
            "drained: waker registered again"
        );
        assert_eq!(seen, (0..3u8).map(|i| vec![i; 100]).collect::<Vec<_>>());

        let queue = SendQueue::default();
        let to = peer.local_addr().unwrap();
        assert!(queue.push(to, vec![9; 50]).is_ok());
        assert!(queue.push(to, vec![8; 50]).is_ok());
        let mut spent = Vec::new();
        polled.flush(&queue, |buf| spent.push(buf));
        assert_eq!(queue.len(), 0, "a loopback socket takes both at once");
        assert_eq!(
            spent,
            [vec![9; 50], vec![8; 50]],
            "both buffers handed back, in order"
        );
        let mut buf = [0u8; 200];
        for want in [9u8, 8] {
            let (n, from) = peer.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&[want; 50][..], at));
        }
    }

    /// A polled socket has GRO on: a segmented burst from one peer comes as one message, cut
    /// back into its datagrams (the last shorter), in order, by the loop's buffers.
    #[tokio::test(flavor = "current_thread")]
    async fn a_segmented_burst_comes_as_one_message_of_its_datagrams() {
        let ready: Arc<ReadyList> = Arc::default();
        let udp = Rc::new(bound().await);
        let at = udp.local_addr().unwrap();
        let polled = Polled::new(udp.clone(), Source::Media(4500), &ready);
        assert!(polled.gro, "UDP_GRO is on (Linux 5.0 and later)");
        let mut bufs = RecvBufs::new();
        next_ready(&ready).await;
        assert_eq!(polled.recv(&mut bufs), (0, false));

        let peer = bound().await;
        let data: Vec<Vec<u8>> = (0..10u8)
            .map(|i| vec![i; if i == 9 { 500 } else { 1200 }])
            .collect();
        let batch: Vec<(SocketAddr, &[u8])> = data.iter().map(|d| (at, d.as_slice())).collect();
        peer.writable().await.unwrap();
        assert_eq!(
            peer.try_send_batch(&batch).unwrap(),
            10,
            "one segmented send"
        );
        next_ready(&ready).await;
        let (n, _) = polled.recv(&mut bufs);
        assert_eq!(n, 1, "the kernel kept the burst whole");
        let (from, datagrams, count) = bufs.get(0).unwrap();
        assert_eq!((from, count), (peer.local_addr().unwrap(), 10));
        assert_eq!(datagrams.map(<[u8]>::to_vec).collect::<Vec<_>>(), data);
    }
}
