//! The relay loop gives every sent datagram's buffer back to the machine's pool: over a call
//! whose media crosses the relay on UDP, the machine allocates a bounded handful of datagram
//! buffers, not one per datagram.

use cloudproxy_core::relay::POOL_MAX_BUFFERS;
use cloudproxy_sim::scenario::find;

#[test]
fn the_relay_loop_recycles_datagram_buffers() {
    let result = find("proxy-default").expect("the scenario").run(1);
    assert!(result.passed(), "{}", result.reproduce());
    let mut relayed = 0;
    for (ip, r) in &result.outcome.relays {
        let datagrams = r.counters.udp_packets_up + r.counters.udp_packets_down;
        relayed += datagrams;
        assert!(
            r.udp_spare_buffers <= POOL_MAX_BUFFERS,
            "{ip}: pool over its bound"
        );
        if datagrams == 0 {
            continue;
        }
        assert!(r.udp_spare_buffers > 0, "{ip}: no buffer came back: {r:?}");
        // Buffers in flight at once (the writer tasks' queues and bursts), not one per
        // datagram (6 for about 2,000 datagrams when this was written).
        assert!(
            r.udp_buffers_allocated <= 64,
            "{ip}: {} buffers allocated for {datagrams} datagrams",
            r.udp_buffers_allocated
        );
    }
    assert!(
        relayed >= 1_000,
        "the call relayed {relayed} datagrams on UDP"
    );
}
