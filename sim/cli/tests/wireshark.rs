//! The Wireshark dissector of the repository (`tools/wireshark/cloudproxy.lua`) on captures
//! of the simulation, read by a real tshark: every frame kind of the protocol decodes with its
//! fields, and no frame is malformed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cloudproxy");

fn dissector() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/wireshark/cloudproxy.lua")
}

fn capture(dir: &Path, scenario: &str) -> PathBuf {
    let path = dir.join(format!("{scenario}.pcap"));
    let output = Command::new(BIN)
        .args(["run", scenario, "--pcap"])
        .arg(&path)
        .output()
        .expect("run cloudproxy");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    path
}

/// tshark with the dissector on `pcap`: `fields` of the frames matching `filter`.
fn tshark(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-X")
        .arg(format!("lua_script:{}", dissector().display()))
        .arg("-r")
        .arg(pcap)
        .args([
            "-Y",
            filter,
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-E",
            "occurrence=a",
        ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let output = cmd
        .output()
        .expect("tshark (apt-get install tshark; cargo xtask test installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("Lua"),
        "{stderr}"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// A field each kind of frame must carry, decoded.
const KINDS: [(&str, &str, &str); 11] = [
    ("0x01", "ApRequest", "cloudproxy.app_id"),
    ("0x02", "ApResponse", "cloudproxy.relay"),
    ("0x03", "Error", "cloudproxy.error.code"),
    ("0x10", "TunnelOpen", "cloudproxy.destination"),
    ("0x11", "TunnelAccept", "cloudproxy.udp_port"),
    ("0x12", "MediaChannelOpen", "cloudproxy.session_id"),
    ("0x13", "MediaChannelAccept", "cloudproxy.session_id"),
    ("0x20", "MediaData", "cloudproxy.peer"),
    ("0x21", "Keepalive", "cloudproxy.seq"),
    ("0x22", "KeepaliveAck", "cloudproxy.seq"),
    ("0x30", "Close", "cloudproxy.close.reason"),
];

#[test]
fn every_frame_kind_decodes_with_its_fields_and_none_is_malformed() {
    let dir = std::env::temp_dir().join(format!("cloudproxy-wireshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // UDP media, the TCP fallback with its media channels, and the attacker's refusals.
    let pcaps: Vec<PathBuf> = ["proxy-default", "udp-blocked", "open-relay-attack"]
        .iter()
        .map(|s| capture(&dir, s))
        .collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for pcap in &pcaps {
        let bad = tshark(
            pcap,
            "_ws.malformed || cloudproxy.bad || _ws.expert.severity == error",
            &["frame.number"],
        );
        assert!(
            bad.is_empty(),
            "{}: malformed frames {bad:?}",
            pcap.display()
        );
        for (code, name, field) in KINDS {
            let filter = format!("cloudproxy.type == {code}");
            let rows = tshark(pcap, &filter, &["cloudproxy.type", field, "_ws.col.Info"]);
            for row in &rows {
                assert!(!row[1].is_empty(), "{name} without {field}: {row:?}");
                assert!(row[2].contains(name), "{name}: {row:?}");
            }
            *seen.entry(name.to_owned()).or_default() += rows.len();
        }
        // Tunnelled signalling is shown as such.
        assert!(!tshark(pcap, "cloudproxy.raw_signalling", &["frame.number"]).is_empty());
    }
    let missing: BTreeSet<&str> = KINDS
        .iter()
        .map(|k| k.1)
        .filter(|n| seen.get(*n).copied().unwrap_or(0) == 0)
        .collect();
    assert!(
        missing.is_empty(),
        "kinds never seen: {missing:?} (seen {seen:?})"
    );
    // The details: an ApResponse decodes its ticket and relays.
    let output = Command::new("tshark")
        .arg("-X")
        .arg(format!("lua_script:{}", dissector().display()))
        .arg("-r")
        .arg(&pcaps[0])
        .args(["-Y", "cloudproxy.type == 0x02", "-c", "20", "-V"])
        .output()
        .unwrap();
    let detail = String::from_utf8_lossy(&output.stdout);
    for text in [
        "Cloud Proxy ApResponse",
        "Ticket version: 1",
        "Client IP: 10.",
        "App id: cloudproxy-sim",
        "Relay: 120.92.",
        "UDP port: 4",
    ] {
        assert!(detail.contains(text), "{text:?} not in:\n{detail}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
