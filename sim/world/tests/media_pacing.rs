//! Media pacing: a client sends at the rate it is asked for, even when that rate's gap is
//! shorter than the timer's tick. Simulated time ticks by 1 ms, like tokio's timer: the old
//! pacing (`now + gap` after each wake-up) sent at most one packet per tick, so 2,000 packets/s
//! came out as 1,000 (on real sockets, `cloudproxy call --pps 5000` sent 2,240 a second).

use std::time::Duration;

use cloudproxy_node::nodes::client::ClientSpec;
use cloudproxy_sim::policy::Policy;
use cloudproxy_sim::world::{run_world, WorldSpec};

fn sent_per_second(pps: u32) -> (f64, f64) {
    let mut spec = WorldSpec::new(1, Duration::from_secs(6));
    for (name, uid, host) in [("alice", 1, "10.1.0.10"), ("bob", 2, "10.2.0.10")] {
        let e = spec.enterprise(name, host, Policy::open());
        let mut client = ClientSpec::new(name, uid, "room", &[], Duration::from_millis(100));
        client.media_pps = pps;
        spec.enterprises[e].clients.push(client);
    }
    let outcome = run_world(&spec);
    let alice = &outcome.clients["alice"];
    // Media starts once the edge acknowledged the join, and stops 2 s before the leave.
    let joined = Duration::from_millis(100) + alice.join_time.expect("alice joins");
    let talking = (spec.duration - Duration::from_secs(2)).saturating_sub(joined);
    (alice.media_sent as f64 / talking.as_secs_f64(), pps as f64)
}

#[test]
fn media_is_sent_at_the_asked_rate_even_above_one_packet_per_tick() {
    for pps in [50, 2_000, 5_000] {
        let (sent, asked) = sent_per_second(pps);
        assert!(
            (sent / asked - 1.0).abs() < 0.02,
            "asked {asked} packets/s, sent {sent:.0}/s"
        );
    }
}
