//! The relay loop: feeds the machine from the [`Inbox`] in fair rounds and performs its
//! outputs without ever waiting on a socket.
//!
//! One **round** takes, in turn: the machine's due timers, at most [`ACCEPT_BATCH`] accepted
//! connections, at most [`BATCH`] connection events, upstream connects, bind results, tunnel
//! ends and handoffs, and at most [`BATCH`] datagrams; then the tunnels' activity reports when
//! their tick is due. Each source gets a bounded share per round, so a UDP flood delays an
//! accept, a tunnel or a timer by at most one round's batch. Between rounds the loop yields
//! so the pumps, readers and writers run.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use cloudproxy_core::relay::{AllocId, ClientConn, Relay, RelayInput, RelayOutput, UpstreamConn};
use tokio::task::JoinHandle;

use super::conn::{self, ConnLimits, ConnLink, SpliceOrder};
use super::inbox::{ConnEvent, Inbox, Source, UpEvent};
use super::poll::{Dir, RecvBufs, SocketWaker};
use super::ring::{Ring, RingCounts};
use super::udp::{Dropped, Socket};
use super::{note_upstream, trace_event, HandoffOut, RelayShared};
use crate::net::{Net, TunnelEnd, TunnelLink};
use crate::trace::Trace;

/// Accepted connections taken per round.
pub(super) const ACCEPT_BATCH: usize = 16;
/// Items taken per round from each other queue.
pub(super) const BATCH: usize = 64;
/// Receive batches taken per round from polled sockets (each at most
/// [`PER_SOCKET_DATAGRAMS`](super::inbox::PER_SOCKET_DATAGRAMS) datagrams).
const POLLED_BATCHES: usize = 8;

/// An upstream connection of the host.
enum Upstream<S> {
    /// Being opened.
    Connecting(JoinHandle<()>),
    /// Open, waiting for its tunnel to be spliced; `early` bytes go first.
    Open { stream: S, early: Vec<u8> },
    /// Spliced into the tunnel of this client connection.
    Spliced(u64),
}

/// A client connection of the host.
struct Client<S> {
    link: Rc<ConnLink<S>>,
    task: JoinHandle<()>,
    /// The tunnel, once spliced: its upstream and its link.
    tunnel: Option<(u64, TunnelLink)>,
}

/// The relay loop's state.
pub(super) struct Driver<N: Net> {
    pub(super) net: N,
    pub(super) name: String,
    pub(super) relay: Relay,
    pub(super) inbox: Rc<Inbox<N::Stream, N::Udp>>,
    pub(super) trace: Trace,
    pub(super) shared: Rc<RefCell<RelayShared>>,
    pub(super) limits: ConnLimits,
    pub(super) handoff: Option<HandoffOut<N::Stream>>,
    clients: BTreeMap<u64, Client<N::Stream>>,
    upstreams: BTreeMap<u64, Upstream<N::Stream>>,
    pub(super) media: BTreeMap<u16, Socket<N::Udp>>,
    allocs: BTreeMap<u64, Socket<N::Udp>>,
    /// The polled sockets' receive buffers (one batch, shared).
    recv_bufs: RecvBufs,
    /// Polled sockets taken from the ready list, not yet served.
    ready: Vec<Arc<SocketWaker>>,
    /// The sockets being served this round (kept for its capacity).
    serving: Vec<Arc<SocketWaker>>,
    /// Polled sockets with datagrams queued to send this round.
    to_flush: Vec<Source>,
    next_conn: u64,
    /// Bytes queued on every client connection.
    queued: Rc<Cell<usize>>,
    /// Connections cut for not reading.
    cuts: Rc<Cell<u64>>,
    /// Datagrams dropped because a send queue was full.
    udp_dropped: Dropped,
    /// Connections cut because a write would exceed the bound.
    overflows: u64,
    /// Messages that held datagrams the kernel coalesced (UDP GRO), and those datagrams.
    gro_messages: u64,
    gro_datagrams: u64,
    /// When the tunnels' activity is next reported.
    report_at: Option<tokio::time::Instant>,
    report_interval: Duration,
    /// Connections handed to other shards, and taken from them.
    handed_off: u64,
    taken_over: u64,
    /// Tasks of connections the machine closed, still writing what was queued.
    closing: Vec<JoinHandle<()>>,
    /// Tunnels open now, and those that ended having run on the kernel's splice.
    tunnels_open: usize,
    tunnels_kernel: u64,
    /// One submit for a round's sends on many sockets, the sockets staged in it (kept for
    /// its capacity), and what it did ([`super::ring`]).
    pub(super) ring: Ring,
    pub(super) ring_staged: Vec<(Source, usize)>,
    pub(super) ring_counts: RingCounts,
}

