//! `TokioNet`, the real-socket `Net`: every node has its own loopback address (binds to
//! `0.0.0.0` land on it, connections and datagrams leave from it), its `now` is monotonic and
//! its `unix_now` the system's wall clock; and `StreamPumps` cuts a peer that does not read once its write queue is full.
// clippy.toml disallows the system's clocks; this test checks TokioNet's timeline against the system's clock.
#![allow(clippy::disallowed_methods)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudproxy_node::net::{Listener, Net, StreamEvent, StreamPumps, TokioNet, Udp, EVENT_QUEUE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn run<F: std::future::Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, future)
}

#[test]
fn nodes_bind_and_send_from_their_own_loopback_address() {
    run(async {
        let (a, b) = (
            TokioNet::new(ip("127.70.0.1")),
            TokioNet::new(ip("127.70.0.2")),
        );
        let any = SocketAddr::from(([0, 0, 0, 0], 0));

        let listener = a.listen(any).await.unwrap();
        let at = listener.local_addr().unwrap();
        assert_eq!(at.ip(), a.local_ip());
        let (connected, accepted) = tokio::join!(b.connect(at), Listener::accept(&listener));
        let (_, peer) = accepted.unwrap();
        assert_eq!(
            peer.ip(),
            b.local_ip(),
            "the connection leaves from b's address"
        );
        assert_eq!(connected.unwrap().local_addr().unwrap().ip(), b.local_ip());

        let (ua, ub) = (
            a.bind_udp(any).await.unwrap(),
            b.bind_udp(any).await.unwrap(),
        );
        assert_eq!(Udp::local_addr(&ua).unwrap().ip(), a.local_ip());
        Udp::send_to(&ub, b"ping", Udp::local_addr(&ua).unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = Udp::recv_from(&ua, &mut buf).await.unwrap();
        assert_eq!((&buf[..n], from.ip()), (&b"ping"[..], b.local_ip()));

        // A specific address is kept as asked.
        let exact = SocketAddr::new(ip("127.70.0.3"), 0);
        let other = a.listen(exact).await.unwrap();
        assert_eq!(other.local_addr().unwrap().ip(), ip("127.70.0.3"));

        // Tickets' timeline is the system's wall clock.
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let unix = Duration::from_millis(a.unix_now().as_millis());
        assert!(unix.abs_diff(wall) < Duration::from_secs(1));
        // The machines' timeline is monotonic, one per process (shared by every node of it),
        // and not the wall clock: it starts near zero, not near the Unix epoch's count.
        let (t0, t1) = (a.now(), b.now());
        assert!(t1 >= t0 && a.now() >= t1, "{t0} {t1}");
        assert!(Duration::from_micros(t1.as_micros()) < wall / 2, "{t1}");
    });
}

#[test]
fn a_peer_that_never_reads_is_cut_when_its_write_queue_is_full() {
    run(async {
        let (a, b) = (
            TokioNet::new(ip("127.70.1.1")),
            TokioNet::new(ip("127.70.1.2")),
        );
        let listener = a.listen("0.0.0.0:0".parse().unwrap()).await.unwrap();
        let at = listener.local_addr().unwrap();
        // The peer accepts and then never reads.
        let holder = tokio::task::spawn_local(async move {
            let (stream, _) = Listener::accept(&listener).await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        });
        let (tx, mut rx) = mpsc::channel(EVENT_QUEUE);
        const LIMIT: usize = 64 * 1024;
        let mut pumps = StreamPumps::new(tx).with_queue_limit(LIMIT);
        pumps.connect(&b, 1u32, at, Duration::from_secs(5));
        assert!(matches!(rx.recv().await, Some((1, StreamEvent::Connected))));

        let chunk = vec![0x5A; 16 * 1024];
        let mut sent = 0usize;
        let cut = tokio::time::timeout(Duration::from_secs(10), async {
            // Bounded: at most 256 MiB offered before the kernel's buffers and the queue fill.
            for _ in 0..16_384 {
                pumps.send(1, chunk.clone());
                sent += chunk.len();
                assert!(pumps.queued_bytes() <= LIMIT);
                tokio::task::yield_now().await;
                if let Ok(event) = rx.try_recv() {
                    return Some(event);
                }
            }
            None
        })
        .await
        .expect("bounded in time");
        assert!(
            matches!(cut, Some((1, StreamEvent::Closed))),
            "{cut:?} after {sent} bytes"
        );
        assert_eq!(pumps.overflows(), 1);
        assert_eq!(pumps.queued_bytes(), 0);
        assert_eq!(pumps.len(), 0);
        holder.abort();
    });
}

#[test]
fn a_closed_stream_flushes_its_queue_first() {
    run(async {
        let (a, b) = (
            TokioNet::new(ip("127.70.2.1")),
            TokioNet::new(ip("127.70.2.2")),
        );
        let listener = a.listen("0.0.0.0:0".parse().unwrap()).await.unwrap();
        let at = listener.local_addr().unwrap();
        let reader = tokio::task::spawn_local(async move {
            let (mut stream, _) = Listener::accept(&listener).await.unwrap();
            let mut all = Vec::new();
            stream.read_to_end(&mut all).await.unwrap();
            all
        });
        let (tx, mut rx) = mpsc::channel(EVENT_QUEUE);
        let mut pumps = StreamPumps::new(tx).with_queue_limit(1 << 20);
        pumps.connect(&b, 7u32, at, Duration::from_secs(5));
        assert!(matches!(rx.recv().await, Some((7, StreamEvent::Connected))));
        for i in 0..100u8 {
            pumps.send(7, vec![i; 1000]);
        }
        pumps.close(7);
        let all = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(all.len(), 100_000);
        assert!(all.chunks(1000).enumerate().all(|(i, c)| c[0] == i as u8));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pumps.queued_bytes(), 0);
    });
}

