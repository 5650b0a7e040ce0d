//! Building a lab and taking it down.
//!
//! ```text
//!  cpnl-<id>-<ent>          cpnl-<id>-<ent>-gw               cpnl-<id>-net        cpnl-<id>-cloud
//!  clients 198.19.k.10 ─lan─ 198.19.k.1 [nft forward] wan ─ bridge ─┬─ eth  APs 198.18.1.1-4
//!  resolver 198.19.k.53        198.18.0.(10+k)                      │       relays 198.18.2.1-2
//!  (SOCKS5 198.19.k.2)                                              └─ eth  cpnl-<id>-sdrtn
//!                                                                           edge 198.18.3.10
//! ```
//!
//! Every link is a veth pair made directly between two of the lab's namespaces, so that no
//! interface of the lab ever exists in the host's namespace; nothing routes out of the lab
//! (no default route, no NAT): the only routes are the test range's. Deleting the namespaces
//! removes every link, address, route and rule; the processes are stopped first, and
//! `/etc/netns/<namespace>/` (the resolver configuration `ip netns exec` gives a process) and
//! the lab's directory are removed last.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloudproxy_sim::policy::Policy;
use cloudproxy_sim::policy_formats::{compile_nft, nft_counters, CompileOptions, Hook};
use cloudproxy_sim::world::{WorldSpec, AP_DOMAIN};

use super::addr_map::{self as map, EnterpriseAddrs, Mapping};
use super::procs::{self, Proc};
use super::socks::{self, SocksPlan};
use super::state::{labs_dir, LabState};
use super::NetlabError;

/// How long `serve`, `edge` and a resolver may take to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the processes get to stop after SIGTERM, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(4);

/// The install command named when a tool is missing.
pub const INSTALL: &str = "DEBIAN_FRONTEND=noninteractive apt-get install -y nftables iproute2";

/// One enterprise of the lab.
#[derive(Clone, Debug)]
pub struct EnterprisePlan {
    /// Its name in the world.
    pub name: String,
    /// Its name in the lab's namespace names (letters and digits).
    pub slug: String,
    /// Its clients' address in the simulation.
    pub clients: IpAddr,
    /// Its SOCKS5 server, if any.
    pub socks: Option<SocksPlan>,
    /// Its firewall policy, on the seed's addresses.
    pub policy: Policy,
}

/// What to build.
#[derive(Clone, Debug)]
pub struct LabPlan {
    /// The enterprises, in the world's order (enterprise k is `enterprises[k - 1]`).
    pub enterprises: Vec<EnterprisePlan>,
}

impl LabPlan {
    /// The plan for the enterprises of `spec`.
    pub fn from_world(spec: &WorldSpec) -> Result<LabPlan, NetlabError> {
        if spec.enterprises.len() > map::MAX_ENTERPRISES {
            return Err(NetlabError::Unsupported(format!(
                "{} enterprises: a lab holds at most {}",
                spec.enterprises.len(),
                map::MAX_ENTERPRISES
            )));
        }
        let mut enterprises: Vec<EnterprisePlan> = Vec::new();
        for (i, e) in spec.enterprises.iter().enumerate() {
            let mut slug: String = e
                .name
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .take(16)
                .collect();
            if slug.is_empty() || enterprises.iter().any(|p| p.slug == slug) {
                slug = format!("e{}", i + 1);
            }
            enterprises.push(EnterprisePlan {
                name: e.name.clone(),
                slug,
                clients: e.clients_ip,
                socks: e
                    .socks
                    .as_ref()
                    .map(|s| SocksPlan::new(s.ip, s.port, &s.policy))
                    .transpose()
                    .map_err(|why| NetlabError::Unsupported(format!("{}: {why}", e.name)))?,
                policy: e.policy.clone(),
            });
        }
        Ok(LabPlan { enterprises })
    }

    /// The address table of this plan.
    pub fn mapping(&self) -> Mapping {
        let addrs: Vec<EnterpriseAddrs> = self
            .enterprises
            .iter()
            .map(|e| EnterpriseAddrs {
                name: e.name.clone(),
                clients: e.clients,
                socks: e.socks.as_ref().map(|s| s.seed),
            })
            .collect();
        Mapping::new(&addrs)
    }
}

