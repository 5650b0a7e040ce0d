//! What the client does with each input and timer: application commands, resolver answers,
//! TCP and UDP events, and the timers of every phase.

use std::net::{IpAddr, SocketAddr};

use crate::params::ProxyServer;

use super::ap::ApStep;
use super::connect::{OpenStep, Route, TunnelOpening};
use super::media::MediaStep;
use super::{
    same_name, ClientEvent, ConnId, Phase, ProxyClient, Session, StateReason, TcpEvent,
    MAX_RESOLVED, MAX_TIMER_ROUNDS,
};

impl ProxyClient {
    // ----- application commands -----

    pub(super) fn send_signalling(&mut self, data: &[u8]) {
        match &self.phase {
            _ if data.is_empty() => {}
            Phase::Connected(Session {
                signalling: Some(conn),
                ..
            }) => {
                let conn = *conn;
                self.send_on(conn, data.to_vec());
            }
            Phase::Failed | Phase::Left => self.drop_signalling(data.len()),
            _ => {
                let room = self
                    .config
                    .max_pending_signalling
                    .saturating_sub(self.pending_signalling.len());
                if data.len() <= room {
                    self.pending_signalling.extend_from_slice(data);
                } else {
                    self.drop_signalling(data.len());
                }
            }
        }
    }

    pub(super) fn drop_signalling(&mut self, len: usize) {
        let stats = &mut self.io.stats;
        stats.signalling_dropped_bytes = stats.signalling_dropped_bytes.saturating_add(len as u64);
    }

    /// Writes signalling bytes on the signalling connection.
    pub(super) fn send_on(&mut self, conn: ConnId, data: Vec<u8>) {
        let stats = &mut self.io.stats;
        stats.signalling_sent_bytes = stats
            .signalling_sent_bytes
            .saturating_add(data.len() as u64);
        self.io.send(conn, data);
    }

    /// Hands SD-RTN's signalling bytes to the application.
    pub(super) fn deliver_signalling(&mut self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let stats = &mut self.io.stats;
        stats.signalling_received_bytes = stats
            .signalling_received_bytes
            .saturating_add(data.len() as u64);
        self.io.event(ClientEvent::SignallingReceived(data));
    }

    pub(super) fn send_media(&mut self, payload: &[u8]) {
        match &mut self.phase {
            Phase::Connected(session) => {
                session
                    .media
                    .send(payload, &self.config, &mut self.io, self.now)
            }
            _ => self.io.media_dropped(),
        }
    }

    // ----- network inputs -----

