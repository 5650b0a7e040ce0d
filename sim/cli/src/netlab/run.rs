//! A world's clients on a lab: one `cloudproxy call` per SDK client of the world, in its
//! enterprise's namespace, from the enterprise's client address, asking the enterprise's
//! resolver, with the world's setParameters texts (their seed addresses translated), all
//! started together and bounded in time.
//!
//! What the simulation has and a real network cannot (yet) have is refused with the reason:
//! scheduled faults (crashes, partitions, impairments), the attacker, the canary, SOCKS5
//! servers that ask for a password, and scripts that change parameters during a call.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cloudproxy_node::nodes::client::{ClientSpec, Op};
use cloudproxy_sim::world::WorldSpec;
use serde_json::Value;

use super::addr_map as map;
use super::lab::Lab;
use super::procs::Proc;
use super::NetlabError;

/// Time a call gets beyond its duration to finish (its own slack, and start-up).
const CALL_SLACK: Duration = Duration::from_secs(20);

/// One client of a real run.
#[derive(Clone, Debug)]
pub struct RealClient {
    /// Its enterprise, 1-based.
    pub enterprise: usize,
    /// Its uid.
    pub uid: u32,
    /// Its channel.
    pub channel: String,
    /// The report of `cloudproxy call --json`.
    pub json: Value,
}

/// What a real run produced.
#[derive(Clone, Debug, Default)]
pub struct RealOutcome {
    /// Each client, by name.
    pub clients: BTreeMap<String, RealClient>,
    /// Each enterprise's firewall counters (comment, packets), in the world's order.
    pub counters: Vec<Vec<(String, u64)>>,
    /// Each enterprise gateway's ruleset after the run, as `nft -j list ruleset` prints it.
    pub rulesets: Vec<String>,
    /// The edge's statistics, once it stopped.
    pub edge: Option<Value>,
    /// Wall time of the calls.
    pub wall: Duration,
}

/// Whether `spec` can run on a lab; the error says what it uses that a lab has not.
pub fn supported(spec: &WorldSpec) -> Result<(), NetlabError> {
    let no = |what: String| Err(NetlabError::Unsupported(what));
    if !spec.faults.is_empty() {
        return no(format!(
            "the world schedules {} fault(s) (crashes, partitions, impairments): the lab runs calm worlds only",
            spec.faults.len()
        ));
    }
    if spec.attacker || spec.canary_planted() {
        return no("the attacker and the canary exist only in the simulation".to_owned());
    }
    for e in &spec.enterprises {
        if let Some(s) = &e.socks {
            super::socks::SocksPlan::new(s.ip, s.port, &s.policy)
                .map_err(|why| NetlabError::Unsupported(format!("{}: {why}", e.name)))?;
        }
        for c in &e.clients {
            script(&c.script)
                .map_err(|why| NetlabError::Unsupported(format!("client {}: {why}", c.name)))?;
        }
    }
    if spec.enterprises.iter().all(|e| e.clients.is_empty()) {
        return no("the world has no client".to_owned());
    }
    Ok(())
}

/// The setParameters texts of a script that sets parameters, joins and (maybe) leaves, as
/// `cloudproxy call` does.
fn script(script: &[(Duration, Op)]) -> Result<Vec<String>, String> {
    let mut params = Vec::new();
    let mut ops = script.iter().peekable();
    while let Some((_, Op::Set(text))) = ops.peek() {
        params.push(text.clone());
        ops.next();
    }
    if !matches!(ops.next(), Some((_, Op::Join))) {
        return Err("its script does not join after setting parameters".to_owned());
    }
    match ops.next() {
        None | Some((_, Op::Leave)) if ops.next().is_none() => Ok(params),
        _ => Err(
            "its script changes parameters or re-joins during the call: `call` cannot".to_owned(),
        ),
    }
}

/// Runs every client of `spec` on `lab` for `duration`, with `exe` as the `cloudproxy` binary;
/// the calls' reports and the firewalls' counters. A service (`serve`, `edge`, a resolver)
/// that dies during the run fails it, naming the service.
pub async fn run_world(
    lab: &mut Lab,
    exe: &Path,
    spec: &WorldSpec,
    duration: Duration,
) -> Result<RealOutcome, NetlabError> {
    supported(spec)?;
    let started = Instant::now();
    let mut calls: Vec<(String, RealClient, Proc)> = Vec::new();
    for (i, e) in spec.enterprises.iter().enumerate() {
        let k = i + 1;
        let ns = lab.names.enterprise(&lab.plan.enterprises[i].slug);
        for c in &e.clients {
            let params = script(&c.script).map_err(NetlabError::Unsupported)?;
            let params: Vec<String> = params.iter().map(|p| lab.mapping.text(p)).collect();
            let args = call_args(c, k, duration, &params);
            let proc = lab.spawn(&ns, &format!("call {}", c.name), exe, &args, false)?;
            let client = RealClient {
                enterprise: k,
                uid: c.uid,
                channel: c.channel.clone(),
                json: Value::Null,
            };
            calls.push((c.name.clone(), client, proc));
        }
    }
    wait_for_calls(lab, &mut calls, duration).await?;
    let mut outcome = RealOutcome {
        wall: started.elapsed(),
        ..RealOutcome::default()
    };
    for (name, mut client, mut proc) in calls {
        let out = proc.finish(Duration::from_secs(1)).await?;
        client.json = out
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .ok_or_else(|| {
                NetlabError::Process(format!(
                    "call {name} printed no report: {}",
                    proc.log_tail()
                ))
            })?;
        outcome.clients.insert(name, client);
    }
    for k in 1..=spec.enterprises.len() {
        let (json, counters) = lab.counters(k).await?;
        outcome.rulesets.push(json);
        outcome.counters.push(counters);
    }
    Ok(outcome)
}

