//! `cloudproxy netlab up|run|down`: the world on real network namespaces with a real firewall
//! (`crate::netlab`, `docs/netlab.md`).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use cloudproxy_sim::policy::Policy;
use cloudproxy_sim::policy_formats::{
    import_iptables, import_nft, read_bounded, Hook, ImportOptions,
};
use cloudproxy_sim::scenario::find;
use cloudproxy_sim::world::WorldSpec;

use super::Status;
use crate::netlab::{self, diff, resolver, LabState, NetlabError, Rehearsal};

/// Arguments of `cloudproxy netlab`.
#[derive(Debug, Args)]
pub struct NetlabArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: NetlabCommand,
}

/// The netlab subcommands.
#[derive(Debug, Subcommand)]
pub enum NetlabCommand {
    /// Build the default world (cloud proxy, SD-RTN, the bank and the hospital behind their
    /// gateways) as network namespaces, start serve, edge and the resolvers, print the address
    /// table, and leave it up until `netlab down`.
    Up(UpArgs),
    /// Run scenarios on labs of their own (real serve, edge and call) and in the simulation;
    /// print the report and where the two disagree (exit 1 when they do).
    Run(RunArgs),
    /// Remove a lab exactly as its state file records it (processes, namespaces, resolver
    /// configuration).
    Down(DownArgs),
    /// The enterprise resolver of a lab (started by the lab itself).
    #[command(hide = true)]
    Resolver(ResolverArgs),
}

/// Where the enterprises' firewall policy comes from (default: each scenario's own, or the
/// seed's whitelist for `up`).
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// A firewall policy file (TOML) for every enterprise.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from_nft", "from_iptables"])]
    pub policy: Option<PathBuf>,
    /// Import the policy from nftables: the output of `nft -j list ruleset` (or `nft list
    /// ruleset`), as `check-firewall --from-nft` reads it.
    #[arg(long, value_name = "FILE", conflicts_with = "from_iptables")]
    pub from_nft: Option<PathBuf>,
    /// Import the policy from the output of `iptables-save`.
    #[arg(long, value_name = "FILE")]
    pub from_iptables: Option<PathBuf>,
    /// The chain of an imported policy: output or forward [default: the one holding rules].
    #[arg(long, value_name = "HOOK")]
    pub hook: Option<Hook>,
}

impl PolicyArgs {
    /// The policy asked for, if any; the importer's notes go to standard error.
    fn load(&self) -> Result<Option<Policy>, String> {
        if let Some(path) = &self.policy {
            return read_policy(path).map(Some);
        }
        let (path, nft) = match (&self.from_nft, &self.from_iptables) {
            (Some(p), _) => (p, true),
            (None, Some(p)) => (p, false),
            (None, None) => return Ok(None),
        };
        let text = read_bounded(path).map_err(|e| e.to_string())?;
        let options = ImportOptions { hook: self.hook };
        let imported = if nft {
            import_nft(&text, &options)
        } else {
            import_iptables(&text, &options)
        }
        .map_err(|e| format!("{}: {e}", path.display()))?;
        for note in &imported.notes {
            eprintln!("cloudproxy netlab: note: {}: {note}", path.display());
        }
        Ok(Some(imported.policy))
    }

    /// The options again, for the reproduction line.
    fn flags(&self) -> String {
        let mut out = String::new();
        for (flag, path) in [
            ("--policy", &self.policy),
            ("--from-nft", &self.from_nft),
            ("--from-iptables", &self.from_iptables),
        ] {
            if let Some(p) = path {
                out.push_str(&format!(" {flag} {}", p.display()));
            }
        }
        if let Some(h) = self.hook {
            out.push_str(&format!(" --hook {h}"));
        }
        out
    }
}

/// Arguments of `netlab up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The policy of both enterprises (default: the seed's whitelist).
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Arguments of `netlab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenarios to run: direct-blocked, direct-open, proxy-default, proxy-ip-list,
    /// udp-blocked, socks5, socks5-no-udp (the calm ones; the others need faults or an
    /// attacker the lab has not).
    #[arg(value_name = "SCENARIO", required = true)]
    pub scenarios: Vec<String>,
    /// A policy that replaces every enterprise's (default: each scenario's own).
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The seed of the simulation (and of the clients' own randomness).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How long each run lasts, in seconds (the real calls and the simulation alike).
    #[arg(long = "for", value_name = "SECS", default_value_t = 6.0)]
    pub duration: f64,
    /// Print each firewall's per-rule counts (simulation verdicts, nftables packets) even
    /// when the runs agree.
    #[arg(long)]
    pub counters: bool,
}

/// Arguments of `netlab down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// The lab to remove (`cpnl-<id>` or `<id>`); without it, the only lab recorded.
    #[arg(long, conflicts_with = "all")]
    pub id: Option<String>,
    /// Remove every lab recorded on this machine.
    #[arg(long)]
    pub all: bool,
}

