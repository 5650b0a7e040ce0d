//! Relay CPU, interleaved rounds, on our own reporting path (not criterion).
//!
//! Why not criterion: criterion times an iteration and then chooses how many iterations fill
//! its measurement time. Here what is measured is the *relay's* CPU (the child process's own
//! accounting, `clock_getcpuclockid`), at a load fixed in advance (paced bytes, a datagram
//! rate), so the wall time of a sample is set by the pace, not by what is measured: fed CPU
//! seconds, criterion would stretch a run by the inverse of the relay's utilisation (20x for an
//! idle `splice` relay), and fed wall time it would measure the pace. So each case runs
//! `ROUNDS` rounds of a fixed duration, the subject and its baselines interleaved within every
//! round (so that drift on a shared machine hits all alike), and the median over rounds is
//! written to `target/bench-results/relay_cpu.json`, where `bench_report` reads it beside
//! criterion's figures.
//!
//! Cases:
//!
//! - `tcp_paced_cpu`: one tunnel paced at 1 Gbit/s to the sink through each TCP relay: bytes
//!   per relay CPU-second (serve, tokio copy 8 KiB and 64 KiB, splice);
//! - `flows64_cpu`: 64 UDP flows x 50 packets/s of 1 200 bytes to the echo: relay CPU per
//!   datagram relayed (each direction counts), serve against the naive and mmsg relays;
//! - `idle5000_cpu`: the same 64 flows on a fresh `serve` and on one that holds 5,000 idle
//!   media sessions (opened with the load generator, each with its UDP allocation), or as many
//!   as the descriptor limit allows at 3 descriptors a session (all 5,000 under a hard limit of
//!   20,000), the number held written as `idle5000_cpu/held_sessions`.
//!
//! `CLOUDPROXY_BENCH_QUICK=1` runs 3 rounds of 1 s (TCP) and 2 s (UDP) instead of 5 of 3 s.
//!
//! Run: `cargo bench -p cloudproxy-benches --bench relay_cpu`

use std::net::Ipv4Addr;
use std::time::Duration;

use cloudproxy_benches::drive::{paced_sink, run_flows, Client, Flow, Tunnel, CHUNK};
use cloudproxy_benches::procs::RelayProc;
use cloudproxy_benches::results::{write_results, Figure};
use cloudproxy_benches::world::{self, Baseline};
use cloudproxy_load::upstream::UpstreamAddrs;
use cloudproxy_load::{Fleet, LoadOptions, Target};

const RATE_BYTES_PER_SEC: f64 = 125e6;
const FLOWS: u32 = 64;
const PPS: u32 = 50;
const PAYLOAD: usize = 1200;
const IDLE_SESSIONS: u32 = 5_000;
/// Descriptors an idle media session holds in `serve` (client and upstream connections and
/// the UDP socket; an idle tunnel holds no pipe; `memory` measures it).
const FDS_PER_SESSION: u64 = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

struct Settings {
    rounds: usize,
    tcp_secs: f64,
    udp_secs: f64,
}

fn settings() -> Settings {
    if std::env::var_os("CLOUDPROXY_BENCH_QUICK").is_some() {
        Settings {
            rounds: 3,
            tcp_secs: 1.0,
            udp_secs: 2.0,
        }
    } else {
        Settings {
            rounds: 5,
            tcp_secs: 3.0,
            udp_secs: 3.0,
        }
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("relay_cpu: run with `cargo bench` (skipped under `cargo test`)");
        return;
    }
    let s = settings();
    let limit = world_raise_limits();
    let bin = env!("CARGO_BIN_EXE_bench_relay");
    let up = world::upstream();
    let client = Client::new();
    let mut figures = Vec::new();
    tcp_paced(bin, &up.addrs, &client, &s, &mut figures);
    flows(
        bin,
        &up.addrs,
        &client,
        &s,
        idle_sessions(limit),
        &mut figures,
    );
    write_results("relay_cpu", &figures);
    println!("\nrelay_cpu (median of {} rounds):", s.rounds);
    for f in &figures {
        match (&f.value, &f.failed) {
            (Some(v), _) => println!("  {:<28} {:>14.1} {}", f.id, v, f.unit),
            (None, Some(why)) => println!("  {:<28} FAILED: {why}", f.id),
            _ => {}
        }
    }
    if figures.iter().any(|f| f.failed.is_some()) {
        std::process::exit(1);
    }
}

