//! The two-party call scenario, 60 s simulated (two enterprises behind the seed's firewall,
//! alice and bob with `{"rtc.enable_proxy":true}`, DNS, AP, relays, signalling and 50 media
//! packets/s each), against an idle simulation of the same world and length (no client), in
//! one criterion group. Throughput: one simulated run.
//!
//! Run: `cargo bench -p cloudproxy-benches --bench scenario`

use std::time::Duration;

use cloudproxy_node::nodes::client::ClientSpec;
use cloudproxy_sim::policy::Policy;
use cloudproxy_sim::world::{run_world, WorldSpec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ENABLE: &str = r#"{"rtc.enable_proxy":true}"#;

fn world(with_call: bool) -> WorldSpec {
    let mut spec = WorldSpec::new(1, Duration::from_secs(60));
    let a = spec.enterprise("bank", "10.1.0.10", Policy::seed());
    let b = spec.enterprise("hospital", "10.2.0.10", Policy::seed());
    if with_call {
        spec.enterprises[a].clients.push(ClientSpec::new(
            "alice",
            1,
            "room",
            &[ENABLE],
            Duration::ZERO,
        ));
        spec.enterprises[b].clients.push(ClientSpec::new(
            "bob",
            2,
            "room",
            &[ENABLE],
            Duration::ZERO,
        ));
    }
    spec
}

fn call_vs_idle(c: &mut Criterion) {
    let mut group = c.benchmark_group("scenario_60s");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let idle = world(false);
    group.bench_function("idle", |b| b.iter(|| run_world(&idle)));
    let call = world(true);
    group.bench_function("two_party_call", |b| {
        b.iter(|| {
            let outcome = run_world(&call);
            assert!(outcome.error.is_none(), "{:?}", outcome.error);
            outcome
        })
    });
    group.finish();
}

criterion_group!(benches, call_vs_idle);
criterion_main!(benches);
