//! UDP media, closed-loop echo: 1 200-byte payloads, 64 outstanding, one flow, through the real
//! `serve` (a session opened through the access point; `MediaData` frames to its UDP port,
//! relayed to the UDP echo in SD-RTN and back) against a direct flow, a naive tokio
//! `recv_from`/`send_to` relay and a `recvmmsg`/`sendmmsg` relay, in one criterion group, each
//! relay a child process (`bench_relay`), the same client loop for all. Throughput: datagrams
//! echoed (one element per round trip).
//!
//! Run: `cargo bench -p cloudproxy-benches --bench relay_udp`

use std::time::Duration;

use cloudproxy_benches::drive::{echo_window, Client, Flow};
use cloudproxy_benches::world::{self, Baseline};
use criterion::{Criterion, Throughput};

const PAYLOAD: usize = 1200;
const WINDOW: u64 = 64;

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let bin = env!("CARGO_BIN_EXE_bench_relay");
    let up = world::upstream();
    let serve = world::start_serve(bin, 90, None);
    let (naive, naive_at) = world::start_baseline(bin, Baseline::UdpNaive, 6003, up.addrs.udp_echo);
    let (mmsg, mmsg_at) = world::start_baseline(bin, Baseline::UdpMmsg, 6003, up.addrs.udp_echo);
    let client = Client::new();
    let ip = world::client_ip(0);
    let flows = client.run(async {
        vec![
            (
                "direct",
                Flow::raw(ip, up.addrs.udp_echo, PAYLOAD)
                    .await
                    .expect("direct"),
            ),
            (
                "naive",
                Flow::raw(ip, naive_at, PAYLOAD).await.expect("naive"),
            ),
            ("mmsg", Flow::raw(ip, mmsg_at, PAYLOAD).await.expect("mmsg")),
            (
                "serve",
                Flow::through_serve(
                    serve.ap,
                    ip,
                    1,
                    up.addrs.tcp_echo,
                    up.addrs.udp_echo,
                    PAYLOAD,
                )
                .await
                .expect("a media session through serve"),
            ),
        ]
    });
    let mut group = c.benchmark_group("udp_echo_1200B_w64");
    group.throughput(Throughput::Elements(1));
    for (name, flow) in &flows {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let (elapsed, _lost) =
                    client
                        .run(echo_window(flow, iters, WINDOW))
                        .unwrap_or_else(|e| {
                            panic!(
                                "FAILED udp_echo/{name}: {e}; serve logged {:?}",
                                serve.proc.close_reasons()
                            )
                        });
                elapsed
            })
        });
    }
    group.finish();
    c.final_summary();
    drop((naive, mmsg, flows));
}
