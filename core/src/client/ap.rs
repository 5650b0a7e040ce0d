//! Asking the access point (AP) for relays and a ticket: one round over every address and
//! port, each attempt over UDP and TCP at once.
//!
//! An attempt sends the `ApRequest` as one UDP datagram and over a fresh TCP connection
//! (framed); a TCP-only candidate (port 443, [`CloudTransport`]) sends no datagram. An attempt
//! is in flight until an answer, its TCP connection failing, a refusal, or `ap_attempt_timeout`
//! (its TCP connection is then closed). UDP answers from every candidate contacted in the round
//! count, so an answer that arrives late still wins. An attempt keeps the round alive until its
//! time is up or it is refused, even after its TCP connection failed (a UDP answer may still
//! come); without racing, starting the next attempt ends that for the previous ones. The round
//! fails once every candidate was tried and none keeps it alive.
//!
//! When attempts start is the [`Stagger`]'s business: without racing one at a time, in
//! address-major order (every port of the first address, then the second...), the next
//! starting when the previous ends, as the seed-era client did; with racing (RFC 8305,
//! **beyond the seed**) staggered, bounded in flight, in an order that changes address and port
//! at each step ([`ap_order`]). Either way the candidate that answered the previous round, if
//! any, goes first; the first answer wins and the attempts still in flight are closed
//! (counted in [`ClientStats::race_attempts_cancelled`](super::ClientStats)).
//!
//! The request is padded to [`AP_REQUEST_PADDED_LEN`](crate::wire::AP_REQUEST_PADDED_LEN)
//! bytes ([`Message::padded_ap_request`]): an access point answers nothing shorter, so that
//! no answer is larger than its request.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::entropy::Entropy;
use crate::time::Instant;
use crate::wire::{
    ErrorCode, FrameReader, Message, RelayInfo, Ticket, AP_PORTS, AP_TLS_PORT, FLAG_UDP_MEDIA,
};

use super::config::{ClientConfig, CloudTransport};
use super::io::{read_frames, Io};
use super::race::{ap_order, Stagger};
use super::types::{ConnId, StateReason};
use super::TcpEvent;

/// Most candidates (address × port) one round tries.
const MAX_CANDIDATES: usize = 256;

/// What the access point granted: a ticket and the relays to present it to.
#[derive(Clone, Debug)]
pub(super) struct ApGrant {
    /// The ticket, opaque to the client.
    pub(super) ticket: Ticket,
    /// When the ticket runs out, by the client's clock.
    pub(super) expires_at: Instant,
    /// The usable relays (TCP port not 0), in the AP's order of preference.
    pub(super) relays: Vec<RelayInfo>,
    /// The candidate that answered.
    pub(super) answered_by: SocketAddr,
    /// The answer came from a TCP-only (port 443) candidate: use the relays on their TLS port,
    /// over TCP only.
    pub(super) tcp_443: bool,
}

/// What a round did with an input or a timer.
#[derive(Debug)]
pub(super) enum ApStep {
    /// Still asking.
    Pending,
    /// An access point answered.
    Granted(ApGrant),
    /// The round is over without an answer.
    Failed(StateReason),
}

/// What one message from an access point said.
enum Heard {
    /// Nothing for this round (a stale answer, or a message that has no business here).
    Nothing,
    /// The answer.
    Granted(ApGrant),
    /// A refusal.
    Refused(ErrorCode),
}

/// One access point address and port to ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Candidate {
    addr: SocketAddr,
    /// Also ask over UDP (not on the TCP-only 443 port).
    udp: bool,
}

/// One started attempt.
#[derive(Debug)]
struct Attempt {
    target: Candidate,
    /// The TCP connection, until it fails, closes or is closed.
    conn: Option<ConnId>,
    reader: FrameReader,
    deadline: Instant,
    /// Still in flight (counted by the stagger).
    live: bool,
    /// Keeps the round alive until `deadline` (a UDP answer may still come).
    alive_until_deadline: bool,
}

/// One round of questions to the access point.
#[derive(Debug)]
pub(super) struct ApQuery {
    request_id: u32,
    /// The encoded `ApRequest`, the same for every attempt of the round.
    request: Vec<u8>,
    candidates: Vec<Candidate>,
    /// The started attempts: `attempts[i]` is for `candidates[i]`.
    attempts: Vec<Attempt>,
    stagger: Stagger,
    /// Whether attempts overlap (racing); without, a new attempt ends the previous ones'
    /// hold on the round.
    racing: bool,
    /// The last refusal heard, which becomes the round's failure reason.
    refusal: Option<ErrorCode>,
}

