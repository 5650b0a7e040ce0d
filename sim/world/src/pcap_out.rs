//! How a capture is written: classic pcap or pcapng, and from which date.
//!
//! - `--pcap-epoch`: the simulated clock starts at 0; Wireshark then shows 1970-01-01. The
//!   epoch shifts every timestamp to start at a given date, written as RFC 3339
//!   (`2026-12-01T09:30:00Z`, `2026-12-01T10:30:00.250+01:00`) or Unix seconds
//!   (`1764581400`, `1764581400.25`).
//! - pcapng (a file named `*.pcapng`, or [`Format::Pcapng`]): one interface per simulated host
//!   (named by its address: each packet is on its sender's interface), and a comment on every
//!   packet whose fate the capture knows: a connect nobody answered (dropped by a firewall or
//!   a partition), a connect refused (rejected).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;

use crate::pcap::{Capture, LINKTYPE_RAW};

/// The file format of a capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap, one link (raw IP).
    #[default]
    Pcap,
    /// pcapng, one interface per host, comments on dropped and rejected packets.
    Pcapng,
}

impl Format {
    /// The format a path's extension names: pcapng for `.pcapng`, else pcap.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pcapng") => Format::Pcapng,
            _ => Format::Pcap,
        }
    }
}

/// Why a `--pcap-epoch` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpochError {
    /// Neither Unix seconds nor an RFC 3339 date and time.
    #[error(
        "--pcap-epoch {0:?}: expected Unix seconds (1764581400) or RFC 3339 (2026-12-01T09:30:00Z)"
    )]
    Syntax(String),
    /// A field out of its range, or before 1970.
    #[error("--pcap-epoch {0:?}: {1}")]
    Range(String, &'static str),
}

/// Microseconds since the Unix epoch of `text` (Unix seconds or RFC 3339).
pub fn parse_epoch(text: &str) -> Result<u64, EpochError> {
    let syntax = || EpochError::Syntax(text.to_owned());
    let t = text.trim();
    if t.chars().all(|c| c.is_ascii_digit() || c == '.') && !t.is_empty() {
        let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
        let secs: u64 = secs.parse().map_err(|_| syntax())?;
        return Ok(
            secs.checked_mul(1_000_000).ok_or_else(syntax)? + micros(frac).ok_or_else(syntax)?
        );
    }
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
    let b = t.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(syntax());
    }
    let num = |r: std::ops::Range<usize>| {
        t.get(r)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(syntax)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &t[19..];
    let mut frac = "";
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        frac = &r[..end];
        rest = &r[end..];
    }
    let offset_s: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(syntax()),
            };
            let h: i64 = rest[1..3].parse().map_err(|_| syntax())?;
            let m: i64 = rest[4..6].parse().map_err(|_| syntax())?;
            if h > 23 || m > 59 {
                return Err(EpochError::Range(
                    text.to_owned(),
                    "the offset is out of range",
                ));
            }
            sign * (h * 3600 + m * 60)
        }
        _ => return Err(syntax()),
    };
    let range = |why| EpochError::Range(text.to_owned(), why);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(range("no such date"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(range("no such time of day"));
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_s;
    let secs = u64::try_from(secs).map_err(|_| range("before 1970"))?;
    Ok(secs * 1_000_000 + micros(frac).ok_or_else(syntax)?)
}

/// A decimal fraction of a second, as microseconds (digits past the sixth are dropped).
fn micros(frac: &str) -> Option<u64> {
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    digits.parse().ok()
}

fn days_in_month(year: u64, month: u64) -> u64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Writes `capture` at `path` in `format`, timestamps from `epoch_us`.
pub fn save(capture: &Capture, path: &Path, format: Format, epoch_us: u64) -> io::Result<()> {
    let mut file = io::BufWriter::new(std::fs::File::create(path)?);
    match format {
        Format::Pcap => capture.write_pcap_at(&mut file, epoch_us)?,
        Format::Pcapng => write_pcapng(capture, &mut file, epoch_us)?,
    }
    file.flush()
}

/// The sender of a raw IP packet.
fn source(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(packet.get(12..16)?).ok()?)),
        6 => Some(IpAddr::from(<[u8; 16]>::try_from(packet.get(8..24)?).ok()?)),
        _ => None,
    }
}

