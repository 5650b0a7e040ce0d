//! `cloudproxy engine` never prints an HTTP proxy's password (type 3, beyond the seed): the
//! configuration as set and the one in force print it as `"<redacted>"`, on stdout and stderr,
//! for a good call and a refused one.

use std::process::Command;

const SECRET: &str = "s3cret-Pa55";

#[test]
fn the_engine_prints_an_http_proxys_password_redacted() {
    let with_password = format!(
        r#"{{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128,"alice","{SECRET}"]}}"#
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cloudproxy"))
        // Set, join, then a set refused in the channel (-4) that names the password again.
        .args(["engine", &with_password, "join", &with_password])
        .output()
        .expect("run cloudproxy");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains(SECRET), "{stdout}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let expected = serde_json::json!([3, "proxy.corp", 3128, "alice", "<redacted>"]);
    assert_eq!(lines[0]["config"]["rtc.proxy_server"], expected);
    assert_eq!(lines[1]["in_force"]["rtc.proxy_server"], expected);
    assert_eq!(lines[2]["code"], -4);
    assert_eq!(out.status.code(), Some(1));
}
