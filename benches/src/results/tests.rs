//! The comparer, the ratios and the reader on fixed inputs.

use super::*;

fn fig(id: &str, v: f64) -> (String, Figure) {
    (
        id.to_owned(),
        Figure {
            id: id.to_owned(),
            value: Some(v),
            unit: "ns/iter".into(),
            failed: None,
        },
    )
}

fn def(id: &str) -> RatioDef {
    *RATIOS.iter().find(|d| d.id == id).unwrap()
}

#[test]
fn ratios_of_fixed_figures() {
    let figures: Figures = [
        fig("tcp_one_way/copy_8k", 200.0),
        fig("tcp_one_way/serve", 100.0),
        fig("flows64_cpu/serve", 3000.0),
        fig("flows64_cpu/naive", 2000.0),
        fig("memory/tunnel_bytes", 38_912.0),
    ]
    .into_iter()
    .collect();
    // Half the time per iteration: twice the throughput.
    assert_eq!(
        measure(&def("tcp_one_way.serve_vs_copy8k"), &figures),
        Measured::Value(2.0)
    );
    assert_eq!(
        measure(&def("flows64.serve_vs_naive"), &figures),
        Measured::Value(1.5)
    );
    assert_eq!(
        measure(&def("memory.tunnel_kib"), &figures),
        Measured::Value(38.0)
    );
    assert!(matches!(
        measure(&def("tcp_one_way.serve_vs_splice"), &figures),
        Measured::Missing(_)
    ));
    assert!(matches!(
        measure(&def("workers.two_vs_one"), &figures),
        Measured::Missing(_)
    ));
    let mut two: Figures = figures.clone();
    two.extend([
        fig("udp_flows16_workers/one", 300.0),
        fig("udp_flows16_workers/two", 200.0),
    ]);
    assert_eq!(
        measure(&def("workers.two_vs_one"), &two),
        Measured::Value(1.5)
    );
    assert_eq!(
        meets_goal(&def("tcp_one_way.serve_vs_copy8k"), 2.0),
        Some(true)
    );
    assert_eq!(meets_goal(&def("flows64.serve_vs_naive"), 1.5), Some(false));
}

#[test]
fn a_failed_case_is_a_failed_ratio() {
    let mut figures: Figures = [fig("tcp_one_way/copy_8k", 200.0)].into_iter().collect();
    figures.insert(
        "tcp_one_way/serve".into(),
        Figure {
            id: "tcp_one_way/serve".into(),
            value: None,
            unit: "ns/iter".into(),
            failed: Some("tunnel cut: UpstreamClosed".into()),
        },
    );
    let m = measure(&def("tcp_one_way.serve_vs_copy8k"), &figures);
    assert!(
        matches!(&m, Measured::Failed(w) if w.contains("UpstreamClosed")),
        "{m:?}"
    );
}

#[test]
fn the_comparer_flags_drops_beyond_the_tolerance_only() {
    let up = def("udp_echo.serve_vs_naive");
    let down = def("flows64.serve_vs_naive");
    let r = Measured::Value(1.0);
    // Higher is better: 0.91 is within 10%, 0.89 is not.
    assert_eq!(
        compare(&up, &Measured::Value(0.91), Some(&r), 0.10),
        Verdict::Ok
    );
    assert!(matches!(
        compare(&up, &Measured::Value(0.89), Some(&r), 0.10),
        Verdict::Regressed(_)
    ));
    assert_eq!(
        compare(&up, &Measured::Value(5.0), Some(&r), 0.10),
        Verdict::Ok
    );
    // Lower is better: 1.09 is within 10%, 1.11 is not.
    assert_eq!(
        compare(&down, &Measured::Value(1.09), Some(&r), 0.10),
        Verdict::Ok
    );
    assert!(matches!(
        compare(&down, &Measured::Value(1.11), Some(&r), 0.10),
        Verdict::Regressed(_)
    ));
    // A wider tolerance lets more through.
    assert_eq!(
        compare(&up, &Measured::Value(0.7), Some(&r), 0.35),
        Verdict::Ok
    );
    // Failing now where the reference measured: a regression. Failing in both: known.
    let failed = Measured::Failed("cut".into());
    assert!(matches!(
        compare(&up, &failed, Some(&r), 0.10),
        Verdict::Regressed(_)
    ));
    assert_eq!(
        compare(&up, &failed, Some(&failed.clone()), 0.10),
        Verdict::NoReference
    );
    assert_eq!(
        compare(&up, &Measured::Value(0.1), Some(&failed), 0.10),
        Verdict::NoReference
    );
    assert!(matches!(
        compare(&up, &Measured::Missing("x".into()), Some(&r), 0.10),
        Verdict::Regressed(_)
    ));
    assert_eq!(
        compare(&up, &Measured::Value(1.0), None, 0.10),
        Verdict::NoReference
    );
}

