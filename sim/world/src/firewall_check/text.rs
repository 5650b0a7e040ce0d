//! The report for a person: the verdict line by line (`key        value`), then the summary,
//! then the suggested rules in the format asked for, last, ready to paste or load.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::report::{CheckReport, PathOutcome, Verification};
use super::{Media, CHECK_DURATION};
use crate::policy::{Proto, Rule};
use crate::policy_formats::render::{Format, Target};

impl CheckReport {
    /// The report for a person: the verdict line by line, then the summary, then the suggested
    /// rules in `format` for `target`.
    pub fn to_text(&self, policy_name: &str, format: Format, target: &Target) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "check-firewall: {policy_name}, seed {}", self.seed);
        for p in &self.params {
            let _ = writeln!(t, "  setParameters {p}");
        }
        let _ = writeln!(t);
        self.verdict_lines(&mut t);
        let _ = writeln!(t);
        if self.suggested_count() == 0 {
            let _ = writeln!(t, "{}", self.summary);
            return t;
        }
        let header = self.missing_header();
        let how = match format {
            Format::Toml => "Add them to the policy",
            Format::Nft => "Load them with nft -f FILE",
            Format::Iptables => "Load them with iptables-restore --noflush < FILE (the IPv6 part with ip6tables-restore)",
        };
        let _ = writeln!(
            t,
            "{} {how}:\n",
            header.trim_end_matches('.').to_owned() + "."
        );
        t.push_str(&self.rules_text(format, target));
        t
    }

    /// Every line of the verdict, `key        value`.
    fn verdict_lines(&self, t: &mut String) {
        let mut line = |key: &str, value: &str| {
            let _ = writeln!(t, "{key:<11} {value}");
        };
        line("joined", &self.joined_text());
        line("signalling", &self.signalling());
        line("media", &self.media_text());
        line("best path", &self.best_text());
        line("resilient", &self.resilience_text());
        line("denied", &denied_text(&self.denied));
        line("explored", &self.explored_text());
        for (i, path) in self.paths.iter().enumerate() {
            line(&format!("path {}", i + 1), &path_text(path));
        }
        for port in &self.runtime_ports {
            line("runtime", &port.text);
        }
        if !self.dns_stated {
            line("dns", "the policy does not say how the enterprise resolver answers external names (a firewall export cannot): both answers explored; say it with --dns public|blocked");
        }
        for text in self.verified_texts() {
            line("verified", &text);
        }
        for note in &self.notes {
            line("note", note);
        }
        let mut alt = self.alternative.as_deref();
        while let Some(a) = alt {
            line("instead", &a.text());
            alt = a.report.alternative.as_deref();
        }
        if let Some(evidence) = &self.evidence {
            line("evidence", &evidence.description);
        }
    }

    fn joined_text(&self) -> String {
        let n = self.paths.len();
        let joined: Vec<&PathOutcome> = self.paths.iter().filter(|p| p.behind.joined).collect();
        let times: Vec<u64> = joined.iter().filter_map(|p| p.behind.join_ms).collect();
        let range = match (times.iter().min(), times.iter().max()) {
            (Some(a), Some(b)) if a == b => format!("{a} ms"),
            (Some(a), Some(b)) => format!("{a}-{b} ms"),
            _ => String::new(),
        };
        let failed = self.paths.iter().find(|p| !p.behind.joined);
        match (joined.len(), failed) {
            (_, None) if n == 1 => format!("yes, in {range}"),
            (_, None) => format!("yes, on every path explored ({n}), in {range}"),
            (0, Some(f)) => format!(
                "no, within {} s: {}",
                CHECK_DURATION.as_secs(),
                f.behind.reason
            ),
            (k, Some(f)) => format!(
                "on {k} of {n} paths only, in {range}; not when {}: {}",
                f.label, f.behind.reason
            ),
        }
    }

    fn media_text(&self) -> String {
        let medias: Vec<Media> = self.paths.iter().map(|p| p.behind.media).collect();
        let first = medias.first().copied().unwrap_or(Media::None);
        if medias.iter().all(|m| *m == Media::None) {
            "none".to_owned()
        } else if medias.len() == 1 {
            let b = &self.paths[0].behind;
            format!(
                "{} (both ways: {} packets received, {} delivered)",
                first.as_str(),
                b.media_received,
                b.media_delivered
            )
        } else if medias.iter().all(|m| *m == first) {
            format!("{} on every path (both ways)", first.as_str())
        } else {
            format!(
                "{} at worst: it depends on the path (see each path below)",
                self.media().as_str()
            )
        }
    }

    fn best_text(&self) -> String {
        let with_best: Vec<&PathOutcome> = self.paths.iter().filter(|p| p.best.joined).collect();
        let Some(first) = with_best.first() else {
            let reason = self.paths.first().map_or("", |p| p.best.reason.as_str());
            return format!("none: nothing joins even with no firewall ({reason})");
        };
        let via = match self.route.as_str() {
            "socks5" => "the SOCKS5 server",
            "direct" => "SD-RTN directly",
            _ => "a cloud relay",
        };
        let misses = with_best.iter().filter(|p| !p.takes_best).count();
        let taken = match misses {
            0 if self.paths.len() == 1 => "taken behind this policy".to_owned(),
            0 if with_best.len() == self.paths.len() => "taken on every path".to_owned(),
            0 => "taken on every path that has one".to_owned(),
            k if with_best.len() == self.paths.len() => {
                format!("not taken on {k} of {} path(s)", self.paths.len())
            }
            k => format!(
                "not taken on {k} of the {} path(s) that have one",
                with_best.len()
            ),
        };
        let none: Vec<&str> = self
            .paths
            .iter()
            .filter(|p| !p.best.joined)
            .map(|p| p.label.as_str())
            .collect();
        let none = if none.is_empty() {
            String::new()
        } else {
            format!("; no path at all when {}", none.join(", "))
        };
        format!(
            "{} media via {via} (found with no firewall): {taken}{none}",
            first.best.media.as_str()
        )
    }

    fn resilience_text(&self) -> String {
        let r = &self.resilience;
        let mut text = r.text.clone();
        let more = !self.resilience_missing.is_empty();
        match (r.after_missing, more) {
            (Some(true), _) => text.push_str(
                "; with the rules for the best path below, the call survives the loss of any one access point or relay",
            ),
            (Some(false), true) => text.push_str(
                "; the rules below (for the best path, then for resilience) make it resilient",
            ),
            (None, true) => text.push_str("; the rules for resilience below make it resilient"),
            _ => {}
        }
        text
    }

    fn explored_text(&self) -> String {
        let relays = self.paths.iter().any(|p| p.case.relay_first.is_some());
        let mut how = Vec::new();
        if relays {
            how.push("each relay handed first");
        }
        if !self.dns_stated {
            how.push("both resolver answers");
        }
        if relays || self.route == "socks5" {
            how.push("ports chosen at run time pinned to their worst case");
        }
        let how = if how.is_empty() {
            String::new()
        } else {
            format!(" ({})", how.join(", "))
        };
        let runs = match (self.runs, &self.alternative) {
            (0, _) => String::new(),
            (n, Some(_)) => format!(", {n} simulation run(s), the alternatives' included"),
            (n, None) => format!(", {n} simulation run(s)"),
        };
        format!("{} path(s){how}{runs}", self.paths.len())
    }

    fn verified_texts(&self) -> Vec<String> {
        let mut texts = Vec::new();
        let mut add = |rules: &[Rule], v: &Option<Verification>, what: &str, holds: &str| {
            let Some(v) = v.filter(|_| !rules.is_empty()) else {
                return;
            };
            let without = if rules.len() == 1 {
                "without it"
            } else {
                "without any one of them"
            };
            texts.push(match (v.verified, v.minimal) {
                (true, true) => format!(
                    "with the {} rule(s) {what} added, {holds} ({} runs); {without}, it does not",
                    rules.len(),
                    v.runs
                ),
                (true, false) => format!(
                    "with the {} rule(s) {what} added, {holds} ({} runs); not made minimal (the bound on runs was reached)",
                    rules.len(),
                    v.runs
                ),
                (false, _) => format!(
                    "NOT verified: with the {} rule(s) {what} added, it still does not hold that {holds}; they are a best guess",
                    rules.len()
                ),
            });
        };
        add(
            &self.missing,
            &self.missing_verified,
            "for the best path",
            "every path takes its best path",
        );
        add(
            &self.resilience_missing,
            &self.resilience_verified,
            "for resilience",
            "the call survives the loss of each relay in use and of the first access point",
        );
        texts
    }
}

fn path_text(p: &PathOutcome) -> String {
    let b = &p.behind;
    let got = match b.join_ms {
        Some(ms) => format!(
            "joined in {ms} ms via {}, {} media ({} received, {} delivered)",
            b.signalling,
            b.media.as_str(),
            b.media_received,
            b.media_delivered
        ),
        None => format!(
            "not joined within {} s: {}",
            CHECK_DURATION.as_secs(),
            b.reason
        ),
    };
    let best = match (&p.best, p.takes_best) {
        (_, true) => String::new(),
        (best, false) if best.joined => format!(
            "; best path: {} media in {} ms",
            best.media.as_str(),
            best.join_ms.unwrap_or(0)
        ),
        (best, false) if best.reason == b.reason => {
            "; nothing joins even with no firewall".to_owned()
        }
        (best, false) => format!("; nothing joins even with no firewall ({})", best.reason),
    };
    format!("{}: {got}{best}", p.label)
}

fn denied_text(denied: &[(Proto, SocketAddr)]) -> String {
    if denied.is_empty() {
        return "nothing".to_owned();
    }
    let shown: Vec<String> = denied
        .iter()
        .take(6)
        .map(|(p, a)| format!("{p} {a}"))
        .collect();
    let more = denied.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{}, and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