/// The names of one lab: `cpnl-<id>-<role>` for its namespaces and links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// `cpnl-<id>`.
    pub prefix: String,
}

impl Names {
    /// The names of lab `id`.
    pub fn new(id: &str) -> Names {
        Names {
            prefix: format!("cpnl-{id}"),
        }
    }
    /// A namespace or link name.
    pub fn of(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }
    /// The outside namespace (the bridge).
    pub fn net(&self) -> String {
        self.of("net")
    }
    /// The cloud proxy's namespace.
    pub fn cloud(&self) -> String {
        self.of("cloud")
    }
    /// SD-RTN's namespace.
    pub fn sdrtn(&self) -> String {
        self.of("sdrtn")
    }
    /// An enterprise's namespace (its clients and resolver).
    pub fn enterprise(&self, slug: &str) -> String {
        self.of(slug)
    }
    /// An enterprise's gateway namespace (its firewall).
    pub fn gateway(&self, slug: &str) -> String {
        self.of(&format!("{slug}-gw"))
    }
    /// The gateway's interface to the outside (in the gateway's namespace).
    pub fn wan(&self) -> String {
        self.of("wan")
    }
}

/// A lab: its namespaces, links, firewalls and processes.
pub struct Lab {
    /// What it made.
    pub state: LabState,
    /// What it was built for.
    pub plan: LabPlan,
    /// Its addresses.
    pub mapping: Mapping,
    /// Its names.
    pub names: Names,
    /// `serve`, `edge` and the resolvers.
    pub procs: Vec<Proc>,
    keep: bool,
    down: bool,
}

/// Whether this process may build a lab: root, `ip` and `nft`; the error says what is missing.
pub fn preflight() -> Result<(), NetlabError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    if euid != "0" {
        return Err(NetlabError::Unavailable(format!(
            "network namespaces need root (effective uid {euid}); run as root, as CI does"
        )));
    }
    for (tool, flag) in [("ip", "-V"), ("nft", "--version")] {
        procs::run_blocking(tool, &[flag]).map_err(|e| {
            NetlabError::Unavailable(format!("`{tool}` is missing ({e}). Install: {INSTALL}"))
        })?;
    }
    Ok(())
}

/// A fresh lab id: 4 hex digits that no lab directory or namespace uses; its directory is made
/// (which reserves it against a lab started at the same time).
fn allocate_id() -> Result<String, NetlabError> {
    let parent = labs_dir();
    std::fs::create_dir_all(&parent).map_err(|e| NetlabError::io(&parent, e))?;
    let existing = procs::run_blocking("ip", &["netns", "list"]).unwrap_or_default();
    let mut seed = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
        .map_err(|e| NetlabError::io(Path::new("/dev/urandom"), e))?;
    for pair in seed.chunks(2) {
        let id = format!("{:02x}{:02x}", pair[0], pair[1]);
        if existing.contains(&format!("cpnl-{id}-")) {
            continue;
        }
        match std::fs::create_dir(parent.join(&id)) {
            Ok(()) => return Ok(id),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(NetlabError::io(&parent.join(&id), e)),
        }
    }
    Err(NetlabError::Unavailable(
        "no free lab id after 8 tries: `cloudproxy netlab down --all` removes old labs".into(),
    ))
}

impl Lab {
    /// A lab for `plan`, with an id and a directory, nothing built yet.
    pub fn new(plan: LabPlan) -> Result<Lab, NetlabError> {
        preflight()?;
        let id = allocate_id()?;
        let mapping = plan.mapping();
        let state = LabState {
            id: id.clone(),
            owner_pid: std::process::id(),
            mapping: mapping.to_json(),
            ..LabState::default()
        };
        state.save()?;
        Ok(Lab {
            state,
            plan,
            mapping,
            names: Names::new(&id),
            procs: Vec::new(),
            keep: false,
            down: false,
        })
    }

    /// The lab's directory.
    pub fn dir(&self) -> PathBuf {
        self.state.dir()
    }