/// A run's figures where serve's UDP echo takes `udp_serve_ns` per round trip against the
/// naive relay's 1 000 ns, and a micro-benchmark (not gated) moves by `wire_ns`.
fn run_with(udp_serve_ns: f64, wire_ns: f64) -> Figures {
    [
        fig("udp_echo_1200B_w64/naive", 1_000.0),
        fig("udp_echo_1200B_w64/serve", udp_serve_ns),
        fig("wire_close/memcpy", 10.0),
        fig("wire_close/encode_decode", wire_ns),
    ]
    .into_iter()
    .collect()
}

fn reference_of(figures: &Figures) -> Reference {
    Reference {
        ratios: RATIOS
            .iter()
            .map(|d| (d.id.to_owned(), measure(d, figures)))
            .filter(|(_, m)| matches!(m, Measured::Value(_)))
            .collect(),
        ..Reference::default()
    }
}

#[test]
fn a_planted_regression_is_caught_and_names_its_target() {
    let reference = reference_of(&run_with(1_000.0, 100.0));
    // The same run: nothing to report.
    assert!(regressions(&run_with(1_000.0, 100.0), Some(&reference), 0.35, true).is_empty());
    // 30% slower serve: within the CI tolerance.
    assert!(regressions(&run_with(1_300.0, 100.0), Some(&reference), 0.35, true).is_empty());
    // Half the rate (twice the time per round trip): a regression of relay_udp.
    let found = regressions(&run_with(2_000.0, 100.0), Some(&reference), 0.35, true);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "udp_echo.serve_vs_naive");
    assert_eq!(retry_targets(&found), vec!["relay_udp"]);
    // A micro-benchmark 5x slower: gated only without --goals-only.
    let noisy = run_with(1_000.0, 500.0);
    assert!(regressions(&noisy, Some(&reference), 0.35, true).is_empty());
    let all = regressions(&noisy, Some(&reference), 0.35, false);
    assert_eq!(retry_targets(&all), vec!["wire"]);
    // A case that is missing where the reference measured it: a regression.
    let mut gone = run_with(1_000.0, 100.0);
    gone.remove("udp_echo_1200B_w64/serve");
    assert_eq!(
        retry_targets(&regressions(&gone, Some(&reference), 0.35, true)),
        vec!["relay_udp"]
    );
    // No reference at all: nothing to compare with.
    assert!(regressions(&run_with(9_000.0, 100.0), None, 0.35, true).is_empty());
}

#[test]
fn every_ratio_has_its_bench_target() {
    let targets = [
        "relay_tcp",
        "relay_udp",
        "relay_cpu",
        "memory",
        "call",
        "socks5",
        "wire",
        "scenario",
        "params",
    ];
    for def in RATIOS {
        let t = bench_target(def.id);
        assert!(targets.contains(&t), "{} -> {t}", def.id);
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches")
            .join(format!("{t}.rs"));
        assert!(
            path.exists(),
            "{}: {} does not exist",
            def.id,
            path.display()
        );
    }
    assert_eq!(bench_target("flows64.serve_vs_naive"), "relay_cpu");
    assert_eq!(bench_target("params.enable"), "params");
}

#[test]
fn the_worse_of_two_runs() {
    let (up, down) = (
        def("udp_echo.serve_vs_naive"),
        def("flows64.serve_vs_naive"),
    );
    let (a, b) = (Measured::Value(1.2), Measured::Value(0.9));
    assert_eq!(worse(&up, &a, &b), Measured::Value(0.9));
    assert_eq!(worse(&down, &a, &b), Measured::Value(1.2));
    let failed = Measured::Failed("cut".into());
    let missing = Measured::Missing("-".into());
    assert_eq!(worse(&up, &a, &failed), failed);
    assert_eq!(worse(&up, &failed, &a), failed);
    assert_eq!(worse(&up, &a, &missing), a);
    assert_eq!(worse(&up, &missing, &a), a);
}

#[test]
fn the_goal_ratios_are_gated() {
    assert!(def("udp_echo.serve_vs_naive").gated());
    assert!(def("memory.media_session_fds").gated());
    assert!(!def("socks5.core_vs_raw").gated());
    assert!(!def("workers.two_vs_one").gated());
    assert!(!def("tcp_one_way.copy8k_vs_direct").gated());
}

#[test]
fn criterion_files_are_read() {
    let dir = std::env::temp_dir().join(format!("cp-crit-{}", std::process::id()));
    let new = dir.join("tcp_one_way").join("serve").join("new");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::write(new.join("benchmark.json"), r#"{"group_id":"tcp_one_way","function_id":"serve","value_str":null,"throughput":{"Bytes":4194304},"full_id":"tcp_one_way/serve","directory_name":"tcp_one_way/serve","title":"tcp_one_way/serve"}"#).unwrap();
    std::fs::write(new.join("estimates.json"), r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1234.5,"standard_error":0.1}}"#).unwrap();
    let mut figures = Figures::new();
    read_criterion(&dir, &mut figures);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(figures["tcp_one_way/serve"].value, Some(1234.5));
}
