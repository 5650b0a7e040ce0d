//! The TLS seam on an in-memory network: handshakes with the test CA, the server-name rule,
//! refusals (wrong name, unknown CA, wrong ALPN) with their errors, plain ports untouched, and
//! the seeded provider's bytes the same for the same seed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::time::{Instant, UnixTime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::time_provider::TimeProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use super::*;
use crate::net::{Listener, Net, Udp};

/// A network in memory: a connect is a duplex pipe handed to the listener of its address;
/// names resolve from a table. Bytes sent by connecting sides are recorded.
#[derive(Clone, Default)]
struct MemNet {
    listeners: Rc<RefCell<BTreeMap<SocketAddr, Incoming>>>,
    names: Rc<BTreeMap<String, Vec<IpAddr>>>,
    sent: Arc<Mutex<Vec<u8>>>,
}

/// Where a listener's connections arrive.
type Incoming = mpsc::Sender<(Recorded, SocketAddr)>;

/// A stream that records what is written to it.
struct Recorded {
    inner: DuplexStream,
    log: Option<Arc<Mutex<Vec<u8>>>>,
}

impl AsyncRead for Recorded {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        if let (std::task::Poll::Ready(Ok(n)), Some(log)) = (&polled, &self.log) {
            log.lock().unwrap().extend_from_slice(&data[..*n]);
        }
        polled
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

struct MemListener(tokio::sync::Mutex<mpsc::Receiver<(Recorded, SocketAddr)>>);

impl Listener for MemListener {
    type Stream = Recorded;
    async fn accept(&self) -> io::Result<(Recorded, SocketAddr)> {
        let next = self.0.lock().await.recv().await;
        next.ok_or_else(|| io::ErrorKind::BrokenPipe.into())
    }
}

struct NoUdp;

impl Udp for NoUdp {
    async fn send_to(&self, _: &[u8], _: SocketAddr) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    async fn recv_from(&self, _: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl Net for MemNet {
    type Stream = Recorded;
    type Listener = MemListener;
    type Udp = NoUdp;

    async fn connect(&self, to: SocketAddr) -> io::Result<Recorded> {
        let tx = self.listeners.borrow().get(&to).cloned();
        let tx = tx.ok_or(io::ErrorKind::ConnectionRefused)?;
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let theirs = Recorded {
            inner: theirs,
            log: None,
        };
        let from = SocketAddr::from(([10, 1, 0, 10], 40_000));
        tx.send((theirs, from))
            .await
            .map_err(|_| io::ErrorKind::ConnectionRefused)?;
        Ok(Recorded {
            inner: ours,
            log: Some(self.sent.clone()),
        })
    }
    async fn listen(&self, at: SocketAddr) -> io::Result<MemListener> {
        let (tx, rx) = mpsc::channel(8);
        self.listeners.borrow_mut().insert(at, tx);
        Ok(MemListener(tokio::sync::Mutex::new(rx)))
    }
    async fn bind_udp(&self, _: SocketAddr) -> io::Result<NoUdp> {
        Ok(NoUdp)
    }
    async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        self.names
            .get(name)
            .cloned()
            .ok_or_else(|| format!("{name}: no such name"))
    }
    fn now(&self) -> Instant {
        Instant::from_micros(0)
    }
    fn unix_now(&self) -> UnixTime {
        UnixTime::from_millis(1_767_225_600_000)
    }
}

/// 2026-01-01, always: the tests' clock.
#[derive(Debug)]
struct FixedTime;

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<rustls_pki_types::UnixTime> {
        Some(rustls_pki_types::UnixTime::since_unix_epoch(
            Duration::from_secs(1_767_225_600),
        ))
    }
}

const AP: &str = "ap-proxy.agora.io";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn client_tls(ca: &TestCa) -> Tls {
    let roots = roots_of(&[ca.root()]).unwrap();
    Tls::client(client_config(roots, seeded::provider(), Arc::new(FixedTime)).unwrap())
}

fn server_tls(issued: &Issued) -> Tls {
    let config = server_config(
        issued.chain.clone(),
        issued.key.clone_key(),
        seeded::provider(),
        Arc::new(FixedTime),
    )
    .unwrap();
    Tls::server(config)
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Serves one connection on `server` at `at`: echoes what it reads, upper-cased; the result
/// is what the server's stream reported.
async fn echo_once(listener: TlsListener<MemListener>) -> io::Result<Vec<u8>> {
    let (mut stream, _) = listener.accept().await?;
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).await?;
    assert_eq!(stream.alpn_protocol(), Some(ALPN));
    stream.write_all(&buf.to_ascii_uppercase()).await?;
    stream.shutdown().await?;
    Ok(buf.to_vec())
}

/// A client on `client` connects to `to` (after resolving `resolve`, if given) while `server`
/// serves one connection there: what each side got.
fn exchange(
    client: Tls,
    server: Tls,
    to: SocketAddr,
    resolve: Option<&str>,
) -> (io::Result<Vec<u8>>, io::Result<Vec<u8>>) {
    let mut names = BTreeMap::new();
    names.insert(AP.to_owned(), vec![to.ip()]);
    let mem = MemNet {
        names: Rc::new(names),
        ..MemNet::default()
    };
    let (client_net, server_net) = (client.wrap(mem.clone()), server.wrap(mem));
    run(async move {
        let listener = server_net.listen(to).await.unwrap();
        let serving = echo_once(listener);
        let calling = async {
            if let Some(name) = resolve {
                client_net.resolve(name).await.unwrap();
            }
            let mut stream = client_net.connect(to).await?;
            assert!(stream.is_tls());
            stream.write_all(b"hello").await?;
            let mut back = Vec::new();
            stream.read_to_end(&mut back).await?;
            Ok(back)
        };
        let (served, called) = tokio::join!(serving, calling);
        (called, served)
    })
}

fn ca(seed: u64) -> TestCa {
    TestCa::new(Entropy::from_u64(seed)).unwrap()
}

#[test]
fn a_relay_is_verified_by_its_ip_san_and_carries_bytes_both_ways() {
    let mut ca = ca(1);
    let relay = ip("120.92.118.34");
    let issued = ca.issue(&[], &[relay]).unwrap();
    let to = SocketAddr::new(relay, TLS_PORT);
    let (called, served) = exchange(client_tls(&ca), server_tls(&issued), to, None);
    assert_eq!(called.unwrap(), b"HELLO");
    assert_eq!(served.unwrap(), b"hello");
}

#[test]
fn an_access_point_reached_by_domain_is_verified_by_that_name() {
    let mut ca = ca(2);
    // A certificate for the name only: no IP SAN.
    let issued = ca.issue(&[AP], &[]).unwrap();
    let to = SocketAddr::new(ip("47.74.211.17"), TLS_PORT);
    let (called, _) = exchange(client_tls(&ca), server_tls(&issued), to, Some(AP));
    assert_eq!(called.unwrap(), b"HELLO");
    // The same address not resolved from the name (an IP list): its IP SAN is required.
    let (called, _) = exchange(client_tls(&ca), server_tls(&issued), to, None);
    let error = called.unwrap_err().to_string();
    assert!(
        error.contains("TLS to 47.74.211.17:443 (verifying IP 47.74.211.17)")
            && error.contains("not valid for name"),
        "{error}"
    );
}

#[test]
fn a_certificate_for_another_address_is_refused_naming_both() {
    let mut ca = ca(3);
    let issued = ca.issue(&[], &[ip("120.92.18.162")]).unwrap();
    let to = SocketAddr::new(ip("120.92.118.34"), TLS_PORT);
    let (called, served) = exchange(client_tls(&ca), server_tls(&issued), to, None);
    let error = called.unwrap_err().to_string();
    assert!(
        error.contains("invalid peer certificate")
            && error.contains("120.92.118.34")
            && error.contains("120.92.18.162"),
        "{error}"
    );
    // The server saw the client give up in its handshake.
    assert!(served.unwrap_err().to_string().contains("TLS from"));
}

#[test]
fn a_server_of_another_ca_is_refused_as_unknown_issuer() {
    let (ours, mut theirs) = (ca(4), ca(5));
    let relay = ip("120.92.118.34");
    let issued = theirs.issue(&[], &[relay]).unwrap();
    let to = SocketAddr::new(relay, TLS_PORT);
    let (called, _) = exchange(client_tls(&ours), server_tls(&issued), to, None);
    let error = called.unwrap_err().to_string();
    assert!(error.contains("UnknownIssuer"), "{error}");
}

/// Accepts any certificate: the tests of the server's own ALPN refusal.
#[derive(Debug)]
struct AcceptAnything;

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn client_offering(alpn: Vec<Vec<u8>>) -> Tls {
    let verifier = Arc::new(AcceptAnything);
    let config =
        client_config_with_verifier(verifier, seeded::provider(), Arc::new(FixedTime), alpn)
            .unwrap();
    Tls::client(config)
}

#[test]
fn a_client_offering_another_alpn_is_refused() {
    let mut ca = ca(6);
    let relay = ip("120.92.118.34");
    let issued = ca.issue(&[], &[relay]).unwrap();
    let to = SocketAddr::new(relay, TLS_PORT);
    let (called, served) = exchange(
        client_offering(vec![b"h2".to_vec()]),
        server_tls(&issued),
        to,
        None,
    );
    // rustls' server refuses in the ClientHello (a no_application_protocol alert); the
    // client's handshake fails with it, or on the closed stream, whichever it sees first.
    let error = called.unwrap_err().to_string();
    assert!(error.starts_with("TLS to 120.92.118.34:443"), "{error}");
    let served = served.unwrap_err().to_string();
    assert!(
        served.starts_with("TLS from 10.1.0.10:40000")
            && served.contains("the client did not offer ALPN cloudproxy/1"),
        "{served}"
    );
}

#[test]
fn a_client_offering_no_alpn_is_refused_by_the_server_and_by_itself() {
    let mut ca = ca(7);
    let relay = ip("120.92.118.34");
    let issued = ca.issue(&[], &[relay]).unwrap();
    let to = SocketAddr::new(relay, TLS_PORT);
    let (called, served) = exchange(client_offering(Vec::new()), server_tls(&issued), to, None);
    let error = called.unwrap_err().to_string();
    assert!(
        error.contains("the server did not select ALPN cloudproxy/1"),
        "{error}"
    );
    let served = served.unwrap_err().to_string();
    assert!(
        served.contains("the client did not offer ALPN cloudproxy/1"),
        "{served}"
    );
}

#[test]
fn other_ports_stay_plain_both_ways() {
    let mut ca = ca(8);
    let relay = ip("120.92.118.34");
    let issued = ca.issue(&[], &[relay]).unwrap();
    let to = SocketAddr::new(relay, 4000);
    let mem = MemNet::default();
    let (client_net, server_net) = (
        client_tls(&ca).wrap(mem.clone()),
        server_tls(&issued).wrap(mem.clone()),
    );
    run(async move {
        let listener = server_net.listen(to).await.unwrap();
        let (called, accepted) = tokio::join!(client_net.connect(to), listener.accept());
        let (mut called, mut accepted) = (called.unwrap(), accepted.unwrap().0);
        assert!(!called.is_tls() && !accepted.is_tls());
        called.write_all(b"C1 0D").await.unwrap();
        let mut buf = [0u8; 5];
        accepted.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"C1 0D");
    });
    assert_eq!(mem.sent.lock().unwrap().as_slice(), b"C1 0D");
}

