//! The TOML schema of a scenario file (see [`super::file`] and `docs/scenarios.md`), and the
//! reading of its faults and checks. Every table rejects unknown keys; every fault and every
//! check names exactly one kind.

use std::time::Duration;

use cloudproxy_core::client::MediaPath;
use serde::Deserialize;
use toml::Spanned;

use super::file::{Cx, FileError};
use super::vocabulary::CheckDef;
use crate::faults::Impairments;
use crate::policy::DnsPolicy;
use crate::world::{Fault, WorldSpec};

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDoc {
    pub name: Option<String>,
    pub proves: Option<String>,
    pub duration_s: Spanned<f64>,
    pub ticket_lifetime_s: Option<Spanned<f64>>,
    pub heal_at_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub attacker: bool,
    #[serde(default)]
    pub never_join: Vec<Spanned<String>>,
    #[serde(default, rename = "enterprise")]
    pub enterprises: Vec<EnterpriseDoc>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Spanned<FaultDoc>>,
    #[serde(default, rename = "check")]
    pub checks: Vec<Spanned<CheckDoc>>,
}

/// `[[enterprise]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnterpriseDoc {
    pub name: String,
    pub host: Spanned<String>,
    pub policy: Option<Spanned<toml::Value>>,
    pub policy_file: Option<Spanned<String>>,
    pub resolver: Option<DnsPolicy>,
    pub socks: Option<SocksDoc>,
    pub http_proxy: Option<HttpProxyDoc>,
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientDoc>,
}

/// `[enterprise.socks]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SocksDoc {
    pub ip: Spanned<String>,
    pub port: u16,
    #[serde(default = "yes")]
    pub udp_associate: bool,
    pub udp_ports: Option<Spanned<String>>,
}

/// `[enterprise.http_proxy]` (beyond the seed): an enterprise HTTP CONNECT proxy.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpProxyDoc {
    pub ip: Spanned<String>,
    pub port: u16,
    pub name: Option<String>,
    pub user: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

/// `[[enterprise.client]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientDoc {
    pub name: Spanned<String>,
    pub uid: u32,
    pub channel: Option<Spanned<String>>,
    #[serde(default)]
    pub params: Vec<String>,
    pub join_s: Option<Spanned<f64>>,
    #[serde(default = "one")]
    pub repeat: u32,
    #[serde(default)]
    pub join_every_ms: u64,
    pub media_pps: Option<u32>,
    pub signalling_every_s: Option<Spanned<f64>>,
    pub give_up_after_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub compat: bool,
    pub cloud_proxy: Option<Spanned<String>>,
    #[serde(default)]
    pub script: Vec<StepDoc>,
}

fn one() -> u32 {
    1
}

/// `[[enterprise.client.script]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StepDoc {
    pub at_s: Spanned<f64>,
    pub op: Spanned<String>,
    pub params: Option<String>,
    pub cloud_proxy: Option<Spanned<String>>,
}

/// `[[fault]]`: a time and exactly one kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FaultDoc {
    at_s: Spanned<f64>,
    crash: Option<Spanned<String>>,
    restart: Option<Spanned<String>>,
    crash_relay_of: Option<Spanned<String>>,
    partition: Option<Spanned<Vec<Spanned<String>>>>,
    partition_oneway: Option<Spanned<Vec<Spanned<String>>>>,
    repair: Option<Spanned<Vec<Spanned<String>>>>,
    hold: Option<Spanned<Vec<Spanned<String>>>>,
    release: Option<Spanned<Vec<Spanned<String>>>>,
    latency: Option<Spanned<Vec<Spanned<String>>>>,
    latency_ms: Option<u64>,
    dns_outage: Option<bool>,
    impair: Option<ImpairDoc>,
    nat_rebind: Option<Spanned<String>>,
    vpn_blocks_udp: Option<Spanned<String>>,
    vpn_down: Option<Spanned<String>>,
    address_change: Option<Spanned<String>>,
}