    /// Leaves the lab up when this value is dropped (`netlab up`).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    async fn ip(&self, args: &[&str]) -> Result<String, NetlabError> {
        procs::run("ip", args, None).await
    }

    async fn in_ns(
        &self,
        ns: &str,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<String, NetlabError> {
        let mut all = vec!["netns", "exec", ns];
        all.extend_from_slice(args);
        procs::run("ip", &all, input).await
    }

    /// Makes a namespace (recorded first), with loopback up and IPv6 off.
    async fn namespace(&mut self, name: &str) -> Result<(), NetlabError> {
        self.state.namespaces.push(name.to_owned());
        self.state.save()?;
        self.ip(&["netns", "add", name]).await.map_err(|e| {
            NetlabError::Unavailable(format!(
                "cannot create the network namespace {name} (netlab needs root and network namespaces, as on CI): {e}"
            ))
        })?;
        self.ip(&["-n", name, "link", "set", "lo", "up"]).await?;
        // The world is IPv4 only; without IPv6 no router solicitation or DAD crosses a link.
        let _ = self
            .in_ns(
                name,
                &["sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"],
                None,
            )
            .await;
        Ok(())
    }

    /// A veth pair `a` in `ns_a` ↔ `b` in `ns_b`, both up.
    async fn veth(&self, ns_a: &str, a: &str, ns_b: &str, b: &str) -> Result<(), NetlabError> {
        self.ip(&[
            "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b,
        ])
        .await?;
        self.ip(&["-n", ns_a, "link", "set", a, "up"]).await?;
        self.ip(&["-n", ns_b, "link", "set", b, "up"]).await?;
        Ok(())
    }

    async fn addr(&self, ns: &str, dev: &str, cidr: &str) -> Result<(), NetlabError> {
        self.ip(&["-n", ns, "addr", "add", cidr, "dev", dev])
            .await
            .map(drop)
    }

    async fn route(&self, ns: &str, to: &str, via: &str) -> Result<(), NetlabError> {
        self.ip(&["-n", ns, "route", "add", to, "via", via])
            .await
            .map(drop)
    }

    /// Builds the namespaces, links, addresses, routes, firewalls and resolver configuration
    /// (everything but the processes). Recorded step by step: on an error, [`Lab::down`]
    /// removes what was made.
    pub async fn build_network(&mut self) -> Result<(), NetlabError> {
        let n = self.names.clone();
        let (net, cloud, sdrtn) = (n.net(), n.cloud(), n.sdrtn());
        let (eth, wan, lan, bridge) = (n.of("eth"), n.wan(), n.of("lan"), n.of("br"));
        for ns in [&net, &cloud, &sdrtn] {
            self.namespace(ns).await?;
        }
        self.ip(&["-n", &net, "link", "add", &bridge, "type", "bridge"])
            .await?;
        self.ip(&["-n", &net, "link", "set", &bridge, "up"]).await?;
        let outside = format!("/{}", map::OUTSIDE_PREFIX);
        let mut port = 0usize;
        for ns in [&cloud, &sdrtn] {
            let p = n.of(&format!("p{port}"));
            port += 1;
            self.veth(&net, &p, ns, &eth).await?;
            self.ip(&["-n", &net, "link", "set", &p, "master", &bridge])
                .await?;
        }
        let mut cloud_addrs: Vec<String> = (0..4).map(|i| map::ap(i).to_string()).collect();
        cloud_addrs.extend((0..2).map(|i| map::relay(i).to_string()));
        for a in &cloud_addrs {
            self.addr(&cloud, &eth, &format!("{a}{outside}")).await?;
        }
        self.addr(&sdrtn, &eth, &format!("{}{outside}", map::EDGE))
            .await?;
        let enterprises = self.plan.enterprises.clone();
        for (i, e) in enterprises.iter().enumerate() {
            let k = i + 1;
            let (gw, inside) = (n.gateway(&e.slug), n.enterprise(&e.slug));
            self.namespace(&gw).await?;
            self.namespace(&inside).await?;
            let p = n.of(&format!("p{port}"));
            port += 1;
            self.veth(&net, &p, &gw, &wan).await?;
            self.ip(&["-n", &net, "link", "set", &p, "master", &bridge])
                .await?;
            self.addr(&gw, &wan, &format!("{}{outside}", map::gateway_outside(k)))
                .await?;
            self.veth(&gw, &lan, &inside, &lan).await?;
            self.addr(&gw, &lan, &format!("{}/24", map::gateway_inside(k)))
                .await?;
            self.in_ns(
                &gw,
                &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
                None,
            )
            .await?;
            self.addr(&inside, &lan, &format!("{}/24", map::clients(k)))
                .await?;
            self.addr(&inside, &lan, &format!("{}/24", map::resolver(k)))
                .await?;
            if e.socks.is_some() {
                // On the gateway: see `socks.rs`.
                self.addr(&gw, &lan, &format!("{}/24", map::socks(k)))
                    .await?;
            }
            self.route(
                &inside,
                map::TEST_RANGE,
                &map::gateway_inside(k).to_string(),
            )
            .await?;
            let lan_block = format!("198.19.{k}.0/24");
            let via = map::gateway_outside(k).to_string();
            for ns in [&cloud, &sdrtn] {
                self.route(ns, &lan_block, &via).await?;
            }
            self.load_firewall(k).await?;
            self.resolv_conf(&inside, k)?;
        }
        Ok(())
    }

    /// The compiled policy of enterprise `k` (1-based): the lab's addresses, on the forward
    /// hook of its gateway, new traffic from the outside dropped.
    pub fn firewall_text(&self, k: usize) -> String {
        let e = &self.plan.enterprises[k - 1];
        let options = CompileOptions::new(&e.slug, Hook::Forward)
            .with_outside(&self.names.wan())
            .expect("the lab's interface names are valid");
        compile_nft(&self.mapping.policy(&e.policy), &options)
    }

    async fn load_firewall(&self, k: usize) -> Result<(), NetlabError> {
        let gw = self.names.gateway(&self.plan.enterprises[k - 1].slug);
        self.in_ns(&gw, &["nft", "-f", "-"], Some(&self.firewall_text(k)))
            .await
            .map(drop)
    }

    /// `/etc/netns/<ns>/resolv.conf`: what `ip netns exec` gives a process in the enterprise as
    /// its resolver configuration (so `getent hosts`, `dig` and the system resolver ask the
    /// enterprise resolver too).
    fn resolv_conf(&mut self, ns: &str, k: usize) -> Result<(), NetlabError> {
        let dir = PathBuf::from("/etc/netns").join(ns);
        self.state.etc_netns.push(dir.clone());
        self.state.save()?;
        std::fs::create_dir_all(&dir).map_err(|e| NetlabError::io(&dir, e))?;
        let file = dir.join("resolv.conf");
        let text = format!(
            "# cloudproxy netlab {}: the enterprise resolver\nnameserver {}\noptions timeout:1 attempts:2\n",
            self.names.prefix,
            map::resolver(k)
        );
        std::fs::write(&file, text).map_err(|e| NetlabError::io(&file, e))
    }

    /// Starts `exe args` in `netns`, recorded in the state file.
    pub fn spawn(
        &mut self,
        netns: &str,
        name: &str,
        exe: &Path,
        args: &[String],
        detached: bool,
    ) -> Result<Proc, NetlabError> {
        let file = name.replace(' ', "-");
        let proc = procs::spawn_in(netns, name, exe, args, &self.dir(), &file, detached)?;
        self.state.processes.push(proc.record.clone());
        self.state.save()?;
        Ok(proc)
    }

    /// Starts the resolvers, `edge` and `serve`, and waits until each is ready.
    pub async fn start_services(&mut self, exe: &Path, detached: bool) -> Result<(), NetlabError> {
        let aps: Vec<String> = (0..4).map(|i| map::ap(i).to_string()).collect();
        let enterprises = self.plan.enterprises.clone();
        for (i, e) in enterprises.iter().enumerate() {
            let k = i + 1;
            let mut args = vec![
                "netlab".to_owned(),
                "resolver".to_owned(),
                "--listen".to_owned(),
                format!("{}:53", map::resolver(k)),
                "--name".to_owned(),
                format!("{AP_DOMAIN}={}", aps.join(",")),
            ];
            if e.policy.dns == cloudproxy_sim::policy::DnsPolicy::Blocked {
                args.push("--refuse".to_owned());
            }
            let ns = self.names.enterprise(&e.slug);
            let mut proc =
                self.spawn(&ns, &format!("resolver {}", e.slug), exe, &args, detached)?;
            proc.ready("cloudproxy netlab resolver: ready", READY_TIMEOUT)
                .await?;
            self.procs.push(proc);
            if let Some(plan) = &e.socks {
                self.start_socks(k, &e.slug, plan, detached).await?;
            }
        }
        let edge_args: Vec<String> = [
            "edge",
            "--listen",
            &map::EDGE.to_string(),
            "--log-level",
            "warn",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let sdrtn = self.names.sdrtn();
        let mut edge = self.spawn(&sdrtn, "edge", exe, &edge_args, detached)?;
        let config = self.dir().join("serve.toml");
        std::fs::write(&config, serve_config()).map_err(|e| NetlabError::io(&config, e))?;
        let key = self.dir().join("ticket.key");
        write_key(&key)?;
        let serve_args: Vec<String> = [
            "serve",
            "--config",
            &config.display().to_string(),
            "--ticket-key-file",
            &key.display().to_string(),
            "--log-level",
            "warn",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let cloud = self.names.cloud();
        let mut serve = self.spawn(&cloud, "serve", exe, &serve_args, detached)?;
        edge.ready("cloudproxy edge: ready", READY_TIMEOUT).await?;
        self.procs.push(edge);
        serve
            .ready("cloudproxy serve: ready", READY_TIMEOUT)
            .await?;
        self.procs.push(serve);
        Ok(())
    }

    /// Starts enterprise `k`'s SOCKS5 server on its gateway (see `socks.rs`).
    async fn start_socks(
        &mut self,
        k: usize,
        slug: &str,
        plan: &SocksPlan,
        detached: bool,
    ) -> Result<(), NetlabError> {
        socks::require(plan.program())?;
        let gw = self.names.gateway(slug);
        let args = plan.args(k, &self.dir(), slug)?;
        let name = format!("socks5 {slug}");
        let program = Path::new(plan.program());
        let mut proc = self.spawn(&gw, &name, program, &args, detached)?;
        let ready = socks::wait_port(&gw, &map::socks(k).to_string(), plan.port).await;
        if let Err(e) = ready {
            return Err(NetlabError::Process(format!("{e}: {}", proc.log_tail())));
        }
        if proc.exited() {
            return Err(NetlabError::Process(format!(
                "{name} exited: {}",
                proc.log_tail()
            )));
        }
        self.procs.push(proc);
        Ok(())
    }

    /// The first of `serve`, `edge`, the resolvers and the SOCKS5 servers that has exited, with
    /// its log.
    pub fn dead_service(&mut self) -> Option<String> {
        self.procs.iter_mut().find_map(|p| {
            p.exited()
                .then(|| format!("{} exited during the run: {}", p.record.name, p.log_tail()))
        })
    }

    /// Enterprise `k`'s gateway ruleset (`nft -j list ruleset`) and its per-rule counters:
    /// (comment, packets).
    pub async fn counters(&self, k: usize) -> Result<(String, Vec<(String, u64)>), NetlabError> {
        let gw = self.names.gateway(&self.plan.enterprises[k - 1].slug);
        let json = self
            .in_ns(&gw, &["nft", "-j", "list", "ruleset"], None)
            .await?;
        let counters =
            nft_counters(&json).map_err(|e| NetlabError::Process(format!("{gw}: {e}")))?;
        Ok((json, counters))
    }

    /// Stops `edge` (it prints its statistics), then everything else; the edge's statistics.
    pub async fn stop_services(&mut self) -> Option<serde_json::Value> {
        let mut stats = None;
        for p in self.procs.iter_mut().filter(|p| p.record.name == "edge") {
            let out = p.stop(STOP_GRACE).await;
            stats = out
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
        }
        for p in self.procs.iter_mut() {
            p.stop(STOP_GRACE).await;
        }
        stats
    }

    /// Removes everything the lab made (see [`down`]).
    pub fn down(&mut self) -> Result<Teardown, NetlabError> {
        self.down = true;
        self.procs.clear();
        down(&self.state)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.keep && !self.down {
            if let Err(e) = self.down() {
                eprintln!("cloudproxy netlab: {e}");
            }
        }
    }
}

/// The `serve` configuration of a lab: the access points and relays on their lab addresses,
/// SD-RTN the lab's block, and per-client budgets as the simulated world's (every client of an
/// enterprise shares one address).
fn serve_config() -> String {
    let list = |v: Vec<String>| {
        v.iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "# cloudproxy netlab: the cloud proxy on the lab's addresses\nsdrtn = [\"{}\"]\n\n[ap]\nlisten = [{}]\nports = [1080, 8000, 25000, 9700]\nmax_requests_per_ip = 10000\nmax_requests_per_prefix = 10000\nmax_tcp_connections_per_ip = 1024\nmax_tcp_connections_per_prefix = 1024\n\n[relay]\nlisten = [{}]\n",
        map::SDRTN,
        list((0..4).map(|i| map::ap(i).to_string()).collect()),
        list((0..2).map(|i| map::relay(i).to_string()).collect()),
    )
}

/// A fresh ticket key (32 random bytes as hex) in a file only root reads.
fn write_key(path: &Path) -> Result<(), NetlabError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| NetlabError::io(Path::new("/dev/urandom"), e))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| NetlabError::io(path, e))?;
    std::io::Write::write_all(&mut file, hex.as_bytes()).map_err(|e| NetlabError::io(path, e))
}