/// The bytes a client sends in one TLS exchange, the seeded stream restarted from `seed`.
fn client_bytes(seed: u64) -> Vec<u8> {
    seeded::reseed(seed);
    let mut ca = ca(9);
    let relay = ip("120.92.118.34");
    let issued = ca.issue(&[], &[relay]).unwrap();
    let to = SocketAddr::new(relay, TLS_PORT);
    let mem = MemNet::default();
    let (client_net, server_net) = (
        client_tls(&ca).wrap(mem.clone()),
        server_tls(&issued).wrap(mem.clone()),
    );
    run(async move {
        let listener = server_net.listen(to).await.unwrap();
        let serving = echo_once(listener);
        let calling = async {
            let mut stream = client_net.connect(to).await.unwrap();
            stream.write_all(b"hello").await.unwrap();
            let mut back = Vec::new();
            stream.read_to_end(&mut back).await.unwrap();
        };
        let (served, ()) = tokio::join!(serving, calling);
        served.unwrap();
    });
    let sent = mem.sent.lock().unwrap().clone();
    sent
}

#[test]
fn the_seeded_provider_sends_the_same_bytes_for_the_same_seed() {
    let (a, b, other) = (client_bytes(11), client_bytes(11), client_bytes(12));
    // A TLS handshake record (0x16, TLS 1.0 record version for the ClientHello), then more.
    assert_eq!(a.first(), Some(&0x16));
    assert!(a.windows(5).all(|w| w != b"hello"), "plaintext on the wire");
    assert_eq!(a, b);
    assert_ne!(a, other);
}

