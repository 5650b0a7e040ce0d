//! Writing a world as a scenario file (the schema of [`super::file`]), so that a world built
//! in Rust, or shrunk by [`super::shrink`], can be read back as the same world: policies
//! inline, hosts as addresses, times to the millisecond.

use std::fmt::Write as _;
use std::time::Duration;

use cloudproxy_core::client::{ClientConfig, MediaPath};

use super::vocabulary::CheckDef;
use crate::policy::{DnsPolicy, Policy, Proto, Verdict};
use crate::world::{Fault, HttpProxySpec, WorldSpec};
use cloudproxy_node::nodes::client::{ClientSpec, Op};

/// A world that a scenario file cannot say.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The world uses a setting the file schema has no field for.
    #[error("a scenario file cannot say {0}")]
    Unsupported(String),
}

/// A TOML string (basic, escaped).
fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Seconds to the millisecond, as the file reads them.
fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

/// `spec` (its seed aside: a file's world takes the seed of the run) as a scenario file named
/// `name`, proving `proves`, with `checks`.
pub fn to_toml(
    spec: &WorldSpec,
    name: &str,
    proves: &str,
    checks: &[CheckDef],
) -> Result<String, WriteError> {
    let unsupported = |what: &str| Err(WriteError::Unsupported(what.to_owned()));
    if spec.canary_planted() {
        return unsupported("the canary relay");
    }
    if spec.relay_order.is_some() || !spec.relay_udp_ports.is_empty() {
        return unsupported("a relay order or relay UDP ports (check-firewall's settings)");
    }
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "name = {}", quote(name));
    let _ = writeln!(w, "proves = {}", quote(proves));
    let _ = writeln!(w, "duration_s = {}", secs(spec.duration));
    let _ = writeln!(w, "ticket_lifetime_s = {}", secs(spec.ticket_lifetime));
    if let Some(heal) = spec.heal_at {
        let _ = writeln!(w, "heal_at_s = {}", secs(heal));
    }
    if spec.attacker {
        let _ = writeln!(w, "attacker = true");
    }
    if !spec.never_join.is_empty() {
        let names: Vec<String> = spec.never_join.iter().map(|n| quote(n)).collect();
        let _ = writeln!(w, "never_join = [{}]", names.join(", "));
    }
    for e in &spec.enterprises {
        let _ = writeln!(
            w,
            "\n[[enterprise]]\nname = {}\nhost = {}",
            quote(&e.name),
            quote(&e.clients_ip.to_string())
        );
        match super::file::PRESETS
            .iter()
            .find(|p| super::file::preset(p).as_ref() == Some(&e.policy))
        {
            Some(name) => writeln!(w, "policy = \"{name}\""),
            None => writeln!(w, "policy = {}", policy_table(&e.policy)),
        }
        .unwrap_or(());
        if let Some(p) = &e.http_proxy {
            http_proxy(w, p);
        }
        if let Some(s) = &e.socks {
            let p = &s.policy;
            if !p.allow_no_auth || p.credentials.is_some() || !p.connect || p.bind {
                return unsupported("a SOCKS5 server with authentication, BIND or without CONNECT");
            }
            let _ = writeln!(
                w,
                "\n[enterprise.socks]\nip = {}\nport = {}\nudp_associate = {}",
                quote(&s.ip.to_string()),
                s.port,
                p.udp_associate
            );
            if let Some(r) = &s.udp_ports {
                let _ = writeln!(w, "udp_ports = \"{}-{}\"", r.start(), r.end());
            }
        }
        for c in &e.clients {
            client(w, c)?;
        }
    }
    for (at, fault) in &spec.faults {
        let _ = writeln!(
            w,
            "\n[[fault]]\nat_s = {}\n{}",
            secs(*at),
            fault_line(fault)?
        );
    }
    for check in checks {
        let _ = writeln!(w, "\n[[check]]\n{}", check_lines(check));
    }
    Ok(out)
}

