//! The media path of a connected session: UDP first, TCP when UDP gets no answer.
//!
//! | route  | UDP path                                        | TCP path                                 |
//! |--------|-------------------------------------------------|------------------------------------------|
//! | cloud  | `MediaData` datagrams to the relay's UDP port   | `MediaChannelOpen` on a second TCP conn, then framed `MediaData` |
//! | SOCKS5 | UDP ASSOCIATE, then RFC 1928 §7 datagrams to BND | CONNECT to the edge's `media_tcp`, SD-RTN framing |
//! | direct | raw datagrams to the edge's `media_udp`          | TCP to the edge's `media_tcp`, SD-RTN framing |
//! | HTTP proxy (type 3, beyond the seed) | none, by design | `CONNECT` to the edge's `media_tcp`, SD-RTN framing |
//!
//! The cloud route over TCP 443 only ([`CloudTransport::Tcp443Only`](super::CloudTransport))
//! has no UDP path either: its relay offers none, and its media channel goes to the relay's
//! port 443.
//!
//! UDP counts as working once anything valid comes back from the address media goes to (the
//! relay's keepalive acknowledgements count). The probe clock starts at the first datagram
//! sent: the cloud route sends a keepalive at once; the others wait for the application's first
//! media datagram, since the edge only answers media. On the cloud route, keepalives run on
//! whichever path is up and their silence means the relay is dead.

use std::net::SocketAddr;
use std::time::Duration;

use crate::entropy::Entropy;
use crate::sdrtn::{MediaFrameReader, MAX_MEDIA_FRAME_PAYLOAD};
use crate::socks5::{decode_udp_datagram, Address, ClientHandshake, ClientProgress, Command};
use crate::time::Instant;
use crate::wire::{FrameReader, Message};

use super::config::ClientConfig;
use super::connect::Route;
use super::http::HttpTunnel;
use super::io::Io;
use super::media_wire::{encode_tcp, encode_udp, udp_relay_addr, MediaRoute};
use super::types::{ClientEvent, ConnId, MediaPath, StateReason};
use super::TcpEvent;

mod keepalive;
mod tcp;

/// What the media machine asks of the client.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum MediaStep {
    /// Nothing more.
    Ok,
    /// The relay is dead: tear the session down and reconnect.
    Lost(StateReason),
}

/// How the TCP path is being opened.
#[derive(Debug)]
enum Opener {
    /// Cloud: `MediaChannelOpen` sent once connected; waiting for `MediaChannelAccept`.
    Cloud(FrameReader),
    /// SOCKS5: CONNECT to the edge's `media_tcp`.
    Socks(ClientHandshake),
    /// Direct: the TCP connection is all it takes.
    Direct,
}

/// How media arriving on the TCP path is cut.
#[derive(Debug)]
enum TcpReader {
    /// Our wire protocol (cloud).
    Wire(FrameReader),
    /// SD-RTN framing (SOCKS5, direct).
    Sdrtn(MediaFrameReader),
}

/// The media path's state.
///
/// ```text
///   start ─┬─ cloud, relay offers UDP ─────────────────────┐   (Udp, cloud, a keepalive missed,
///          │                                               │    udp_loss_fallback: UdpProbing)
///          ├─ direct ──────────────────────────────────────┤
///          ├─ SOCKS5 ─► Associating ── success reply ──────┤
///          │                │ refused (reply 7...), timeout │
///          │                │ or control conn lost          ▼
///          │                │                        UdpProbing ── answer ──► Udp
///          │                │                             │ probe timeout,     │ SOCKS5 control
///          │                ▼                             │ control conn lost  │ conn lost
///          ├─ cloud, no UDP ──────────► TcpOpening ◄──────┴────────────────────┘
///          │                              │ accepted / connected
///          │                              ▼
///          └─ HTTP proxy ─► HttpOpening ─► Tcp
///                              tunnel up
///
///   TcpOpening, HttpOpening or Tcp fails: cloud ─► relay lost (the session ends and
///                            reconnects); SOCKS5, direct, HTTP ─► Waiting ── backoff ──► start
/// ```
#[derive(Debug)]
enum MediaState {
    /// SOCKS5 UDP ASSOCIATE handshake.
    Associating {
        conn: ConnId,
        handshake: ClientHandshake,
        deadline: Instant,
    },
    /// Sending over UDP, no answer yet. `deadline` runs from the first datagram sent.
    UdpProbing {
        to: SocketAddr,
        control: Option<ConnId>,
        deadline: Option<Instant>,
        next_probe: Option<Instant>,
    },
    /// UDP answered.
    Udp {
        to: SocketAddr,
        control: Option<ConnId>,
    },
    /// Opening the TCP path.
    TcpOpening {
        conn: ConnId,
        opener: Opener,
        deadline: Instant,
    },
    /// Opening the TCP path through an HTTP proxy (type 3): a `CONNECT` tunnel.
    HttpOpening {
        tunnel: HttpTunnel,
        deadline: Instant,
    },
    /// The TCP path is up.
    Tcp { conn: ConnId, reader: TcpReader },
    /// No path; start again at `at`.
    Waiting { at: Instant },
}

