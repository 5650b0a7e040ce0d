//! Real sockets: the simulation's node code on tokio, as a deployable cloud proxy
//! (`cloudproxy serve`), an SD-RTN edge for tests and demos (`cloudproxy edge`) and an SDK
//! client (`cloudproxy call`). `docs/serving.md` is the operator's guide.
//!
//! Every node runs exactly the code the simulation runs ([`run_ap_on`],
//! [`run_relay_with`](cloudproxy_node::nodes::relay::run_relay_with),
//! [`run_edge`](cloudproxy_node::nodes::edge::run_edge), [`run_client`](cloudproxy_node::nodes::client::run_client)),
//! over [`TokioNet`] instead of `SimNet`, each on a single-threaded runtime (the nodes are
//! `spawn_local` tasks in a `LocalSet`, as on a turmoil host): the access points and the
//! metrics endpoint on the caller's, the relays on `--workers` threads of their own, one shard
//! of every relay each ([`workers`]). What is only here: the configuration file, the key
//! handling, the workers, the metrics endpoint, logs and signals.

pub mod call;
pub mod config;
pub mod edge;
pub mod endpoint;
pub mod handoff;
pub mod input;
pub mod logging;
pub mod metrics;
pub mod rlimit;
pub mod shutdown;
pub mod workers;

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::relay::ApCounters;
use tokio::sync::mpsc;

use cloudproxy_node::net::{Net, TokioNet};
use cloudproxy_node::nodes::ap::run_ap_on_with;
use cloudproxy_node::trace::Trace;
use config::Plan;
use metrics::Sources;
use shutdown::Shutdown;

/// How long the nodes may take to bind every socket.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Randomness for real use (ticket nonces, session ids): seeded from the operating system.
pub fn os_entropy() -> io::Result<Entropy> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(Entropy::from_seed(seed))
}

/// Where the TLS listeners report failed handshakes: debug logs (a client that trusts another
/// CA, a scanner; one line each, so not at a level an attacker could flood by default).
pub fn tls_log() -> cloudproxy_node::tls::TlsErrorSink {
    std::sync::Arc::new(|text: &str| tracing::debug!("{text}"))
}

/// Where a probe connects to reach something listening on `ip`.
fn reachable(ip: IpAddr) -> IpAddr {
    if ip.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        ip
    }
}

