//! The pcap of the simulated traffic, read back: in-process with the `pcap-file` and
//! `etherparse` crates (always), and with tshark (which must be installed: this test fails,
//! with the install command, when it is not).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use cloudproxy_node::nodes::client::ClientSpec;
use cloudproxy_sim::pcap::{Capture, CaptureLimits};
use cloudproxy_sim::scenario::find;
use cloudproxy_sim::world::{run_world, WorldOutcome, WorldSpec, AP_IPS};
use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;

const TSHARK_INSTALL: &str = "DEBIAN_FRONTEND=noninteractive apt-get install -y tshark";

fn captured(scenario: &str, seed: u64, limits: CaptureLimits) -> (Capture, WorldOutcome) {
    let mut spec = find(scenario)
        .expect("a scenario of the catalogue")
        .world(seed);
    let capture = Capture::new(limits);
    spec.capture = Some(capture.clone());
    let outcome = run_world(&spec);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    (capture, outcome)
}

/// One packet of the pcap, decoded.
#[derive(Debug)]
struct Packet {
    at: Duration,
    src: SocketAddr,
    dst: SocketAddr,
    udp: bool,
    syn: bool,
    ack: Option<u32>,
    fin: bool,
    rst: bool,
    seq: u32,
    len: usize,
}

/// The one's-complement sum of the Internet checksum, folded.
fn ones_sum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Reads a pcap with `pcap-file`, decodes every packet with `etherparse`, and checks the
/// checksums (computed here, independently of the writer).
fn decode(pcap: &[u8]) -> Vec<Packet> {
    let mut reader = PcapReader::new(pcap).expect("a pcap header");
    let header = reader.header();
    assert_eq!(header.datalink, DataLink::RAW);
    assert_eq!((header.version_major, header.version_minor), (2, 4));
    let mut packets = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("a pcap record");
        let data = &packet.data[..];
        assert_eq!(packet.orig_len as usize, data.len());
        let headers = PacketHeaders::from_ip_slice(data).expect("an IP packet");
        let Some(NetHeaders::Ipv4(ip, _)) = &headers.net else {
            panic!("the world is IPv4: {:?}", headers.net)
        };
        assert_eq!(usize::from(ip.total_len), data.len());
        let ihl = ip.header_len();
        assert_eq!(ones_sum(&[&data[..ihl]]), 0xffff, "IPv4 header checksum");
        let segment = &data[ihl..];
        let pseudo = [
            &ip.source[..],
            &ip.destination[..],
            &[0, ip.protocol.0],
            &(segment.len() as u16).to_be_bytes(),
        ];
        let sum = ones_sum(&[pseudo[0], pseudo[1], pseudo[2], pseudo[3], segment]);
        assert_eq!(sum, 0xffff, "transport checksum of {:?}", headers.transport);
        let (src_ip, dst_ip) = (IpAddr::from(ip.source), IpAddr::from(ip.destination));
        let len = headers.payload.slice().len();
        let decoded = match headers.transport.expect("UDP or TCP") {
            TransportHeader::Udp(u) => Packet {
                at: packet.timestamp,
                src: SocketAddr::new(src_ip, u.source_port),
                dst: SocketAddr::new(dst_ip, u.destination_port),
                udp: true,
                syn: false,
                ack: None,
                fin: false,
                rst: false,
                seq: 0,
                len,
            },
            TransportHeader::Tcp(t) => Packet {
                at: packet.timestamp,
                src: SocketAddr::new(src_ip, t.source_port),
                dst: SocketAddr::new(dst_ip, t.destination_port),
                udp: false,
                syn: t.syn,
                ack: t.ack.then_some(t.acknowledgment_number),
                fin: t.fin,
                rst: t.rst,
                seq: t.sequence_number,
                len,
            },
            other => panic!("unexpected transport {other:?}"),
        };
        packets.push(decoded);
    }
    packets
}

fn relay(addr: &SocketAddr) -> bool {
    addr.ip().to_string().starts_with("120.92.")
}

/// Sequence numbers follow each direction's byte stream; acknowledgements never run ahead of
/// what the other side has sent.
fn check_tcp_streams(packets: &[Packet]) -> usize {
    // (src, dst) -> next sequence number
    let mut next: BTreeMap<(SocketAddr, SocketAddr), u32> = BTreeMap::new();
    let mut segments = 0;
    for p in packets.iter().filter(|p| !p.udp) {
        let key = (p.src, p.dst);
        if p.rst {
            continue;
        }
        if p.syn {
            next.insert(key, p.seq.wrapping_add(1));
        } else {
            let expected = next.get(&key).copied();
            assert_eq!(Some(p.seq), expected, "sequence of {p:?}");
            let advance = p.len as u32 + u32::from(p.fin);
            next.insert(key, p.seq.wrapping_add(advance));
            segments += 1;
        }
        if let (Some(ack), Some(peer_next)) = (p.ack, next.get(&(p.dst, p.src))) {
            assert!(
                (peer_next.wrapping_sub(ack) as i32) >= 0,
                "{p:?} acknowledges bytes its peer has not sent yet (peer at {peer_next})"
            );
        }
    }
    segments
}