fn policy_table(policy: &Policy) -> String {
    let default = match policy.default {
        Verdict::Pass => "pass",
        Verdict::Drop => "drop",
        Verdict::Reject => "reject",
    };
    let dns = match policy.dns {
        DnsPolicy::Public => "public",
        DnsPolicy::Blocked => "blocked",
    };
    let rules: Vec<String> = policy
        .rules
        .iter()
        .map(|r| {
            let proto = match r.proto {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
            };
            let to: Vec<String> = r.to.iter().map(|c| quote(&c.to_string())).collect();
            let ports: Vec<String> = r
                .ports
                .iter()
                .map(|p| format!("\"{}-{}\"", p.start(), p.end()))
                .collect();
            format!(
                "{{ proto = \"{proto}\", to = [{}], ports = [{}] }}",
                to.join(", "),
                ports.join(", ")
            )
        })
        .collect();
    format!(
        "{{ default = \"{default}\", dns = \"{dns}\", allow = [{}] }}",
        rules.join(", ")
    )
}

/// `[enterprise.http_proxy]`. The password is written as it is: the file is the world's
/// definition (reports and traces print it redacted).
fn http_proxy(w: &mut String, p: &HttpProxySpec) {
    let _ = writeln!(
        w,
        "\n[enterprise.http_proxy]\nip = {}\nport = {}",
        quote(&p.ip.to_string()),
        p.port
    );
    if let Some(name) = &p.name {
        let _ = writeln!(w, "name = {}", quote(name));
    }
    if let Some(c) = &p.credentials {
        let _ = writeln!(
            w,
            "user = {}\npassword = {}",
            quote(c.user()),
            quote(c.password())
        );
    }
}

fn client(w: &mut String, c: &ClientSpec) -> Result<(), WriteError> {
    let unsupported = |what: String| Err(WriteError::Unsupported(what));
    if c.app_id != "cloudproxy-sim"
        || c.talk_until.is_some()
        || c.socks5_credentials.is_some()
        || c.seed != u64::from(c.uid)
    {
        return unsupported(format!(
            "client {}: an app id, talk time, SOCKS5 credentials or seed of its own",
            c.name
        ));
    }
    // ClientSpec::new's shape: the parameters, then a join, at the start; then the script.
    let join = c.script.iter().position(|(_, op)| *op == Op::Join);
    let Some(join) = join else {
        return unsupported(format!("client {}: a script without a join", c.name));
    };
    let start = c.script[join].0;
    let mut params = Vec::new();
    let mut cloud = None;
    for (at, op) in &c.script[..join] {
        match op {
            Op::Set(text) if *at == start && cloud.is_none() => params.push(quote(text)),
            // The file's `cloud_proxy`: setCloudProxy after the parameters, before the join.
            Op::SetCloudProxy(kind) if *at == start && cloud.is_none() => cloud = Some(*kind),
            _ => {
                return unsupported(format!(
                    "client {}: a script that does not start with its parameters and a join",
                    c.name
                ))
            }
        }
    }
    let _ = writeln!(
        w,
        "\n[[enterprise.client]]\nname = {}\nuid = {}\nchannel = {}",
        quote(&c.name),
        c.uid,
        quote(&c.channel)
    );
    let _ = writeln!(
        w,
        "params = [{}]\njoin_s = {}",
        params.join(", "),
        secs(start)
    );
    let _ = writeln!(
        w,
        "media_pps = {}\nsignalling_every_s = {}",
        c.media_pps,
        secs(c.signalling_every)
    );
    if c.compat {
        let _ = writeln!(w, "compat = true");
    }
    if let Some(kind) = cloud {
        let _ = writeln!(w, "cloud_proxy = \"{}\"", kind.name());
    }
    let (mut tuned, default) = (ClientConfig::default(), ClientConfig::default());
    (c.tune)(&mut tuned);
    if tuned.give_up_after != default.give_up_after {
        let _ = writeln!(w, "give_up_after_s = {}", tuned.give_up_after.as_secs());
    }
    for (at, op) in &c.script[join + 1..] {
        let _ = write!(w, "\n[[enterprise.client.script]]\nat_s = {}\n", secs(*at));
        let _ = match op {
            Op::Set(text) => writeln!(w, "op = \"set\"\nparams = {}", quote(text)),
            Op::Join => writeln!(w, "op = \"join\""),
            Op::Leave => writeln!(w, "op = \"leave\""),
            Op::SetCloudProxy(kind) => writeln!(
                w,
                "op = \"set_cloud_proxy\"\ncloud_proxy = \"{}\"",
                kind.name()
            ),
        };
    }
    Ok(())
}

