//! `cloudproxy check-firewall POLICY.toml`: will the SDK work behind this firewall policy, on
//! every path it can be handed, does the call survive the loss of an access point or a relay,
//! and which allow rules are missing? See [`cloudproxy_sim::firewall_check`].
//!
//! The policy is a TOML file, or imported from the firewall itself (`--from-nft`,
//! `--from-iptables`: see [`cloudproxy_sim::policy_formats`]); the report renders its suggested
//! rules in the format asked for (`--format toml|nft|iptables`); `--trace` and `--pcap` write
//! the evidence of the best path.

use std::io::{self, IsTerminal, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::Status;
use cloudproxy_core::engine::CloudProxyType;
use cloudproxy_sim::firewall_check::{
    check_firewall_with, CheckError, CheckReport, CheckRequest, Progress, DEFAULT_PARAMS,
};
use cloudproxy_sim::policy::{DnsPolicy, Policy};
use cloudproxy_sim::policy_formats::render::{Format, Target};
use cloudproxy_sim::policy_formats::{
    import_iptables, import_nft, read_bounded, Hook, ImportOptions, Imported,
};

/// Arguments of `cloudproxy check-firewall`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The firewall policy to check (TOML, like sim/policies/seed.toml).
    #[arg(
        value_name = "POLICY.toml",
        required_unless_present_any = ["from_nft", "from_iptables"],
        conflicts_with_all = ["from_nft", "from_iptables"]
    )]
    pub policy: Option<PathBuf>,
    /// Import the policy from nftables: the output of `nft -j list ruleset` (or `nft list ruleset`).
    #[arg(long, value_name = "FILE", conflicts_with = "from_iptables")]
    pub from_nft: Option<PathBuf>,
    /// Import the policy from the output of `iptables-save` (optionally followed by `ip6tables-save`'s).
    #[arg(long, value_name = "FILE")]
    pub from_iptables: Option<PathBuf>,
    /// The chain of the policy: output (the hosts' own firewall) or forward (a gateway's)
    /// [default: the one holding rules; output for TOML policies] [possible values: output,
    /// forward].
    #[arg(long, value_name = "HOOK")]
    pub hook: Option<Hook>,
    /// The format of the missing rules: policy TOML, nft -f input, or iptables-restore input
    /// [possible values: toml, nft, iptables].
    #[arg(long, value_name = "FORMAT", default_value = "toml")]
    pub format: Format,
    /// The SDK's setParameters calls before joining, in order [default: {"rtc.enable_proxy":true}].
    #[arg(long, value_name = "JSON", num_args = 1..)]
    pub params: Vec<String>,
    /// setParameters texts from files (`-`: standard input), one per file, at most 64 KiB
    /// each; they come before the --params texts.
    #[arg(long, value_name = "FILE")]
    pub params_file: Vec<PathBuf>,
    /// Print one JSON object: {"joined":bool,"media":"udp"|"tcp"|"none","join_ms":int|null,"missing":[...],"resilient":bool|null,...}
    /// (the schema is in docs/scenarios.md).
    #[arg(long)]
    pub json: bool,
    /// How the enterprise resolver answers external names, when the policy cannot say (a
    /// firewall export): public or blocked [default: the policy's; for an imported policy
    /// without a DNS rule, both answers are explored] [possible values: public, blocked].
    #[arg(long, value_name = "DNS")]
    pub dns: Option<DnsArg>,
    /// The UDP ports the SOCKS5 server (type 0) binds its relay sockets to, as its
    /// configuration says (dante: udp.portrange in the socks pass rule), e.g. 40000-40099
    /// [default: the Linux ephemeral range 32768-60999].
    #[arg(long, value_name = "LOW-HIGH")]
    pub socks_udp_ports: Option<PortRange>,
    /// Write the event trace of the best path's run as JSON lines to FILE.
    #[arg(long, value_name = "FILE.jsonl")]
    pub trace: Option<PathBuf>,
    /// Write the simulated traffic of the best path's run as a pcap (tshark, Wireshark) to FILE.
    #[arg(long, value_name = "FILE.pcap")]
    pub pcap: Option<PathBuf>,
    /// Report every simulation run on stderr as it finishes (the default when stderr is a
    /// terminal).
    #[arg(long)]
    pub progress: bool,
    /// setCloudProxy(type) before the setParameters calls (beyond the seed): force-udp (the
    /// seed's ports) or force-tcp (TCP 443 only, to the access points and the relays: does TCP
    /// 443 suffice?) [possible values: force-udp, force-tcp].
    #[arg(long, value_name = "TYPE")]
    pub cloud_proxy: Option<CloudProxyArg>,
    /// The seed of the simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Read the setParameters calls in compatibility mode (accepts the documentation's type-2
    /// example as printed).
    #[arg(long)]
    pub compat: bool,
}

