//! SOCKS5 CONNECT through an in-process SOCKS5 server (the simulation's enterprise server,
//! `cloudproxy_node::nodes::socks`, on tokio sockets): core's client handshake machine
//! (`cloudproxy_core::socks5::ClientHandshake`) against a raw client that writes the same
//! bytes and reads the replies' lengths, in one criterion group. Each iteration connects,
//! handshakes to the TCP echo, sends one byte, reads it back and closes. Throughput: one
//! connection.
//!
//! Run: `cargo bench -p cloudproxy-benches --bench socks5`
// Measures or bounds its waits on the wall clock (clippy.toml disallows the system clocks
// for the simulation's sake).
#![allow(clippy::disallowed_methods)]

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use cloudproxy_benches::drive::Client;
use cloudproxy_benches::world;
use cloudproxy_core::socks5::{Address, ClientHandshake, ClientProgress, Command, ServerPolicy};
use cloudproxy_node::net::TokioNet;
use cloudproxy_node::nodes::socks::{run_socks5, Socks5Stats};
use criterion::{Criterion, Throughput};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SOCKS_IP: [u8; 4] = [127, 90, 4, 1];
const SOCKS_PORT: u16 = 1080;

async fn core_client(server: SocketAddr, target: SocketAddr) {
    let mut s = TcpStream::connect(server).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut hs = ClientHandshake::new(None, Command::Connect, Address::Ip(target));
    let mut buf = [0u8; 512];
    loop {
        while let Some(out) = hs.poll_transmit() {
            s.write_all(&out).await.expect("write");
        }
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "the SOCKS5 server closed");
        if let ClientProgress::Done { .. } = hs.handle_bytes(&buf[..n]).expect("handshake") {
            break;
        }
    }
    echo_one(&mut s).await;
}

async fn raw_client(server: SocketAddr, request: &[u8]) {
    let mut s = TcpStream::connect(server).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut buf = [0u8; 10];
    s.write_all(&[5, 1, 0]).await.expect("greeting");
    s.read_exact(&mut buf[..2]).await.expect("method");
    s.write_all(request).await.expect("request");
    s.read_exact(&mut buf[..10]).await.expect("reply");
    assert_eq!(buf[1], 0, "CONNECT refused");
    echo_one(&mut s).await;
}

async fn echo_one(s: &mut TcpStream) {
    s.write_all(b"x").await.expect("write");
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.expect("echo");
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let up = world::upstream();
    let client = Client::new();
    let ip = IpAddr::from(SOCKS_IP);
    let stats = Rc::new(RefCell::new(Socks5Stats::default()));
    let server = SocketAddr::new(ip, SOCKS_PORT);
    let net = TokioNet::new(ip);
    client.local.spawn_local(run_socks5(
        net.clone(),
        net,
        ip,
        SOCKS_PORT,
        ServerPolicy::default(),
        stats.clone(),
    ));
    client.run(async {
        while TcpStream::connect(server).await.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let target = up.addrs.tcp_echo;
    let IpAddr::V4(t) = target.ip() else {
        unreachable!("the echo is on IPv4")
    };
    let mut request = vec![5, 1, 0, 1];
    request.extend_from_slice(&t.octets());
    request.extend_from_slice(&target.port().to_be_bytes());

    let mut group = c.benchmark_group("socks5_connect");
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_client", |b| {
        b.iter_custom(|iters| {
            client.run(async {
                let start = Instant::now();
                for _ in 0..iters {
                    raw_client(server, &request).await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("core_client", |b| {
        b.iter_custom(|iters| {
            client.run(async {
                let start = Instant::now();
                for _ in 0..iters {
                    core_client(server, target).await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    c.final_summary();
    assert_eq!(stats.borrow().connects_failed, 0);
}
