//! Memory at scale: one `serve` (a child process) holds 1,000 idle tunnels, then 10,000 idle
//! media sessions (each a tunnel plus its UDP allocation, opened with the load generator and
//! one hello each); prints resident memory (`VmRSS`) and descriptors per tunnel and per media
//! session, measured as the growth of the process over each step, and writes them to
//! `target/bench-results/memory.json`.
//!
//! Not part of `cargo test` (a benchmark target that only runs under `cargo bench`):
//!
//! `cargo bench -p cloudproxy-benches --bench memory`
//!
//! The tunnels and the media sessions are measured on two `serve`s, one after the other (the
//! media sessions on a fresh one), so that each step has the whole descriptor limit. An idle
//! media session holds 3 descriptors in `serve`, the fewest the protocol allows (the client's
//! tunnel connection, its upstream connection, the session's upstream UDP socket; an idle
//! spliced tunnel holds no pipe): 10,000 media sessions need about 30,000, beyond a hard limit
//! of 20,000. This raises its own limit (and so its children's) when it may
//! (`CAP_SYS_RESOURCE`), else it opens as many media sessions as the limit allows (the
//! descriptors per tunnel, measured in the first step, plus one) and says so. `serve` raises
//! its soft limit to the hard one by itself at start-up. The load side holds 2 descriptors a
//! session (its tunnel connection and its UDP socket), within this process's own limit.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use cloudproxy_benches::drive::Client;
use cloudproxy_benches::procs::{open_fds, raise_fd_limit, rss_bytes};
use cloudproxy_benches::results::{write_results, Figure};
use cloudproxy_benches::world;
use cloudproxy_load::session::open_session;
use cloudproxy_load::upstream::UpstreamAddrs;
use cloudproxy_load::{Fleet, LoadOptions, Target};

const TUNNELS: u32 = 1_000;
const MEDIA_SESSIONS: u32 = 10_000;

fn settle() {
    std::thread::sleep(Duration::from_secs(1));
}

/// A process's resident memory and open descriptors at one moment.
#[derive(Clone, Copy)]
struct Reading {
    rss: u64,
    fds: u64,
}

impl Reading {
    /// `pid`'s reading now.
    fn of(pid: u32) -> Reading {
        Reading {
            rss: rss_bytes(pid),
            fds: open_fds(pid),
        }
    }
}

/// One step: a fresh `serve`'s reading before the idle load and after it, with `n` held.
struct Step {
    pid: u32,
    before: Reading,
    after: Reading,
    n: u64,
}

impl Step {
    /// Growth of resident memory per held item, bytes.
    fn rss_per(&self) -> f64 {
        self.after.rss.saturating_sub(self.before.rss) as f64 / self.n as f64
    }

    /// Growth of open descriptors per held item.
    fn fds_per(&self) -> f64 {
        self.after.fds.saturating_sub(self.before.fds) as f64 / self.n as f64
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("memory: run with `cargo bench -p cloudproxy-benches --bench memory` (skipped under `cargo test`)");
        return;
    }
    let limit = raise_fd_limit(100_000);
    let bin = env!("CARGO_BIN_EXE_bench_relay");
    let up = world::upstream();
    let client = Client::new();
    let tunnels = idle_tunnels(&client, bin, up.addrs);
    let media = idle_media_sessions(&client, bin, up.addrs, limit, &tunnels);
    write_results("memory", &figures(&tunnels, &media));
    print_summary(limit, &tunnels, &media);
}

/// Step 1: [`TUNNELS`] idle tunnels to the TCP echo, on a `serve` of their own.
fn idle_tunnels(client: &Client, bin: &str, up: UpstreamAddrs) -> Step {
    let serve = world::start_serve(bin, 90, None);
    let pid = serve.proc.pid();
    settle();
    let before = Reading::of(pid);
    let tunnels = client.run(async {
        let mut held = Vec::new();
        for i in 0..TUNNELS {
            let ip = IpAddr::V4(Ipv4Addr::from(
                u32::from(Ipv4Addr::new(127, 93, 0, 1)) + i / 16,
            ));
            held.push(
                open_session(&[serve.ap], ip, "cloudproxy-bench", i + 1, up.tcp_echo)
                    .await
                    .expect("an idle tunnel"),
            );
        }
        held
    });
    settle();
    let after = Reading::of(pid);
    drop(tunnels);
    Step {
        pid,
        before,
        after,
        n: TUNNELS.into(),
    }
}