/// Keepalives on the cloud route.
#[derive(Debug)]
struct Keepalive {
    interval: Duration,
    next_at: Instant,
    /// Intervals in a row without hearing from the relay.
    misses: u32,
    /// Whether the relay was heard since the last keepalive.
    heard: bool,
    seq: u32,
}

/// The media machine of one connected session.
#[derive(Debug)]
pub(super) struct Media {
    route: MediaRoute,
    state: MediaState,
    path: MediaPath,
    /// Consecutive failures of the whole media setup (SOCKS5 and direct), for its backoff.
    failures: u32,
    keepalive: Option<Keepalive>,
    /// UDP went silent mid-call and is being probed again (beyond the seed).
    reprobing: bool,
}

impl Media {
    /// Starts media for a freshly opened route.
    pub(super) fn start(route: &Route, config: &ClientConfig, io: &mut Io, now: Instant) -> Media {
        let (route, keepalive) = match route {
            Route::Cloud {
                relay_tcp,
                relay_udp,
                session_id,
                keepalive_interval,
            } => (
                MediaRoute::Cloud {
                    relay_tcp: *relay_tcp,
                    relay_udp: *relay_udp,
                    session_id: *session_id,
                },
                Some(Keepalive {
                    interval: *keepalive_interval,
                    next_at: now + *keepalive_interval,
                    misses: 0,
                    heard: true,
                    seq: 0,
                }),
            ),
            Route::Socks { server } => (MediaRoute::Socks { server: *server }, None),
            Route::Http { proxy } => (MediaRoute::Http { proxy: *proxy }, None),
            Route::Direct => (MediaRoute::Direct, None),
        };
        let mut media = Media {
            route,
            state: MediaState::Waiting { at: now },
            path: MediaPath::None,
            failures: 0,
            keepalive,
            reprobing: false,
        };
        media.begin(config, io, now);
        media
    }

    /// The confirmed path.
    pub(super) fn path(&self) -> MediaPath {
        self.path
    }

