//! The relay loop's inbox: everything the host's tasks have for the relay machine, queued by
//! kind, each queue bounded by construction, and one wake-up for the loop.
//!
//! | queue | bounded by |
//! |---|---|
//! | accepted connections | [`ACCEPT_QUEUE`] (the acceptor waits for room) |
//! | connection events | one chunk per connection: a connection reads again only once the loop consumed its last chunk |
//! | upstream connects, bind results, tunnel ends, handoffs | one per connection or socket |
//! | datagrams | [`PER_SOCKET_DATAGRAMS`] per socket (its reader waits for room; the kernel's buffer holds or drops the rest) |
//! | ready polled sockets | one entry per socket and direction |
//! | dirty tunnels | one entry per tunnel |
//!
//! The loop takes a bounded batch from each queue in turn ([`super::driver`]), so no source
//! can starve another.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::Notify;

use super::poll::ReadyList;
use crate::net::TunnelEnd;

/// Accepted connections waiting for the loop.
pub(super) const ACCEPT_QUEUE: usize = 64;
/// Datagrams one socket may have waiting for the loop.
pub(super) const PER_SOCKET_DATAGRAMS: usize = 32;
/// The receive buffer of one datagram: the protocol's largest frame and a little more, so
/// that a longer datagram is seen as too long (and dropped) rather than cut to a valid size.
pub(super) const DATAGRAM_SLOT: usize = cloudproxy_core::wire::MAX_FRAME_LEN + 64;
/// Receive buffers kept for reuse (the rest are freed).
const POOL_MAX: usize = 4096;

/// Where a datagram arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// One of the relay's media ports.
    Media(u16),
    /// A session's upstream socket.
    Alloc(u64),
}

/// A received datagram, in a pooled buffer.
pub(super) struct Datagram {
    pub(super) source: Source,
    pub(super) from: SocketAddr,
    pub(super) buf: Vec<u8>,
    pub(super) len: usize,
    /// The socket's count of datagrams waiting, to give back.
    pub(super) waiting: Rc<Waiting>,
}

/// How many datagrams of one socket wait for the loop, and its reader's wake-up.
#[derive(Default)]
pub(super) struct Waiting {
    pub(super) count: Cell<usize>,
    pub(super) room: Notify,
}

/// What a client connection's task reports.
pub(super) enum ConnEvent {
    /// Bytes read.
    Data(Vec<u8>),
    /// The peer closed, the connection broke, or it was cut (the reason counted already).
    Closed,
}

/// What an upstream connect task reports.
pub(super) enum UpEvent<S> {
    Connected(S),
    Failed,
}

/// The inbox; see the module docs.
pub(super) struct Inbox<S, U> {
    pub(super) accepted: RefCell<VecDeque<(S, SocketAddr, Vec<u8>)>>,
    pub(super) accept_room: Notify,
    pub(super) conn_events: RefCell<VecDeque<(u64, ConnEvent)>>,
    pub(super) up_events: RefCell<VecDeque<(u64, UpEvent<S>)>>,
    pub(super) bound: RefCell<VecDeque<(u64, Option<Rc<U>>)>>,
    pub(super) datagrams: RefCell<VecDeque<Datagram>>,
    pub(super) tunnel_ends: RefCell<VecDeque<(u64, TunnelEnd)>>,
    pub(super) handoffs: RefCell<VecDeque<(u64, S)>>,
    pub(super) dirty: RefCell<Vec<u64>>,
    /// Wakes the loop.
    pub(super) wake: Notify,
    /// Polled sockets that became ready (they wake the loop through it).
    pub(super) ready: Arc<ReadyList>,
    pool: RefCell<Vec<Vec<u8>>>,
}

impl<S, U> Inbox<S, U> {
    pub(super) fn new() -> Rc<Self> {
        Rc::new(Inbox {
            accepted: RefCell::default(),
            accept_room: Notify::new(),
            conn_events: RefCell::default(),
            up_events: RefCell::default(),
            bound: RefCell::default(),
            datagrams: RefCell::default(),
            tunnel_ends: RefCell::default(),
            handoffs: RefCell::default(),
            dirty: RefCell::default(),
            wake: Notify::new(),
            ready: Arc::default(),
            pool: RefCell::default(),
        })
    }

    /// Queues an item with `push` and wakes the loop.
    pub(super) fn post(&self, push: impl FnOnce(&Self)) {
        push(self);
        self.wake.notify_one();
    }

    /// Whether an item is queued for the loop (a bounded batch left some for the next round).
    pub(super) fn has_queued(&self) -> bool {
        !(self.accepted.borrow().is_empty()
            && self.conn_events.borrow().is_empty()
            && self.up_events.borrow().is_empty()
            && self.bound.borrow().is_empty()
            && self.datagrams.borrow().is_empty()
            && self.tunnel_ends.borrow().is_empty()
            && self.handoffs.borrow().is_empty())
    }

    /// A receive buffer from the pool.
    pub(super) fn buffer(&self) -> Vec<u8> {
        self.pool
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0; DATAGRAM_SLOT])
    }

    /// Gives a receive buffer back to the pool.
    pub(super) fn recycle(&self, buf: Vec<u8>) {
        let mut pool = self.pool.borrow_mut();
        if pool.len() < POOL_MAX && buf.len() == DATAGRAM_SLOT {
            pool.push(buf);
        }
    }
}
