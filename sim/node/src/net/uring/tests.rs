//! The ring on real loopback sockets: many sockets in one submit, segmented runs, a failing
//! message that stops its own socket's chain only, and a socket that cannot take more.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::{SendRing, Sent};

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

/// Every datagram waiting on `s` (the first within 5 s, the rest within 200 ms each).
fn drain(s: &UdpSocket) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = s.recv(&mut buf) {
        got.push(buf.get(..n).unwrap_or_default().to_vec());
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
    }
    got
}

/// What a submit should report for a socket.
fn sent(datagrams: usize, failed: bool) -> Sent {
    Sent { datagrams, failed }
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().expect("addr")
}

/// The ring, or `None` (said on stderr) where the kernel refuses io_uring by policy or age:
/// the relay then never uses one, and `serve`'s fallback is what `real_dataplane` tests.
fn ring() -> Option<SendRing> {
    match SendRing::new() {
        Ok(ring) => Some(ring),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::ENOSYS | libc::EACCES)
            ) || e.kind() == std::io::ErrorKind::Unsupported =>
        {
            eprintln!("io_uring refused on this machine ({e}): nothing to test here");
            None
        }
        Err(e) => panic!("io_uring setup failed: {e}"),
    }
}

#[test]
fn many_sockets_go_in_one_submit_each_in_order() {
    let Some(mut ring) = ring() else {
        return;
    };
    let (a, b) = (udp(), udp());
    let senders: Vec<UdpSocket> = (0..3).map(|_| udp()).collect();
    // Socket 0: a run of 6 to `a` (segmented) then 2 to `b`; socket 1: one to each; socket 2:
    // a shorter last datagram ends its run.
    let big: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 1200]).collect();
    let mut plan: Vec<Vec<(SocketAddr, &[u8])>> = vec![Vec::new(); 3];
    for d in &big {
        plan[0].push((addr(&a), d));
    }
    plan[0].push((addr(&b), b"b0"));
    plan[0].push((addr(&b), b"b1"));
    plan[1].push((addr(&a), b"one-a"));
    plan[1].push((addr(&b), b"one-b"));
    plan[2].push((addr(&a), &big[0]));
    plan[2].push((addr(&a), b"short"));
    let mut staged = Vec::new();
    for (s, batch) in senders.iter().zip(&plan) {
        // SAFETY: the sockets and `plan`'s bytes outlive the submit below.
        let (index, n) = unsafe { ring.stage(s.as_raw_fd(), batch) };
        assert_eq!(n, batch.len(), "the ring has room for all");
        staged.push(index);
    }
    ring.submit().expect("submit");
    for (index, batch) in staged.iter().zip(&plan) {
        assert_eq!(ring.sent(*index), sent(batch.len(), false));
    }
    let at_a = drain(&a);
    let at_b = drain(&b);
    assert_eq!(
        at_a.len(),
        6 + 1 + 2,
        "every datagram to a, whole: {at_a:?}"
    );
    assert_eq!(
        at_b,
        vec![b"b0".to_vec(), b"b1".to_vec(), b"one-b".to_vec()]
    );
    // The run arrived cut back into its datagrams, in order (another socket's may interleave).
    let run: Vec<&Vec<u8>> = at_a.iter().filter(|d| d.len() == 1200).collect();
    assert_eq!(run.len(), 7);
    assert_eq!(ring.cancelled(), 0);
}

#[test]
fn a_failed_message_stops_its_own_socket_only() {
    let Some(mut ring) = ring() else {
        return;
    };
    let (to, other_to) = (udp(), udp());
    let (s1, s2) = (udp(), udp());
    // Port 0 is refused by the kernel (EINVAL): the chain stops there.
    let refused = SocketAddr::from(([127, 0, 0, 1], 0));
    let first: Vec<(SocketAddr, &[u8])> = vec![
        (addr(&to), b"before"),
        (refused, b"refused"),
        (addr(&to), b"after"),
    ];
    let second: Vec<(SocketAddr, &[u8])> = vec![(addr(&other_to), b"unharmed")];
    // SAFETY: sockets and bytes outlive the submit.
    let (i1, _) = unsafe { ring.stage(s1.as_raw_fd(), &first) };
    let (i2, _) = unsafe { ring.stage(s2.as_raw_fd(), &second) };
    ring.submit().expect("submit");
    assert_eq!(ring.sent(i1), sent(1, true));
    assert_eq!(ring.sent(i2), sent(1, false));
    assert_eq!(
        drain(&to),
        vec![b"before".to_vec()],
        "nothing after the failure"
    );
    assert_eq!(drain(&other_to), vec![b"unharmed".to_vec()]);
}

