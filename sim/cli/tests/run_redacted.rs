//! A proxy password planted in a scenario (the HTTP proxy's Basic credentials in a client's
//! `setParameters` text, accepted before the join and refused again in the channel) never
//! reaches the trace, the JSON output or the failure report: each prints `"<redacted>"`.

use std::path::Path;
use std::process::Command;

const SECRET: &str = "pl4nted-Pa55word";

#[test]
fn a_planted_proxy_password_is_absent_from_trace_json_and_report() {
    let dir = std::env::temp_dir().join(format!("cloudproxy-redacted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/http-proxy-auth.toml");
    let params = format!(
        r#"{{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128,"alice","{SECRET}"]}}"#
    );
    // The shipped world with the planted password; a refused call in the channel that names
    // it again; the configuration in force in a check's detail; and one check that fails (her
    // media is on TCP), so that the run writes its report.
    let text = std::fs::read_to_string(shipped)
        .unwrap()
        .replace("s3cret", SECRET)
        .replace(
            "\n[[enterprise.client]]\nname = \"carol\"",
            &format!("\n[[enterprise.client.script]]\nat_s = 5\nop = \"set\"\nparams = '{params}'\n\n[[enterprise.client]]\nname = \"carol\""),
        )
        + "\n[[check]]\nconfig_in_force = \"alice\"\ncontains = \"proxy.corp\"\n\n[[check]]\nmedia_path = \"alice\"\npath = \"udp\"\n";
    assert_eq!(text.matches(SECRET).count(), 3, "planted: {text}");
    let file = dir.join("planted.toml");
    std::fs::write(&file, &text).unwrap();
    let (trace, reports) = (dir.join("run.jsonl"), dir.join("reports"));
    let out = Command::new(env!("CARGO_BIN_EXE_cloudproxy"))
        .args(["run", "--json", "--scenario-file"])
        .arg(&file)
        .arg("--trace")
        .arg(&trace)
        .arg("--report-dir")
        .arg(&reports)
        .output()
        .expect("run cloudproxy");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "one check fails: {stdout}{stderr}"
    );
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let failed: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["alice media over Udp"], "{stdout}");
    let trace_text = std::fs::read_to_string(&trace).unwrap();
    let report = reports.join("http-proxy-auth-seed-1.html");
    let page = std::fs::read_to_string(&report).unwrap();
    let beside =
        std::fs::read_to_string(reports.join("http-proxy-auth-seed-1.trace.jsonl")).unwrap();
    for (what, shown) in [
        ("stdout (JSON)", stdout.as_ref()),
        ("stderr", stderr.as_ref()),
        ("--trace", trace_text.as_str()),
        ("the report page", page.as_str()),
        ("the report's trace", beside.as_str()),
    ] {
        assert!(!shown.contains(SECRET), "{what} holds the password");
    }
    // What was there instead: the calls, accepted and refused, redacted, in the trace; the
    // configuration in force in the check's detail; the parameters on the page.
    let sets: Vec<serde_json::Value> = trace_text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "set_parameters" && v["node"] == "alice")
        .collect();
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!(
        (sets[0]["code"].as_i64(), sets[1]["code"].as_i64()),
        (Some(0), Some(-4))
    );
    for set in &sets {
        assert!(
            set["text"]
                .as_str()
                .unwrap()
                .contains(r#""alice","<redacted>""#),
            "{set}"
        );
    }
    let in_force = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "the new config is in force after re-joining")
        .unwrap();
    assert!(
        in_force["detail"].as_str().unwrap().contains("<redacted>"),
        "{in_force}"
    );
    assert!(
        page.contains("&quot;alice&quot;,&quot;&lt;redacted&gt;&quot;"),
        "the parameters"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