/// Arguments of `netlab resolver`.
#[derive(Debug, Args)]
pub struct ResolverArgs {
    /// The address to answer on (UDP).
    #[arg(long)]
    pub listen: SocketAddr,
    /// A name and its addresses, NAME=IP[,IP...] (repeatable).
    #[arg(long, value_name = "NAME=IPS")]
    pub name: Vec<String>,
    /// Refuse every name (the policy's dns = "blocked").
    #[arg(long)]
    pub refuse: bool,
}

/// `cloudproxy netlab ...`.
pub fn run(args: &NetlabArgs, out: &mut impl Write) -> io::Result<Status> {
    match &args.command {
        NetlabCommand::Up(a) => up(a, out),
        NetlabCommand::Run(a) => run_scenarios(a, out),
        NetlabCommand::Down(a) => down(a, out),
        NetlabCommand::Resolver(a) => serve_resolver(a, out),
    }
}

fn read_policy(path: &Path) -> Result<Policy, String> {
    // Bounded like every policy file (`read_bounded` names the file and the bound).
    let text = read_bounded(path).map_err(|e| e.to_string())?;
    text.parse::<Policy>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn exe() -> io::Result<PathBuf> {
    std::env::current_exe()
}

fn fail(e: &NetlabError) -> io::Result<Status> {
    eprintln!("cloudproxy netlab: {e}");
    Ok(match e {
        NetlabError::Unsupported(_) => Status::Usage,
        _ => Status::Failed,
    })
}

fn up(args: &UpArgs, out: &mut impl Write) -> io::Result<Status> {
    let policy = match args.policy.load() {
        Ok(p) => p.unwrap_or_else(Policy::seed),
        Err(e) => {
            eprintln!("cloudproxy netlab: {e}");
            return Ok(Status::Usage);
        }
    };
    let spec = netlab::default_world(&policy);
    let exe = exe()?;
    let lab = netlab::interruptible(async {
        let mut lab = netlab::up(&spec, &exe, true).await?;
        lab.keep();
        Ok(lab)
    });
    let lab = match lab {
        Ok(lab) => lab,
        Err(e) => return fail(&e),
    };
    let n = &lab.names;
    writeln!(
        out,
        "cloudproxy netlab: lab {} is up (state {})\n",
        n.prefix,
        LabState::path_of(&lab.state.id).display()
    )?;
    write!(out, "{}", lab.mapping.to_text())?;
    writeln!(out, "\nnamespaces: {}", lab.state.namespaces.join(" "))?;
    let bank = &lab.plan.enterprises[0].slug;
    writeln!(
        out,
        "firewall:   ip netns exec {} nft list ruleset",
        n.gateway(bank)
    )?;
    writeln!(
        out,
        "a call:     ip netns exec {} {} call --bind {} --edge {} --resolver {}:53 --params '{{\"rtc.enable_proxy\":true}}' --for 5",
        n.enterprise(bank),
        exe.display(),
        netlab::addr_map::clients(1),
        netlab::addr_map::EDGE,
        netlab::addr_map::resolver(1)
    )?;
    writeln!(
        out,
        "down:       {} netlab down --id {}",
        exe.display(),
        lab.state.id
    )?;
    Ok(Status::Ok)
}

fn down(args: &DownArgs, out: &mut impl Write) -> io::Result<Status> {
    let paths = if args.all {
        LabState::all()
    } else if let Some(id) = &args.id {
        let id = id.strip_prefix("cpnl-").unwrap_or(id);
        vec![LabState::path_of(id)]
    } else {
        let all = LabState::all();
        if all.len() > 1 {
            eprintln!(
                "cloudproxy netlab: {} labs are up; name one with --id or use --all",
                all.len()
            );
            return Ok(Status::Usage);
        }
        all
    };
    let mut ok = true;
    for path in &paths {
        let result = LabState::load(path).and_then(|s| netlab::down(&s));
        match result {
            Ok(t) => writeln!(
                out,
                "cloudproxy netlab: lab cpnl-{} removed: {} process(es) stopped{}, {} namespace(s) deleted ({:.1} s)",
                t.id,
                t.stopped,
                if t.killed.is_empty() {
                    String::new()
                } else {
                    format!(" ({} killed: {})", t.killed.len(), t.killed.join(", "))
                },
                t.namespaces,
                t.wall.as_secs_f64()
            )?,
            Err(e) => {
                ok = false;
                eprintln!("cloudproxy netlab: {e}");
            }
        }
    }
    if paths.is_empty() {
        writeln!(out, "cloudproxy netlab: no lab is recorded on this machine")?;
    }
    // Namespaces of a lab whose state was lost (killed before it wrote it): named, not touched.
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let recorded: Vec<String> = LabState::all()
        .iter()
        .filter_map(|p| LabState::load(p).ok())
        .flat_map(|s| s.namespaces)
        .collect();
    let strays: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("cpnl-") && !recorded.iter().any(|r| r == n))
        .collect();
    if !strays.is_empty() {
        eprintln!(
            "cloudproxy netlab: namespaces named like a lab's but recorded by none: {} (remove each with `ip netns del NAME`)",
            strays.join(" ")
        );
    }
    Ok(Status::from(ok))
}