/// `impair = { ... }`; every field 0 (`impair = {}`) ends the impairments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImpairDoc {
    #[serde(default)]
    loss_pct: u8,
    burst: Option<[u8; 2]>,
    #[serde(default)]
    dup_pct: u8,
    #[serde(default)]
    jitter_ms: u16,
}

/// `[[check]]`: exactly one word of the vocabulary, its arguments, maybe a name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckDoc {
    name: Option<String>,
    joined: Option<Spanned<String>>,
    never_joined: Option<Spanned<String>>,
    reason: Option<String>,
    hears: Option<Vec<Spanned<String>>>,
    call: Option<Vec<Spanned<String>>>,
    min_packets: Option<u64>,
    signalling_acked: Option<Spanned<String>>,
    proxy_type: Option<Spanned<String>>,
    #[serde(rename = "type")]
    proxy: Option<u8>,
    media_path: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<String>>,
    reconnects: Option<Spanned<String>>,
    recovers_within: Option<Spanned<String>>,
    within_s: Option<Spanned<f64>>,
    relay_in_use_crashed: Option<Spanned<String>>,
    liveness_within_s: Option<Spanned<f64>>,
    #[serde(default)]
    impairments_happened: bool,
    #[serde(default)]
    receivers_saw_loss: bool,
    #[serde(default)]
    stream_quality: bool,
    #[serde(default)]
    firewall_dropped: bool,
    #[serde(default)]
    edge_saw_no_signalling: bool,
    aps_silent: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    socks_refused_udp: bool,
    codes: Option<Spanned<String>>,
    expect: Option<Vec<i32>>,
    config_in_force: Option<Spanned<String>>,
    pub(super) contains: Option<String>,
    media_between: Option<Spanned<String>>,
    from_s: Option<u64>,
    until_s: Option<u64>,
    fresh_ticket_after: Option<Spanned<String>>,
    pub(super) after_s: Option<Spanned<f64>>,
    #[serde(default)]
    open_relay_attack: bool,
    crowd: Option<usize>,
    pub(super) joined_within: Option<Spanned<String>>,
    pub(super) within_ms: Option<u64>,
    pub(super) stay_direct: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) no_access_point_answered: bool,
    pub(super) falls_back: Option<Spanned<String>>,
    pub(super) probe_ms: Option<u64>,
    pub(super) relay_port: Option<Spanned<String>>,
    pub(super) port: Option<u16>,
    pub(super) no_udp_left: Option<Spanned<String>>,
    pub(super) nothing_denied_to: Option<Spanned<String>>,
    pub(super) proto: Option<Spanned<String>>,
    pub(super) http_proxy_tunnels: Option<Spanned<String>>,
    pub(super) tunnels: Option<u64>,
    pub(super) challenges: Option<u64>,
    pub(super) nat_rebound: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) relay_followed_rebinding: bool,
    pub(super) no_reconnect: Option<Spanned<String>>,
    pub(super) no_ticket_after: Option<Spanned<String>>,
    pub(super) media_after: Option<Spanned<String>>,
    pub(super) seconds: Option<u64>,
    pub(super) reason_mentions: Option<Spanned<String>>,
    pub(super) media_path_within: Option<Spanned<String>>,
    pub(super) vpn_dropped_udp: Option<Spanned<String>>,
}

/// The words of the checks' vocabulary, as a file writes them.
pub const CHECK_WORDS: [&str; 41] = [
    "joined",
    "never_joined",
    "hears",
    "call",
    "signalling_acked",
    "proxy_type",
    "media_path",
    "reconnects",
    "recovers_within",
    "relay_in_use_crashed",
    "liveness_within_s",
    "impairments_happened",
    "receivers_saw_loss",
    "stream_quality",
    "firewall_dropped",
    "edge_saw_no_signalling",
    "aps_silent",
    "socks_refused_udp",
    "codes",
    "config_in_force",
    "media_between",
    "fresh_ticket_after",
    "open_relay_attack",
    "crowd",
    "joined_within",
    "stay_direct",
    "no_access_point_answered",
    "falls_back",
    "relay_port",
    "no_udp_left",
    "nothing_denied_to",
    "http_proxy_tunnels",
    "nat_rebound",
    "relay_followed_rebinding",
    "no_reconnect",
    "no_ticket_after",
    "media_after",
    "reason_mentions",
    "media_path_within",
    "vpn_dropped_udp",
    "name",
];

