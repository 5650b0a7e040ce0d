//! Type 3, an enterprise HTTP proxy (**beyond the seed**, ByteRTC's HTTP tunnel proxy):
//! `CONNECT` tunnels for signalling and TCP media, through the sans-IO handshake machine
//! [`HttpConnectClient`]. UDP media is impossible by design: there is no UDP probe.
//!
//! [`HttpTunnel`] drives one handshake: it maps the machine's connections (`ProxyConn(0)`,
//! `ProxyConn(1)` for a 407 answered on a new connection) to the client's [`ConnId`]s, and
//! ends with the tunnel's connection and its early bytes (the first bytes of the stream,
//! handed on, never lost), or with the machine's error. [`HttpOpening`] is the signalling
//! phase: resolve the proxy's name when it has one, then one tunnel to the edge's signalling
//! address.

use std::net::{IpAddr, SocketAddr};

use crate::http_connect::{
    Authority, BasicCredentials, HttpConnectClient, HttpConnectConfig, HttpConnectError,
    HttpConnectInput, HttpConnectOutput, ProxyConn,
};
use crate::params::{ProxyHost, ProxyServer};
use crate::time::Instant;

use super::config::ClientConfig;
use super::connect::{Established, OpenStep, Route};
use super::io::Io;
use super::types::{ConnId, StateReason};
use super::TcpEvent;

/// What a tunnel did with an input or a timer.
#[derive(Debug)]
pub(super) enum TunnelStep {
    /// Still opening.
    Pending,
    /// Up: `conn` carries the target's bytes; `early` are its first ones.
    Up { conn: ConnId, early: Vec<u8> },
    /// Failed; every connection of the tunnel is closed.
    Failed(HttpConnectError),
}

/// One `CONNECT` handshake through the proxy at `proxy`.
#[derive(Debug)]
pub(super) struct HttpTunnel {
    proxy: SocketAddr,
    machine: HttpConnectClient,
    /// The machine's connections and the client's ids for them (at most two).
    conns: Vec<(ProxyConn, ConnId)>,
}

impl HttpTunnel {
    /// Starts a tunnel to `target` (its first `Connect` goes out at once).
    pub(super) fn start(
        proxy: SocketAddr,
        target: SocketAddr,
        credentials: Option<BasicCredentials>,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> Result<(HttpTunnel, TunnelStep), HttpConnectError> {
        let target = Authority::from_socket_addr(target)?;
        let settings = HttpConnectConfig {
            handshake_timeout: ClientConfig::timer(config.connect_timeout),
        };
        let mut tunnel = HttpTunnel {
            proxy,
            machine: HttpConnectClient::new(target, credentials, settings, now),
            conns: Vec::new(),
        };
        let step = tunnel.drain(io);
        Ok((tunnel, step))
    }

    /// When the handshake runs out of time.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.machine.poll_timeout()
    }

    /// Whether `conn` is one of the tunnel's connections.
    pub(super) fn owns(&self, conn: ConnId) -> bool {
        self.conns.iter().any(|(_, c)| *c == conn)
    }

    /// Closes every connection of the tunnel still open.
    pub(super) fn close(&mut self, io: &mut Io) {
        for (_, conn) in self.conns.drain(..) {
            io.close(conn);
        }
    }

    /// Handles the handshake's deadline.
    pub(super) fn on_timeout(&mut self, io: &mut Io, now: Instant) -> TunnelStep {
        self.machine.handle_timeout(now);
        self.drain(io)
    }

    /// Handles an event on one of the tunnel's connections (the caller checked [`owns`]).
    ///
    /// [`owns`]: Self::owns
    pub(super) fn on_tcp(
        &mut self,
        conn: ConnId,
        event: TcpEvent<'_>,
        io: &mut Io,
        now: Instant,
    ) -> TunnelStep {
        let Some(proxy_conn) = self.conns.iter().find(|(_, c)| *c == conn).map(|p| p.0) else {
            return TunnelStep::Pending;
        };
        let input = match event {
            TcpEvent::Connected => HttpConnectInput::Connected { conn: proxy_conn },
            TcpEvent::Failed => HttpConnectInput::ConnectFailed { conn: proxy_conn },
            TcpEvent::Closed => HttpConnectInput::Closed { conn: proxy_conn },
            TcpEvent::Data(data) => HttpConnectInput::Data {
                conn: proxy_conn,
                data,
            },
        };
        if matches!(event, TcpEvent::Failed | TcpEvent::Closed) {
            // The machine never closes a connection the proxy closed; forget it here.
            self.conns.retain(|(_, c)| *c != conn);
        }
        self.machine.handle_input(input, now);
        self.drain(io)
    }

    /// Carries out the machine's outputs.
    fn drain(&mut self, io: &mut Io) -> TunnelStep {
        let mut step = TunnelStep::Pending;
        while let Some(output) = self.machine.poll_output() {
            match output {
                HttpConnectOutput::Connect { conn } => {
                    let id = io.connect(self.proxy);
                    self.conns.push((conn, id));
                }
                HttpConnectOutput::Transmit { conn, data } => {
                    if let Some(id) = self.id(conn) {
                        io.send(id, data);
                    }
                }
                HttpConnectOutput::Close { conn } => {
                    if let Some(id) = self.id(conn) {
                        self.conns.retain(|(_, c)| *c != id);
                        io.close(id);
                    }
                }
                HttpConnectOutput::Established { conn, early, .. } => {
                    if let Some(id) = self.id(conn) {
                        self.conns.retain(|(_, c)| *c != id);
                        step = TunnelStep::Up { conn: id, early };
                    }
                }
                HttpConnectOutput::Failed { error } => {
                    self.close(io);
                    step = TunnelStep::Failed(error);
                }
            }
        }
        step
    }

