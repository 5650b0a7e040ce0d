//! The `cloudproxy` command line.
//!
//! Exit status: 0 when everything asked for succeeded, 1 when something failed (an op returned
//! a non-zero code, a check did not pass), 2 for a usage error, 130 when a sweep was
//! interrupted (Ctrl-C) and printed its partial summary.

mod check_cmd;
mod engine_cmd;
pub mod junit;
mod load_cmd;
mod netlab_cmd;
mod params_file;
mod real_cmd;
pub mod record;
mod run_cmd;
mod shrink_cmd;
mod sweep_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// cloudproxy: will the RTC SDK work behind this firewall?
#[derive(Debug, Parser)]
#[command(name = "cloudproxy", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without one, runs the whole scenario catalogue on the default world.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run setParameters / join / leave ops on a fresh SDK engine and print one JSON object per
    /// op.
    Engine(engine_cmd::EngineArgs),
    /// Walk through every setParameters example of the seed document on a fresh engine each.
    Demo,
    /// List the scenarios, one line each with what it proves.
    List,
    /// Run scenarios on the simulated world and print the report (exit 1 on any failure).
    Run(run_cmd::RunArgs),
    /// Run scenarios over many seeds in parallel, optionally with swarm faults.
    Sweep(sweep_cmd::SweepArgs),
    /// Shrink a failing run's fault schedule to a smallest one that still fails the same
    /// check, and write it as a scenario file that fails on its own.
    Shrink(shrink_cmd::ShrinkArgs),
    /// Serve the cloud proxy (access points and relays) on real sockets, as the config says;
    /// SIGINT/SIGTERM close every session and exit 0.
    Serve(real_cmd::ServeArgs),
    /// Run an SD-RTN edge on real sockets (for tests and demos) until SIGINT/SIGTERM.
    Edge(real_cmd::EdgeArgs),
    /// Join a channel as an SDK client on real sockets, talk, leave, and print the report row
    /// (exit 1 when it never joined).
    Call(real_cmd::CallArgs),
    /// Load a running proxy: N sessions (AP request, tunnel, UDP media) sending P packets/s of
    /// B bytes for S seconds, optionally X tunnel bytes each; prints sent, received, loss,
    /// reordering, RTT and jitter percentiles (exit 1 when a session or tunnel failed).
    Load(cloudproxy_load::args::LoadArgs),
    /// Will the SDK work behind this firewall policy? Joined or not, signalling and media paths,
    /// time to join, and the allow rules its best path still needs (exit 1 when it does not join).
    CheckFirewall(check_cmd::CheckArgs),
    /// The world on real network namespaces with a real firewall (Linux, root): `up` builds
    /// it, `run` runs scenarios there and in the simulation and compares them, `down`
    /// removes it.
    Netlab(netlab_cmd::NetlabArgs),
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Everything asked for succeeded (exit 0).
    Ok,
    /// Something failed (exit 1).
    Failed,
    /// The command line was wrong (exit 2).
    Usage,
    /// Interrupted by SIGINT after printing what was done (exit 130, as shells report it).
    Interrupted,
}

impl From<bool> for Status {
    fn from(ok: bool) -> Self {
        if ok {
            Status::Ok
        } else {
            Status::Failed
        }
    }
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let mut out = std::io::stdout().lock();
    let result: std::io::Result<Status> = match cli
        .command
        .unwrap_or(Command::Run(run_cmd::RunArgs::default_catalogue()))
    {
        Command::Engine(args) => engine_cmd::run(&args, &mut out),
        Command::Demo => engine_cmd::demo(&mut out).map(Status::from),
        Command::List => run_cmd::list(&mut out).map(Status::from),
        Command::Run(args) => run_cmd::run(&args, &mut out),
        Command::Sweep(args) => sweep_cmd::run(&args, &mut out),
        Command::Shrink(args) => shrink_cmd::run(&args, &mut out),
        Command::Serve(args) => real_cmd::serve(&args, &mut out),
        Command::Edge(args) => real_cmd::edge(&args, &mut out),
        Command::Call(args) => real_cmd::call(&args, &mut out),
        Command::Load(args) => load_cmd::run(&args, &mut out),
        Command::CheckFirewall(args) => check_cmd::run(&args, &mut out),
        Command::Netlab(args) => netlab_cmd::run(&args, &mut out),
    };
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Failed) => ExitCode::from(1),
        Ok(Status::Usage) => ExitCode::from(2),
        Ok(Status::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("cloudproxy: cannot write the output: {e}");
            ExitCode::from(1)
        }
    }
}
