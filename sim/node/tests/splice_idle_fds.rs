//! An idle spliced tunnel holds its two sockets and no pipe: after bytes crossed each of many
//! tunnels both ways, the process holds about 4 descriptors per tunnel here (both ends of both
//! connections, the test owning the far ends) and the pool's few pipes, not the 8 it would hold
//! with two pipes per tunnel; once the tunnels ended, none is left. Its own test binary, so that no other test opens descriptors
//! meanwhile. Linux only (the kernel's splice); loopback, bounded in count and time.

#![cfg(target_os = "linux")]

use std::time::Duration;

use cloudproxy_node::net::{Net, TokioNet, TunnelLink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TUNNELS: usize = 64;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.unwrap(), b.unwrap().0)
}

#[test]
fn idle_spliced_tunnels_hold_no_pipes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let before = open_fds();
        let mut ends = Vec::new();
        let mut links = Vec::new();
        for _ in 0..TUNNELS {
            let (client, relay_client_side) = pair(&listener).await;
            let (relay_upstream_side, upstream) = pair(&listener).await;
            let link = TunnelLink::new(Duration::from_secs(2), || {});
            links.push(link.clone());
            tokio::task::spawn_local(async move {
                TokioNet::any()
                    .tunnel(relay_client_side, relay_upstream_side, link)
                    .await
            });
            ends.push((client, upstream));
        }
        // Bytes both ways through every tunnel, then silence.
        tokio::time::timeout(Duration::from_secs(20), async {
            for (client, upstream) in &mut ends {
                client.write_all(&[1; 1000]).await.unwrap();
                let mut got = [0u8; 1000];
                upstream.read_exact(&mut got).await.unwrap();
                upstream.write_all(&[2; 500]).await.unwrap();
                let mut got = [0u8; 500];
                client.read_exact(&mut got).await.unwrap();
                assert_eq!(got, [2; 500]);
            }
        })
        .await
        .expect("bytes crossed every tunnel");
        assert!(
            links.iter().all(TunnelLink::is_kernel),
            "spliced, not copied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let per_tunnel = (open_fds() - before) as f64 / TUNNELS as f64;
        // 4 sockets per tunnel, plus at most the pool's 16 pipes (32 descriptors) shared.
        assert!(
            per_tunnel <= 4.0 + 32.0 / TUNNELS as f64,
            "{per_tunnel} descriptors per idle tunnel"
        );
        // Once every tunnel ended, the pool's pipes are closed too: nothing outlives them.
        drop(ends);
        let settled = tokio::time::timeout(Duration::from_secs(10), async {
            while open_fds() > before {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            settled.is_ok(),
            "{} descriptors left, {before} before",
            open_fds()
        );
    });
}
