//! An SDK client node: the application machine of `cloudproxy-core`
//! ([`App`]: the script on the SDK engine, the proxy client, signalling with acknowledgements
//! and re-sends, join gating, media, the report's events) driven over the [`Net`] seam. This
//! file is only IO: one UDP socket, the stream pumps, the resolver, one timer, the trace and
//! the shared report. Many clients share one enterprise host.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::app::{App, AppConfig, AppEvent, AppOutput};
use cloudproxy_core::client::{ClientInput, ClientOutput, ConnId, NetworkChange};
use cloudproxy_core::sdrtn::SdRtnEndpoints;
use tokio::sync::mpsc;

use crate::net::{sleep_until, Net, StreamEvent, StreamPumps, Udp, EVENT_QUEUE};
use crate::trace::{Trace, TraceEvent};

pub use cloudproxy_core::app::{ClientReport, Op, StreamStats};

/// What a client does, when: the application machine's configuration.
pub type ClientSpec = AppConfig;

/// News for the client from its UDP socket and its resolver.
enum Event {
    Udp(SocketAddr, Vec<u8>),
    Resolved(String, Result<Vec<IpAddr>, String>),
}

/// The shared context of the clients of one enterprise.
#[derive(Clone)]
pub struct ClientEnv {
    /// The SD-RTN edge the clients talk to.
    pub sdrtn: SdRtnEndpoints,
    /// The trace.
    pub trace: Trace,
}

/// A TCP connect the network has not answered by then fails (a bound on the driver's tasks;
/// the proxy client's own connect timeout is shorter and decides).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one client's script; returns when it is done or the host stops. `report` is kept up
/// to date as things happen.
pub async fn run_client<N: Net>(
    net: N,
    spec: ClientSpec,
    env: ClientEnv,
    report: Rc<RefCell<ClientReport>>,
) -> io::Result<()> {
    let (_keep, changes) = mpsc::channel(1);
    run_client_watching(net, spec, env, report, changes).await
}

/// [`run_client`], told of local network changes on `changes` (**beyond the seed**; the
/// simulation's address-change fault). On [`NetworkChange::AddressChanged`] the driver binds a
/// new UDP socket (a new local address; turmoil keeps a host's IP, so here it is a new port)
/// and tells the application, which closes every connection and reconnects with a new
/// ticket. On [`NetworkChange::PortChanged`] it re-binds the UDP socket and tells the
/// application.
pub async fn run_client_watching<N: Net>(
    net: N,
    spec: ClientSpec,
    env: ClientEnv,
    report: Rc<RefCell<ClientReport>>,
    mut changes: mpsc::Receiver<NetworkChange>,
) -> io::Result<()> {
    let name = spec.name.clone();
    let mut app = App::new(spec, env.sdrtn, net.now());
    let udp = Rc::new(net.bind_udp(SocketAddr::from(([0, 0, 0, 0], 0))).await?);
    let (tx, mut rx) = mpsc::channel::<Event>(DATAGRAM_QUEUE);
    let (stream_tx, mut stream_rx) = mpsc::channel::<(ConnId, StreamEvent)>(EVENT_QUEUE);
    let reader = read_udp(udp.clone(), tx.clone());
    let mut io = ClientIo {
        net: net.clone(),
        udp,
        reader,
        pumps: StreamPumps::new(stream_tx),
        resolved: tx,
        trace: env.trace,
        name,
        report,
    };
    // Pending inputs first (`biased`), then the timer: the order a run depends on.
    while !app.is_done() {
        let deadline = app.poll_timeout();
        tokio::select! {
            biased;
            Some(change) = changes.recv() => io.handle_change(&mut app, change).await?,
            Some(event) = rx.recv() => io.handle_event(&mut app, event),
            Some((conn, event)) = stream_rx.recv() => io.handle_stream(&mut app, conn, event),
            () = sleep_until(&net, deadline) => app.handle_timeout(net.now()),
        }
        io.drain(&mut app).await;
    }
    io.pumps.close_all();
    io.reader.abort();
    io.report.borrow_mut().done = true;
    Ok(())
}

/// Datagrams (and resolver answers) read and not yet taken by the application: past this,
/// a datagram is dropped, as a full socket buffer would drop it.
const DATAGRAM_QUEUE: usize = 256;

/// Forwards every datagram of `udp` to `tx` until either goes away (or the task is aborted);
/// a datagram that finds the queue full is dropped (UDP's contract; the reader never waits on
/// the application).
fn read_udp<U: Udp>(udp: Rc<U>, tx: mpsc::Sender<Event>) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_local(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let data = buf.get(..n).unwrap_or_default().to_vec();
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Event::Udp(from, data)) {
                return;
            }
        }
    })
}

/// The client's IO: what carries out the application's outputs.
struct ClientIo<N: Net> {
    net: N,
    udp: Rc<N::Udp>,
    /// The task reading `udp`.
    reader: tokio::task::JoinHandle<()>,
    pumps: StreamPumps<ConnId>,
    /// Where resolver answers go.
    resolved: mpsc::Sender<Event>,
    trace: Trace,
    name: String,
    report: Rc<RefCell<ClientReport>>,
}

impl<N: Net> ClientIo<N> {
    fn record(&self, event: TraceEvent) {
        self.trace.record(self.net.now(), &self.name, &event);
    }