    /// The next instant a timer of the media machine fires.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let state = match &self.state {
            MediaState::Associating { deadline, .. }
            | MediaState::TcpOpening { deadline, .. }
            | MediaState::HttpOpening { deadline, .. } => Some(*deadline),
            MediaState::UdpProbing {
                deadline,
                next_probe,
                ..
            } => min_opt(*deadline, *next_probe),
            MediaState::Waiting { at } => Some(*at),
            MediaState::Udp { .. } | MediaState::Tcp { .. } => None,
        };
        min_opt(state, self.keepalive.as_ref().map(|k| k.next_at))
    }

    /// Closes every media connection and reports the path gone.
    pub(super) fn close(&mut self, io: &mut Io) {
        self.close_state(io);
        self.state = MediaState::Waiting { at: Instant::MAX };
        self.keepalive = None;
        self.set_path(MediaPath::None, io);
    }

    /// Sends one application media datagram on the current path, or drops it.
    pub(super) fn send(
        &mut self,
        payload: &[u8],
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) {
        if payload.is_empty() || payload.len() > MAX_MEDIA_FRAME_PAYLOAD {
            io.media_dropped();
            return;
        }
        let peer = config.sdrtn.media_udp;
        match &mut self.state {
            MediaState::UdpProbing { to, deadline, .. } => {
                if deadline.is_none() {
                    *deadline = Some(now + ClientConfig::timer(config.udp_probe_timeout));
                }
                io.udp(*to, encode_udp(&self.route, peer, payload));
            }
            MediaState::Udp { to, .. } => io.udp(*to, encode_udp(&self.route, peer, payload)),
            MediaState::Tcp { conn, .. } => io.send(*conn, encode_tcp(&self.route, peer, payload)),
            _ => {
                io.media_dropped();
                return;
            }
        }
        io.media_sent(payload.len());
    }

    /// Handles the media machine's timers.
    pub(super) fn on_timeout(
        &mut self,
        config: &ClientConfig,
        io: &mut Io,
        entropy: &mut Entropy,
        now: Instant,
    ) -> MediaStep {
        let probe_every = ClientConfig::timer(config.udp_probe_timeout / 3);
        match &mut self.state {
            MediaState::Associating { deadline, .. } if *deadline <= now => {
                self.fall_back_to_tcp(config, io, now)
            }
            MediaState::UdpProbing {
                deadline: Some(deadline),
                ..
            } if *deadline <= now => self.fall_back_to_tcp(config, io, now),
            MediaState::UdpProbing {
                to,
                deadline,
                next_probe,
                ..
            } if next_probe.is_some_and(|p| p <= now) => {
                let to = *to;
                let next = now + probe_every;
                *next_probe = deadline.filter(|d| next < *d).map(|_| next);
                self.send_keepalive(Some(to), None, io);
            }
            MediaState::TcpOpening { deadline, .. } | MediaState::HttpOpening { deadline, .. }
                if *deadline <= now =>
            {
                let step = self.tcp_failed(config, io, entropy, now);
                if step != MediaStep::Ok {
                    return step;
                }
            }
            MediaState::Waiting { at } if *at <= now => self.begin(config, io, now),
            _ => {}
        }
        self.keepalive_tick(config, io, now)
    }

    /// Handles an event on a connection; `None` when it is not a media connection.
    pub(super) fn on_tcp(
        &mut self,
        conn: ConnId,
        event: TcpEvent<'_>,
        config: &ClientConfig,
        io: &mut Io,
        entropy: &mut Entropy,
        now: Instant,
    ) -> Option<MediaStep> {
        match &mut self.state {
            MediaState::Associating {
                conn: c, handshake, ..
            } if *c == conn => {
                match event {
                    TcpEvent::Connected => {
                        if let Some(bytes) = handshake.poll_transmit() {
                            io.send(conn, bytes);
                        }
                    }
                    TcpEvent::Failed | TcpEvent::Closed => {
                        // Already gone: nothing to close.
                        self.state = MediaState::Waiting { at: now };
                        self.fall_back_to_tcp(config, io, now);
                    }
                    TcpEvent::Data(data) => match handshake.handle_bytes(data) {
                        Ok(ClientProgress::Pending) => {
                            if let Some(bytes) = handshake.poll_transmit() {
                                io.send(conn, bytes);
                            }
                        }
                        Ok(ClientProgress::Done { reply, .. }) => {
                            let server = match self.route {
                                MediaRoute::Socks { server } => Some(server),
                                _ => None,
                            };
                            match server.and_then(|s| udp_relay_addr(&reply.bound, s)) {
                                Some(to) => {
                                    self.state = MediaState::UdpProbing {
                                        to,
                                        control: Some(conn),
                                        deadline: None,
                                        next_probe: None,
                                    };
                                }
                                None => self.fall_back_to_tcp(config, io, now),
                            }
                        }
                        // Refused (reply 7 and friends) or broken: TCP it is.
                        Ok(ClientProgress::Bound { .. }) | Err(_) => {
                            self.fall_back_to_tcp(config, io, now)
                        }
                    },
                }
                Some(MediaStep::Ok)
            }
            MediaState::UdpProbing {
                control: Some(c), ..
            }
            | MediaState::Udp {
                control: Some(c), ..
            } if *c == conn => {
                if matches!(event, TcpEvent::Failed | TcpEvent::Closed) {
                    // The UDP association ends with its control connection.
                    self.state = MediaState::Waiting { at: now };
                    self.set_path(MediaPath::None, io);
                    self.fall_back_to_tcp(config, io, now);
                }
                Some(MediaStep::Ok)
            }
            MediaState::TcpOpening { conn: c, .. } if *c == conn => {
                Some(self.on_tcp_opening(conn, event, config, io, entropy, now))
            }
            MediaState::HttpOpening { tunnel, .. } if tunnel.owns(conn) => {
                let step = tunnel.on_tcp(conn, event, io, now);
                Some(self.on_http_step(step, config, io, entropy, now))
            }
            MediaState::Tcp { conn: c, .. } if *c == conn => Some(match event {
                TcpEvent::Data(data) => self.tcp_data(data, config, io, entropy, now),
                TcpEvent::Failed | TcpEvent::Closed => {
                    self.state = MediaState::Waiting { at: now };
                    self.tcp_failed(config, io, entropy, now)
                }
                TcpEvent::Connected => MediaStep::Ok,
            }),
            _ => None,
        }
    }

    /// Handles a datagram; `None` when it does not come from where media goes.
    pub(super) fn on_udp(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        io: &mut Io,
    ) -> Option<MediaStep> {
        let to = match &self.state {
            MediaState::UdpProbing { to, .. } | MediaState::Udp { to, .. } => *to,
            _ => return None,
        };
        if from != to {
            return None;
        }
        match &self.route {
            MediaRoute::Cloud { session_id, .. } => match Message::decode_datagram(data) {
                Ok(Message::MediaData {
                    session_id: s,
                    peer,
                    payload,
                }) if s == *session_id => {
                    self.confirm_udp(io);
                    io.deliver_media(peer, payload);
                }
                Ok(Message::KeepaliveAck { session_id: s, .. }) if s == *session_id => {
                    self.confirm_udp(io);
                }
                Ok(Message::Close { session_id: s, .. }) if s == *session_id => {
                    return Some(MediaStep::Lost(StateReason::RelayLost));
                }
                Ok(Message::Error { .. }) => return Some(MediaStep::Lost(StateReason::RelayLost)),
                _ => io.ignored(),
            },
            MediaRoute::Socks { .. } => match decode_udp_datagram(data) {
                Ok((Address::Ip(src), payload)) if !payload.is_empty() => {
                    self.confirm_udp(io);
                    io.deliver_media(src, payload.to_vec());
                }
                _ => io.ignored(),
            },
            // No UDP state is ever entered through an HTTP proxy.
            MediaRoute::Http { .. } => io.ignored(),
            MediaRoute::Direct => {
                if data.is_empty() {
                    io.ignored();
                } else {
                    self.confirm_udp(io);
                    io.deliver_media(from, data.to_vec());
                }
            }
        }
        Some(MediaStep::Ok)
    }

    /// Starts (or restarts) the media setup from the top.
    fn begin(&mut self, config: &ClientConfig, io: &mut Io, now: Instant) {
        match &self.route {
            MediaRoute::Cloud {
                relay_udp: Some(to),
                ..
            } => {
                let to = *to;
                let probe = ClientConfig::timer(config.udp_probe_timeout);
                let deadline = now + probe;
                let next = now + ClientConfig::timer(probe / 3);
                self.state = MediaState::UdpProbing {
                    to,
                    control: None,
                    deadline: Some(deadline),
                    next_probe: (next < deadline).then_some(next),
                };
                self.send_keepalive(Some(to), None, io);
            }
            MediaRoute::Cloud {
                relay_udp: None, ..
            } => self.open_tcp(config, io, now),
            MediaRoute::Socks { server } => {
                let conn = io.connect(*server);
                self.state = MediaState::Associating {
                    conn,
                    handshake: ClientHandshake::new(
                        config.socks5_credentials.clone(),
                        Command::UdpAssociate,
                        Address::unspecified(),
                    ),
                    deadline: now + ClientConfig::timer(config.connect_timeout),
                };
            }
            MediaRoute::Http { .. } => self.open_tcp(config, io, now),
            MediaRoute::Direct => {
                self.state = MediaState::UdpProbing {
                    to: config.sdrtn.media_udp,
                    control: None,
                    deadline: None,
                    next_probe: None,
                };
            }
        }
    }

    /// Something valid came back over UDP.
    fn confirm_udp(&mut self, io: &mut Io) {
        self.heard();
        self.reprobing = false;
        if let MediaState::UdpProbing { to, control, .. } = self.state {
            self.state = MediaState::Udp { to, control };
            self.failures = 0;
            self.set_path(MediaPath::Udp, io);
        }
    }

    /// Closes the connections of the current state.
    fn close_state(&mut self, io: &mut Io) {
        match &mut self.state {
            MediaState::Associating { conn, .. }
            | MediaState::UdpProbing {
                control: Some(conn),
                ..
            }
            | MediaState::Udp {
                control: Some(conn),
                ..
            }
            | MediaState::TcpOpening { conn, .. }
            | MediaState::Tcp { conn, .. } => io.close(*conn),
            MediaState::HttpOpening { tunnel, .. } => tunnel.close(io),
            _ => {}
        }
        self.state = MediaState::Waiting { at: Instant::MAX };
    }

    /// Reports a path change.
    fn set_path(&mut self, path: MediaPath, io: &mut Io) {
        if self.path != path {
            self.path = path;
            io.event(ClientEvent::MediaPathChanged(path));
        }
    }
}

/// The earlier of two optional instants.
fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