    pub(super) fn on_resolved(&mut self, name: &str, result: Result<&[IpAddr], &str>) {
        if let Phase::OpeningHttp(opening) = &mut self.phase {
            let (config, io) = (&self.config, &mut self.io);
            return match opening.on_resolved(name, result, config, io, self.now) {
                Some(step) => self.on_open_step(step),
                None => self.io.ignored(),
            };
        }
        let Phase::Resolving { name: asked, .. } = &self.phase else {
            return self.io.ignored();
        };
        if !same_name(asked, name) {
            return self.io.ignored();
        }
        let asked = asked.clone();
        let port = match self.effective_proxy() {
            Some(ProxyServer::CloudDomain { port, .. }) => *port,
            _ => 0,
        };
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                let mut unique: Vec<IpAddr> = Vec::new();
                for ip in addrs {
                    if unique.len() < MAX_RESOLVED && !unique.contains(ip) {
                        unique.push(*ip);
                    }
                }
                self.query_ap(&unique, port);
            }
            Ok(_) => self.attempt_failed(StateReason::DnsFailed(format!("{asked}: no address"))),
            Err(reason) => {
                self.attempt_failed(StateReason::DnsFailed(format!("{asked}: {reason}")))
            }
        }
    }

    pub(super) fn on_tcp(&mut self, conn: ConnId, event: TcpEvent<'_>) {
        let now = self.now;
        let (config, io) = (&self.config, &mut self.io);
        match &mut self.phase {
            Phase::QueryingAp(query) => match query.on_tcp(conn, event, config, io, now) {
                Some(step) => self.on_ap_step(step),
                None => self.io.ignored_tcp(conn),
            },
            Phase::OpeningTunnel(opening) => match opening.on_tcp(conn, event, config, io, now) {
                Some(step) => self.on_open_step(step),
                None => self.io.ignored_tcp(conn),
            },
            Phase::OpeningSocks(opening) => match opening.on_tcp(conn, event, io) {
                Some(step) => self.on_open_step(step),
                None => self.io.ignored_tcp(conn),
            },
            Phase::OpeningDirect(opening) => match opening.on_tcp(conn, event) {
                Some(step) => self.on_open_step(step),
                None => self.io.ignored_tcp(conn),
            },
            Phase::OpeningHttp(opening) => match opening.on_tcp(conn, event, io, now) {
                Some(step) => self.on_open_step(step),
                None => self.io.ignored_tcp(conn),
            },
            Phase::Connected(session) if session.signalling == Some(conn) => match event {
                TcpEvent::Data(data) => self.deliver_signalling(data.to_vec()),
                TcpEvent::Failed | TcpEvent::Closed => {
                    // Already closed by the peer: do not close it again.
                    session.signalling = None;
                    let reason = match session.route {
                        Route::Direct => StateReason::ConnectionLost,
                        _ => StateReason::RelayLost,
                    };
                    self.connection_lost(reason);
                }
                TcpEvent::Connected => self.io.ignored_tcp(conn),
            },
            Phase::Connected(session) => {
                match session
                    .media
                    .on_tcp(conn, event, config, io, &mut self.entropy, now)
                {
                    Some(step) => self.on_media_step(step),
                    None => self.io.ignored_tcp(conn),
                }
            }
            _ => self.io.ignored_tcp(conn),
        }
    }

    pub(super) fn on_udp(&mut self, from: SocketAddr, data: &[u8]) {
        let now = self.now;
        let (config, io) = (&self.config, &mut self.io);
        match &mut self.phase {
            Phase::QueryingAp(query) => match query.on_udp(from, data, config, io, now) {
                Some(step) => self.on_ap_step(step),
                None => self.io.ignored_udp(from),
            },
            Phase::Connected(session) => match session.media.on_udp(from, data, io) {
                Some(step) => self.on_media_step(step),
                None => self.io.ignored_udp(from),
            },
            _ => self.io.ignored_udp(from),
        }
    }

    pub(super) fn on_ap_step(&mut self, step: ApStep) {
        match step {
            ApStep::Pending => {}
            ApStep::Failed(reason) => self.attempt_failed(reason),
            ApStep::Granted(grant) => {
                self.retry.preferred_ap = Some(grant.answered_by);
                let first = self.retry.relay_rotation;
                let avoid = self.retry.avoid_relay;
                match TunnelOpening::start(
                    grant,
                    first,
                    avoid,
                    &self.config,
                    &mut self.io,
                    self.now,
                ) {
                    Ok(opening) => self.phase = Phase::OpeningTunnel(opening),
                    Err(reason) => self.attempt_failed(reason),
                }
            }
        }
    }

    pub(super) fn on_open_step(&mut self, step: OpenStep) {
        match step {
            OpenStep::Pending => {}
            OpenStep::Open(established) => self.connected(established),
            OpenStep::Failed(reason) => self.attempt_failed(reason),
        }
    }

    pub(super) fn on_media_step(&mut self, step: MediaStep) {
        match step {
            MediaStep::Ok => {}
            MediaStep::Lost(reason) => self.connection_lost(reason),
        }
    }

    // ----- timers -----

    /// Fires timers until none is due at `self.now`.
    pub(super) fn fire_due_timers(&mut self) {
        for _ in 0..MAX_TIMER_ROUNDS {
            match self.poll_timeout() {
                Some(deadline) if deadline <= self.now => self.fire_one(),
                _ => return,
            }
        }
    }

    /// Fires the due timers of the current phase (the give-up bound first).
    fn fire_one(&mut self) {
        let now = self.now;
        let give_up_due = !matches!(
            self.phase,
            Phase::Connected(_) | Phase::Failed | Phase::Left
        ) && self.retry.give_up_at.is_some_and(|t| t <= now);
        if give_up_due {
            let text = self.give_up_text();
            return self.fail(StateReason::GaveUp(text));
        }
        let (config, io) = (&self.config, &mut self.io);
        match &mut self.phase {
            Phase::Resolving { name, deadline } if *deadline <= now => {
                let reason = StateReason::DnsFailed(format!("{name}: no answer from the resolver"));
                self.attempt_failed(reason);
            }
            Phase::QueryingAp(query) => {
                let step = query.on_timeout(config, io, now);
                self.on_ap_step(step);
            }
            Phase::OpeningTunnel(opening) => {
                let step = opening.on_timeout(config, io, now);
                self.on_open_step(step);
            }
            Phase::OpeningSocks(opening) => {
                let step = opening.on_timeout(io, now);
                self.on_open_step(step);
            }
            Phase::OpeningDirect(opening) => {
                let step = opening.on_timeout(io, now);
                self.on_open_step(step);
            }
            Phase::OpeningHttp(opening) => {
                let step = opening.on_timeout(io, now);
                self.on_open_step(step);
            }
            Phase::Connected(session) => {
                let step = session.media.on_timeout(config, io, &mut self.entropy, now);
                self.on_media_step(step);
            }
            Phase::Backoff { until } if *until <= now => {
                self.io.stats.reconnect_attempts =
                    self.io.stats.reconnect_attempts.saturating_add(1);
                self.start_attempt();
            }
            _ => {}
        }
    }
}