fn fault_line(fault: &Fault) -> Result<String, WriteError> {
    let pair =
        |k: &str, a: &std::net::IpAddr, b: &std::net::IpAddr| format!("{k} = [\"{a}\", \"{b}\"]");
    Ok(match fault {
        Fault::Crash(h) => format!("crash = \"{h}\""),
        Fault::Restart(h) => format!("restart = \"{h}\""),
        Fault::CrashRelayOf(n) => format!("crash_relay_of = {}", quote(n)),
        Fault::Partition(a, b) => pair("partition", a, b),
        Fault::PartitionOneway(a, b) => pair("partition_oneway", a, b),
        Fault::Repair(a, b) => pair("repair", a, b),
        Fault::Hold(a, b) => pair("hold", a, b),
        Fault::Release(a, b) => pair("release", a, b),
        Fault::Latency(a, b, d) => {
            format!("{}\nlatency_ms = {}", pair("latency", a, b), d.as_millis())
        }
        Fault::DnsOutage(on) => format!("dns_outage = {on}"),
        Fault::NatRebind(e) => format!("nat_rebind = {}", quote(e)),
        Fault::VpnBlocksUdp(e, true) => format!("vpn_blocks_udp = {}", quote(e)),
        Fault::VpnBlocksUdp(e, false) => format!("vpn_down = {}", quote(e)),
        Fault::AddressChange(n) => format!("address_change = {}", quote(n)),
        Fault::Impair(i) => {
            let mut fields = Vec::new();
            if i.loss_pct > 0 {
                fields.push(format!("loss_pct = {}", i.loss_pct));
            }
            if let Some((a, b)) = i.burst {
                fields.push(format!("burst = [{a}, {b}]"));
            }
            if i.dup_pct > 0 {
                fields.push(format!("dup_pct = {}", i.dup_pct));
            }
            if i.jitter_ms > 0 {
                fields.push(format!("jitter_ms = {}", i.jitter_ms));
            }
            format!("impair = {{ {} }}", fields.join(", "))
        }
    })
}

fn check_lines(check: &CheckDef) -> String {
    use CheckDef as D;
    let q = |s: &str| quote(s);
    match check {
        D::Joined(n) => format!("joined = {}", q(n)),
        D::NeverJoined(n, r) => format!("never_joined = {}\nreason = {}", q(n), q(r)),
        D::Hears(l, t, m) => format!("hears = [{}, {}]\nmin_packets = {m}", q(l), q(t)),
        D::Call(a, b, m) => format!("call = [{}, {}]\nmin_packets = {m}", q(a), q(b)),
        D::SignallingAcked(n) => format!("signalling_acked = {}", q(n)),
        D::ProxyType(n, t) => format!("proxy_type = {}\ntype = {t}", q(n)),
        D::MediaPath(n, p) => format!("media_path = {}\npath = \"{}\"", q(n), path_word(*p)),
        D::Reconnects(n) => format!("reconnects = {}", q(n)),
        D::RecoversWithin(n, d) => format!("recovers_within = {}\nwithin_s = {}", q(n), secs(*d)),
        D::RelayInUseCrashed(n) => format!("relay_in_use_crashed = {}", q(n)),
        D::Liveness(d) => format!("liveness_within_s = {}", secs(*d)),
        D::ImpairmentsHappened => "impairments_happened = true".into(),
        D::ReceiversSawLoss => "receivers_saw_loss = true".into(),
        D::StreamQuality => "stream_quality = true".into(),
        D::FirewallDropped => "firewall_dropped = true".into(),
        D::EdgeSawNoSignalling => "edge_saw_no_signalling = true".into(),
        D::ApsSilent(aps) => {
            let aps: Vec<String> = aps.iter().map(|a| format!("\"{a}\"")).collect();
            format!("aps_silent = [{}]", aps.join(", "))
        }
        D::SocksRefusedUdp => "socks_refused_udp = true".into(),
        D::Codes(n, codes) => {
            let codes: Vec<String> = codes.iter().map(i32::to_string).collect();
            format!("codes = {}\nexpect = [{}]", q(n), codes.join(", "))
        }
        D::ConfigInForce(n, t) => format!("config_in_force = {}\ncontains = {}", q(n), q(t)),
        D::MediaBetween(n, a, b) => {
            format!("media_between = {}\nfrom_s = {a}\nuntil_s = {b}", q(n))
        }
        D::FreshTicketAfter(e, d) => {
            format!("fresh_ticket_after = {}\nafter_s = {}", q(e), secs(*d))
        }
        D::OpenRelayAttack => "open_relay_attack = true".into(),
        D::Crowd(n) => format!("crowd = {n}"),
        D::Named(name, inner) => format!("name = {}\n{}", q(name), check_lines(inner)),
        other => beyond_check_lines(other),
    }
}

