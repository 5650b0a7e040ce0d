//! The pcap of the simulated traffic: a [`Capture`] records every packet a host sends, as real
//! IPv4/IPv6 + UDP/TCP packets with the simulated addresses, ports and time, and writes them
//! as a classic pcap file (link type "raw IP") that tshark and Wireshark open.
//!
//! What is recorded, and where: the capturing decorator
//! ([`Captured`](crate::net::Captured)) wraps every host's network, outermost, so the pcap is
//! the union of what each host put on its own wire, each packet once, at its sender (as if
//! tcpdump ran on every host). A datagram that an enterprise firewall or the network then
//! drops is still in the pcap (it was sent); a denied TCP connect shows as a SYN that nobody
//! answers, a refused one as SYN then RST.
//!
//! The simulation has byte streams, not segments, so TCP is synthesized: a three-way handshake
//! when a connect succeeds (SYN with an MSS option, SYN-ACK, ACK), one segment per MSS of every
//! write with sequence numbers that follow the byte stream and acknowledgements that follow
//! what the sender has read, FIN on shutdown or close. Initial sequence numbers are a hash of
//! the two endpoints, so the same seed gives the same pcap, byte for byte. Checksums are all
//! computed (IPv4 header, UDP, TCP).
//!
//! Bounded: a capture keeps at most [`CaptureLimits::max_packets`] packets and
//! [`CaptureLimits::max_bytes`] bytes of file; later packets are counted, not kept, and
//! [`CaptureSummary::note`] says so.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use etherparse::{PacketBuilder, PacketBuilderStep, TcpHeader, TcpOptionElement};

use crate::policy::Proto;

/// The pcap link type of raw IPv4/IPv6 packets (no link-layer header).
pub const LINKTYPE_RAW: u32 = 101;
/// Bytes of the pcap file header.
const FILE_HEADER_LEN: usize = 24;
/// Bytes of each pcap record header.
const RECORD_HEADER_LEN: usize = 16;
/// TCP window advertised in every synthesized segment.
const TCP_WINDOW: u16 = 65_535;
/// TTL / hop limit of every packet.
const TTL: u8 = 64;
/// The most flows a capture keeps statistics for.
const MAX_FLOWS: usize = 65_536;
/// Local ports given to TCP connects that never got one from the network (they failed or never
/// completed): below the simulator's ephemeral range (49152-65535), so they never collide.
const SYNTHETIC_PORTS: std::ops::RangeInclusive<u16> = 32_768..=49_151;

/// How much a capture keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureLimits {
    /// The most packets written.
    pub max_packets: usize,
    /// The largest pcap file, in bytes (headers included).
    pub max_bytes: usize,
}

impl Default for CaptureLimits {
    /// One million packets, 256 MiB: a 40 s scenario of the catalogue needs about a tenth.
    fn default() -> Self {
        CaptureLimits {
            max_packets: 1_000_000,
            max_bytes: 256 << 20,
        }
    }
}

/// One flow a host started: TCP connects, or UDP datagrams, from one address to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The protocol.
    pub proto: Proto,
    /// The sending host's address.
    pub from: IpAddr,
    /// The destination.
    pub to: SocketAddr,
    /// TCP: connects attempted; UDP: datagrams sent.
    pub packets: u64,
    /// TCP: connects that succeeded; UDP: payload bytes sent.
    pub count: u64,
    /// When the first packet of the flow was sent (µs of simulated time).
    pub first_us: u64,
}

/// What a capture holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    /// Packets in the pcap.
    pub packets: u64,
    /// Size of the pcap file in bytes.
    pub bytes: u64,
    /// Packets not written because a limit was reached.
    pub not_written: u64,
    /// Datagrams too large for one IP packet (over 65,535 bytes), not written.
    pub oversize: u64,
    /// When the first packet over a limit was sent (µs of simulated time).
    pub limit_hit_at_us: Option<u64>,
    /// The limits in force.
    pub limits: Option<CaptureLimits>,
    /// Distinct flows started (TCP connects and UDP destinations, per sending host).
    pub flows: u64,
}