    /// The local network changed: a new UDP socket (its reader replaces the old one's), then
    /// the application is told.
    async fn handle_change(&mut self, app: &mut App, change: NetworkChange) -> io::Result<()> {
        let udp = Rc::new(
            self.net
                .bind_udp(SocketAddr::from(([0, 0, 0, 0], 0)))
                .await?,
        );
        self.reader.abort();
        self.reader = read_udp(udp.clone(), self.resolved.clone());
        let port = udp.local_addr().map(|a| a.port()).unwrap_or_default();
        self.udp = udp;
        self.record(TraceEvent::NetworkChange {
            change,
            udp_port: port,
        });
        let input = ClientInput::NetworkChanged { change };
        app.handle_input(input, self.net.now())
            .expect("news from the network");
        Ok(())
    }

    fn handle_event(&mut self, app: &mut App, event: Event) {
        let now = self.net.now();
        match &event {
            Event::Udp(from, data) => {
                let input = ClientInput::UdpData { from: *from, data };
                app.handle_input(input, now).expect("news from the network");
            }
            Event::Resolved(name, answer) => {
                self.record(TraceEvent::Resolve {
                    name: name.clone(),
                    ok: answer.is_ok(),
                });
                let input = match answer {
                    Ok(addrs) => ClientInput::Resolved { name, addrs },
                    Err(reason) => ClientInput::ResolveFailed { name, reason },
                };
                app.handle_input(input, now).expect("news from the network");
            }
        }
    }

    fn handle_stream(&mut self, app: &mut App, conn: ConnId, event: StreamEvent) {
        if matches!(
            event,
            StreamEvent::Closed | StreamEvent::Failed(_) | StreamEvent::TlsFailed(_)
        ) {
            self.pumps.forget(conn);
        }
        let input = match &event {
            StreamEvent::Connected => ClientInput::TcpConnected { conn },
            StreamEvent::Failed(reason) => ClientInput::TcpFailed { conn, reason },
            StreamEvent::TlsFailed(reason) => ClientInput::TlsFailed { conn, reason },
            StreamEvent::Data(data) => ClientInput::TcpData { conn, data },
            StreamEvent::Closed => ClientInput::TcpClosed { conn },
        };
        app.handle_input(input, self.net.now())
            .expect("news from the network");
    }

    /// Carries out every output of the application, in order.
    async fn drain(&mut self, app: &mut App) {
        while let Some(output) = app.poll_output() {
            match output {
                AppOutput::Net(ClientOutput::Resolve { name }) => {
                    let (tx, net) = (self.resolved.clone(), self.net.clone());
                    tokio::task::spawn_local(async move {
                        let answer = net.resolve(&name).await;
                        let _ = tx.send(Event::Resolved(name, answer)).await;
                    });
                }
                AppOutput::Net(ClientOutput::TcpConnect { conn, to }) => {
                    self.pumps.connect(&self.net, conn, to, CONNECT_TIMEOUT)
                }
                AppOutput::Net(ClientOutput::TcpSend { conn, data }) => self.pumps.send(conn, data),
                AppOutput::Net(ClientOutput::TcpClose { conn }) => self.pumps.close(conn),
                AppOutput::Net(ClientOutput::UdpSend { to, data }) => {
                    let _ = self.udp.send_to(&data, to).await;
                }
                // The application takes its proxy client's events itself.
                AppOutput::Net(ClientOutput::Event(_)) => {}
                AppOutput::Event(event) => {
                    self.trace_event(&event);
                    self.report.borrow_mut().record(&event);
                }
            }
        }
    }

    /// Writes the trace line of an event (the ones the trace has always had).
    fn trace_event(&self, event: &AppEvent) {
        let line = match event {
            AppEvent::ParametersSet { text, code, error } => TraceEvent::SetParameters {
                text: cloudproxy_core::params::redact_text(text),
                code: *code,
                error: error.clone(),
            },
            AppEvent::CloudProxySet {
                proxy_type,
                code,
                error,
            } => TraceEvent::SetCloudProxy {
                proxy_type: proxy_type.as_i32(),
                code: *code,
                error: error.clone(),
            },
            AppEvent::Joined { config, .. } => TraceEvent::Join {
                code: 0,
                config: Some(config.to_json_redacted()),
                error: None,
            },
            AppEvent::JoinRefused { code, error } => TraceEvent::Join {
                code: *code,
                config: None,
                error: Some(error.clone()),
            },
            AppEvent::Left => TraceEvent::Leave {
                code: 0,
                error: None,
            },
            AppEvent::LeaveRefused { code, error } => TraceEvent::Leave {
                code: *code,
                error: Some(error.clone()),
            },
            AppEvent::StateChanged { state, reason, .. } => TraceEvent::State {
                state: *state,
                code: state.as_i32(),
                reason: reason.to_string(),
            },
            AppEvent::ProxyConnected {
                proxy_type,
                relay,
                elapsed,
            } => TraceEvent::ProxyConnected {
                proxy_type: *proxy_type,
                relay: *relay,
                elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            },
            AppEvent::MediaPathChanged(path) => TraceEvent::MediaPath { path: *path },
            AppEvent::SignallingBroken { error } => TraceEvent::SignallingError {
                error: error.to_string(),
            },
            _ => return,
        };
        self.record(line);
    }
}
