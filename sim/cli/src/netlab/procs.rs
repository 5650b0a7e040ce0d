//! Commands and processes: `ip`, `nft` and the lab's own processes (`serve`, `edge`, the
//! resolvers, the calls), each started in its namespace with `ip netns exec`, in a process
//! group of its own (a Ctrl-C at the terminal reaches only the lab, which then stops them in
//! order), its standard output and error in files of the lab's directory.
//!
//! Every wait is bounded. Processes are signalled by their id, and only while their start time
//! is the one recorded when they were started.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use super::state::ProcessRecord;
use super::NetlabError;

/// How long one `ip` or `nft` command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `program args` (stdin from `input`) to completion; its standard output, or an error
/// with its standard error.
pub async fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<String, NetlabError> {
    let line = command_line(program, args);
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| NetlabError::Command {
            command: line.clone(),
            stderr: format!("cannot start it: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        if let Some(text) = input {
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(|e| NetlabError::Command {
                    command: line.clone(),
                    stderr: format!("cannot write its input: {e}"),
                })?;
        }
    }
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| NetlabError::Command {
            command: line.clone(),
            stderr: format!("did not finish within {COMMAND_TIMEOUT:?}"),
        })?
        .map_err(|e| NetlabError::Command {
            command: line.clone(),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(NetlabError::Command {
            command: line,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The same, blocking (for the teardown, which also runs from `Drop`).
pub fn run_blocking(program: &str, args: &[&str]) -> Result<String, NetlabError> {
    let line = command_line(program, args);
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetlabError::Command {
            command: line.clone(),
            stderr: format!("cannot start it: {e}"),
        })?;
    if !out.status.success() {
        return Err(NetlabError::Command {
            command: line,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A process's start time (field 22 of `/proc/PID/stat`); `None` when it is gone or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the recorded process still runs (the same process: same id and start time).
pub fn alive(record: &ProcessRecord) -> bool {
    start_time(record.pid) == Some(record.start)
}

/// Sends `signal` (`TERM`, `INT`, `KILL`) to the recorded process, if it still runs.
pub fn signal(record: &ProcessRecord, signal: &str) {
    if alive(record) {
        let _ = run_blocking("kill", &["-s", signal, &record.pid.to_string()]);
    }
}

/// Stops the recorded processes: SIGTERM, up to `grace` for them to exit, then SIGKILL.
/// Returns the ones that had to be killed.
pub fn stop_all(records: &[ProcessRecord], grace: Duration) -> Vec<String> {
    for r in records {
        signal(r, "TERM");
    }
    let deadline = Instant::now() + grace;
    while records.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut killed = Vec::new();
    for r in records.iter().filter(|r| alive(r)) {
        signal(r, "KILL");
        killed.push(format!("{} (pid {})", r.name, r.pid));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while records.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    killed
}

/// A process of the lab.
pub struct Proc {
    /// Its record in the state file.
    pub record: ProcessRecord,
    /// The child (for `run`; `None` for a lab left up by `up`, whose processes outlive it).
    pub child: Option<Child>,
    /// Its standard output file.
    pub stdout: PathBuf,
    /// Its standard error file.
    pub stderr: PathBuf,
}

/// Starts `exe args` in `netns`, its output in `dir/<file>.out` and `.log`. A `detached`
/// process outlives this one (`netlab up`); any other is killed when its [`Proc`] is dropped.
pub fn spawn_in(
    netns: &str,
    name: &str,
    exe: &Path,
    args: &[String],
    dir: &Path,
    file: &str,
    detached: bool,
) -> Result<Proc, NetlabError> {
    let stdout = dir.join(format!("{file}.out"));
    let stderr = dir.join(format!("{file}.log"));
    let open = |p: &Path| std::fs::File::create(p).map_err(|e| NetlabError::io(p, e));
    let child = Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(open(&stdout)?)
        .stderr(open(&stderr)?)
        .process_group(0)
        .kill_on_drop(!detached)
        .spawn()
        .map_err(|e| NetlabError::Process(format!("{name}: cannot start ip netns exec: {e}")))?;
    let pid = child.id().unwrap_or(0);
    let start = start_time(pid).unwrap_or(0);
    Ok(Proc {
        record: ProcessRecord {
            name: name.to_owned(),
            pid,
            start,
            netns: netns.to_owned(),
        },
        child: Some(child),
        stdout,
        stderr,
    })
}

impl Proc {
    /// The last lines of its standard error, for messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(6)..].join("\n")
    }

    /// Its standard output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Waits until its standard output has a line starting with `prefix`; an error naming it
    /// and its log when it exits first or `timeout` passes.
    pub async fn ready(&mut self, prefix: &str, timeout: Duration) -> Result<(), NetlabError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.output().lines().any(|l| l.starts_with(prefix)) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(NetlabError::Process(format!(
                        "{} exited ({status}) before it was ready: {}",
                        self.record.name,
                        self.log_tail()
                    )));
                }
            }
            if Instant::now() >= deadline {
                return Err(NetlabError::Process(format!(
                    "{} was not ready within {timeout:?}: {}",
                    self.record.name,
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for it to exit by itself, at most `timeout` (then it is killed); its output.
    pub async fn finish(&mut self, timeout: Duration) -> Result<String, NetlabError> {
        if let Some(child) = self.child.as_mut() {
            match tokio::time::timeout(timeout, child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(NetlabError::Process(format!(
                        "{} did not finish within {timeout:?} (killed): {}",
                        self.record.name,
                        self.log_tail()
                    )));
                }
            }
        }
        Ok(self.output())
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => !alive(&self.record),
        }
    }

    /// Asks it to stop (SIGTERM), waits up to `grace`, then kills it; its output.
    pub async fn stop(&mut self, grace: Duration) -> String {
        signal(&self.record, "TERM");
        if let Some(child) = self.child.as_mut() {
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
        self.output()
    }
}
