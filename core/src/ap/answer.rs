//! Judging one request: the rate limit, the padding rule, the application, then the answer.

use std::net::SocketAddr;

use super::limiter::Verdict;
use super::{AccessPoint, ApOutcome, ApRefusal};
use crate::relay::{bounded_error, frame};
use crate::time::Instant;
use crate::wire::{
    DecodeError, ErrorCode, Message, RelayInfo, Ticket, AP_REQUEST_PADDED_LEN, MAX_RELAYS,
};

impl AccessPoint {
    /// Judges one request of `len` bytes from `from` (a datagram, or a frame cut from a TCP
    /// stream, already decoded) and returns the reply to send, if any, with its outcome.
    ///
    /// In order: every request counts against its sender's rate limit (`RateLimited`, once
    /// per window, then silence); a bad version is `UnsupportedVersion`; anything undecodable
    /// or other than an `ApRequest` is `Malformed`; a request shorter than
    /// [`AP_REQUEST_PADDED_LEN`] is `PaddingRequired`; an application id not served is
    /// `UnknownApp`; no relay is `QuotaExceeded`. An `Error` is never larger than the request
    /// (its reason is cut to fit, or it is not sent), and an `ApResponse` never is either: it
    /// is at most [`AP_REQUEST_PADDED_LEN`] bytes, the least a request it answers holds.
    pub(super) fn judge(
        &mut self,
        now: Instant,
        from: SocketAddr,
        decoded: Result<Message, DecodeError>,
        len: usize,
    ) -> (Option<Vec<u8>>, ApOutcome) {
        self.counters.requests += 1;
        match self.limiter.check(now, from.ip().to_canonical()) {
            Verdict::Allowed { overflow } => {
                if overflow {
                    self.counters.rate_limit_overflow += 1;
                }
            }
            Verdict::Refused { answer, overflow } => {
                if overflow {
                    self.counters.rate_limit_overflow += 1;
                }
                if !answer {
                    self.counters.refused_rate_limited += 1;
                    self.counters.rate_limit_silenced += 1;
                    let outcome = ApOutcome::Refused {
                        refusal: ApRefusal::RateLimited,
                        answered: false,
                    };
                    return (None, outcome);
                }
                let reason = "too many requests, retry later";
                return self.refuse(ApRefusal::RateLimited, reason, len);
            }
        }
        let (request_id, app_id) = match decoded {
            Ok(Message::ApRequest {
                request_id, app_id, ..
            }) => (request_id, app_id),
            Ok(other) => {
                let reason = format!("expected ApRequest, got {:?}", other.message_type());
                return self.refuse(ApRefusal::Malformed, &reason, len);
            }
            Err(err) => {
                let refusal = if err.error_code() == ErrorCode::UnsupportedVersion {
                    ApRefusal::UnsupportedVersion
                } else {
                    ApRefusal::Malformed
                };
                return self.refuse(refusal, &err.to_string(), len);
            }
        };
        if len < AP_REQUEST_PADDED_LEN {
            let reason = format!("pad the ApRequest to {AP_REQUEST_PADDED_LEN} bytes");
            return self.refuse(ApRefusal::PaddingRequired, &reason, len);
        }
        if let Some(apps) = &self.config.allowed_apps {
            if !apps.contains(&app_id) {
                return self.refuse(ApRefusal::UnknownApp, "unknown application id", len);
            }
        }
        if self.config.relays.is_empty() {
            return self.refuse(ApRefusal::NoRelay, "no relay available", len);
        }
        let nonce = self.entropy.next_array();
        let expires_at = self.unix_now(now) + self.config.ticket_lifetime;
        let Ok(ticket) = Ticket::issue(&self.config.key, &app_id, from.ip(), expires_at, nonce)
        else {
            // Unreachable: the decoded application id is valid.
            return self.refuse(ApRefusal::Malformed, "bad application id", len);
        };
        let relays = self.pick_relays();
        let response = Message::ApResponse {
            request_id,
            ticket,
            ticket_lifetime_ms: u32::try_from(self.config.ticket_lifetime.as_millis())
                .unwrap_or(u32::MAX),
            relays,
        };
        self.counters.answered += 1;
        (Some(frame(&response)), ApOutcome::Granted)
    }

    /// Counts a refusal and phrases its `Error`, no larger than the `len`-byte request.
    fn refuse(
        &mut self,
        refusal: ApRefusal,
        reason: &str,
        len: usize,
    ) -> (Option<Vec<u8>>, ApOutcome) {
        self.counters.refused(refusal);
        let reply = bounded_error(refusal.code(), reason, len);
        if reply.is_none() {
            self.counters.error_replies_suppressed += 1;
        }
        let answered = reply.is_some();
        (reply, ApOutcome::Refused { refusal, answered })
    }

    /// Up to [`MAX_RELAYS`] relays in a random order (a Fisher–Yates shuffle driven by the
    /// entropy; the configured order when `shuffle_relays` is off), each with a UDP port drawn
    /// from the range.
    fn pick_relays(&mut self) -> Vec<RelayInfo> {
        let mut relays = self.config.relays.clone();
        if self.config.shuffle_relays {
            for i in (1..relays.len()).rev() {
                let j = usize::try_from(self.entropy.next_below(i as u64 + 1)).unwrap_or(0);
                relays.swap(i, j.min(i));
            }
        }
        relays.truncate(MAX_RELAYS);
        let (start, end) = (*self.config.udp_ports.start(), *self.config.udp_ports.end());
        for relay in &mut relays {
            relay.udp_port = if start > end {
                0
            } else {
                let span = u64::from(end - start) + 1;
                let offset = u16::try_from(self.entropy.next_below(span)).unwrap_or(0);
                start.saturating_add(offset)
            };
        }
        relays
    }
}
