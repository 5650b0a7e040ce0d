//! The TCP media path: opening it (a relay media channel, a SOCKS5 CONNECT, an HTTP proxy
//! tunnel, a plain connection), reading media from it, and what its failure means.

use std::net::SocketAddr;

use crate::entropy::Entropy;
use crate::sdrtn::MediaFrameReader;
use crate::socks5::{Address, ClientHandshake, ClientProgress, Command};
use crate::time::Instant;
use crate::wire::{FrameReader, Message};

use super::super::backoff;
use super::super::config::ClientConfig;
use super::super::http::{http_credentials, HttpTunnel, TunnelStep};
use super::super::io::{read_frames, Io};
use super::super::media_wire::MediaRoute;
use super::super::types::{ConnId, MediaPath, StateReason};
use super::super::TcpEvent;
use super::{Media, MediaState, MediaStep, Opener, TcpReader};

impl Media {
    /// Leaves UDP (closing a SOCKS5 control connection still open) and opens the TCP path.
    pub(super) fn fall_back_to_tcp(&mut self, config: &ClientConfig, io: &mut Io, now: Instant) {
        if std::mem::take(&mut self.reprobing) {
            io.stats.udp_loss_fallbacks = io.stats.udp_loss_fallbacks.saturating_add(1);
        }
        self.close_state(io);
        self.set_path(MediaPath::None, io);
        self.open_tcp(config, io, now);
    }

    /// Opens the TCP path.
    pub(super) fn open_tcp(&mut self, config: &ClientConfig, io: &mut Io, now: Instant) {
        if let MediaRoute::Http { proxy } = self.route {
            return self.open_http(proxy, config, io, now);
        }
        let (to, opener) = match &self.route {
            MediaRoute::Cloud { relay_tcp, .. } => (*relay_tcp, Opener::Cloud(FrameReader::new())),
            MediaRoute::Socks { server } => (
                *server,
                Opener::Socks(ClientHandshake::new(
                    config.socks5_credentials.clone(),
                    Command::Connect,
                    Address::Ip(config.sdrtn.media_tcp),
                )),
            ),
            MediaRoute::Direct | MediaRoute::Http { .. } => {
                (config.sdrtn.media_tcp, Opener::Direct)
            }
        };
        self.state = MediaState::TcpOpening {
            conn: io.connect(to),
            opener,
            deadline: now + ClientConfig::timer(config.connect_timeout),
        };
    }

    /// Opens a `CONNECT` tunnel through the HTTP proxy to the edge's `media_tcp` (type 3).
    fn open_http(&mut self, proxy: SocketAddr, config: &ClientConfig, io: &mut Io, now: Instant) {
        let credentials = http_credentials(config);
        let deadline = now + ClientConfig::timer(config.connect_timeout);
        match HttpTunnel::start(proxy, config.sdrtn.media_tcp, credentials, config, io, now) {
            Ok((tunnel, TunnelStep::Pending)) => {
                self.state = MediaState::HttpOpening { tunnel, deadline };
            }
            // Neither comes from a fresh machine; a waiting state retries later.
            Ok(_) | Err(_) => {
                self.state = MediaState::Waiting {
                    at: now + ClientConfig::timer(config.connect_timeout),
                };
            }
        }
    }

    /// What a step of the media tunnel through the HTTP proxy means.
    pub(super) fn on_http_step(
        &mut self,
        step: TunnelStep,
        config: &ClientConfig,
        io: &mut Io,
        entropy: &mut Entropy,
        now: Instant,
    ) -> MediaStep {
        match step {
            TunnelStep::Pending => MediaStep::Ok,
            TunnelStep::Up { conn, early } => {
                self.tcp_up(conn, TcpReader::Sdrtn(MediaFrameReader::new()), io);
                self.tcp_data(&early, config, io, entropy, now)
            }
            TunnelStep::Failed(_) => {
                // The tunnel closed its connections already.
                self.state = MediaState::Waiting { at: now };
                self.tcp_failed(config, io, entropy, now)
            }
        }
    }

