//! The access point ("AP/LBS"): answers a client's request with relays and a ticket.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::{bounded_error, frame};
use crate::entropy::Entropy;
use crate::time::Instant;
use crate::wire::{
    DecodeError, ErrorCode, Message, RelayInfo, Ticket, TicketKey, MAGIC, MAX_RELAYS,
    RELAY_UDP_PORTS,
};

/// The access point's configuration.
#[derive(Clone, Debug)]
pub struct ApConfig {
    /// The key shared with the relays, to sign tickets. Default: all zero bytes, a placeholder
    /// that every deployment must replace.
    pub key: TicketKey,
    /// The relays to hand out. Each answer lists up to [`MAX_RELAYS`] of them in an order
    /// shuffled per answer, so that load spreads (unless `shuffle_relays` is off). Their
    /// `udp_port` is ignored: each answer draws one from `udp_ports`. Default: none (every
    /// request is refused with `QuotaExceeded`).
    pub relays: Vec<RelayInfo>,
    /// Shuffle the relays per answer. `false` lists them in the order of `relays` in every
    /// answer: a fixed preference, or a check that explores each order in turn (as
    /// `check-firewall` does). Default: true.
    pub shuffle_relays: bool,
    /// The relays' UDP media ports; an empty range announces 0 (no UDP). Default:
    /// [`RELAY_UDP_PORTS`], 4500..=4650.
    pub udp_ports: RangeInclusive<u16>,
    /// How long a ticket is valid after it is issued (it only gates the opening of tunnels).
    /// Default: 120 s.
    pub ticket_lifetime: Duration,
    /// The application ids served; `None` serves any. Default: `None`.
    pub allowed_apps: Option<Vec<String>>,
    /// Most requests answered per client IP address per `rate_window`; more are refused with
    /// `RateLimited`. Default: 20.
    pub max_requests_per_ip: u32,
    /// The rate limiter's window (fixed windows, one per address). Default: 10 s.
    pub rate_window: Duration,
    /// Most client addresses the rate limiter tracks at once; when full, the oldest window is
    /// forgotten. Default: 4 096.
    pub max_tracked_ips: usize,
}

impl ApConfig {
    /// The default configuration with a real `key` and relays.
    pub fn new(key: TicketKey, relays: Vec<RelayInfo>) -> Self {
        ApConfig {
            key,
            relays,
            ..ApConfig::default()
        }
    }
}

impl Default for ApConfig {
    fn default() -> Self {
        ApConfig {
            key: TicketKey::from_bytes([0; 32]),
            relays: Vec::new(),
            shuffle_relays: true,
            udp_ports: RELAY_UDP_PORTS,
            ticket_lifetime: Duration::from_secs(120),
            allowed_apps: None,
            max_requests_per_ip: 20,
            rate_window: Duration::from_secs(10),
            max_tracked_ips: 4_096,
        }
    }
}

/// The access point's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApCounters {
    /// Messages that carried our magic (everything else is dropped unanswered).
    pub requests: u64,
    /// Requests answered with an `ApResponse`.
    pub answered: u64,
    /// Messages without our magic, dropped.
    pub dropped: u64,
    /// Refused: over the per-address rate limit.
    pub refused_rate_limited: u64,
    /// Refused: a protocol version other than ours.
    pub refused_unsupported_version: u64,
    /// Refused: undecodable, or not an `ApRequest`.
    pub refused_malformed: u64,
    /// Refused: an application id not served here.
    pub refused_unknown_app: u64,
    /// Refused: no relay is configured.
    pub refused_no_relay: u64,
    /// Refusals whose `Error` was not sent because it would have been larger than the request.
    pub error_replies_suppressed: u64,
}

