//! What the load generator puts in a media payload, so that every datagram that comes back
//! says who sent it, when, and in which order.
//!
//! A **probe** is `kind u8 | client u32 | seq u32 | sent_us u64 | filler`, big-endian, padded
//! to the requested payload size with a filler derived from `seq` (so that a corrupted payload
//! is caught). Kinds: `H` (warm-up hello, not counted), `P` (probe), `R` (a partner's
//! reflection of a probe, in edge mode).
//!
//! Against `cloudproxy edge`, the payload must be the simulated application's media packet
//! (`sim/src/app.rs`: `uid u32 | seq u32 | fnv1a u32 | body`, the edge drops anything whose
//! checksum is wrong), so the probe travels as its body: [`edge_packet`] and [`read_edge_packet`]
//! are a second implementation of that format (this crate does not depend on the simulation;
//! the end-to-end test against a real edge proves both agree).

/// Probe header length: kind, client, seq, sent_us.
pub const PROBE_HEADER_LEN: usize = 1 + 4 + 4 + 8;
/// The simulated application's media header: uid, seq, checksum.
pub const EDGE_HEADER_LEN: usize = 12;

/// What a probe is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Warm-up: opens the media path, not counted.
    Hello,
    /// A numbered probe from `client`.
    Probe,
    /// A partner's reflection of `client`'s probe.
    Reflection,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Hello => b'H',
            Kind::Probe => b'P',
            Kind::Reflection => b'R',
        }
    }

    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            b'H' => Some(Kind::Hello),
            b'P' => Some(Kind::Probe),
            b'R' => Some(Kind::Reflection),
            _ => None,
        }
    }
}

/// A probe's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// What it is.
    pub kind: Kind,
    /// The client whose probe it is (the original sender, also in a reflection).
    pub client: u32,
    /// Its sequence number in that client's stream.
    pub seq: u32,
    /// When it was sent, microseconds since the run's start (the sender's clock).
    pub sent_us: u64,
}

fn filler(seq: u32, i: usize) -> u8 {
    (seq as u8).wrapping_add(i as u8).wrapping_mul(31)
}

/// Writes `probe` padded to `len` bytes (at least [`PROBE_HEADER_LEN`]) into `out`.
pub fn write_probe(probe: &Probe, len: usize, out: &mut Vec<u8>) {
    out.push(probe.kind.byte());
    out.extend_from_slice(&probe.client.to_be_bytes());
    out.extend_from_slice(&probe.seq.to_be_bytes());
    out.extend_from_slice(&probe.sent_us.to_be_bytes());
    let pad = len.saturating_sub(PROBE_HEADER_LEN);
    out.extend((0..pad).map(|i| filler(probe.seq, i)));
}

/// Reads a probe; `None` when it is too short, of an unknown kind, or its filler is corrupt.
pub fn read_probe(bytes: &[u8]) -> Option<Probe> {
    let header = bytes.get(..PROBE_HEADER_LEN)?;
    let kind = Kind::from_byte(header[0])?;
    let client = u32::from_be_bytes(header[1..5].try_into().ok()?);
    let seq = u32::from_be_bytes(header[5..9].try_into().ok()?);
    let sent_us = u64::from_be_bytes(header[9..17].try_into().ok()?);
    let intact = bytes[PROBE_HEADER_LEN..]
        .iter()
        .enumerate()
        .all(|(i, b)| *b == filler(seq, i));
    intact.then_some(Probe {
        kind,
        client,
        seq,
        sent_us,
    })
}

/// FNV-1a, 32 bits, over several parts.
fn fnv1a(parts: &[&[u8]]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for part in parts {
        for byte in *part {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    hash
}

/// The simulated application's media packet: `uid | seq | fnv1a(uid|seq|body) | body`.
pub fn edge_packet(uid: u32, seq: u32, body: &[u8], out: &mut Vec<u8>) {
    let sum = fnv1a(&[&uid.to_be_bytes(), &seq.to_be_bytes(), body]);
    out.extend_from_slice(&uid.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&sum.to_be_bytes());
    out.extend_from_slice(body);
}

/// Reads a media packet: `(uid, body)` when its checksum holds.
pub fn read_edge_packet(packet: &[u8]) -> Option<(u32, &[u8])> {
    let header = packet.get(..EDGE_HEADER_LEN)?;
    let body = &packet[EDGE_HEADER_LEN..];
    let sum = u32::from_be_bytes(header[8..12].try_into().ok()?);
    (fnv1a(&[&header[..4], &header[4..8], body]) == sum).then(|| {
        (
            u32::from_be_bytes([header[0], header[1], header[2], header[3]]),
            body,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_round_trip_and_catch_corruption() {
        let probe = Probe {
            kind: Kind::Probe,
            client: 7,
            seq: 42,
            sent_us: 123_456,
        };
        let mut bytes = Vec::new();
        write_probe(&probe, 1200, &mut bytes);
        assert_eq!(bytes.len(), 1200);
        assert_eq!(read_probe(&bytes), Some(probe));
        bytes[600] ^= 1;
        assert_eq!(read_probe(&bytes), None);
        assert_eq!(read_probe(&bytes[..10]), None);
    }

    #[test]
    fn edge_packets_match_the_simulated_application() {
        // The example of sim/src/app.rs: uid 7, seq 42, "hello".
        let mut packet = Vec::new();
        edge_packet(7, 42, b"hello", &mut packet);
        assert_eq!(&packet[..8], &[0, 0, 0, 7, 0, 0, 0, 42]);
        assert_eq!(read_edge_packet(&packet), Some((7, &b"hello"[..])));
        packet[14] ^= 1;
        assert_eq!(read_edge_packet(&packet), None);
    }
}