    /// Handles an event on the TCP path being opened.
    pub(super) fn on_tcp_opening(
        &mut self,
        conn: ConnId,
        event: TcpEvent<'_>,
        config: &ClientConfig,
        io: &mut Io,
        entropy: &mut Entropy,
        now: Instant,
    ) -> MediaStep {
        let MediaState::TcpOpening { opener, .. } = &mut self.state else {
            return MediaStep::Ok;
        };
        match (event, opener) {
            (TcpEvent::Failed | TcpEvent::Closed, _) => {
                self.state = MediaState::Waiting { at: now };
                self.tcp_failed(config, io, entropy, now)
            }
            (TcpEvent::Connected, Opener::Cloud(_)) => {
                if let MediaRoute::Cloud { session_id, .. } = self.route {
                    io.send_message(conn, &Message::MediaChannelOpen { session_id });
                }
                MediaStep::Ok
            }
            (TcpEvent::Connected, Opener::Socks(handshake)) => {
                if let Some(bytes) = handshake.poll_transmit() {
                    io.send(conn, bytes);
                }
                MediaStep::Ok
            }
            (TcpEvent::Connected, Opener::Direct) => {
                self.tcp_up(conn, TcpReader::Sdrtn(MediaFrameReader::new()), io);
                MediaStep::Ok
            }
            (TcpEvent::Data(mut data), Opener::Cloud(reader)) => {
                let MediaRoute::Cloud { session_id, .. } = self.route else {
                    return MediaStep::Ok;
                };
                let mut msgs = Vec::new();
                let decoded = read_frames(reader, &mut data, |_| true, &mut msgs);
                match (msgs.pop(), decoded) {
                    (Some(Message::MediaChannelAccept { session_id: s }), _) if s == session_id => {
                        let reader = std::mem::take(reader);
                        self.tcp_up(conn, TcpReader::Wire(reader), io);
                        // Frames that came with the accept.
                        self.tcp_data(data, config, io, entropy, now)
                    }
                    (None, Ok(())) => MediaStep::Ok,
                    // Refused, or anything else: the relay will not carry our media.
                    _ => MediaStep::Lost(StateReason::RelayLost),
                }
            }
            (TcpEvent::Data(data), Opener::Socks(handshake)) => {
                match handshake.handle_bytes(data) {
                    Ok(ClientProgress::Pending) => {
                        if let Some(bytes) = handshake.poll_transmit() {
                            io.send(conn, bytes);
                        }
                        MediaStep::Ok
                    }
                    Ok(ClientProgress::Done { leftover, .. }) => {
                        self.tcp_up(conn, TcpReader::Sdrtn(MediaFrameReader::new()), io);
                        self.tcp_data(&leftover, config, io, entropy, now)
                    }
                    Ok(ClientProgress::Bound { .. }) | Err(_) => {
                        self.tcp_failed(config, io, entropy, now)
                    }
                }
            }
            (TcpEvent::Data(data), Opener::Direct) => {
                self.tcp_up(conn, TcpReader::Sdrtn(MediaFrameReader::new()), io);
                self.tcp_data(data, config, io, entropy, now)
            }
        }
    }

    /// Media bytes on the TCP path.
    pub(super) fn tcp_data(
        &mut self,
        mut data: &[u8],
        config: &ClientConfig,
        io: &mut Io,
        entropy: &mut Entropy,
        now: Instant,
    ) -> MediaStep {
        let MediaState::Tcp { reader, .. } = &mut self.state else {
            return MediaStep::Ok;
        };
        match reader {
            TcpReader::Wire(reader) => {
                let MediaRoute::Cloud { session_id, .. } = self.route else {
                    return MediaStep::Ok;
                };
                let mut msgs = Vec::new();
                let decoded = read_frames(reader, &mut data, |_| false, &mut msgs);
                for msg in msgs {
                    match msg {
                        Message::MediaData {
                            session_id: s,
                            peer,
                            payload,
                        } if s == session_id => {
                            self.heard();
                            io.deliver_media(peer, payload);
                        }
                        Message::KeepaliveAck { session_id: s, .. } if s == session_id => {
                            self.heard()
                        }
                        Message::Close { session_id: s, .. } if s == session_id => {
                            return MediaStep::Lost(StateReason::RelayLost)
                        }
                        Message::Error { .. } => return MediaStep::Lost(StateReason::RelayLost),
                        _ => io.ignored(),
                    }
                }
                match decoded {
                    Ok(()) => MediaStep::Ok,
                    Err(e) => MediaStep::Lost(StateReason::ProtocolViolation(format!(
                        "relay media channel: {e}"
                    ))),
                }
            }
            TcpReader::Sdrtn(reader) => {
                let mut datagrams = Vec::new();
                let decoded = reader.push_all(data, &mut datagrams);
                for payload in datagrams {
                    io.deliver_media(config.sdrtn.media_udp, payload);
                }
                if decoded.is_err() {
                    self.tcp_failed(config, io, entropy, now)
                } else {
                    MediaStep::Ok
                }
            }
        }
    }

    /// The TCP path failed: the relay is lost (cloud), or media waits and starts again.
    pub(super) fn tcp_failed(
        &mut self,
        config: &ClientConfig,
        io: &mut Io,
        entropy: &mut Entropy,
        now: Instant,
    ) -> MediaStep {
        if matches!(self.route, MediaRoute::Cloud { .. }) {
            return MediaStep::Lost(StateReason::RelayLost);
        }
        self.close_state(io);
        self.set_path(MediaPath::None, io);
        let delay = backoff::delay(
            config.backoff_initial,
            config.backoff_max,
            config.backoff_jitter_percent,
            self.failures,
            entropy,
        );
        self.failures = self.failures.saturating_add(1);
        self.state = MediaState::Waiting { at: now + delay };
        MediaStep::Ok
    }

    /// The TCP path is up.
    pub(super) fn tcp_up(&mut self, conn: ConnId, reader: TcpReader, io: &mut Io) {
        self.state = MediaState::Tcp { conn, reader };
        self.failures = 0;
        self.heard();
        self.set_path(MediaPath::Tcp, io);
    }
}
