//! The endpoint's budgets, on loopback sockets: slowloris clients are shed oldest first and
//! time out; a scrape still gets through; a huge request is answered 431.

use super::*;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// Runs `test` against an endpoint with `limits` on 127.0.0.1, on a fresh single-threaded
/// runtime (the endpoint is `spawn_local`), the whole bounded by 30 s.
fn with_endpoint<F, Fut>(limits: EndpointLimits, test: F)
where
    F: FnOnce(SocketAddr, Rc<EndpointCounters>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sources = Sources::default();
        let counters = sources.endpoint.clone();
        let server = tokio::task::spawn_local(serve_with(listener, sources, limits));
        tokio::time::timeout(Duration::from_secs(30), test(addr, counters))
            .await
            .expect("the test ended within 30 s");
        server.abort();
    });
}

/// A whole `GET /metrics`: the status line and the body.
async fn scrape(addr: SocketAddr) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// A slowloris: connects and sends half a request line, never the rest.
async fn slowloris(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metr").await.unwrap();
    s
}

/// Whether the peer closed `s` within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(wait, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Waits (bounded) until the endpoint has accepted `n` connections.
async fn accepted(counters: &EndpointCounters, n: u64) {
    for _ in 0..1000 {
        if counters.accepted.get() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("accepted {} of {n}", counters.accepted.get());
}

#[test]
fn slowloris_clients_are_shed_oldest_first_and_a_scrape_gets_through() {
    let limits = EndpointLimits {
        // Long enough that no slowloris times out during the test: only shedding frees slots.
        request_timeout: Duration::from_secs(60),
        ..EndpointLimits::default()
    };
    with_endpoint(limits, |addr, counters| async move {
        let extra = 4;
        let mut slow = Vec::new();
        for _ in 0..MAX_CONNECTIONS + extra {
            slow.push(slowloris(addr).await);
        }
        accepted(&counters, (MAX_CONNECTIONS + extra) as u64).await;
        assert_eq!(counters.shed.get(), extra as u64);
        let (status, body) = scrape(addr).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        // The scrape saw itself counted: it took the slot of the oldest slowloris left.
        assert!(body.contains("cloudproxy_metrics_shed_total 5"), "{body}");
        assert_eq!(counters.shed.get(), extra as u64 + 1);
        assert_eq!(counters.refused.get(), 0);
        assert_eq!(counters.answered.get(), 1);
        // The oldest ones were closed; the newest still wait for their request.
        for s in &mut slow[..=extra] {
            assert!(closed_within(s, Duration::from_secs(5)).await, "not shed");
        }
        for s in &mut slow[extra + 1..] {
            assert!(!closed_within(s, Duration::from_millis(50)).await);
        }
        assert_eq!(counters.open.get(), (MAX_CONNECTIONS - 1) as u64);
        // Many scrapes in a row, each one shedding a slowloris or reusing a free slot.
        for _ in 0..40 {
            assert_eq!(scrape(addr).await.0, "HTTP/1.1 200 OK");
        }
        assert_eq!(counters.answered.get(), 41);
        assert!(counters.open.get() <= MAX_CONNECTIONS as u64);
    });
}

#[test]
fn a_request_never_finished_is_dropped_at_its_timeout() {
    let limits = EndpointLimits {
        request_timeout: Duration::from_millis(300),
        ..EndpointLimits::default()
    };
    with_endpoint(limits, |addr, counters| async move {
        let mut s = slowloris(addr).await;
        // One byte at a time does not reset the budget: it is for the whole request.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = s.write_all(b"i").await;
        }
        assert!(closed_within(&mut s, Duration::from_secs(10)).await);
        assert_eq!(counters.timeouts.get(), 1);
        assert_eq!(counters.answered.get(), 0);
        assert_eq!(counters.open.get(), 0);
    });
}

#[test]
fn a_request_over_its_bound_is_answered_431_and_counted() {
    with_endpoint(EndpointLimits::default(), |addr, counters| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut request = b"GET /metrics HTTP/1.1\r\n".to_vec();
        request.extend(std::iter::repeat_n(b'x', MAX_REQUEST + 10));
        // The endpoint may close before reading everything: a failed write is fine.
        let _ = s.write_all(&request).await;
        let mut text = Vec::new();
        let _ = s.read_to_end(&mut text).await;
        let text = String::from_utf8_lossy(&text);
        assert!(text.starts_with("HTTP/1.1 431"), "{text}");
        assert_eq!(counters.too_large.get(), 1);
    });
}

#[test]
fn when_every_slot_is_busy_answering_a_newcomer_is_refused() {
    // A table of one slot, its connection marked as answering by hand.
    let slots = RefCell::new(Slots::default());
    let counters = EndpointCounters::default();
    slots.borrow_mut().open.insert(
        0,
        Slot {
            reading: false,
            abort: None,
        },
    );
    assert!(!make_room(&slots, &counters, 1));
    assert_eq!(counters.shed.get(), 0);
    slots.borrow_mut().open.insert(
        1,
        Slot {
            reading: true,
            abort: None,
        },
    );
    assert!(make_room(&slots, &counters, 2));
    assert_eq!(counters.shed.get(), 1);
    assert!(slots.borrow().open.contains_key(&0));
    assert!(!slots.borrow().open.contains_key(&1));
}
