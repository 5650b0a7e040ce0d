//! Small upstream servers that answer the load generator from inside SD-RTN (bind them on an
//! address in the relay's configured SD-RTN range, e.g. `127.0.3.2` for the default
//! `127.0.3.0/24`):
//!
//! - **TCP echo** (default port [`ECHO_PORT`]): every byte back, in order; a half-close is
//!   passed on once everything was echoed.
//! - **TCP sink** (default port [`SINK_PORT`]): a discard server with a byte count, so that a
//!   one-way transfer has an end the sender can see. The client sends `len u64` (big-endian)
//!   then `len` bytes; once the sink has read them all it answers `len u64`. Repeat at will.
//! - **UDP echo** (default port [`ECHO_PORT`]): every datagram back to its source.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] TCP connections at once (more are closed at once),
//! one 64 KiB buffer per connection.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;

/// The TCP and UDP echo port.
pub const ECHO_PORT: u16 = 7007;
/// The TCP sink port.
pub const SINK_PORT: u16 = 7009;
/// Most TCP connections served at once, per server.
pub const MAX_CONNECTIONS: usize = 60_000;
/// Read buffer per connection.
const BUF: usize = 64 * 1024;

/// Where the servers listen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpstreamAddrs {
    /// TCP echo.
    pub tcp_echo: SocketAddr,
    /// TCP sink.
    pub tcp_sink: SocketAddr,
    /// UDP echo.
    pub udp_echo: SocketAddr,
}

impl UpstreamAddrs {
    /// The default ports on `ip`.
    pub fn on(ip: IpAddr) -> Self {
        UpstreamAddrs {
            tcp_echo: SocketAddr::new(ip, ECHO_PORT),
            tcp_sink: SocketAddr::new(ip, SINK_PORT),
            udp_echo: SocketAddr::new(ip, ECHO_PORT),
        }
    }
}

/// What the servers did.
#[derive(Debug, Default)]
pub struct UpstreamStats {
    /// TCP connections accepted.
    pub connections: AtomicU64,
    /// TCP connections open now.
    pub open: AtomicUsize,
    /// Bytes echoed over TCP.
    pub tcp_echoed: AtomicU64,
    /// Bytes the sink discarded.
    pub tcp_sunk: AtomicU64,
    /// Datagrams echoed.
    pub udp_echoed: AtomicU64,
}

