//! The two tunnel pumps, `splice(2)` and the bounded copy, are observably the same: the same
//! bytes arrive on each side, in order, the link reports exactly the bytes written, and the
//! pumps end the same way for each kind of end. On loopback, bounded in bytes and time.

use std::time::Duration;

use cloudproxy_node::net::{Net, TokioNet, TunnelEnd, TunnelLink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BYTES: usize = 8 << 20;

/// A connected pair through loopback: (one end, the other).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.unwrap(), b.unwrap().0)
}

/// A deterministic byte pattern, different per direction.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

struct Run {
    /// What the upstream end received, and what the client end received.
    received: (Vec<u8>, Vec<u8>),
    /// What the link reported: (up, down).
    reported: (u64, u64),
    end: TunnelEnd,
    kernel: bool,
}

/// Client ⇄ [pump] ⇄ upstream: both ends send their pattern at once, then the client closes.
async fn run(net: TokioNet) -> Run {
    let (mut client, relay_client_side) = pair().await;
    let (relay_upstream_side, mut upstream) = pair().await;
    let link = TunnelLink::new(Duration::from_secs(2), || {});
    let pump = tokio::task::spawn_local({
        let (net, link) = (net.clone(), link.clone());
        async move {
            net.tunnel(relay_client_side, relay_upstream_side, link)
                .await
        }
    });
    let (up_bytes, down_bytes) = (pattern(1, BYTES), pattern(2, BYTES / 2));
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let client_side = async {
        cw.write_all(&up_bytes).await.unwrap();
        let mut got = vec![0; down_bytes.len()];
        cr.read_exact(&mut got).await.unwrap();
        cw.shutdown().await.unwrap();
        got
    };
    let upstream_side = async {
        uw.write_all(&down_bytes).await.unwrap();
        let mut got = vec![0; up_bytes.len()];
        ur.read_exact(&mut got).await.unwrap();
        got
    };
    let (to_client, to_upstream) = tokio::join!(client_side, upstream_side);
    let end = tokio::time::timeout(Duration::from_secs(10), pump)
        .await
        .expect("the pump ends once the client closed")
        .unwrap();
    // The upstream side sees the end: its read returns 0.
    let mut rest = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), upstream.read(&mut rest))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the pump's end closes the upstream side");
    assert_eq!(to_upstream, up_bytes);
    assert_eq!(to_client, down_bytes);
    Run {
        received: (to_upstream, to_client),
        reported: link.take(),
        end,
        kernel: link.is_kernel(),
    }
}

fn local<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

#[test]
fn splice_and_copy_move_the_same_bytes_and_report_the_same_counts() {
    local(async {
        let kernel = run(TokioNet::any()).await;
        let copy = run(TokioNet::any().with_copy_tunnels()).await;
        assert_eq!(kernel.kernel, cfg!(target_os = "linux"));
        assert!(!copy.kernel);
        assert_eq!(kernel.received, copy.received);
        assert_eq!(kernel.reported, (BYTES as u64, (BYTES / 2) as u64));
        assert_eq!(kernel.reported, copy.reported);
        assert_eq!(kernel.end, TunnelEnd::ClientClosed);
        assert_eq!(kernel.end, copy.end);
    });
}

/// A closing pump writes what it holds, then ends; an upstream that closes ends it too.
async fn ends(net: TokioNet) -> (TunnelEnd, TunnelEnd) {
    // The relay asks the pump to close.
    let (_client, a) = pair().await;
    let (b, _upstream) = pair().await;
    let link = TunnelLink::new(Duration::from_millis(500), || {});
    let pump = tokio::task::spawn_local({
        let (net, link) = (net.clone(), link.clone());
        async move { net.tunnel(a, b, link).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    link.close();
    let asked = tokio::time::timeout(Duration::from_secs(5), pump)
        .await
        .unwrap()
        .unwrap();
    // SD-RTN closes.
    let (_client, a) = pair().await;
    let (b, upstream) = pair().await;
    let link = TunnelLink::new(Duration::from_millis(500), || {});
    let pump = tokio::task::spawn_local({
        let net = net.clone();
        async move { net.tunnel(a, b, link).await }
    });
    drop(upstream);
    let closed = tokio::time::timeout(Duration::from_secs(5), pump)
        .await
        .unwrap()
        .unwrap();
    (asked, closed)
}

#[test]
fn both_pumps_end_the_same_way() {
    local(async {
        let kernel = ends(TokioNet::any()).await;
        let copy = ends(TokioNet::any().with_copy_tunnels()).await;
        assert_eq!(kernel, (TunnelEnd::Closed, TunnelEnd::UpstreamClosed));
        assert_eq!(kernel, copy);
    });
}

/// A receiver that does not read slows the sender; nothing is cut, and the pump holds a
/// bounded amount.
#[test]
fn a_slow_receiver_slows_the_sender_and_is_never_cut() {
    local(async {
        for net in [TokioNet::any(), TokioNet::any().with_copy_tunnels()] {
            let (mut client, a) = pair().await;
            let (b, mut upstream) = pair().await;
            let link = TunnelLink::new(Duration::from_secs(1), || {});
            let pump = tokio::task::spawn_local({
                let (net, link) = (net.clone(), link.clone());
                async move { net.tunnel(a, b, link).await }
            });
            // Send as much as the path takes within 300 ms while upstream reads nothing.
            let chunk = vec![7u8; 64 * 1024];
            let mut sent = 0usize;
            let _ = tokio::time::timeout(Duration::from_millis(300), async {
                loop {
                    // `write` is cancel-safe: a cut-off call wrote nothing.
                    sent += client.write(&chunk).await.unwrap();
                }
            })
            .await;
            assert!(!pump.is_finished(), "the tunnel was cut");
            // Bounded: what left the client is in socket buffers and one pipe or buffer.
            assert!(
                sent < 64 << 20,
                "{sent} bytes went into a tunnel nobody reads"
            );
            // Now the receiver reads everything.
            let mut got = 0usize;
            let mut buf = vec![0u8; 256 * 1024];
            while got < sent {
                let n = tokio::time::timeout(Duration::from_secs(5), upstream.read(&mut buf))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(n > 0);
                got += n;
            }
            assert_eq!(got, sent);
            assert_eq!(link.take().0, sent as u64);
            drop(client);
            let _ = tokio::time::timeout(Duration::from_secs(5), pump).await;
        }
    });
}
