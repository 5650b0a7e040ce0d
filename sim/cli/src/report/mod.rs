//! One-file failure reports: `run`/`sweep --report-dir DIR` write, for every failing run, a
//! self-contained HTML page (no script, style or font from elsewhere: it opens offline) with
//! the reproduction line, the parameters, the policies, the fault timeline, the failed checks
//! with what they saw, a sequence diagram of the key events (inline SVG, [`sequence`]), and
//! links to the trace and the pcap written beside it.

pub mod sequence;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use cloudproxy_node::nodes::client::Op;
use cloudproxy_sim::pcap::Capture;
use cloudproxy_sim::policy::{Policy, Proto};
use cloudproxy_sim::scenario::{RunResult, Scenario};
use cloudproxy_sim::world::WorldSpec;

use crate::markup::escape;

/// The files of one run's report in `dir`: the page, the trace, the pcap.
pub struct ReportFiles {
    /// The HTML page.
    pub html: PathBuf,
    /// The JSON-lines trace beside it.
    pub trace: PathBuf,
    /// The pcap beside it, when the run was captured.
    pub pcap: Option<PathBuf>,
}

/// Writes the report of `result` (a run of `scenario`) in `dir`, with the pcap of `capture`
/// when there is one; returns the files.
pub fn write(
    dir: &Path,
    scenario: &Scenario,
    result: &RunResult,
    capture: Option<&Capture>,
) -> io::Result<ReportFiles> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let stem = format!(
        "{}-seed-{}{}",
        result.name,
        result.seed,
        if result.options.swarm { "-swarm" } else { "" }
    );
    let trace = dir.join(format!("{stem}.trace.jsonl"));
    let mut text = String::new();
    for line in result.outcome.trace.lines() {
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(&trace, text)?;
    let pcap = match capture {
        Some(capture) => {
            let path = dir.join(format!("{stem}.pcap"));
            capture.save(&path)?;
            Some(path)
        }
        None => None,
    };
    let (spec, _) = scenario.spec(&result.options);
    let files = ReportFiles {
        html: dir.join(format!("{stem}.html")),
        trace,
        pcap,
    };
    std::fs::write(&files.html, page(&spec, result, &files))?;
    Ok(files)
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:78em;padding:0 1em;color:#123}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #cde}\
code,pre{font:12px ui-monospace,monospace;background:#f3f6f9;padding:.1em .3em}pre{padding:.6em;overflow-x:auto}\
table{border-collapse:collapse}td,th{border:1px solid #cde;padding:.2em .5em;text-align:left;vertical-align:top}\
.fail{color:#b00;font-weight:bold}.ok{color:#070}.diagram{overflow-x:auto;border:1px solid #cde;padding:.5em}";

/// The page.
fn page(spec: &WorldSpec, result: &RunResult, files: &ReportFiles) -> String {
    let mut h = String::new();
    let failed: Vec<_> = result.failed_checks().collect();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>FAIL {} seed {}</title><style>{STYLE}</style></head><body>\n",
        escape(result.name),
        result.seed
    );
    let _ = writeln!(
        h,
        "<h1><span class=\"fail\">FAIL</span> {} &middot; seed {}</h1>",
        escape(result.name),
        result.seed
    );
    let _ = writeln!(
        h,
        "<p>{} of {} checks failed. Reproduce:</p><pre id=\"reproduce\">{}</pre>",
        failed.len(),
        result.checks.len(),
        escape(&result.reproduce())
    );
    let link = |p: &Path| {
        let name = p
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        format!("<a href=\"{0}\">{0}</a>", escape(&name))
    };
    let pcap = files.pcap.as_deref().map_or(
        "not captured in a sweep: run the line above with <code>--pcap FILE</code>".to_owned(),
        link,
    );
    let _ = writeln!(h, "<p>Beside this file: the trace {} (JSON lines), the capture {pcap}. Trace hash <code>{}</code>.</p>", link(&files.trace), result.outcome.trace.hash());
    failed_checks(&mut h, result);
    let _ = writeln!(h, "<h2>Sequence of key events</h2>");
    let d = sequence::diagram(spec, &result.outcome.trace.lines());
    if d.rows.len() > sequence::MAX_ROWS {
        let _ = writeln!(
            h,
            "<p>The first {} of {} key events (the trace has them all).</p>",
            sequence::MAX_ROWS,
            d.rows.len()
        );
    }
    if d.clients_not_drawn > 0 {
        let _ = writeln!(
            h,
            "<p id=\"more-clients\">The first {} clients are drawn, {} more are not (the trace has their events).</p>",
            sequence::MAX_CLIENT_LANES,
            d.clients_not_drawn
        );
    }
    let _ = writeln!(
        h,
        "<div class=\"diagram\">{}</div>",
        sequence::svg(&d.rows, &d.lanes, d.clients_not_drawn)
    );
    faults(&mut h, result);
    parameters(&mut h, spec, result);
    policies(&mut h, spec);
    all_checks(&mut h, result);
    h.push_str("<script>\n// Marks the page once the diagram has laid out (the report test reads it).\ntry { const b = document.querySelector('svg.seq').getBBox(); document.body.dataset.diagram = (b.width > 0 && b.height > 0) ? 'rendered' : 'empty'; } catch (e) { document.body.dataset.diagram = 'error: ' + e; }\n</script>\n");
    h.push_str("</body></html>\n");
    h
}

fn failed_checks(h: &mut String, result: &RunResult) {
    let _ = writeln!(
        h,
        "<h2>Failed checks</h2><table><tr><th>check</th><th>what it saw</th></tr>"
    );
    for c in result.failed_checks() {
        let _ = writeln!(
            h,
            "<tr><td class=\"fail\">{}</td><td>{}</td></tr>",
            escape(&c.name),
            escape(&c.detail)
        );
    }
    h.push_str("</table>\n");
}

fn all_checks(h: &mut String, result: &RunResult) {
    let _ = writeln!(
        h,
        "<h2>Every check</h2><details><summary>{} checks</summary><table>",
        result.checks.len()
    );
    for c in &result.checks {
        let (class, word) = if c.ok { ("ok", "ok") } else { ("fail", "FAIL") };
        let _ = writeln!(
            h,
            "<tr><td class=\"{class}\">{word}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.name),
            escape(&c.detail)
        );
    }
    h.push_str("</table></details>\n");
}

fn faults(h: &mut String, result: &RunResult) {
    let o = &result.outcome;
    let _ = writeln!(h, "<h2>Fault timeline</h2>");
    if o.faults_applied.is_empty() && o.faults_without_effect.is_empty() {
        h.push_str("<p>No faults were scheduled.</p>\n");
        return;
    }
    let mut lines: Vec<(std::time::Duration, String, String)> = o
        .faults_applied
        .iter()
        .map(|(at, f)| (*at, f.to_string(), "applied".to_owned()))
        .chain(
            o.faults_without_effect
                .iter()
                .map(|(at, f, why)| (*at, f.to_string(), format!("did nothing: {why}"))),
        )
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    if !result.swarm_kinds.is_empty() {
        let kinds: Vec<String> = result
            .swarm_kinds
            .iter()
            .map(|k| format!("{k:?}"))
            .collect();
        let _ = writeln!(
            h,
            "<p>Swarm fault kinds: {}.</p>",
            escape(&kinds.join(", "))
        );
    }
    h.push_str("<table><tr><th>at</th><th>fault</th><th>effect</th></tr>\n");
    for (at, fault, effect) in lines {
        let _ = writeln!(
            h,
            "<tr><td>{:.3} s</td><td>{}</td><td>{}</td></tr>",
            at.as_secs_f64(),
            escape(&fault),
            escape(&effect)
        );
    }
    h.push_str("</table>\n");
}

fn parameters(h: &mut String, spec: &WorldSpec, result: &RunResult) {
    let _ = writeln!(h, "<h2>Parameters</h2><table><tr><th>seed</th><td>{}</td></tr><tr><th>swarm</th><td>{}</td></tr><tr><th>policy file</th><td>{}</td></tr><tr><th>duration</th><td>{} s</td></tr><tr><th>ticket lifetime</th><td>{} s</td></tr></table>",
        result.seed,
        result.options.swarm,
        result.options.policy.as_ref().map_or("(the scenario's own)".to_owned(), |p| escape(&p.path.display().to_string())),
        spec.duration.as_secs_f64(),
        spec.ticket_lifetime.as_secs_f64());
    let clients: Vec<_> = spec
        .enterprises
        .iter()
        .flat_map(|e| e.clients.iter().map(move |c| (e, c)))
        .collect();
    let _ = writeln!(h, "<h3>Clients ({})</h3><table><tr><th>client</th><th>enterprise</th><th>channel</th><th>script (setParameters, join, leave)</th></tr>", clients.len());
    for (e, c) in clients.iter().take(20) {
        let script: Vec<String> = c
            .script
            .iter()
            .map(|(at, op)| {
                let op = match op {
                    Op::Set(text) => format!(
                        "setParameters({})",
                        cloudproxy_core::params::redact_text(text)
                    ),
                    Op::Join => "joinChannel".to_owned(),
                    Op::Leave => "leaveChannel".to_owned(),
                    Op::SetCloudProxy(kind) => format!("setCloudProxy({})", kind.as_i32()),
                };
                format!("{:.3} s {op}", at.as_secs_f64())
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{} ({})</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&c.name),
            escape(&e.name),
            e.clients_ip,
            escape(&c.channel),
            escape(&script.join("\n")).replace('\n', "<br>")
        );
    }
    if clients.len() > 20 {
        let _ = writeln!(
            h,
            "<tr><td colspan=\"4\">and {} more</td></tr>",
            clients.len() - 20
        );
    }
    h.push_str("</table>\n");
}

fn policies(h: &mut String, spec: &WorldSpec) {
    let _ = writeln!(h, "<h2>Policies</h2>");
    for e in &spec.enterprises {
        let _ = writeln!(
            h,
            "<h3>{} ({})</h3>{}",
            escape(&e.name),
            e.clients_ip,
            policy_table(&e.policy)
        );
    }
}

fn policy_table(policy: &Policy) -> String {
    let mut h = format!("<p>default <code>{:?}</code>, resolver <code>{:?}</code></p><table><tr><th>proto</th><th>to</th><th>ports</th></tr>", policy.default, policy.dns);
    for r in &policy.rules {
        let proto = if r.proto == Proto::Tcp { "tcp" } else { "udp" };
        let to: Vec<String> = r.to.iter().map(ToString::to_string).collect();
        let ports: Vec<String> = r
            .ports
            .iter()
            .map(|p| {
                if p.start() == p.end() {
                    p.start().to_string()
                } else {
                    format!("{}-{}", p.start(), p.end())
                }
            })
            .collect();
        let _ = write!(
            h,
            "<tr><td>{proto}</td><td>{}</td><td>{}</td></tr>",
            escape(&to.join(", ")),
            escape(&ports.join(", "))
        );
    }
    h.push_str("</table>\n");
    h
}
