//! The cloud proxy's access point (AP/LBS) host: drives an [`AccessPoint`] on UDP and TCP at
//! each of the seed's edge-node ports (1080, 8000, 25000, 9700), or the ports given to
//! [`run_ap_on`].
//!
//! The TCP side is bounded like the relay: at most [`MAX_TCP_CONNECTIONS`] connections at once
//! per host (more are closed at once), each closed when it sends nothing for
//! [`TCP_IDLE_TIMEOUT`] (a slow client cannot hold a connection open), and at most 16 requests
//! per connection.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::relay::{AccessPoint, ApConfig, ApCounters};
use cloudproxy_core::wire::{FrameReader, AP_PORTS};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::net::{Listener, Net, Udp};
use crate::trace::Trace;

/// Most TCP connections one access point host serves at once; more are closed unanswered.
pub const MAX_TCP_CONNECTIONS: usize = 1024;
/// A TCP connection that sends nothing for this long is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs an access point host until it crashes. `counters` receives the machine's counters.
pub async fn run_ap<N: Net>(
    net: N,
    name: String,
    config: ApConfig,
    entropy: Entropy,
    counters: Rc<RefCell<ApCounters>>,
    trace: Trace,
) -> io::Result<()> {
    run_ap_on(net, name, config, entropy, counters, trace, &AP_PORTS).await
}

/// Runs an access point host on `ports` (UDP and TCP each) until it crashes or a socket fails.
pub async fn run_ap_on<N: Net>(
    net: N,
    name: String,
    config: ApConfig,
    entropy: Entropy,
    counters: Rc<RefCell<ApCounters>>,
    trace: Trace,
    ports: &[u16],
) -> io::Result<()> {
    let ap = Rc::new(RefCell::new(AccessPoint::new(config, entropy)));
    let open_tcp = Rc::new(Cell::new(0usize));
    let mut tasks = Vec::new();
    for &port in ports {
        let at = SocketAddr::from(([0, 0, 0, 0], port));
        let udp = net.bind_udp(at).await?;
        let listener = net.listen(at).await?;
        let (ap_udp, ap_tcp) = (ap.clone(), ap.clone());
        let (net_udp, net_tcp) = (net.clone(), net.clone());
        let (counters_udp, trace_udp, name_udp) = (counters.clone(), trace.clone(), name.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = udp.recv_from(&mut buf).await {
                let reply = ap_udp.borrow_mut().handle_message(net_udp.now(), from, &buf[..n]);
                *counters_udp.borrow_mut() = ap_udp.borrow().counters().clone();
                trace_udp.record(net_udp.now(), &name_udp, "ap_request", json!({"from": from.to_string(), "transport": "udp", "answered": reply.is_some()}));
                if let Some(reply) = reply {
                    let _ = udp.send_to(&reply, from).await;
                }
            }
        }));
        let (counters_tcp, trace_tcp, name_tcp) = (counters.clone(), trace.clone(), name.clone());
        let open_tcp = open_tcp.clone();
        tasks.push(tokio::task::spawn_local(async move {
            while let Ok((stream, from)) = listener.accept().await {
                if open_tcp.get() >= MAX_TCP_CONNECTIONS {
                    drop(stream);
                    continue;
                }
                open_tcp.set(open_tcp.get() + 1);
                let open_tcp = open_tcp.clone();
                let (ap, net, counters, trace, name) = (
                    ap_tcp.clone(),
                    net_tcp.clone(),
                    counters_tcp.clone(),
                    trace_tcp.clone(),
                    name_tcp.clone(),
                );
                tokio::task::spawn_local(async move {
                    serve_tcp(stream, from, ap, net, counters, trace, name).await;
                    open_tcp.set(open_tcp.get().saturating_sub(1));
                });
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

/// One TCP connection to the AP: framed requests in, framed answers out, until the client
/// closes or sends something invalid.
async fn serve_tcp<N: Net>(
    mut stream: N::Stream,
    from: SocketAddr,
    ap: Rc<RefCell<AccessPoint>>,
    net: N,
    counters: Rc<RefCell<ApCounters>>,
    trace: Trace,
    name: String,
) {
    let mut reader = FrameReader::new();
    let mut buf = vec![0u8; 4096];
    // A bounded number of requests per connection: the AP is not a chat server.
    for _ in 0..16 {
        let n = match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => return,
            Ok(Ok(n)) => n,
        };
        if reader.push(&buf[..n]) < n {
            return;
        }
        loop {
            let frame = match reader.pop() {
                Ok(Some(message)) => match message.to_bytes() {
                    Ok(bytes) => bytes,
                    Err(_) => return,
                },
                Ok(None) => break,
                Err(_) => {
                    // Let the machine phrase the error reply from the raw bytes.
                    let raw = reader.take_rest();
                    let reply = ap.borrow_mut().handle_message(net.now(), from, &raw);
                    if let Some(reply) = reply {
                        let _ = stream.write_all(&reply).await;
                    }
                    return;
                }
            };
            let reply = ap.borrow_mut().handle_message(net.now(), from, &frame);
            *counters.borrow_mut() = ap.borrow().counters().clone();
            trace.record(
                net.now(),
                &name,
                "ap_request",
                json!({"from": from.to_string(), "transport": "tcp", "answered": reply.is_some()}),
            );
            if let Some(reply) = reply {
                if stream.write_all(&reply).await.is_err() {
                    return;
                }
            }
        }
    }
}
