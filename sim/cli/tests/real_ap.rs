//! The access point's driver on real sockets (loopback, 127.81.0.0/16): the machine's rules
//! hold through it. Over UDP and TCP no answer is larger than its request; one address cannot
//! take every TCP slot and the others are still served; a silent or trickling connection is
//! closed at the idle timeout; a client that pipelines requests and never reads gets at most
//! the request cap of answers, then its connection closes, and costs nothing after.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::ap::{ApConfig, ApCounters};
use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::wire::{
    ErrorCode, Message, RelayInfo, TicketKey, AP_REQUEST_PADDED_LEN, FLAG_UDP_MEDIA,
};
use cloudproxy_node::net::{Net, TokioNet};
use cloudproxy_node::nodes::ap::run_ap_on;
use cloudproxy_node::trace::Trace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PORT: u16 = 8000;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The access point of test `n` (each test has its own, tests run in parallel).
fn ap_addr(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::from([127, 82, n, 1]), PORT)
}

/// Runs `test` next to access point `n`, with small TCP bounds; returns its counters.
fn with_ap<F, Fut>(n: u8, test: F) -> ApCounters
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let counters = Rc::new(RefCell::new(ApCounters::default()));
    let relay = RelayInfo {
        addr: ip("127.81.2.1"),
        tcp_port: 4000,
        udp_port: 0,
    };
    let mut config = ApConfig::new(TicketKey::from_bytes([9; 32]), vec![relay]);
    config.max_tcp_connections = 32;
    config.max_tcp_connections_per_ip = 4;
    config.max_tcp_connections_per_prefix = 16;
    config.tcp_idle_timeout = Duration::from_secs(5);
    config.max_requests_per_tcp_connection = 4;
    config.max_requests_per_ip = 1_000;
    config.max_requests_per_prefix = 1_000;
    let local = tokio::task::LocalSet::new();
    let shared = counters.clone();
    local.block_on(&runtime, async move {
        let net = TokioNet::new(ap_addr(n).ip());
        let ap = tokio::task::spawn_local(async move {
            let entropy = Entropy::from_u64(1);
            let trace = Trace::default();
            run_ap_on(net, "ap".into(), config, entropy, shared, trace, &[PORT]).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!ap.is_finished(), "the access point did not start");
        tokio::time::timeout(Duration::from_secs(60), test())
            .await
            .expect("the test finished within 60 s");
        ap.abort();
    });
    let c = counters.borrow().clone();
    c
}

fn padded() -> Vec<u8> {
    Message::padded_ap_request(1, "real-ap", FLAG_UDP_MEDIA)
        .to_bytes()
        .unwrap()
}

fn unpadded() -> Vec<u8> {
    Message::ApRequest {
        request_id: 1,
        app_id: "real-ap".into(),
        flags: FLAG_UDP_MEDIA,
        padding_len: 0,
    }
    .to_bytes()
    .unwrap()
}

async fn connect(from: &str, n: u8) -> TcpStream {
    TokioNet::new(ip(from)).connect(ap_addr(n)).await.unwrap()
}