/// The access point: one request in, one answer out.
///
/// ```
/// use cloudproxy_core::entropy::Entropy;
/// use cloudproxy_core::relay::{AccessPoint, ApConfig};
/// use cloudproxy_core::time::Instant;
/// use cloudproxy_core::wire::{Message, RelayInfo, TicketKey, FLAG_UDP_MEDIA};
///
/// let relay = RelayInfo { addr: "120.92.118.34".parse().unwrap(), tcp_port: 4000, udp_port: 0 };
/// let key = TicketKey::from_bytes([7; 32]);
/// let mut ap = AccessPoint::new(ApConfig::new(key.clone(), vec![relay]), Entropy::from_u64(1));
/// let from = "203.0.113.7:40000".parse().unwrap();
/// let request = Message::ApRequest { request_id: 9, app_id: "demo".into(), flags: FLAG_UDP_MEDIA };
/// let now = Instant::from_millis(1_000);
/// let answer = ap.handle_message(now, from, &request.to_bytes().unwrap()).unwrap();
/// let Ok(Message::ApResponse { request_id, ticket, relays, .. }) = Message::decode_datagram(&answer)
/// else { panic!("not an answer") };
/// assert_eq!(request_id, 9);
/// assert!((4500..=4650).contains(&relays[0].udp_port));
/// assert_eq!(ticket.verify(&key, now, from.ip()), Ok(()));
/// ```
#[derive(Debug)]
pub struct AccessPoint {
    /// The configuration.
    config: ApConfig,
    /// Ticket nonces, relay order, port choice.
    entropy: Entropy,
    /// Per-address request counts.
    limiter: RateLimiter,
    /// Counters.
    counters: ApCounters,
}

impl AccessPoint {
    /// An access point with `config`, drawing its random choices from `entropy`.
    pub fn new(config: ApConfig, entropy: Entropy) -> Self {
        let limiter = RateLimiter::new(
            config.max_requests_per_ip,
            config.rate_window,
            config.max_tracked_ips,
        );
        AccessPoint {
            config,
            entropy,
            limiter,
            counters: ApCounters::default(),
        }
    }