impl CaptureSummary {
    /// A one-line note when the pcap is incomplete, for the user.
    pub fn note(&self) -> Option<String> {
        let mut notes = Vec::new();
        if self.not_written > 0 {
            let limits = self.limits.unwrap_or_default();
            notes.push(format!(
                "the capture limit ({} packets, {} bytes) was reached at {:.3} s of simulated time: {} later packet(s) are not in the pcap",
                limits.max_packets,
                limits.max_bytes,
                self.limit_hit_at_us.unwrap_or(0) as f64 / 1e6,
                self.not_written
            ));
        }
        if self.oversize > 0 {
            notes.push(format!(
                "{} datagram(s) larger than one IP packet are not in the pcap",
                self.oversize
            ));
        }
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

/// A capture of the simulated traffic. Put one in
/// [`WorldSpec::capture`](crate::world::WorldSpec::capture), run the world, then read the
/// pcap with [`Capture::pcap`]. Clones share the same recording. Each run of a world starts it
/// afresh.
#[derive(Clone)]
pub struct Capture {
    shared: Arc<Mutex<Recorder>>,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("summary", &self.summary())
            .finish()
    }
}

impl Default for Capture {
    fn default() -> Self {
        Capture::new(CaptureLimits::default())
    }
}

impl Capture {
    /// A capture with these limits.
    pub fn new(limits: CaptureLimits) -> Self {
        Capture {
            shared: Arc::new(Mutex::new(Recorder::new(limits))),
        }
    }