/// The arguments of `cloudproxy call` for client `c` of enterprise `k` (its address, its
/// resolver), calling for `duration` with `params` (already in the lab's addresses).
fn call_args(c: &ClientSpec, k: usize, duration: Duration, params: &[String]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "call".into(),
        "--json".into(),
        "--name".into(),
        c.name.clone(),
        "--uid".into(),
        c.uid.to_string(),
        "--channel".into(),
        c.channel.clone(),
        "--app-id".into(),
        c.app_id.clone(),
        "--bind".into(),
        map::clients(k).to_string(),
        "--edge".into(),
        map::EDGE.to_string(),
        "--resolver".into(),
        format!("{}:53", map::resolver(k)),
        "--for".into(),
        format!("{:.3}", duration.as_secs_f64()),
        "--seed".into(),
        c.seed.to_string(),
        "--pps".into(),
        c.media_pps.to_string(),
        "--log-level".into(),
        "warn".into(),
    ];
    if c.compat {
        args.push("--compat".into());
    }
    if !params.is_empty() {
        args.push("--params".into());
        args.extend(params.iter().cloned());
    }
    args
}

/// Waits until every call has exited; a service that dies meanwhile, or a call still running
/// past `duration` and its slack, fails the run naming it.
async fn wait_for_calls(
    lab: &mut Lab,
    calls: &mut [(String, RealClient, Proc)],
    duration: Duration,
) -> Result<(), NetlabError> {
    let deadline = Instant::now() + duration + CALL_SLACK;
    loop {
        if let Some(dead) = lab.dead_service() {
            return Err(NetlabError::Process(dead));
        }
        if calls.iter_mut().all(|(_, _, p)| p.exited()) {
            break;
        }
        if Instant::now() >= deadline {
            let late: Vec<&str> = calls
                .iter_mut()
                .filter_map(|(n, _, p)| (!p.exited()).then_some(n.as_str()))
                .collect();
            return Err(NetlabError::Process(format!(
                "call(s) {} did not finish within {:?}",
                late.join(", "),
                duration + CALL_SLACK
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudproxy_sim::scenario::find;

    #[test]
    fn the_calm_scenarios_run_and_the_others_say_why_not() {
        for name in [
            "direct-blocked",
            "direct-open",
            "proxy-default",
            "proxy-ip-list",
            "udp-blocked",
            "socks5",
            "socks5-no-udp",
        ] {
            let spec = find(name).unwrap().world(1);
            assert!(supported(&spec).is_ok(), "{name}: {:?}", supported(&spec));
        }
        for (name, why) in [
            ("ap-failover", "fault"),
            ("relay-crash", "fault"),
            ("in-channel-change", "changes parameters"),
            ("open-relay-attack", "attacker"),
        ] {
            let spec = find(name).unwrap().world(1);
            let err = supported(&spec).unwrap_err().to_string();
            assert!(err.contains(why), "{name}: {err}");
        }
    }

    #[test]
    fn a_call_binds_its_enterprise_address_uses_its_resolver_and_takes_the_params() {
        let spec = find("proxy-default").unwrap().world(1);
        let c = &spec.enterprises[0].clients[0];
        let params = ["{\"rtc.enable_proxy\":true}".to_owned()];
        let args = call_args(c, 1, Duration::from_millis(2500), &params);
        let after = |flag: &str| {
            let i = args
                .iter()
                .position(|a| a == flag)
                .unwrap_or_else(|| panic!("{flag}"));
            args[i + 1].clone()
        };
        assert_eq!(args[..2], ["call", "--json"]);
        assert_eq!(after("--name"), c.name);
        assert_eq!(after("--bind"), map::clients(1).to_string());
        assert_eq!(after("--resolver"), format!("{}:53", map::resolver(1)));
        assert_eq!(after("--for"), "2.500");
        assert_eq!(after("--params"), params[0]);
        assert_eq!(args.last(), Some(&params[0]));
        let none = call_args(c, 2, Duration::from_secs(3), &[]);
        assert!(!none.iter().any(|a| a == "--params"));
        assert!(none.contains(&map::clients(2).to_string()));
    }
}
