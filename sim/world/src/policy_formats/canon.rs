//! The canonical form of a policy, and the address and port arithmetic behind it.
//!
//! nftables sorts and merges the elements of a set (`{ 10.0.0.0/8, 11.0.0.0/8 }` is listed as
//! `10.0.0.0/7`) and refuses overlapping ones; so the compilers write, and the importers
//! return, each rule in one canonical form: ports sorted with overlapping and adjacent ranges
//! merged; addresses as the fewest CIDR blocks that cover exactly the same addresses, IPv4
//! first, each family in ascending order. Rules keep their order and are never merged with
//! each other: the canonical policy decides every flow as the original does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use cloudproxy_core::relay::Cidr;

use crate::policy::{Policy, Rule};

/// `policy` with every rule in canonical form (see the module docs).
pub fn canonical(policy: &Policy) -> Policy {
    Policy {
        default: policy.default,
        dns: policy.dns,
        rules: policy.rules.iter().map(canonical_rule).collect(),
    }
}

/// One rule in canonical form.
pub(crate) fn canonical_rule(rule: &Rule) -> Rule {
    Rule {
        proto: rule.proto,
        to: merge_blocks(&rule.to),
        ports: merge_ports(&rule.ports),
    }
}

/// Ports sorted, overlapping and adjacent ranges merged.
pub(crate) fn merge_ports(ports: &[RangeInclusive<u16>]) -> Vec<RangeInclusive<u16>> {
    let mut sorted: Vec<(u16, u16)> = ports.iter().map(|r| (*r.start(), *r.end())).collect();
    sorted.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::new();
    for (s, e) in sorted {
        match merged.last_mut() {
            Some(last) if u32::from(s) <= u32::from(last.1) + 1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged.into_iter().map(|(s, e)| s..=e).collect()
}

/// The fewest blocks covering exactly the addresses of `blocks`: IPv4 first, ascending.
pub(crate) fn merge_blocks(blocks: &[Cidr]) -> Vec<Cidr> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        let mut spans: Vec<(u128, u128)> = blocks
            .iter()
            .filter(|b| b.addr().is_ipv6() == v6)
            .map(span)
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::new();
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if last.1 == u128::MAX || s <= last.1 + 1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        for (s, e) in merged {
            out.extend(range_blocks(s, e, v6));
        }
    }
    out
}

/// The first and last address of a block, as integers of its family.
fn span(block: &Cidr) -> (u128, u128) {
    let bits = width(block.addr().is_ipv6());
    let host_bits = bits - u32::from(block.prefix_len());
    let start = to_int(block.addr());
    let size_minus_one = if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (start, start + size_minus_one)
}

fn width(v6: bool) -> u32 {
    if v6 {
        128
    } else {
        32
    }
}

fn to_int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_int(n: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    }
}

/// The blocks covering exactly `first..=last` (both of one family; `first <= last`).
pub(crate) fn range_blocks(first: u128, last: u128, v6: bool) -> Vec<Cidr> {
    let bits = width(v6);
    let mut blocks = Vec::new();
    let mut start = first;
    loop {
        // The largest aligned block at `start` that ends at or before `last`.
        let align = if start == 0 {
            bits
        } else {
            start.trailing_zeros().min(bits)
        };
        let room = last - start; // addresses after `start`, up to `last`
        let fit = if room == u128::MAX {
            128
        } else {
            127 - (room + 1).leading_zeros()
        };
        let host_bits = align.min(fit);
        let prefix = (bits - host_bits) as u8;
        blocks.push(Cidr::new(from_int(start, v6), prefix).expect("prefix within the family"));
        let size_minus_one = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        match start.checked_add(size_minus_one) {
            Some(end) if end < last => start = end + 1,
            _ => return blocks,
        }
    }
}

/// The blocks covering exactly the addresses `first` to `last`, or `None` when they are of
/// different families or out of order.
pub(crate) fn address_range(first: IpAddr, last: IpAddr) -> Option<Vec<Cidr>> {
    let (a, b) = (to_int(first), to_int(last));
    (first.is_ipv6() == last.is_ipv6() && a <= b).then(|| range_blocks(a, b, first.is_ipv6()))
}

/// A block as people write it: a bare address for a single host, else `addr/len`.
pub(crate) fn block_text(block: &Cidr) -> String {
    if *block == Cidr::host(block.addr()) {
        block.addr().to_string()
    } else {
        block.to_string()
    }
}

/// A port range as people write it: `4000`, or `4500-4650`.
pub(crate) fn range_text(r: &RangeInclusive<u16>) -> String {
    if r.start() == r.end() {
        r.start().to_string()
    } else {
        format!("{}-{}", r.start(), r.end())
    }
}

/// Whether `block` is a whole address family (`0.0.0.0/0` or `::/0`).
pub(crate) fn is_everything(block: &Cidr) -> bool {
    block.prefix_len() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|b| b.parse().unwrap()).collect()
    }

    fn texts(list: &[Cidr]) -> Vec<String> {
        list.iter().map(block_text).collect()
    }

    #[test]
    fn blocks_merge_like_nft_sets() {
        assert_eq!(
            texts(&merge_blocks(&blocks(&[
                "11.0.0.0/8",
                "10.0.0.0/8",
                "10.1.0.0/16",
                "::1",
                "1.2.3.4"
            ]))),
            ["1.2.3.4", "10.0.0.0/7", "::1"]
        );
        assert_eq!(
            texts(&merge_blocks(&blocks(&["0.0.0.0/0", "::/0", "1.1.1.1"]))),
            ["0.0.0.0/0", "::/0"]
        );
        assert_eq!(
            texts(&merge_blocks(&blocks(&["10.0.0.1", "10.0.0.2"]))),
            ["10.0.0.1", "10.0.0.2"]
        );
    }

    #[test]
    fn ranges_become_exact_blocks() {
        let r = address_range("1.2.3.4".parse().unwrap(), "1.2.3.9".parse().unwrap()).unwrap();
        assert_eq!(texts(&r), ["1.2.3.4/30", "1.2.3.8/31"]);
        let all = address_range(
            "::".parse().unwrap(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(texts(&all), ["::/0"]);
        let all4 = address_range(
            "0.0.0.0".parse().unwrap(),
            "255.255.255.255".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(texts(&all4), ["0.0.0.0/0"]);
        assert!(address_range("1.2.3.9".parse().unwrap(), "1.2.3.4".parse().unwrap()).is_none());
        assert!(address_range("1.2.3.4".parse().unwrap(), "::1".parse().unwrap()).is_none());
    }

    #[test]
    fn ports_sort_and_merge() {
        let merged = merge_ports(&[9700..=9700, 80..=80, 81..=90, 85..=86, 1..=1, 65535..=65535]);
        assert_eq!(merged, [1..=1, 80..=90, 9700..=9700, 65535..=65535]);
    }
}
