//! The firewall policy in the administrator's own formats: compiled to an `nft -f` ruleset and
//! to `iptables-restore` input, and imported back from `nft -j list ruleset` and
//! `iptables-save` output.
//!
//! One policy, one meaning ([`crate::policy`], applied by `sim/world/src/net/firewall.rs`):
//!
//! - **default**: `drop` denies silently; `reject` refuses TCP at once (`tcp reset`) while UDP
//!   still vanishes (the simulation's reject), so the compiled reject is `reject with tcp
//!   reset` for TCP, `drop` for UDP, and `reject with icmpx type admin-prohibited` for any other
//!   protocol; `pass` accepts everything.
//! - **replies** pass: `ct state established,related accept`.
//! - **loopback** passes (the output chain only: forwarded traffic never uses `lo`).
//! - **the DNS rule**: `dns = "blocked"` means the enterprise resolver refuses external names; on
//!   a real network the firewall must also stop clients from asking any other resolver, so it
//!   compiles to a deny of TCP and UDP port 53 ahead of the allow rules. `dns = "public"` adds no
//!   rule: port 53 is open only where an allow rule opens it, exactly as in the simulation.
//!   This is the one place the compiled firewall is stricter than [`Policy::verdict`](crate::policy::Policy::verdict): with
//!   `dns = "blocked"`, an allow rule covering port 53 does not open it (the simulation sends no
//!   packet to port 53: its resolver answers out of band).
//! - **one rule per allow rule**, in order, each with a `counter` and a comment
//!   `cloudproxy rule N: <the rule>` so that per-rule packet counts can be read back and
//!   compared with the simulation's, and the importer can group a rule split over address
//!   families (or over `iptables` lines) back into one.
//!
//! Importing reads the subset real policies use (see [`import`] for the rules) and refuses
//! anything else with an error naming the rule, never a silent skip that changes the meaning.
//! Rules for other protocols than TCP and UDP (ICMP, say) cannot change a TCP or UDP verdict:
//! they are left out with a note.
//!
//! Round trip: importing a compiled policy gives back its [`canonical`] form, the same policy
//! with each rule's ports and addresses sorted and merged (what `nft` itself does with sets).

mod canon;
pub mod import;
pub mod iptables;
mod iptables_import;
pub mod nft;
mod nft_import;
mod nft_text;
pub mod render;

#[cfg(test)]
mod gateway_tests;
#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Read;
use std::path::Path;

pub use canon::canonical;
pub use import::{ImportError, ImportOptions, Imported, Source};
pub use iptables::{compile_iptables, IptablesRuleset};
pub use iptables_import::{from_iptables, import_iptables};
pub use nft::compile_nft;
pub use nft_import::{from_nft, import_nft, nft_counters};

use crate::policy::Rule;

/// The largest firewall export the importers read: 4 MiB (a ruleset of tens of thousands of
/// rules; real exports are kilobytes).
pub const MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;

/// nftables keeps at most 128 bytes of a rule's comment; iptables 256. Ours fit both.
pub const MAX_COMMENT_BYTES: usize = 128;

/// The netfilter hook the compiled chain sits on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hook {
    /// The enterprise's own hosts: what they send (`output`, iptables `OUTPUT`).
    #[default]
    Output,
    /// A gateway in front of them: what it forwards (`forward`, iptables `FORWARD`).
    Forward,
}

impl Hook {
    /// `"output"` or `"forward"`, as nftables names the hook.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Output => "output",
            Hook::Forward => "forward",
        }
    }

    /// `"OUTPUT"` or `"FORWARD"`, as iptables names the built-in chain.
    pub fn iptables_chain(self) -> &'static str {
        match self {
            Hook::Output => "OUTPUT",
            Hook::Forward => "FORWARD",
        }
    }
}

impl std::str::FromStr for Hook {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "output" => Ok(Hook::Output),
            "forward" => Ok(Hook::Forward),
            other => Err(format!("`{other}`: expected output or forward")),
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to compile a policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// The policy's name, for the table (`cloudproxy_<name>`) and the iptables chain
    /// (`cloudproxy-<name>`); anything but letters, digits and `_` becomes `_`.
    pub name: String,
    /// Output chain (the hosts themselves) or forward chain (a gateway).
    pub hook: Hook,
    /// A gateway's interface to the outside (forward chain only): new traffic that enters
    /// from it is dropped (`iifname "wan" counter drop`, after the replies rule), so that only
    /// replies to allowed flows come in, as the simulation's firewall drops unsolicited inbound
    /// datagrams. Without it, an allow rule to a block that holds the enterprise's own hosts
    /// (`0.0.0.0/0`, say) would also let strangers in. Not used with `default = "pass"`.
    pub outside: Option<String>,
}

impl CompileOptions {
    /// Options for the policy called `name` on `hook`.
    pub fn new(name: &str, hook: Hook) -> CompileOptions {
        CompileOptions {
            name: name.to_owned(),
            hook,
            outside: None,
        }
    }