#[test]
fn the_test_ca_is_the_same_for_the_same_entropy() {
    let (mut a, mut b, c) = (ca(21), ca(21), ca(22));
    assert_eq!(a.root(), b.root());
    assert_ne!(a.root(), c.root());
    let relay = [ip("120.92.118.34")];
    let (x, y) = (
        a.issue(&[AP], &relay).unwrap(),
        b.issue(&[AP], &relay).unwrap(),
    );
    assert_eq!(x.chain, y.chain);
    assert_eq!(x.key_pem, y.key_pem);
    assert!(a.root_pem().starts_with("-----BEGIN CERTIFICATE-----"));
}

#[test]
fn a_silent_client_never_holds_up_the_accept_loop() {
    let mut ca = ca(10);
    let relay = ip("120.92.118.34");
    let issued = ca.issue(&[], &[relay]).unwrap();
    let to = SocketAddr::new(relay, TLS_PORT);
    let mem = MemNet::default();
    let (client_net, server_net) = (
        client_tls(&ca).wrap(mem.clone()),
        server_tls(&issued).wrap(mem.clone()),
    );
    run(async move {
        let listener = server_net.listen(to).await.unwrap();
        // A client that connects and never says a word (no ClientHello).
        let _silent = mem.connect(to).await.unwrap();
        let (silent, _) = tokio::time::timeout(Duration::from_secs(1), listener.accept())
            .await
            .expect("accepted at once: the handshake waits for the first read")
            .unwrap();
        assert!(silent.is_tls() && silent.alpn_protocol().is_none());
        // The next client is served while the silent one's handshake is still pending.
        let (served, called) = tokio::join!(echo_once(listener), async {
            let mut stream = client_net.connect(to).await?;
            stream.write_all(b"hello").await?;
            let mut back = Vec::new();
            stream.read_to_end(&mut back).await?;
            io::Result::Ok(back)
        });
        assert_eq!(served.unwrap(), b"hello");
        assert_eq!(called.unwrap(), b"HELLO");
        drop(silent);
    });
}