/// One pcapng block: type, body, total length twice (little-endian).
fn block(out: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let len = (12 + body.len()) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&len.to_le_bytes())
}

/// An option: code, length, value padded to 4 bytes.
fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(value.len() as u16).to_le_bytes());
    body.extend_from_slice(value);
    body.resize(body.len().next_multiple_of(4), 0);
}

/// Writes `capture` as pcapng: a section, one interface per sending host (in address order),
/// then the packets in time order, each on its sender's interface, with its comment.
pub fn write_pcapng(capture: &Capture, mut out: impl Write, epoch_us: u64) -> io::Result<()> {
    let mut hosts = BTreeMap::new();
    capture.for_each_packet(|_, packet, _| {
        if let Some(host) = source(packet) {
            hosts.entry(host).or_insert(0u32);
        }
        Ok(())
    })?;
    for (i, id) in hosts.values_mut().enumerate() {
        *id = i as u32;
    }
    // Section header: byte-order magic, version 1.0, section length unknown.
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    option(
        &mut shb,
        4,
        b"cloudproxy simulation (cloudproxy run --pcap)",
    );
    option(&mut shb, 0, &[]);
    block(&mut out, 0x0A0D_0D0A, &shb)?;
    for host in hosts.keys() {
        let mut idb = Vec::new();
        idb.extend_from_slice(&(LINKTYPE_RAW as u16).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        option(&mut idb, 2, host.to_string().as_bytes());
        option(&mut idb, 3, format!("simulated host {host}").as_bytes());
        option(&mut idb, 0, &[]);
        block(&mut out, 1, &idb)?;
    }
    capture.for_each_packet(|ts_us, packet, comment| {
        let Some(interface) = source(packet).and_then(|h| hosts.get(&h)) else {
            return Ok(());
        };
        let ts = ts_us.saturating_add(epoch_us);
        let mut epb = Vec::with_capacity(packet.len() + 64);
        epb.extend_from_slice(&interface.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        epb.extend_from_slice(packet);
        epb.resize(epb.len().next_multiple_of(4), 0);
        if let Some(text) = comment {
            option(&mut epb, 1, text.as_bytes());
            option(&mut epb, 0, &[]);
        }
        block(&mut out, 6, &epb)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_parse_as_unix_seconds_or_rfc_3339() {
        assert_eq!(parse_epoch("0"), Ok(0));
        assert_eq!(parse_epoch("1764581400"), Ok(1_764_581_400_000_000));
        assert_eq!(parse_epoch("1764581400.25"), Ok(1_764_581_400_250_000));
        assert_eq!(
            parse_epoch("2026-12-01T09:30:00Z"),
            Ok(1_796_117_400_000_000)
        );
        assert_eq!(
            parse_epoch("2026-12-01T10:30:00.5+01:00"),
            Ok(1_796_117_400_500_000)
        );
        assert_eq!(parse_epoch("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_epoch("2000-02-29T00:00:00Z"), Ok(951_782_400_000_000));
        assert!(matches!(
            parse_epoch("2026-02-30T00:00:00Z"),
            Err(EpochError::Range(..))
        ));
        assert!(matches!(
            parse_epoch("1969-12-31T23:59:59Z"),
            Err(EpochError::Range(..))
        ));
        assert!(matches!(
            parse_epoch("yesterday"),
            Err(EpochError::Syntax(_))
        ));
        assert!(matches!(
            parse_epoch("2026-12-01 09:30"),
            Err(EpochError::Syntax(_))
        ));
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(Format::of(Path::new("a.pcapng")), Format::Pcapng);
        assert_eq!(Format::of(Path::new("a.pcap")), Format::Pcap);
    }
}
