//! The simulation runs of a check: one SDK client behind the policy (and a peer in an open
//! enterprise, so that media is verified both ways), with the path pinned ([`Case`], [`Pins`]),
//! run in parallel on a few threads, bounded in number.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use cloudproxy_core::client::{ConnectionState, MediaPath};
use cloudproxy_core::engine::CloudProxyType;
use cloudproxy_core::socks5::ServerPolicy;
use cloudproxy_node::nodes::client::{ClientReport, ClientSpec, Op};

use super::model::{Case, Pins, Route};
use super::{Media, PathSeen, Progress, MAX_RUNS, PEER_IP, SDK_IP};
use crate::pcap::Capture;
use crate::policy::{Policy, Proto};
use crate::world::{
    edge_endpoints, ip, run_world, Fault, HttpProxySpec, SocksSpec, WorldSpec, AP_IPS, EDGE_IP,
};
use crate::world::{RELAY_IPS, SDRTN_BLOCK};

const SDK_UID: u32 = 1;
const PEER_UID: u32 = 2;
/// When the client joins, in every run.
pub(crate) const JOIN_AT: Duration = Duration::from_millis(100);
/// Most threads a check runs on.
const MAX_THREADS: usize = 4;

/// One run to do.
#[derive(Clone, Debug)]
pub(crate) struct RunSpec {
    /// The SDK's calls before joining.
    pub(crate) params: Vec<String>,
    /// The route they give (for the SOCKS5 server to simulate).
    pub(crate) route: Route,
    /// The enterprise's policy for this run.
    pub(crate) policy: Policy,
    /// The path pinned.
    pub(crate) case: Case,
    /// The ports chosen at run time, pinned.
    pub(crate) pins: Pins,
    /// How long the client stays.
    pub(crate) duration: Duration,
    /// Faults (a lost relay or access point).
    pub(crate) faults: Vec<(Duration, Fault)>,
    /// Keep the trace and a pcap of the run.
    pub(crate) evidence: bool,
}

/// The evidence of one run: its event trace and its traffic.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// The event trace, one JSON object per line.
    pub trace: Vec<String>,
    /// The simulated traffic (write it with [`Capture::save`]).
    pub capture: Capture,
}

/// What a run leaves behind, in a form that crosses threads.
#[derive(Clone, Debug)]
pub(crate) struct RunFacts {
    pub(crate) sdk: ClientReport,
    pub(crate) peer_from_sdk: u64,
    pub(crate) denied: BTreeSet<(Proto, SocketAddr)>,
    pub(crate) error: Option<String>,
    pub(crate) trace_hash: String,
    pub(crate) evidence: Option<Evidence>,
}

/// The runs of one check (and of the checks of its alternatives): counted, bounded by
/// [`MAX_RUNS`], reported to a progress callback.
pub(crate) struct Runner<'a> {
    seed: u64,
    compat: bool,
    progress: &'a (dyn Fn(&Progress) + Sync),
    runs: AtomicUsize,
}

/// The bound on runs would be exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OverBudget;

impl<'a> Runner<'a> {
    pub(crate) fn new(seed: u64, compat: bool, progress: &'a (dyn Fn(&Progress) + Sync)) -> Self {
        Runner {
            seed,
            compat,
            progress,
            runs: AtomicUsize::new(0),
        }
    }

    /// How many runs so far.
    pub(crate) fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// Runs every spec (in parallel), results in the order of `specs`; refuses when the batch
    /// would take the check past [`MAX_RUNS`].
    pub(crate) fn run_all(
        &self,
        phase: &str,
        specs: &[RunSpec],
    ) -> Result<Vec<RunFacts>, OverBudget> {
        let before = self.runs();
        if before + specs.len() > MAX_RUNS {
            return Err(OverBudget);
        }
        self.runs.fetch_add(specs.len(), Ordering::SeqCst);
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_THREADS)
            .min(specs.len().max(1));
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<RunFacts>>> = Mutex::new(vec![None; specs.len()]);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(spec) = specs.get(i) else { break };
                    let facts = self.run_one(spec);
                    if let Some(slot) = results.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i)
                    {
                        *slot = Some(facts);
                    }
                    let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                    (self.progress)(&Progress {
                        phase: phase.to_owned(),
                        done: finished,
                        of: specs.len(),
                        runs: before + finished,
                        max_runs: MAX_RUNS,
                    });
                });
            }
        });
        Ok(results
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .map(|r| r.expect("every run of the batch ran"))
            .collect())
    }

    /// One run of the world.
    fn run_one(&self, run: &RunSpec) -> RunFacts {
        let mut spec = WorldSpec::new(self.seed, run.duration);
        let calls: Vec<&str> = run.params.iter().map(String::as_str).collect();
        let mut policy = run.policy.clone();
        policy.dns = run.case.dns;
        let a = spec.enterprise("enterprise", SDK_IP, policy);
        let mut sdk = ClientSpec::new("sdk", SDK_UID, "check", &calls, JOIN_AT);
        sdk.compat = self.compat;
        if run.route.tcp_443() {
            // setCloudProxy(force TCP) first, as the check's engine did.
            sdk.script
                .insert(0, (JOIN_AT, Op::SetCloudProxy(CloudProxyType::ForceTcp)));
        }
        spec.enterprises[a].clients.push(sdk);
        spec.enterprises[a].socks = socks_spec(&run.route, &run.pins);
        spec.enterprises[a].http_proxy = http_spec(&run.route);
        let b = spec.enterprise("open", PEER_IP, Policy::open());
        spec.enterprises[b]
            .clients
            .push(ClientSpec::new("peer", PEER_UID, "check", &[], JOIN_AT));
        spec.relay_order = run.case.relay_order();
        spec.relay_udp_ports = run
            .pins
            .relay_udp
            .iter()
            .map(|(relay, port)| (*relay, *port..=*port))
            .collect();
        spec.faults = run.faults.clone();
        let capture = run.evidence.then(Capture::default);
        spec.capture = capture.clone();
        let outcome = run_world(&spec);
        let evidence = capture.map(|capture| Evidence {
            trace: outcome.trace.lines(),
            capture,
        });
        RunFacts {
            sdk: outcome.clients.get("sdk").cloned().unwrap_or_default(),
            peer_from_sdk: outcome
                .clients
                .get("peer")
                .and_then(|p| p.media_from.get(&SDK_UID))
                .map_or(0, |s| s.received),
            denied: outcome
                .firewalls
                .get("enterprise")
                .map(|f| f.denied.clone())
                .unwrap_or_default(),
            error: outcome.error.clone(),
            trace_hash: outcome.trace.hash(),
            evidence,
        }
    }
}

