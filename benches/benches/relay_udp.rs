//! UDP media, closed-loop echo: 1 200-byte payloads, 64 outstanding, one flow, through the real
//! `serve` (a session opened through the access point; `MediaData` frames to its UDP port,
//! relayed to the UDP echo in SD-RTN and back) against a direct flow, a naive tokio
//! `recv_from`/`send_to` relay and a `recvmmsg`/`sendmmsg` relay, in one criterion group, each
//! relay a child process (`bench_relay`), the same client loop for all. Throughput: datagrams
//! echoed (one element per round trip).
//!
//! Then the same echo with the client sending bursts of 16 in one segmented send (UDP GSO, as
//! a video sender does; group `udp_echo_1200B_w64_bursts16`): what `serve`'s UDP GRO buys.
//!
//! Then issue 12's "two workers vs one": 16 flows through `serve`, 4 datagrams outstanding
//! each, on a `serve` with one relay worker and on one with two (group `udp_flows16_workers`).
//!
//! Run: `cargo bench -p cloudproxy-benches --bench relay_udp`

use std::time::Duration;

use cloudproxy_benches::drive::{echo_bursts, echo_flows, echo_window, Client, Flow};
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
    let sendmmsg = world::start_serve_sendmmsg(bin, 89);
    let (naive, naive_at) = world::start_baseline(bin, Baseline::UdpNaive, 6003, up.addrs.udp_echo);
    let (mmsg, mmsg_at) = world::start_baseline(bin, Baseline::UdpMmsg, 6003, up.addrs.udp_echo);
    let client = Client::new();
    let ip = world::client_ip(0);
    let session =
        |ap, n| Flow::through_serve(ap, ip, n, up.addrs.tcp_echo, up.addrs.udp_echo, PAYLOAD);
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
                session(serve.ap, 1)
                    .await
                    .expect("a media session through serve"),
            ),
            (
                "serve_sendmmsg",
                session(sendmmsg.ap, 2)
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
    bursts(&mut c, &client, &serve, &flows);
    workers(&mut c, bin, &up.addrs, &client, &serve);
    c.final_summary();
    drop((naive, mmsg, flows));
}

/// Datagrams a client sends at once in the bursts case (one segmented send).
const BURST: u64 = 16;

/// The same echo, the client sending bursts of [`BURST`] in one segmented send (UDP GSO):
/// a relay with UDP GRO (serve) takes each burst as one message, one trip through the stack;
/// the naive and mmsg relays get the kernel's segments one by one (group
/// `udp_echo_1200B_w64_bursts16`).
fn bursts(c: &mut Criterion, client: &Client, serve: &world::Serve, flows: &[(&str, Flow)]) {
    let mut group = c.benchmark_group("udp_echo_1200B_w64_bursts16");
    group.throughput(Throughput::Elements(1));
    for (name, flow) in flows {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let (elapsed, _lost) = client
                    .run(echo_bursts(flow, iters, WINDOW, BURST))
                    .unwrap_or_else(|e| {
                        panic!(
                            "FAILED udp_echo_bursts/{name}: {e}; serve logged {:?}",
                            serve.proc.close_reasons()
                        )
                    });
                elapsed
            })
        });
    }
    group.finish();
}

/// Flows of the workers case, and the window each keeps outstanding.
const WORKER_FLOWS: u32 = 16;
const WORKER_WINDOW: u64 = 4;

/// Many flows through `serve` with one relay worker (`one`, the serve above) and with two
/// (`two`, a second serve): datagrams echoed per second, issue 12's "two workers vs one".
fn workers(
    c: &mut Criterion,
    bin: &str,
    up: &cloudproxy_load::upstream::UpstreamAddrs,
    client: &Client,
    one: &world::Serve,
) {
    let two = world::start_serve_workers(bin, 91, None, 2);
    let open = |serve: &world::Serve, first: u32| -> Vec<Flow> {
        client.run(async {
            let mut flows = Vec::new();
            for i in first..first + WORKER_FLOWS {
                let ip = world::client_ip(i * 16);
                let flow =
                    Flow::through_serve(serve.ap, ip, i + 1, up.tcp_echo, up.udp_echo, PAYLOAD)
                        .await
                        .unwrap_or_else(|e| panic!("FAILED udp_flows16_workers: a session: {e}"));
                flows.push(flow);
            }
            flows
        })
    };
    let cases = [("one", open(one, 100)), ("two", open(&two, 200))];
    let mut group = c.benchmark_group("udp_flows16_workers");
    group.throughput(Throughput::Elements(1));
    for (name, flows) in &cases {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                client
                    .run(echo_flows(flows, iters, WORKER_WINDOW))
                    .unwrap_or_else(|e| panic!("FAILED udp_flows16_workers/{name}: {e}"))
            })
        });
    }
    group.finish();
}