#[test]
fn a_peer_faster_than_the_machine_is_held_back_not_buffered() {
    run(async {
        let (a, b) = (
            TokioNet::new(ip("127.70.3.1")),
            TokioNet::new(ip("127.70.3.2")),
        );
        let listener = a.listen("0.0.0.0:0".parse().unwrap()).await.unwrap();
        let at = listener.local_addr().unwrap();
        // The peer offers 64 MiB as fast as it can.
        const OFFERED: usize = 64 << 20;
        let writer = tokio::task::spawn_local(async move {
            let (mut stream, _) = Listener::accept(&listener).await.unwrap();
            stream.write_all(&vec![0xA5; OFFERED]).await.unwrap();
            stream
        });
        let (tx, mut rx) = mpsc::channel(EVENT_QUEUE);
        let mut pumps = StreamPumps::new(tx);
        pumps.connect(&b, 3u32, at, Duration::from_secs(5));
        assert!(matches!(rx.recv().await, Some((3, StreamEvent::Connected))));
        // The machine takes nothing for a while: the reader must stop at the channel's bound,
        // so the peer cannot finish (its bytes wait in the kernel's buffers, then in its own).
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!writer.is_finished(), "64 MiB went into memory unread");
        assert!(rx.len() <= EVENT_QUEUE);
        // Once the machine reads, everything arrives, in order and complete.
        let mut got = 0usize;
        let drained = tokio::time::timeout(Duration::from_secs(60), async {
            while got < OFFERED {
                match rx.recv().await {
                    Some((3, StreamEvent::Data(data))) => {
                        assert!(data.iter().all(|b| *b == 0xA5));
                        got += data.len();
                    }
                    other => panic!("unexpected {other:?} after {got} bytes"),
                }
            }
        })
        .await;
        assert!(drained.is_ok(), "only {got} of {OFFERED} bytes arrived");
        let stream = writer.await.unwrap();
        drop(stream);
    });
}
