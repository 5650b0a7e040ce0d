//! The client's life cycle: attempts, fail-over, backoff, giving up, the automatic mode's
//! fallback, network changes, and the moment a path opens.

use std::net::IpAddr;

use crate::params::ProxyServer;

use super::ap::ApQuery;
use super::backoff;
use super::connect::{DirectOpening, Established, Route, SocksOpening};
use super::http::HttpOpening;
use super::media::Media;
use super::{
    ClientConfig, ClientEvent, ConnectionState, NetworkChange, Phase, ProxyClient, Session,
    StateReason,
};

impl ProxyClient {
    /// Changes the public state, reporting it when it really changes.
    pub(super) fn set_state(&mut self, state: ConnectionState, reason: StateReason) {
        if self.state != state {
            self.state = state;
            self.io
                .event(ClientEvent::ConnectionStateChanged { state, reason });
        }
    }

    /// The proxy the next attempt goes through: the configured one, or in automatic mode the
    /// fallback once the direct attempt failed; `None`: direct.
    pub(super) fn effective_proxy(&self) -> Option<&ProxyServer> {
        match &self.config.proxy {
            Some(server) => Some(server),
            None if self.fell_back => self.config.fallback_proxy.as_ref(),
            None => None,
        }
    }

    /// Starts an attempt from the top, as the configuration (and automatic mode) says.
    pub(super) fn start_attempt(&mut self) {
        self.retry.tls_failure = None;
        let now = self.now;
        let server = self.effective_proxy().cloned();
        let phase = match &server {
            None => {
                let timeout = if self.config.is_automatic() {
                    self.config.direct_probe_timeout
                } else {
                    self.config.connect_timeout
                };
                self.direct_started = now;
                Phase::OpeningDirect(DirectOpening::start(
                    &self.config,
                    timeout,
                    &mut self.io,
                    now,
                ))
            }
            Some(server @ ProxyServer::HttpConnect { .. }) => {
                match HttpOpening::start(server, &self.config, &mut self.io, now) {
                    Ok((opening, step)) => {
                        self.phase = Phase::OpeningHttp(opening);
                        return self.on_open_step(step);
                    }
                    Err(reason) => return self.attempt_failed(reason),
                }
            }
            Some(ProxyServer::Socks5(server)) => Phase::OpeningSocks(SocksOpening::start(
                *server,
                self.config.socks5_credentials.clone(),
                self.config.sdrtn.signalling,
                &self.config,
                &mut self.io,
                now,
            )),
            Some(ProxyServer::CloudDomain { domain, .. }) => {
                self.io.note_tried(format!("DNS {domain}"));
                self.io.resolve(domain.clone());
                Phase::Resolving {
                    name: domain.clone(),
                    deadline: now + ClientConfig::timer(self.config.resolve_timeout),
                }
            }
            Some(ProxyServer::CloudIpList { ips, port }) => {
                return self.query_ap(ips, *port);
            }
        };
        self.phase = phase;
    }

    /// Starts a round of questions to the access point.
    pub(super) fn query_ap(&mut self, ips: &[IpAddr], port: u16) {
        match ApQuery::start(
            ips,
            port,
            self.retry.preferred_ap,
            &self.config,
            &mut self.entropy,
            &mut self.io,
            self.now,
        ) {
            Ok(query) => self.phase = Phase::QueryingAp(query),
            Err(reason) => self.attempt_failed(reason),
        }
    }

    /// Closes whatever the current phase holds open and leaves it.
    fn close_phase(&mut self) {
        let io = &mut self.io;
        match &mut self.phase {
            Phase::QueryingAp(query) => query.close(io),
            Phase::OpeningTunnel(opening) => opening.close(io),
            Phase::OpeningSocks(opening) => opening.close(io),
            Phase::OpeningDirect(opening) => opening.close(io),
            Phase::OpeningHttp(opening) => opening.close(io),
            Phase::Connected(session) => {
                if let Some(conn) = session.signalling.take() {
                    io.close(conn);
                }
                session.media.close(io);
            }
            Phase::Resolving { .. } | Phase::Backoff { .. } | Phase::Failed | Phase::Left => {}
        }
        self.phase = Phase::Failed;
    }