fn run_scenarios(args: &RunArgs, out: &mut impl Write) -> io::Result<Status> {
    let usage = |m: String| {
        eprintln!("cloudproxy netlab: {m}");
        Ok(Status::Usage)
    };
    if !(args.duration.is_finite() && (3.0..=600.0).contains(&args.duration)) {
        return usage(format!(
            "--for {}: expected 3 <= SECS <= 600",
            args.duration
        ));
    }
    let duration = Duration::from_secs_f64(args.duration);
    let specs = match args
        .policy
        .load()
        .and_then(|policy| worlds(args, policy.as_ref()))
    {
        Ok(specs) => specs,
        Err(e) => return usage(e),
    };
    writeln!(
        out,
        "cloudproxy netlab: {} scenario(s) on real network namespaces and in the simulation, seed {}, {:.1} s each\n",
        specs.len(),
        args.seed,
        duration.as_secs_f64()
    )?;
    writeln!(out, "{}", header())?;
    let exe = exe()?;
    let mut results: Vec<(&str, Rehearsal, Vec<String>)> = Vec::new();
    let outcome = netlab::interruptible(async {
        for (name, spec) in &specs {
            let r = netlab::rehearse(spec.clone(), &exe, duration).await?;
            let unheard = diff::unheard(&r.real.outcome, &r.real.mapping);
            let mut line = Vec::new();
            let _ = writeln!(line, "{}", row(name, &r, &unheard));
            let _ = out.write_all(&line);
            let _ = out.flush();
            results.push((name, r, unheard));
        }
        Ok(())
    });
    if let Err(e) = outcome {
        return fail(&e);
    }
    let failed = report(args, &results, out)?;
    writeln!(
        out,
        "\n{} agree, {} disagree. Reproduce: cloudproxy netlab run {}{} --seed {} --for {}",
        results.len() - failed,
        failed,
        args.scenarios.join(" "),
        args.policy.flags(),
        args.seed,
        args.duration
    )?;
    Ok(Status::from(failed == 0))
}

/// The worlds of the scenarios `args` names at its seed, every enterprise behind `policy`
/// when there is one; an unknown name or a world the lab cannot build is an error naming it.
fn worlds(
    args: &RunArgs,
    policy: Option<&Policy>,
) -> Result<Vec<(&'static str, WorldSpec)>, String> {
    let mut specs = Vec::new();
    for name in &args.scenarios {
        let Some(scenario) = find(name) else {
            return Err(format!(
                "no scenario named {name:?}; `cloudproxy list` shows them"
            ));
        };
        let mut spec = scenario.world(args.seed);
        if let Some(p) = policy {
            for e in &mut spec.enterprises {
                e.policy = p.clone();
            }
        }
        if let Err(e) = netlab::supported(&spec) {
            return Err(format!("{name}: {e}"));
        }
        specs.push((scenario.name, spec));
    }
    Ok(specs)
}

