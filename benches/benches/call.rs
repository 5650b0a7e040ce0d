//! A two-party call through the real `serve` against the same call straight to the edge, in
//! the same run (`cloudproxy_benches::call` says what each party sends and how it is read).
//!
//! Two parts:
//!
//! - **criterion**, group `call_signalling_rtt`: one signalling message and its ack per
//!   iteration (closed loop, nothing else on the path), `direct` and `serve`;
//!   `Throughput::Elements(1)` (round trips). The median time per iteration is the round trip.
//! - **interleaved rounds** (our own reporting path, `target/bench-results/call.json`): a call
//!   of fixed length, both parties sending media at 50 packets/s of 1 012 bytes and one
//!   signalling message every 20 ms each, direct and through `serve` alternating within every
//!   round; the medians over rounds of the RFC 3550 jitter, the one-way media transit (p50,
//!   p99) and the signalling round trip under media (p50, p99). Criterion does not fit these:
//!   a call's wall time is set by its pace, and what is measured is a distribution's spread
//!   (jitter, p99), not a time per iteration.
//!
//! `CLOUDPROXY_BENCH_QUICK=1` runs 3 rounds of 3 s instead of 5 of 10 s.
//!
//! Run: `cargo bench -p cloudproxy-benches --bench call`

use std::time::Duration;

use cloudproxy_benches::call::{self, CallStats, Party, Via};
use cloudproxy_benches::drive::Client;
use cloudproxy_benches::results::{write_results, Figure};
use cloudproxy_benches::world;
use criterion::{Criterion, Throughput};

const PPS: u32 = 50;
const SIGNAL_EVERY: Duration = Duration::from_millis(20);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let quick = std::env::var_os("CLOUDPROXY_BENCH_QUICK").is_some();
    let (rounds, secs) = if quick { (3, 3) } else { (5, 10) };
    let bin = env!("CARGO_BIN_EXE_bench_relay");
    let edge = call::start_edge();
    let serve = world::start_serve(bin, 90, None);
    let client = Client::new();
    let open = |via: Via, first: u32, channel: &str| -> (Party, Party) {
        let fail = |e: String| -> ! {
            panic!(
                "FAILED call/{channel}: {e}; serve logged session_closed {:?}",
                serve.proc.close_reasons()
            )
        };
        client.run(async {
            let a = Party::open(via, world::client_ip(first), first + 1, channel, edge).await;
            let b = Party::open(via, world::client_ip(first + 16), first + 2, channel, edge).await;
            (a.unwrap_or_else(|e| fail(e)), b.unwrap_or_else(|e| fail(e)))
        })
    };
    let mut paths = vec![
        ("direct", open(Via::Direct, 0, "direct")),
        ("serve", open(Via::Serve(serve.ap), 32, "serve")),
    ];
    let mut group = c.benchmark_group("call_signalling_rtt");
    group.throughput(Throughput::Elements(1));
    for (name, (a, _)) in &mut paths {
        group.bench_function(*name, |bench| {
            bench.iter_custom(|iters| {
                client.run(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += a
                            .signal()
                            .await
                            .unwrap_or_else(|e| panic!("FAILED call_signalling_rtt/{name}: {e}"));
                    }
                    total
                })
            })
        });
    }
    group.finish();
    c.final_summary();
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test` runs each bench once as a smoke test: the rounds are for `cargo bench`.
        return;
    }
    let figures = rounds_of_calls(&client, &mut paths, rounds, secs);
    write_results("call", &figures);
    println!("\ncall (median of {rounds} rounds of {secs} s, {PPS} pps each way):");
    for f in &figures {
        match (&f.value, &f.failed) {
            (Some(v), _) => println!("  {:<32} {:>12.1} {}", f.id, v, f.unit),
            (None, Some(why)) => println!("  {:<32} FAILED: {why}", f.id),
            _ => {}
        }
    }
    if figures.iter().any(|f| f.failed.is_some()) {
        std::process::exit(1);
    }
}

/// How a figure is read off a call.
type Read = fn(&CallStats) -> f64;

/// The figures of one path: id suffix, unit, and how each is read off a call.
const MEASURES: &[(&str, &str, Read)] = &[
    ("jitter_us", "us (RFC 3550 interarrival jitter)", |s| {
        s.jitter_us
    }),
    ("transit_p50_us", "us (one-way media transit, p50)", |s| {
        s.transit_us.0 as f64
    }),
    ("transit_p99_us", "us (one-way media transit, p99)", |s| {
        s.transit_us.1 as f64
    }),
    (
        "rtt_p50_us",
        "us (signalling round trip under media, p50)",
        |s| s.rtt_us.0 as f64,
    ),
    (
        "rtt_p99_us",
        "us (signalling round trip under media, p99)",
        |s| s.rtt_us.1 as f64,
    ),
];

fn rounds_of_calls(
    client: &Client,
    paths: &mut [(&str, (Party, Party))],
    rounds: usize,
    secs: u64,
) -> Vec<Figure> {
    let mut per: Vec<Vec<CallStats>> = vec![Vec::new(); paths.len()];
    let mut failed: Vec<Option<String>> = vec![None; paths.len()];
    for _ in 0..rounds {
        for (i, (name, (a, b))) in paths.iter_mut().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            let got = client.run(call::call(
                a,
                b,
                Duration::from_secs(secs),
                PPS,
                SIGNAL_EVERY,
            ));
            match got {
                Ok(stats) if stats.media_received * 10 >= stats.media_sent * 9 => {
                    per[i].push(stats)
                }
                Ok(stats) => {
                    let why = format!(
                        "only {} of {} media packets arrived",
                        stats.media_received, stats.media_sent
                    );
                    eprintln!("FAILED call_media/{name}: {why}");
                    failed[i] = Some(why);
                }
                Err(e) => {
                    eprintln!("FAILED call_media/{name}: {e}");
                    failed[i] = Some(e);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (i, (name, _)) in paths.iter().enumerate() {
        for (what, unit, read) in MEASURES {
            out.push(Figure {
                id: format!("call_media/{name}_{what}"),
                value: failed[i]
                    .is_none()
                    .then(|| median(per[i].iter().map(read).collect())),
                unit: (*unit).into(),
                failed: failed[i].clone(),
            });
        }
    }
    out
}