fn world_raise_limits() -> u64 {
    cloudproxy_benches::procs::raise_fd_limit(65_536)
}

/// How many idle sessions the loaded `serve` can hold beside the 64 flows: [`IDLE_SESSIONS`],
/// or fewer when its descriptor limit (inherited from here) is lower.
fn idle_sessions(limit: u64) -> u32 {
    let fit = limit.saturating_sub(1_000) / FDS_PER_SESSION;
    let idle = IDLE_SESSIONS.min(u32::try_from(fit).unwrap_or(u32::MAX));
    if idle < IDLE_SESSIONS {
        println!(
            "relay_cpu: the descriptor limit is {limit} and an idle session holds {FDS_PER_SESSION}: the loaded serve holds {idle} idle sessions, not {IDLE_SESSIONS}"
        );
    }
    idle
}

fn tcp_paced(bin: &str, up: &UpstreamAddrs, client: &Client, s: &Settings, out: &mut Vec<Figure>) {
    let serve = world::start_serve(bin, 90, None);
    let mut relays: Vec<(String, Option<RelayProc>, Tunnel)> = Vec::new();
    let ip = world::client_ip(0);
    for (b, name) in [
        (Baseline::Copy8k, "copy_8k"),
        (Baseline::Copy64k, "copy_64k"),
        (Baseline::Splice, "splice"),
    ] {
        let (proc, at) = world::start_baseline(bin, b, 6001, up.tcp_sink);
        let t = client.run(Tunnel::connect(ip, at)).expect("baseline");
        relays.push((name.into(), Some(proc), t));
    }
    let t = client
        .run(Tunnel::through_serve(serve.ap, ip, 1, up.tcp_sink))
        .expect("serve tunnel");
    relays.push(("serve".into(), None, t));
    let chunk = vec![0x5au8; CHUNK];
    let len = (RATE_BYTES_PER_SEC * s.tcp_secs) as u64;
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); relays.len()];
    let mut failed: Vec<Option<String>> = vec![None; relays.len()];
    for _ in 0..s.rounds {
        for (i, (name, proc, t)) in relays.iter_mut().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            let pid = proc.as_ref().map_or(serve.proc.pid(), RelayProc::pid);
            let before = cloudproxy_benches::procs::cpu_time(pid);
            match client.run(paced_sink(t, len, RATE_BYTES_PER_SEC, &chunk)) {
                Ok(()) => {
                    let cpu = cloudproxy_benches::procs::cpu_time(pid) - before;
                    per[i].push(len as f64 / cpu.as_secs_f64().max(1e-9));
                }
                Err(e) => {
                    std::thread::sleep(Duration::from_millis(200));
                    let why = format!(
                        "{e}; serve has logged session_closed (reason, count) so far: {:?}",
                        serve.proc.close_reasons()
                    );
                    eprintln!("FAILED tcp_paced_cpu/{name} at 1 Gbit/s: {why}");
                    failed[i] = Some(why);
                }
            }
        }
    }
    for (i, (name, _, _)) in relays.iter().enumerate() {
        out.push(Figure {
            id: format!("tcp_paced_cpu/{name}"),
            value: failed[i].is_none().then(|| median(per[i].clone())),
            unit: "bytes per relay CPU-second".into(),
            failed: failed[i].clone(),
        });
    }
}

/// Opens `FLOWS` media flows through a `serve` (clients from `first`).
fn serve_flows(
    client: &Client,
    ap: std::net::SocketAddr,
    up: &UpstreamAddrs,
    first: u32,
) -> Vec<Flow> {
    client.run(async {
        let mut flows = Vec::new();
        for i in 0..FLOWS {
            let ip = world::client_ip(first + i);
            flows.push(
                Flow::through_serve(ap, ip, first + i + 1, up.tcp_echo, up.udp_echo, PAYLOAD)
                    .await
                    .expect("a media session through serve"),
            );
        }
        flows
    })
}