/// Each rehearsal's lab timings, its clients' paths real and simulated, and where they
/// disagree (with the rule counters when they do, or always with `--counters`); returns how
/// many disagree.
fn report(
    args: &RunArgs,
    results: &[(&str, Rehearsal, Vec<String>)],
    out: &mut impl Write,
) -> io::Result<usize> {
    let mut failed = 0;
    for (name, r, unheard) in results {
        let agree = r.comparison.paths_agree() && unheard.is_empty();
        if !agree {
            failed += 1;
        }
        writeln!(
            out,
            "\n{name}: lab cpnl-{} up in {:.1} s, calls {:.1} s, removed in {:.1} s",
            r.real.id,
            r.real.setup.as_secs_f64(),
            r.real.outcome.wall.as_secs_f64(),
            r.real.teardown.wall.as_secs_f64()
        )?;
        for c in &r.comparison.clients {
            writeln!(
                out,
                "  {:<8} real: {}; simulation: {}",
                c.name,
                c.real.path(),
                c.sim.path()
            )?;
        }
        for d in r.comparison.disagreements() {
            writeln!(out, "  DISAGREES {d}")?;
        }
        for u in unheard {
            writeln!(out, "  FAIL {u}")?;
        }
        if args.counters || !agree {
            write!(out, "{}", r.comparison.rules_text())?;
        }
    }
    Ok(failed)
}

/// The report's header: the simulation's `run` columns, `real s` for `sim s`, the paths for
/// the trace hash.
fn header() -> String {
    format!(
        "{:<18} {:<7} {:>8} {:>10} {:>6} {:>7} {:>8} {:>7}  {}",
        "scenario", "verdict", "join ms", "media rx", "lost", "reconn", "real s", "wall s", "path"
    )
}

/// One row: the real run's figures; `pass` when it agrees with the simulation and every joined
/// client heard the others.
fn row(name: &str, r: &Rehearsal, unheard: &[String]) -> String {
    let facts: Vec<&netlab::Facts> = r.comparison.clients.iter().map(|c| &c.real).collect();
    let join = facts
        .iter()
        .filter_map(|f| f.join_ms)
        .max()
        .map_or("-".to_owned(), |j| j.to_string());
    let rx: u64 = facts.iter().map(|f| f.received()).sum();
    let lost: u64 = facts.iter().map(|f| f.lost).sum();
    let reconnects: u64 = facts.iter().map(|f| f.reconnects).sum();
    let paths: Vec<String> = r
        .comparison
        .clients
        .iter()
        .map(|c| format!("{} {}", c.name, c.real.path()))
        .collect();
    let pass = r.comparison.paths_agree() && unheard.is_empty();
    let wall = r.real.setup + r.real.outcome.wall + r.real.teardown.wall;
    format!(
        "{:<18} {:<7} {:>8} {:>10} {:>6} {:>7} {:>8.1} {:>7.1}  {}",
        name,
        if pass { "pass" } else { "FAIL" },
        join,
        rx,
        lost,
        reconnects,
        r.spec.duration.as_secs_f64(),
        wall.as_secs_f64(),
        paths.join("; ")
    )
}

fn serve_resolver(args: &ResolverArgs, out: &mut impl Write) -> io::Result<Status> {
    let mut zone = resolver::Zone {
        refuse: args.refuse,
        ..resolver::Zone::default()
    };
    for entry in &args.name {
        if let Err(e) = zone.add(entry) {
            eprintln!("cloudproxy netlab resolver: {e}");
            return Ok(Status::Usage);
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let listen = args.listen;
    let result = local.block_on(&runtime, async {
        let socket = tokio::net::UdpSocket::bind(listen).await?;
        let (trigger, stop) = crate::serve::shutdown::channel();
        tokio::task::spawn_local(async move {
            let _ = crate::serve::shutdown::signal().await;
            trigger.fire();
        });
        println!(
            "cloudproxy netlab resolver: ready on {listen}: {} ({} name(s))",
            if zone.refuse {
                "refusing every name"
            } else {
                "answering"
            },
            zone.names.len()
        );
        Ok::<_, io::Error>(resolver::serve(socket, zone, stop).await)
    });
    match result {
        Ok((answered, ignored)) => {
            writeln!(
                out,
                "cloudproxy netlab resolver: stopped: {answered} answered, {ignored} ignored"
            )?;
            Ok(Status::Ok)
        }
        Err(e) => {
            eprintln!("cloudproxy netlab resolver: {listen}: {e}");
            Ok(Status::Failed)
        }
    }
}
