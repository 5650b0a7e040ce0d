//! The enterprise resolver of the lab (`cloudproxy netlab resolver`, started by the lab in each
//! enterprise's namespace): a UDP DNS responder that answers as the policy's DNS rule says, as
//! the simulation's resolver does without packets (`sim/world/src/dns.rs`):
//!
//! - `dns = "public"`: the access points' name resolves to the lab's access points (A); it has
//!   no AAAA record (an empty answer, so that a system resolver asking both gets the A
//!   records); any other name is `NXDOMAIN`;
//! - `dns = "blocked"`: every name is `REFUSED` (the resolver refuses external names, and every
//!   name of the world is external).
//!
//! Malformed queries get `FORMERR` (or `NOTIMP` for other opcodes) when they have a header,
//! nothing otherwise; responses are never answered. Answers are at most 512 bytes. The
//! responder listens on an address of its enterprise's network, reachable only from inside
//! it (the gateway routes nothing to it), so it needs no rate limit.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use cloudproxy_node::net::dns_wire::{self, DnsError, Rcode, CLASS_IN, MAX_ANSWERS, TYPE_A};
use tokio::net::UdpSocket;

use crate::serve::shutdown::Shutdown;

/// The TTL of the answers, in seconds.
pub const TTL_SECS: u32 = 30;

/// What the resolver knows and how it answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    /// Names (lower-case, no final dot) and their addresses.
    pub names: BTreeMap<String, Vec<Ipv4Addr>>,
    /// Refuse every name (`dns = "blocked"`).
    pub refuse: bool,
}

/// Why a zone cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// A `NAME=IP,...` entry is malformed.
    #[error("--name {entry}: {why}")]
    Entry {
        /// The entry.
        entry: String,
        /// What is wrong.
        why: String,
    },
}

impl Zone {
    /// Adds `NAME=IP[,IP...]` (IPv4, at most [`MAX_ANSWERS`]).
    pub fn add(&mut self, entry: &str) -> Result<(), ZoneError> {
        let bad = |why: String| ZoneError::Entry {
            entry: entry.to_owned(),
            why,
        };
        let (name, ips) = entry
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=IP[,IP...]".to_owned()))?;
        dns_wire::query(0, name).map_err(|e| bad(e.to_string()))?;
        let addrs = ips
            .split(',')
            .map(|ip| {
                ip.trim()
                    .parse::<Ipv4Addr>()
                    .map_err(|_| bad(format!("`{ip}` is not an IPv4 address")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if addrs.len() > MAX_ANSWERS {
            return Err(bad(format!(
                "{} addresses, at most {MAX_ANSWERS}",
                addrs.len()
            )));
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.insert(name, addrs);
        Ok(())
    }

    /// The answer to one datagram, if any (see the module docs).
    pub fn answer(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        let question = match dns_wire::parse_query(datagram) {
            Ok(q) => q,
            Err(DnsError::Opcode(_)) => return dns_wire::error_response(datagram, Rcode::NotImp),
            Err(_) => return dns_wire::error_response(datagram, Rcode::FormErr),
        };
        let (rcode, addrs): (Rcode, &[Ipv4Addr]) = if self.refuse {
            (Rcode::Refused, &[])
        } else {
            match self.names.get(&question.name) {
                None => (Rcode::NxDomain, &[]),
                Some(addrs) if question.qtype == TYPE_A && question.qclass == CLASS_IN => {
                    (Rcode::NoError, addrs)
                }
                Some(_) => (Rcode::NoError, &[]),
            }
        };
        dns_wire::response(&question, rcode, addrs, TTL_SECS).ok()
    }
}

/// Serves `zone` on `socket` until `stop`; counts (answered, ignored) datagrams.
pub async fn serve(socket: UdpSocket, zone: Zone, stop: Shutdown) -> (u64, u64) {
    let mut buf = vec![0u8; dns_wire::MAX_UDP_MESSAGE + 1];
    let (mut answered, mut ignored) = (0u64, 0u64);
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        let (n, from): (usize, SocketAddr) = tokio::select! {
            biased;
            () = &mut stopped => return (answered, ignored),
            got = socket.recv_from(&mut buf) => match got {
                Ok(x) => x,
                Err(_) => continue, // an ICMP error about an earlier answer
            },
        };
        match zone.answer(&buf[..n]) {
            Some(reply) => {
                answered += 1;
                let _ = socket.send_to(&reply, from).await;
            }
            None => ignored += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudproxy_node::net::dns_wire::TYPE_AAAA;

    fn zone(refuse: bool) -> Zone {
        let mut z = Zone {
            refuse,
            ..Zone::default()
        };
        z.add("ap-proxy.agora.io=198.18.1.1,198.18.1.2").unwrap();
        z
    }

    fn ask(z: &Zone, name: &str) -> dns_wire::Reply {
        let reply = z.answer(&dns_wire::query(42, name).unwrap()).unwrap();
        assert!(reply.len() <= dns_wire::MAX_UDP_MESSAGE);
        dns_wire::parse_response(&reply, 42, name).unwrap()
    }

    #[test]
    fn it_answers_as_the_policy_dns_rule_says() {
        let public = zone(false);
        let reply = ask(&public, "AP-PROXY.agora.io");
        assert_eq!(reply.rcode, Rcode::NoError);
        assert_eq!(
            reply.addrs,
            [Ipv4Addr::new(198, 18, 1, 1), Ipv4Addr::new(198, 18, 1, 2)]
        );
        assert_eq!(ask(&public, "example.com").rcode, Rcode::NxDomain);
        let blocked = zone(true);
        for name in ["ap-proxy.agora.io", "example.com"] {
            let reply = ask(&blocked, name);
            assert_eq!((reply.rcode, reply.addrs.len()), (Rcode::Refused, 0));
        }
    }

    #[test]
    fn aaaa_gets_an_empty_answer_and_garbage_a_formerr_or_nothing() {
        let z = zone(false);
        let mut aaaa = dns_wire::query(7, "ap-proxy.agora.io").unwrap();
        let at = aaaa.len() - 4;
        aaaa[at..at + 2].copy_from_slice(&TYPE_AAAA.to_be_bytes());
        let reply = z.answer(&aaaa).unwrap();
        let reply = dns_wire::parse_response(&reply, 7, "ap-proxy.agora.io").unwrap();
        assert_eq!((reply.rcode, reply.addrs.len()), (Rcode::NoError, 0));
        assert_eq!(z.answer(b"short"), None);
        let mut garbage = vec![0u8; 40];
        garbage[5] = 1; // one question, then zeros: an empty name, and a truncated type
        garbage.truncate(14);
        let formerr = z.answer(&garbage).unwrap();
        assert_eq!(formerr[3] & 0xF, 1);
        // Never an answer to an answer.
        let answer = z.answer(&dns_wire::query(1, "x.example").unwrap()).unwrap();
        assert_eq!(z.answer(&answer), None);
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry() {
        let mut z = Zone::default();
        for (entry, why) in [
            ("noequals", "expected NAME=IP"),
            ("a..b=1.2.3.4", "bad name"),
            ("a.example=::1", "not an IPv4 address"),
        ] {
            let err = z.add(entry).unwrap_err().to_string();
            assert!(err.contains(entry) && err.contains(why), "{err}");
        }
        let many = vec!["1.1.1.1"; MAX_ANSWERS + 1].join(",");
        assert!(z.add(&format!("a.example={many}")).is_err());
    }
}
