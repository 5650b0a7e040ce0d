//! `--junit FILE`: the runs as JUnit XML, so that CI systems (GitLab, Jenkins, GitHub test
//! reporters) show them natively. One `<testsuite>` per scenario, one `<testcase>` per
//! scenario and seed; a failed run's `<failure>` holds the checks that failed and the
//! reproduction line (in its `message` on one line, and in its text one per line).

use std::fmt::Write as _;
use std::path::Path;

use super::record::RunRecord;
use crate::markup::escape;

/// The test case's name: the scenario and the seed (and the swarm, when it ran).
pub fn case_name(record: &RunRecord) -> String {
    format!(
        "{} seed {}{}",
        record.scenario,
        record.options.seed,
        if record.options.swarm { " swarm" } else { "" }
    )
}

fn seconds(records: &[&RunRecord]) -> f64 {
    records.iter().map(|r| r.wall.as_secs_f64()).sum()
}

/// The JUnit XML document of `records` (suite `name`).
pub fn to_xml(name: &str, records: &[RunRecord]) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    for r in records {
        if !scenarios.contains(&r.scenario) {
            scenarios.push(r.scenario);
        }
    }
    let all: Vec<&RunRecord> = records.iter().collect();
    let failures = records.iter().filter(|r| !r.passed()).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
        escape(name),
        records.len(),
        seconds(&all)
    );
    for scenario in scenarios {
        let mine: Vec<&RunRecord> = records.iter().filter(|r| r.scenario == scenario).collect();
        let failed = mine.iter().filter(|r| !r.passed()).count();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\">",
            escape(scenario),
            mine.len(),
            seconds(&mine)
        );
        for r in mine {
            write_case(&mut xml, r);
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn write_case(xml: &mut String, r: &RunRecord) {
    let _ = write!(
        xml,
        "    <testcase classname=\"cloudproxy.{}\" name=\"{}\" time=\"{:.3}\">",
        escape(r.scenario),
        escape(&case_name(r)),
        r.wall.as_secs_f64()
    );
    if !r.passed() {
        let failed: Vec<String> = r
            .failed_checks()
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        let message = format!(
            "{} of {} checks failed: {}; reproduce: {}",
            failed.len(),
            r.checks.len(),
            failed.join("; "),
            r.reproduce
        );
        let mut body = String::new();
        for f in &failed {
            let _ = writeln!(body, "check failed: {f}");
        }
        for line in r.schedule() {
            let _ = writeln!(body, "fault: {line}");
        }
        let _ = write!(body, "reproduce: {}", r.reproduce);
        let _ = write!(
            xml,
            "\n      <failure type=\"check failed\" message=\"{}\">{}</failure>",
            escape(&message),
            escape(&body)
        );
    }
    let mut out = format!(
        "trace {} ({} lines); simulated {:.1} s; reproduce: {}",
        r.trace_hash,
        r.trace_lines,
        r.sim.as_secs_f64(),
        r.reproduce
    );
    if let Some(note) = r.trace_note() {
        out.push_str("; ");
        out.push_str(&note);
    }
    let _ = write!(
        xml,
        "\n      <system-out>{}</system-out>\n    </testcase>\n",
        escape(&out)
    );
}

/// Writes the document to `path`; the error names the file.
pub fn write(path: &Path, name: &str, records: &[RunRecord]) -> std::io::Result<()> {
    std::fs::write(path, to_xml(name, records))
        .map_err(|e| std::io::Error::new(e.kind(), format!("--junit {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_check_detail_is_escaped_in_the_failure_attribute_and_text() {
        let record = RunRecord {
            scenario: "bank",
            file: None,
            options: cloudproxy_sim::scenario::RunOptions::seed(7),
            checks: vec![cloudproxy_sim::scenario::Check {
                name: "joined".to_owned(),
                ok: false,
                detail: "a<b & \"c\" 'd'>\u{1}".to_owned(),
            }],
            swarm_kinds: Vec::new(),
            faults: Vec::new(),
            clients: std::collections::BTreeMap::new(),
            trace_hash: "00".to_owned(),
            trace_lines: 0,
            trace_dropped: 0,
            trace_cap: 1,
            sim: std::time::Duration::ZERO,
            wall: std::time::Duration::ZERO,
            reproduce: "cloudproxy run bank --seed 7".to_owned(),
        };
        let xml = to_xml("t", &[record]);
        let seen = "joined: a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;\u{FFFD}";
        assert!(
            xml.contains(&format!("message=\"1 of 1 checks failed: {seen}; reproduce: cloudproxy run bank --seed 7\">")),
            "{xml}"
        );
        assert!(xml.contains(&format!(">check failed: {seen}\n")), "{xml}");
    }
}