    /// The same options for a gateway whose interface to the outside is `interface` (see
    /// [`CompileOptions::outside`]): 1 to 15 bytes of letters, digits, `-`, `_` and `.`, as
    /// Linux names interfaces; the error names the interface otherwise.
    pub fn with_outside(mut self, interface: &str) -> Result<CompileOptions, String> {
        let valid = (1..=15).contains(&interface.len())
            && interface
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Err(format!(
                "interface {interface:?}: 1 to 15 letters, digits, '-', '_' or '.'"
            ));
        }
        self.outside = Some(interface.to_owned());
        Ok(self)
    }

    /// The interface whose new inbound traffic the compiled chain drops, if any.
    pub(crate) fn inbound_guard(&self, default: crate::policy::Verdict) -> Option<&str> {
        match (self.hook, default) {
            (Hook::Forward, crate::policy::Verdict::Drop | crate::policy::Verdict::Reject) => {
                self.outside.as_deref()
            }
            _ => None,
        }
    }

    /// The name, made safe for nft and iptables identifiers (at most `max` bytes, never
    /// empty).
    fn ident(&self, max: usize) -> String {
        let mut ident: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(max)
            .collect();
        if ident.is_empty() {
            ident.push_str("policy");
        }
        ident
    }

    /// The nftables table name: `cloudproxy_<name>`.
    pub fn nft_table(&self) -> String {
        format!("cloudproxy_{}", self.ident(48))
    }

    /// The iptables chain of our own: `cloudproxy-<name>` (iptables allows 28 bytes).
    pub fn iptables_chain(&self) -> String {
        format!("cloudproxy-{}", self.ident(17))
    }
}

/// The comment every compiled rule of allow rule `index` (0-based) carries:
/// `cloudproxy rule N: tcp to A, B ports P, Q` (1-based, cut to [`MAX_COMMENT_BYTES`]).
pub fn rule_comment(index: usize, rule: &Rule) -> String {
    let to: Vec<String> = rule.to.iter().map(canon::block_text).collect();
    let ports: Vec<String> = rule.ports.iter().map(canon::range_text).collect();
    let text = format!(
        "{RULE_TAG}{}: {} to {} ports {}",
        index + 1,
        rule.proto,
        to.join(", "),
        ports.join(", ")
    );
    cut(text, MAX_COMMENT_BYTES)
}

/// The prefix of [`rule_comment`].
const RULE_TAG: &str = "cloudproxy rule ";

/// The comment of the inbound guard ([`CompileOptions::outside`]).
pub fn inbound_comment(interface: &str) -> String {
    cut(format!("{INBOUND_TAG}{interface}"), MAX_COMMENT_BYTES)
}

const INBOUND_TAG: &str = "cloudproxy inbound: only replies enter from ";

/// The part of a compiled policy a rule's comment names (see [`rule_part`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RulePart {
    /// Allow rule N - 1 of the policy (`cloudproxy rule N: ...`).
    Allow(usize),
    /// A rule an administrator was told to add (`cloudproxy suggested rule N: ...`), 0-based.
    Suggested(usize),
    /// The DNS rule (`dns = "blocked"`).
    DnsBlocked,
    /// The default (drop, reject or pass, any of its statements).
    Default,
    /// The inbound guard of a gateway ([`CompileOptions::outside`]).
    Inbound,
    /// Loopback or replies: the stateful frame.
    Frame,
}

/// Which part of a compiled policy a rule's comment names; `None` for comments that are not
/// ours.
pub fn rule_part(comment: &str) -> Option<RulePart> {
    if let Some(index) = rule_index(comment) {
        return Some(if index >= SUGGESTED_TAGS {
            RulePart::Suggested(index - SUGGESTED_TAGS)
        } else {
            RulePart::Allow(index)
        });
    }
    if comment.starts_with("cloudproxy default ") {
        Some(RulePart::Default)
    } else if comment.starts_with("cloudproxy dns blocked") {
        Some(RulePart::DnsBlocked)
    } else if comment.starts_with(INBOUND_TAG) {
        Some(RulePart::Inbound)
    } else if comment == "cloudproxy loopback" || comment == "cloudproxy replies" {
        Some(RulePart::Frame)
    } else {
        None
    }
}

/// The allow rule a comment names: `Some(N - 1)` for `cloudproxy rule N: ...`.
/// Suggested rules (`cloudproxy suggested rule N: ...`) count from [`SUGGESTED_TAGS`].
pub(crate) fn rule_index(comment: &str) -> Option<usize> {
    if let Some(rest) = comment.strip_prefix(SUGGESTED_TAG) {
        return tag_number(rest).map(|n| SUGGESTED_TAGS + n);
    }
    tag_number(comment.strip_prefix(RULE_TAG)?)
}

/// The prefix of a suggested rule's comment.
pub(crate) const SUGGESTED_TAG: &str = "cloudproxy suggested rule ";

/// Where the tags of suggested rules start (after any policy's own rules).
const SUGGESTED_TAGS: usize = usize::MAX / 2;

/// `N - 1` from `N: ...`.
fn tag_number(rest: &str) -> Option<usize> {
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if !rest[digits.len()..].starts_with(':') {
        return None;
    }
    digits.parse::<usize>().ok()?.checked_sub(1)
}

/// `text` cut to at most `max` bytes, ending in `...` when cut.
fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("...");
    text
}

/// Reads a firewall export, refusing files over [`MAX_IMPORT_BYTES`] (also endless ones such as
/// `/dev/zero`) with an error naming the file and the limit.
pub fn read_bounded(path: &Path) -> Result<String, ImportError> {
    read_limited(path, MAX_IMPORT_BYTES)
}

/// [`read_bounded`] with a limit of `limit` bytes.
pub fn read_limited(path: &Path, limit: usize) -> Result<String, ImportError> {
    let file = path.display().to_string();
    let io = |e: std::io::Error| ImportError::Read {
        file: file.clone(),
        error: e.to_string(),
    };
    let handle = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    handle
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > limit {
        return Err(ImportError::TooLarge {
            what: file,
            limit_bytes: limit,
        });
    }
    String::from_utf8(bytes).map_err(|e| ImportError::Read {
        file,
        error: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })
}

/// Refuses text over [`MAX_IMPORT_BYTES`].
fn check_size(text: &str) -> Result<(), ImportError> {
    if text.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge {
            what: "the input".to_owned(),
            limit_bytes: MAX_IMPORT_BYTES,
        });
    }
    Ok(())
}