    fn id(&self, conn: ProxyConn) -> Option<ConnId> {
        self.conns.iter().find(|(p, _)| *p == conn).map(|(_, c)| *c)
    }
}

/// The signalling phase of type 3: resolve the proxy's name if needed, then one tunnel to the
/// edge's signalling address.
#[derive(Debug)]
pub(super) enum HttpOpening {
    /// Waiting for the resolver.
    Resolving {
        name: String,
        port: u16,
        deadline: Instant,
    },
    /// The handshake (boxed: the machine is large, a phase is moved around).
    Tunnel(Box<HttpTunnel>),
}

impl HttpOpening {
    /// Starts for the HTTP proxy `server` (its name is resolved first, an address is used as
    /// is).
    pub(super) fn start(
        server: &ProxyServer,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> Result<(HttpOpening, OpenStep), StateReason> {
        let ProxyServer::HttpConnect { host, port, .. } = server else {
            return Err(StateReason::InvalidConfig(
                "not an HTTP proxy (type 3)".to_owned(),
            ));
        };
        match host {
            ProxyHost::Ip(ip) => Self::tunnel(SocketAddr::new(*ip, *port), config, io, now),
            ProxyHost::Domain(name) => {
                io.note_tried(format!("DNS {name}"));
                io.resolve(name.clone());
                let opening = HttpOpening::Resolving {
                    name: name.clone(),
                    port: *port,
                    deadline: now + ClientConfig::timer(config.resolve_timeout),
                };
                Ok((opening, OpenStep::Pending))
            }
        }
    }

    /// Opens the signalling tunnel through the proxy at `proxy`.
    fn tunnel(
        proxy: SocketAddr,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> Result<(HttpOpening, OpenStep), StateReason> {
        io.note_tried(format!("HTTP proxy {proxy}"));
        let (tunnel, step) = HttpTunnel::start(
            proxy,
            config.sdrtn.signalling,
            http_credentials(config),
            config,
            io,
            now,
        )
        .map_err(StateReason::HttpProxyFailed)?;
        let step = signalling_step(proxy, step);
        Ok((HttpOpening::Tunnel(Box::new(tunnel)), step))
    }

    /// When a timer fires.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self {
            HttpOpening::Resolving { deadline, .. } => Some(*deadline),
            HttpOpening::Tunnel(tunnel) => tunnel.deadline(),
        }
    }

    /// Closes whatever is open.
    pub(super) fn close(&mut self, io: &mut Io) {
        if let HttpOpening::Tunnel(tunnel) = self {
            tunnel.close(io);
        }
    }

    /// The resolver answered; `None` when the phase did not ask about `name`.
    pub(super) fn on_resolved(
        &mut self,
        name: &str,
        result: Result<&[IpAddr], &str>,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> Option<OpenStep> {
        let HttpOpening::Resolving {
            name: asked, port, ..
        } = self
        else {
            return None;
        };
        if !super::same_name(asked, name) {
            return None;
        }
        let (asked, port) = (asked.clone(), *port);
        Some(match result {
            Ok([ip, ..]) => match Self::tunnel(SocketAddr::new(*ip, port), config, io, now) {
                Ok((opening, step)) => {
                    *self = opening;
                    step
                }
                Err(reason) => OpenStep::Failed(reason),
            },
            Ok([]) => OpenStep::Failed(StateReason::DnsFailed(format!("{asked}: no address"))),
            Err(why) => OpenStep::Failed(StateReason::DnsFailed(format!("{asked}: {why}"))),
        })
    }

    /// Handles the timer.
    pub(super) fn on_timeout(&mut self, io: &mut Io, now: Instant) -> OpenStep {
        match self {
            HttpOpening::Resolving { name, deadline, .. } if *deadline <= now => OpenStep::Failed(
                StateReason::DnsFailed(format!("{name}: no answer from the resolver")),
            ),
            HttpOpening::Resolving { .. } => OpenStep::Pending,
            HttpOpening::Tunnel(tunnel) => {
                let proxy = tunnel.proxy;
                signalling_step(proxy, tunnel.on_timeout(io, now))
            }
        }
    }

    /// Handles an event on a connection; `None` when it is not ours.
    pub(super) fn on_tcp(
        &mut self,
        conn: ConnId,
        event: TcpEvent<'_>,
        io: &mut Io,
        now: Instant,
    ) -> Option<OpenStep> {
        let HttpOpening::Tunnel(tunnel) = self else {
            return None;
        };
        if !tunnel.owns(conn) {
            return None;
        }
        let proxy = tunnel.proxy;
        Some(signalling_step(proxy, tunnel.on_tcp(conn, event, io, now)))
    }
}

/// The credentials of the configuration's HTTP proxy.
pub(super) fn http_credentials(config: &ClientConfig) -> Option<BasicCredentials> {
    match config.proxy.as_ref() {
        Some(ProxyServer::HttpConnect { credentials, .. }) => credentials.clone(),
        _ => None,
    }
}

/// A tunnel step as the signalling phase sees it.
fn signalling_step(proxy: SocketAddr, step: TunnelStep) -> OpenStep {
    match step {
        TunnelStep::Pending => OpenStep::Pending,
        TunnelStep::Up { conn, early } => OpenStep::Open(Established {
            route: Route::Http { proxy },
            signalling: conn,
            early,
        }),
        TunnelStep::Failed(error) => OpenStep::Failed(StateReason::HttpProxyFailed(error)),
    }
}
