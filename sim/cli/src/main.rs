//! The `cloudproxy` binary: see `cloudproxy --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    cloudproxy::cli::main()
}
