//! Scenarios as files: a TOML file that says everything a catalogue scenario says in Rust
//! (enterprises with their policy and resolver, clients with their setParameters texts and
//! the moments they join, leave or change parameters, timed faults, the length of the run,
//! and checks from the vocabulary of [`super::vocabulary`]). `docs/scenarios.md` ("Scenario
//! files") documents the schema; `sim/scenarios/` holds the catalogue written this way.
//!
//! A bad file gets an error that names the file, the line and the field: syntax errors and
//! unknown keys come from `toml` (which names line and column), the rest from the checks here,
//! which carry the line of the value they reject.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudproxy_core::client::ClientConfig;
use cloudproxy_core::engine::CloudProxyType;
use cloudproxy_core::http_connect::BasicCredentials;
use cloudproxy_core::socks5::ServerPolicy;
use toml::Spanned;

use super::file_schema::*;
use super::vocabulary::CheckDef;
use super::Check;
use crate::policy::Policy;
use crate::world::{
    ip, HttpProxySpec, SocksSpec, WorldOutcome, WorldSpec, AP_IPS, ATTACKER_IP, EDGE_IP, RELAY_IPS,
};
use cloudproxy_node::nodes::client::{ClientSpec, Op};

/// The largest scenario file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The longest run a file may ask for, in seconds.
pub const MAX_DURATION_S: f64 = 3_600.0;
/// The most clients a file may define (after `repeat`).
pub const MAX_CLIENTS: usize = 2_000;

/// Why a scenario file was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{path}: {bytes} bytes, more than the {MAX_FILE_BYTES} a scenario file may have")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        bytes: u64,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type (the message
    /// names the line, the column and the key).
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: String,
        /// toml's message, with the line and the key.
        message: String,
    },
    /// A value is out of its bounds or names something that does not exist.
    #[error("{path}:{line}: `{field}`: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The 1-based line of the value.
        line: usize,
        /// The field, as a path (`enterprise[1].client[2].uid`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A scenario read from a file: its world (with seed 0; [`ScenarioFile::world`] sets the
/// seed) and its checks.
#[derive(Clone, Debug)]
pub struct ScenarioFile {
    /// The file, as the user named it (for the reproduction line).
    pub path: PathBuf,
    /// Its name (the file's `name`, else the file's stem).
    pub name: &'static str,
    /// What it proves (the file's `proves`).
    pub proves: &'static str,
    /// The world, with seed 0.
    template: WorldSpec,
    /// The checks, in order.
    pub check_defs: Vec<CheckDef>,
}

