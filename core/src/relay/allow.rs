//! The destination allow-list: CIDR blocks and the special-purpose address ranges.
//!
//! A relay must never be an open relay. It reaches only destinations inside the SD-RTN blocks it
//! is configured with ([`RelayConfig::sdrtn`](super::RelayConfig::sdrtn)), and it treats the
//! special-purpose ranges ([`SPECIAL_PURPOSE_RANGES`]: loopback, private, link-local, multicast,
//! unspecified, broadcast, documentation, IPv4-mapped and other IPv6 forms that embed an IPv4
//! address, ...) with extra suspicion: an address in one of them is allowed only when a
//! configured block that contains it lies entirely *inside* that range. So configuring
//! `10.1.0.0/16` as SD-RTN allows `10.1.2.3`, but configuring `0.0.0.0/0` does not open
//! loopback or private networks. Port 0 is never allowed.
//!
//! Address families are compared as they are: an IPv6 address (IPv4-mapped included) matches
//! IPv6 blocks only, an IPv4 address IPv4 blocks only.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use thiserror::Error;

/// An IP address block: a network address and a prefix length, such as `120.92.0.0/16`.
///
/// The host bits are cleared on construction, so `10.1.2.3/8` is the block `10.0.0.0/8`.
///
/// ```
/// use cloudproxy_core::relay::Cidr;
///
/// let block: Cidr = "120.92.18.162/16".parse().unwrap();
/// assert_eq!(block.to_string(), "120.92.0.0/16");
/// assert!(block.contains("120.92.118.34".parse().unwrap()));
/// assert!(!block.contains("120.93.0.1".parse().unwrap()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    /// The network address (host bits zero, once normalised).
    addr: IpAddr,
    /// Leading bits that are fixed: `0..=32` for IPv4, `0..=128` for IPv6.
    prefix_len: u8,
}

/// Why a [`Cidr`] cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CidrError {
    /// The prefix length exceeds the address's width (32 for IPv4, 128 for IPv6).
    #[error("prefix length {prefix_len} exceeds {max} bits for {addr}")]
    PrefixTooLong {
        /// The address.
        addr: IpAddr,
        /// The prefix length given.
        prefix_len: u8,
        /// The address family's width.
        max: u8,
    },
    /// The text is not `address/prefix_len` (or a bare address, meaning a single host).
    #[error("`{0}` is not an address block such as 120.92.0.0/16 or 2001:db8::/32")]
    Syntax(String),
}

impl Cidr {
    /// The block of `addr` with `prefix_len` fixed bits; host bits of `addr` are cleared.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Cidr, CidrError> {
        let max = width(addr);
        if prefix_len > max {
            return Err(CidrError::PrefixTooLong {
                addr,
                prefix_len,
                max,
            });
        }
        Ok(Cidr {
            addr: mask(addr, prefix_len),
            prefix_len,
        })
    }

    /// The block holding exactly `addr` (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            prefix_len: width(addr),
        }
    }

    /// An IPv4 block, for constants; `prefix_len` must be at most 32 and the host bits zero.
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix_len: u8) -> Cidr {
        Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix_len,
        }
    }

    /// An IPv6 block, for constants; `prefix_len` must be at most 128 and the host bits zero.
    const fn v6(segments: [u16; 8], prefix_len: u8) -> Cidr {
        let [a, b, c, d, e, f, g, h] = segments;
        Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix_len,
        }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is inside the block (same address family, same leading bits).
    pub fn contains(&self, ip: IpAddr) -> bool {
        width(ip) == width(self.addr)
            && mask(ip, self.prefix_len) == mask(self.addr, self.prefix_len)
    }

    /// Whether every address of `other` is inside this block.
    pub fn contains_block(&self, other: &Cidr) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.addr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Parses `address/prefix_len`, or a bare address as a single-host block.
    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let syntax = || CidrError::Syntax(text.to_owned());
        match text.split_once('/') {
            Some((addr, len)) => {
                let addr: IpAddr = addr.parse().map_err(|_| syntax())?;
                if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(syntax());
                }
                let prefix_len: u8 = len.parse().map_err(|_| syntax())?;
                Cidr::new(addr, prefix_len)
            }
            None => text.parse().map(Cidr::host).map_err(|_| syntax()),
        }
    }
}

