//! Asking the access point (AP) for relays and a ticket: one round over every address and
//! port, each attempt over UDP and TCP at once.
//!
//! Candidates are address-major: every port of the first address (in [`AP_PORTS`] order when
//! the configured port is 0), then the second address, and so on; the candidate that answered
//! the previous round, if any, goes first. An attempt sends the `ApRequest` as one UDP datagram
//! and over a fresh TCP connection (framed). It lasts until an answer, its TCP connection
//! failing (the next attempt starts at once), or `ap_attempt_timeout` (its TCP connection is
//! closed and the next attempt starts). UDP answers from every candidate contacted in the round
//! count, so an answer that arrives late still wins. The round fails when the last attempt
//! ends without an answer.
//!
//! The request is padded to [`AP_REQUEST_PADDED_LEN`](crate::wire::AP_REQUEST_PADDED_LEN)
//! bytes ([`Message::padded_ap_request`]): an access point answers nothing shorter, so that
//! no answer is larger than its request.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::entropy::Entropy;
use crate::time::Instant;
use crate::wire::{ErrorCode, FrameReader, Message, RelayInfo, Ticket, AP_PORTS, FLAG_UDP_MEDIA};

use super::config::ClientConfig;
use super::io::{read_frames, Io};
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

/// The attempt in flight.
#[derive(Debug)]
struct Attempt {
    target: SocketAddr,
    /// The TCP connection, until it fails, closes or is closed.
    conn: Option<ConnId>,
    reader: FrameReader,
    deadline: Instant,
}

/// One round of questions to the access point.
#[derive(Debug)]
pub(super) struct ApQuery {
    request_id: u32,
    /// The encoded `ApRequest`, the same for every attempt of the round.
    request: Vec<u8>,
    candidates: Vec<SocketAddr>,
    /// How many candidates have been contacted (they are `candidates[..next]`).
    next: usize,
    current: Option<Attempt>,
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
        // Padded to the largest answer it can earn: access points answer nothing shorter.
        let request = Message::padded_ap_request(request_id, &config.app_id, FLAG_UDP_MEDIA)
            .to_bytes()
            .map_err(|e| StateReason::InvalidConfig(format!("app_id {:?}: {e}", config.app_id)))?;
        let ports: Vec<u16> = if port == 0 {
            AP_PORTS.to_vec()
        } else {
            vec![port]
        };
        let mut candidates: Vec<SocketAddr> = Vec::new();
        for ip in ips {
            for p in &ports {
                let c = SocketAddr::new(*ip, *p);
                if candidates.len() < MAX_CANDIDATES && !candidates.contains(&c) {
                    candidates.push(c);
                }
            }
        }
        if candidates.is_empty() {
            return Err(StateReason::InvalidConfig(
                "no access point address to ask".to_owned(),
            ));
        }
        if let Some(pos) = preferred.and_then(|p| candidates.iter().position(|c| *c == p)) {
            let first = candidates.remove(pos);
            candidates.insert(0, first);
        }
        io.stats.ap_queries = io.stats.ap_queries.saturating_add(1);
        let mut query = ApQuery {
            request_id,
            request,
            candidates,
            next: 0,
            current: None,
            refusal: None,
        };
        match query.next_attempt(config, io, now) {
            ApStep::Failed(reason) => Err(reason),
            _ => Ok(query),
        }
    }

    /// When the current attempt runs out.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.current.as_ref().map(|a| a.deadline)
    }

    /// Closes the attempt's connection, if open.
    pub(super) fn close(&mut self, io: &mut Io) {
        if let Some(conn) = self.current.as_mut().and_then(|a| a.conn.take()) {
            io.close(conn);
        }
    }

    /// Handles the attempt's timer.
    pub(super) fn on_timeout(
        &mut self,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> ApStep {
        match self.deadline() {
            Some(deadline) if deadline <= now => self.next_attempt(config, io, now),
            _ => ApStep::Pending,
        }
    }

    /// Handles an event on a TCP connection; `None` when it is not the attempt's connection.
    pub(super) fn on_tcp(
        &mut self,
        conn: ConnId,
        event: TcpEvent<'_>,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> Option<ApStep> {
        let attempt = self.current.as_mut().filter(|a| a.conn == Some(conn))?;
        let target = attempt.target;
        Some(match event {
            TcpEvent::Connected => {
                io.send(conn, self.request.clone());
                ApStep::Pending
            }
            TcpEvent::Failed | TcpEvent::Closed => {
                attempt.conn = None;
                self.tcp_gone(config, io, now)
            }
            TcpEvent::Data(mut data) => {
                let mut msgs = Vec::new();
                let request_id = self.request_id;
                let decoded = read_frames(
                    &mut attempt.reader,
                    &mut data,
                    |m| is_final(m, request_id),
                    &mut msgs,
                );
                let mut refused = false;
                for msg in msgs {
                    match self.on_message(msg, target, now) {
                        Heard::Nothing => io.ignored(),
                        Heard::Granted(grant) => {
                            self.close(io);
                            return Some(ApStep::Granted(grant));
                        }
                        Heard::Refused(code) if code == ErrorCode::UnknownApp => {
                            return Some(ApStep::Failed(StateReason::ApRefused(code)));
                        }
                        Heard::Refused(_) => refused = true,
                    }
                }
                if refused {
                    self.next_attempt(config, io, now)
                } else if decoded.is_err() {
                    io.ignored();
                    self.close(io);
                    self.tcp_gone(config, io, now)
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
        if !self.candidates.get(..self.next)?.contains(&from) {
            return None;
        }
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
                self.close(io);
                ApStep::Granted(grant)
            }
            Heard::Refused(code) if code == ErrorCode::UnknownApp => {
                ApStep::Failed(StateReason::ApRefused(code))
            }
            Heard::Refused(_) if self.current.as_ref().is_some_and(|a| a.target == from) => {
                self.next_attempt(config, io, now)
            }
            Heard::Refused(_) => ApStep::Pending,
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
                Heard::Granted(ApGrant {
                    ticket,
                    expires_at: now + Duration::from_millis(u64::from(ticket_lifetime_ms)),
                    relays,
                    answered_by: from,
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

    /// The attempt's TCP connection is gone: start the next attempt at once, or, on the last
    /// one, wait for its timer (a UDP answer may still come).
    fn tcp_gone(&mut self, config: &ClientConfig, io: &mut Io, now: Instant) -> ApStep {
        if self.next < self.candidates.len() {
            self.next_attempt(config, io, now)
        } else {
            ApStep::Pending
        }
    }

    /// Ends the current attempt and starts the next, or fails the round.
    fn next_attempt(&mut self, config: &ClientConfig, io: &mut Io, now: Instant) -> ApStep {
        self.close(io);
        let Some(target) = self.candidates.get(self.next).copied() else {
            self.current = None;
            return ApStep::Failed(
                self.refusal
                    .map_or(StateReason::ApUnreachable, StateReason::ApRefused),
            );
        };
        self.next += 1;
        io.note_tried(format!("AP {target}"));
        io.udp(target, self.request.clone());
        let conn = io.connect(target);
        self.current = Some(Attempt {
            target,
            conn: Some(conn),
            reader: FrameReader::new(),
            deadline: now + ClientConfig::timer(config.ap_attempt_timeout),
        });
        ApStep::Pending
    }
}

/// Whether `msg` ends an attempt's TCP stream: our answer or a refusal.
fn is_final(msg: &Message, request_id: u32) -> bool {
    matches!(msg, Message::ApResponse { request_id: id, .. } if *id == request_id)
        || matches!(msg, Message::Error { .. })
}
