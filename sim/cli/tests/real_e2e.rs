//! End to end on real sockets (loopback only): two `cloudproxy call` clients join one channel
//! through `cloudproxy serve` to `cloudproxy edge` and hear each other, for proxy types 1 (by
//! domain) and 2 (by IP list). The serve instance's metrics account for what it relayed, and
//! SIGTERM stops it with exit status 0.

mod real_support;

use std::time::Duration;

use real_support::*;

/// Media packets/s of each call, and how long each talks.
const PPS: u64 = 50;
const SECS: f64 = 5.0;

/// The report's round-trip and jitter figures are there and ordered (no timing asserted: they
/// are wall-clock measurements).
fn assert_timing(report: &CallReport) {
    let ordered = |what: &str| {
        let p = &report.json[what];
        let v: Vec<u64> = ["p50", "p90", "p99", "max"]
            .iter()
            .map(|k| {
                p[*k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{what}.{k} missing: {report:#?}"))
            })
            .collect();
        assert!(v.windows(2).all(|w| w[0] <= w[1]), "{what}: {v:?}");
    };
    // Acknowledged messages sent on the one connection are timed (the join at least; one
    // acknowledged only after the leave would not be).
    let acked = report.json["signalling_acked"].as_u64().unwrap();
    let timed = report.json["rtt_samples"].as_u64().unwrap();
    assert!(
        (1..=acked).contains(&timed),
        "{timed} of {acked}: {report:#?}"
    );
    ordered("rtt_us");
    // Every packet received carried its sender's stamp: one jitter estimate each.
    assert_eq!(
        report.json["jitter_samples"].as_u64(),
        Some(report.received()),
        "{report:#?}"
    );
    ordered("jitter_us");
    for (_, from) in report.json["media_from"].as_object().unwrap() {
        assert!(from["jitter_us"].as_u64().is_some(), "{report:#?}");
    }
}

fn two_calls_through_serve(b: Block, name: &str, params: &[&str], expected_type: u64) {
    let dir = TempDir::new(name);
    let key = random_key();
    let _edge = start_edge(b, &dir);
    let config = serve_config(
        b,
        &[b.ap()],
        &[b.relay(1), b.relay(2)],
        &[],
        b.metrics(1),
        "",
    );
    let mut serve = start_serve("serve", &dir, &config, &key);

    let mut alice = start_call(b, &dir, "alice", 1, SECS, params, &[]);
    let mut bob = start_call(b, &dir, "bob", 2, SECS, params, &[]);
    let alice = finish_call(&mut alice, Duration::from_secs(20));
    let bob = finish_call(&mut bob, Duration::from_secs(20));

    for (report, other) in [(&alice, 2), (&bob, 1)] {
        assert!(report.status.success(), "{report:#?}");
        assert!(report.joined(), "{report:#?}");
        assert_eq!(report.proxy_type(), Some(expected_type), "{report:#?}");
        assert_eq!(report.media_path(), "Udp", "{report:#?}");
        assert_eq!(report.reconnects(), 0, "{report:#?}");
        // Both talk for about SECS - 1 s at PPS; allow for start-up and the other's timing.
        let heard = report.received_from(other);
        assert!(heard >= PPS * 2, "heard only {heard} packets: {report:#?}");
        assert_eq!(report.json["media_from"][other.to_string()]["corrupt"], 0);
        assert!(report.json["signalling_acked"].as_u64().unwrap() >= 2);
        assert_timing(report);
    }

    let text = scrape(b.metrics(1));
    let relays = [b.relay(1), b.relay(2)];
    let sum = |name: &str, labels: &str| -> u64 {
        relays
            .iter()
            .map(|r| metric(&text, name, &format!("relay=\"{r}\"{labels}")))
            .sum()
    };
    assert_eq!(
        sum("cloudproxy_relay_sessions_opened_total", ""),
        2,
        "{text}"
    );
    assert_eq!(
        sum("cloudproxy_relay_sessions_closed_total", ""),
        2,
        "{text}"
    );
    assert_eq!(sum("cloudproxy_relay_sessions", ""), 0, "{text}");
    let up = sum("cloudproxy_relay_media_packets_total", ",direction=\"up\"");
    let down = sum(
        "cloudproxy_relay_media_packets_total",
        ",direction=\"down\"",
    );
    let sent =
        alice.json["media_sent"].as_u64().unwrap() + bob.json["media_sent"].as_u64().unwrap();
    assert!(up > 0 && up <= sent, "up {up}, sent {sent}");
    assert!(
        down >= alice.received() + bob.received(),
        "down {down}\n{text}"
    );
    assert!(
        sum(
            "cloudproxy_relay_bytes_total",
            ",path=\"tunnel\",direction=\"up\""
        ) > 0
    );
    // Each client asks over UDP and TCP at once: one or two answers per client.
    let answered = metric(
        &text,
        "cloudproxy_ap_answered_total",
        &format!("ap=\"{}\"", b.ap()),
    );
    assert!((2..=4).contains(&answered), "{answered} answers\n{text}");

    let status = serve.terminate(Duration::from_secs(5));
    assert!(
        status.success(),
        "serve exited {status}: {}",
        serve.stderr()
    );
    assert!(serve
        .stdout()
        .iter()
        .any(|l| l == "cloudproxy serve: stopped"));
}

#[test]
fn type1_by_domain_two_calls_hear_each_other_through_serve() {
    two_calls_through_serve(Block(21), "type1", &[ENABLE], 1);
}

#[test]
fn type2_by_ip_list_two_calls_hear_each_other_through_serve() {
    let b = Block(22);
    let params = b.ip_list_params();
    two_calls_through_serve(b, "type2", &[ENABLE, &params], 2);
}
