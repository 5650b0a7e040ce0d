//! TLS on 443 in the simulated world (**beyond the seed**, docs/protocol.md §13): the
//! scenarios that use 443 reproduce their trace for a seed, and what crosses the network on
//! 443 is TLS records, not the protocol's frames.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use cloudproxy_sim::pcap::{Capture, CaptureLimits};
use cloudproxy_sim::scenario::file::ScenarioFile;
use cloudproxy_sim::scenario::{find, Scenario};
use cloudproxy_sim::world::run_world;
use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
use pcap_file::pcap::PcapReader;

/// The protocol's magic (docs/protocol.md §3): every frame of it starts so.
const MAGIC: [u8; 2] = [0xC1, 0x0D];

/// TLS record content types (RFC 8446 §5.1).
const HANDSHAKE: u8 = 0x16;
const APPLICATION_DATA: u8 = 0x17;
const ALERT: u8 = 0x15;
const CHANGE_CIPHER_SPEC: u8 = 0x14;

#[test]
fn the_tls_scenarios_give_the_same_trace_for_the_same_seed() {
    for name in ["force-tcp-443", "automatic-fallback"] {
        let scenario = find(name).unwrap();
        let (a, b) = (scenario.run(3), scenario.run(3));
        assert!(
            a.passed(),
            "{name}: {:?}",
            a.failed_checks().collect::<Vec<_>>()
        );
        assert_eq!(
            (a.outcome.trace.dropped(), b.outcome.trace.dropped()),
            (0, 0)
        );
        assert_eq!(
            a.outcome.trace.lines(),
            b.outcome.trace.lines(),
            "{name}: the same seed must give the same trace, TLS included"
        );
        let c = scenario.run(4);
        assert_ne!(a.outcome.trace.hash(), c.outcome.trace.hash(), "{name}");
    }
}

/// Each TCP direction's bytes, in order, by (from, to).
fn tcp_streams(pcap: &[u8]) -> BTreeMap<(SocketAddr, SocketAddr), Vec<u8>> {
    let mut reader = PcapReader::new(pcap).expect("a pcap header");
    let mut streams: BTreeMap<(SocketAddr, SocketAddr), Vec<u8>> = BTreeMap::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("a pcap record");
        let headers = PacketHeaders::from_ip_slice(&packet.data).expect("an IP packet");
        let (Some(NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Tcp(tcp))) =
            (&headers.net, &headers.transport)
        else {
            continue;
        };
        let from = SocketAddr::new(IpAddr::from(ip.source), tcp.source_port);
        let to = SocketAddr::new(IpAddr::from(ip.destination), tcp.destination_port);
        streams
            .entry((from, to))
            .or_default()
            .extend_from_slice(headers.payload.slice());
    }
    streams
}

/// The content types of a byte stream read as TLS records; panics on anything that is not a
/// well-formed TLS 1.3 record (RFC 8446 §5: type, legacy version 3.1 or 3.3, length at most
/// 2^14 + 256). A last record cut short by the end of the run is allowed.
fn record_types(stream: &[u8], what: &str) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = stream;
    while rest.len() >= 5 {
        let (kind, version) = (rest[0], [rest[1], rest[2]]);
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        assert!(
            [HANDSHAKE, APPLICATION_DATA, ALERT, CHANGE_CIPHER_SPEC].contains(&kind),
            "{what}: byte {} is not a TLS record type: {kind:#04x}",
            stream.len() - rest.len()
        );
        assert!(
            version == [3, 1] || version == [3, 3],
            "{what}: version {version:?}"
        );
        assert!(len <= 16_384 + 256, "{what}: record of {len} bytes");
        types.push(kind);
        rest = &rest[(5 + len).min(rest.len())..];
    }
    types
}

#[test]
fn the_pcap_of_force_tcp_443_shows_tls_records_on_443_not_the_protocols_frames() {
    let mut spec = find("force-tcp-443").unwrap().world(1);
    let capture = Capture::new(CaptureLimits::default());
    spec.capture = Some(capture.clone());
    let outcome = run_world(&spec);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_tls_on_443(&capture);
}

