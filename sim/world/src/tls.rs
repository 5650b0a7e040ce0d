//! TLS in the simulated world (**beyond the seed**, docs/protocol.md §13): the access points'
//! and relays' 443 listeners are TLS servers, the enterprises' clients TLS clients on 443,
//! all deterministic for a seed:
//!
//! - a test CA made at world start ([`TestCa`], Ed25519 keys from the seed's bytes), one
//!   certificate per access point (`ap-proxy.agora.io` and its address) and per relay (its
//!   address: the access points hand relays out by address), the same bytes for the same seed;
//! - rustls' randomness and key exchange from the seed ([`seeded`], restarted by
//!   [`WorldTls::new`]), its clock the simulated one ([`SIM_UNIX_EPOCH`] plus the virtual
//!   time).
//!
//! The capture sits below TLS: pcaps show TLS records on 443.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::time::UnixTime;
use cloudproxy_node::tls::{self, seeded, TestCa, Tls, TlsError};
use cloudproxy_testkit::seed;

use crate::net::SIM_UNIX_EPOCH;

/// Salts of the world's TLS streams, apart from every other use of the seed.
const CA_SALT: u64 = 0x7150_CA00_0000_0001;
const TLS_SALT: u64 = 0x7150_5EED_0000_0002;

/// The simulated clock as Unix time (what certificates are checked against).
fn sim_unix_now() -> UnixTime {
    SIM_UNIX_EPOCH + turmoil::sim_elapsed().unwrap_or_default()
}

/// The world's TLS: the clients' side and each cloud host's.
#[derive(Clone, Debug)]
pub struct WorldTls {
    /// The enterprises' clients: TLS to port 443, trusting the world's CA.
    pub client: Tls,
    /// Each access point's and relay's server side, by address.
    pub servers: BTreeMap<IpAddr, Tls>,
    /// The CA's certificate (DER).
    pub root: Vec<u8>,
}

impl WorldTls {
    /// The TLS of the world of `seed`; restarts this thread's seeded TLS randomness.
    pub fn new(world_seed: u64) -> Result<Self, TlsError> {
        seeded::reseed(world_seed ^ TLS_SALT);
        let mut ca = TestCa::new(Entropy::from_u64(world_seed ^ CA_SALT))?;
        let time = || Arc::new(seeded::ClockTime(sim_unix_now));
        let roots = tls::roots_of(&[ca.root()])?;
        let client = Tls::client(tls::client_config(roots, seeded::provider(), time())?);
        let mut servers = BTreeMap::new();
        let hosts = seed::ap_ips()
            .into_iter()
            .map(|ip| (ip, vec![seed::AP_DOMAIN]))
            .chain(seed::relay_ips().into_iter().map(|ip| (ip, Vec::new())));
        for (ip, names) in hosts {
            let issued = ca.issue(&names, &[ip])?;
            let config = tls::server_config(issued.chain, issued.key, seeded::provider(), time())?;
            servers.insert(ip, Tls::server(config));
        }
        Ok(WorldTls {
            client,
            servers,
            root: ca.root().to_vec(),
        })
    }

    /// The server side of the host at `ip` (plain when it has none).
    pub fn server(&self, ip: IpAddr) -> Tls {
        self.servers.get(&ip).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_ca_and_another_seed_another() {
        let (a, b, c) = (
            WorldTls::new(1).unwrap(),
            WorldTls::new(1).unwrap(),
            WorldTls::new(2).unwrap(),
        );
        assert_eq!(a.root, b.root);
        assert_ne!(a.root, c.root);
        assert_eq!(a.servers.len(), 6);
    }
}