/// `--cloud-proxy force-udp|force-tcp` (`automatic` is parsed, and refused by the check with
/// what to run instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloudProxyArg(pub CloudProxyType);

impl std::str::FromStr for CloudProxyArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [
            CloudProxyType::Automatic,
            CloudProxyType::ForceUdp,
            CloudProxyType::ForceTcp,
        ]
        .into_iter()
        .find(|t| t.name() == text)
        .map(CloudProxyArg)
        .ok_or_else(|| format!("`{text}`: expected force-udp or force-tcp"))
    }
}

/// `--dns public|blocked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsArg {
    /// External names resolve.
    Public,
    /// The resolver refuses external names.
    Blocked,
}

impl std::str::FromStr for DnsArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "public" => Ok(DnsArg::Public),
            "blocked" => Ok(DnsArg::Blocked),
            other => Err(format!("`{other}`: expected public or blocked")),
        }
    }
}

impl From<DnsArg> for DnsPolicy {
    fn from(dns: DnsArg) -> Self {
        match dns {
            DnsArg::Public => DnsPolicy::Public,
            DnsArg::Blocked => DnsPolicy::Blocked,
        }
    }
}

/// `--socks-udp-ports LOW-HIGH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRange(pub RangeInclusive<u16>);

impl std::str::FromStr for PortRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{text}`: expected a port range like 40000-40099 (ports 1-65535, low to high)")
        };
        let (lo, hi) = text.split_once('-').unwrap_or((text, text));
        let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
        if lo == 0 || lo > hi {
            return Err(bad());
        }
        Ok(PortRange(lo..=hi))
    }
}

/// The policy to check, and where the missing rules go.
struct Loaded {
    policy: Policy,
    /// The file, for the report.
    name: String,
    target: Target,
    /// When imported: from which format, and what the importer said.
    imported: Option<(Format, Imported)>,
}

fn load(args: &CheckArgs) -> Result<Loaded, String> {
    let (path, from) = match (&args.policy, &args.from_nft, &args.from_iptables) {
        (_, Some(p), _) => (p, Format::Nft),
        (_, _, Some(p)) => (p, Format::Iptables),
        (Some(p), _, _) => (p, Format::Toml),
        (None, None, None) => return Err("no policy given".to_owned()),
    };
    let name = path.display().to_string();
    let text = read_bounded(path).map_err(|e| e.to_string())?;
    let fail = |e: &dyn std::fmt::Display| format!("{name}: {e}");
    let options = ImportOptions { hook: args.hook };
    let imported = match from {
        Format::Toml => {
            let policy = text.parse::<Policy>().map_err(|e| fail(&e))?;
            let stem = Path::new(path)
                .file_stem()
                .map_or_else(|| "policy".to_owned(), |s| s.to_string_lossy().into_owned());
            return Ok(Loaded {
                policy,
                name,
                target: Target::for_hook(&stem, args.hook.unwrap_or_default()),
                imported: None,
            });
        }
        Format::Nft => import_nft(&text, &options).map_err(|e| fail(&e))?,
        Format::Iptables => import_iptables(&text, &options).map_err(|e| fail(&e))?,
    };
    Ok(Loaded {
        policy: imported.policy.clone(),
        name,
        target: Target::imported(&imported.source, from),
        imported: Some((from, imported)),
    })
}

/// Runs the check and prints the answer; `Ok` when the client joined on every path explored,
/// `Failed` when not.
pub fn run(args: &CheckArgs, out: &mut impl Write) -> io::Result<Status> {
    let loaded = match load(args) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("cloudproxy: {e}");
            return Ok(Status::Usage);
        }
    };
    let mut params = match super::params_file::read_all(&args.params_file) {
        Ok(texts) => texts,
        Err(e) => {
            eprintln!("cloudproxy: {e}");
            return Ok(Status::Usage);
        }
    };
    params.extend(args.params.iter().cloned());
    let mut policy = loaded.policy.clone();
    if let Some(dns) = args.dns {
        policy.dns = dns.into();
    }
    let request = CheckRequest {
        // A firewall export cannot say how the resolver answers (unless it denies DNS).
        dns_stated: args.dns.is_some()
            || loaded.imported.is_none()
            || policy.dns == DnsPolicy::Blocked,
        socks_udp_ports: args.socks_udp_ports.clone().map(|p| p.0),
        evidence: args.trace.is_some() || args.pcap.is_some(),
        compat: args.compat,
        cloud_proxy: args.cloud_proxy.map(|c| c.0),
        ..CheckRequest::new(policy, params, args.seed)
    };
    // Refuse a file that cannot be written before the check, not after it.
    for path in [&args.trace, &args.pcap].into_iter().flatten() {
        if let Err(e) = std::fs::File::create(path) {
            eprintln!("cloudproxy: {}: {e}", path.display());
            return Ok(Status::Usage);
        }
    }
    let show = args.progress || std::io::stderr().is_terminal();
    let progress = |p: &Progress| {
        if show {
            eprintln!(
                "check-firewall: run {}/{} ({}: {} of {})",
                p.runs, p.max_runs, p.phase, p.done, p.of
            );
        }
    };
    let report = match check_firewall_with(&request, &progress) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("cloudproxy: {e}");
            if !args.compat && matches!(e, CheckError::Params { .. }) {
                eprintln!(
                    "cloudproxy: (the default is {DEFAULT_PARAMS}; --compat reads the documentation's type-2 example as printed)"
                );
            }
            return Ok(Status::Usage);
        }
    };
    if let Err(e) = write_evidence(args, &report) {
        eprintln!("cloudproxy: {e}");
        return Ok(Status::Usage);
    }
    if args.json {
        let mut value = report.to_json();
        if args.format != Format::Toml {
            value["missing_text"] = json!(report.rules_text(args.format, &loaded.target));
        }
        if let Some((from, imported)) = &loaded.imported {
            value["imported"] = json!({
                "from": format!("{from:?}").to_lowercase(),
                "chain": source_text(imported),
                "notes": imported.notes,
            });
        }
        writeln!(out, "{value}")?;
    } else {
        if let Some((from, imported)) = &loaded.imported {
            write!(out, "{}", import_text(&loaded, *from, imported))?;
        }
        write!(
            out,
            "{}",
            report.to_text(&loaded.name, args.format, &loaded.target)
        )?;
    }
    Ok(Status::from(report.joined()))
}

/// Writes the best path's trace (JSON lines) and pcap where asked, and says where on stderr.
fn write_evidence(args: &CheckArgs, report: &CheckReport) -> Result<(), String> {
    let Some(run) = &report.evidence else {
        if args.trace.is_some() || args.pcap.is_some() {
            return Err("no run could be recorded as evidence (see the notes)".to_owned());
        }
        return Ok(());
    };
    let fail = |path: &Path, e: io::Error| format!("{}: {e}", path.display());
    if let Some(path) = &args.trace {
        let mut text = run.evidence.trace.join("\n");
        text.push('\n');
        std::fs::write(path, text).map_err(|e| fail(path, e))?;
        eprintln!(
            "  trace {} ({} events): {}",
            path.display(),
            run.evidence.trace.len(),
            run.description
        );
    }
    if let Some(path) = &args.pcap {
        run.evidence.capture.save(path).map_err(|e| fail(path, e))?;
        let summary = run.evidence.capture.summary();
        eprintln!(
            "  pcap {} ({} packets, {} bytes): {}",
            path.display(),
            summary.packets,
            summary.bytes,
            run.description
        );
        if let Some(note) = summary.note() {
            eprintln!("  pcap note: {note}");
        }
    }
    Ok(())
}

fn source_text(imported: &Imported) -> String {
    let s = &imported.source;
    format!("{} {} {} ({} hook)", s.family, s.table, s.chain, s.hook)
}

fn import_text(loaded: &Loaded, from: Format, imported: &Imported) -> String {
    let p = &loaded.policy;
    let lower = |d: &dyn std::fmt::Debug| format!("{d:?}").to_lowercase();
    let mut t = format!(
        "imported    {} ({}, chain {}): default {}, dns {}, {} allow rule(s)\n",
        loaded.name,
        lower(&from),
        source_text(imported),
        lower(&p.default),
        lower(&p.dns),
        p.rules.len()
    );
    for note in &imported.notes {
        t.push_str(&format!("import note {note}\n"));
    }
    t.push('\n');
    t
}