/// Waits until a TCP connection to every address succeeds (bounded by the caller).
pub async fn wait_listening(addrs: &[SocketAddr]) {
    for addr in addrs {
        while tokio::net::TcpStream::connect(*addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Runs the plan's access points, relays and metrics endpoint until `shutdown`, then shuts
/// the relays down gracefully. The relays run on `plan.workers` threads (one shard of every
/// relay each, see [`workers`]); the access points and the metrics endpoint on the caller's
/// runtime. `on_ready` is called once every socket is bound, with the metrics sources (and
/// the metrics address, when there is an endpoint). Must run inside a `LocalSet`.
///
/// Returns an error when a socket cannot be bound at start or an access point fails. A relay
/// shard that fails while serving ends its own sessions only: it is logged and the rest
/// serves on.
pub async fn serve(
    plan: Plan,
    shutdown: Shutdown,
    on_ready: impl FnOnce(&Sources, Option<SocketAddr>),
) -> Result<(), String> {
    match rlimit::raise_nofile_limit() {
        Ok(l) => tracing::info!(
            before = l.before,
            soft = l.soft,
            hard = l.hard,
            "descriptor limit (RLIMIT_NOFILE) raised to the hard limit"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot raise the descriptor limit"),
    }
    let mut entropy = os_entropy().map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, io::Result<()>)>();
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<workers::Ended>();
    let mut sources = Sources {
        relay_limits: Some(plan.relay.clone()),
        max_queued_bytes_per_stream: plan.max_queued_bytes_per_stream,
        shutting_down: Rc::new(Cell::new(false)),
        workers: plan.workers,
        ..Sources::default()
    };
    let relays = workers::start(&plan, plan.workers, &mut entropy, &shutdown, ended_tx)
        .map_err(|e| format!("cannot start the relay workers: {e}"))?;
    let shards = relays.len() * usize::from(plan.workers);
    for r in relays {
        if plan.relay_tls.is_some() {
            sources.relay_tls.push((r.ip.to_string(), r.tls));
        }
        sources.relays.push((r.ip.to_string(), r.exported));
    }
    let probes = start_aps(&plan, &mut entropy, &mut sources, &done_tx);
    let metrics_addr = start_metrics(&plan, &sources).await?;

    tokio::select! {
        Some((name, result)) = done_rx.recv() => {
            let why = result.err().map_or("stopped".to_owned(), |e| e.to_string());
            return Err(format!("{name}: {why}"));
        }
        Some((ip, shard, result)) = ended_rx.recv() => {
            let why = result.err().unwrap_or_else(|| "stopped".to_owned());
            return Err(format!("relay {ip} (shard {shard}): {why}"));
        }
        ready = tokio::time::timeout(READY_TIMEOUT, wait_ready(&sources, &probes)) => {
            if ready.is_err() {
                return Err(format!("the nodes did not bind their sockets within {READY_TIMEOUT:?}"));
            }
        }
    }
    log_serving(&plan, metrics_addr);
    on_ready(&sources, metrics_addr);

    let mut ended = 0;
    let failed = loop {
        tokio::select! {
            biased;
            () = shutdown.clone().wait() => break None,
            Some((name, result)) = done_rx.recv() => break Some((name, result)),
            Some((ip, shard, result)) = ended_rx.recv() => {
                ended += 1;
                // Contained: that shard's sessions are gone, everything else serves on.
                let why = result.err().unwrap_or_else(|| "stopped".to_owned());
                tracing::error!(relay = %ip, shard, error = %why, "a relay shard ended; the others serve on");
            }
        }
    };
    sources.shutting_down.set(true);
    if let Some((name, result)) = failed {
        let why = result.err().map_or("stopped".to_owned(), |e| e.to_string());
        tracing::error!(node = %name, error = %why, "a node failed: shutting down");
        return Err(format!("{name}: {why}"));
    }
    tracing::info!("shutting down: closing every session");
    let wait = plan.shutdown_grace + Duration::from_secs(1);
    let _ = tokio::time::timeout(wait, async {
        while ended < shards && ended_rx.recv().await.is_some() {
            ended += 1;
        }
    })
    .await;
    workers::refresh(sources.relays.iter().flat_map(|(_, s)| s)).await;
    for (ip, shards) in &sources.relays {
        let s = workers::merged(shards);
        tracing::info!(
            relay = %ip,
            sessions_opened = s.counters.sessions_opened,
            sessions_closed = s.counters.sessions_closed,
            sessions_left = s.sessions,
            "relay stopped"
        );
    }
    Ok(())
}

/// Starts the access points; returns the addresses that answer once they serve.
fn start_aps(
    plan: &Plan,
    entropy: &mut Entropy,
    sources: &mut Sources,
    done: &mpsc::UnboundedSender<(String, io::Result<()>)>,
) -> Vec<SocketAddr> {
    let trace = Trace::tap(logging::trace_line);
    let mut probes = Vec::new();
    for ip in &plan.aps {
        let counters = Rc::new(RefCell::new(ApCounters::default()));
        sources.aps.push((ip.to_string(), counters.clone()));
        let name = format!("ap {ip}");
        // TLS (beyond the seed) on its own port, TCP only; every other port plain.
        let mut tls = plan
            .ap_tls
            .clone()
            .unwrap_or_default()
            .reporting_to(tls_log());
        if plan.ap_tls.is_some() {
            let counters = std::sync::Arc::new(cloudproxy_node::tls::TlsCounters::default());
            sources.ap_tls.push((ip.to_string(), counters.clone()));
            tls = tls.counting(counters);
        }
        let tls_ports: Vec<u16> = plan.ap_tls.iter().flat_map(|t| t.ports.clone()).collect();
        let (ports, config, net, entropy) = (
            plan.ap_ports.clone(),
            plan.ap.clone(),
            tls.wrap(TokioNet::new(*ip)),
            entropy.fork(),
        );
        probes.extend(
            ports
                .iter()
                .chain(&tls_ports)
                .map(|p| SocketAddr::new(reachable(*ip), *p)),
        );
        let (done, trace) = (done.clone(), trace.clone());
        tokio::task::spawn_local(async move {
            let result = run_ap_on_with(
                net,
                name.clone(),
                config,
                entropy,
                counters,
                trace,
                &ports,
                &tls_ports,
            )
            .await;
            let _ = done.send((name, result));
        });
    }
    probes
}

/// Starts the metrics endpoint, if the plan has one; returns its address.
async fn start_metrics(plan: &Plan, sources: &Sources) -> Result<Option<SocketAddr>, String> {
    let Some(at) = plan.metrics else {
        return Ok(None);
    };
    let listener = TokioNet::any()
        .listen(at)
        .await
        .map_err(|e| format!("metrics: {e}"))?;
    let local = listener.local_addr().unwrap_or(at);
    let (sources, limits) = (sources.clone(), plan.metrics_limits);
    tokio::task::spawn_local(async move {
        if let Err(e) = endpoint::serve_with(listener, sources, limits).await {
            tracing::error!(error = %e, "the metrics endpoint failed");
        }
    });
    Ok(Some(local))
}

/// Waits until every relay shard has bound its sockets and every access point port answers.
async fn wait_ready(sources: &Sources, probes: &[SocketAddr]) {
    loop {
        workers::refresh(sources.relays.iter().flat_map(|(_, s)| s)).await;
        if sources
            .relays
            .iter()
            .all(|(_, shards)| workers::merged(shards).listening)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_listening(probes).await;
}

fn log_serving(plan: &Plan, metrics_addr: Option<SocketAddr>) {
    for ip in &plan.aps {
        tracing::info!(ap = %ip, ports = ?plan.ap_ports, "access point serving (udp and tcp)");
        if let Some(tls) = &plan.ap_tls {
            tracing::info!(ap = %ip, tls_ports = ?tls.ports, "access point serving TLS (tcp)");
        }
    }
    for ip in &plan.relays {
        tracing::info!(
            relay = %ip,
            tcp_port = plan.relay_tcp_port,
            udp_ports = ?plan.relay.udp_ports,
            workers = plan.workers,
            "relay serving"
        );
        if let Some(tls) = &plan.relay_tls {
            tracing::info!(relay = %ip, tls_ports = ?tls.ports, workers = plan.workers, "relay serving TLS (tcp, on every worker)");
        }
    }
    if let Some(addr) = metrics_addr {
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
    }
}