impl ApQuery {
    /// Starts a round over `ips` × the ports for `port` and launches the first attempt.
    pub(super) fn start(
        ips: &[IpAddr],
        port: u16,
        preferred: Option<SocketAddr>,
        config: &ClientConfig,
        entropy: &mut Entropy,
        io: &mut Io,
        now: Instant,
    ) -> Result<ApQuery, StateReason> {
        let request_id = (entropy.next_u64() >> 32) as u32;
        let flags = match config.cloud_transport {
            CloudTransport::Tcp443Only => 0,
            _ => FLAG_UDP_MEDIA,
        };
        // Padded to the largest answer it can earn: access points answer nothing shorter.
        let request = Message::padded_ap_request(request_id, &config.app_id, flags)
            .to_bytes()
            .map_err(|e| StateReason::InvalidConfig(format!("app_id {:?}: {e}", config.app_id)))?;
        let mut candidates = candidates(ips, port, config);
        if candidates.is_empty() {
            return Err(StateReason::InvalidConfig(
                "no access point address to ask".to_owned(),
            ));
        }
        if let Some(pos) = preferred.and_then(|p| candidates.iter().position(|c| c.addr == p)) {
            let first = candidates.remove(pos);
            candidates.insert(0, first);
        }
        io.stats.ap_queries = io.stats.ap_queries.saturating_add(1);
        io.new_race();
        let mut query = ApQuery {
            request_id,
            request,
            stagger: Stagger::new(candidates.len(), config, now),
            candidates,
            attempts: Vec::new(),
            racing: config.race.is_some(),
            refusal: None,
        };
        match query.advance(config, io, now) {
            ApStep::Failed(reason) => Err(reason),
            _ => Ok(query),
        }
    }

