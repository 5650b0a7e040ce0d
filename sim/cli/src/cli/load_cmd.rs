//! `cloudproxy load`: N sessions against a running proxy on real sockets, with loss,
//! reordering, RTT and jitter percentiles. The logic is `cloudproxy_load` (shared with the
//! benchmarks); this is the thin command around it.

use std::io::{self, Write};

use cloudproxy_load::args::{execute, LoadArgs};
use cloudproxy_load::LoadError;

use super::Status;

/// `cloudproxy load`: exit 0 when every session opened and answered and every tunnel
/// transfer completed, 1 otherwise, 2 for a usage error.
pub fn run(args: &LoadArgs, out: &mut impl Write) -> io::Result<Status> {
    let report = match execute(args) {
        Ok(r) => r,
        Err(LoadError::Usage(e)) => {
            eprintln!("cloudproxy load: {e}");
            return Ok(Status::Usage);
        }
        Err(e) => {
            eprintln!("cloudproxy load: {e}");
            return Ok(Status::Failed);
        }
    };
    if args.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        writeln!(out, "{}", report.to_table())?;
    }
    Ok(Status::from(report.ok()))
}
