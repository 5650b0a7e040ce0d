//! The replay cache: ticket nonces that already opened a tunnel.

use std::collections::{BTreeMap, BTreeSet};

use crate::time::Instant;
use crate::wire::ticket::NONCE_LEN;

/// A ticket nonce.
type Nonce = [u8; NONCE_LEN];

/// Used nonces, each kept until its ticket expires (after which the ticket itself is refused as
/// expired, so forgetting the nonce is safe). Bounded: the owner refuses new tickets when full.
#[derive(Clone, Debug)]
pub(super) struct NonceCache {
    /// Nonce → its ticket's expiry.
    by_nonce: BTreeMap<Nonce, Instant>,
    /// The same entries, ordered by expiry, to purge the oldest first.
    by_expiry: BTreeSet<(Instant, Nonce)>,
    /// Most entries.
    capacity: usize,
}

impl NonceCache {
    /// An empty cache of at most `capacity` nonces.
    pub(super) fn new(capacity: usize) -> Self {
        NonceCache {
            by_nonce: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            capacity,
        }
    }

    /// Forgets the nonces whose ticket has expired at `now`.
    pub(super) fn purge(&mut self, now: Instant) {
        while let Some(&(expires_at, nonce)) = self.by_expiry.first() {
            if expires_at > now {
                break;
            }
            self.by_expiry.pop_first();
            self.by_nonce.remove(&nonce);
        }
    }

    /// Whether `nonce` has been used.
    pub(super) fn contains(&self, nonce: &Nonce) -> bool {
        self.by_nonce.contains_key(nonce)
    }

    /// Whether no further nonce fits.
    pub(super) fn is_full(&self) -> bool {
        self.by_nonce.len() >= self.capacity
    }

    /// Remembers `nonce` until `expires_at`. The caller checks [`NonceCache::is_full`] first;
    /// an insert into a full cache is refused (returns false).
    pub(super) fn insert(&mut self, nonce: Nonce, expires_at: Instant) -> bool {
        if self.is_full() {
            return false;
        }
        if let Some(old) = self.by_nonce.insert(nonce, expires_at) {
            self.by_expiry.remove(&(old, nonce));
        }
        self.by_expiry.insert((expires_at, nonce));
        true
    }

    /// How many nonces are remembered.
    pub(super) fn len(&self) -> usize {
        self.by_nonce.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_expiry_and_refuses_when_full() {
        let mut cache = NonceCache::new(2);
        assert!(cache.insert([1; 16], Instant::from_millis(10)));
        assert!(cache.insert([2; 16], Instant::from_millis(20)));
        assert!(cache.is_full());
        assert!(!cache.insert([3; 16], Instant::from_millis(30)));
        assert!(cache.contains(&[1; 16]) && !cache.contains(&[3; 16]));
        cache.purge(Instant::from_millis(9));
        assert_eq!(cache.len(), 2);
        cache.purge(Instant::from_millis(10));
        assert_eq!(cache.len(), 1);
        assert!(!cache.contains(&[1; 16]) && cache.contains(&[2; 16]));
        assert!(cache.insert([3; 16], Instant::from_millis(30)));
        cache.purge(Instant::MAX);
        assert_eq!(cache.len(), 0);
    }
}