/// How many media sessions a `serve` holding `fds_at_start` descriptors can open under
/// `limit`, a media session being a tunnel (`per_tunnel_fds`) plus its UDP socket, 500
/// descriptors kept spare; at most [`MEDIA_SESSIONS`]. Says so when it is fewer.
fn media_sessions_that_fit(limit: u64, fds_at_start: u64, per_tunnel_fds: u64) -> u32 {
    let per_media_fds = per_tunnel_fds + 1;
    let room = limit.saturating_sub(fds_at_start + 500);
    let media = MEDIA_SESSIONS.min((room / per_media_fds.max(1)) as u32);
    if media < MEDIA_SESSIONS {
        println!(
            "memory: serve's descriptor limit is {limit} and a media session holds {per_media_fds} descriptors: measuring {media} media sessions, not {MEDIA_SESSIONS} (needs {} descriptors)",
            u64::from(MEDIA_SESSIONS) * per_media_fds + fds_at_start
        );
    }
    media
}

/// Step 2: idle media sessions (the load generator, one hello each) on a fresh `serve`, as
/// many as its descriptors allow given what a tunnel held in step 1.
fn idle_media_sessions(
    client: &Client,
    bin: &str,
    up: UpstreamAddrs,
    limit: u64,
    tunnels: &Step,
) -> Step {
    let serve = world::start_serve(bin, 90, None);
    let pid = serve.proc.pid();
    settle();
    let before = Reading::of(pid);
    // Rounded: the pool's few spare pipes are shared, not per tunnel (the 500 kept spare
    // cover them).
    let per_tunnel_fds = tunnels.fds_per().round() as u64;
    let media = media_sessions_that_fit(limit, before.fds, per_tunnel_fds);
    let fleet = client.run(async {
        let options = LoadOptions {
            aps: vec![serve.ap],
            target: Target::Echo(up),
            clients: media,
            pps: 0,
            payload_bytes: 64,
            duration: Duration::from_secs(1),
            bind: Ipv4Addr::new(127, 94, 0, 1),
            sessions_per_ip: 16,
            open_concurrency: 128,
            ..LoadOptions::default()
        };
        Fleet::open(&options).await.expect("idle media sessions")
    });
    settle();
    let after = Reading::of(pid);
    let opened = fleet.opened() as u64;
    assert_eq!(
        opened,
        u64::from(media),
        "every media session opened (serve logged {:?})",
        serve.proc.close_reasons()
    );
    drop(fleet);
    Step {
        pid,
        before,
        after,
        n: opened,
    }
}

/// The figures written to `target/bench-results/memory.json`.
fn figures(tunnels: &Step, media: &Step) -> Vec<Figure> {
    vec![
        fig(
            "memory/tunnel_bytes",
            tunnels.rss_per(),
            "bytes RSS per idle tunnel",
        ),
        fig(
            "memory/tunnel_fds",
            tunnels.fds_per(),
            "descriptors per idle tunnel",
        ),
        fig(
            "memory/media_session_bytes",
            media.rss_per(),
            "bytes RSS per idle media session",
        ),
        fig(
            "memory/media_session_fds",
            media.fds_per(),
            "descriptors per idle media session",
        ),
        fig(
            "memory/serve_rss_bytes",
            media.after.rss as f64,
            "bytes RSS of serve at the end",
        ),
    ]
}

/// The readings and the figures per tunnel and per media session, for a person.
fn print_summary(limit: u64, tunnels: &Step, media: &Step) {
    let mib = |r: &Reading| r.rss as f64 / 1048576.0;
    println!(
        "memory: one serve (pid {}), descriptor limit {limit}",
        media.pid
    );
    println!(
        "  at start                          RSS {:>8.1} MiB  fds {}",
        mib(&tunnels.before),
        tunnels.before.fds
    );
    println!(
        "  + {TUNNELS} idle tunnels            RSS {:>8.1} MiB  fds {}",
        mib(&tunnels.after),
        tunnels.after.fds
    );
    println!(
        "  a fresh serve                     RSS {:>8.1} MiB  fds {}",
        mib(&media.before),
        media.before.fds
    );
    println!(
        "  + {} idle media sessions    RSS {:>8.1} MiB  fds {}",
        media.n,
        mib(&media.after),
        media.after.fds
    );
    println!(
        "  per idle tunnel:        {:>6.1} KiB RSS, {:.2} descriptors",
        tunnels.rss_per() / 1024.0,
        tunnels.fds_per()
    );
    println!(
        "  per idle media session: {:>6.1} KiB RSS, {:.2} descriptors (tunnel included)",
        media.rss_per() / 1024.0,
        media.fds_per()
    );
}

fn fig(id: &str, value: f64, unit: &str) -> Figure {
    Figure {
        id: id.into(),
        value: Some(value),
        unit: unit.into(),
        failed: None,
    }
}