    /// When a timer of the round fires: an attempt's time, or the next start.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let attempts = self
            .attempts
            .iter()
            .filter(|a| a.live || a.alive_until_deadline)
            .map(|a| a.deadline)
            .min();
        [attempts, self.stagger.next_start()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Closes every attempt's connection still open.
    pub(super) fn close(&mut self, io: &mut Io) {
        for attempt in &mut self.attempts {
            attempt.live = false;
            if let Some(conn) = attempt.conn.take() {
                io.close(conn);
            }
        }
    }

    /// The round was won: closes the attempts still open, as losers of the race.
    fn cancel_losers(&mut self, io: &mut Io) {
        for attempt in &mut self.attempts {
            attempt.live = false;
            if let Some(conn) = attempt.conn.take() {
                io.cancel(conn);
            }
        }
        for attempt in &self.attempts {
            if attempt.target.udp {
                io.note_loser_source(attempt.target.addr);
            }
        }
    }

    /// Handles the round's timers.
    pub(super) fn on_timeout(
        &mut self,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> ApStep {
        for i in 0..self.attempts.len() {
            if self.attempts.get(i).is_some_and(|a| a.deadline <= now) {
                self.end_attempt(i, io, now);
                self.release_hold(i);
            }
        }
        self.advance(config, io, now)
    }

    /// Handles an event on a TCP connection; `None` when it is no attempt's connection.
    pub(super) fn on_tcp(
        &mut self,
        conn: ConnId,
        event: TcpEvent<'_>,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> Option<ApStep> {
        let (index, target) = self
            .attempts
            .iter()
            .enumerate()
            .find(|(_, a)| a.conn == Some(conn))
            .map(|(i, a)| (i, a.target.addr))?;
        Some(match event {
            TcpEvent::Connected => {
                io.send(conn, self.request.clone());
                ApStep::Pending
            }
            TcpEvent::Failed | TcpEvent::Closed => {
                // Already gone: nothing to close.
                self.forget_conn(index);
                self.end_attempt(index, io, now);
                self.advance(config, io, now)
            }
            TcpEvent::Data(mut data) => {
                let mut msgs = Vec::new();
                let request_id = self.request_id;
                let decoded = read_frames(
                    &mut self.attempts.get_mut(index)?.reader,
                    &mut data,
                    |m| is_final(m, request_id),
                    &mut msgs,
                );
                let mut refused = false;
                for msg in msgs {
                    match self.on_message(msg, target, now) {
                        Heard::Nothing => io.ignored(),
                        Heard::Granted(grant) => {
                            self.forget_conn(index);
                            io.close(conn);
                            self.cancel_losers(io);
                            return Some(ApStep::Granted(grant));
                        }
                        Heard::Refused(code) if code == ErrorCode::UnknownApp => {
                            return Some(ApStep::Failed(StateReason::ApRefused(code)));
                        }
                        Heard::Refused(_) => refused = true,
                    }
                }
                if decoded.is_err() && !refused {
                    io.ignored();
                }
                if refused {
                    self.release_hold(index);
                }
                if refused || decoded.is_err() {
                    self.end_attempt(index, io, now);
                    self.advance(config, io, now)
                } else {
                    ApStep::Pending
                }
            }
        })
    }

    /// Handles a datagram; `None` when it does not come from a candidate of this round.
    pub(super) fn on_udp(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> Option<ApStep> {
        let index = self
            .attempts
            .iter()
            .position(|a| a.target.udp && a.target.addr == from)?;
        let Ok(msg) = Message::decode_datagram(data) else {
            io.ignored();
            return Some(ApStep::Pending);
        };
        Some(match self.on_message(msg, from, now) {
            Heard::Nothing => {
                io.ignored();
                ApStep::Pending
            }
            Heard::Granted(grant) => {
                // The winner's own TCP attempt is not a loser.
                if let Some(conn) = self.attempts.get_mut(index).and_then(|a| a.conn.take()) {
                    io.close(conn);
                }
                self.cancel_losers(io);
                ApStep::Granted(grant)
            }
            Heard::Refused(code) if code == ErrorCode::UnknownApp => {
                ApStep::Failed(StateReason::ApRefused(code))
            }
            Heard::Refused(_) => {
                self.release_hold(index);
                self.end_attempt(index, io, now);
                self.advance(config, io, now)
            }
        })
    }

    /// Acts on one message from `from`.
    fn on_message(&mut self, msg: Message, from: SocketAddr, now: Instant) -> Heard {
        match msg {
            Message::ApResponse {
                request_id,
                ticket,
                ticket_lifetime_ms,
                relays,
            } if request_id == self.request_id => {
                let relays: Vec<RelayInfo> =
                    relays.into_iter().filter(|r| r.tcp_port != 0).collect();
                if relays.is_empty() {
                    return Heard::Nothing;
                }
                let tcp_443 = self
                    .candidates
                    .iter()
                    .any(|c| c.addr == from && !c.udp && from.port() == AP_TLS_PORT);
                Heard::Granted(ApGrant {
                    ticket,
                    expires_at: now + Duration::from_millis(u64::from(ticket_lifetime_ms)),
                    relays,
                    answered_by: from,
                    tcp_443,
                })
            }
            Message::Error { code, .. } => {
                self.refusal = Some(code);
                Heard::Refused(code)
            }
            // A stale answer (another round's id) or a message that has no business here.
            _ => Heard::Nothing,
        }
    }

    /// Forgets attempt `i`'s connection: already gone, or closed by the caller.
    fn forget_conn(&mut self, i: usize) {
        if let Some(attempt) = self.attempts.get_mut(i) {
            attempt.conn = None;
        }
    }

    /// Attempt `i` no longer keeps the round alive until its deadline.
    fn release_hold(&mut self, i: usize) {
        if let Some(attempt) = self.attempts.get_mut(i) {
            attempt.alive_until_deadline = false;
        }
    }

    /// Ends attempt `i` (closing its connection if still open); the next may start at once.
    fn end_attempt(&mut self, i: usize, io: &mut Io, now: Instant) {
        let Some(attempt) = self.attempts.get_mut(i) else {
            return;
        };
        if let Some(conn) = attempt.conn.take() {
            io.close(conn);
        }
        if attempt.live {
            attempt.live = false;
            self.stagger.ended(now);
        }
    }

    /// Starts every attempt that is due, or fails the round when nothing is left to wait for.
    fn advance(&mut self, config: &ClientConfig, io: &mut Io, now: Instant) -> ApStep {
        while let Some(index) = self.stagger.start_due(now) {
            let Some(target) = self.candidates.get(index).copied() else {
                break;
            };
            io.note_tried(format!("AP {}", target.addr));
            if target.udp {
                io.udp(target.addr, self.request.clone());
            }
            let conn = io.connect(target.addr);
            if !self.racing {
                for earlier in &mut self.attempts {
                    earlier.alive_until_deadline = false;
                }
            }
            self.attempts.push(Attempt {
                target,
                conn: Some(conn),
                reader: FrameReader::new(),
                deadline: now + ClientConfig::timer(config.ap_attempt_timeout),
                live: true,
                alive_until_deadline: true,
            });
        }
        let over = self.stagger.exhausted()
            && !self
                .attempts
                .iter()
                .any(|a| a.alive_until_deadline && a.deadline > now);
        if over {
            self.close(io);
            return ApStep::Failed(
                self.refusal
                    .map_or(StateReason::ApUnreachable, StateReason::ApRefused),
            );
        }
        ApStep::Pending
    }
}

/// The round's candidates for `ips` × the ports for `port` (0: the default ports), as the
/// transport says.
fn candidates(ips: &[IpAddr], port: u16, config: &ClientConfig) -> Vec<Candidate> {
    let racing = config.race.is_some();
    let ports: Vec<u16> = if port == 0 {
        AP_PORTS.to_vec()
    } else {
        vec![port]
    };
    let standard = |out: &mut Vec<Candidate>| {
        for addr in ap_order(ips, &ports, racing, MAX_CANDIDATES) {
            out.push(Candidate { addr, udp: true });
        }
    };
    let tls = |out: &mut Vec<Candidate>| {
        for addr in ap_order(ips, &[AP_TLS_PORT], racing, MAX_CANDIDATES) {
            let c = Candidate { addr, udp: false };
            if out.len() < MAX_CANDIDATES && !out.iter().any(|o| o.addr == addr) {
                out.push(c);
            }
        }
    };
    let mut out = Vec::new();
    match config.cloud_transport {
        CloudTransport::Standard => standard(&mut out),
        CloudTransport::Tcp443Only => tls(&mut out),
        CloudTransport::StandardThen443 => {
            standard(&mut out);
            tls(&mut out);
        }
    }
    out
}

/// Whether `msg` ends an attempt's TCP stream: our answer or a refusal.
fn is_final(msg: &Message, request_id: u32) -> bool {
    matches!(msg, Message::ApResponse { request_id: id, .. } if *id == request_id)
        || matches!(msg, Message::Error { .. })
}