/// Reads until the peer closes or `timeout` passes; returns the bytes and whether it closed.
async fn read_to_close(stream: &mut TcpStream, timeout: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(timeout, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .is_ok();
    (got, closed)
}

/// The messages in `bytes`, back to back.
fn messages(mut bytes: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while let Ok((msg, used)) = Message::decode(bytes) {
        out.push(msg);
        bytes = &bytes[used..];
    }
    out
}

#[test]
fn no_answer_is_larger_than_its_request_on_real_sockets() {
    let c = with_ap(1, || async {
        let udp = TokioNet::new(ip("127.81.10.1"))
            .bind_udp("0.0.0.0:0".parse().unwrap())
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        for (request, granted) in [(padded(), true), (unpadded(), false)] {
            udp.send_to(&request, ap_addr(1)).await.unwrap();
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from(&mut buf))
                .await
                .expect("an answer")
                .unwrap();
            assert!(n <= request.len(), "{n} bytes answer {}", request.len());
            let answer = Message::decode_datagram(&buf[..n]).unwrap();
            match answer {
                Message::ApResponse { .. } => assert!(granted),
                Message::Error { code, .. } => {
                    assert!(!granted);
                    assert_eq!(code, ErrorCode::PaddingRequired);
                }
                other => panic!("{other:?}"),
            }
        }
        // Over TCP: the answer, then nothing more until the client closes; an unpadded
        // request: an error no larger than it, then the close.
        let mut tcp = connect("127.81.10.1", 1).await;
        tcp.write_all(&padded()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = tcp.read(&mut answer).await.unwrap();
        assert!(n > 0 && n <= AP_REQUEST_PADDED_LEN);
        let mut tcp = connect("127.81.10.1", 1).await;
        tcp.write_all(&unpadded()).await.unwrap();
        let (got, closed) = read_to_close(&mut tcp, Duration::from_secs(5)).await;
        assert!(closed && !got.is_empty() && got.len() <= unpadded().len());
    });
    assert_eq!((c.answered, c.refused_padding), (2, 2));
}

#[test]
fn one_address_cannot_take_every_slot_and_idle_connections_are_shed() {
    let c = with_ap(2, || async {
        // Ten connections from one address: four are kept, six are closed at once.
        let mut kept = Vec::new();
        let mut refused = 0;
        for _ in 0..10 {
            let mut s = connect("127.81.20.1", 2).await;
            let (_, closed) = read_to_close(&mut s, Duration::from_millis(500)).await;
            if closed {
                refused += 1;
            } else {
                kept.push(s);
            }
        }
        assert_eq!((kept.len(), refused), (4, 6));
        // Someone else is served meanwhile.
        let mut good = connect("127.81.21.1", 2).await;
        good.write_all(&padded()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        assert!(good.read(&mut answer).await.unwrap() > 0);
        // A trickling client and the silent ones are closed at the idle timeout (5 s).
        let mut slow = connect("127.81.22.1", 2).await;
        for byte in &padded()[..5] {
            slow.write_all(std::slice::from_ref(byte)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let (_, closed) = read_to_close(&mut slow, Duration::from_secs(10)).await;
        assert!(closed, "the trickling client was not closed");
        for mut s in kept {
            let (_, closed) = read_to_close(&mut s, Duration::from_secs(10)).await;
            assert!(closed, "a silent connection outlived the idle timeout");
        }
        // Its slots are free again.
        let mut again = connect("127.81.20.1", 2).await;
        again.write_all(&padded()).await.unwrap();
        assert!(again.read(&mut answer).await.unwrap() > 0);
    });
    assert_eq!(c.tcp_refused_per_ip, 6);
    assert!(c.tcp_idle_timeouts >= 4, "{c:?}");
    assert_eq!(c.tcp_incomplete_requests, 1);
}

#[test]
fn a_client_that_never_reads_gets_the_request_cap_and_is_closed() {
    let c = with_ap(3, || async {
        let mut greedy = Vec::new();
        for i in 0..4u8 {
            let mut s = connect(&format!("127.81.30.{}", i + 1), 3).await;
            // A hundred pipelined requests, never read until the end.
            let flood: Vec<u8> = (0..100).flat_map(|_| padded()).collect();
            s.write_all(&flood).await.unwrap();
            greedy.push(s);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for mut s in greedy {
            let (got, closed) = read_to_close(&mut s, Duration::from_secs(5)).await;
            assert!(closed, "a greedy connection was not closed");
            let answers = messages(&got);
            assert_eq!(answers.len(), 4, "the request cap");
            assert!(answers
                .iter()
                .all(|m| matches!(m, Message::ApResponse { .. })));
        }
    });
    assert_eq!((c.answered, c.tcp_request_caps), (16, 4));
}