    /// An attempt failed: in automatic mode a failed direct attempt falls back to the cloud
    /// proxy at once; otherwise back off and try again, or give up.
    pub(super) fn attempt_failed(&mut self, reason: StateReason) {
        // No answer, and a server that was reached failed its TLS handshake: that is why.
        let reason = match (reason, self.retry.tls_failure.take()) {
            (StateReason::ApUnreachable | StateReason::RelayUnreachable, Some(text)) => {
                StateReason::TlsFailed(text)
            }
            (reason, _) => reason,
        };
        let direct = matches!(self.phase, Phase::OpeningDirect(_));
        if direct && self.config.is_automatic() && !self.fell_back {
            return self.fall_back(reason);
        }
        self.close_phase();
        self.retry.last_reason = Some(reason.clone());
        if reason.is_fatal() {
            return self.fail(reason);
        }
        self.retry.failures = self.retry.failures.saturating_add(1);
        if let Some(max) = self.config.max_reconnect_attempts {
            if self.retry.failures > max {
                let text = self.give_up_text();
                return self.fail(StateReason::GaveUp(text));
            }
        }
        self.back_off(reason);
    }

    /// Automatic mode: the direct attempt failed (`cause`), so the cloud proxy is next, at once.
    /// Reported as a state change to the current state with the reason `FallbackToProxy`
    /// (the documented exception to "only real changes").
    fn fall_back(&mut self, cause: StateReason) {
        self.close_phase();
        self.fell_back = true;
        let stats = &mut self.io.stats;
        stats.fallbacks_to_proxy = stats.fallbacks_to_proxy.saturating_add(1);
        let after = self.now.saturating_duration_since(self.direct_started);
        let reason = StateReason::FallbackToProxy {
            after,
            cause: Box::new(cause.clone()),
        };
        self.retry.last_reason = Some(cause);
        self.io.event(ClientEvent::ConnectionStateChanged {
            state: self.state,
            reason,
        });
        self.start_attempt();
    }

    /// The local network changed (beyond the seed).
    pub(super) fn network_changed(&mut self, change: NetworkChange) {
        match change {
            NetworkChange::PortChanged => {
                let acted = match &mut self.phase {
                    Phase::Connected(session) => session.media.port_changed(&mut self.io),
                    _ => false,
                };
                if acted {
                    let stats = &mut self.io.stats;
                    stats.network_changes = stats.network_changes.saturating_add(1);
                } else {
                    self.io.ignored();
                }
            }
            NetworkChange::AddressChanged => {
                if matches!(self.phase, Phase::Failed | Phase::Left) {
                    return self.io.ignored();
                }
                let stats = &mut self.io.stats;
                stats.network_changes = stats.network_changes.saturating_add(1);
                // Every connection and the ticket belong to the old address: start over now,
                // from the direct attempt in automatic mode.
                self.close_phase();
                self.fell_back = false;
                self.retry.failures = 0;
                self.retry.since = self.now;
                self.retry.give_up_at =
                    Some(self.now + ClientConfig::timer(self.config.give_up_after));
                self.retry.last_reason = Some(StateReason::NetworkChanged);
                self.retry.avoid_relay = None;
                self.io.tried.clear();
                if self.state == ConnectionState::Connected {
                    self.set_state(ConnectionState::Reconnecting, StateReason::NetworkChanged);
                }
                self.start_attempt();
            }
        }
    }

    /// Waits before the next attempt, in state `Reconnecting`.
    fn back_off(&mut self, reason: StateReason) {
        let delay = backoff::delay(
            self.config.backoff_initial,
            self.config.backoff_max,
            self.config.backoff_jitter_percent,
            self.retry.failures.saturating_sub(1),
            &mut self.entropy,
        );
        self.phase = Phase::Backoff {
            until: self.now + delay,
        };
        self.set_state(ConnectionState::Reconnecting, reason);
    }