    /// Handles one whole message (a UDP datagram, or one frame cut from a TCP stream) from
    /// `from` and returns the reply to send back, `None` to send nothing.
    ///
    /// In order: bytes without our magic are dropped; every other message counts against its
    /// sender's rate limit (`RateLimited` beyond it); a bad version is answered
    /// `UnsupportedVersion`; anything undecodable or other than an `ApRequest` is `Malformed`;
    /// an application id not served is `UnknownApp`. An `Error` reply is never larger than the
    /// request it answers (its reason is cut to fit, or it is not sent), so spoofed requests
    /// cannot turn the access point into an amplifier beyond the rate-limited answers.
    pub fn handle_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        message_bytes: &[u8],
    ) -> Option<Vec<u8>> {
        if message_bytes.get(..2) != Some(&MAGIC.to_be_bytes()[..]) {
            self.counters.dropped += 1;
            return None;
        }
        self.counters.requests += 1;
        let len = message_bytes.len();
        if !self.limiter.allow(now, from.ip().to_canonical()) {
            self.counters.refused_rate_limited += 1;
            return self.error(
                ErrorCode::RateLimited,
                "too many requests, retry later",
                len,
            );
        }
        let (request_id, app_id) = match Message::decode_datagram(message_bytes) {
            Ok(Message::ApRequest {
                request_id, app_id, ..
            }) => (request_id, app_id),
            Ok(other) => {
                self.counters.refused_malformed += 1;
                let reason = format!("expected ApRequest, got {:?}", other.message_type());
                return self.error(ErrorCode::Malformed, &reason, len);
            }
            Err(err) => return self.decode_error(&err, len),
        };
        if let Some(apps) = &self.config.allowed_apps {
            if !apps.contains(&app_id) {
                self.counters.refused_unknown_app += 1;
                return self.error(ErrorCode::UnknownApp, "unknown application id", len);
            }
        }
        if self.config.relays.is_empty() {
            self.counters.refused_no_relay += 1;
            return self.error(ErrorCode::QuotaExceeded, "no relay available", len);
        }
        let nonce = self.entropy.next_array();
        let expires_at = now + self.config.ticket_lifetime;
        let Ok(ticket) = Ticket::issue(&self.config.key, &app_id, from.ip(), expires_at, nonce)
        else {
            // Unreachable: the decoded application id is valid.
            self.counters.refused_malformed += 1;
            return self.error(ErrorCode::Malformed, "bad application id", len);
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
        Some(frame(&response))
    }

    /// The counters.
    pub fn counters(&self) -> &ApCounters {
        &self.counters
    }

    /// The configuration.
    pub fn config(&self) -> &ApConfig {
        &self.config
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

    /// Counts a decoding failure and answers it.
    fn decode_error(&mut self, err: &DecodeError, len: usize) -> Option<Vec<u8>> {
        let code = err.error_code();
        if code == ErrorCode::UnsupportedVersion {
            self.counters.refused_unsupported_version += 1;
        } else {
            self.counters.refused_malformed += 1;
        }
        self.error(code, &err.to_string(), len)
    }

    /// An `Error` reply no larger than the request.
    fn error(&mut self, code: ErrorCode, reason: &str, request_len: usize) -> Option<Vec<u8>> {
        let reply = bounded_error(code, reason, request_len);
        if reply.is_none() {
            self.counters.error_replies_suppressed += 1;
        }
        reply
    }
}

/// Fixed-window request counts per address, bounded: when full, the oldest window goes.
#[derive(Clone, Debug)]
struct RateLimiter {
    /// Address → (window start, requests in the window).
    windows: BTreeMap<IpAddr, (Instant, u32)>,
    /// The same windows by start, oldest first.
    by_start: BTreeSet<(Instant, IpAddr)>,
    /// Most requests per window.
    max: u32,
    /// The window's length.
    window: Duration,
    /// Most addresses tracked.
    capacity: usize,
}

impl RateLimiter {
    /// A limiter of `max` requests per `window` for each of at most `capacity` addresses.
    fn new(max: u32, window: Duration, capacity: usize) -> Self {
        RateLimiter {
            windows: BTreeMap::new(),
            by_start: BTreeSet::new(),
            max,
            window,
            capacity: capacity.max(1),
        }
    }

    /// Counts a request from `ip`; false when it is over the limit.
    fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        while let Some(&(start, old)) = self.by_start.first() {
            if start + self.window > now {
                break;
            }
            self.by_start.pop_first();
            self.windows.remove(&old);
        }
        if let Some((_, count)) = self.windows.get_mut(&ip) {
            if *count >= self.max {
                return false;
            }
            *count += 1;
            return true;
        }
        if self.max == 0 {
            return false;
        }
        while self.windows.len() >= self.capacity {
            let Some((_, oldest)) = self.by_start.pop_first() else {
                break;
            };
            self.windows.remove(&oldest);
        }
        self.windows.insert(ip, (now, 1));
        self.by_start.insert((now, ip));
        true
    }

    /// How many addresses are tracked.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_per_window_and_stays_bounded() {
        let mut l = RateLimiter::new(2, Duration::from_secs(10), 3);
        let ip = |n: u8| IpAddr::from([198, 51, 100, n]);
        let t0 = Instant::from_millis(0);
        assert!(l.allow(t0, ip(1)));
        assert!(l.allow(t0, ip(1)));
        assert!(!l.allow(t0, ip(1)));
        assert!(l.allow(t0 + Duration::from_secs(10), ip(1)), "new window");
        for n in 2..50 {
            assert!(l.allow(t0 + Duration::from_secs(11), ip(n)));
            assert!(l.len() <= 3);
        }
        let mut zero = RateLimiter::new(0, Duration::from_secs(1), 3);
        assert!(!zero.allow(t0, ip(1)));
    }
}
