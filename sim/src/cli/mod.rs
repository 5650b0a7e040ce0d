//! The `cloudproxy` command line.
//!
//! Exit status: 0 when everything asked for succeeded, 1 when something failed (an op returned
//! a non-zero code, a check did not pass), 2 for a usage error.

mod engine_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// cloudproxy: will the RTC SDK work behind this firewall?
#[derive(Debug, Parser)]
#[command(name = "cloudproxy", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without one, runs the built-in demonstration of the seed's examples.
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
    let result = match cli.command.unwrap_or(Command::Demo) {
        Command::Engine(args) => engine_cmd::run(&args, &mut out),
        Command::Demo => engine_cmd::demo(&mut out),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("cloudproxy: cannot write the output: {e}");
            ExitCode::from(1)
        }
    }
}
