//! The `cloudproxy` command line.
//!
//! Exit status: 0 when everything asked for succeeded, 1 when something failed (an op returned
//! a non-zero code, a check did not pass), 2 for a usage error.

mod engine_cmd;
mod run_cmd;

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
        Command::Engine(args) => engine_cmd::run(&args, &mut out).map(Status::from),
        Command::Demo => engine_cmd::demo(&mut out).map(Status::from),
        Command::List => run_cmd::list(&mut out).map(Status::from),
        Command::Run(args) => run_cmd::run(&args, &mut out),
    };
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Failed) => ExitCode::from(1),
        Ok(Status::Usage) => ExitCode::from(2),
        Err(e) => {
            eprintln!("cloudproxy: cannot write the output: {e}");
            ExitCode::from(1)
        }
    }
}
