//! `bench_relay`: the relays the benchmarks measure, each in a process of its own so that its
//! CPU time comes from the kernel's accounting of that process (`/proc/<pid>/stat`,
//! `/proc/<pid>/task/*/schedstat`), never from wall time.
//!
//! ```text
//! bench_relay tcp-copy-8k  --listen ADDR --upstream ADDR   tokio copy_bidirectional, 8 KiB buffers
//! bench_relay tcp-copy-64k --listen ADDR --upstream ADDR   the same with 64 KiB buffers
//! bench_relay tcp-splice   --listen ADDR --upstream ADDR   splice(2) through a pipe per direction
//! bench_relay udp-naive    --listen ADDR --upstream ADDR   tokio recv_from/send_to, a socket per flow
//! bench_relay udp-mmsg     --listen ADDR --upstream ADDR   recvmmsg/sendmmsg batches of 64
//! bench_relay serve        --config FILE                   the real `cloudproxy serve` code
//! ```
//!
//! Every relay runs on one current-thread tokio runtime, like `serve` today, so the ratios
//! compare implementations, not thread counts. It prints `ready <addr>` on stdout once it
//! serves, and exits when its standard input closes (the benchmark that started it ended,
//! however it ended) or on SIGTERM. `serve` logs JSON lines on stderr (`session_closed` with
//! the relay's reason).

mod mmsg;
mod splice;

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::rc::Rc;

use tokio::net::{TcpListener, TcpStream, UdpSocket};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("bench_relay: {e}");
        std::process::exit(2);
    }
}

fn flag(args: &[String], name: &str) -> Result<String, String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .ok_or_else(|| format!("{name} is required"))
}

fn addr(args: &[String], name: &str) -> Result<SocketAddr, String> {
    let text = flag(args, name)?;
    text.parse()
        .map_err(|_| format!("{name} {text}: not an address:port"))
}

/// Ends the process once standard input closes.
fn exit_with_stdin() {
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        while matches!(io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
}

fn run(args: &[String]) -> Result<(), String> {
    let mode = args
        .first()
        .ok_or("usage: bench_relay MODE [--listen ADDR --upstream ADDR | --config FILE]")?;
    exit_with_stdin();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    if mode == "serve" {
        let config = flag(args, "--config")?;
        return local.block_on(&runtime, serve(config));
    }
    let (listen, upstream) = (addr(args, "--listen")?, addr(args, "--upstream")?);
    let result: io::Result<()> = local.block_on(&runtime, async {
        match mode.as_str() {
            "tcp-copy-8k" => tcp_copy(listen, upstream, 8 * 1024).await,
            "tcp-copy-64k" => tcp_copy(listen, upstream, 64 * 1024).await,
            "tcp-splice" => tcp_splice(listen, upstream).await,
            "udp-naive" => udp_naive(listen, upstream).await,
            "udp-mmsg" => mmsg::relay(listen, upstream).await,
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown mode {other}"),
            )),
        }
    });
    result.map_err(|e| e.to_string())
}

fn ready(addr: SocketAddr) {
    println!("ready {addr}");
}

async fn tcp_copy(listen: SocketAddr, upstream: SocketAddr, buf: usize) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    ready(listener.local_addr()?);
    loop {
        let (mut client, _) = listener.accept().await?;
        tokio::task::spawn_local(async move {
            let _ = client.set_nodelay(true);
            let Ok(mut up) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = up.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut up, buf, buf).await;
        });
    }
}

async fn tcp_splice(listen: SocketAddr, upstream: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    ready(listener.local_addr()?);
    loop {
        let (client, _) = listener.accept().await?;
        tokio::task::spawn_local(async move {
            let _ = client.set_nodelay(true);
            let Ok(up) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = up.set_nodelay(true);
            let (client, up) = (Rc::new(client), Rc::new(up));
            let there = tokio::task::spawn_local(splice::one_way(client.clone(), up.clone()));
            let _ = splice::one_way(up, client).await;
            let _ = there.await;
        });
    }
}

/// Most flows the UDP relays track (a flow per client address, as a TURN allocation).
pub const MAX_FLOWS: usize = 100_000;

async fn udp_naive(listen: SocketAddr, upstream: SocketAddr) -> io::Result<()> {
    let front = Rc::new(UdpSocket::bind(listen).await?);
    ready(front.local_addr()?);
    let mut flows: HashMap<SocketAddr, Rc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match front.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(_) => continue,
        };
        let up = match flows.get(&from) {
            Some(up) => up.clone(),
            None if flows.len() >= MAX_FLOWS => continue,
            None => {
                let up = UdpSocket::bind(SocketAddr::new(listen.ip(), 0)).await?;
                up.connect(upstream).await?;
                let up = Rc::new(up);
                let (reader, front) = (up.clone(), front.clone());
                tokio::task::spawn_local(async move {
                    let mut buf = vec![0u8; 2048];
                    loop {
                        match reader.recv(&mut buf).await {
                            Ok(n) => {
                                let _ = front.send_to(&buf[..n], from).await;
                            }
                            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                            Err(_) => return,
                        }
                    }
                });
                flows.insert(from, up.clone());
                up
            }
        };
        let _ = up.send(&buf[..n]).await;
    }
}

async fn serve(config: String) -> Result<(), String> {
    use cloudproxy::serve::config::{ServeConfig, TICKET_KEY_ENV};
    use cloudproxy::serve::logging::{self, LogFormat};
    logging::init(LogFormat::Json, "info")?;
    let config = ServeConfig::load(std::path::Path::new(&config)).map_err(|e| e.to_string())?;
    let key = config
        .ticket_key(None, std::env::var(TICKET_KEY_ENV).ok())
        .map_err(|e| e.to_string())?;
    let plan = config.plan().map_err(|e| e.to_string())?.with_key(&key);
    let (trigger, stop) = cloudproxy::serve::shutdown::channel();
    // Never fired: the process ends with its standard input.
    std::mem::forget(trigger);
    cloudproxy::serve::serve(plan, stop, |_, _| println!("ready serve")).await
}
