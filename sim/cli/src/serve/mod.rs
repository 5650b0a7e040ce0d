//! Real sockets: the simulation's node code on tokio, as a deployable cloud proxy
//! (`cloudproxy serve`), an SD-RTN edge for tests and demos (`cloudproxy edge`) and an SDK
//! client (`cloudproxy call`). `docs/serving.md` is the operator's guide.
//!
//! Every node runs exactly the code the simulation runs ([`run_ap_on`], [`run_relay_with`],
//! [`run_edge`](cloudproxy_node::nodes::edge::run_edge), [`run_client`](cloudproxy_node::nodes::client::run_client)),
//! over [`TokioNet`] instead of `SimNet`, on a single-threaded runtime (the nodes are
//! `spawn_local` tasks in a `LocalSet`, as on a turmoil host). What is only here: the
//! configuration file, the key handling, the metrics endpoint, logs and signals.

pub mod call;
pub mod config;
pub mod edge;
pub mod logging;
pub mod metrics;
pub mod shutdown;

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::relay::ApCounters;
use tokio::sync::mpsc;

use cloudproxy_node::net::{Net, TokioNet};
use cloudproxy_node::nodes::ap::run_ap_on;
use cloudproxy_node::nodes::relay::{run_relay_with, RelayHost, RelayShared};
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
/// the relays down gracefully. `on_ready` is called once every socket is bound, with the
/// metrics sources (and the metrics address, when there is an endpoint). Must run inside a
/// `LocalSet`.
///
/// Returns an error when a socket cannot be bound or a node fails while serving.
pub async fn serve(
    plan: Plan,
    shutdown: Shutdown,
    on_ready: impl FnOnce(&Sources, Option<SocketAddr>),
) -> Result<(), String> {
    let mut entropy = os_entropy().map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let trace = Trace::tap(logging::trace_line);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, io::Result<()>)>();
    let mut sources = Sources {
        relay_limits: Some(plan.relay.clone()),
        max_queued_bytes_per_stream: plan.max_queued_bytes_per_stream,
        shutting_down: Rc::new(Cell::new(false)),
        ..Sources::default()
    };

    let mut relay_tasks = Vec::new();
    for ip in &plan.relays {
        let shared = Rc::new(RefCell::new(RelayShared::default()));
        sources.relays.push((ip.to_string(), shared.clone()));
        let name = format!("relay {ip}");
        let mut host = RelayHost::with_shutdown(shutdown.clone().wait());
        host.tcp_port = plan.relay_tcp_port;
        host.flush_timeout = plan.shutdown_grace;
        host.max_queued_bytes_per_stream = plan.max_queued_bytes_per_stream;
        let node = run_relay_with(
            TokioNet::new(*ip),
            name.clone(),
            plan.relay.clone(),
            entropy.fork(),
            shared,
            trace.clone(),
            host,
        );
        let done = done_tx.clone();
        relay_tasks.push(tokio::task::spawn_local(async move {
            let result = node.await;
            let _ = done.send((name, result));
        }));
    }
    let mut probes = Vec::new();
    for ip in &plan.aps {
        let counters = Rc::new(RefCell::new(ApCounters::default()));
        sources.aps.push((ip.to_string(), counters.clone()));
        let name = format!("ap {ip}");
        let (ports, config, net, entropy) = (
            plan.ap_ports.clone(),
            plan.ap.clone(),
            TokioNet::new(*ip),
            entropy.fork(),
        );
        probes.extend(ports.iter().map(|p| SocketAddr::new(reachable(*ip), *p)));
        let (done, trace) = (done_tx.clone(), trace.clone());
        tokio::task::spawn_local(async move {
            let result =
                run_ap_on(net, name.clone(), config, entropy, counters, trace, &ports).await;
            let _ = done.send((name, result));
        });
    }
    let metrics_addr = match plan.metrics {
        None => None,
        Some(at) => {
            let listener = TokioNet::any()
                .listen(at)
                .await
                .map_err(|e| format!("metrics: {e}"))?;
            let local = listener.local_addr().unwrap_or(at);
            let sources = sources.clone();
            tokio::task::spawn_local(async move {
                if let Err(e) = metrics::serve(listener, sources).await {
                    tracing::error!(error = %e, "the metrics endpoint failed");
                }
            });
            Some(local)
        }
    };

    // Ready once every relay has bound its sockets and every access point port answers.
    let relays_listening = || sources.relays.iter().all(|(_, s)| s.borrow().listening);
    let ready = async {
        while !relays_listening() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        wait_listening(&probes).await;
    };
    tokio::select! {
        Some((name, result)) = done_rx.recv() => {
            let why = result.err().map_or("stopped".to_owned(), |e| e.to_string());
            return Err(format!("{name}: {why}"));
        }
        ready = tokio::time::timeout(READY_TIMEOUT, ready) => {
            if ready.is_err() {
                return Err(format!("the nodes did not bind their sockets within {READY_TIMEOUT:?}"));
            }
        }
    }
    for ip in &plan.aps {
        tracing::info!(ap = %ip, ports = ?plan.ap_ports, "access point serving (udp and tcp)");
    }
    for ip in &plan.relays {
        tracing::info!(
            relay = %ip,
            tcp_port = plan.relay_tcp_port,
            udp_ports = ?plan.relay.udp_ports,
            "relay serving"
        );
    }
    if let Some(addr) = metrics_addr {
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
    }
    on_ready(&sources, metrics_addr);

    let failed = tokio::select! {
        biased;
        () = shutdown.clone().wait() => None,
        Some((name, result)) = done_rx.recv() => Some((name, result)),
    };
    // A relay that ended by itself once the shutdown started did what it was asked.
    let failed = failed.filter(|(_, result)| !(shutdown.started() && result.is_ok()));
    sources.shutting_down.set(true);
    if let Some((name, result)) = failed {
        let why = result.err().map_or("stopped".to_owned(), |e| e.to_string());
        tracing::error!(node = %name, error = %why, "a node failed: shutting down");
        return Err(format!("{name}: {why}"));
    }
    tracing::info!("shutting down: closing every session");
    let wait = plan.shutdown_grace + Duration::from_secs(1);
    for task in relay_tasks {
        let _ = tokio::time::timeout(wait, task).await;
    }
    for (ip, shared) in &sources.relays {
        let s = shared.borrow();
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
