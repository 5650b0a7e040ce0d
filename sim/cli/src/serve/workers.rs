//! The relays of `serve` on every core: `--workers N` threads, each running one shard of
//! every relay address on its own single-threaded runtime.
//!
//! - **TCP**: every shard listens on the relay's port with `SO_REUSEPORT`; the kernel spreads
//!   new connections over them. A tunnel is served by the shard that accepted it; its session
//!   id carries that shard ([`Shard`]). A media channel that lands on another shard is handed
//!   to the owner, descriptor and bytes read ([`RelayHost::handoff_out`], [`super::handoff`]).
//! - **TLS** (beyond the seed): every shard also listens on the TLS port with `SO_REUSEPORT`
//!   and does its own handshakes. A TLS connection whose session another shard owns moves
//!   there too, descriptor, bytes read and rustls state ([`super::handoff`]).
//! - **UDP**: the media ports are dealt out among the shards (port `start + k` to shard
//!   `k % N`); a session is announced a port of its own shard, so its datagrams arrive there.
//! - **Shared**: one [`LocalLedger`] per relay address behind a lock: used nonces (a replayed
//!   ticket is refused on every shard) and the global and per-address bounds.
//! - **Contained**: a shard that fails ends its own sessions only; its ledger slots are given
//!   back, the others keep serving.
//! - **Metrics**: each shard publishes its state into its [`ShardSlot`] when a scrape asks
//!   (and every second); the endpoint sums the shards of each relay. TLS counters are
//!   atomics each shard updates as it goes ([`ShardTls`]).

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::relay::{
    Ledger, LocalLedger, Nonce, NonceRefusal, RelayConfig, Shard, Slot, SlotRefusal,
};
use cloudproxy_core::time::Instant;
use cloudproxy_node::net::TokioNet;
use cloudproxy_node::nodes::relay::{run_relay_with, RelayHost, RelayShared};
use cloudproxy_node::tls::Tls;

pub use super::handoff::ShardTls;
use super::handoff::{handoff_out, take_over, Moving, HANDOFF_QUEUE};
use cloudproxy_node::trace::Trace;
use tokio::sync::{mpsc, Notify};

use super::config::Plan;
use super::logging;
use super::shutdown::Shutdown;

/// One shard's published state, refreshed when asked ([`refresh`]) and every
/// [`EXPORT_INTERVAL`].
#[derive(Debug, Default)]
pub struct ShardSlot {
    state: Mutex<RelayShared>,
    /// Bumped at each publication.
    generation: AtomicU64,
    /// A scrape asks for a fresh publication.
    asked: Notify,
}

/// A shard's slot, shared by the shard's thread and the metrics endpoint.
pub type Exported = Arc<ShardSlot>;

/// How often a shard publishes its state unasked.
pub const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Longest a scrape waits for the shards to publish.
const REFRESH_WAIT: Duration = Duration::from_millis(200);

