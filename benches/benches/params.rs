//! The setParameters grammar against its baseline, plain `serde_json::from_str::<Value>` of the
//! same text, in one group so that the report reads as a ratio.
//!
//! Run: `cargo bench -p cloudproxy-benches --bench params`

use std::hint::black_box;

use cloudproxy_core::params::{parse, Mode};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const CASES: &[(&str, &str)] = &[
    ("enable", r#"{"rtc.enable_proxy":true}"#),
    ("socks5", r#"{"rtc.proxy_server":[0, "127.0.0.1", 1080]}"#),
    (
        "domain",
        r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", 0]}"#,
    ),
    (
        "ip_list",
        r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[2,"[\"47.74.211.17\",\"52.80.192.229\",\"52.52.84.170\",\"47.96.234.219\"]",0]}"#,
    ),
];

fn grammar_vs_json_parse(c: &mut Criterion) {
    for (name, text) in CASES {
        let mut group = c.benchmark_group(format!("params/{name}"));
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function("baseline_serde_json_value", |b| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(text)).unwrap())
        });
        group.bench_function("cloudproxy_parse", |b| {
            b.iter(|| parse(black_box(text), Mode::Strict).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, grammar_vs_json_parse);
criterion_main!(benches);
