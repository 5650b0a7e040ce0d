//! DNS in the pcap: every name an enterprise client resolves appears as the query its host
//! sends to the enterprise resolver and the resolver's answer, as real DNS messages (RFC 1035)
//! over UDP port 53, so Wireshark shows `ap-proxy.agora.io` resolving (or not) where the SDK
//! asked. The simulation resolves at the `Net` seam, without packets: these are synthesized
//! from the query and its result, and change nothing in the run.
//!
//! - the resolver is the enterprise's `.53` (10.1.0.53 for 10.1.0.10), a host the pcap alone
//!   shows (the world's resolver is a table);
//! - an answer: `NOERROR` with one A (or AAAA) record per address, TTL 60;
//! - external names blocked by the policy: `REFUSED`; an unknown name: `NXDOMAIN`;
//! - a DNS outage: the query only, never answered (the resolver is not answering).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::pcap::Sink;

/// The resolver's port.
pub const DNS_PORT: u16 = 53;

/// The enterprise resolver the host at `host` asks: its network's `.53`.
pub fn resolver_of(host: IpAddr) -> IpAddr {
    match host {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 53))
        }
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[7] = 0x53;
            IpAddr::V6(segments.into())
        }
    }
}

/// A deterministic message id for `name` asked at `ts_us`.
fn message_id(name: &str, ts_us: u64) -> u16 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes().chain(ts_us.to_le_bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    (hash ^ (hash >> 16) ^ (hash >> 32) ^ (hash >> 48)) as u16
}

/// The question section of `name` (type A, class IN); `None` for a name DNS cannot carry.
fn question(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() > 255 {
        return None;
    }
    out.extend_from_slice(&[0, 1, 0, 1]);
    Some(out)
}

/// A DNS message: the header (`flags`, one question, `answers` records) and its sections.
fn message(id: u16, flags: u16, question: &[u8], answers: &[IpAddr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + question.len() + answers.len() * 28);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for addr in answers {
        // The name: a pointer to the question's (offset 12).
        out.extend_from_slice(&[0xC0, 0x0C]);
        let (rtype, data): (u16, Vec<u8>) = match addr {
            IpAddr::V4(a) => (1, a.octets().to_vec()),
            IpAddr::V6(a) => (28, a.octets().to_vec()),
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}

/// Records the query of `name` by `host` at `asked_us` and the answer at `answered_us`.
pub(crate) fn record(
    sink: &Sink,
    host: IpAddr,
    asked_us: u64,
    answered_us: u64,
    name: &str,
    result: &Result<Vec<IpAddr>, String>,
) {
    let Some(question) = question(name) else {
        return;
    };
    let client = SocketAddr::new(host, sink.synthetic_port(host));
    let resolver = SocketAddr::new(resolver_of(host), DNS_PORT);
    let id = message_id(name, asked_us);
    // Query: standard, recursion desired.
    sink.udp_unflowed(
        asked_us,
        client,
        resolver,
        &message(id, 0x0100, &question, &[]),
    );
    let (rcode, answers): (u16, &[IpAddr]) = match result {
        Ok(addrs) => (0, addrs),
        Err(why) if why.contains("not answering") => return,
        Err(why) if why.contains("NXDOMAIN") => (3, &[]),
        Err(_) => (5, &[]),
    };
    // Response, recursion desired and available.
    let flags = 0x8180 | rcode;
    sink.udp_unflowed(
        answered_us,
        resolver,
        client,
        &message(id, flags, &question, answers),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_rfc_1035() {
        let q = question("ap-proxy.agora.io").unwrap();
        assert_eq!(&q[..9], b"\x08ap-proxy");
        let m = message(0x1234, 0x8180, &q, &["47.74.211.17".parse().unwrap()]);
        assert_eq!(&m[..12], &[0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
        assert_eq!(&m[m.len() - 4..], &[47, 74, 211, 17]);
        assert_eq!(m.len(), 12 + q.len() + 16);
        assert!(question("a..b").is_none());
        assert_eq!(
            resolver_of("10.2.0.10".parse().unwrap()).to_string(),
            "10.2.0.53"
        );
        assert_eq!(message_id("x", 5), message_id("x", 5));
    }
}