/// Asks every shard of `relays` to publish its state now, and waits (a little) until they
/// have: what a scrape reads is then at most one round of the relay loop old.
pub async fn refresh<'a>(relays: impl IntoIterator<Item = &'a Exported>) {
    let asked: Vec<(&Exported, u64)> = relays
        .into_iter()
        .map(|slot| {
            let seen = slot.generation.load(Ordering::Acquire);
            slot.asked.notify_one();
            (slot, seen)
        })
        .collect();
    let _ = tokio::time::timeout(REFRESH_WAIT, async {
        while asked
            .iter()
            .any(|(slot, seen)| slot.generation.load(Ordering::Acquire) == *seen)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

/// A shard's handle on its relay's shared [`LocalLedger`].
#[derive(Debug)]
pub struct ShardLedger {
    shard: u16,
    inner: Arc<Mutex<LocalLedger>>,
}

impl ShardLedger {
    fn with<T>(&self, f: impl FnOnce(&mut LocalLedger) -> T) -> T {
        // A shard that panicked while holding the lock leaves the ledger consistent (every
        // method completes its bookkeeping before returning): keep using it.
        let mut ledger = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut ledger)
    }
}

impl Ledger for ShardLedger {
    fn acquire(&mut self, slot: Slot, ip: IpAddr) -> Result<(), SlotRefusal> {
        let shard = self.shard;
        self.with(|l| l.acquire_for(shard, slot, ip))
    }
    fn release(&mut self, slot: Slot, ip: IpAddr) {
        let shard = self.shard;
        self.with(|l| l.release_for(shard, slot, ip));
    }
    fn nonce_used(&mut self, nonce: &Nonce, now: Instant) -> bool {
        self.with(|l| l.nonce_used(nonce, now))
    }
    fn claim_nonce(
        &mut self,
        nonce: Nonce,
        expires_at: Instant,
        now: Instant,
    ) -> Result<(), NonceRefusal> {
        self.with(|l| l.claim_nonce(nonce, expires_at, now))
    }
}

/// One relay address served by the workers.
pub struct RelayShards {
    /// The address.
    pub ip: IpAddr,
    /// Each shard's published state.
    pub exported: Vec<Exported>,
    /// Each shard's TLS handshakes and moves.
    pub tls: Vec<Arc<ShardTls>>,
    ledger: Arc<Mutex<LocalLedger>>,
    senders: Vec<mpsc::Sender<Moving>>,
    receivers: Vec<Option<mpsc::Receiver<Moving>>>,
}

/// What a worker thread reports when one of its relays ends: (relay, shard, why).
pub type Ended = (IpAddr, u16, Result<(), String>);

/// Starts `workers` threads serving every relay of `plan`; `ended` hears each shard that ends.
pub fn start(
    plan: &Plan,
    workers: u16,
    entropy: &mut Entropy,
    shutdown: &Shutdown,
    ended: mpsc::UnboundedSender<Ended>,
) -> std::io::Result<Vec<RelayShards>> {
    let mut relays: Vec<RelayShards> = plan
        .relays
        .iter()
        .map(|ip| {
            let (senders, receivers) = (0..workers)
                .map(|_| {
                    let (tx, rx) = mpsc::channel(HANDOFF_QUEUE);
                    (tx, Some(rx))
                })
                .unzip();
            RelayShards {
                ip: *ip,
                exported: (0..workers).map(|_| Exported::default()).collect(),
                tls: (0..workers).map(|_| Arc::default()).collect(),
                ledger: Arc::new(Mutex::new(LocalLedger::new(&plan.relay))),
                senders,
                receivers,
            }
        })
        .collect();
    for w in 0..workers {
        let mut jobs = Vec::new();
        for r in &mut relays {
            jobs.push(Job {
                ip: r.ip,
                shard: Shard::new(w, workers).unwrap_or(Shard::ONLY),
                ledger: r.ledger.clone(),
                senders: r.senders.clone(),
                incoming: r.receivers[usize::from(w)].take(),
                exported: r.exported[usize::from(w)].clone(),
                tls: r.tls[usize::from(w)].clone(),
                entropy: entropy.fork(),
            });
        }
        let (plan, shutdown, ended) = (plan.clone(), shutdown.clone(), ended.clone());
        std::thread::Builder::new()
            .name(format!("relay-worker-{w}"))
            .spawn(move || worker(plan, jobs, shutdown, ended))?;
    }
    Ok(relays)
}

/// What a worker runs for one relay address.
struct Job {
    ip: IpAddr,
    shard: Shard,
    ledger: Arc<Mutex<LocalLedger>>,
    senders: Vec<mpsc::Sender<Moving>>,
    incoming: Option<mpsc::Receiver<Moving>>,
    exported: Exported,
    tls: Arc<ShardTls>,
    entropy: Entropy,
}

/// A worker thread: one runtime, one shard of every relay.
fn worker(plan: Plan, jobs: Vec<Job>, shutdown: Shutdown, ended: mpsc::UnboundedSender<Ended>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            for job in &jobs {
                let _ = ended.send((job.ip, job.shard.index, Err(e.to_string())));
            }
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let mut shards = Vec::new();
        for job in jobs {
            let (ip, index, ledger) = (job.ip, job.shard.index, job.ledger.clone());
            let task = tokio::task::spawn_local(run_shard(plan.clone(), job, shutdown.clone()));
            shards.push((ip, index, ledger, task));
        }
        for (ip, index, ledger, task) in shards {
            let why = match task.await {
                Ok(result) => result,
                Err(e) => Err(format!("the shard failed: {e}")),
            };
            if why.is_err() {
                // Its sessions are gone: so are their slots.
                ledger
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .release_shard(index);
            }
            let _ = ended.send((ip, index, why));
        }
    });
}

