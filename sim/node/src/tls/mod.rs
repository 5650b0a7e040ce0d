//! TLS on the TCP 443 listeners (**beyond the seed**, docs/protocol.md §13): the driver's
//! transport, not the protocol's. `core` never sees it: the bytes inside the TLS stream are
//! exactly the bytes its machines produce and consume.
//!
//! The seam is a [`Net`] decorator, [`TlsNet`], handed a [`Tls`] configuration:
//!
//! - **client side** ([`Tls::client`]): every connection to a TLS port (443 by default) is a
//!   TLS 1.3 client connection; the handshake completes inside [`Net::connect`], so a connect
//!   that "succeeds" is one whose server proved its certificate. The server name checked is
//!   the **DNS name the address was resolved from** through this same network (the access
//!   points reached by domain, `ap-proxy.agora.io`), or else **the address itself as an IP
//!   SAN** (access points from an IP list, and every relay: the access point hands relays out
//!   by address);
//! - **server side** ([`Tls::server`]): every connection accepted on a TLS port is a TLS 1.3
//!   server connection whose handshake is driven by its first read or write (so a slow
//!   handshake never holds up the accept loop; the node's own timeouts bound it);
//! - both sides require the ALPN protocol [`ALPN`] (`cloudproxy/1`): a peer that offers or
//!   selects anything else, or nothing, is refused with an error that says so;
//! - everything else (other ports, UDP, names, clocks) passes through, and a tunnel whose two
//!   streams are plain keeps the inner network's pump (`splice(2)` on Linux).
//!
//! Real sockets use rustls' ring provider and the system clock ([`real_provider`]); the
//! simulation a provider whose randomness and key exchange come from the world's seed
//! ([`seeded`]) and the simulated clock, so that a seed's trace stays the same. The
//! certificates of the simulation and of the tests come from a [`TestCa`] (Ed25519, keys from
//! seeded bytes); `cloudproxy serve` reads PEM files ([`pem`]).

mod ca;
mod counters;
#[cfg(test)]
mod move_tests;
mod net;
pub mod pem;
pub mod seeded;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::time_provider::TimeProvider;
use rustls::ClientConfig;
pub use rustls::RootCertStore;
/// rustls' server types, named by code that moves a server connection between threads.
pub use rustls::{ServerConfig, ServerConnection};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

pub use ca::{Issued, TestCa};
pub use counters::{
    is_handshake_failure, HandshakeFailed, HandshakeFailure, TlsCounters, TlsCounts,
};
pub use net::{TlsListener, TlsNet};
pub use stream::{HandshakeWatch, TlsStream};

use crate::net::Net;

/// The ALPN protocol id of the cloud-proxy protocol inside TLS (docs/protocol.md §13).
pub const ALPN: &[u8] = b"cloudproxy/1";

/// The TCP port TLS is spoken on by default (`AP_TLS_PORT`, `RELAY_TLS_PORT`).
pub const TLS_PORT: u16 = 443;

/// Why a TLS configuration cannot be built. Each message names what was wrong.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file cannot be read, is too large, or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration (a key that does not match the certificate, a key
    /// type the provider cannot use, ...).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// A certificate could not be made (the test CA).
    #[error("certificate: {0}")]
    Certificate(String),
}

/// Where a [`TlsNet`] reports each failed handshake, its text naming the peer and the
/// reason (`serve` and `call` log them: the machines only see a failed or closed connection).
pub type TlsErrorSink = Arc<dyn Fn(&str) + Send + Sync>;

/// What a [`TlsNet`] does on its TLS ports: connect as a client, accept as a server, or both.
/// Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    /// Connections to a TLS port are TLS clients with this configuration; `None`: plain.
    pub client: Option<Arc<ClientConfig>>,
    /// Connections accepted on a TLS port are TLS servers with this configuration; `None`:
    /// plain.
    pub server: Option<Arc<ServerConfig>>,
    /// The TLS ports. Default [`TLS_PORT`] alone.
    pub ports: Vec<u16>,
    /// Told of every failed handshake; `None` (the default): nobody.
    pub errors: Option<TlsErrorSink>,
    /// Counts every server handshake, completed or failed; `None` (the default): uncounted.
    pub counters: Option<Arc<TlsCounters>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("client", &self.client.is_some())
            .field("server", &self.server.is_some())
            .field("ports", &self.ports)
            .field("errors", &self.errors.is_some())
            .field("counters", &self.counters.is_some())
            .finish()
    }
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            client: None,
            server: None,
            ports: vec![TLS_PORT],
            errors: None,
            counters: None,
        }
    }
}

impl Tls {
    /// TLS client connections to port 443.
    pub fn client(config: ClientConfig) -> Self {
        Tls {
            client: Some(Arc::new(config)),
            ..Tls::default()
        }
    }

    /// TLS server connections on port 443.
    pub fn server(config: ServerConfig) -> Self {
        Tls {
            server: Some(Arc::new(config)),
            ..Tls::default()
        }
    }

    /// The same, TLS on `ports` instead.
    pub fn on_ports(mut self, ports: &[u16]) -> Self {
        self.ports = ports.to_vec();
        self
    }

    /// The same, telling `errors` of every failed handshake.
    pub fn reporting_to(mut self, errors: TlsErrorSink) -> Self {
        self.errors = Some(errors);
        self
    }

    /// The same, counting every server handshake in `counters`.
    pub fn counting(mut self, counters: Arc<TlsCounters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Whether connections on `port` speak TLS.
    pub fn is_tls_port(&self, port: u16) -> bool {
        self.ports.contains(&port)
    }

    /// `net` with this TLS on its TLS ports.
    pub fn wrap<N: Net>(self, net: N) -> TlsNet<N> {
        TlsNet::new(net, self)
    }
}

/// rustls' ring provider (the operating system's randomness): real sockets'.
pub fn real_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system clock (rustls' default): real sockets'.
pub fn real_time() -> Arc<dyn TimeProvider> {
    Arc::new(rustls::time_provider::DefaultTimeProvider)
}

/// A client configuration: TLS 1.3, ALPN [`ALPN`], trusting `roots` only.
pub fn client_config(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
    time: Arc<dyn TimeProvider>,
) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_details(provider, time)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// A client configuration like [`client_config`] that verifies with `verifier` (tests of a
/// server that must refuse a client on its own grounds, ALPN above all).
pub fn client_config_with_verifier(
    verifier: Arc<dyn ServerCertVerifier>,
    provider: Arc<CryptoProvider>,
    time: Arc<dyn TimeProvider>,
    alpn: Vec<Vec<u8>>,
) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_details(provider, time)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn;
    Ok(config)
}

/// A server configuration: TLS 1.3, ALPN [`ALPN`], presenting `chain` (leaf first) with
/// `key`; no client certificates (clients prove themselves with tickets, inside).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: Arc<CryptoProvider>,
    time: Arc<dyn TimeProvider>,
) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_details(provider, time)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    // No session tickets: connections are long-lived (a tunnel, a media channel, one AP
    // request), a resumption would save little, and a handshake then ends with the client's
    // Finished (nothing more to write to a client that gave up).
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A root store holding `roots` (refusing a certificate rustls cannot use as an anchor).
pub fn roots_of(roots: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone())?;
    }
    Ok(store)
}