    /// A capture that keeps no packets, only the flows (cheap: for learning which flows a
    /// client uses).
    pub fn flows_only() -> Self {
        Capture::new(CaptureLimits {
            max_packets: 0,
            max_bytes: 0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Recorder> {
        lock(&self.shared)
    }

    /// The pcap file, packets in time order (equal times in the order they were sent).
    pub fn pcap(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_pcap(&mut out)
            .expect("writing to a Vec does not fail");
        out
    }

    /// Writes the pcap file at `path`.
    pub fn save(&self, path: &std::path::Path) -> io::Result<()> {
        let mut file = io::BufWriter::new(std::fs::File::create(path)?);
        self.write_pcap(&mut file)?;
        file.flush()
    }

    /// Writes the pcap file to `out`.
    pub fn write_pcap(&self, out: impl Write) -> io::Result<()> {
        self.write_pcap_at(out, 0)
    }

    /// Calls `each(ts_us, packet, comment)` for every packet, in time order (equal times in
    /// the order they were sent).
    pub(crate) fn for_each_packet(
        &self,
        mut each: impl FnMut(u64, &[u8], Option<&'static str>) -> io::Result<()>,
    ) -> io::Result<()> {
        let recorder = self.lock();
        let mut order: Vec<&Entry> = recorder.index.iter().collect();
        order.sort_by_key(|e| e.ts_us);
        for entry in order {
            each(
                entry.ts_us,
                &recorder.buf[entry.start..entry.start + entry.len],
                entry.comment,
            )?;
        }
        Ok(())
    }

    /// Writes the pcap file to `out`, its timestamps `epoch_us` after the Unix epoch at the
    /// run's start (`--pcap-epoch`).
    pub fn write_pcap_at(&self, mut out: impl Write, epoch_us: u64) -> io::Result<()> {
        let recorder = self.lock();
        out.write_all(&file_header())?;
        let mut order: Vec<&Entry> = recorder.index.iter().collect();
        // Stable: packets sent at the same instant stay in the order they were sent.
        order.sort_by_key(|e| e.ts_us);
        for entry in order {
            let packet = &recorder.buf[entry.start..entry.start + entry.len];
            let mut header = [0u8; RECORD_HEADER_LEN];
            let ts_us = entry.ts_us.saturating_add(epoch_us);
            let secs = u32::try_from(ts_us / 1_000_000).unwrap_or(u32::MAX);
            let micros = (ts_us % 1_000_000) as u32;
            let len = packet.len() as u32;
            header[0..4].copy_from_slice(&secs.to_le_bytes());
            header[4..8].copy_from_slice(&micros.to_le_bytes());
            header[8..12].copy_from_slice(&len.to_le_bytes());
            header[12..16].copy_from_slice(&len.to_le_bytes());
            out.write_all(&header)?;
            out.write_all(packet)?;
        }
        Ok(())
    }

    /// What the capture holds.
    pub fn summary(&self) -> CaptureSummary {
        let r = self.lock();
        CaptureSummary {
            packets: r.index.len() as u64,
            bytes: r.file_bytes as u64,
            not_written: r.not_written,
            oversize: r.oversize,
            limit_hit_at_us: r.limit_hit_at_us,
            limits: Some(r.limits),
            flows: r.flows.len() as u64,
        }
    }

    /// The flows the hosts started, ordered by protocol, sender and destination.
    pub fn flows(&self) -> Vec<Flow> {
        self.lock()
            .flows
            .iter()
            .map(|((proto, from, to), s)| Flow {
                proto: *proto,
                from: *from,
                to: *to,
                packets: s.packets,
                count: s.count,
                first_us: s.first_us,
            })
            .collect()
    }
}

/// The capture of one run of a world: hands out capturing decorators for the hosts' networks.
/// [`Tap::start`] begins the run (clearing what an earlier run recorded), [`Tap::finish`]
/// ends it: what the hosts do while the world is torn down is not traffic.
#[derive(Clone, Default)]
pub struct Tap {
    sink: Option<Sink>,
}

thread_local! {
    /// The capture of [`record_worlds`], for worlds whose spec has none.
    static DEFAULT_CAPTURE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// Records every world run on this thread whose spec has no capture of its own into `capture`,
/// until the guard is dropped (the way `tracing` scopes a default subscriber). This is how
/// `cloudproxy run --pcap` captures scenarios however they build and run their worlds.
#[must_use = "recording stops when the guard is dropped"]
pub fn record_worlds(capture: &Capture) -> RecordGuard {
    let previous = DEFAULT_CAPTURE.with(|d| d.borrow_mut().replace(capture.clone()));
    RecordGuard { previous }
}

/// Ends [`record_worlds`] when dropped.
pub struct RecordGuard {
    previous: Option<Capture>,
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        DEFAULT_CAPTURE.with(|d| *d.borrow_mut() = previous);
    }
}

impl Tap {
    /// Starts recording into `capture` (or the one of [`record_worlds`]); a tap that records
    /// nothing when there is none.
    pub fn start(capture: Option<&Capture>) -> Tap {
        let capture = capture
            .cloned()
            .or_else(|| DEFAULT_CAPTURE.with(|d| d.borrow().clone()));
        Tap {
            sink: capture.map(|c| {
                let limits = c.lock().limits;
                *c.lock() = Recorder::new(limits);
                Sink(c.shared.clone())
            }),
        }
    }

    /// `net`, the network of the host at `host`, with everything it sends recorded (a plain
    /// pass-through when this tap records nothing).
    pub fn wrap<N: cloudproxy_node::net::Net>(
        &self,
        net: N,
        host: IpAddr,
    ) -> crate::net::Captured<N> {
        crate::net::Captured::new(net, self.sink.clone(), host)
    }

    /// Stops recording. Connects still pending (a firewall dropped their SYN) are recorded as
    /// the lone SYNs they are.
    pub fn finish(&self) {
        if let Some(sink) = &self.sink {
            let pending: Vec<u64> = sink.lock().pending.keys().copied().collect();
            for id in pending {
                sink.abandon_connect(id);
            }
            sink.lock().sealed = true;
        }
    }
}

fn lock(shared: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    // A panic while recording leaves a consistent recorder (every update is a push).
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// TCP flags of a synthesized segment.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

/// The recording end the decorators write into.
#[derive(Clone)]
pub(crate) struct Sink(Arc<Mutex<Recorder>>);

impl Sink {
    fn lock(&self) -> MutexGuard<'_, Recorder> {
        lock(&self.0)
    }

    /// Records a UDP datagram.
    pub(crate) fn udp(&self, ts_us: u64, from: SocketAddr, to: SocketAddr, payload: &[u8]) {
        let mut r = self.lock();
        if r.sealed {
            return;
        }
        r.flow(Proto::Udp, from.ip(), to, ts_us, payload.len() as u64);
        let (src, dst) = same_family(from, to);
        let builder = ip_builder(src.ip(), dst.ip()).udp(src.port(), dst.port());
        let size = builder.size(payload.len());
        r.push(ts_us, size, |buf| {
            builder.write_to_vec(buf, payload).is_ok()
        });
    }

    /// Records a UDP datagram that is no flow of the host's own (a synthesized DNS message:
    /// the flows are what `check-firewall` learns the client's paths from).
    pub(crate) fn udp_unflowed(
        &self,
        ts_us: u64,
        from: SocketAddr,
        to: SocketAddr,
        payload: &[u8],
    ) {
        let mut r = self.lock();
        if r.sealed {
            return;
        }
        let (src, dst) = same_family(from, to);
        let builder = ip_builder(src.ip(), dst.ip()).udp(src.port(), dst.port());
        let size = builder.size(payload.len());
        r.push(ts_us, size, |buf| {
            builder.write_to_vec(buf, payload).is_ok()
        });
    }

    /// Records a TCP segment.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tcp(
        &self,
        ts_us: u64,
        from: SocketAddr,
        to: SocketAddr,
        seq: u32,
        ack: u32,
        flags: Flags,
        payload: &[u8],
    ) {
        let mut r = self.lock();
        if r.sealed {
            return;
        }
        let (src, dst) = same_family(from, to);
        let mut header = TcpHeader::new(src.port(), dst.port(), seq, TCP_WINDOW);
        header.syn = flags.syn;
        header.fin = flags.fin;
        header.rst = flags.rst;
        header.psh = flags.psh;
        if flags.ack {
            header.ack = true;
            header.acknowledgment_number = ack;
        }
        if flags.syn {
            let mss = if src.is_ipv4() { 1460 } else { 1440 };
            let _ = header.set_options(&[TcpOptionElement::MaximumSegmentSize(mss)]);
        }
        let builder = ip_builder(src.ip(), dst.ip()).tcp_header(header);
        let size = builder.size(payload.len());
        r.push(ts_us, size, |buf| {
            builder.write_to_vec(buf, payload).is_ok()
        });
    }

    /// Counts a TCP connect attempt of `from` to `to` (`ok`: it succeeded).
    pub(crate) fn tcp_flow(&self, ts_us: u64, from: IpAddr, to: SocketAddr, ok: bool) {
        let mut r = self.lock();
        if !r.sealed {
            r.flow(Proto::Tcp, from, to, ts_us, u64::from(ok));
        }
    }

    /// Notes a connect of `host` to `to` begun at `ts_us`; returns its id.
    pub(crate) fn begin_connect(&self, ts_us: u64, host: IpAddr, to: SocketAddr) -> u64 {
        let mut r = self.lock();
        let id = r.next_pending;
        r.next_pending += 1;
        if r.pending.len() < MAX_FLOWS {
            r.pending.insert(id, (ts_us, host, to));
        }
        id
    }

    /// The connect `id` completed (it records its own packets).
    pub(crate) fn end_connect(&self, id: u64) {
        self.lock().pending.remove(&id);
    }

    /// The connect `id` failed or was given up: records its SYN, from a port the network never
    /// gave it, and returns that address (`None` when it was already recorded).
    pub(crate) fn abandon_connect(&self, id: u64) -> Option<SocketAddr> {
        let (ts_us, host, to) = self.lock().pending.remove(&id)?;
        let local = SocketAddr::new(host, self.synthetic_port(host));
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        self.tcp(ts_us, local, to, isn(local, to), 0, syn, &[]);
        self.comment_last("connect not answered: dropped (a firewall or a partition)");
        self.tcp_flow(ts_us, host, to, false);
        Some(local)
    }

    /// Comments the packet recorded last (pcapng writes it as the packet's comment).
    pub(crate) fn comment_last(&self, text: &'static str) {
        if let Some(entry) = self.lock().index.last_mut() {
            entry.comment = Some(text);
        }
    }

    /// A local port for a connect of `host` that never got one.
    pub(crate) fn synthetic_port(&self, host: IpAddr) -> u16 {
        let mut r = self.lock();
        let next = r
            .synthetic_ports
            .entry(host)
            .or_insert(*SYNTHETIC_PORTS.start());
        let port = *next;
        *next = if port == *SYNTHETIC_PORTS.end() {
            *SYNTHETIC_PORTS.start()
        } else {
            port + 1
        };
        port
    }
}

/// The initial sequence number of the direction `from` → `to` of a connection: a hash of the
/// endpoints, so that both ends agree without talking and runs are reproducible.
pub(crate) fn isn(from: SocketAddr, to: SocketAddr) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for addr in [from, to] {
        match addr.ip() {
            IpAddr::V4(ip) => eat(&ip.octets()),
            IpAddr::V6(ip) => eat(&ip.octets()),
        }
        eat(&addr.port().to_be_bytes());
    }
    // splitmix64's finalizer spreads the bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h as u32
}

/// Both addresses in one family: an IPv4 address meeting an IPv6 one is written IPv4-mapped.
fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |s: SocketAddr| match s.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), s.port()),
        IpAddr::V6(_) => s,
    };
    if a.is_ipv4() == b.is_ipv4() {
        (a, b)
    } else {
        (v6(a), v6(b))
    }
}

