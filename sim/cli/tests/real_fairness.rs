//! Fairness under load, on real sockets (loopback only): while one address floods the relay's
//! media ports with datagrams, others hold slowloris connections on the relay, on the access
//! point's TCP port and on the metrics endpoint, and fifty addresses of one `/24` flood the
//! access point with requests, two good clients from another network get their tickets, join
//! through the relay, and their tunnel (signalling) and media work. Every bound held: the
//! slowloris got the per-address share of the pending handshakes and of the access point's TCP
//! slots, the `/24` got its prefix's share of tickets, the metrics endpoint kept answering by
//! shedding its idle connections, and the counters say so. The same two calls first run on
//! the same `serve` with no attack (the baseline): under attack their media loss stays within
//! a stated margin of the baseline's, and every signalling round trip is answered in both
//! runs. Assertions are on counts, never on durations.
// clippy.toml disallows the system's clocks; real-socket tests bound their waits on the wall clock.
#![allow(clippy::disallowed_methods)]

mod attack_support;
mod real_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use attack_support::*;
use real_support::*;

const B: Block = Block(81);
/// How long each good call talks.
const SECS: f64 = 8.0;
#[test]
fn a_good_client_joins_and_talks_while_every_attack_runs_and_every_bound_holds() {
    let dir = TempDir::new("fairness");
    let key = random_key();
    let _edge = start_edge(B, &dir);
    let _serve = start_serve("serve", &dir, &config(B), &key);
    let relay = format!("relay=\"{}\"", B.relay(1));
    let ap = format!("ap=\"{}\"", B.ap());

    // The baseline: the same calls, nothing else running.
    let mut alice = start_call(B, &dir, "alice-baseline", 1, SECS, &[ENABLE], &[]);
    let mut bob = start_call(B, &dir, "bob-baseline", 2, SECS, &[ENABLE], &[]);
    let baseline = [
        finish_call(&mut alice, Duration::from_secs(30)),
        finish_call(&mut bob, Duration::from_secs(30)),
    ];
    // The loaded run's counters are counted from here, once the baseline's sessions closed.
    let before = wait_for_metrics(B, "the baseline's sessions closed", |t| {
        metric(t, "cloudproxy_relay_sessions", &relay) == 0
    });

    let attacks = Attacks::start(targets(B));
    // Every attack in full swing before the good clients start.
    wait_for_attacks(B);

    let mut alice = start_call(B, &dir, "alice", 1, SECS, &[ENABLE], &[]);
    let mut bob = start_call(B, &dir, "bob", 2, SECS, &[ENABLE], &[]);
    // Scrapes all along: each one must get through the slowloris on the endpoint.
    let mut scrapes = 0;
    let mut during = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alice.stdout().is_empty() || bob.stdout().is_empty() {
        during = scrape(B.metrics(1));
        scrapes += 1;
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let alice = finish_call(&mut alice, Duration::from_secs(30));
    let bob = finish_call(&mut bob, Duration::from_secs(30));
    let seen = attacks.stop();
    let after = scrape(B.metrics(1));

    // The good clients, unloaded and loaded: a ticket, a join, signalling through the tunnel,
    // media both ways; under attack, loss within LOSS_MARGIN of the baseline's.
    for ((base, loaded), other) in baseline.iter().zip([&alice, &bob]).zip([2, 1]) {
        let unloaded = good_call(base, other);
        let under = good_call(loaded, other);
        // At most 1 in LOSS_MARGIN of the packets heard under attack lost beyond the
        // baseline's loss (0 on loopback so far, measured).
        assert!(
            under.lost <= unloaded.lost.saturating_add(under.heard / LOSS_MARGIN),
            "lost {} of {} under attack, {} of {} unloaded: {loaded:#?}",
            under.lost,
            under.heard,
            unloaded.lost,
            unloaded.heard
        );
        // The call tool reports no signalling round-trip time; its join time (AP ticket,
        // relay handshake, tunnel, first signalling answer) is the nearest thing. Printed
        // for the reader only: durations are never asserted in a pass/fail test (timing
        // belongs in the benchmarks).
        let join = |r: &CallReport| r.json["join_ms"].as_u64().unwrap_or(0);
        eprintln!(
            "{}: baseline: signalling {} of {} acked, media lost {} of {}, joined in {} ms; under attack: signalling {} of {} acked, media lost {} of {}, joined in {} ms (ratio {:.2}, not asserted)",
            loaded.json["name"],
            unloaded.acked,
            unloaded.sent,
            unloaded.lost,
            unloaded.heard,
            join(base),
            under.acked,
            under.sent,
            under.lost,
            under.heard,
            join(loaded),
            join(loaded) as f64 / join(base).max(1) as f64,
        );
    }

    // Counters: what the loaded run added (gauges and peaks as they are).
    let m = |name: &str, labels: &str| {
        let now = metric(&after, name, labels);
        if name.ends_with("_total") {
            now - metric(&before, name, labels)
        } else {
            now
        }
    };
    // Relay: only the good clients opened sessions; the slowloris address held at most its
    // share of the pending handshakes, the rest refused.
    assert_eq!(
        m("cloudproxy_relay_sessions_opened_total", &relay),
        2,
        "{after}"
    );
    // Peaks are the sum of each worker's own peak since start, so the baseline's two
    // sessions may count again beside the loaded run's two, never the attackers'.
    assert!(m("cloudproxy_relay_sessions_peak", &relay) <= 4, "{after}");
    let quota = m(
        "cloudproxy_relay_refusals_total",
        &format!("{relay},cause=\"quota\""),
    );
    assert!(quota > 0, "{after}");
    let peak = m("cloudproxy_relay_connections_peak", &relay);
    // The slowloris' share, the good clients' tunnels (of both runs: the peak sums the
    // workers' own peaks), and one accept batch (16) of refused connections not yet closed.
    assert!(
        peak <= PENDING_PER_IP + 2 + 2 + 16,
        "{peak} connections at once\n{after}"
    );
    assert!(
        m("cloudproxy_relay_handshake_timeouts_total", &relay) > 0,
        "{after}"
    );
    let dropped = m(
        "cloudproxy_relay_udp_dropped_total",
        &format!("{relay},from=\"client\""),
    );
    assert!(dropped > 1_000, "{after}");
    let packets_up = m(
        "cloudproxy_relay_media_packets_total",
        &format!("{relay},direction=\"up\""),
    );
    assert!(packets_up >= 300, "{after}");

    // Access point: the /24 got at most its prefix's tickets, each address at most its own;
    // the good clients got theirs; the TCP slowloris got its slots and no more.
    let tickets = seen.ap_tickets.load(Ordering::Relaxed);
    assert!(
        tickets > 0 && tickets <= PER_PREFIX,
        "{tickets} tickets to the /24\n{seen:?}"
    );
    assert!(seen.ap_tickets_one_addr_max.load(Ordering::Relaxed) <= PER_IP);
    let answered = m("cloudproxy_ap_answered_total", &ap);
    assert!(
        answered >= tickets + 2 && answered <= tickets + 2 * PER_IP,
        "{answered} answered: the flood's tickets and the good clients' own\n{after}"
    );
    let rate_limited = m(
        "cloudproxy_ap_refusals_total",
        &format!("{ap},cause=\"rate_limited\""),
    );
    assert!(
        rate_limited + tickets >= seen.ap_requests.load(Ordering::Relaxed) * 3 / 4,
        "{after}\n{seen:?}"
    );
    assert!(
        m(
            "cloudproxy_ap_tcp_refused_total",
            &format!("{ap},cause=\"per_ip\"")
        ) > 0,
        "{after}"
    );

    // Metrics endpoint: every scrape answered; idle connections were shed to make room;
    // never more than its slots open.
    assert!(scrapes >= 10, "{scrapes} scrapes");
    assert!(m("cloudproxy_metrics_shed_total", "") > 0, "{after}");
    assert!(m("cloudproxy_metrics_connections", "") <= 16, "{after}");
    assert!(!during.is_empty());

    // Memory stayed bounded.
    let rss = m("process_resident_memory_bytes", "");
    assert!(rss > 0 && rss < 256 << 20, "resident memory {rss}\n{after}");
    eprintln!(
        "fairness: {} flood datagrams sent, {dropped} dropped by the relay; relay slowloris {} opens ({quota} refused for quota), peak {peak} connections; ap flood {} requests, {tickets} tickets, {rate_limited} rate limited; metrics slowloris {} opens, {} shed, {scrapes} scrapes answered; rss {rss}; alice heard {}, bob heard {}",
        seen.udp_sent.load(Ordering::Relaxed),
        seen.relay_opens.load(Ordering::Relaxed),
        seen.ap_requests.load(Ordering::Relaxed),
        seen.metrics_opens.load(Ordering::Relaxed),
        m("cloudproxy_metrics_shed_total", ""),
        alice.received_from(2),
        bob.received_from(1),
    );
}

/// Media loss beyond the baseline's allowed under attack: one packet in this many heard.
const LOSS_MARGIN: u64 = 20;

/// What one good call did: media heard and lost from the other, signalling sent and answered.
#[derive(Debug)]
struct Good {
    heard: u64,
    lost: u64,
    sent: u64,
    acked: u64,
}

/// Checks what every good call must do, loaded or not, and returns its counts: it joined
/// without reconnecting, heard at least half its media uncorrupted, and got an answer to
/// every signalling round trip but the last still in flight.
fn good_call(report: &CallReport, other: u32) -> Good {
    assert!(report.status.success() && report.joined(), "{report:#?}");
    assert_eq!(report.reconnects(), 0, "{report:#?}");
    assert_eq!(report.json["signalling_bad_acks"], 0, "{report:#?}");
    // About SECS - 1 s of media at 50 packets/s: at least half of it arrived.
    let heard = report.received_from(other);
    assert!(heard >= 150, "heard {heard} packets: {report:#?}");
    assert_eq!(report.json["media_from"][other.to_string()]["corrupt"], 0);
    let lost = report.json["media_from"][other.to_string()]["lost"]
        .as_u64()
        .unwrap_or(u64::MAX);
    let (sent, acked) = (
        report.json["signalling_sent"].as_u64().unwrap_or(0),
        report.json["signalling_acked"].as_u64().unwrap_or(0),
    );
    assert!(
        acked >= 2 && acked + 1 >= sent,
        "{acked} of {sent} acked: {report:#?}"
    );
    Good {
        heard,
        lost,
        sent,
        acked,
    }
}
