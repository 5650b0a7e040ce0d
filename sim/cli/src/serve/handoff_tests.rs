//! The handoff between shards on real loopback sockets: a TLS connection leaves the thread
//! that accepted it and is served by another thread's runtime with the bytes its client sent
//! after the first message; a full queue drops it, counted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_node::net::{Listener, Net, TokioNet};
use cloudproxy_node::tls::{
    client_config, real_provider, real_time, roots_of, server_config, TestCa, Tls, TlsListener,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The first message, read by the accepting shard before the handoff.
const FIRST: &[u8] = b"TunnelOpen";

/// What the client writes after [`FIRST`], in the same write.
fn more() -> Vec<u8> {
    (0..50_000u32).map(|i| (i % 253) as u8).collect()
}

/// The server's and the client's TLS (a fresh CA, a certificate for 127.0.0.1).
fn tls() -> (Arc<ServerConfig>, Tls) {
    let mut ca = TestCa::new(Entropy::from_u64(7)).unwrap();
    let issued = ca.issue(&[], &[LOCAL]).unwrap();
    let server = server_config(issued.chain, issued.key, real_provider(), real_time()).unwrap();
    let roots = roots_of(&[ca.root()]).unwrap();
    let client = client_config(roots, real_provider(), real_time()).unwrap();
    (Arc::new(server), Tls::client(client))
}

/// A TLS listener on 127.0.0.1 at a port the kernel had free: (listener, its address).
async fn listen(server: &Arc<ServerConfig>) -> (TlsListener<tokio::net::TcpListener>, SocketAddr) {
    let free = std::net::TcpListener::bind((LOCAL, 0)).unwrap();
    let at = free.local_addr().unwrap();
    drop(free);
    let mut tls = Tls::default().on_ports(&[at.port()]);
    tls.server = Some(server.clone());
    (tls.wrap(TokioNet::new(LOCAL)).listen(at).await.unwrap(), at)
}

/// A TLS connection accepted and its first message read: (stream, client's address).
async fn accepted(
    listener: &TlsListener<tokio::net::TcpListener>,
) -> (TlsStream<TcpStream>, SocketAddr) {
    let (mut stream, peer) = listener.accept().await.unwrap();
    let mut first = vec![0u8; FIRST.len()];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(first, FIRST);
    (stream, peer)
}

/// A client of `at`: writes [`FIRST`] and [`more`] at once, then returns the stream.
async fn client(tls: Tls, at: SocketAddr) -> TlsStream<TcpStream> {
    let net = tls.on_ports(&[at.port()]).wrap(TokioNet::new(LOCAL));
    let mut stream = net.connect(at).await.unwrap();
    let mut sent = FIRST.to_vec();
    sent.extend(more());
    stream.write_all(&sent).await.unwrap();
    stream
}

/// Runs `test` on a current-thread runtime and a `LocalSet`, bounded.
fn run<T>(test: impl std::future::Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, async {
        tokio::time::timeout(Duration::from_secs(20), test)
            .await
            .expect("the test's bound")
    })
}

#[test]
fn a_tls_connection_moves_to_another_shard_with_what_followed_its_first_message() {
    let (server, client_tls) = tls();
    let (to_owner, owner_rx) = mpsc::channel(HANDOFF_QUEUE);
    let stats = Arc::new(ShardTls::default());

    // The owner: another thread, another runtime.
    let owner_server = server.clone();
    let owner = std::thread::spawn(move || {
        run(async move {
            let mut incoming = take_over(owner_rx, Some(owner_server));
            let (mut stream, _peer, data) = incoming.recv().await.unwrap();
            assert_eq!(data, FIRST, "the plaintext read before the move");
            stream.write_all(b"owner").await.unwrap();
            let mut rest = vec![0u8; more().len()];
            stream.read_exact(&mut rest).await.unwrap();
            assert!(rest == more(), "what followed the first message, in order");
            let mut last = [0u8; 3];
            stream.read_exact(&mut last).await.unwrap();
            assert_eq!(&last, b"bye");
            stream.shutdown().await.unwrap();
        })
    });

    let moved = stats.clone();
    run(async move {
        let (listener, at) = listen(&server).await;
        let calling = tokio::task::spawn_local(async move {
            let mut stream = client(client_tls, at).await;
            let mut reply = [0u8; 5];
            stream.read_exact(&mut reply).await.unwrap();
            assert_eq!(&reply, b"owner");
            stream.write_all(b"bye").await.unwrap();
            let mut end = Vec::new();
            stream.read_to_end(&mut end).await.unwrap();
            end
        });
        let (stream, peer) = accepted(&listener).await;
        let out = handoff_out(vec![to_owner], moved);
        out(0, stream, peer, FIRST.to_vec());
        assert!(
            calling.await.unwrap().is_empty(),
            "the owner closed cleanly"
        );
    });
    owner.join().unwrap();
    assert_eq!(stats.moved.load(Ordering::Relaxed), 1);
    assert_eq!(stats.move_dropped.load(Ordering::Relaxed), 0);
}

#[test]
fn a_full_queue_drops_the_tls_connection_and_counts_it() {
    let (server, client_tls) = tls();
    let stats = Arc::new(ShardTls::default());
    let (to_owner, mut owner_rx) = mpsc::channel(1);
    run(async {
        let (listener, at) = listen(&server).await;
        // The owner's queue is full with a connection that waits.
        let waiting = tokio::task::spawn_local(client(client_tls.clone(), at));
        let (first, peer) = accepted(&listener).await;
        handoff_out(vec![to_owner.clone()], stats.clone())(0, first, peer, Vec::new());
        assert_eq!(stats.moved.load(Ordering::Relaxed), 1);

        let dropped = tokio::task::spawn_local(client(client_tls, at));
        let (second, peer) = accepted(&listener).await;
        handoff_out(vec![to_owner], stats.clone())(0, second, peer, Vec::new());
        assert_eq!(stats.move_dropped.load(Ordering::Relaxed), 1);
        // The dropped client hears its connection end.
        let mut stream = dropped.await.unwrap();
        let mut buf = [0u8; 1];
        assert!(matches!(stream.read(&mut buf).await, Ok(0) | Err(_)));
        // The one queued is still there, and only it.
        let queued = owner_rx.recv().await.unwrap();
        assert!(queued.tls.is_some());
        assert!(owner_rx.try_recv().is_err());
        drop(waiting);
    });
}

#[test]
fn a_plain_connection_moves_without_rustls_state() {
    let (to_owner, mut owner_rx) = mpsc::channel(1);
    let stats = Arc::new(ShardTls::default());
    run(async {
        let listener = tokio::net::TcpListener::bind((LOCAL, 0)).await.unwrap();
        let at = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(at), listener.accept());
        let (client, (server, peer)) = (client.unwrap(), server.unwrap());
        handoff_out(vec![to_owner], stats.clone())(
            0,
            TlsStream::Plain(server),
            peer,
            b"x".to_vec(),
        );
        let moving = owner_rx.recv().await.unwrap();
        assert!(moving.tls.is_none());
        assert_eq!(
            (moving.peer, moving.data),
            (client.local_addr().unwrap(), b"x".to_vec())
        );
        assert_eq!(
            stats.moved.load(Ordering::Relaxed),
            0,
            "only TLS moves are counted"
        );
    });
}
