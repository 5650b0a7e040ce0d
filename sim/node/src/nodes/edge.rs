//! An SD-RTN edge: channel membership over signalling, media forwarding between the members
//! of a channel.
//!
//! The edge listens on the three addresses of its [`SdRtnEndpoints`] (always bound on
//! `0.0.0.0:<port>`):
//!
//! - **Signalling** (TCP): lines of [`Signal`]. `Join { ch, uid, seq }` puts `uid` in channel
//!   `ch` and makes this connection the uid's owner (a re-join from a new connection replaces
//!   the old one: the reconnect case). Every `Join` and `Msg` is acknowledged with
//!   `Ack { seq }` on the same connection, in order. Each uid's sequence numbers must strictly
//!   increase across all its connections; a repeat or a step back is counted in
//!   [`EdgeStats::signalling_out_of_order`]. When a connection ends, the uids it still owns
//!   leave their channels. A line that is not a message ends only that connection.
//! - **Media over UDP**: each datagram is one media packet (see `cloudproxy_core::app`). Its source
//!   becomes the sender's media sink (latest wins), and the packet is forwarded unchanged to
//!   every *other* member of the sender's channel that has a sink.
//! - **Media over TCP**: packets framed with [`encode_media_frame`]. The first intact packet
//!   binds the connection to its uid; the connection is then that uid's sink (until a later
//!   packet of the uid comes from elsewhere). Members with a TCP sink receive framed packets.
//!
//! Packets whose checksum is wrong (or shorter than a header) are dropped and counted in
//! [`EdgeStats::media_corrupt`]; packets from a uid that is in no channel are dropped and
//! counted in [`EdgeStats::media_dropped_not_joined`].
//!
//! Everything is bounded: at most [`MAX_MEMBERS`] members, per-connection buffers bounded by
//! the readers, and a queue of [`TCP_SINK_QUEUE`] frames per TCP sink (a full queue drops the
//! packet, as a congested media path would).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::sdrtn::{encode_media_frame, MediaFrameReader, SdRtnEndpoints};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::net::{Listener, Net, Udp};
use cloudproxy_core::app::{read_media, LineReader, Signal};

/// The most members an edge holds (joins beyond are acknowledged but refused, and counted).
pub const MAX_MEMBERS: usize = 10_000;
/// Frames queued for one TCP media sink before packets for it are dropped.
pub const TCP_SINK_QUEUE: usize = 256;
/// Read size for TCP connections.
const READ_CHUNK: usize = 16 * 1024;
/// Receive buffer for UDP media (larger than any packet the edge forwards).
const UDP_BUF: usize = 64 * 1024;
/// How long a closing TCP media connection may take to flush its queued frames.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What an edge did, shared with whoever runs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeStats {
    /// Signalling messages received (`Join` and `Msg`).
    pub signalling_messages: u64,
    /// Signalling messages whose seq did not exceed the previous seq of the same uid.
    pub signalling_out_of_order: u64,
    /// Signalling messages received, per uid (the uid joined on the connection; messages
    /// before any join are not attributed). Holds at most [`MAX_MEMBERS`] uids.
    pub signalling_per_uid: BTreeMap<u32, u64>,
    /// Joins refused because the edge already held [`MAX_MEMBERS`] members.
    pub joins_refused: u64,
    /// Media packets received, UDP and TCP, valid or not.
    pub media_in: u64,
    /// Media packet copies sent to members.
    pub media_forwarded: u64,
    /// Media packets dropped because their uid was in no channel.
    pub media_dropped_not_joined: u64,
    /// Media packets dropped because their checksum was wrong or they were too short.
    pub media_corrupt: u64,
    /// Media copies dropped because a TCP sink's queue was full or the packet cannot be
    /// framed (longer than a frame carries).
    pub media_dropped_congested: u64,
    /// TCP connections accepted (signalling and media).
    pub connections: u64,
    /// TCP connections ended because of broken framing.
    pub broken_connections: u64,
    /// The current members, by channel.
    pub members: BTreeMap<String, BTreeSet<u32>>,
}

/// Identifies one accepted TCP connection of the edge.
type ConnId = u64;