#[test]
fn the_server_counts_handshakes_completed_and_failed_by_class() {
    let (mut ours, theirs) = (ca(8), ca(9));
    let relay = ip("120.92.118.34");
    let issued = ours.issue(&[], &[relay]).unwrap();
    let to = SocketAddr::new(relay, TLS_PORT);
    let counters = Arc::new(TlsCounters::default());
    let server = || server_tls(&issued).counting(counters.clone());

    let (called, _) = exchange(client_tls(&ours), server(), to, None);
    assert_eq!(called.unwrap(), b"HELLO");
    // A client trusting another CA (in this memory pipe the client's alert is lost with the
    // stream it drops: the server sees an EOF; real sockets deliver it, sim/cli's real_tls).
    let (called, _) = exchange(client_tls(&theirs), server(), to, None);
    let error = called.unwrap_err();
    assert!(is_handshake_failure(&error), "{error}");
    // Another ALPN (refused by rustls), and none at all (refused by the stream).
    for alpn in [vec![b"h2".to_vec()], Vec::new()] {
        let (called, _) = exchange(client_offering(alpn), server(), to, None);
        assert!(is_handshake_failure(&called.unwrap_err()));
    }
    let counts = counters.read();
    assert_eq!(counts.completed, 1);
    assert_eq!(counts.failed(HandshakeFailure::NoAlpn), 2);
    assert_eq!(
        counts.failed(HandshakeFailure::BadCertificate) + counts.failed(HandshakeFailure::Other),
        1
    );
}

#[test]
fn a_failed_handshake_is_classed_by_the_alert_received() {
    let alert = |d| io::Error::new(io::ErrorKind::InvalidData, rustls::Error::AlertReceived(d));
    use rustls::AlertDescription as A;
    for d in [A::UnknownCA, A::BadCertificate, A::CertificateExpired] {
        assert_eq!(
            HandshakeFailure::of(&alert(d)),
            HandshakeFailure::BadCertificate
        );
    }
    assert_eq!(
        HandshakeFailure::of(&alert(A::NoApplicationProtocol)),
        HandshakeFailure::NoAlpn
    );
    let no_alpn = io::Error::new(
        io::ErrorKind::InvalidData,
        rustls::Error::NoApplicationProtocol,
    );
    assert_eq!(HandshakeFailure::of(&no_alpn), HandshakeFailure::NoAlpn);
    assert_eq!(
        HandshakeFailure::of(&alert(A::HandshakeFailure)),
        HandshakeFailure::Other
    );
    let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
    assert_eq!(HandshakeFailure::of(&eof), HandshakeFailure::Other);
}

#[test]
fn a_plain_connect_failure_is_not_a_handshake_failure() {
    let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
    assert!(!is_handshake_failure(&refused));
    let failed = io::Error::other(HandshakeFailed("TLS to 10.0.0.1:443: x".into()));
    assert!(is_handshake_failure(&failed));
    assert_eq!(failed.to_string(), "TLS to 10.0.0.1:443: x");
}