impl<N: Net> Driver<N> {
    /// A loop for `relay`, before any socket is opened.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        net: N,
        name: String,
        relay: Relay,
        trace: Trace,
        shared: Rc<RefCell<RelayShared>>,
        limits: ConnLimits,
        handoff: Option<HandoffOut<N::Stream>>,
    ) -> Self {
        let report_interval = relay.config().activity_report_interval;
        let net_batches = net.batch_sends();
        Driver {
            net,
            name,
            relay,
            inbox: Inbox::new(),
            trace,
            shared,
            limits,
            handoff,
            clients: BTreeMap::new(),
            upstreams: BTreeMap::new(),
            media: BTreeMap::new(),
            allocs: BTreeMap::new(),
            recv_bufs: RecvBufs::new(),
            ready: Vec::new(),
            serving: Vec::new(),
            to_flush: Vec::new(),
            next_conn: 0,
            queued: Rc::default(),
            cuts: Rc::default(),
            udp_dropped: Rc::default(),
            overflows: 0,
            gro_messages: 0,
            gro_datagrams: 0,
            report_at: None,
            report_interval,
            handed_off: 0,
            taken_over: 0,
            closing: Vec::new(),
            tunnels_open: 0,
            tunnels_kernel: 0,
            ring: Ring::new(net_batches),
            ring_staged: Vec::new(),
            ring_counts: RingCounts::default(),
        }
    }

    /// Runs rounds until `stop` resolves (then returns, the machine told nothing yet).
    pub(super) async fn serve(&mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            self.round();
            self.publish();
            if self.has_work_left() {
                // A bounded batch left work: yield (the runtime polls the sockets and the
                // other tasks run), then come back at once.
                tokio::task::yield_now().await;
                continue;
            }
            let deadline = self.relay.poll_timeout();
            let report_at = self.report_at;
            tokio::select! {
                biased;
                () = &mut stop => return,
                () = self.inbox.wake.notified() => {}
                () = self.inbox.ready.notify.notified() => {}
                () = crate::net::sleep_until(&self.net, deadline) => {}
                () = sleep_opt(report_at) => {}
            }
        }
    }

    /// Whether the last round left work it may do now without waiting: items queued beyond
    /// a batch, polled sockets with more to read, a due timer. If not, the loop waits for its
    /// next wake-up straight away (the runtime then polls the sockets and sleeps only if none
    /// is ready), with no second round to find nothing.
    fn has_work_left(&self) -> bool {
        !self.ready.is_empty()
            || self.inbox.has_queued()
            || self
                .relay
                .poll_timeout()
                .is_some_and(|at| at <= self.net.now())
    }

    /// One fair round; whether it did anything.
    pub(super) fn round(&mut self) -> bool {
        let mut worked = false;
        let now = self.net.now();
        if self.relay.poll_timeout().is_some_and(|at| at <= now) {
            self.relay.handle_timeout(now);
            self.perform();
            worked = true;
        }
        for _ in 0..ACCEPT_BATCH {
            let Some((stream, peer, data)) = self.inbox.accepted.borrow_mut().pop_front() else {
                break;
            };
            self.inbox.accept_room.notify_one();
            self.accept(stream, peer, &data);
            worked = true;
        }
        worked |= self.conn_events();
        worked |= self.control_events();
        worked |= self.datagrams();
        worked |= self.polled_datagrams();
        self.flush_sends();
        self.reports();
        worked
    }

    fn accept(&mut self, stream: N::Stream, peer: SocketAddr, data: &[u8]) {
        self.next_conn += 1;
        let id = self.next_conn;
        let link = ConnLink::new(peer, self.queued.clone());
        let task = tokio::task::spawn_local(conn::run(
            self.net.clone(),
            id,
            stream,
            link.clone(),
            self.inbox.clone(),
            self.limits,
            self.cuts.clone(),
        ));
        self.clients.insert(
            id,
            Client {
                link,
                task,
                tunnel: None,
            },
        );
        let now = self.net.now();
        let conn = ClientConn(id);
        self.relay
            .handle_input(RelayInput::TcpAccepted { conn, peer }, now);
        self.perform();
        if !data.is_empty() {
            self.taken_over += 1;
            // Tickets are checked on the wall clock, read beside the monotonic `now`.
            self.relay
                .handle_input(RelayInput::WallClock(self.net.unix_now()), now);
            self.relay
                .handle_input(RelayInput::TcpData { conn, data }, now);
            self.perform();
        }
    }

    fn conn_events(&mut self) -> bool {
        let mut worked = false;
        for _ in 0..BATCH {
            let Some((id, event)) = self.inbox.conn_events.borrow_mut().pop_front() else {
                break;
            };
            worked = true;
            let now = self.net.now();
            let conn = ClientConn(id);
            match event {
                ConnEvent::Data(data) => {
                    // Tickets are checked on the wall clock, read beside the monotonic `now`.
                    self.relay
                        .handle_input(RelayInput::WallClock(self.net.unix_now()), now);
                    self.relay
                        .handle_input(RelayInput::TcpData { conn, data: &data }, now);
                    self.perform();
                    if let Some(c) = self.clients.get(&id) {
                        c.link.consumed();
                    }
                }
                ConnEvent::Closed => {
                    if self.clients.remove(&id).is_some() {
                        self.relay.handle_input(RelayInput::TcpClosed { conn }, now);
                        self.perform();
                    }
                }
            }
        }
        worked
    }

    /// Upstream connects, bind results, tunnel ends and handoffs.
    fn control_events(&mut self) -> bool {
        let mut worked = false;
        for _ in 0..BATCH {
            let Some((id, event)) = self.inbox.up_events.borrow_mut().pop_front() else {
                break;
            };
            worked = true;
            let conn = UpstreamConn(id);
            let input = match event {
                UpEvent::Connected(stream) => {
                    if !matches!(self.upstreams.get(&id), Some(Upstream::Connecting(_))) {
                        continue; // closed meanwhile
                    }
                    let early = Vec::new();
                    self.upstreams.insert(id, Upstream::Open { stream, early });
                    RelayInput::UpstreamConnected { conn }
                }
                UpEvent::Failed => {
                    if self.upstreams.remove(&id).is_none() {
                        continue;
                    }
                    RelayInput::UpstreamFailed { conn }
                }
            };
            self.relay.handle_input(input, self.net.now());
            self.perform();
        }
        for _ in 0..BATCH {
            let Some((id, udp)) = self.inbox.bound.borrow_mut().pop_front() else {
                break;
            };
            worked = true;
            match (udp, self.allocs.get_mut(&id)) {
                (Some(udp), Some(socket)) => {
                    socket.start(udp, Source::Alloc(id), &self.inbox);
                    // What the machine queued meanwhile goes out now.
                    if socket.polled.is_some() && socket.sends.len() > 0 && !socket.dirty {
                        socket.dirty = true;
                        self.to_flush.push(Source::Alloc(id));
                    }
                }
                (None, Some(_)) => {
                    self.allocs.remove(&id);
                    let input = RelayInput::UdpBindFailed { alloc: AllocId(id) };
                    self.relay.handle_input(input, self.net.now());
                    self.perform();
                }
                _ => {}
            }
        }
        for _ in 0..BATCH {
            let Some((id, end)) = self.inbox.tunnel_ends.borrow_mut().pop_front() else {
                break;
            };
            worked = true;
            self.tunnel_ended(id, end);
        }
        for _ in 0..BATCH {
            let Some((id, stream)) = self.inbox.handoffs.borrow_mut().pop_front() else {
                break;
            };
            worked = true;
            self.hand_over(id, stream);
        }
        worked
    }

    /// A tunnel's pump ended: its last activity, then the side that closed.
    fn tunnel_ended(&mut self, id: u64, end: TunnelEnd) {
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        let Some((up, link)) = client.tunnel else {
            return;
        };
        self.upstreams.remove(&up);
        self.tunnels_open = self.tunnels_open.saturating_sub(1);
        if link.is_kernel() {
            self.tunnels_kernel += 1;
        }
        if end == TunnelEnd::Closed {
            // The machine asked for it and has forgotten the tunnel.
            return;
        }
        let now = self.net.now();
        self.report(id, &link, now);
        let input = match end {
            TunnelEnd::ClientClosed => RelayInput::TcpClosed {
                conn: ClientConn(id),
            },
            TunnelEnd::UpstreamClosed => RelayInput::UpstreamClosed {
                conn: UpstreamConn(up),
            },
            TunnelEnd::Closed => return,
        };
        self.relay.handle_input(input, now);
        self.perform();
    }

    fn hand_over(&mut self, id: u64, stream: N::Stream) {
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        let Some((shard, data)) = client.link.take_handoff() else {
            return;
        };
        if let Some(out) = &self.handoff {
            self.handed_off += 1;
            out(shard, stream, client.link.peer, data);
        }
    }

    fn datagrams(&mut self) -> bool {
        let mut worked = false;
        for _ in 0..BATCH {
            let Some(d) = self.inbox.datagrams.borrow_mut().pop_front() else {
                break;
            };
            worked = true;
            d.waiting.count.set(d.waiting.count.get().saturating_sub(1));
            d.waiting.room.notify_one();
            self.datagram(d.source, d.from, d.buf.get(..d.len).unwrap_or_default());
            self.inbox.recycle(d.buf);
        }
        worked
    }

    /// One datagram to the machine, and its outputs performed.
    fn datagram(&mut self, source: Source, from: SocketAddr, data: &[u8]) {
        let now = self.net.now();
        let input = match source {
            Source::Media(local_port) => RelayInput::UdpFromClient {
                local_port,
                from,
                data,
            },
            Source::Alloc(alloc) => RelayInput::UdpFromUpstream {
                alloc: AllocId(alloc),
                from,
                data,
            },
        };
        self.relay.handle_input(input, now);
        self.perform();
    }

    /// Reports the activity of every tunnel that moved bytes, once per interval.
    fn reports(&mut self) {
        let due = self
            .report_at
            .is_some_and(|at| at <= tokio::time::Instant::now());
        if due {
            self.report_at = None;
            let dirty = std::mem::take(&mut *self.inbox.dirty.borrow_mut());
            let now = self.net.now();
            for id in dirty {
                let link = self
                    .clients
                    .get(&id)
                    .and_then(|c| c.tunnel.as_ref())
                    .map(|(_, l)| l.clone());
                if let Some(link) = link {
                    self.report(id, &link, now);
                }
            }
        }
        if self.report_at.is_none() && !self.inbox.dirty.borrow().is_empty() {
            self.report_at = Some(tokio::time::Instant::now() + self.report_interval);
        }
    }

    fn report(&mut self, id: u64, link: &TunnelLink, now: cloudproxy_core::time::Instant) {
        let (up, down) = link.take();
        if up > 0 || down > 0 {
            let input = RelayInput::TunnelActivity {
                client: ClientConn(id),
                bytes_up: up,
                bytes_down: down,
            };
            self.relay.handle_input(input, now);
            self.perform();
        }
    }

    /// Performs every output of the machine, in order.
    pub(super) fn perform(&mut self) {
        while let Some(output) = self.relay.poll_output() {
            self.perform_one(output);
        }
    }

    fn perform_one(&mut self, output: RelayOutput) {
        match output {
            RelayOutput::TcpSend { conn, data } => {
                let Some(c) = self.clients.get(&conn.0) else {
                    return;
                };
                if !c.link.send(data, self.limits.max_queued) {
                    // A peer that does not read: cut it, and tell the machine.
                    self.overflows += 1;
                    if let Some(c) = self.clients.remove(&conn.0) {
                        c.task.abort();
                        c.link.drop_queue();
                    }
                    let input = RelayInput::TcpClosed { conn };
                    self.relay.handle_input(input, self.net.now());
                }
            }
            RelayOutput::TcpClose { conn } => self.close_client(conn.0),
            RelayOutput::UpstreamConnect { conn, to } => self.connect(conn.0, to),
            RelayOutput::UpstreamSend { conn, data } => {
                if let Some(Upstream::Open { early, .. }) = self.upstreams.get_mut(&conn.0) {
                    early.extend_from_slice(&data);
                }
            }
            RelayOutput::UpstreamClose { conn } => self.close_upstream(conn.0),
            RelayOutput::UdpToClient {
                local_port,
                to,
                data,
            } => self.queue_send(Source::Media(local_port), to, data),
            RelayOutput::UdpBind { alloc } => self.bind(alloc.0),
            RelayOutput::UdpToUpstream { alloc, to, data } => {
                note_upstream(&self.shared, to);
                self.queue_send(Source::Alloc(alloc.0), to, data);
            }
            RelayOutput::UdpRelease { alloc } => {
                if let Some(socket) = self.allocs.remove(&alloc.0) {
                    socket
                        .sends
                        .drain_spent(true, |buf| self.relay.recycle(buf));
                }
            }
            RelayOutput::Splice {
                client, upstream, ..
            } => self.splice(client.0, upstream.0),
            RelayOutput::TcpHandoff { conn, shard, data } => {
                if let Some(c) = self.clients.get(&conn.0) {
                    c.link.set_handoff(shard, data);
                }
            }
            RelayOutput::Event(event) => trace_event(&self.trace, &self.net, &self.name, &event),
        }
    }

    pub(super) fn socket(&mut self, source: Source) -> Option<&mut Socket<N::Udp>> {
        match source {
            Source::Media(port) => self.media.get_mut(&port),
            Source::Alloc(id) => self.allocs.get_mut(&id),
        }
    }

    /// Queues a datagram on a socket (dropped and counted when its queue is full); a polled
    /// socket is flushed at the end of the round. Buffers the socket's writer task is done
    /// with, and a dropped datagram's, go back to the machine's pool.
    fn queue_send(&mut self, source: Source, to: SocketAddr, data: Vec<u8>) {
        let socket = match source {
            Source::Media(port) => self.media.get_mut(&port),
            Source::Alloc(id) => self.allocs.get_mut(&id),
        };
        let Some(socket) = socket else {
            self.relay.recycle(data);
            return;
        };
        let relay = &mut self.relay;
        socket.sends.drain_spent(false, |buf| relay.recycle(buf));
        if let Err(data) = socket.sends.push(to, data) {
            self.relay.recycle(data);
            self.udp_dropped.set(self.udp_dropped.get() + 1);
            return;
        }
        if socket.polled.is_some() && !socket.dirty {
            socket.dirty = true;
            self.to_flush.push(source);
        }
    }

    /// Receives from the polled sockets that became ready, a batch each (at most
    /// [`POLLED_BATCHES`] batches a round; a socket with more goes behind the others), and
    /// feeds every datagram to the machine. A socket whose sends can go again is flushed.
    /// Whether sockets are left with more to read.
    fn polled_datagrams(&mut self) -> bool {
        if self.ready.is_empty() {
            self.inbox.ready.take(&mut self.ready);
        }
        if self.ready.is_empty() {
            return false;
        }
        let mut bufs = std::mem::take(&mut self.recv_bufs);
        let take = self.ready.len().min(POLLED_BATCHES);
        // The loop's own list, reused: no allocation a round.
        let mut batch = std::mem::take(&mut self.serving);
        batch.extend(self.ready.drain(..take));
        for waker in batch.drain(..) {
            let source = waker.source;
            if waker.dir == Dir::Send {
                if let Some(socket) = self.socket(source) {
                    if !socket.dirty {
                        socket.dirty = true;
                        self.to_flush.push(source);
                    }
                }
                continue;
            }
            let Some(polled) = self.socket(source).and_then(|s| s.polled.as_ref()) else {
                continue;
            };
            let (n, more) = polled.recv(&mut bufs);
            if more {
                self.ready.push(waker);
            }
            for i in 0..n {
                let Some((from, datagrams, count)) = bufs.get(i) else {
                    continue;
                };
                if count > 1 {
                    self.gro_messages += 1;
                    self.gro_datagrams += count as u64;
                }
                for data in datagrams {
                    self.datagram(source, from, data);
                }
            }
        }
        self.recv_bufs = bufs;
        self.serving = batch;
        // Served sockets registered their wakers: only one with more makes this round's work
        // urgent (the loop then yields and comes back; else it waits for the next wake-up).
        !self.ready.is_empty()
    }

    /// Sends what the round queued on polled sockets (a socket that would block waits for
    /// its send waker).
    /// Every buffer sent or dropped goes back to the machine's pool.
    fn flush_sends(&mut self) {
        // The list is emptied in place: its storage serves every round.
        let mut to_flush = std::mem::take(&mut self.to_flush);
        // Many sockets' sends in one system call where the kernel allows; what remains goes
        // one socket at a time below.
        #[cfg(target_os = "linux")]
        self.flush_through_ring(&to_flush);
        for source in to_flush.drain(..) {
            let socket = match source {
                Source::Media(port) => self.media.get_mut(&port),
                Source::Alloc(id) => self.allocs.get_mut(&id),
            };
            let Some(socket) = socket else {
                continue;
            };
            socket.dirty = false;
            if let Some(polled) = &socket.polled {
                let relay = &mut self.relay;
                polled.flush(&socket.sends, |buf| relay.recycle(buf));
            }
        }
        self.to_flush = to_flush;
    }

    fn close_client(&mut self, id: u64) {
        let Some(c) = self.clients.get(&id) else {
            return;
        };
        match &c.tunnel {
            Some((_, link)) => link.close(),
            None => {
                c.link.close();
                if let Some(c) = self.clients.remove(&id) {
                    // It writes what is queued (bounded in time), then ends.
                    self.closing.retain(|t| !t.is_finished());
                    self.closing.push(c.task);
                }
            }
        }
    }

    fn close_upstream(&mut self, id: u64) {
        match self.upstreams.remove(&id) {
            Some(Upstream::Connecting(task)) => task.abort(),
            Some(Upstream::Spliced(client)) => {
                if let Some((_, link)) = self.clients.get(&client).and_then(|c| c.tunnel.as_ref()) {
                    link.close();
                }
                // The tunnel's entry goes when its pump reports its end.
                self.upstreams.insert(id, Upstream::Spliced(client));
            }
            Some(Upstream::Open { .. }) | None => {}
        }
    }

    fn connect(&mut self, id: u64, to: SocketAddr) {
        note_upstream(&self.shared, to);
        let (net, inbox) = (self.net.clone(), self.inbox.clone());
        // No timeout of ours: the machine's connect deadline closes it (UpstreamClose).
        let task = tokio::task::spawn_local(async move {
            let event = match net.connect(to).await {
                Ok(stream) => UpEvent::Connected(stream),
                Err(_) => UpEvent::Failed,
            };
            inbox.post(|i| i.up_events.borrow_mut().push_back((id, event)));
        });
        self.upstreams.insert(id, Upstream::Connecting(task));
    }

    fn bind(&mut self, id: u64) {
        let (net, inbox) = (self.net.clone(), self.inbox.clone());
        let mut socket = Socket::pending();
        socket.own(tokio::task::spawn_local(async move {
            let bound = net
                .bind_udp(SocketAddr::from(([0, 0, 0, 0], 0)))
                .await
                .ok()
                .map(Rc::new);
            inbox.post(|i| i.bound.borrow_mut().push_back((id, bound)));
        }));
        self.allocs.insert(id, socket);
    }

    fn splice(&mut self, client: u64, upstream: u64) {
        let (Some(Upstream::Open { stream, early }), Some(c)) = (
            self.upstreams.remove(&upstream),
            self.clients.get_mut(&client),
        ) else {
            // One side is already gone: the tunnel cannot start. Say which, so that the
            // machine ends the session now rather than at its idle timeout.
            let input = if self.clients.contains_key(&client) {
                RelayInput::UpstreamClosed {
                    conn: UpstreamConn(upstream),
                }
            } else {
                RelayInput::TcpClosed {
                    conn: ClientConn(client),
                }
            };
            self.relay.handle_input(input, self.net.now());
            return;
        };
        let inbox = Rc::downgrade(&self.inbox);
        let link = TunnelLink::new(self.limits.linger, move || {
            if let Some(inbox) = inbox.upgrade() {
                inbox.dirty.borrow_mut().push(client);
                inbox.wake.notify_one();
            }
        });
        c.tunnel = Some((upstream, link.clone()));
        self.tunnels_open += 1;
        c.link.splice(SpliceOrder {
            upstream: stream,
            early,
            link,
        });
        self.upstreams.insert(upstream, Upstream::Spliced(client));
    }

    /// Copies the machine's counters and gauges, and the host's own, for the world to read
    /// (once per round: a constant cost, whatever the number of sessions).
    pub(super) fn publish(&self) {
        let mut s = self.shared.borrow_mut();
        s.counters.clone_from(self.relay.counters());
        let g = self.relay.gauges();
        s.sessions = g.sessions;
        s.peak_sessions = g.peak_sessions;
        s.connections = g.connections;
        s.peak_connections = g.peak_connections;
        s.buffered_bytes = g.buffered_bytes;
        s.peak_buffered_bytes = g.peak_buffered_bytes;
        s.queued_bytes = self.queued.get();
        s.peak_queued_bytes = s.peak_queued_bytes.max(s.queued_bytes);
        s.stream_overflows = self.overflows + self.cuts.get();
        s.udp_allocs = g.udp_allocs;
        s.udp_send_dropped = self.udp_dropped.get();
        s.udp_gro_messages = self.gro_messages;
        s.udp_gro_datagrams = self.gro_datagrams;
        s.udp_spare_buffers = self.relay.spare_buffers();
        s.udp_buffers_allocated = self.relay.buffers_allocated();
        s.udp_ring_submits = self.ring_counts.submits;
        s.udp_ring_datagrams = self.ring_counts.datagrams;
        s.udp_ring_loops = usize::from(self.ring.in_use());
        s.tunnels = self.tunnels_open;
        s.tunnels_kernel_total = self.tunnels_kernel;
        s.handoffs_out = self.handed_off;
        s.handoffs_in = self.taken_over;
    }

    /// Starts the graceful end: the machine closes every session; readers stop.
    pub(super) fn begin_shutdown(&mut self) {
        self.relay.shutdown(self.net.now());
        self.perform();
        for socket in self.media.values_mut().chain(self.allocs.values_mut()) {
            socket.stop_reading();
        }
        self.publish();
    }

    /// Whether everything the shutdown queued is written (or given up).
    pub(super) fn flushed(&self) -> bool {
        self.clients.values().all(|c| c.task.is_finished())
            && self.closing.iter().all(JoinHandle::is_finished)
            && self
                .media
                .values()
                .chain(self.allocs.values())
                .all(|s| s.sends.len() == 0)
    }

    /// Ends every task of the host.
    pub(super) fn abort_all(&mut self) {
        for c in self.clients.values() {
            c.task.abort();
            c.link.drop_queue();
        }
        for task in &self.closing {
            task.abort();
        }
        for up in self.upstreams.values() {
            if let Upstream::Connecting(task) = up {
                task.abort();
            }
        }
        self.clients.clear();
        self.upstreams.clear();
        self.media.clear();
        self.allocs.clear();
    }
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