/// One shard of one relay, until the shutdown.
async fn run_shard(plan: Plan, job: Job, shutdown: Shutdown) -> Result<(), String> {
    let Job {
        ip,
        shard,
        ledger,
        senders,
        incoming,
        exported,
        tls: tls_stats,
        entropy,
    } = job;
    let mut config: RelayConfig = plan.relay.clone();
    config.shard = shard;
    let shared = Rc::new(RefCell::new(RelayShared::default()));
    let export = tokio::task::spawn_local(export_loop(shared.clone(), exported.clone()));
    let mut host = RelayHost::with_shutdown(shutdown.wait());
    host.tcp_port = plan.relay_tcp_port;
    host.flush_timeout = plan.shutdown_grace;
    host.max_queued_bytes_per_stream = plan.max_queued_bytes_per_stream;
    host.ledger = Some(Box::new(ShardLedger {
        shard: shard.index,
        inner: ledger,
    }));
    host.handoff_out = Some(handoff_out(senders, tls_stats.clone()));
    let server = plan.relay_tls.as_ref().and_then(|tls| tls.server.clone());
    host.handoff_in = incoming.map(|rx| take_over(rx, server));
    let mut net = TokioNet::new(ip);
    if shard.count > 1 {
        net = net.with_reuse_port();
    }
    if plan.copy_tunnels {
        net = net.with_copy_tunnels();
    }
    if !plan.io_uring {
        net = net.without_io_uring();
    }
    // TLS (beyond the seed) on every worker, counted per shard; a TLS connection for another
    // shard's session moves there (see `handoff_out`).
    let tls = match &plan.relay_tls {
        Some(tls) => {
            host.also_tcp_ports = tls.ports.clone();
            tls.clone().counting(tls_stats.handshakes.clone())
        }
        None => Tls::default(),
    };
    let net = tls.reporting_to(super::tls_log()).wrap(net);
    let name = if shard.count > 1 {
        format!("relay {ip} shard {}", shard.index)
    } else {
        format!("relay {ip}")
    };
    let trace = Trace::tap(logging::trace_line);
    let result = run_relay_with(net, name, config, entropy, shared.clone(), trace, host).await;
    export.abort();
    publish(&shared, &exported);
    result.map_err(|e| e.to_string())
}

/// Publishes a shard's state when asked, and every [`EXPORT_INTERVAL`].
async fn export_loop(shared: Rc<RefCell<RelayShared>>, exported: Exported) {
    loop {
        publish(&shared, &exported);
        let _ = tokio::time::timeout(EXPORT_INTERVAL, exported.asked.notified()).await;
    }
}

fn publish(shared: &Rc<RefCell<RelayShared>>, exported: &Exported) {
    let copy = shared.borrow().clone();
    *exported
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = copy;
    exported.generation.fetch_add(1, Ordering::Release);
}

/// The state of a relay: the sum of its shards' (peaks are summed too: an upper bound).
pub fn merged(shards: &[Exported]) -> RelayShared {
    let mut total = RelayShared {
        listening: !shards.is_empty(),
        ..RelayShared::default()
    };
    for shard in shards {
        let s = shard.state.lock().unwrap_or_else(PoisonError::into_inner);
        total.counters.merge(&s.counters);
        total
            .upstream_destinations
            .extend(s.upstream_destinations.iter().copied());
        total.sessions += s.sessions;
        total.peak_sessions += s.peak_sessions;
        total.connections += s.connections;
        total.peak_connections += s.peak_connections;
        total.buffered_bytes += s.buffered_bytes;
        total.peak_buffered_bytes += s.peak_buffered_bytes;
        total.queued_bytes += s.queued_bytes;
        total.peak_queued_bytes += s.peak_queued_bytes;
        total.stream_overflows += s.stream_overflows;
        total.udp_allocs += s.udp_allocs;
        total.udp_send_dropped += s.udp_send_dropped;
        total.udp_gro_messages += s.udp_gro_messages;
        total.udp_gro_datagrams += s.udp_gro_datagrams;
        total.udp_ring_submits += s.udp_ring_submits;
        total.udp_ring_datagrams += s.udp_ring_datagrams;
        total.udp_ring_loops += s.udp_ring_loops;
        total.udp_spare_buffers += s.udp_spare_buffers;
        total.udp_buffers_allocated += s.udp_buffers_allocated;
        total.tunnels += s.tunnels;
        total.tunnels_kernel_total += s.tunnels_kernel_total;
        total.handoffs_out += s.handoffs_out;
        total.handoffs_in += s.handoffs_in;
        total.listening &= s.listening;
    }
    total
}

/// A slot holding `state` (for tests of the endpoint).
pub fn slot(state: RelayShared) -> Exported {
    let slot = ShardSlot::default();
    *slot.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    Arc::new(slot)
}