/// The servers on a thread of their own (a current-thread runtime); stopped when dropped.
pub struct UpstreamThread {
    /// Where they listen.
    pub addrs: UpstreamAddrs,
    /// What they did.
    pub stats: Arc<UpstreamStats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UpstreamThread {
    /// Binds the servers at `addrs` (port 0: any) and starts them.
    pub fn start(addrs: UpstreamAddrs) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stats = Arc::new(UpstreamStats::default());
        let (bound, servers) = runtime.block_on(bind(addrs))?;
        let (stop, stopped) = oneshot::channel();
        let task_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("upstream".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = servers.run(task_stats) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(UpstreamThread {
            addrs: bound,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for UpstreamThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The bound sockets, ready to serve.
pub struct Servers {
    echo: TcpListener,
    sink: TcpListener,
    udp: UdpSocket,
}

/// Binds the three servers (port 0: any); returns where they are.
pub async fn bind(addrs: UpstreamAddrs) -> io::Result<(UpstreamAddrs, Servers)> {
    fn ctx(what: &'static str, at: SocketAddr) -> impl Fn(io::Error) -> io::Error {
        move |e| io::Error::new(e.kind(), format!("cannot bind the {what} on {at}: {e}"))
    }
    let echo = TcpListener::bind(addrs.tcp_echo)
        .await
        .map_err(ctx("tcp echo", addrs.tcp_echo))?;
    let sink = TcpListener::bind(addrs.tcp_sink)
        .await
        .map_err(ctx("tcp sink", addrs.tcp_sink))?;
    let udp = UdpSocket::bind(addrs.udp_echo)
        .await
        .map_err(ctx("udp echo", addrs.udp_echo))?;
    let bound = UpstreamAddrs {
        tcp_echo: echo.local_addr()?,
        tcp_sink: sink.local_addr()?,
        udp_echo: udp.local_addr()?,
    };
    Ok((bound, Servers { echo, sink, udp }))
}

impl Servers {
    /// Serves until the future is dropped (or a listener fails).
    pub async fn run(self, stats: Arc<UpstreamStats>) -> io::Result<()> {
        tokio::try_join!(
            accept(self.echo, stats.clone(), false),
            accept(self.sink, stats.clone(), true),
            udp_echo(self.udp, stats),
        )?;
        Ok(())
    }
}

async fn accept(listener: TcpListener, stats: Arc<UpstreamStats>, sink: bool) -> io::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // Out of descriptors or an aborted connection: that peer only.
            Err(e) if e.kind() != io::ErrorKind::InvalidInput => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if stats.open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            continue;
        }
        let _ = stream.set_nodelay(true);
        stats.connections.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let stats = stats.clone();
        tokio::spawn(async move {
            let _ = if sink {
                serve_sink(stream, &stats).await
            } else {
                serve_echo(stream, &stats).await
            };
            stats.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn serve_echo(mut stream: TcpStream, stats: &UpstreamStats) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return stream.shutdown().await;
        }
        // Counted before the echo leaves, so that whoever reads it sees the count.
        stats.tcp_echoed.fetch_add(n as u64, Ordering::Relaxed);
        stream.write_all(&buf[..n]).await?;
    }
}

async fn serve_sink(mut stream: TcpStream, stats: &UpstreamStats) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let mut header = [0u8; 8];
        match stream.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u64::from_be_bytes(header);
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left.min(BUF as u64)).unwrap_or(BUF);
            let n = stream.read(&mut buf[..want]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            left -= n as u64;
            stats.tcp_sunk.fetch_add(n as u64, Ordering::Relaxed);
        }
        stream.write_all(&len.to_be_bytes()).await?;
    }
}

async fn udp_echo(socket: UdpSocket, stats: Arc<UpstreamStats>) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            // An ICMP error from an earlier send: that peer only.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        };
        // Counted before the answer leaves, so that whoever receives it sees the count.
        stats.udp_echoed.fetch_add(1, Ordering::Relaxed);
        if socket.send_to(&buf[..n], from).await.is_err() {
            stats.udp_echoed.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Sends `len` bytes to a [sink](self) on `stream` and waits for its count.
pub async fn sink_transfer(stream: &mut TcpStream, len: u64, chunk: &[u8]) -> io::Result<()> {
    stream.write_all(&len.to_be_bytes()).await?;
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        stream.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    let mut answer = [0u8; 8];
    stream.read_exact(&mut answer).await?;
    if u64::from_be_bytes(answer) != len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the sink counted another length",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> UpstreamAddrs {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        UpstreamAddrs {
            tcp_echo: any,
            tcp_sink: any,
            udp_echo: any,
        }
    }

    #[test]
    fn echo_sink_and_udp_answer() {
        let servers = UpstreamThread::start(loopback()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut echo = TcpStream::connect(servers.addrs.tcp_echo).await.unwrap();
            echo.write_all(b"hello").await.unwrap();
            let mut back = [0u8; 5];
            echo.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"hello");

            let mut sink = TcpStream::connect(servers.addrs.tcp_sink).await.unwrap();
            sink_transfer(&mut sink, 200_000, &[7u8; 8192])
                .await
                .unwrap();
            sink_transfer(&mut sink, 3, &[7u8; 8192]).await.unwrap();

            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            udp.send_to(b"ping", servers.addrs.udp_echo).await.unwrap();
            let mut buf = [0u8; 16];
            let (n, _) =
                tokio::time::timeout(std::time::Duration::from_secs(5), udp.recv_from(&mut buf))
                    .await
                    .unwrap()
                    .unwrap();
            assert_eq!(&buf[..n], b"ping");
        });
        assert_eq!(servers.stats.tcp_sunk.load(Ordering::Relaxed), 200_003);
        assert_eq!(servers.stats.udp_echoed.load(Ordering::Relaxed), 1);
    }
}
