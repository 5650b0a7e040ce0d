//! `cloudproxy check-firewall POLICY.toml`: will the SDK work behind this firewall policy, and
//! which allow rules does its best path still need? See [`cloudproxy_sim::firewall_check`].

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use super::Status;
use cloudproxy_sim::firewall_check::{check_firewall, CheckRequest, DEFAULT_PARAMS};
use cloudproxy_sim::policy::Policy;

/// Arguments of `cloudproxy check-firewall`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The firewall policy to check (TOML, like sim/policies/seed.toml).
    #[arg(value_name = "POLICY.toml")]
    pub policy: PathBuf,
    /// The SDK's setParameters calls before joining, in order [default: {"rtc.enable_proxy":true}].
    #[arg(long, value_name = "JSON", num_args = 1..)]
    pub params: Vec<String>,
    /// setParameters texts from files (`-`: standard input), one per file, at most 64 KiB
    /// each; they come before the --params texts.
    #[arg(long, value_name = "FILE")]
    pub params_file: Vec<PathBuf>,
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

/// Runs the check and prints the answer; `Ok` when the client joined, `Failed` when not.
pub fn run(args: &CheckArgs, out: &mut impl Write) -> io::Result<Status> {
    let policy = match std::fs::read_to_string(&args.policy)
        .map_err(|e| e.to_string())
        .and_then(|text| text.parse::<Policy>().map_err(|e| e.to_string()))
    {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("cloudproxy: {}: {e}", args.policy.display());
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
    let request = CheckRequest {
        policy,
        params,
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
    if args.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        write!(
            out,
            "{}",
            report.to_text(&args.policy.display().to_string())
        )?;
    }
    Ok(Status::from(report.joined()))
}