/// The kinds of fault, as a file writes them.
pub const FAULT_WORDS: [&str; 15] = [
    "crash",
    "restart",
    "crash_relay_of",
    "partition",
    "partition_oneway",
    "repair",
    "hold",
    "release",
    "latency",
    "dns_outage",
    "impair",
    "nat_rebind",
    "vpn_blocks_udp",
    "vpn_down",
    "address_change",
];

impl Cx<'_> {
    /// `"udp"` or `"tcp"`, the `path` argument of a check.
    pub(super) fn media_path(
        &self,
        p: &Spanned<String>,
        field: &str,
    ) -> Result<MediaPath, FileError> {
        match p.get_ref().as_str() {
            "udp" => Ok(MediaPath::Udp),
            "tcp" => Ok(MediaPath::Tcp),
            other => Err(self.err(
                p.span(),
                &format!("{field}.path"),
                format!("{other:?}: expected \"udp\" or \"tcp\""),
            )),
        }
    }

    /// An enterprise's name that the world has.
    pub(super) fn enterprise_name(
        &self,
        value: &Spanned<String>,
        field: &str,
        world: &WorldSpec,
    ) -> Result<String, FileError> {
        if world.enterprises.iter().any(|e| &e.name == value.get_ref()) {
            Ok(value.get_ref().clone())
        } else {
            Err(self.err(
                value.span(),
                field,
                format!("no enterprise named {:?} in this scenario", value.get_ref()),
            ))
        }
    }

    fn pair(
        &self,
        value: &Spanned<Vec<Spanned<String>>>,
        field: &str,
        world: &WorldSpec,
    ) -> Result<(std::net::IpAddr, std::net::IpAddr), FileError> {
        match value.get_ref().as_slice() {
            [a, b] => Ok((self.host(a, field, world)?, self.host(b, field, world)?)),
            other => Err(self.err(
                value.span(),
                field,
                format!("expected two hosts, got {}", other.len()),
            )),
        }
    }

    /// One `[[fault]]`.
    pub(super) fn fault(
        &self,
        doc: &Spanned<FaultDoc>,
        field: &str,
        world: &WorldSpec,
    ) -> Result<(Duration, Fault), FileError> {
        let f = doc.get_ref();
        let at = self.secs(&f.at_s, &format!("{field}.at_s"))?;
        self.one_kind(doc, field)?;
        if f.latency_ms.is_some() != f.latency.is_some() {
            return Err(self.err(
                doc.span(),
                &format!("{field}.latency_ms"),
                "`latency = [A, B]` and `latency_ms` go together",
            ));
        }
        Ok((at, self.fault_of_its_kind(doc, field, world)?))
    }

    /// A `[[fault]]` names exactly one kind (the error lists those it names and every kind).
    fn one_kind(&self, doc: &Spanned<FaultDoc>, field: &str) -> Result<(), FileError> {
        let f = doc.get_ref();
        let present = [
            f.crash.is_some(),
            f.restart.is_some(),
            f.crash_relay_of.is_some(),
            f.partition.is_some(),
            f.partition_oneway.is_some(),
            f.repair.is_some(),
            f.hold.is_some(),
            f.release.is_some(),
            f.latency.is_some(),
            f.dns_outage.is_some(),
            f.impair.is_some(),
            f.nat_rebind.is_some(),
            f.vpn_blocks_udp.is_some(),
            f.vpn_down.is_some(),
            f.address_change.is_some(),
        ];
        let kinds: Vec<&str> = FAULT_WORDS
            .iter()
            .zip(present)
            .filter(|(_, p)| *p)
            .map(|(w, _)| *w)
            .collect();
        if kinds.len() != 1 {
            return Err(self.err(
                doc.span(),
                field,
                format!(
                    "a fault has exactly one kind, this one has {}: {}; the kinds are {}",
                    kinds.len(),
                    if kinds.is_empty() {
                        "none".to_owned()
                    } else {
                        kinds.join(", ")
                    },
                    FAULT_WORDS.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// The fault of the one kind a `[[fault]]` names, its hosts, clients or enterprises
    /// looked up in `world`.
    fn fault_of_its_kind(
        &self,
        doc: &Spanned<FaultDoc>,
        field: &str,
        world: &WorldSpec,
    ) -> Result<Fault, FileError> {
        let f = doc.get_ref();
        let sub = |k: &str| format!("{field}.{k}");
        let fault = if let Some(h) = &f.crash {
            Fault::Crash(self.host(h, &sub("crash"), world)?)
        } else if let Some(h) = &f.restart {
            Fault::Restart(self.host(h, &sub("restart"), world)?)
        } else if let Some(c) = &f.crash_relay_of {
            Fault::CrashRelayOf(self.client(c, &sub("crash_relay_of"), world)?)
        } else if let Some(p) = &f.partition {
            let (a, b) = self.pair(p, &sub("partition"), world)?;
            Fault::Partition(a, b)
        } else if let Some(p) = &f.partition_oneway {
            let (a, b) = self.pair(p, &sub("partition_oneway"), world)?;
            Fault::PartitionOneway(a, b)
        } else if let Some(p) = &f.repair {
            let (a, b) = self.pair(p, &sub("repair"), world)?;
            Fault::Repair(a, b)
        } else if let Some(p) = &f.hold {
            let (a, b) = self.pair(p, &sub("hold"), world)?;
            Fault::Hold(a, b)
        } else if let Some(p) = &f.release {
            let (a, b) = self.pair(p, &sub("release"), world)?;
            Fault::Release(a, b)
        } else if let Some(p) = &f.latency {
            let (a, b) = self.pair(p, &sub("latency"), world)?;
            let ms = f.latency_ms.unwrap_or_default();
            if ms > 60_000 {
                return Err(self.err(p.span(), &sub("latency_ms"), "at most 60000 ms"));
            }
            Fault::Latency(a, b, Duration::from_millis(ms))
        } else if let Some(on) = f.dns_outage {
            Fault::DnsOutage(on)
        } else if let Some(i) = &f.impair {
            Fault::Impair(self.impairments(i, doc.span(), field)?)
        } else if let Some(e) = &f.nat_rebind {
            Fault::NatRebind(self.enterprise_name(e, &sub("nat_rebind"), world)?)
        } else if let Some(e) = &f.vpn_blocks_udp {
            Fault::VpnBlocksUdp(
                self.enterprise_name(e, &sub("vpn_blocks_udp"), world)?,
                true,
            )
        } else if let Some(e) = &f.vpn_down {
            Fault::VpnBlocksUdp(self.enterprise_name(e, &sub("vpn_down"), world)?, false)
        } else if let Some(c) = &f.address_change {
            Fault::AddressChange(self.client(c, &sub("address_change"), world)?)
        } else {
            unreachable!("exactly one kind is present")
        };
        Ok(fault)
    }

    /// `impair = { ... }`, every percentage within 0..=100.
    fn impairments(
        &self,
        i: &ImpairDoc,
        span: std::ops::Range<usize>,
        field: &str,
    ) -> Result<Impairments, FileError> {
        let pct = |v: u8, k: &str| {
            if v > 100 {
                Err(self.err(
                    span.clone(),
                    &format!("{field}.impair.{k}"),
                    format!("{v}: a percentage is 0 to 100"),
                ))
            } else {
                Ok(v)
            }
        };
        Ok(Impairments {
            loss_pct: pct(i.loss_pct, "loss_pct")?,
            burst: match i.burst {
                None => None,
                Some([a, b]) => Some((pct(a, "burst")?, pct(b, "burst")?)),
            },
            dup_pct: pct(i.dup_pct, "dup_pct")?,
            jitter_ms: i.jitter_ms,
        })
    }

    /// One `[[check]]`.
    pub(super) fn check(
        &self,
        doc: &Spanned<CheckDoc>,
        field: &str,
        world: &WorldSpec,
    ) -> Result<CheckDef, FileError> {
        let c = doc.get_ref();
        let present = [
            c.joined.is_some(),
            c.never_joined.is_some(),
            c.hears.is_some(),
            c.call.is_some(),
            c.signalling_acked.is_some(),
            c.proxy_type.is_some(),
            c.media_path.is_some(),
            c.reconnects.is_some(),
            c.recovers_within.is_some(),
            c.relay_in_use_crashed.is_some(),
            c.liveness_within_s.is_some(),
            c.impairments_happened,
            c.receivers_saw_loss,
            c.stream_quality,
            c.firewall_dropped,
            c.edge_saw_no_signalling,
            c.aps_silent.is_some(),
            c.socks_refused_udp,
            c.codes.is_some(),
            c.config_in_force.is_some(),
            c.media_between.is_some(),
            c.fresh_ticket_after.is_some(),
            c.open_relay_attack,
            c.crowd.is_some(),
            c.joined_within.is_some(),
            c.stay_direct.is_some(),
            c.no_access_point_answered,
            c.falls_back.is_some(),
            c.relay_port.is_some(),
            c.no_udp_left.is_some(),
            c.nothing_denied_to.is_some(),
            c.http_proxy_tunnels.is_some(),
            c.nat_rebound.is_some(),
            c.relay_followed_rebinding,
            c.no_reconnect.is_some(),
            c.no_ticket_after.is_some(),
            c.media_after.is_some(),
            c.reason_mentions.is_some(),
            c.media_path_within.is_some(),
            c.vpn_dropped_udp.is_some(),
        ];
        let words = &CHECK_WORDS[..CHECK_WORDS.len() - 1];
        let kinds: Vec<&str> = words
            .iter()
            .zip(present)
            .filter(|(_, p)| *p)
            .map(|(w, _)| *w)
            .collect();
        if kinds.len() != 1 {
            return Err(self.err(doc.span(), field, format!(
                "a check has exactly one word of the vocabulary, this one has {}: {}; the words are {}",
                kinds.len(), if kinds.is_empty() { "none".to_owned() } else { kinds.join(", ") }, words.join(", ")
            )));
        }
        let def = self.word(doc, kinds[0], field, world)?;
        Ok(match &c.name {
            Some(name) => CheckDef::Named(name.clone(), Box::new(def)),
            None => def,
        })
    }

    /// The check `kind` (the one word present) of `doc`.
    fn word(
        &self,
        doc: &Spanned<CheckDoc>,
        kind: &str,
        field: &str,
        world: &WorldSpec,
    ) -> Result<CheckDef, FileError> {
        let c = doc.get_ref();
        let need = |what: &str| {
            self.err(
                doc.span(),
                &format!("{field}.{what}"),
                format!("`{}` needs `{what}`", kind),
            )
        };
        let client = |v: &Spanned<String>| self.client(v, &format!("{field}.{}", kind), world);
        let two = |v: &Vec<Spanned<String>>| match v.as_slice() {
            [a, b] => Ok((client(a)?, client(b)?)),
            _ => Err(self.err(
                doc.span(),
                &format!("{field}.{}", kind),
                "expected two clients: [listener, talker]",
            )),
        };
        use CheckDef as D;
        if let Some(def) = self.world_word(c, field, world, &need, &client)? {
            return Ok(def);
        }
        if let Some(def) = self.beyond_word(doc, field, world, &need, &client)? {
            return Ok(def);
        }
        Ok(if let Some(n) = &c.joined {
            D::Joined(client(n)?)
        } else if let Some(n) = &c.never_joined {
            D::NeverJoined(client(n)?, c.reason.clone().ok_or_else(|| need("reason"))?)
        } else if let Some(v) = &c.hears {
            let (a, b) = two(v)?;
            D::Hears(a, b, c.min_packets.ok_or_else(|| need("min_packets"))?)
        } else if let Some(v) = &c.call {
            let (a, b) = two(v)?;
            D::Call(a, b, c.min_packets.ok_or_else(|| need("min_packets"))?)
        } else if let Some(n) = &c.signalling_acked {
            D::SignallingAcked(client(n)?)
        } else if let Some(n) = &c.proxy_type {
            let t = c.proxy.ok_or_else(|| need("type"))?;
            if t > 3 {
                return Err(self.err(
                    doc.span(),
                    &format!("{field}.type"),
                    format!(
                        "{t}: a proxy type is 0, 1, 2 or 3 (3: an HTTP proxy, beyond the seed)"
                    ),
                ));
            }
            D::ProxyType(client(n)?, t)
        } else if let Some(n) = &c.media_path {
            let p = c.path.as_ref().ok_or_else(|| need("path"))?;
            D::MediaPath(client(n)?, self.media_path(p, field)?)
        } else if let Some(n) = &c.reconnects {
            D::Reconnects(client(n)?)
        } else if let Some(n) = &c.recovers_within {
            let within = c.within_s.as_ref().ok_or_else(|| need("within_s"))?;
            D::RecoversWithin(client(n)?, self.secs(within, &format!("{field}.within_s"))?)
        } else if let Some(n) = &c.relay_in_use_crashed {
            D::RelayInUseCrashed(client(n)?)
        } else {
            unreachable!("exactly one word is present")
        })
    }

    /// The second half of the vocabulary (`None`: a word of the first, which [`Self::word`] reads).
    fn world_word(
        &self,
        c: &CheckDoc,
        field: &str,
        world: &WorldSpec,
        need: &dyn Fn(&str) -> FileError,
        client: &dyn Fn(&Spanned<String>) -> Result<String, FileError>,
    ) -> Result<Option<CheckDef>, FileError> {
        use CheckDef as D;
        Ok(Some(if let Some(s) = &c.liveness_within_s {
            D::Liveness(self.secs(s, &format!("{field}.liveness_within_s"))?)
        } else if c.impairments_happened {
            D::ImpairmentsHappened
        } else if c.receivers_saw_loss {
            D::ReceiversSawLoss
        } else if c.stream_quality {
            D::StreamQuality
        } else if c.firewall_dropped {
            D::FirewallDropped
        } else if c.edge_saw_no_signalling {
            D::EdgeSawNoSignalling
        } else if let Some(aps) = &c.aps_silent {
            let aps = aps
                .iter()
                .map(|a| self.host(a, &format!("{field}.aps_silent"), world))
                .collect::<Result<_, _>>()?;
            D::ApsSilent(aps)
        } else if c.socks_refused_udp {
            D::SocksRefusedUdp
        } else if let Some(n) = &c.codes {
            D::Codes(client(n)?, c.expect.clone().ok_or_else(|| need("expect"))?)
        } else if let Some(n) = &c.config_in_force {
            D::ConfigInForce(
                client(n)?,
                c.contains.clone().ok_or_else(|| need("contains"))?,
            )
        } else if let Some(n) = &c.media_between {
            let (from, until) = (
                c.from_s.ok_or_else(|| need("from_s"))?,
                c.until_s.ok_or_else(|| need("until_s"))?,
            );
            D::MediaBetween(client(n)?, from, until)
        } else if let Some(e) = &c.fresh_ticket_after {
            if !world.enterprises.iter().any(|x| &x.name == e.get_ref()) {
                return Err(self.err(
                    e.span(),
                    &format!("{field}.fresh_ticket_after"),
                    format!("no enterprise named {:?}", e.get_ref()),
                ));
            }
            let after = c.after_s.as_ref().ok_or_else(|| need("after_s"))?;
            D::FreshTicketAfter(
                e.get_ref().clone(),
                self.secs(after, &format!("{field}.after_s"))?,
            )
        } else if c.open_relay_attack {
            D::OpenRelayAttack
        } else if let Some(n) = c.crowd {
            D::Crowd(n)
        } else {
            return Ok(None);
        }))
    }
}
