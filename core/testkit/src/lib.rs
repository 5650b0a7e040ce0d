//! # cloudproxy-testkit
//!
//! What cloudproxy's tests and its simulation share, written once (as `rustls-test` is for
//! rustls):
//!
//! - [`seed`]: the seed's world as data: the access points', relays' and edge's addresses and
//!   ports, the SD-RTN block, the access point's domain;
//! - [`policy`]: the enterprise firewall as data (rules, default verdict, the resolver's
//!   stance), its TOML form, and the named presets ([`policy::Policy::seed`],
//!   [`policy::Policy::udp_blocked`], [`policy::Policy::dns_blocked`],
//!   [`policy::Policy::only_host`], [`policy::Policy::open`]);
//! - [`pair`]: the pair world, every sans-IO machine of `cloudproxy-core` (the proxy clients or
//!   the applications, the access point, the relays) stepped against the others on one
//!   virtual clock through a firewall, DNS, a SOCKS5 server and an SD-RTN edge.
//!
//! It is pure like the core (no tokio, no sockets, no clock): `cloudproxy-core` takes it as a
//! dev-dependency only, `cloudproxy-sim` as a dependency.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod pair;
pub mod policy;
pub mod seed;