/// Bits in an address of `ip`'s family.
fn width(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `ip` with every bit after the first `prefix_len` cleared.
fn mask(ip: IpAddr, prefix_len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX
                .checked_shl(32u32.saturating_sub(u32::from(prefix_len)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX
                .checked_shl(128u32.saturating_sub(u32::from(prefix_len)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

/// Address ranges a relay refuses unless explicitly configured as SD-RTN (see the module docs).
///
/// IPv4: "this network" (with the unspecified address), private (RFC 1918), shared address
/// space (carrier-grade NAT), loopback, link-local, IETF protocol assignments, the three
/// documentation networks, benchmarking, multicast, reserved (with the limited broadcast
/// address). IPv6: unspecified, loopback, IPv4-mapped (`::ffff:0:0/96`, RFC 4291),
/// IPv4-translated (`::ffff:0:0:0/96`, RFC 2765's SIIT), IPv4-compatible, NAT64 (well-known
/// and local, RFC 6052 and 8215), discard, Teredo, documentation (`2001:db8::/32` and RFC
/// 9637's `3fff::/20`), 6to4, unique local (`fc00::/7`), link-local, site-local and multicast.
pub const SPECIAL_PURPOSE_RANGES: &[Cidr] = &[
    Cidr::v4(0, 0, 0, 0, 8),
    Cidr::v4(10, 0, 0, 0, 8),
    Cidr::v4(100, 64, 0, 0, 10),
    Cidr::v4(127, 0, 0, 0, 8),
    Cidr::v4(169, 254, 0, 0, 16),
    Cidr::v4(172, 16, 0, 0, 12),
    Cidr::v4(192, 0, 0, 0, 24),
    Cidr::v4(192, 0, 2, 0, 24),
    Cidr::v4(192, 168, 0, 0, 16),
    Cidr::v4(198, 18, 0, 0, 15),
    Cidr::v4(198, 51, 100, 0, 24),
    Cidr::v4(203, 0, 113, 0, 24),
    Cidr::v4(224, 0, 0, 0, 4),
    Cidr::v4(240, 0, 0, 0, 4),
    Cidr::v4(255, 255, 255, 255, 32),
    Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128),
    Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
    Cidr::v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),
    Cidr::v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),
    Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
    Cidr::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
    Cidr::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
    Cidr::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
    Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
    Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    Cidr::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
    Cidr::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
    Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
    Cidr::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
    Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
];

/// Whether `ip` is in one of the [`SPECIAL_PURPOSE_RANGES`].
pub fn is_special_purpose(ip: IpAddr) -> bool {
    SPECIAL_PURPOSE_RANGES
        .iter()
        .any(|range| range.contains(ip))
}

/// Whether a relay configured with the SD-RTN blocks `sdrtn` may send to `dest` (the rule of the
/// module docs): the port is not 0, some block contains the address, and if the address is in
/// special-purpose ranges, that block lies inside every one of them.
///
/// ```
/// use cloudproxy_core::relay::{destination_allowed, Cidr};
///
/// let sdrtn: Vec<Cidr> = vec!["47.74.0.0/16".parse().unwrap(), "0.0.0.0/0".parse().unwrap()];
/// assert!(destination_allowed(&sdrtn, "47.74.211.17:4001".parse().unwrap()));
/// assert!(destination_allowed(&sdrtn, "8.8.8.8:53".parse().unwrap()));
/// assert!(!destination_allowed(&sdrtn, "47.74.211.17:0".parse().unwrap()));
/// // A catch-all block does not open loopback or private networks.
/// assert!(!destination_allowed(&sdrtn, "127.0.0.1:22".parse().unwrap()));
/// assert!(!destination_allowed(&sdrtn, "10.0.0.1:80".parse().unwrap()));
/// ```
pub fn destination_allowed(sdrtn: &[Cidr], dest: SocketAddr) -> bool {
    if dest.port() == 0 {
        return false;
    }
    let ip = dest.ip();
    sdrtn.iter().any(|block| {
        block.contains(ip)
            && SPECIAL_PURPOSE_RANGES
                .iter()
                .filter(|range| range.contains(ip))
                .all(|range| range.contains_block(block))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn allowed(blocks: &[&str], dest: &str) -> bool {
        let blocks: Vec<Cidr> = blocks.iter().map(|b| cidr(b)).collect();
        destination_allowed(&blocks, dest.parse().unwrap())
    }

    #[test]
    fn constants_are_normalised() {
        for range in SPECIAL_PURPOSE_RANGES {
            assert_eq!(Cidr::new(range.addr, range.prefix_len).unwrap(), *range);
        }
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(cidr("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("10.1.2.3").to_string(), "10.1.2.3/32");
        assert_eq!(cidr("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("0.0.0.0/0").prefix_len(), 0);
        assert_eq!(cidr("::/0").addr(), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/+8",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::PrefixTooLong {
                addr: "10.0.0.0".parse().unwrap(),
                prefix_len: 33,
                max: 32
            })
        );
    }

    #[test]
    fn containment() {
        let b = cidr("120.92.0.0/16");
        assert!(b.contains("120.92.255.255".parse().unwrap()));
        assert!(!b.contains("120.91.255.255".parse().unwrap()));
        assert!(
            !b.contains("::ffff:120.92.0.1".parse().unwrap()),
            "families differ"
        );
        assert!(cidr("0.0.0.0/0").contains("1.2.3.4".parse().unwrap()));
        assert!(cidr("::/0").contains("::1".parse().unwrap()));
        assert!(b.contains_block(&cidr("120.92.18.0/24")));
        assert!(!b.contains_block(&cidr("120.0.0.0/8")));
        assert!(!cidr("120.92.18.0/24").contains_block(&b));
    }

    #[test]
    fn special_ranges_refused_unless_configured_inside() {
        let sdrtn = ["47.74.0.0/16", "0.0.0.0/0", "::/0"];
        for dest in [
            "127.0.0.1:4001",
            "10.0.0.1:4001",
            "172.16.5.5:4001",
            "192.168.1.1:4001",
            "169.254.169.254:80",
            "224.0.0.1:4001",
            "0.0.0.0:4001",
            "255.255.255.255:4001",
            "100.64.0.1:4001",
            "192.0.2.1:4001",
            "[::1]:4001",
            "[::]:4001",
            "[::ffff:10.0.0.1]:4001",
            "[::ffff:47.74.0.1]:4001",
            "[fc00::1]:4001",
            "[fd12::1]:4001",
            "[fe80::1]:4001",
            "[ff02::1]:4001",
            "[64:ff9b::a00:1]:4001",
            "[2002:a00:1::]:4001",
        ] {
            assert!(!allowed(&sdrtn, dest), "{dest}");
        }
        assert!(allowed(&sdrtn, "47.74.211.17:4001"));
        assert!(allowed(&sdrtn, "[2600::1]:4001"));
        // Explicitly configured special ranges are allowed.
        assert!(allowed(&["10.1.0.0/16"], "10.1.2.3:4001"));
        assert!(!allowed(&["10.1.0.0/16"], "10.2.0.1:4001"));
        assert!(allowed(&["127.0.0.1"], "127.0.0.1:4001"));
        assert!(allowed(&["::ffff:10.0.0.0/120"], "[::ffff:10.0.0.1]:4001"));
        // Broadcast sits inside 240/4: configuring 240/4 does not open it.
        assert!(!allowed(&["240.0.0.0/4"], "255.255.255.255:4001"));
        assert!(allowed(&["240.0.0.0/4"], "241.0.0.1:4001"));
        // Port 0 is never allowed, nor anything without blocks.
        assert!(!allowed(&["0.0.0.0/0"], "8.8.8.8:0"));
        assert!(!allowed(&[], "8.8.8.8:53"));
    }

    #[test]
    fn ipv4_translated_and_new_documentation_ranges_are_refused() {
        // IPv4-translated (SIIT, RFC 2765 §2.1): `::ffff:0:a.b.c.d`, next to IPv4-mapped
        // `::ffff:a.b.c.d` but not the same block.
        let translated: IpAddr = "::ffff:0:a00:1".parse().unwrap();
        assert_eq!(translated.to_string(), "::ffff:0:a00:1");
        assert!(!cidr("::ffff:0:0/96").contains(translated));
        assert!(is_special_purpose(translated));
        assert!(is_special_purpose("::ffff:0:808:808".parse().unwrap()));
        assert!(is_special_purpose("3fff:1::1".parse().unwrap()));
        assert!(!is_special_purpose("4000::1".parse().unwrap()));
        let sdrtn = ["::/0"];
        for dest in [
            "[::ffff:0:a00:1]:4001",
            "[::ffff:0:2f4a:d311]:4001",
            "[3fff::1]:4001",
        ] {
            assert!(!allowed(&sdrtn, dest), "{dest}");
        }
        // Configured as SD-RTN on purpose, a block inside the range is reachable.
        assert!(allowed(&["::ffff:0:a00:0/120"], "[::ffff:0:a00:1]:4001"));
    }

    #[test]
    fn is_special_purpose_spot_checks() {
        assert!(is_special_purpose("127.1.2.3".parse().unwrap()));
        assert!(is_special_purpose("::ffff:8.8.8.8".parse().unwrap()));
        assert!(!is_special_purpose("8.8.8.8".parse().unwrap()));
        assert!(!is_special_purpose("2600::1".parse().unwrap()));
    }
}