    /// The connected session is lost: reconnect, avoiding this relay.
    pub(super) fn connection_lost(&mut self, reason: StateReason) {
        if let Phase::Connected(Session {
            route: Route::Cloud { relay_tcp, .. },
            ..
        }) = &self.phase
        {
            self.retry.avoid_relay = Some(*relay_tcp);
            self.retry.relay_rotation = self.retry.relay_rotation.wrapping_add(1);
        }
        self.close_phase();
        self.retry.failures = 1;
        self.retry.since = self.now;
        self.retry.give_up_at = Some(self.now + ClientConfig::timer(self.config.give_up_after));
        self.retry.last_reason = Some(reason.clone());
        self.io.tried.clear();
        self.back_off(reason);
    }

    /// Gives up: state `Failed`, nothing open, no timers.
    pub(super) fn fail(&mut self, reason: StateReason) {
        self.close_phase();
        self.phase = Phase::Failed;
        self.drop_pending_signalling();
        self.set_state(ConnectionState::Failed, reason);
    }

    /// The human text of a give-up: how long, how many attempts, through what, what broke.
    pub(super) fn give_up_text(&self) -> String {
        let how = match (self.effective_proxy(), self.config.is_automatic()) {
            (None, _) => "direct to SD-RTN".to_owned(),
            (Some(server), true) => format!("direct to SD-RTN, then proxy {server}"),
            (Some(server), false) => format!("proxy {server}"),
        };
        let last = self
            .retry
            .last_reason
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string);
        format!(
            "no connection for {:.1}s after {} failed attempts via {how}; last error: {last}; \
             tried: {}",
            self.now
                .saturating_duration_since(self.retry.since)
                .as_secs_f64(),
            self.retry.failures,
            if self.io.tried.is_empty() {
                "nothing".to_owned()
            } else {
                self.io.tried.join(", ")
            }
        )
    }

    /// The application left.
    pub(super) fn leave(&mut self) {
        if matches!(self.phase, Phase::Left) {
            return;
        }
        self.close_phase();
        self.phase = Phase::Left;
        self.drop_pending_signalling();
        self.set_state(ConnectionState::Disconnected, StateReason::Left);
    }

    /// Counts queued signalling as dropped and forgets it.
    pub(super) fn drop_pending_signalling(&mut self) {
        let dropped = self.pending_signalling.len() as u64;
        self.io.stats.signalling_dropped_bytes = self
            .io
            .stats
            .signalling_dropped_bytes
            .saturating_add(dropped);
        self.pending_signalling = Vec::new();
    }

    /// A signalling path is open: report it, flush the queue, start media.
    pub(super) fn connected(&mut self, established: Established) {
        let Established {
            route,
            signalling,
            early,
        } = established;
        let now = self.now;
        let was = self.state;
        self.retry.failures = 0;
        self.retry.give_up_at = None;
        self.retry.last_reason = None;
        self.io.tried.clear();
        let stats = &mut self.io.stats;
        stats.connections = stats.connections.saturating_add(1);
        if was == ConnectionState::Reconnecting {
            stats.reconnects = stats.reconnects.saturating_add(1);
        }
        if stats.join_time.is_none() {
            stats.join_time = Some(now.saturating_duration_since(self.started_at));
        }
        self.set_state(ConnectionState::Connected, StateReason::Joined);
        let relay = match &route {
            Route::Cloud { relay_tcp, .. } => Some(*relay_tcp),
            Route::Socks { server } => Some(*server),
            Route::Http { proxy } => Some(*proxy),
            Route::Direct => None,
        };
        let proxy_type = self.effective_proxy().map(ProxyServer::proxy_type);
        if let (Some(relay), Some(proxy_type)) = (relay, proxy_type) {
            self.io.event(ClientEvent::ProxyConnected {
                proxy_type,
                relay,
                elapsed: now.saturating_duration_since(self.started_at),
            });
        }
        self.deliver_signalling(early);
        let pending = std::mem::take(&mut self.pending_signalling);
        self.send_on(signalling, pending);
        let media = Media::start(&route, &self.config, &mut self.io, now);
        self.phase = Phase::Connected(Session {
            route,
            signalling: Some(signalling),
            media,
        });
    }
}
