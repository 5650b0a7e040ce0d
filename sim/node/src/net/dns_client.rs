//! Asking one DNS resolver over UDP for a name's IPv4 addresses ([`TokioNet::with_resolver`](super::TokioNet::with_resolver),
//! `cloudproxy call --resolver`): what a client behind an enterprise resolver does, without
//! the system's resolver configuration in between.
//!
//! One query at a time per name, [`ATTEMPTS`] tries of [`ATTEMPT_TIMEOUT`] each (well inside
//! the proxy client's own resolve timeout), from the node's own address. Datagrams that are
//! not the answer (another id, another question, garbage) are ignored while the attempt
//! lasts. The query id is not a defence against spoofing (the resolver sits on the
//! enterprise's own network); it only tells answers apart.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::dns_wire::{self, Rcode, MAX_RESPONSE};

/// How long one attempt waits for the answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// How many attempts before giving up.
pub const ATTEMPTS: usize = 2;

/// Query ids, different for every query of this process.
static NEXT_ID: AtomicU16 = AtomicU16::new(0);

fn next_id() -> u16 {
    let salt =
        ((super::wall_clock().as_millis() ^ super::monotonic_now().as_micros()) & 0xFFFF) as u16;
    NEXT_ID.fetch_add(1, Ordering::Relaxed).wrapping_add(salt)
}

/// The A records of `name` as the resolver at `resolver` answers, asked from `local_ip`
/// (unspecified: any). The error names the name, the resolver and what it said.
pub async fn resolve_a(
    local_ip: IpAddr,
    resolver: SocketAddr,
    name: &str,
) -> Result<Vec<IpAddr>, String> {
    let id = next_id();
    let query = dns_wire::query(id, name).map_err(|e| format!("{name}: {e}"))?;
    let source = if local_ip.is_ipv4() == resolver.is_ipv4() {
        SocketAddr::new(local_ip, 0)
    } else if resolver.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    };
    let socket = UdpSocket::bind(source)
        .await
        .map_err(|e| format!("{name}: cannot bind udp {source} to ask {resolver}: {e}"))?;
    socket
        .connect(resolver)
        .await
        .map_err(|e| format!("{name}: cannot reach the resolver {resolver}: {e}"))?;
    let mut buf = vec![0u8; MAX_RESPONSE + 1];
    for _ in 0..ATTEMPTS {
        socket
            .send(&query)
            .await
            .map_err(|e| format!("{name}: cannot send to the resolver {resolver}: {e}"))?;
        let answer = tokio::time::timeout(ATTEMPT_TIMEOUT, async {
            loop {
                let Ok(n) = socket.recv(&mut buf).await else {
                    // An ICMP error (nothing listens there): wait for the attempt to end.
                    std::future::pending::<()>().await;
                    continue;
                };
                if let Ok(reply) = dns_wire::parse_response(&buf[..n], id, name) {
                    return reply;
                }
            }
        })
        .await;
        let Ok(reply) = answer else { continue };
        return match reply.rcode {
            Rcode::NoError if !reply.addrs.is_empty() => {
                Ok(reply.addrs.into_iter().map(IpAddr::V4).collect())
            }
            Rcode::NoError => Err(format!(
                "{name}: no address (the resolver {resolver} has no A record for it)"
            )),
            Rcode::NxDomain => Err(format!(
                "{name}: no such name (NXDOMAIN from the resolver {resolver})"
            )),
            Rcode::Refused => Err(format!(
                "the resolver {resolver} refused {name} (REFUSED: external names are blocked)"
            )),
            other => Err(format!(
                "{name}: the resolver {resolver} answered {}",
                other.name()
            )),
        };
    }
    Err(format!(
        "{name}: the resolver {resolver} did not answer ({ATTEMPTS} tries of {} ms)",
        ATTEMPT_TIMEOUT.as_millis()
    ))
}
