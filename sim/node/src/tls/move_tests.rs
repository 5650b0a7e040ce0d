//! A TLS server connection moves between threads: taken apart on the runtime that accepted
//! it ([`TlsStream::into_server_parts`]), put back together on another thread's runtime
//! ([`TlsStream::resumed`]), on real loopback sockets. Nothing the client sent before the
//! move is lost (plaintext rustls had decrypted but not handed out, records not yet read),
//! and the stream carries bytes both ways after it, its first write included (made before
//! the new runtime saw the socket writable; the client waits for it before saying more).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;

/// The first message the accepting side reads before the move.
const FIRST: &[u8] = b"first";

/// What the client sends after [`FIRST`] in the same write: some in the same TLS record,
/// the rest in records that follow (more than one read of rustls' from the socket).
fn more() -> Vec<u8> {
    (0..100_000u32).map(|i| (i % 251) as u8).collect()
}

/// Runs `f` on a fresh current-thread runtime of its own thread, bounded.
fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            tokio::time::timeout(Duration::from_secs(20), f())
                .await
                .expect("the test's bound")
        })
    })
}

/// The parts of a server connection on their way to another thread.
type Parts = (std::net::TcpStream, ServerConnection, SocketAddr);

#[test]
fn a_server_connection_moves_to_another_runtime_with_every_byte_it_held() {
    let mut ca = TestCa::new(Entropy::from_u64(12)).unwrap();
    let issued = ca.issue(&[], &[Ipv4Addr::LOCALHOST.into()]).unwrap();
    let server =
        Arc::new(server_config(issued.chain, issued.key, real_provider(), real_time()).unwrap());
    let roots = roots_of(&[ca.root()]).unwrap();
    let client = Arc::new(client_config(roots, real_provider(), real_time()).unwrap());
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let (parts_tx, parts_rx) = mpsc::channel::<Parts>();

    // The accepting thread: the handshake, the first message, then the move.
    let accept_config = server.clone();
    let accepting = on_thread(move || {
        Box::pin(async move {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let (tcp, peer) = listener.accept().await.unwrap();
            let accept = TlsAcceptor::from(accept_config).accept(tcp);
            let mut stream = TlsStream::accepting(accept, peer, HandshakeWatch::default());
            let mut first = [0u8; FIRST.len()];
            stream.read_exact(&mut first).await.unwrap();
            assert_eq!(&first, FIRST);
            let (tcp, mut connection) = stream.into_server_parts().unwrap();
            // The rest of the first record is still inside rustls, decrypted, not read.
            let held = connection.process_new_packets().unwrap();
            assert!(held.plaintext_bytes_to_read() > 0, "{held:?}");
            parts_tx
                .send((tcp.into_std().unwrap(), connection, peer))
                .unwrap();
        })
    });

    // The owner's thread: rebuilds the stream on its own runtime and serves it.
    let owning = on_thread(move || {
        Box::pin(async move {
            let (tcp, connection, peer) = parts_rx.recv().unwrap();
            let tcp = TcpStream::from_std(tcp).unwrap();
            let mut stream = TlsStream::resumed(tcp, connection, server, peer);
            // The first write, at once (the new registration has not seen the socket
            // writable: rustls keeps the record until a later read or write pushes it).
            stream.write_all(b"owner here").await.unwrap();
            let mut rest = vec![0u8; more().len()];
            stream.read_exact(&mut rest).await.unwrap();
            assert!(rest == more(), "the bytes sent before the move, in order");
            assert_eq!(stream.alpn_protocol(), Some(ALPN));
            let mut after = [0u8; 5];
            stream.read_exact(&mut after).await.unwrap();
            stream.write_all(&after.to_ascii_uppercase()).await.unwrap();
            stream.shutdown().await.unwrap();
        })
    });

    // The client: one write with the first message and more, then a conversation.
    let calling = on_thread(move || {
        Box::pin(async move {
            let at = addr_rx.recv().unwrap();
            let tcp = TcpStream::connect(at).await.unwrap();
            let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
            let mut stream = TlsConnector::from(client).connect(name, tcp).await.unwrap();
            let mut sent = FIRST.to_vec();
            sent.extend(more());
            stream.write_all(&sent).await.unwrap();
            let mut reply = [0u8; 10];
            stream.read_exact(&mut reply).await.unwrap();
            assert_eq!(&reply, b"owner here");
            stream.write_all(b"after").await.unwrap();
            let mut back = Vec::new();
            stream.read_to_end(&mut back).await.unwrap();
            back
        })
    });

    accepting.join().unwrap();
    owning.join().unwrap();
    assert_eq!(calling.join().unwrap(), b"AFTER");
}

#[test]
fn only_an_established_server_stream_comes_apart() {
    let plain: TlsStream<Vec<u8>> = TlsStream::Plain(Vec::new());
    assert!(matches!(
        plain.into_server_parts(),
        Err(TlsStream::Plain(_))
    ));
    let failed: TlsStream<Vec<u8>> = TlsStream::Failed(std::io::ErrorKind::InvalidData, "x".into());
    assert!(matches!(
        failed.into_server_parts(),
        Err(TlsStream::Failed(..))
    ));
}
