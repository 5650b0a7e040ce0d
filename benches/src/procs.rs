//! Child processes and what the kernel accounts for them: CPU time, resident memory, open
//! descriptors.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A relay in a child process; killed (by its pid) when dropped. Its stderr lines are kept (the
/// last few thousand) so that a benchmark can say why the relay closed a session.
pub struct RelayProc {
    /// What it is (`serve`, `tcp-splice`, ...).
    pub name: String,
    child: Child,
    /// Held open: the child exits when it closes.
    _stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// Most stderr lines kept per relay.
const STDERR_LINES: usize = 20_000;

impl RelayProc {
    /// Starts `bin args...` and waits (at most 20 s) for its `ready` line.
    pub fn start(bin: &str, name: &str, args: &[String], envs: &[(&str, &str)]) -> RelayProc {
        let mut child = Command::new(bin)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} {args:?}: {e}"));
        let stdin = child.stdin.take();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut lines = sink.lock().unwrap_or_else(|e| e.into_inner());
                if lines.len() >= STDERR_LINES {
                    lines.remove(0);
                }
                lines.push(line);
            }
        });
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut proc = RelayProc {
            name: name.to_owned(),
            child,
            _stdin: stdin,
            stderr,
        };
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) if line.starts_with("ready") => return proc,
                Ok(_) => {}
                Err(_) => {
                    if let Ok(Some(status)) = proc.child.try_wait() {
                        panic!(
                            "{name} exited ({status}) before it was ready:\n{}",
                            proc.stderr_text()
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{name} was not ready within 20 s:\n{}",
                        proc.stderr_text()
                    );
                }
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the process has used so far.
    pub fn cpu(&self) -> Duration {
        cpu_time(self.pid())
    }

    /// Its stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// The reasons of the `session_closed` lines of `serve`'s log, with how often each came.
    pub fn close_reasons(&self) -> Vec<(String, usize)> {
        let lines = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
        for line in lines.iter().filter(|l| l.contains("session_closed")) {
            let reason = line
                .split("\\\"reason\\\":\\\"")
                .nth(1)
                .or_else(|| line.split("\"reason\":\"").nth(1))
                .and_then(|rest| rest.split(['\\', '"']).next())
                .unwrap_or("?");
            *reasons.entry(reason.to_owned()).or_default() += 1;
        }
        reasons.into_iter().collect()
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clock ticks per second of `/proc/<pid>/stat`.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU time used by process `pid`, every thread, user and system: the kernel's clock of that
/// process (`clock_getcpuclockid(3)`, nanoseconds), or `/proc/<pid>/stat`'s utime + stime
/// (clock ticks) when that clock cannot be read. Zero when the process is gone.
pub fn cpu_time(pid: u32) -> Duration {
    let mut clock: libc::clockid_t = 0;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both calls only write into the values we pass.
    let ok = unsafe {
        libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0
            && libc::clock_gettime(clock, &mut ts) == 0
    };
    if ok {
        return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat(5): 12 and 13 after the command name.
    let t = ticks(11) + ticks(12);
    Duration::from_nanos(t * 1_000_000_000 / clock_ticks())
}

/// Resident memory of process `pid` (`VmRSS`), bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Descriptors open in process `pid`.
pub fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Raises this process's descriptor limits (soft and, when allowed, hard) to `want`; children
/// inherit them. Returns the soft limit now.
pub fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let raised = libc::rlimit {
        rlim_cur: want.max(lim.rlim_cur),
        rlim_max: want.max(lim.rlim_max),
    };
    // SAFETY: setrlimit reads the struct we pass; raising the hard limit needs privileges and
    // fails harmlessly without them.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        let soft_only = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above, within the hard limit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft_only) };
    }
    // SAFETY: as above.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    lim.rlim_cur
}

/// Writes `text` to `path` (creating its directory).
pub fn write_file(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut f = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_of_this_process() {
        let pid = std::process::id();
        let before = cpu_time(pid);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time(pid) > before);
        assert!(rss_bytes(pid) > 0);
        assert!(open_fds(pid) >= 3);
        assert_eq!(cpu_time(999_999_999), Duration::ZERO);
    }
}
