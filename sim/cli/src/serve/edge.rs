//! `cloudproxy edge`: an SD-RTN edge on real sockets, for tests and demos.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use cloudproxy_core::sdrtn::SdRtnEndpoints;
use serde_json::{json, Value};

use cloudproxy_node::net::TokioNet;
use cloudproxy_node::nodes::edge::{run_edge, EdgeStats};

use super::shutdown::Shutdown;
use super::{reachable, wait_listening, READY_TIMEOUT};

/// The edge's ports, as in the simulated world: signalling 5000/tcp, media 5001/udp and
/// 5002/tcp.
pub const EDGE_PORTS: [u16; 3] = [5000, 5001, 5002];

/// The endpoints of an edge on `ip` with `ports` (signalling, media UDP, media TCP).
pub fn endpoints(ip: IpAddr, ports: [u16; 3]) -> SdRtnEndpoints {
    SdRtnEndpoints {
        signalling: SocketAddr::new(ip, ports[0]),
        media_udp: SocketAddr::new(ip, ports[1]),
        media_tcp: SocketAddr::new(ip, ports[2]),
    }
}

/// Runs an edge on `ip` until `shutdown`; `on_ready` is called once it listens. Returns its
/// statistics. Must run inside a `LocalSet`.
pub async fn serve(
    ip: IpAddr,
    ports: [u16; 3],
    shutdown: Shutdown,
    on_ready: impl FnOnce(),
) -> Result<EdgeStats, String> {
    let stats = Rc::new(RefCell::new(EdgeStats::default()));
    let node = tokio::task::spawn_local(run_edge(
        TokioNet::new(ip),
        endpoints(ip, ports),
        stats.clone(),
    ));
    let probes = [
        SocketAddr::new(reachable(ip), ports[0]),
        SocketAddr::new(reachable(ip), ports[2]),
    ];
    tokio::pin!(node);
    tokio::select! {
        result = &mut node => {
            return Err(match result {
                Ok(Err(e)) => e.to_string(),
                _ => "the edge stopped".to_owned(),
            });
        }
        ready = tokio::time::timeout(READY_TIMEOUT, wait_listening(&probes)) => {
            if ready.is_err() {
                return Err(format!("the edge did not listen within {READY_TIMEOUT:?}"));
            }
        }
    }
    tracing::info!(edge = %ip, signalling = ports[0], media_udp = ports[1], media_tcp = ports[2], "edge serving");
    on_ready();
    tokio::select! {
        result = &mut node => {
            return Err(match result {
                Ok(Err(e)) => e.to_string(),
                _ => "the edge stopped".to_owned(),
            });
        }
        () = shutdown.wait() => {}
    }
    node.abort();
    let stats = stats.borrow().clone();
    Ok(stats)
}

/// The statistics as one JSON object.
pub fn stats_json(stats: &EdgeStats) -> Value {
    json!({
        "signalling_messages": stats.signalling_messages,
        "signalling_out_of_order": stats.signalling_out_of_order,
        "joins_refused": stats.joins_refused,
        "media_in": stats.media_in,
        "media_forwarded": stats.media_forwarded,
        "media_dropped_not_joined": stats.media_dropped_not_joined,
        "media_corrupt": stats.media_corrupt,
        "media_dropped_congested": stats.media_dropped_congested,
        "connections": stats.connections,
        "broken_connections": stats.broken_connections,
        "signalling_per_uid": stats.signalling_per_uid,
    })
}