#[test]
fn a_socket_that_cannot_take_more_is_reported_not_waited_for() {
    // A TCP connection whose peer never reads, filled until it would block: a send on it
    // cannot complete now (UDP on loopback never blocks, so a stream stands in for a full
    // socket; the ring's handling does not depend on the protocol).
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let mut full = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let _peer = listener.accept().expect("accept");
    full.set_nonblocking(true).expect("nonblocking");
    let chunk = [0u8; 65536];
    let mut filled = 0usize;
    while filled < 64 << 20 {
        match full.write(&chunk) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    assert!(filled < 64 << 20, "the connection filled up");
    let (to, s) = (udp(), udp());
    let nowhere = SocketAddr::from(([127, 0, 0, 1], 9));
    let stuck: Vec<(SocketAddr, &[u8])> = vec![(nowhere, b"cannot go"), (nowhere, b"nor this one")];
    let fine: Vec<(SocketAddr, &[u8])> = vec![(addr(&to), b"goes")];
    let Some(mut ring) = ring() else {
        return;
    };
    // A watchdog: the submit must return without the peer ever reading.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog =
        std::thread::spawn(move || done_rx.recv_timeout(Duration::from_secs(20)).is_ok());
    // SAFETY: sockets and bytes outlive the submit.
    let (i1, _) = unsafe { ring.stage(full.as_raw_fd(), &stuck) };
    let (i2, _) = unsafe { ring.stage(s.as_raw_fd(), &fine) };
    ring.submit().expect("submit");
    let _ = done_tx.send(());
    assert!(
        watchdog.join().expect("watchdog"),
        "submit returned in time"
    );
    assert_eq!(ring.sent(i1), sent(0, true));
    assert_eq!(ring.sent(i2), sent(1, false));
    assert_eq!(drain(&to), vec![b"goes".to_vec()]);
}

#[test]
fn a_full_ring_stages_what_fits_and_says_how_much() {
    let Some(mut ring) = ring() else {
        return;
    };
    let to = udp();
    let s = udp();
    // Distinct destinations are one message each: more than the ring holds.
    let dests: Vec<UdpSocket> = (0..4).map(|_| udp()).collect();
    let batch: Vec<(SocketAddr, &[u8])> = (0..super::RING_MESSAGES + 10)
        .map(|i| (addr(&dests[i % 4]), &b"x"[..]))
        .collect();
    // SAFETY: sockets and bytes outlive the submit.
    let (i, n) = unsafe { ring.stage(s.as_raw_fd(), &batch) };
    assert_eq!(
        n,
        super::RING_MESSAGES,
        "one message per datagram, up to the ring's size"
    );
    let (_, more) = unsafe { ring.stage(s.as_raw_fd(), &batch) };
    assert_eq!(more, 0, "nothing more fits");
    ring.submit().expect("submit");
    assert_eq!(ring.sent(i).datagrams, super::RING_MESSAGES);
    let got: usize = dests.iter().map(|d| drain(d).len()).sum();
    assert_eq!(got, super::RING_MESSAGES);
    drop(to);
    // The ring is reusable: the next round starts empty.
    let again: Vec<(SocketAddr, &[u8])> = vec![(addr(&dests[0]), b"again")];
    let (j, n) = unsafe { ring.stage(s.as_raw_fd(), &again) };
    assert_eq!((j, n), (0, 1));
    ring.submit().expect("submit");
    assert_eq!(drain(&dests[0]), vec![b"again".to_vec()]);
}
