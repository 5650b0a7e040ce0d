//! The ledger: what the shards of one relay address must agree on.
//!
//! A relay address may be served by several [`Relay`](super::Relay) machines, one per core
//! (shards, see [`Shard`](super::Shard)). Each machine is single-threaded and deterministic;
//! what they must share goes through a [`Ledger`] injected at construction
//! ([`Relay::with_ledger`](super::Relay::with_ledger)):
//!
//! - **used ticket nonces**, so that a replayed ticket is refused on every shard;
//! - **the slots of the global and per-address bounds**: sessions and pending handshakes.
//!
//! [`LocalLedger`] is the ledger of a relay alone (the default, and the simulation's). A
//! driver that runs shards on threads wraps one [`LocalLedger`] behind a lock and gives each
//! shard a handle; the relay calls it synchronously, a few times per connection (never per
//! byte or datagram), so contention is negligible.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use super::replay::NonceCache;
use super::RelayConfig;
use crate::time::Instant;
use crate::wire::ticket::NONCE_LEN;

/// A ticket nonce.
pub type Nonce = [u8; NONCE_LEN];

/// A kind of bounded slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// A connection in its handshake (awaiting its first message, or its upstream).
    Pending,
    /// A session (connecting or open).
    Session,
}

/// Why a slot was not granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotRefusal {
    /// The bound over every client is reached.
    Total,
    /// The bound for this client address is reached.
    PerClient,
}

/// Why a nonce could not be claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NonceRefusal {
    /// It already opened a tunnel (on this shard or another).
    Replayed,
    /// The replay cache is full: nothing can be remembered until tickets expire.
    Full,
}

/// What the shards of one relay share: used ticket nonces (a replayed ticket is refused on
/// every shard) and the slots of the global and per-address bounds (sessions, pending
/// handshakes). [`LocalLedger`] is the ledger of a relay alone; a driver running shards on
/// threads puts one behind a lock and gives each shard a handle
/// ([`Relay::with_ledger`](super::Relay::with_ledger)). The relay calls it synchronously, a few
/// times per connection, never per byte or datagram.
///
/// Every method is called by one shard at a time and answers at once. An implementation must
/// keep acquisitions and releases balanced per shard: a slot released by a shard was acquired
/// by it.
pub trait Ledger: fmt::Debug {
    /// Takes a slot of `slot` for client address `ip` if the global and per-address bounds
    /// allow it.
    fn acquire(&mut self, slot: Slot, ip: IpAddr) -> Result<(), SlotRefusal>;
    /// Gives back a slot taken with [`Ledger::acquire`].
    fn release(&mut self, slot: Slot, ip: IpAddr);
    /// Whether `nonce` already opened a tunnel (nonces of expired tickets are forgotten).
    fn nonce_used(&mut self, nonce: &Nonce, now: Instant) -> bool;
    /// Records `nonce` as used until `expires_at`, unless it already is (then `Replayed`, even
    /// if another shard claimed it a moment ago) or the cache is full.
    fn claim_nonce(
        &mut self,
        nonce: Nonce,
        expires_at: Instant,
        now: Instant,
    ) -> Result<(), NonceRefusal>;
}

/// Bounds of one kind of slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bounds {
    total: usize,
    per_client: usize,
}

/// Counts of one kind of slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Counts {
    total: usize,
    per_client: BTreeMap<IpAddr, usize>,
}

/// The ledger of one relay address, held in one place: the bounds of its configuration and
/// the nonce cache. Shards on threads share one behind a lock, each through a handle of the
/// driver's that calls the `*_for` methods with its shard's index; slots are kept per shard so
/// that the slots of a shard that failed can be given back at once
/// ([`LocalLedger::release_shard`]).
#[derive(Clone, Debug)]
pub struct LocalLedger {
    pending: Bounds,
    sessions: Bounds,
    counts: BTreeMap<Slot, Counts>,
    /// Slots held per (shard, kind, address), to give back a failed shard's.
    held: BTreeMap<(u16, Slot, IpAddr), usize>,
    nonces: NonceCache,
}

impl LocalLedger {
    /// An empty ledger with the bounds of `config`.
    pub fn new(config: &RelayConfig) -> Self {
        LocalLedger {
            pending: Bounds {
                total: config.max_pending_handshakes,
                per_client: config.max_pending_handshakes_per_client_ip,
            },
            sessions: Bounds {
                total: config.max_sessions_total,
                per_client: config.max_sessions_per_client_ip,
            },
            counts: BTreeMap::new(),
            held: BTreeMap::new(),
            nonces: NonceCache::new(config.max_used_nonces),
        }
    }

    /// [`Ledger::acquire`] on behalf of shard `shard`.
    pub fn acquire_for(&mut self, shard: u16, slot: Slot, ip: IpAddr) -> Result<(), SlotRefusal> {
        let bounds = match slot {
            Slot::Pending => self.pending,
            Slot::Session => self.sessions,
        };
        let counts = self.counts.entry(slot).or_default();
        if counts.total >= bounds.total {
            return Err(SlotRefusal::Total);
        }
        let mine = counts.per_client.entry(ip).or_insert(0);
        if *mine >= bounds.per_client {
            if *mine == 0 {
                counts.per_client.remove(&ip);
            }
            return Err(SlotRefusal::PerClient);
        }
        *mine += 1;
        counts.total += 1;
        *self.held.entry((shard, slot, ip)).or_insert(0) += 1;
        Ok(())
    }

