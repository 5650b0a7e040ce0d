//! The simulated application (`cloudproxy_core::app`) on the pair world: whole calls, with
//! the edge acknowledging signalling and forwarding media between the members.

use std::time::Duration;

use cloudproxy_core::app::{AppConfig, Op};
use cloudproxy_core::client::{ConnectionState, MediaPath};
use cloudproxy_testkit::pair::{app, seed_world, EdgeMode, World};
use cloudproxy_testkit::policy::Policy;

const ENABLE: &str = r#"{"rtc.enable_proxy":true}"#;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A call of `uid` that talks until `quiet_at` and leaves at `leave_at` (since it is added).
fn caller(name: &str, uid: u32, quiet_at: Duration, leave_at: Duration) -> AppConfig {
    let mut config = app(name, uid, &[ENABLE]);
    config.talk_until = Some(quiet_at);
    config.script.push((leave_at, Op::Leave));
    config
}

/// Alice (uid 1) and Bob (uid 2) in one channel behind `policy`, on an edge that acknowledges.
fn alice_and_bob(policy: Policy, quiet_at: Duration, leave_at: Duration) -> (World, usize, usize) {
    let mut world = seed_world(policy);
    world.edge_mode = EdgeMode::Channel;
    let alice = world.add_app(caller("alice", 1, quiet_at, leave_at), 11);
    let bob = world.add_app(caller("bob", 2, quiet_at, leave_at), 12);
    (world, alice, bob)
}

/// `listener` heard `speaker` with nothing lost, and every message it sent was acknowledged.
fn assert_heard(world: &World, listener: usize, speaker: u32, at_least: u64) {
    let report = &world.clients[listener].report;
    let heard = report.media_from.get(&speaker).cloned().unwrap_or_default();
    assert!(
        heard.received >= at_least && heard.lost == 0 && heard.corrupt == 0,
        "client {listener} heard uid {speaker}: {heard:?}"
    );
    assert_eq!(
        report.signalling_acked.len() as u64,
        report.signalling_sent,
        "every signalling message acknowledged"
    );
    assert_eq!(report.signalling_bad_acks, 0);
}

#[test]
fn two_applications_hear_each_other_through_the_cloud_proxy_and_leave_cleanly() {
    let (mut world, alice, bob) = alice_and_bob(Policy::seed(), secs(8), secs(10));
    world.run_for(secs(5));
    for c in [alice, bob] {
        assert_eq!(world.clients[c].machine.state(), ConnectionState::Connected);
        assert_eq!(world.clients[c].machine.media_path(), MediaPath::Udp);
        assert_eq!(world.clients[c].report.proxy.map(|p| p.0), Some(1));
    }
    assert!(
        world
            .relays
            .iter()
            .map(|r| r.machine.session_count())
            .sum::<usize>()
            == 2
    );

    world.run_for(secs(7));
    // 50 packets a second for about 7.8 s, none lost.
    assert_heard(&world, alice, 2, 350);
    assert_heard(&world, bob, 1, 350);
    for c in [alice, bob] {
        let report = &world.clients[c].report;
        let codes: Vec<i32> = report.codes.iter().map(|(_, code)| *code).collect();
        assert_eq!(codes, [0, 0, 0], "set, join, leave");
        assert_eq!(
            report.media_path,
            Some(MediaPath::Udp),
            "the report keeps the call"
        );
        assert!(report.join_time.is_some_and(|t| t < secs(1)));
        assert_eq!(
            world.clients[c].machine.state(),
            ConnectionState::Disconnected
        );
    }
    // Leaving carried out the proxy clients' closes: the relays hold nothing.
    for relay in &world.relays {
        assert_eq!(relay.machine.session_count(), 0, "{relay:?}");
    }
}

#[test]
fn a_relay_that_dies_silently_makes_the_app_rejoin_resend_and_resume_media() {
    let (mut world, alice, bob) = alice_and_bob(Policy::seed(), secs(18), secs(20));
    world.run_for(secs(3));
    let relay = world.clients[alice]
        .report
        .proxy
        .expect("alice is connected")
        .1;
    let r = world
        .relays
        .iter()
        .position(|n| n.ip == relay.ip())
        .expect("a relay of the world");
    // The relay dies silently: what alice sends into its connections is lost (the host
    // answers with a reset), so the message that finds it out must be re-sent.
    world.relays[r].alive = false;
    world.run_for(secs(16));

    let report = &world.clients[alice].report;
    assert!(report.reconnects >= 1, "{report:?}");
    let back = report
        .outages
        .first()
        .and_then(|o| o.1)
        .expect("the outage ended");
    let moved = report.proxy.expect("connected again").1;
    assert_ne!(moved.ip(), relay.ip(), "alice moved to the other relay");
    // Media from Bob again after the outage, and every message acknowledged in the end
    // (those lost with the tunnel were re-sent on the new one).
    let heard_after: u64 = report
        .media_per_second
        .range(back.as_secs() + 1..)
        .map(|(_, n)| n)
        .sum();
    assert!(heard_after > 200, "{heard_after} packets after {back:?}");
    assert_eq!(report.signalling_acked.len() as u64, report.signalling_sent);
    assert!(world.clients[bob].report.media_from.contains_key(&1));
}

#[test]
fn with_udp_blocked_the_call_goes_over_tcp_media() {
    let (mut world, alice, bob) = alice_and_bob(Policy::udp_blocked(), secs(10), secs(12));
    world.run_for(secs(14));
    for (c, other) in [(alice, 2), (bob, 1)] {
        assert_eq!(world.clients[c].report.media_path, Some(MediaPath::Tcp));
        assert_heard(&world, c, other, 250);
    }
}
