//! `cloudproxy netlab`: the simulated world on a real network, with a real firewall.
//!
//! A **lab** is the default world (or a scenario's) as Linux network namespaces joined by veth
//! links and a bridge: one namespace for the cloud proxy (`cloudproxy serve`: the access points
//! and relays), one for SD-RTN (`cloudproxy edge`), and per enterprise one for its clients and
//! its resolver, behind a gateway namespace whose `forward` chain is the enterprise's policy,
//! compiled by `cloudproxy_sim::policy_formats` (the compiler `check-firewall --format nft`
//! uses). See `lab.rs` for the picture, `addr_map.rs` for the addresses: the lab uses only
//! 198.18.0.0/15, which exists only inside its namespaces; the seed's public addresses are never
//! configured anywhere, and nothing is routed out of the lab.
//!
//! Why a gateway: on the `output` hook a dropped datagram fails its sender at once (`EPERM`)
//! where the simulation lets it vanish; on `forward`, drops are silent for TCP and UDP alike,
//! as in the simulation. The gateway also drops new traffic from the outside (only replies
//! enter), as the simulation drops unsolicited datagrams. The resolver sits inside the
//! enterprise, as the simulation's does: DNS never crosses the firewall.
//!
//! Every lab is named `cpnl-<id>-...` (namespaces and links) and records what it made in its
//! state file as it makes it (`state.rs`), so that `down` removes exactly that, also after a
//! failure, an interrupt (the guard and the signal handlers of `up` and `run`) or a kill.
// The lab runs real processes on real networks: its waits and timings are wall-clock ones
// (clippy.toml disallows the system clocks for the simulation's sake).
#![allow(clippy::disallowed_methods)]

pub mod addr_map;
pub mod diff;
mod lab;
mod procs;
pub mod resolver;
mod run;
mod socks;
pub mod state;

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use cloudproxy_sim::policy::Policy;
use cloudproxy_sim::world::{run_world as run_simulated, WorldSpec};

pub use addr_map::Mapping;
pub use diff::{compare, Comparison, Facts, SimRun};
pub use lab::{down, preflight, EnterprisePlan, Lab, LabPlan, Names, Teardown, INSTALL};
pub use run::{run_world, supported, RealClient, RealOutcome};
pub use state::LabState;

/// Why a lab could not be built, run or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetlabError {
    /// This machine cannot host a lab: not root, a tool missing, no network namespaces.
    #[error("netlab is not available here: {0}")]
    Unavailable(String),
    /// A command (`ip`, `nft`) failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its standard error.
        stderr: String,
    },
    /// A process of the lab failed to start, died, or printed no report.
    #[error("{0}")]
    Process(String),
    /// The world uses something a lab has not.
    #[error("cannot run on a real network: {0}")]
    Unsupported(String),
    /// Reading or writing a file of the lab.
    #[error("{what}: {error}")]
    Io {
        /// The file.
        what: String,
        /// What went wrong.
        error: String,
    },
    /// SIGINT or SIGTERM arrived.
    #[error("interrupted by {0}")]
    Interrupted(&'static str),
    /// Something the lab made could not be removed.
    #[error("{0}")]
    Teardown(String),
}

impl NetlabError {
    fn io(path: &Path, e: std::io::Error) -> NetlabError {
        NetlabError::Io {
            what: path.display().to_string(),
            error: e.to_string(),
        }
    }
}

/// Builds a lab for the enterprises of `spec` and starts its services (`exe` is the
/// `cloudproxy` binary; `detached`: they outlive this process, for `netlab up`). On an error,
/// or when the returned future is dropped, whatever was made is removed.
pub async fn up(spec: &WorldSpec, exe: &Path, detached: bool) -> Result<Lab, NetlabError> {
    let mut lab = Lab::new(LabPlan::from_world(spec)?)?;
    lab.build_network().await?;
    lab.start_services(exe, detached).await?;
    Ok(lab)
}

/// A real run of a world, and what it took.
#[derive(Debug)]
pub struct RealRun {
    /// What the clients and the firewalls reported.
    pub outcome: RealOutcome,
    /// The lab's addresses.
    pub mapping: Mapping,
    /// The lab's id.
    pub id: String,
    /// The nftables ruleset of each enterprise's gateway, as loaded.
    pub firewalls: Vec<String>,
    /// Time to build the lab and start its services.
    pub setup: Duration,
    /// What the teardown did.
    pub teardown: Teardown,
}