fn ip_builder(src: IpAddr, dst: IpAddr) -> PacketBuilderStep<etherparse::IpHeaders> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), TTL),
        (s, d) => PacketBuilder::ipv6(v6_octets(s), v6_octets(d), TTL),
    }
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // microsecond timestamps
    h[4..6].copy_from_slice(&2u16.to_le_bytes()); // version 2.4
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone 0, sigfigs 0
    h[16..20].copy_from_slice(&65_535u32.to_le_bytes()); // snaplen
    h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
    h
}

struct Entry {
    ts_us: u64,
    start: usize,
    len: usize,
    /// What the capture knows about the packet's fate (a refused or unanswered connect).
    comment: Option<&'static str>,
}

#[derive(Default)]
struct FlowStats {
    packets: u64,
    count: u64,
    first_us: u64,
}

struct Recorder {
    limits: CaptureLimits,
    sealed: bool,
    /// The packets, back to back; `index` says where each one is.
    buf: Vec<u8>,
    index: Vec<Entry>,
    file_bytes: usize,
    not_written: u64,
    oversize: u64,
    limit_hit_at_us: Option<u64>,
    flows: BTreeMap<(Proto, IpAddr, SocketAddr), FlowStats>,
    synthetic_ports: BTreeMap<IpAddr, u16>,
    /// Connects under way: (start, host, destination), by id.
    pending: BTreeMap<u64, (u64, IpAddr, SocketAddr)>,
    next_pending: u64,
}

