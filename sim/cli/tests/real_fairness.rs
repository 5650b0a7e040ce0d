//! Fairness under load, on real sockets (loopback only): while one address floods the relay's
//! media ports with datagrams, others hold slowloris connections on the relay, on the access
//! point's TCP port and on the metrics endpoint, and fifty addresses of one `/24` flood the
//! access point with requests, two good clients from another network get their tickets, join
//! through the relay, and their tunnel (signalling) and media work. Every bound held: the
//! slowloris got the per-address share of the pending handshakes and of the access point's TCP
//! slots, the `/24` got its prefix's share of tickets, the metrics endpoint kept answering by
//! shedding its idle connections, and the counters say so. Assertions are on counts, never on
//! durations.
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

    // The good clients: a ticket, a join, signalling through the tunnel, media both ways.
    for (report, other) in [(&alice, 2), (&bob, 1)] {
        assert!(report.status.success() && report.joined(), "{report:#?}");
        assert_eq!(report.reconnects(), 0, "{report:#?}");
        assert!(
            report.json["signalling_acked"].as_u64().unwrap_or(0) >= 2,
            "{report:#?}"
        );
        assert_eq!(report.json["signalling_bad_acks"], 0, "{report:#?}");
        // About SECS - 1 s of media at 50 packets/s: at least half of it arrived.
        let heard = report.received_from(other);
        assert!(heard >= 150, "heard {heard} packets: {report:#?}\n{seen:?}");
        assert_eq!(report.json["media_from"][other.to_string()]["corrupt"], 0);
        // An unloaded run on loopback loses nothing; under load at most 1 in 20.
        let lost = report.json["media_from"][other.to_string()]["lost"]
            .as_u64()
            .unwrap_or(u64::MAX);
        assert!(lost * 20 <= heard, "lost {lost} of {heard}: {report:#?}");
        // Signalling round trips through the tunnel: all but the last in flight answered.
        let (sent, acked) = (
            report.json["signalling_sent"].as_u64().unwrap_or(0),
            report.json["signalling_acked"].as_u64().unwrap_or(0),
        );
        eprintln!(
            "{}: signalling {acked} of {sent} acked, media lost {lost} of {heard}",
            report.json["name"]
        );
        assert!(acked + 1 >= sent, "{acked} of {sent} acked: {report:#?}");
    }

    let m = |name: &str, labels: &str| metric(&after, name, labels);
    // Relay: only the good clients opened sessions; the slowloris address held at most its
    // share of the pending handshakes, the rest refused.
    assert_eq!(
        m("cloudproxy_relay_sessions_opened_total", &relay),
        2,
        "{after}"
    );
    assert!(m("cloudproxy_relay_sessions_peak", &relay) <= 2, "{after}");
    let quota = m(
        "cloudproxy_relay_refusals_total",
        &format!("{relay},cause=\"quota\""),
    );
    assert!(quota > 0, "{after}");
    let peak = m("cloudproxy_relay_connections_peak", &relay);
    // The slowloris' share, the good clients' tunnels, and one accept batch (16) of refused
    // connections not yet closed.
    assert!(
        peak <= PENDING_PER_IP + 2 + 16,
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