fn raw_flows(client: &Client, to: std::net::SocketAddr, first: u32) -> Vec<Flow> {
    client.run(async {
        let mut flows = Vec::new();
        for i in 0..FLOWS {
            flows.push(
                Flow::raw(world::client_ip(first + i), to, PAYLOAD)
                    .await
                    .expect("a flow"),
            );
        }
        flows
    })
}

fn flows(
    bin: &str,
    up: &UpstreamAddrs,
    client: &Client,
    s: &Settings,
    idle_count: u32,
    out: &mut Vec<Figure>,
) {
    let fresh = world::start_serve(bin, 90, None);
    let sendmmsg = world::start_serve_sendmmsg(bin, 89);
    let loaded = world::start_serve(bin, 91, None);
    let (naive, naive_at) = world::start_baseline(bin, Baseline::UdpNaive, 6003, up.udp_echo);
    let (mmsg, mmsg_at) = world::start_baseline(bin, Baseline::UdpMmsg, 6003, up.udp_echo);
    // The idle sessions: opened with the load generator, one hello each (so each has its UDP
    // allocation), then left alone.
    let idle = client.run(async {
        let options = LoadOptions {
            aps: vec![loaded.ap],
            target: Target::Echo(*up),
            clients: idle_count,
            pps: 0,
            payload_bytes: 64,
            duration: Duration::from_secs(1),
            bind: Ipv4Addr::new(127, 92, 0, 1),
            sessions_per_ip: 16,
            open_concurrency: 128,
            ..LoadOptions::default()
        };
        Fleet::open(&options).await.expect("the idle sessions")
    });
    assert_eq!(
        idle.opened(),
        idle_count as usize,
        "every idle session opened"
    );
    let cases: Vec<(&str, u32, Vec<Flow>)> = vec![
        (
            "flows64_cpu/naive",
            naive.pid(),
            raw_flows(client, naive_at, 0),
        ),
        (
            "flows64_cpu/mmsg",
            mmsg.pid(),
            raw_flows(client, mmsg_at, 0),
        ),
        (
            "flows64_cpu/serve",
            fresh.proc.pid(),
            serve_flows(client, fresh.ap, up, 0),
        ),
        (
            "flows64_cpu/serve_sendmmsg",
            sendmmsg.proc.pid(),
            serve_flows(client, sendmmsg.ap, up, 200),
        ),
        (
            "idle5000_cpu/loaded",
            loaded.proc.pid(),
            serve_flows(client, loaded.ap, up, 100),
        ),
    ];
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..s.rounds {
        for (i, (_, pid, flows)) in cases.iter().enumerate() {
            let before = cloudproxy_benches::procs::cpu_time(*pid);
            let (sent, received) =
                client.run(run_flows(flows, PPS, Duration::from_secs_f64(s.udp_secs)));
            let cpu = cloudproxy_benches::procs::cpu_time(*pid) - before;
            per[i].push(cpu.as_nanos() as f64 / (sent + received).max(1) as f64);
        }
    }
    for (i, (id, _, _)) in cases.iter().enumerate() {
        let v = median(per[i].clone());
        out.push(Figure {
            id: (*id).into(),
            value: Some(v),
            unit: "relay CPU ns per datagram".into(),
            failed: None,
        });
        if *id == "flows64_cpu/serve" {
            out.push(Figure {
                id: "idle5000_cpu/fresh".into(),
                value: Some(v),
                unit: "relay CPU ns per datagram".into(),
                failed: None,
            });
        }
    }
    out.push(Figure {
        id: "idle5000_cpu/held_sessions".into(),
        value: Some(f64::from(idle_count)),
        unit: "idle media sessions held by the loaded serve".into(),
        failed: None,
    });
    drop((idle, naive, mmsg));
}