impl Recorder {
    fn new(limits: CaptureLimits) -> Self {
        Recorder {
            limits,
            sealed: false,
            buf: Vec::new(),
            index: Vec::new(),
            file_bytes: FILE_HEADER_LEN,
            not_written: 0,
            oversize: 0,
            limit_hit_at_us: None,
            flows: BTreeMap::new(),
            synthetic_ports: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_pending: 0,
        }
    }

    fn flow(&mut self, proto: Proto, from: IpAddr, to: SocketAddr, ts_us: u64, count: u64) {
        let key = (proto, from, to);
        if !self.flows.contains_key(&key) && self.flows.len() >= MAX_FLOWS {
            return;
        }
        let stats = self.flows.entry(key).or_insert_with(|| FlowStats {
            first_us: ts_us,
            ..FlowStats::default()
        });
        stats.packets += 1;
        stats.count += count;
    }

    /// Appends one packet of `size` bytes written by `write`, if the limits allow it.
    fn push(&mut self, ts_us: u64, size: usize, write: impl FnOnce(&mut Vec<u8>) -> bool) {
        if size > usize::from(u16::MAX) {
            self.oversize += 1;
            return;
        }
        if self.index.len() >= self.limits.max_packets
            || self.file_bytes + RECORD_HEADER_LEN + size > self.limits.max_bytes
        {
            self.not_written += 1;
            self.limit_hit_at_us.get_or_insert(ts_us);
            return;
        }
        let start = self.buf.len();
        if !write(&mut self.buf) {
            self.buf.truncate(start);
            self.oversize += 1;
            return;
        }
        let len = self.buf.len() - start;
        self.file_bytes += RECORD_HEADER_LEN + len;
        self.index.push(Entry {
            ts_us,
            start,
            len,
            comment: None,
        });
    }
}