impl ScenarioFile {
    /// Reads and checks the scenario file at `path`.
    pub fn load(path: &Path) -> Result<ScenarioFile, FileError> {
        let shown = path.display().to_string();
        let io = |source| FileError::Io {
            path: shown.clone(),
            source,
        };
        let bytes = std::fs::metadata(path).map_err(io)?.len();
        if bytes > MAX_FILE_BYTES {
            return Err(FileError::TooLarge { path: shown, bytes });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        ScenarioFile::parse(&text, path)
    }

    /// Checks the scenario `text`, read from `path` (policy files are found relative to its
    /// directory).
    pub fn parse(text: &str, path: &Path) -> Result<ScenarioFile, FileError> {
        let doc: FileDoc = toml::from_str(text).map_err(|e| FileError::Toml {
            path: path.display().to_string(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut cx = Cx {
            text,
            path,
            base: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        };
        let template = cx.world(&doc)?;
        let check_defs = doc
            .checks
            .iter()
            .enumerate()
            .map(|(i, c)| cx.check(c, &format!("check[{}]", i + 1), &template))
            .collect::<Result<Vec<_>, _>>()?;
        let stem = path
            .file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
        let name = doc.name.unwrap_or(stem);
        let proves = doc
            .proves
            .unwrap_or_else(|| format!("scenario file {}", path.display()));
        Ok(ScenarioFile {
            path: path.to_path_buf(),
            name: Box::leak(name.into_boxed_str()),
            proves: Box::leak(proves.into_boxed_str()),
            template,
            check_defs,
        })
    }

    /// The world for `seed`.
    pub fn world(&self, seed: u64) -> WorldSpec {
        WorldSpec {
            seed,
            ..self.template.clone()
        }
    }

    /// The file's own checks of an outcome.
    pub fn checks(&self, spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
        self.check_defs
            .iter()
            .flat_map(|c| c.eval(spec, outcome))
            .collect()
    }
}

/// The context of one file's checks: its text (for lines), its path, its directory.
pub(super) struct Cx<'a> {
    pub text: &'a str,
    pub path: &'a Path,
    pub base: PathBuf,
}

impl Cx<'_> {
    /// An error at the line of `span` about `field`.
    pub fn err(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> FileError {
        let line = self.text[..span.start.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1;
        FileError::Invalid {
            path: self.path.display().to_string(),
            line,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// Seconds as a duration, to the millisecond, within `0..=MAX_DURATION_S`.
    pub fn secs(&self, value: &Spanned<f64>, field: &str) -> Result<Duration, FileError> {
        let s = *value.get_ref();
        if !s.is_finite() || !(0.0..=MAX_DURATION_S).contains(&s) {
            return Err(self.err(
                value.span(),
                field,
                format!("{s} s is out of range: a time is 0 to {MAX_DURATION_S} seconds"),
            ));
        }
        Ok(Duration::from_millis((s * 1000.0).round() as u64))
    }

    /// A host of the world: an IP address or a name (`ap1`..`ap4`, `relay1`, `relay2`,
    /// `edge`, `attacker`, an enterprise's name, `NAME.socks`).
    pub fn host(
        &self,
        value: &Spanned<String>,
        field: &str,
        world: &WorldSpec,
    ) -> Result<IpAddr, FileError> {
        let name = value.get_ref().as_str();
        if let Ok(addr) = name.parse::<IpAddr>() {
            return Ok(addr);
        }
        let numbered = |prefix: &str, list: &[&str]| {
            name.strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| list.get(i))
                .map(|a| ip(a))
        };
        let found = numbered("ap", &AP_IPS)
            .or_else(|| numbered("relay", &RELAY_IPS))
            .or_else(|| (name == "edge").then(|| ip(EDGE_IP)))
            .or_else(|| (name == "attacker").then(|| ip(ATTACKER_IP)))
            .or_else(|| {
                world.enterprises.iter().find_map(|e| {
                    if e.name == name {
                        Some(e.clients_ip)
                    } else if name.strip_suffix(".socks") == Some(e.name.as_str()) {
                        e.socks.as_ref().map(|s| s.ip)
                    } else {
                        None
                    }
                })
            });
        found.ok_or_else(|| {
            self.err(
                value.span(),
                field,
                format!(
                    "{name:?} is not a host: give an IP address or ap1..ap{}, relay1..relay{}, edge, attacker, an enterprise's name or NAME.socks",
                    AP_IPS.len(),
                    RELAY_IPS.len()
                ),
            )
        })
    }

    /// A client's name that the world has.
    pub fn client(
        &self,
        value: &Spanned<String>,
        field: &str,
        world: &WorldSpec,
    ) -> Result<String, FileError> {
        let name = value.get_ref();
        let known = world
            .enterprises
            .iter()
            .flat_map(|e| &e.clients)
            .any(|c| &c.name == name);
        if known {
            Ok(name.clone())
        } else {
            Err(self.err(
                value.span(),
                field,
                format!("no client named {name:?} in this scenario"),
            ))
        }
    }

    fn world(&mut self, doc: &FileDoc) -> Result<WorldSpec, FileError> {
        let mut spec = WorldSpec::new(0, self.secs(&doc.duration_s, "duration_s")?);
        if let Some(t) = &doc.ticket_lifetime_s {
            spec.ticket_lifetime = self.secs(t, "ticket_lifetime_s")?;
        }
        if let Some(t) = &doc.heal_at_s {
            spec.heal_at = Some(self.secs(t, "heal_at_s")?);
        }
        spec.attacker = doc.attacker;
        for (i, e) in doc.enterprises.iter().enumerate() {
            let field = format!("enterprise[{}]", i + 1);
            self.enterprise(e, &field, &mut spec)?;
        }
        let clients = spec
            .enterprises
            .iter()
            .map(|e| e.clients.len())
            .sum::<usize>();
        if clients > MAX_CLIENTS {
            return Err(FileError::Invalid {
                path: self.path.display().to_string(),
                line: 1,
                field: "enterprise.client".into(),
                message: format!("{clients} clients, more than the {MAX_CLIENTS} a file may have"),
            });
        }
        for (i, name) in doc.never_join.iter().enumerate() {
            let name = self.client(name, &format!("never_join[{}]", i + 1), &spec)?;
            spec.never_join.push(name);
        }
        for (i, f) in doc.faults.iter().enumerate() {
            let fault = self.fault(f, &format!("fault[{}]", i + 1), &spec)?;
            spec.faults.push(fault);
        }
        Ok(spec)
    }

    fn enterprise(
        &mut self,
        e: &EnterpriseDoc,
        field: &str,
        spec: &mut WorldSpec,
    ) -> Result<(), FileError> {
        let host: IpAddr = e.host.get_ref().parse().map_err(|_| {
            self.err(
                e.host.span(),
                &format!("{field}.host"),
                format!("{:?} is not an IP address", e.host.get_ref()),
            )
        })?;
        if spec
            .enterprises
            .iter()
            .any(|o| o.name == e.name || o.clients_ip == host)
        {
            return Err(self.err(
                e.host.span(),
                &format!("{field}.name"),
                "another enterprise has this name or host",
            ));
        }
        let mut policy = self.policy(e, field)?;
        if let Some(resolver) = e.resolver {
            policy.dns = resolver;
        }
        let index = spec.enterprise(&e.name, &host.to_string(), policy);
        if let Some(socks) = &e.socks {
            let sfield = format!("{field}.socks");
            let ip: IpAddr = socks.ip.get_ref().parse().map_err(|_| {
                self.err(
                    socks.ip.span(),
                    &format!("{sfield}.ip"),
                    "not an IP address",
                )
            })?;
            let udp_ports = match &socks.udp_ports {
                None => None,
                Some(r) => Some(parse_range(r.get_ref()).ok_or_else(|| {
                    self.err(
                        r.span(),
                        &format!("{sfield}.udp_ports"),
                        "expected a range like \"40000-40100\" (1-65535)",
                    )
                })?),
            };
            spec.enterprises[index].socks = Some(SocksSpec {
                ip,
                port: socks.port,
                policy: ServerPolicy {
                    udp_associate: socks.udp_associate,
                    ..ServerPolicy::default()
                },
                udp_ports,
            });
        }
        if let Some(proxy) = &e.http_proxy {
            spec.enterprises[index].http_proxy =
                Some(self.http_proxy(proxy, &format!("{field}.http_proxy"))?);
        }
        for (i, c) in e.clients.iter().enumerate() {
            let cfield = format!("{field}.client[{}]", i + 1);
            let clients = self.clients(c, &cfield)?;
            for client in clients {
                let taken = spec
                    .enterprises
                    .iter()
                    .flat_map(|e| &e.clients)
                    .any(|o| o.name == client.name || o.uid == client.uid);
                if taken {
                    return Err(self.err(
                        c.name.span(),
                        &format!("{cfield}.name"),
                        format!(
                            "client {:?} (uid {}): another client has this name or uid",
                            client.name, client.uid
                        ),
                    ));
                }
                spec.enterprises[index].clients.push(client);
            }
        }
        Ok(())
    }

    /// `[enterprise.http_proxy]`: an address, a port, maybe a name and Basic credentials
    /// (`user` and `password` together).
    fn http_proxy(&self, doc: &HttpProxyDoc, field: &str) -> Result<HttpProxySpec, FileError> {
        let ip: IpAddr =
            doc.ip.get_ref().parse().map_err(|_| {
                self.err(doc.ip.span(), &format!("{field}.ip"), "not an IP address")
            })?;
        if doc.port == 0 {
            return Err(self.err(
                doc.ip.span(),
                &format!("{field}.port"),
                "a port is 1 to 65535",
            ));
        }
        let credentials = match (&doc.user, &doc.password) {
            (None, None) => None,
            (Some(user), Some(password)) => Some(
                BasicCredentials::new(user.get_ref(), password.get_ref())
                    .map_err(|e| self.err(user.span(), &format!("{field}.user"), e.to_string()))?,
            ),
            (Some(v), None) | (None, Some(v)) => {
                return Err(self.err(
                    v.span(),
                    &format!("{field}.password"),
                    "give `user` and `password` together (Basic authentication), or neither",
                ))
            }
        };
        Ok(HttpProxySpec {
            ip,
            port: doc.port,
            name: doc.name.clone(),
            credentials,
        })
    }

    fn policy(&self, e: &EnterpriseDoc, field: &str) -> Result<Policy, FileError> {
        match (&e.policy, &e.policy_file) {
            (Some(_), Some(file)) => Err(self.err(
                file.span(),
                &format!("{field}.policy_file"),
                "give `policy` or `policy_file`, not both",
            )),
            (None, None) => Ok(Policy::seed()),
            (None, Some(file)) => {
                let path = self.base.join(file.get_ref());
                let text = std::fs::read_to_string(&path).map_err(|err| {
                    self.err(
                        file.span(),
                        &format!("{field}.policy_file"),
                        format!("{}: {err}", path.display()),
                    )
                })?;
                text.parse().map_err(|err| {
                    self.err(
                        file.span(),
                        &format!("{field}.policy_file"),
                        format!("{}: {err}", path.display()),
                    )
                })
            }
            (Some(value), None) => {
                let pfield = format!("{field}.policy");
                match value.get_ref() {
                    toml::Value::String(name) => preset(name).ok_or_else(|| {
                        self.err(value.span(), &pfield, format!("no preset {name:?}: give one of {} or an inline table (default, dns, allow)", PRESETS.join(", ")))
                    }),
                    toml::Value::Table(table) => {
                        let text = toml::to_string(table).map_err(|err| self.err(value.span(), &pfield, err.to_string()))?;
                        text.parse().map_err(|err: crate::policy::PolicyError| {
                            self.err(value.span(), &pfield, err.to_string().replace('\n', " "))
                        })
                    }
                    _ => Err(self.err(value.span(), &pfield, "expected a preset's name or an inline policy table")),
                }
            }
        }
    }

    fn clients(&self, c: &ClientDoc, field: &str) -> Result<Vec<ClientSpec>, FileError> {
        if c.repeat == 0 || c.repeat as usize > MAX_CLIENTS {
            return Err(self.err(
                c.name.span(),
                &format!("{field}.repeat"),
                format!("repeat is 1 to {MAX_CLIENTS}"),
            ));
        }
        let start = match &c.join_s {
            Some(s) => self.secs(s, &format!("{field}.join_s"))?,
            None => Duration::from_millis(100),
        };
        let tune = match &c.give_up_after_s {
            None => None,
            Some(s) => Some(give_up_tune(*s.get_ref()).ok_or_else(|| {
                self.err(
                    s.span(),
                    &format!("{field}.give_up_after_s"),
                    format!("one of {GIVE_UP_CHOICES:?} seconds"),
                )
            })?),
        };
        let every = match &c.signalling_every_s {
            None => None,
            Some(s) => {
                let every = self.secs(s, &format!("{field}.signalling_every_s"))?;
                if every < Duration::from_millis(10) {
                    return Err(self.err(
                        s.span(),
                        &format!("{field}.signalling_every_s"),
                        "at least 0.01 s",
                    ));
                }
                Some(every)
            }
        };
        let cloud = match &c.cloud_proxy {
            None => None,
            Some(v) => Some(self.cloud_proxy(v, &format!("{field}.cloud_proxy"))?),
        };
        let mut script = Vec::new();
        for (i, step) in c.script.iter().enumerate() {
            script.push(self.step(step, &format!("{field}.script[{}]", i + 1))?);
        }
        let mut out = Vec::new();
        for i in 0..c.repeat {
            let name = template(c.name.get_ref(), i)
                .map_err(|m| self.err(c.name.span(), &format!("{field}.name"), m))?;
            let channel = match &c.channel {
                Some(ch) => template(ch.get_ref(), i)
                    .map_err(|m| self.err(ch.span(), &format!("{field}.channel"), m))?,
                None => "room".to_owned(),
            };
            let uid = c.uid.checked_add(i).ok_or_else(|| {
                self.err(
                    c.name.span(),
                    &format!("{field}.uid"),
                    "uid + repeat overflows",
                )
            })?;
            let params: Vec<&str> = c.params.iter().map(String::as_str).collect();
            let at = start + Duration::from_millis(c.join_every_ms.saturating_mul(u64::from(i)));
            let mut client = ClientSpec::new(&name, uid, &channel, &params, at);
            if let Some(cloud) = cloud {
                // setCloudProxy after the parameters, before the join, at the same moment.
                let join = client.script.len() - 1;
                client.script.insert(join, (at, Op::SetCloudProxy(cloud)));
            }
            client.script.extend(script.iter().cloned());
            if let Some(pps) = c.media_pps {
                client.media_pps = pps;
            }
            if let Some(every) = every {
                client.signalling_every = every;
            }
            if let Some(tune) = tune {
                client.tune = tune;
            }
            client.compat = c.compat;
            out.push(client);
        }
        Ok(out)
    }

    /// A `setCloudProxy` type: `automatic`, `force-udp` or `force-tcp`.
    fn cloud_proxy(&self, v: &Spanned<String>, field: &str) -> Result<CloudProxyType, FileError> {
        [
            CloudProxyType::Automatic,
            CloudProxyType::ForceUdp,
            CloudProxyType::ForceTcp,
        ]
        .into_iter()
        .find(|t| t.name() == v.get_ref())
        .ok_or_else(|| {
            self.err(
                v.span(),
                field,
                format!(
                    "{:?}: expected \"automatic\", \"force-udp\" or \"force-tcp\"",
                    v.get_ref()
                ),
            )
        })
    }

    fn step(&self, step: &StepDoc, field: &str) -> Result<(Duration, Op), FileError> {
        let at = self.secs(&step.at_s, &format!("{field}.at_s"))?;
        match (step.op.get_ref().as_str(), &step.cloud_proxy) {
            ("set_cloud_proxy", Some(v)) if step.params.is_none() => {
                let cloud = self.cloud_proxy(v, &format!("{field}.cloud_proxy"))?;
                return Ok((at, Op::SetCloudProxy(cloud)));
            }
            ("set_cloud_proxy", None) => return Err(self.err(
                step.op.span(),
                &format!("{field}.cloud_proxy"),
                "op \"set_cloud_proxy\" needs `cloud_proxy` (automatic, force-udp or force-tcp)",
            )),
            ("set_cloud_proxy", Some(_)) => {
                return Err(self.err(
                    step.op.span(),
                    &format!("{field}.params"),
                    "only op \"set\" takes `params`",
                ))
            }
            (_, Some(v)) => {
                return Err(self.err(
                    v.span(),
                    &format!("{field}.cloud_proxy"),
                    "only op \"set_cloud_proxy\" takes `cloud_proxy`",
                ))
            }
            (_, None) => {}
        }
        let op = match (step.op.get_ref().as_str(), &step.params) {
            ("set", Some(text)) => Op::Set(text.clone()),
            ("set", None) => {
                return Err(self.err(
                    step.op.span(),
                    &format!("{field}.params"),
                    "op \"set\" needs `params`, the setParameters text",
                ))
            }
            ("join", None) => Op::Join,
            ("leave", None) => Op::Leave,
            ("join" | "leave", Some(_)) => {
                return Err(self.err(
                    step.op.span(),
                    &format!("{field}.params"),
                    "only op \"set\" takes `params`",
                ))
            }
            (other, _) => {
                return Err(self.err(
                    step.op.span(),
                    &format!("{field}.op"),
                    format!(
                        "{other:?}: expected \"set\", \"set_cloud_proxy\", \"join\" or \"leave\""
                    ),
                ))
            }
        };
        Ok((at, op))
    }
}

/// The policy presets a file may name.
pub const PRESETS: [&str; 6] = [
    "seed",
    "open",
    "seed-tcp-only",
    "dns-blocked",
    "udp-blocked",
    "tcp-443-only",
];

/// The policy preset `name`.
pub(super) fn preset(name: &str) -> Option<Policy> {
    Some(match name {
        "seed" => Policy::seed(),
        "open" => Policy::open(),
        "seed-tcp-only" | "udp-blocked" => Policy::seed_tcp_only(),
        "dns-blocked" => Policy::dns_blocked(),
        "tcp-443-only" => Policy::tcp_443_only(),
        _ => return None,
    })
}

fn parse_range(text: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (lo, hi) = text.split_once('-')?;
    let (lo, hi) = (
        lo.trim().parse::<u16>().ok()?,
        hi.trim().parse::<u16>().ok()?,
    );
    (lo >= 1 && lo <= hi).then_some(lo..=hi)
}

/// Sets the proxy client's give-up time to `S` seconds (a function, as
/// [`ClientSpec::tune`] takes one).
pub fn give_up_after<const S: u64>(config: &mut ClientConfig) {
    config.give_up_after = Duration::from_secs(S);
}

/// The give-up times (s) a file may choose.
pub const GIVE_UP_CHOICES: [u64; 10] = [5, 10, 15, 20, 30, 45, 60, 90, 120, 300];

fn give_up_tune(secs: u64) -> Option<fn(&mut ClientConfig)> {
    let table: [fn(&mut ClientConfig); 10] = [
        give_up_after::<5>,
        give_up_after::<10>,
        give_up_after::<15>,
        give_up_after::<20>,
        give_up_after::<30>,
        give_up_after::<45>,
        give_up_after::<60>,
        give_up_after::<90>,
        give_up_after::<120>,
        give_up_after::<300>,
    ];
    GIVE_UP_CHOICES
        .iter()
        .position(|s| *s == secs)
        .map(|i| table[i])
}

/// `text` with `{i}`, `{i:0N}` (zero-padded to N digits) and `{i/N}` (i divided by N)
/// replaced for client `i` of a `repeat`.
fn template(text: &str, i: u32) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("{text:?}: a `{{` without its `}}`"))?;
        let inner = &rest[open + 1..open + close];
        let bad = || format!("{text:?}: `{{{inner}}}`: expected {{i}}, {{i:03}} or {{i/5}}");
        let value = match inner.strip_prefix('i').ok_or_else(bad)? {
            "" => i.to_string(),
            w if w.starts_with(":0") => {
                let width: usize = w[2..].parse().map_err(|_| bad())?;
                format!("{i:0width$}", width = width.min(10))
            }
            d if d.starts_with('/') => {
                let by: u32 = d[1..].parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
                (i / by).to_string()
            }
            _ => return Err(bad()),
        };
        out.push_str(&value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `(name, the text of sim/scenarios/NAME.toml)` for each name, built in.
macro_rules! catalogue_files {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../../scenarios/", $name, ".toml")))),*]
    };
}

/// The seed catalogue written as scenario files (`sim/scenarios/NAME.toml`), built in.
const SEED_FILES: [(&str, &str); 15] = catalogue_files![
    "direct-blocked",
    "direct-open",
    "proxy-default",
    "proxy-ip-list",
    "ap-failover",
    "relay-crash",
    "udp-blocked",
    "socks5",
    "socks5-no-udp",
    "in-channel-change",
    "lossy-media",
    "partition-heal",
    "open-relay-attack",
    "ticket-expiry",
    "crowd",
];

/// The scenarios beyond the seed (issue 18) as scenario files, built in.
const BEYOND_FILES: [(&str, &str); 9] = catalogue_files![
    "ap-failover-racing",
    "automatic-open",
    "automatic-fallback",
    "force-tcp-443",
    "http-proxy",
    "http-proxy-auth",
    "nat-rebinding",
    "address-change",
    "vpn-blocks-udp",
];

/// The names of the scenarios beyond the seed (issue 18), in catalogue order: their files are
/// what the file writer writes from the built-in world and checks.
pub const BEYOND_THE_SEED: [&str; 9] = names(BEYOND_FILES);

/// The names of `files`, in order.
const fn names<const N: usize>(files: [(&'static str, &'static str); N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = files[i].0;
        i += 1;
    }
    out
}

/// The catalogue scenario `name` as its file twin in `sim/scenarios/` (built in; the twin
/// test proves each equal to the catalogue's).
pub fn catalogue_file(name: &str) -> Option<ScenarioFile> {
    let (_, text) = SEED_FILES
        .iter()
        .chain(&BEYOND_FILES)
        .find(|(n, _)| *n == name)?;
    let path = PathBuf::from(format!("sim/scenarios/{name}.toml"));
    ScenarioFile::parse(text, &path).ok()
}