/// What a teardown did.
#[derive(Clone, Debug, Default)]
pub struct Teardown {
    /// The lab's id.
    pub id: String,
    /// Processes stopped (SIGTERM, then SIGKILL for those named in `killed`).
    pub stopped: usize,
    /// Processes that did not stop on SIGTERM within the grace time.
    pub killed: Vec<String>,
    /// Namespaces deleted.
    pub namespaces: usize,
    /// How long it took.
    pub wall: Duration,
}

/// Removes exactly what `state` records: its processes (SIGTERM, then SIGKILL), whatever else
/// runs in its namespaces (only the lab's processes can), the namespaces (and with them every
/// link, address, route and rule), the `/etc/netns` entries, and the lab's directory. When
/// something cannot be removed, the state file is kept with what is left, and the error says
/// what.
pub fn down(state: &LabState) -> Result<Teardown, NetlabError> {
    let started = Instant::now();
    let killed = procs::stop_all(&state.processes, STOP_GRACE);
    let mut left = state.clone();
    let mut errors = Vec::new();
    let existing = procs::run_blocking("ip", &["netns", "list"]).unwrap_or_default();
    let exists = |ns: &str| {
        existing
            .lines()
            .any(|l| l.split_whitespace().next() == Some(ns))
    };
    left.namespaces.clear();
    let mut deleted = 0;
    for ns in state.namespaces.iter().rev().filter(|ns| exists(ns)) {
        let pids = procs::run_blocking("ip", &["netns", "pids", ns]).unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = procs::run_blocking("kill", &["-s", "KILL", pid]);
        }
        match procs::run_blocking("ip", &["netns", "del", ns]) {
            Ok(_) => deleted += 1,
            Err(e) => {
                errors.push(e.to_string());
                left.namespaces.push(ns.clone());
            }
        }
    }
    left.etc_netns.clear();
    for dir in &state.etc_netns {
        let ours = dir.parent() == Some(Path::new("/etc/netns"))
            && dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("cpnl-"));
        if ours && dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                errors.push(format!("{}: {e}", dir.display()));
                left.etc_netns.push(dir.clone());
            }
        }
    }
    let report = Teardown {
        id: state.id.clone(),
        stopped: state.processes.len(),
        killed,
        namespaces: deleted,
        wall: started.elapsed(),
    };
    if errors.is_empty() {
        let dir = state.dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| NetlabError::io(&dir, e))?;
        }
        Ok(report)
    } else {
        left.processes.retain(procs::alive);
        let _ = left.save();
        Err(NetlabError::Teardown(format!(
            "lab {} is not wholly removed ({}); its state file {} lists what is left",
            state.id,
            errors.join("; "),
            LabState::path_of(&state.id).display()
        )))
    }
}