    /// [`Ledger::release`] on behalf of shard `shard` (a slot it does not hold is ignored).
    pub fn release_for(&mut self, shard: u16, slot: Slot, ip: IpAddr) {
        self.release_n(shard, slot, ip, 1);
    }

    fn release_n(&mut self, shard: u16, slot: Slot, ip: IpAddr, n: usize) {
        let key = (shard, slot, ip);
        let Some(held) = self.held.get_mut(&key) else {
            return;
        };
        let n = n.min(*held);
        *held -= n;
        if *held == 0 {
            self.held.remove(&key);
        }
        if let Some(counts) = self.counts.get_mut(&slot) {
            counts.total = counts.total.saturating_sub(n);
            if let Some(mine) = counts.per_client.get_mut(&ip) {
                *mine = mine.saturating_sub(n);
                if *mine == 0 {
                    counts.per_client.remove(&ip);
                }
            }
        }
    }

    /// Gives back every slot shard `shard` holds (it failed, and its sessions with it). Its
    /// nonces stay used.
    pub fn release_shard(&mut self, shard: u16) {
        let mine: Vec<((u16, Slot, IpAddr), usize)> = self
            .held
            .range((shard, Slot::Pending, IpAddr::from([0u8; 4]))..)
            .take_while(|((s, _, _), _)| *s == shard)
            .map(|(k, v)| (*k, *v))
            .collect();
        for ((s, slot, ip), n) in mine {
            self.release_n(s, slot, ip, n);
        }
    }

    /// Slots of `slot` held now, over every shard and client.
    pub fn held(&self, slot: Slot) -> usize {
        self.counts.get(&slot).map_or(0, |c| c.total)
    }

    /// Nonces remembered now.
    pub fn nonces_held(&self) -> usize {
        self.nonces.len()
    }
}

impl Ledger for LocalLedger {
    fn acquire(&mut self, slot: Slot, ip: IpAddr) -> Result<(), SlotRefusal> {
        self.acquire_for(0, slot, ip)
    }

    fn release(&mut self, slot: Slot, ip: IpAddr) {
        self.release_for(0, slot, ip);
    }

    fn nonce_used(&mut self, nonce: &Nonce, now: Instant) -> bool {
        self.nonces.purge(now);
        self.nonces.contains(nonce)
    }

    fn claim_nonce(
        &mut self,
        nonce: Nonce,
        expires_at: Instant,
        now: Instant,
    ) -> Result<(), NonceRefusal> {
        self.nonces.purge(now);
        if self.nonces.contains(&nonce) {
            return Err(NonceRefusal::Replayed);
        }
        if !self.nonces.insert(nonce, expires_at) {
            return Err(NonceRefusal::Full);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([198, 18, 0, last])
    }

    #[test]
    fn bounds_hold_globally_and_per_client_and_a_failed_shard_gives_its_slots_back() {
        let config = RelayConfig {
            max_pending_handshakes: 3,
            max_pending_handshakes_per_client_ip: 2,
            ..RelayConfig::default()
        };
        let mut ledger = LocalLedger::new(&config);
        assert_eq!(ledger.acquire_for(0, Slot::Pending, ip(1)), Ok(()));
        assert_eq!(ledger.acquire_for(1, Slot::Pending, ip(1)), Ok(()));
        assert_eq!(
            ledger.acquire_for(1, Slot::Pending, ip(1)),
            Err(SlotRefusal::PerClient)
        );
        assert_eq!(ledger.acquire_for(1, Slot::Pending, ip(2)), Ok(()));
        assert_eq!(
            ledger.acquire_for(0, Slot::Pending, ip(3)),
            Err(SlotRefusal::Total)
        );
        // Sessions are counted apart.
        assert_eq!(ledger.acquire_for(0, Slot::Session, ip(3)), Ok(()));
        ledger.release_shard(1);
        assert_eq!(ledger.held(Slot::Pending), 1);
        assert_eq!(ledger.held(Slot::Session), 1);
        // A release of what a shard does not hold changes nothing.
        ledger.release_for(1, Slot::Pending, ip(1));
        assert_eq!(ledger.held(Slot::Pending), 1);
        ledger.release_for(0, Slot::Pending, ip(1));
        assert_eq!(ledger.held(Slot::Pending), 0);
        assert!(ledger
            .counts
            .values()
            .all(|c| c.per_client.is_empty() || c.total > 0));
    }

    #[test]
    fn a_nonce_is_claimed_once_until_its_ticket_expires() {
        let config = RelayConfig {
            max_used_nonces: 1,
            ..RelayConfig::default()
        };
        let mut ledger = LocalLedger::new(&config);
        let (t0, t1) = (Instant::from_millis(0), Instant::from_millis(10));
        assert!(!ledger.nonce_used(&[1; 16], t0));
        assert_eq!(ledger.claim_nonce([1; 16], t1, t0), Ok(()));
        assert!(ledger.nonce_used(&[1; 16], t0));
        assert_eq!(
            ledger.claim_nonce([1; 16], t1, t0),
            Err(NonceRefusal::Replayed)
        );
        assert_eq!(ledger.claim_nonce([2; 16], t1, t0), Err(NonceRefusal::Full));
        assert!(!ledger.nonce_used(&[1; 16], t1));
        assert_eq!(ledger.claim_nonce([2; 16], t1, t1), Ok(()));
    }
}