fn path_word(p: MediaPath) -> &'static str {
    if p == MediaPath::Udp {
        "udp"
    } else {
        "tcp"
    }
}

/// The checks beyond the seed (issue 18).
fn beyond_check_lines(check: &CheckDef) -> String {
    use CheckDef as D;
    let q = |s: &str| quote(s);
    let ms = |d: &Duration| d.as_millis();
    match check {
        D::JoinedWithin(n, d) => format!("joined_within = {}\nwithin_ms = {}", q(n), ms(d)),
        D::StayDirect(names) => {
            let names: Vec<String> = names.iter().map(|n| q(n)).collect();
            format!("stay_direct = [{}]", names.join(", "))
        }
        D::NoAccessPointAnswered => "no_access_point_answered = true".into(),
        D::FallsBack(n, d) => format!("falls_back = {}\nprobe_ms = {}", q(n), ms(d)),
        D::RelayPort(n, port) => format!("relay_port = {}\nport = {port}", q(n)),
        D::NoUdpLeft(e) => format!("no_udp_left = {}", q(e)),
        D::NothingDeniedTo(e, proto, port) => format!(
            "nothing_denied_to = {}\nproto = \"{}\"\nport = {port}",
            q(e),
            if *proto == Proto::Tcp { "tcp" } else { "udp" }
        ),
        D::HttpProxyTunnels(e, t, c) => {
            format!(
                "http_proxy_tunnels = {}\ntunnels = {t}\nchallenges = {c}",
                q(e)
            )
        }
        D::NatRebound(e) => format!("nat_rebound = {}", q(e)),
        D::RelayFollowedRebinding => "relay_followed_rebinding = true".into(),
        D::NoReconnect(n) => format!("no_reconnect = {}", q(n)),
        D::NoTicketAfter(e, d) => format!("no_ticket_after = {}\nafter_s = {}", q(e), secs(*d)),
        D::MediaAfter(n, d, s) => {
            format!(
                "media_after = {}\nafter_s = {}\nseconds = {s}",
                q(n),
                secs(*d)
            )
        }
        D::ReasonMentions(n, t) => format!("reason_mentions = {}\ncontains = {}", q(n), q(t)),
        D::MediaPathWithin(n, p, after, bound) => format!(
            "media_path_within = {}\npath = \"{}\"\nafter_s = {}\nwithin_ms = {}",
            q(n),
            path_word(*p),
            secs(*after),
            ms(bound)
        ),
        D::VpnDroppedUdp(e) => format!("vpn_dropped_udp = {}", q(e)),
        _ => unreachable!("every other check is written by check_lines"),
    }
}
