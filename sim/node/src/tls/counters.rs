//! What a TLS server counts of its handshakes ([`TlsCounters`], `serve`'s metrics), and what
//! a TLS client's failed handshake is ([`HandshakeFailed`], carried to the client's report).

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::AlertDescription;

/// Why a server handshake failed, by class (the `reason` label of `serve`'s metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// The client refused the server's certificate (it trusts another CA, the name or address
    /// does not match, it expired): the alert it sent says so.
    BadCertificate,
    /// The client offered no ALPN protocol, or not [`ALPN`](super::ALPN).
    NoAlpn,
    /// Anything else: not TLS at all, a version or cipher the server does not speak, the
    /// connection closed mid-handshake.
    Other,
}

impl HandshakeFailure {
    /// Every class, in the order the metrics list them.
    pub const ALL: [HandshakeFailure; 3] = [
        HandshakeFailure::BadCertificate,
        HandshakeFailure::NoAlpn,
        HandshakeFailure::Other,
    ];

    /// The class's label value.
    pub fn label(self) -> &'static str {
        match self {
            HandshakeFailure::BadCertificate => "bad_certificate",
            HandshakeFailure::NoAlpn => "no_alpn",
            HandshakeFailure::Other => "other",
        }
    }

    /// The class of a failed server handshake's error.
    pub fn of(e: &io::Error) -> Self {
        let Some(tls) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return HandshakeFailure::Other;
        };
        match tls {
            rustls::Error::NoApplicationProtocol
            | rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol) => {
                HandshakeFailure::NoAlpn
            }
            rustls::Error::AlertReceived(
                AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnknownCA
                | AlertDescription::BadCertificateStatusResponse,
            ) => HandshakeFailure::BadCertificate,
            _ => HandshakeFailure::Other,
        }
    }
}

/// A TLS server's handshakes, counted (shared by the threads of `serve`'s relay workers).
#[derive(Debug, Default)]
pub struct TlsCounters {
    completed: AtomicU64,
    failed: [AtomicU64; 3],
}

/// A reading of [`TlsCounters`], summable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsCounts {
    /// Handshakes completed (ALPN agreed).
    pub completed: u64,
    /// Handshakes failed, by class, in the order of [`HandshakeFailure::ALL`].
    pub failed: [u64; 3],
}

impl TlsCounts {
    /// Handshakes failed of `class`.
    pub fn failed(&self, class: HandshakeFailure) -> u64 {
        self.failed.get(index(class)).copied().unwrap_or(0)
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &TlsCounts) {
        self.completed += other.completed;
        for (mine, theirs) in self.failed.iter_mut().zip(other.failed) {
            *mine += theirs;
        }
    }
}

fn index(class: HandshakeFailure) -> usize {
    match class {
        HandshakeFailure::BadCertificate => 0,
        HandshakeFailure::NoAlpn => 1,
        HandshakeFailure::Other => 2,
    }
}

impl TlsCounters {
    /// Counts a completed handshake.
    pub fn count_completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed handshake of `class`.
    pub fn count_failed(&self, class: HandshakeFailure) {
        if let Some(c) = self.failed.get(index(class)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts now.
    pub fn read(&self) -> TlsCounts {
        let mut counts = TlsCounts {
            completed: self.completed.load(Ordering::Relaxed),
            ..TlsCounts::default()
        };
        for (out, c) in counts.failed.iter_mut().zip(&self.failed) {
            *out = c.load(Ordering::Relaxed);
        }
        counts
    }
}

/// A client handshake that failed: the text names the server's address, the name verified
/// and rustls' reason (`TLS to 127.93.1.1:443 (verifying ap-proxy.agora.io): invalid peer
/// certificate: UnknownIssuer`). The error inside the `io::Error` a [`TlsNet`](super::TlsNet)
/// connect returns; [`is_handshake_failure`] recognises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeFailed(pub String);

impl fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandshakeFailed {}

/// Whether `e` is a failed TLS client handshake ([`HandshakeFailed`]), not a failed TCP
/// connect.
pub fn is_handshake_failure(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<HandshakeFailed>().is_some())
}