/// Replaces an unspecified address (a socket bound to `0.0.0.0` or `::`) by the host's.
pub(crate) fn on_host(addr: SocketAddr, host: IpAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(host, addr.port())
    } else {
        addr
    }
}

/// A [`Capture`] lives in a [`WorldSpec`](crate::world::WorldSpec), which may cross threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Capture>()
};

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn header_and_records_are_classic_pcap() {
        let capture = Capture::default();
        let tap = Tap::start(Some(&capture));
        let sink = tap.sink.clone().unwrap();
        sink.udp(
            1_500_000,
            addr("10.1.0.10:50000"),
            addr("120.92.18.162:4500"),
            b"hi",
        );
        let pcap = capture.pcap();
        assert_eq!(&pcap[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(pcap[20..24].try_into().unwrap()), 101);
        // One record: 1 s 500000 µs, 20 + 8 + 2 bytes.
        assert_eq!(u32::from_le_bytes(pcap[24..28].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_le_bytes(pcap[28..32].try_into().unwrap()),
            500_000
        );
        assert_eq!(u32::from_le_bytes(pcap[32..36].try_into().unwrap()), 30);
        assert_eq!(pcap.len(), 24 + 16 + 30);
        assert_eq!(capture.summary().packets, 1);
        tap.finish();
        sink.udp(2, addr("10.1.0.10:1"), addr("10.1.0.11:2"), b"late");
        assert_eq!(capture.summary().packets, 1, "nothing after finish");
    }

    #[test]
    fn limits_count_what_they_leave_out() {
        let capture = Capture::new(CaptureLimits {
            max_packets: 3,
            max_bytes: 1 << 20,
        });
        let tap = Tap::start(Some(&capture));
        let sink = tap.sink.clone().unwrap();
        for i in 0..5 {
            sink.udp(i, addr("10.1.0.10:1"), addr("10.1.0.11:2"), b"x");
        }
        let s = capture.summary();
        assert_eq!(
            (s.packets, s.not_written, s.limit_hit_at_us),
            (3, 2, Some(3))
        );
        assert!(
            s.note().unwrap().contains("2 later packet(s)"),
            "{:?}",
            s.note()
        );
        // A new run starts afresh.
        Tap::start(Some(&capture));
        assert_eq!(
            capture.summary(),
            CaptureSummary {
                limits: s.limits,
                bytes: 24,
                ..Default::default()
            }
        );
    }

    #[test]
    fn mixed_families_are_written_as_ipv6_and_late_packets_sort_by_time() {
        let capture = Capture::default();
        let sink = Tap::start(Some(&capture)).sink.unwrap();
        sink.udp(20, addr("10.1.0.10:1"), addr("[2001:db8::1]:2"), b"x");
        sink.tcp(
            10,
            addr("10.1.0.10:3"),
            addr("10.1.0.11:4"),
            7,
            0,
            Flags {
                syn: true,
                ..Flags::default()
            },
            b"",
        );
        let pcap = capture.pcap();
        // First record is the TCP SYN (time 10): IPv4.
        assert_eq!(pcap[24 + 16] >> 4, 4);
        let second = 24 + 16 + (20 + 24) + 16;
        assert_eq!(pcap[second] >> 4, 6);
        assert_ne!(
            isn(addr("1.1.1.1:1"), addr("2.2.2.2:2")),
            isn(addr("2.2.2.2:2"), addr("1.1.1.1:1"))
        );
    }
}
