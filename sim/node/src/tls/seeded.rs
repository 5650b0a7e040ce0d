//! The simulation's TLS crypto provider: rustls' ring provider with its randomness and its
//! key exchange replaced by deterministic ones drawn from a seed, so that the same world seed
//! gives the same TLS bytes, hence the same trace. **For simulations only**: everything here
//! is predictable from the seed by design.
//!
//! - [`SeededRandom`] is rustls' `secure_random` (client and server randoms, session ids,
//!   tickets): bytes of a thread's seeded [`Entropy`] stream ([`reseed`] at the start of each
//!   world; a turmoil world runs on one thread, in one deterministic order);
//! - [`SeededX25519`] is the only key-exchange group: X25519 (x25519-dalek) whose private
//!   keys are 32 bytes of the same stream (ring's own key exchange draws from the operating
//!   system); a peer's share that gives an all-zero secret (a low-order point) is refused;
//! - signatures are Ed25519 (ring; deterministic by construction), the ciphers ring's.
//!
//! The clock is the caller's: rustls' `TimeProvider` is handed to the configurations beside
//! this provider (the world passes its simulated clock as a [`ClockTime`]).

use std::cell::RefCell;
use std::sync::Arc;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::time::UnixTime;
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret,
    SupportedKxGroup,
};
use rustls::time_provider::TimeProvider;
use rustls::{Error, NamedGroup, PeerMisbehaved};
use x25519_dalek::{PublicKey, StaticSecret};

thread_local! {
    /// This thread's stream; a world [`reseed`]s it before it starts.
    static STREAM: RefCell<Entropy> = RefCell::new(Entropy::from_u64(0));
}

/// Restarts this thread's stream from `seed` (at the start of a world).
pub fn reseed(seed: u64) {
    STREAM.with(|s| *s.borrow_mut() = Entropy::from_u64(seed));
}

/// Fills `buf` from this thread's stream.
fn draw(buf: &mut [u8]) {
    STREAM.with(|s| s.borrow_mut().fill(buf));
}

/// rustls' randomness, from this thread's seeded stream.
#[derive(Debug)]
pub struct SeededRandom;

impl SecureRandom for SeededRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        draw(buf);
        Ok(())
    }
}

/// X25519 with private keys from this thread's seeded stream.
#[derive(Debug)]
pub struct SeededX25519;

impl SupportedKxGroup for SeededX25519 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let mut bytes = [0u8; 32];
        draw(&mut bytes);
        let secret = StaticSecret::from(bytes);
        let public = PublicKey::from(&secret);
        Ok(Box::new(X25519Exchange { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// One X25519 exchange in flight.
struct X25519Exchange {
    secret: StaticSecret,
    public: PublicKey,
}

impl ActiveKeyExchange for X25519Exchange {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        let peer: [u8; 32] = peer_pub_key
            .try_into()
            .map_err(|_| Error::from(PeerMisbehaved::InvalidKeyShare))?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        Ok(SharedSecret::from(&shared.as_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// rustls' clock from a function of the caller's (the simulation's virtual clock): what
/// certificates are checked against.
#[derive(Debug)]
pub struct ClockTime(pub fn() -> UnixTime);

impl TimeProvider for ClockTime {
    fn current_time(&self) -> Option<rustls_pki_types::UnixTime> {
        let now = (self.0)();
        Some(rustls_pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_millis(now.as_millis()),
        ))
    }
}

static RANDOM: SeededRandom = SeededRandom;
static X25519: SeededX25519 = SeededX25519;

/// The simulation's provider: ring's ciphers, signatures and key loading, seeded randomness
/// and key exchange (see the module docs).
pub fn provider() -> Arc<CryptoProvider> {
    let ring = rustls::crypto::ring::default_provider();
    Arc::new(CryptoProvider {
        kx_groups: vec![&X25519],
        secure_random: &RANDOM,
        ..ring
    })
}
