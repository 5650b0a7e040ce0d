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
use cloudproxy_load::{Fleet, LoadOptions, Target};

const TUNNELS: u32 = 1_000;
const MEDIA_SESSIONS: u32 = 10_000;

fn settle() {
    std::thread::sleep(Duration::from_secs(1));
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

    // Step 1: the idle tunnels, on a serve of their own.
    let serve = world::start_serve(bin, 90, None);
    let pid = serve.proc.pid();
    settle();
    let (rss0, fds0) = (rss_bytes(pid), open_fds(pid));
    let tunnels = client.run(async {
        let mut held = Vec::new();
        for i in 0..TUNNELS {
            let ip = IpAddr::V4(Ipv4Addr::from(
                u32::from(Ipv4Addr::new(127, 93, 0, 1)) + i / 16,
            ));
            held.push(
                open_session(
                    &[serve.ap],
                    ip,
                    "cloudproxy-bench",
                    i + 1,
                    up.addrs.tcp_echo,
                )
                .await
                .expect("an idle tunnel"),
            );
        }
        held
    });
    settle();
    let (rss1, fds1) = (rss_bytes(pid), open_fds(pid));
    drop(tunnels);
    drop(serve);

    // Step 2: the idle media sessions, on a fresh serve, as many as its descriptors allow.
    let serve = world::start_serve(bin, 90, None);
    let pid = serve.proc.pid();
    settle();
    let (rss_m0, fds_m0) = (rss_bytes(pid), open_fds(pid));
    // A media session is a tunnel plus its UDP socket.
    // Rounded: the pool's few spare pipes are shared, not per tunnel (the 500 kept below
    // cover them).
    let per_tunnel_fds = (fds1.saturating_sub(fds0) as f64 / f64::from(TUNNELS)).round() as u64;
    let per_media_fds = per_tunnel_fds + 1;
    let room = limit.saturating_sub(fds_m0 + 500);
    let media = MEDIA_SESSIONS.min((room / per_media_fds.max(1)) as u32);
    if media < MEDIA_SESSIONS {
        println!(
            "memory: serve's descriptor limit is {limit} and a media session holds {per_media_fds} descriptors: measuring {media} media sessions, not {MEDIA_SESSIONS} (needs {} descriptors)",
            u64::from(MEDIA_SESSIONS) * per_media_fds + fds_m0
        );
    }
    let fleet = client.run(async {
        let options = LoadOptions {
            aps: vec![serve.ap],
            target: Target::Echo(up.addrs),
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
    let (rss2, fds2) = (rss_bytes(pid), open_fds(pid));
    let opened = fleet.opened() as u64;
    assert_eq!(
        opened,
        u64::from(media),
        "every media session opened (serve logged {:?})",
        serve.proc.close_reasons()
    );
    let rss1_media = rss_m0;
    let fds1_media = fds_m0;
    let per = |a: u64, b: u64, n: u64| (b.saturating_sub(a)) as f64 / n as f64;
    let figures = vec![
        fig(
            "memory/tunnel_bytes",
            per(rss0, rss1, TUNNELS.into()),
            "bytes RSS per idle tunnel",
        ),
        fig(
            "memory/tunnel_fds",
            per(fds0, fds1, TUNNELS.into()),
            "descriptors per idle tunnel",
        ),
        fig(
            "memory/media_session_bytes",
            per(rss1_media, rss2, opened),
            "bytes RSS per idle media session",
        ),
        fig(
            "memory/media_session_fds",
            per(fds1_media, fds2, opened),
            "descriptors per idle media session",
        ),
        fig(
            "memory/serve_rss_bytes",
            rss2 as f64,
            "bytes RSS of serve at the end",
        ),
    ];
    write_results("memory", &figures);
    println!("memory: one serve (pid {pid}), descriptor limit {limit}");
    println!(
        "  at start                          RSS {:>8.1} MiB  fds {fds0}",
        rss0 as f64 / 1048576.0
    );
    println!(
        "  + {TUNNELS} idle tunnels            RSS {:>8.1} MiB  fds {fds1}",
        rss1 as f64 / 1048576.0
    );
    println!(
        "  a fresh serve                     RSS {:>8.1} MiB  fds {fds_m0}",
        rss_m0 as f64 / 1048576.0
    );
    println!(
        "  + {opened} idle media sessions    RSS {:>8.1} MiB  fds {fds2}",
        rss2 as f64 / 1048576.0
    );
    println!(
        "  per idle tunnel:        {:>6.1} KiB RSS, {:.2} descriptors",
        per(rss0, rss1, TUNNELS.into()) / 1024.0,
        per(fds0, fds1, TUNNELS.into())
    );
    println!(
        "  per idle media session: {:>6.1} KiB RSS, {:.2} descriptors (tunnel included)",
        per(rss1_media, rss2, opened) / 1024.0,
        per(fds1_media, fds2, opened)
    );
    drop(fleet);
}

fn fig(id: &str, value: f64, unit: &str) -> Figure {
    Figure {
        id: id.into(),
        value: Some(value),
        unit: unit.into(),
        failed: None,
    }
}