/// Whether the world can put a SOCKS5 server at `addr`: an IPv4 address of the enterprise,
/// not one the world uses already.
pub(crate) fn socks_simulated(addr: SocketAddr) -> bool {
    let taken: Vec<IpAddr> = AP_IPS
        .iter()
        .chain(RELAY_IPS.iter())
        .chain([EDGE_IP, SDK_IP, PEER_IP].iter())
        .map(|a| ip(a))
        .collect();
    let sdrtn: cloudproxy_core::relay::Cidr = SDRTN_BLOCK.parse().expect("a valid block");
    !taken.contains(&addr.ip())
        && !sdrtn.contains(addr.ip())
        && !addr.ip().is_loopback()
        && !addr.ip().is_unspecified()
        && !addr.ip().is_multicast()
        && addr.is_ipv4()
        && addr.port() != 0
}

/// The SOCKS5 server of a type-0 route, with its UDP relay port pinned.
fn socks_spec(route: &Route, pins: &Pins) -> Option<SocksSpec> {
    match route {
        Route::Socks {
            server,
            simulated: true,
            ..
        } => Some(SocksSpec {
            ip: server.ip(),
            port: server.port(),
            policy: ServerPolicy::default(),
            udp_ports: pins.socks_udp.map(|p| p..=p),
        }),
        _ => None,
    }
}

/// The HTTP proxy of a type-3 route, asking for the configured credentials.
fn http_spec(route: &Route) -> Option<HttpProxySpec> {
    match route {
        Route::Http {
            proxy: Some(proxy),
            simulated: true,
            credentials,
            ..
        } => Some(HttpProxySpec {
            ip: proxy.ip(),
            port: proxy.port(),
            name: None,
            credentials: credentials.clone(),
        }),
        _ => None,
    }
}

/// What a run showed of the client's path.
pub(crate) fn path_seen(facts: &RunFacts) -> PathSeen {
    let sdk = &facts.sdk;
    let joined = sdk.join_time.is_some();
    let received = sdk.media_from.get(&PEER_UID).map_or(0, |s| s.received);
    let both_ways = received > 0 && facts.peer_from_sdk > 0;
    let media = match (joined && both_ways, sdk.media_path) {
        (true, Some(MediaPath::Udp)) => Media::Udp,
        (true, Some(MediaPath::Tcp)) => Media::Tcp,
        _ => Media::None,
    };
    let (signalling, via) = match (joined, sdk.proxy) {
        (false, _) => ("none".to_owned(), None),
        (true, Some((0, addr))) => (format!("socks5 {addr}"), Some(addr)),
        (true, Some((3, addr))) => (format!("http proxy {addr}"), Some(addr)),
        (true, Some((_, addr))) => (format!("cloud relay {addr}"), Some(addr)),
        (true, None) => (
            format!("direct {}", edge_endpoints().signalling),
            Some(edge_endpoints().signalling),
        ),
    };
    let mut reason = sdk.last_reason.clone();
    if reason.is_empty() && sdk.state != Some(ConnectionState::Connected) {
        reason = "never tried to connect".to_owned();
    }
    PathSeen {
        joined,
        join_ms: sdk.join_time.map(|t| t.as_millis() as u64),
        signalling,
        via,
        media,
        media_received: received,
        media_delivered: facts.peer_from_sdk,
        reason,
    }
}

/// Whether the client heard media in the `window_s` seconds before `until` (since the start).
pub(crate) fn media_before(facts: &RunFacts, until: Duration, window_s: u64) -> bool {
    let end = until.as_secs();
    facts
        .sdk
        .media_per_second
        .range(end.saturating_sub(window_s)..end)
        .any(|(_, n)| *n > 0)
}
