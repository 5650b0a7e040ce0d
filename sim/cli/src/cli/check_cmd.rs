//! `cloudproxy check-firewall POLICY.toml`: will the SDK work behind this firewall policy, and
//! which allow rules does its best path still need? See [`cloudproxy_sim::firewall_check`].
//!
//! The policy is a TOML file, or imported from the firewall itself (`--from-nft`,
//! `--from-iptables`: see [`cloudproxy_sim::policy_formats`]); the missing rules are printed in the
//! format asked for (`--format toml|nft|iptables`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::Status;
use cloudproxy_sim::firewall_check::{check_firewall, CheckReport, CheckRequest, DEFAULT_PARAMS};
use cloudproxy_sim::policy::Policy;
use cloudproxy_sim::policy_formats::render::{render_rules, rule_from_text, Format, Target};
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
    /// Print one JSON object: {"joined":bool,"media":"udp"|"tcp"|"none","join_ms":int|null,"missing":[...],...}.
    #[arg(long)]
    pub json: bool,
    /// The seed of the simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Read the setParameters calls in compatibility mode (accepts the documentation's type-2
    /// example as printed).
    #[arg(long)]
    pub compat: bool,
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

/// Runs the check and prints the answer; `Ok` when the client joined, `Failed` when not.
pub fn run(args: &CheckArgs, out: &mut impl Write) -> io::Result<Status> {
    let loaded = match load(args) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("cloudproxy: {e}");
            return Ok(Status::Usage);
        }
    };
    let request = CheckRequest {
        policy: loaded.policy.clone(),
        params: args.params.clone(),
        compat: args.compat,
        seed: args.seed,
    };
    let report = match check_firewall(&request) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("cloudproxy: {e}");
            if !args.compat {
                eprintln!(
                    "cloudproxy: (the default is {DEFAULT_PARAMS}; --compat reads the documentation's type-2 example as printed)"
                );
            }
            return Ok(Status::Usage);
        }
    };
    let rendered =
        (args.format != Format::Toml).then(|| missing_in(&report, args.format, &loaded.target));
    if args.json {
        let mut value = report.to_json();
        if let Some(text) = &rendered {
            value["missing_text"] = json!(text);
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
        let text = report.to_text(&loaded.name);
        match (&rendered, text.find("\nMissing for the best path:")) {
            (Some(rules), Some(at)) => {
                let how = match args.format {
                    Format::Nft => "Load them with nft -f FILE",
                    _ => "Load them with iptables-restore --noflush < FILE (the IPv6 part with ip6tables-restore)",
                };
                write!(
                    out,
                    "{}\nMissing for the best path: {} allow rule(s). {how}:\n\n{rules}",
                    &text[..at],
                    report.missing.len()
                )?;
            }
            _ => write!(out, "{text}")?,
        }
    }
    Ok(Status::from(report.joined()))
}

/// The report's missing rules in `format`.
fn missing_in(report: &CheckReport, format: Format, target: &Target) -> String {
    let rules: Option<Vec<_>> = report
        .missing
        .iter()
        .map(|m| rule_from_text(m.proto, &m.to, &m.ports))
        .collect();
    match rules {
        Some(rules) => render_rules(&rules, format, target),
        // Never expected: the report's rules come from parsed rules.
        None => report.missing.iter().map(|m| m.to_toml()).collect(),
    }
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