/// The automatic ladder's last step (setCloudProxy(automatic): direct, then the proxy's
/// standard ports, then TCP 443) behind a bank whose firewall opens only TCP 443.
const AUTOMATIC_443: &str = r#"
name = "automatic-443"
proves = "automatic mode behind a firewall that opens only TCP 443 ends on TLS 443"
duration_s = 20
ticket_lifetime_s = 120

[[enterprise]]
name = "bank"
host = "10.1.0.10"
policy = "tcp-443-only"

[[enterprise.client]]
name = "alice"
uid = 1
channel = "room"
params = []
join_s = 0.100
media_pps = 50
signalling_every_s = 1
cloud_proxy = "automatic"

[[enterprise]]
name = "hospital"
host = "10.2.0.10"
policy = "seed"

[[enterprise.client]]
name = "bob"
uid = 2
channel = "room"
params = ['{"rtc.enable_proxy":true}']
join_s = 0.100
media_pps = 50
signalling_every_s = 1

[[check]]
call = ["alice", "bob"]
min_packets = 200

[[check]]
falls_back = "alice"
probe_ms = 1000

[[check]]
relay_port = "alice"
port = 443
"#;

#[test]
fn the_automatic_ladder_ends_on_tls_443_behind_a_firewall_that_opens_only_tcp_443() {
    let file = ScenarioFile::parse(AUTOMATIC_443, Path::new("automatic-443.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let scenario = Scenario::from_file(file);
    for seed in [1, 2] {
        let run = scenario.run(seed);
        assert!(
            run.passed(),
            "seed {seed}: {:?}",
            run.failed_checks().collect::<Vec<_>>()
        );
    }
    let mut spec = scenario.world(1);
    let capture = Capture::new(CaptureLimits::default());
    spec.capture = Some(capture.clone());
    let outcome = run_world(&spec);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_tls_on_443(&capture);
}

/// What crossed the network on 443 in `capture`: TLS records both ways, on at least one
/// access-point connection and two relay connections (tunnel, media channel), with the calls'
/// media inside (many kilobytes of application data), never the protocol in the clear.
fn assert_tls_on_443(capture: &Capture) {
    let streams = tcp_streams(&capture.pcap());
    let on_443: Vec<_> = streams
        .iter()
        .filter(|((from, to), bytes)| (from.port() == 443 || to.port() == 443) && !bytes.is_empty())
        .collect();
    // The force-TCP client: its access point, and its relay twice (tunnel, media channel).
    let to_relays = on_443
        .iter()
        .filter(|((_, to), _)| to.port() == 443 && to.ip().to_string().starts_with("120.92."))
        .count();
    let to_aps = on_443
        .iter()
        .filter(|((_, to), _)| to.port() == 443 && !to.ip().to_string().starts_with("120.92."))
        .count();
    let keys: Vec<_> = on_443.iter().map(|(k, v)| (k, v.len())).collect();
    assert!(
        to_relays >= 2 && to_aps >= 1,
        "{to_relays} relay, {to_aps} AP streams on 443: {keys:?}"
    );
    // Each direction of each connection: the server's answers are TLS too.
    assert_eq!(on_443.len(), 2 * (to_relays + to_aps), "{keys:?}");
    let mut application_bytes = 0;
    for ((from, to), bytes) in &on_443 {
        let what = format!("{from} -> {to}");
        assert_ne!(bytes[..2], MAGIC, "{what}: the protocol in the clear");
        let types = record_types(bytes, &what);
        // Every stream opens with a handshake record (ClientHello, or ServerHello).
        assert_eq!(types.first(), Some(&HANDSHAKE), "{what}");
        if types.contains(&APPLICATION_DATA) {
            application_bytes += bytes.len();
        }
    }
    // The calls' media went through the TLS tunnels: many kilobytes of application data.
    assert!(application_bytes > 50_000, "{application_bytes} bytes");
}