/// Runs `spec`'s clients for `duration` on a lab of its own, then removes the lab.
pub async fn run_real(
    spec: &WorldSpec,
    exe: &Path,
    duration: Duration,
) -> Result<RealRun, NetlabError> {
    supported(spec)?;
    let started = Instant::now();
    let mut lab = up(spec, exe, false).await?;
    let setup = started.elapsed();
    let mut outcome = run_world(&mut lab, exe, spec, duration).await?;
    outcome.edge = lab.stop_services().await;
    let firewalls = (1..=spec.enterprises.len())
        .map(|k| lab.firewall_text(k))
        .collect();
    let (id, mapping) = (lab.state.id.clone(), lab.mapping.clone());
    let teardown = lab.down()?;
    Ok(RealRun {
        outcome,
        mapping,
        id,
        firewalls,
        setup,
        teardown,
    })
}

/// `spec` for a real run of `duration`: the simulation gets the same duration, so that both
/// runs are judged on the same time.
pub fn with_duration(mut spec: WorldSpec, duration: Duration) -> WorldSpec {
    spec.duration = duration;
    spec
}

/// The simulated run of `spec` and the real one, compared.
pub struct Rehearsal {
    /// The world.
    pub spec: WorldSpec,
    /// The simulation's outcome (its clients, firewalls and error; no trace).
    pub sim: SimRun,
    /// The real run.
    pub real: RealRun,
    /// The comparison.
    pub comparison: Comparison,
}

/// Runs `spec` in the simulation and on a lab (`duration` each) and compares them.
pub async fn rehearse(
    spec: WorldSpec,
    exe: &Path,
    duration: Duration,
) -> Result<Rehearsal, NetlabError> {
    let spec = with_duration(spec, duration);
    supported(&spec)?;
    let sim_spec = spec.clone();
    // The simulation on a thread of its own while the real calls run (its outcome holds a
    // trace that stays on its thread: what the comparison needs crosses).
    let simulated = std::thread::spawn(move || SimRun::from(run_simulated(&sim_spec)));
    let real = run_real(&spec, exe, duration).await?;
    let sim = simulated
        .join()
        .map_err(|_| NetlabError::Process("the simulation panicked".to_owned()))?;
    let comparison = compare(&spec, &sim, &real.outcome, &real.mapping);
    Ok(Rehearsal {
        spec,
        sim,
        real,
        comparison,
    })
}

/// The default world's enterprises without clients (for `netlab up`): the bank and the
/// hospital, both behind `policy`.
pub fn default_world(policy: &Policy) -> WorldSpec {
    let mut spec = WorldSpec::new(1, Duration::from_secs(10));
    spec.enterprise("bank", "10.1.0.10", policy.clone());
    spec.enterprise("hospital", "10.2.0.10", policy.clone());
    spec
}

/// Runs `work` on a runtime of its own; SIGINT and SIGTERM stop it (the labs it made are
/// removed by their guards as it is dropped) and return [`NetlabError::Interrupted`]. The
/// handlers are in place before `work` makes anything.
pub fn interruptible<T>(
    work: impl Future<Output = Result<T, NetlabError>>,
) -> Result<T, NetlabError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| NetlabError::Process(format!("cannot start a runtime: {e}")))?;
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| NetlabError::Process(format!("cannot watch SIGINT: {e}")))?;
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| NetlabError::Process(format!("cannot watch SIGTERM: {e}")))?;
        tokio::select! {
            biased;
            _ = int.recv() => Err(NetlabError::Interrupted("SIGINT")),
            _ = term.recv() => Err(NetlabError::Interrupted("SIGTERM")),
            result = work => result,
        }
    })
}

/// Runs `work` on a runtime of its own (no signal handling: for tests and library users).
pub fn block_on<T>(work: impl Future<Output = Result<T, NetlabError>>) -> Result<T, NetlabError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| NetlabError::Process(format!("cannot start a runtime: {e}")))?
        .block_on(work)
}