/// Where a member's media goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    /// A UDP address.
    Udp(SocketAddr),
    /// A TCP media connection.
    Tcp(ConnId),
}

/// One member of a channel.
#[derive(Debug)]
struct Member {
    channel: String,
    /// The signalling connection that owns the membership.
    owner: ConnId,
    sink: Option<Sink>,
}

/// The edge's state, shared by its tasks.
struct Edge {
    members: BTreeMap<u32, Member>,
    /// The members by channel (mirrored in [`EdgeStats::members`]).
    channels: BTreeMap<String, BTreeSet<u32>>,
    /// The last signalling seq of each uid (at most [`MAX_MEMBERS`] uids).
    last_seq: BTreeMap<u32, u64>,
    /// The queues of the TCP media connections.
    tcp_sinks: BTreeMap<ConnId, mpsc::Sender<Vec<u8>>>,
    next_conn: ConnId,
    stats: Rc<RefCell<EdgeStats>>,
}

/// What to do with one media packet.
struct Route {
    /// UDP sinks to send the packet to.
    udp: Vec<SocketAddr>,
}

impl Edge {
    fn new(stats: Rc<RefCell<EdgeStats>>) -> Self {
        // A (re)started edge has no members.
        stats.borrow_mut().members.clear();
        Edge {
            members: BTreeMap::new(),
            channels: BTreeMap::new(),
            last_seq: BTreeMap::new(),
            tcp_sinks: BTreeMap::new(),
            next_conn: 0,
            stats,
        }
    }

    fn accepted(&mut self) -> ConnId {
        self.next_conn += 1;
        self.stats.borrow_mut().connections += 1;
        self.next_conn
    }

    /// Handles one signalling message from connection `conn`, whose latest joined uid is
    /// `uid`; returns the ack to send, if any.
    fn handle_signal(
        &mut self,
        conn: ConnId,
        uid: &mut Option<u32>,
        signal: Signal,
    ) -> Option<Signal> {
        let seq = signal.seq();
        match signal {
            Signal::Join {
                ch, uid: joiner, ..
            } => {
                self.join(conn, ch, joiner);
                *uid = Some(joiner);
            }
            Signal::Msg { .. } => {}
            // Acks go from the edge to clients only.
            Signal::Ack { .. } => return None,
        }
        let mut stats = self.stats.borrow_mut();
        stats.signalling_messages += 1;
        if let Some(uid) = *uid {
            if let Some(count) = stats.signalling_per_uid.get_mut(&uid) {
                *count += 1;
            } else if stats.signalling_per_uid.len() < MAX_MEMBERS {
                stats.signalling_per_uid.insert(uid, 1);
            }
            let tracked = self.last_seq.len();
            match self.last_seq.get_mut(&uid) {
                Some(last) => {
                    if seq <= *last {
                        stats.signalling_out_of_order += 1;
                    }
                    *last = (*last).max(seq);
                }
                None if tracked < MAX_MEMBERS => {
                    self.last_seq.insert(uid, seq);
                }
                None => {}
            }
        }
        Some(Signal::Ack { seq })
    }

    /// Puts `uid` in `channel`, owned by `conn`.
    fn join(&mut self, conn: ConnId, channel: String, uid: u32) {
        if let Some(member) = self.members.get_mut(&uid) {
            member.owner = conn;
            if member.channel != channel {
                let old = std::mem::replace(&mut member.channel, channel.clone());
                self.unlist(&old, uid);
                self.list(channel, uid);
            }
            return;
        }
        if self.members.len() >= MAX_MEMBERS {
            self.stats.borrow_mut().joins_refused += 1;
            return;
        }
        self.members.insert(
            uid,
            Member {
                channel: channel.clone(),
                owner: conn,
                sink: None,
            },
        );
        self.list(channel, uid);
    }

    /// Adds `uid` to the channel index and its mirror in the stats.
    fn list(&mut self, channel: String, uid: u32) {
        let mut stats = self.stats.borrow_mut();
        stats
            .members
            .entry(channel.clone())
            .or_default()
            .insert(uid);
        self.channels.entry(channel).or_default().insert(uid);
    }

