//! TCP tunnels as fast as the sender can, one direction (to the sink) and both at once (to the
//! echo): the real `serve` (AP request, ticket, `TunnelOpen`, raw bytes) against a direct
//! connection, tokio `copy_bidirectional` relays with 8 KiB and 64 KiB buffers and a
//! `splice(2)` relay, all in one criterion group per case, each relay a child process
//! (`bench_relay`), the same client code for all. Throughput is declared in bytes (both
//! directions count in `tcp_both_ways`).
//!
//! Before criterion measures `serve`, one probe transfer checks that its tunnel survives an
//! unpaced sender. A cut tunnel is never measured as a small number: the case is recorded as
//! failed with the reason the relay logged (`target/bench-results/relay_tcp.json`), printed,
//! and the bench exits with status 1 after the other cases ran.
//!
//! Run: `cargo bench -p cloudproxy-benches --bench relay_tcp`
// Measures or bounds its waits on the wall clock (clippy.toml disallows the system clocks
// for the simulation's sake).
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cloudproxy_benches::drive::{self, Client, Tunnel, CHUNK};
use cloudproxy_benches::procs::RelayProc;
use cloudproxy_benches::results::{write_results, Figure};
use cloudproxy_benches::world::{self, Baseline};
use criterion::{Criterion, Throughput};

/// Bytes per iteration.
const PER_ITER: u64 = 16 << 20;
/// The probe transfer that decides whether `serve` can be measured.
const PROBE: u64 = 256 << 20;

fn transfer(
    client: &Client,
    t: &mut Tunnel,
    both: bool,
    len: u64,
    chunk: &[u8],
) -> Result<(), String> {
    client.run(async {
        if both {
            drive::echo(t, len, chunk).await
        } else {
            drive::sink(t, len, chunk).await
        }
    })
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let bin = env!("CARGO_BIN_EXE_bench_relay");
    let up = world::upstream();
    let serve = world::start_serve(bin, 90, None);
    let client = Client::new();
    let chunk = vec![0x5au8; CHUNK];
    let mut failures = Vec::new();
    for (group_name, dest, port, both) in [
        ("tcp_one_way", up.addrs.tcp_sink, 6001, false),
        ("tcp_both_ways", up.addrs.tcp_echo, 6002, true),
    ] {
        let mut relays: Vec<(RelayProc, SocketAddr, &str)> = Vec::new();
        for (b, name) in [
            (Baseline::Copy8k, "copy_8k"),
            (Baseline::Copy64k, "copy_64k"),
            (Baseline::Splice, "splice"),
        ] {
            let (proc, at) = world::start_baseline(bin, b, port, dest);
            relays.push((proc, at, name));
        }
        let mut tunnels: Vec<(&str, Tunnel)> = Vec::new();
        let ip = world::client_ip(0);
        tunnels.push((
            "direct",
            client.run(Tunnel::connect(ip, dest)).expect("direct"),
        ));
        for (_, at, name) in &relays {
            tunnels.push((
                name,
                client.run(Tunnel::connect(ip, *at)).expect("baseline"),
            ));
        }
        let id = if both { 2 } else { 1 };
        let mut s = client
            .run(Tunnel::through_serve(serve.ap, ip, id, dest))
            .expect("a tunnel through serve");
        let probe_start = Instant::now();
        match transfer(&client, &mut s, both, PROBE, &chunk) {
            Ok(()) => tunnels.push(("serve", s)),
            Err(e) => {
                let after = probe_start.elapsed();
                std::thread::sleep(Duration::from_millis(200));
                let why = format!(
                    "{e}, {} ms after the first byte; serve has logged session_closed (reason, count) so far: {:?}",
                    after.as_millis(),
                    serve.proc.close_reasons()
                );
                eprintln!("\nFAILED {group_name}/serve: the tunnel through serve was cut by an unpaced sender within a {PROBE}-byte probe: {why}\n");
                failures.push(Figure {
                    id: format!("{group_name}/serve"),
                    value: None,
                    unit: "ns/iter".into(),
                    failed: Some(why),
                });
            }
        }
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Bytes(if both {
            2 * PER_ITER
        } else {
            PER_ITER
        }));
        for (name, t) in &mut tunnels {
            let name = *name;
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        if let Err(e) = transfer(&client, t, both, PER_ITER, &chunk) {
                            let why = format!("{e}; serve has logged session_closed (reason, count) so far: {:?}", serve.proc.close_reasons());
                            write_results("relay_tcp", &[Figure { id: format!("{group_name}/{name}"), value: None, unit: "ns/iter".into(), failed: Some(why.clone()) }]);
                            panic!("FAILED {group_name}/{name}: the tunnel was cut while measured: {why}");
                        }
                    }
                    start.elapsed()
                })
            });
        }
        group.finish();
    }
    write_results("relay_tcp", &failures);
    c.final_summary();
    drop(up);
    if !failures.is_empty() {
        eprintln!("relay_tcp: {} case(s) FAILED (see above)", failures.len());
        std::process::exit(1);
    }
}