#[test]
fn the_pcap_holds_the_calls_packets_with_valid_headers_and_streams() {
    let (capture, outcome) = captured("proxy-default", 1, CaptureLimits::default());
    let bytes = capture.pcap();
    let packets = decode(&bytes);
    let summary = capture.summary();
    assert_eq!(summary.packets as usize, packets.len());
    assert_eq!(summary.bytes as usize, bytes.len());
    assert_eq!(summary.note(), None);
    // Time is simulated time: in order, starting at the first join (100 ms), within the run.
    assert!(packets.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(
        packets[0].at >= Duration::from_millis(100),
        "{:?}",
        packets[0]
    );
    assert!(packets.last().unwrap().at <= outcome.sim_time);
    // Media over UDP to the relays' range, as many datagrams as alice sent media (and more:
    // the relay handshake and keep-alives).
    let alice: IpAddr = "10.1.0.10".parse().unwrap();
    let media_to_relay = packets
        .iter()
        .filter(|p| {
            p.udp && p.src.ip() == alice && relay(&p.dst) && (4500..=4650).contains(&p.dst.port())
        })
        .count() as u64;
    let sent = outcome.clients["alice"].media_sent;
    assert!(
        sent > 400 && media_to_relay >= sent,
        "{media_to_relay} datagrams, {sent} media"
    );
    // Signalling through a TCP tunnel to a relay's port 4000: handshake, then data.
    let syn = packets
        .iter()
        .find(|p| p.syn && p.ack.is_none() && p.src.ip() == alice && p.dst.port() == 4000)
        .expect("alice's SYN to a relay's port 4000");
    assert!(packets
        .iter()
        .any(|p| p.syn && p.ack.is_some() && p.src == syn.dst && p.dst == syn.src));
    assert!(packets
        .iter()
        .any(|p| !p.udp && p.src == syn.src && p.dst == syn.dst && p.len > 0));
    // The relays pass media on to the edge and the edge back.
    assert!(packets
        .iter()
        .any(|p| p.udp && relay(&p.src) && p.dst.port() == 5001));
    assert!(check_tcp_streams(&packets) > 50);
}

#[test]
fn denied_refused_and_crashed_connections_look_like_tcp() {
    // direct-blocked: the firewall drops the SYNs to the edge: lone SYNs, never answered.
    let (capture, _) = captured("direct-blocked", 1, CaptureLimits::default());
    let packets = decode(&capture.pcap());
    let syns: Vec<&Packet> = packets
        .iter()
        .filter(|p| p.syn && p.dst.port() == 5000)
        .collect();
    assert!(!syns.is_empty());
    assert!(
        !packets.iter().any(|p| p.src.port() == 5000),
        "the edge never answers"
    );
    // ap-failover: the crashed access points never answer.
    let (capture, _) = captured("ap-failover", 1, CaptureLimits::default());
    let packets = decode(&capture.pcap());
    let dead: IpAddr = AP_IPS[0].parse().unwrap();
    assert!(packets.iter().any(|p| p.syn && p.dst.ip() == dead));
    assert!(!packets.iter().any(|p| p.src.ip() == dead));
    check_tcp_streams(&packets);
    // A firewall that rejects: SYN, then RST (acknowledging the SYN) at once.
    let packets = decode(&rejecting_world().pcap());
    let syn = packets.iter().find(|p| p.syn).expect("a SYN");
    let rst = packets.iter().find(|p| p.rst).expect("a RST");
    assert_eq!((rst.src, rst.dst), (syn.dst, syn.src));
    assert_eq!(rst.ack, Some(syn.seq.wrapping_add(1)));
    assert_eq!(rst.at, syn.at, "refused at once");
    // relay-crash: streams close with FIN (the simulated stack's behaviour) and the sequence
    // numbers stay consistent across the reconnect.
    let (capture, _) = captured("relay-crash", 1, CaptureLimits::default());
    let packets = decode(&capture.pcap());
    assert!(packets.iter().any(|p| p.fin));
    check_tcp_streams(&packets);
}

/// A client behind a firewall that rejects everything, for 3 s.
fn rejecting_world() -> Capture {
    let mut spec = WorldSpec::new(1, Duration::from_secs(3));
    let e = spec.enterprise("bank", "10.1.0.10", "default = \"reject\"".parse().unwrap());
    spec.enterprises[e].clients.push(ClientSpec::new(
        "alice",
        1,
        "room",
        &[r#"{"rtc.enable_proxy":true}"#],
        Duration::from_millis(100),
    ));
    let capture = Capture::default();
    spec.capture = Some(capture.clone());
    run_world(&spec);
    capture
}

#[test]
fn the_same_seed_gives_the_same_pcap_bytes() {
    let a = captured("udp-blocked", 3, CaptureLimits::default())
        .0
        .pcap();
    let b = captured("udp-blocked", 3, CaptureLimits::default())
        .0
        .pcap();
    assert!(a == b, "two runs with seed 3 differ");
    let c = captured("udp-blocked", 4, CaptureLimits::default())
        .0
        .pcap();
    assert!(a != c, "seeds 3 and 4 gave the same pcap");
    // The fallback is visible: UDP to the relays (dropped by the firewall), then TCP media.
    let packets = decode(&a);
    assert!(packets
        .iter()
        .any(|p| p.udp && relay(&p.dst) && p.src.ip().to_string() == "10.1.0.10"));
    assert!(packets
        .iter()
        .any(|p| !p.udp && relay(&p.dst) && p.dst.port() == 4000 && p.len > 200));
}

#[test]
fn the_capture_is_bounded_and_says_so() {
    let limits = CaptureLimits {
        max_packets: 500,
        max_bytes: 1 << 30,
    };
    let (capture, _) = captured("proxy-default", 1, limits);
    let summary = capture.summary();
    assert_eq!(summary.packets, 500);
    assert!(summary.not_written > 1000, "{summary:?}");
    let note = summary.note().expect("a note");
    assert!(
        note.contains("500 packets") && note.contains("not in the pcap"),
        "{note}"
    );
    assert_eq!(decode(&capture.pcap()).len(), 500);
    let limits = CaptureLimits {
        max_packets: usize::MAX,
        max_bytes: 100_000,
    };
    let (capture, _) = captured("proxy-default", 1, limits);
    let pcap = capture.pcap();
    assert!(
        pcap.len() <= 100_000 && pcap.len() > 90_000,
        "{}",
        pcap.len()
    );
    decode(&pcap);
}

fn tshark(args: &[&str]) -> String {
    let output = match Command::new("tshark").args(args).output() {
        Ok(output) => output,
        Err(e) => panic!(
            "tshark is needed for this test and could not run ({e}); install it: {TSHARK_INSTALL}"
        ),
    };
    assert!(
        output.status.success(),
        "tshark {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn tshark_reads_the_pcap_of_cloudproxy_run() {
    let dir = env!("CARGO_TARGET_TMPDIR");
    for scenario in ["udp-blocked", "relay-crash"] {
        let path = format!("{dir}/cloudproxy-{scenario}.pcap");
        let _ = std::fs::remove_file(&path);
        let run = Command::new(env!("CARGO_BIN_EXE_cloudproxy"))
            .args(["run", scenario, "--seed", "1", "--pcap", &path])
            .output()
            .expect("run cloudproxy");
        assert_eq!(
            run.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(String::from_utf8_lossy(&run.stderr).contains(&format!("pcap {path} (")));
        // What tshark sees: UDP to the relays' media ports, TCP to their port 4000.
        let fields = tshark(&[
            "-r",
            &path,
            "-T",
            "fields",
            "-E",
            "separator=,",
            "-e",
            "ip.dst",
            "-e",
            "udp.dstport",
            "-e",
            "tcp.dstport",
        ]);
        let rows: Vec<Vec<&str>> = fields.lines().map(|l| l.split(',').collect()).collect();
        assert!(rows.len() > 1000, "{scenario}: {} packets", rows.len());
        assert!(
            rows.iter().any(|r| r[0].starts_with("120.92.")
                && r[1]
                    .parse::<u16>()
                    .is_ok_and(|p| (4500..=4650).contains(&p))),
            "{scenario}: no UDP to 120.92.x.x:45xx"
        );
        assert!(
            rows.iter()
                .any(|r| r[0].starts_with("120.92.") && r[2] == "4000"),
            "{scenario}: no TCP to :4000"
        );
        let problems = tshark_problems(&path);
        assert!(problems.is_empty(), "{scenario}: tshark found {problems:?}");
    }
    // Refused connects: RST is the one warning allowed.
    let path = format!("{dir}/cloudproxy-reject.pcap");
    std::fs::write(&path, rejecting_world().pcap()).unwrap();
    assert_eq!(tshark_problems(&path), Vec::<String>::new());
}

/// tshark's expert warnings and errors about a pcap, with every checksum checked: malformed
/// packets, bad checksums, TCP analysis (unseen segments, retransmissions, ...). A reset
/// ("Connection reset (RST)", a refused connect) is not a problem.
fn tshark_problems(path: &str) -> Vec<String> {
    let report = tshark(&[
        "-r",
        path,
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-q",
        "-z",
        "expert,warn",
    ]);
    report
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .filter(|l| !l.trim_end().ends_with("Connection reset (RST)"))
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn tshark_flags_a_broken_pcap() {
    // The problem filter of the test above does catch a bad checksum.
    let (capture, _) = captured(
        "direct-open",
        1,
        CaptureLimits {
            max_packets: 50,
            max_bytes: 1 << 20,
        },
    );
    let mut pcap = capture.pcap();
    let last = pcap.len() - 1;
    pcap[last] ^= 0xff; // the last byte of the last packet's payload
    let path = format!("{}/cloudproxy-broken.pcap", env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(&path, &pcap).unwrap();
    let problems = tshark_problems(&path);
    assert!(
        problems.iter().any(|p| p.contains("checksum")),
        "{problems:?}"
    );
}