    /// Removes `uid` from the channel index and its mirror in the stats.
    fn unlist(&mut self, channel: &str, uid: u32) {
        remove_from(&mut self.stats.borrow_mut().members, channel, uid);
        remove_from(&mut self.channels, channel, uid);
    }

    /// A signalling connection ended: the uids it still owns leave.
    fn signalling_closed(&mut self, conn: ConnId) {
        let leaving: Vec<u32> = self
            .members
            .iter()
            .filter(|(_, m)| m.owner == conn)
            .map(|(uid, _)| *uid)
            .collect();
        for uid in leaving {
            if let Some(member) = self.members.remove(&uid) {
                self.unlist(&member.channel, uid);
            }
        }
    }

    /// A TCP media connection ended: it is nobody's sink any more.
    fn media_tcp_closed(&mut self, conn: ConnId) {
        self.tcp_sinks.remove(&conn);
        for member in self.members.values_mut() {
            if member.sink == Some(Sink::Tcp(conn)) {
                member.sink = None;
            }
        }
    }

    /// Checks one media packet that arrived from `from`, records the sender's sink (when
    /// `sets_sink`), queues it for the TCP sinks of the other members of the channel and
    /// returns the UDP sinks to send it to.
    fn route(&mut self, packet: &[u8], from: Sink, sets_sink: bool) -> Option<Route> {
        let mut stats = self.stats.borrow_mut();
        stats.media_in += 1;
        let header = match read_media(packet) {
            Some(header) if header.intact => header,
            _ => {
                stats.media_corrupt += 1;
                return None;
            }
        };
        let Some(sender) = self.members.get_mut(&header.uid) else {
            stats.media_dropped_not_joined += 1;
            return None;
        };
        if sets_sink {
            sender.sink = Some(from);
        }
        let mut route = Route { udp: Vec::new() };
        let Some(uids) = self.channels.get(&sender.channel) else {
            return Some(route);
        };
        let sinks: Vec<Sink> = uids
            .iter()
            .filter(|uid| **uid != header.uid)
            .filter_map(|uid| self.members.get(uid).and_then(|m| m.sink))
            .collect();
        let mut frame = None;
        for sink in sinks {
            match sink {
                Sink::Udp(addr) => route.udp.push(addr),
                Sink::Tcp(conn) => {
                    let frame = frame.get_or_insert_with(|| {
                        let mut out = Vec::new();
                        encode_media_frame(packet, &mut out).ok().map(|()| out)
                    });
                    let sent = match (frame, self.tcp_sinks.get(&conn)) {
                        (Some(frame), Some(queue)) => queue.try_send(frame.clone()).is_ok(),
                        _ => false,
                    };
                    if sent {
                        stats.media_forwarded += 1;
                    } else {
                        stats.media_dropped_congested += 1;
                    }
                }
            }
        }
        Some(route)
    }
}

/// Removes `uid` from `channel` in a membership table, and the channel once empty.
fn remove_from(table: &mut BTreeMap<String, BTreeSet<u32>>, channel: &str, uid: u32) {
    if let Some(uids) = table.get_mut(channel) {
        uids.remove(&uid);
        if uids.is_empty() {
            table.remove(channel);
        }
    }
}

/// `0.0.0.0:port`: turmoil binds only unspecified or loopback addresses.
fn any(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
}

/// Runs an SD-RTN edge on `net`, listening on the ports of `endpoints`, until the host
/// crashes (or a listener fails). `stats` is updated as things happen; its `members` table is
/// cleared at start, since a (re)started edge has no members.
pub async fn run_edge<N: Net>(
    net: N,
    endpoints: SdRtnEndpoints,
    stats: Rc<RefCell<EdgeStats>>,
) -> io::Result<()> {
    let edge = Rc::new(RefCell::new(Edge::new(stats)));
    let signalling = net.listen(any(endpoints.signalling.port())).await?;
    let media_tcp = net.listen(any(endpoints.media_tcp.port())).await?;
    let udp = Rc::new(net.bind_udp(any(endpoints.media_udp.port())).await?);
    tokio::try_join!(
        serve_signalling(&edge, &signalling),
        serve_media_tcp(&edge, &media_tcp, &udp),
        serve_media_udp(&edge, &udp),
    )?;
    Ok(())
}

