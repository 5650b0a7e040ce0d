//! `serve`'s operator inputs are bounded and checked before anything is bound: an endless
//! configuration or key file (`/dev/zero`) fails at once (exit 2) naming the file and the
//! bound; an open-relay SD-RTN block and a keepalive not below the idle timeout are refused
//! naming the fields; a ticket key file others can read is warned about.
// clippy.toml disallows the system's clocks; real-socket tests bound their waits on the wall clock.
#![allow(clippy::disallowed_methods)]

mod real_support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use real_support::*;

/// Runs `cloudproxy serve ARGS` with `key` in the environment; kills it (failing the test)
/// if it has not exited within 10 s. Returns (exit code, stdout, stderr).
fn serve_bounded(args: &[&str], key: Option<&str>) -> (Option<i32>, String, String) {
    let dir = TempDir::new("inputs-run");
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut command = Command::new(bin());
    command
        .arg("serve")
        .args(args)
        .env_remove("CLOUDPROXY_TICKET_KEY")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    if let Some(key) = key {
        command.env("CLOUDPROXY_TICKET_KEY", key);
    }
    let mut child = command.spawn().expect("run cloudproxy serve");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "serve {args:?} did not exit within 10 s\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code(),
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    )
}

#[test]
fn an_endless_config_or_key_file_fails_at_once_naming_the_file_and_the_bound() {
    let key = random_key();
    let (code, _, stderr) = serve_bounded(&["--config", "/dev/zero"], Some(&key));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/dev/zero"), "{stderr}");
    assert!(stderr.contains("1048576 bytes"), "{stderr}");

    let dir = TempDir::new("inputs");
    let config = dir.write("serve.toml", "[ap]\nlisten = [\"127.70.1.1\"]\n");
    let config = config.to_str().unwrap();
    let (code, _, stderr) = serve_bounded(
        &[
            "--config",
            config,
            "--ticket-key-file",
            "/dev/zero",
            "--check",
        ],
        None,
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ticket key from /dev/zero"), "{stderr}");
    assert!(stderr.contains("4096 bytes"), "{stderr}");
}

#[test]
fn an_open_relay_and_a_keepalive_past_the_idle_timeout_are_refused() {
    let key = random_key();
    let dir = TempDir::new("inputs-checks");
    let open = dir.write("open.toml", "sdrtn = [\"0.0.0.0/0\"]\n");
    let (code, _, stderr) =
        serve_bounded(&["--config", open.to_str().unwrap(), "--check"], Some(&key));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("sdrtn: 0.0.0.0/0"), "{stderr}");
    assert!(stderr.contains("open relay"), "{stderr}");

    // Asked for in so many words: accepted, with a warning.
    let meant = dir.write(
        "meant.toml",
        "allow_open_relay = true\nsdrtn = [\"0.0.0.0/0\"]\n",
    );
    let (code, stdout, stderr) = serve_bounded(
        &["--config", meant.to_str().unwrap(), "--check"],
        Some(&key),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("configuration ok"), "{stdout}");
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(stderr.contains("allow_open_relay = true"), "{stderr}");

    let keepalive = dir.write(
        "keepalive.toml",
        "[relay]\nkeepalive_interval_ms = 30000\nidle_timeout_ms = 10000\n",
    );
    let (code, _, stderr) = serve_bounded(
        &["--config", keepalive.to_str().unwrap(), "--check"],
        Some(&key),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("relay.keepalive_interval_ms"), "{stderr}");
    assert!(
        stderr.contains("relay.idle_timeout_ms (10000 ms)"),
        "{stderr}"
    );
}

#[test]
fn a_ticket_key_file_others_can_read_is_warned_about() {
    let dir = TempDir::new("inputs-key");
    let key_file = dir.write("ticket.key", &format!("{}\n", random_key()));
    let config = dir.write("serve.toml", "[ap]\nlisten = [\"127.70.1.1\"]\n");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--ticket-key-file",
        key_file.to_str().unwrap(),
        "--check",
    ];
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, stderr) = serve_bounded(&args, None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("mode 0644"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, _, stderr) = serve_bounded(&args, None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("chmod 600"), "{stderr}");
}