async fn serve_signalling<L: Listener>(edge: &Rc<RefCell<Edge>>, listener: &L) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let conn = edge.borrow_mut().accepted();
        tokio::task::spawn_local(signalling_connection(edge.clone(), stream, conn));
    }
}

/// One signalling connection: messages in, acks out, in order.
async fn signalling_connection<S>(edge: Rc<RefCell<Edge>>, mut stream: S, conn: ConnId)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut lines = LineReader::default();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut uid = None;
    let broken = loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break false,
            Ok(n) => n,
        };
        let Ok(signals) = lines.push(&buf[..n]) else {
            break true;
        };
        let mut acks = Vec::new();
        for signal in signals {
            if let Some(ack) = edge.borrow_mut().handle_signal(conn, &mut uid, signal) {
                acks.extend(ack.to_line());
            }
        }
        if !acks.is_empty() && stream.write_all(&acks).await.is_err() {
            break false;
        }
    };
    {
        let mut edge = edge.borrow_mut();
        edge.signalling_closed(conn);
        if broken {
            edge.stats.borrow_mut().broken_connections += 1;
        }
    }
    if broken {
        let _ = stream.shutdown().await;
    }
}

async fn serve_media_tcp<L: Listener, U: Udp>(
    edge: &Rc<RefCell<Edge>>,
    listener: &L,
    udp: &Rc<U>,
) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let conn = edge.borrow_mut().accepted();
        tokio::task::spawn_local(media_connection(edge.clone(), udp.clone(), stream, conn));
    }
}

/// One TCP media connection: framed packets in (forwarded), framed packets out (a writer
/// task draining the connection's bounded queue).
async fn media_connection<S, U>(edge: Rc<RefCell<Edge>>, udp: Rc<U>, stream: S, conn: ConnId)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
    U: Udp,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (queue, mut frames) = mpsc::channel::<Vec<u8>>(TCP_SINK_QUEUE);
    edge.borrow_mut().tcp_sinks.insert(conn, queue);
    let writing = tokio::task::spawn_local(async move {
        while let Some(frame) = frames.recv().await {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut framing = MediaFrameReader::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut bound: Option<u32> = None;
    let broken = loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break false,
            Ok(n) => n,
        };
        let mut packets = Vec::new();
        let framed = framing.push_all(&buf[..n], &mut packets);
        for packet in packets {
            if bound.is_none() {
                bound = read_media(&packet).filter(|h| h.intact).map(|h| h.uid);
            }
            let sets_sink = bound.is_some() && read_media(&packet).map(|h| h.uid) == bound;
            forward(&edge, &*udp, &packet, Sink::Tcp(conn), sets_sink).await;
        }
        if framed.is_err() {
            break true;
        }
    };
    {
        let mut edge = edge.borrow_mut();
        // Dropping the queue's sender lets the writer flush and shut down.
        edge.media_tcp_closed(conn);
        if broken {
            edge.stats.borrow_mut().broken_connections += 1;
        }
    }
    let abort = writing.abort_handle();
    if tokio::time::timeout(FLUSH_TIMEOUT, writing).await.is_err() {
        abort.abort();
    }
}

async fn serve_media_udp<U: Udp>(edge: &Rc<RefCell<Edge>>, udp: &Rc<U>) -> io::Result<()> {
    let mut buf = vec![0u8; UDP_BUF];
    loop {
        let (n, from) = udp.recv_from(&mut buf).await?;
        forward(edge, &**udp, &buf[..n], Sink::Udp(from), true).await;
    }
}

/// Routes one packet and sends it to the UDP sinks (TCP sinks are queued by the route).
async fn forward<U: Udp>(
    edge: &Rc<RefCell<Edge>>,
    udp: &U,
    packet: &[u8],
    from: Sink,
    sets_sink: bool,
) {
    let Some(route) = edge.borrow_mut().route(packet, from, sets_sink) else {
        return;
    };
    for to in route.udp {
        if udp.send_to(packet, to).await.is_ok() {
            edge.borrow().stats.borrow_mut().media_forwarded += 1;
        }
    }
}
