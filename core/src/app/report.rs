//! The application's report: a fold of its [`AppEvent`]s, for the scenario report and the
//! oracles, and for `cloudproxy call`'s report: signalling round-trip times and RFC 3550 media
//! jitter, as percentiles ([`super::stats`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::client::{ConnectionState, MediaPath};

use super::stats::{Jitter, Samples};
use super::types::AppEvent;

/// Most signalling messages whose send time the report keeps, awaiting their ack (the oldest
/// is forgotten beyond: its round trip goes unmeasured).
pub const MAX_TIMED_SIGNALS: usize = 1_024;

/// Media received from one sender.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Distinct packets received.
    pub received: u64,
    /// Packets missing between the first and the highest sequence number seen.
    pub lost: u64,
    /// Packets received again.
    pub duplicated: u64,
    /// Packets that arrived after a later one.
    pub reordered: u64,
    /// Packets whose checksum did not match.
    pub corrupt: u64,
    seen: BTreeSet<u32>,
    first: Option<u32>,
    highest: Option<u32>,
    /// RFC 3550 jitter of this sender's stream, microseconds.
    jitter: Jitter,
}

impl StreamStats {
    /// The highest sequence number received.
    pub fn highest(&self) -> Option<u32> {
        self.highest
    }

    /// The RFC 3550 interarrival jitter of this sender's stream at its latest packet,
    /// microseconds (0 before two stamped packets arrived).
    pub fn jitter_us(&self) -> u32 {
        self.jitter.estimate()
    }

    /// Folds a new packet's relative transit time (arrival on the receiver's clock minus the
    /// sender's stamp, both microseconds) into the stream's jitter; returns the estimate.
    fn record_transit(&mut self, transit_us: i64) -> u32 {
        self.jitter.record(transit_us)
    }

    /// Counts one packet of this sender.
    pub fn record(&mut self, seq: u32, intact: bool) {
        if !intact {
            self.corrupt += 1;
            return;
        }
        if !self.seen.insert(seq) {
            self.duplicated += 1;
            return;
        }
        self.received += 1;
        if self.highest.is_some_and(|h| seq < h) {
            self.reordered += 1;
        }
        let first = self.first.map_or(seq, |f| f.min(seq));
        let highest = self.highest.map_or(seq, |h| h.max(seq));
        (self.first, self.highest) = (Some(first), Some(highest));
        let span = u64::from(highest - first) + 1;
        self.lost = span.saturating_sub(self.received);
    }
}

/// What an application did and saw: [`ClientReport::record`] folds its events in.
///
/// `state`, `last_reason` and `media_path` describe the call: leaving the channel does not
/// reset them (`codes` shows the leave), so that a report read after the call says how the
/// call went; a new join starts updating them again.
#[derive(Clone, Debug, Default)]
pub struct ClientReport {
    /// setParameters (`set`) / setCloudProxy (`cloud`) / join / leave return codes, in script
    /// order.
    pub codes: Vec<(String, i32)>,
    /// The proxy client's state (the last one before leaving, after a leave).
    pub state: Option<ConnectionState>,
    /// The reason of the latest state change.
    pub last_reason: String,
    /// Time from the first join to the first connection.
    pub join_time: Option<Duration>,
    /// The proxy type and relay (or SOCKS5 server) of the latest connection.
    pub proxy: Option<(u8, SocketAddr)>,
    /// The media path (the last one before leaving, after a leave).
    pub media_path: Option<MediaPath>,
    /// Times the client went from connected to reconnecting.
    pub reconnects: u32,
    /// Media packets sent.
    pub media_sent: u64,
    /// Media received, per sender uid.
    pub media_from: BTreeMap<u32, StreamStats>,
    /// Signalling messages sent (joins included).
    pub signalling_sent: u64,
    /// Signalling messages the edge acknowledged.
    pub signalling_acked: BTreeSet<u64>,
    /// Acks of messages never sent, or lines that were not signalling messages.
    pub signalling_bad_acks: u64,
    /// Instants (since start) at which media arrived, first and last.
    pub media_window: Option<(Duration, Duration)>,
    /// Media packets received per second of simulated time since start.
    pub media_per_second: BTreeMap<u64, u64>,
    /// Outages: when the connection was lost and when it came back (since start).
    pub outages: Vec<(Duration, Option<Duration>)>,
    /// Whether the script finished (set by the driver when the application is done).
    pub done: bool,
    /// The config in force at the latest join, as a setParameters object with an HTTP
    /// proxy's password shown as `"<redacted>"` ([`ProxyConfig::to_json_redacted`](crate::params::ProxyConfig::to_json_redacted),
    /// the engine CLI's redaction): reports print it.
    pub config_in_force: Option<String>,
    /// Signalling round trips, microseconds: from sending a message (a join included) to its
    /// ack, for messages acknowledged on the connection they were sent on (a re-send after a
    /// reconnect would measure the outage).
    pub rtt_us: Samples,
    /// Media jitter, microseconds: each sender's RFC 3550 interarrival estimate at each of its
    /// stamped packets, all senders together.
    pub jitter_us: Samples,
    /// Send times of the signalling messages not acknowledged yet (at most
    /// [`MAX_TIMED_SIGNALS`]).
    sent_at: BTreeMap<u64, Duration>,
    /// When the first join was called.
    first_join_at: Option<Duration>,
    /// Between a leave and the next join.
    left: bool,
}

impl ClientReport {
    /// Media packets received, all senders.
    pub fn media_received(&self) -> u64 {
        self.media_from.values().map(|s| s.received).sum()
    }

    /// Media packets lost, all senders.
    pub fn media_lost(&self) -> u64 {
        self.media_from.values().map(|s| s.lost).sum()
    }

    /// Folds one event in.
    pub fn record(&mut self, event: &AppEvent) {
        match event {
            AppEvent::ParametersSet { code, .. } => self.codes.push(("set".to_owned(), *code)),
            AppEvent::CloudProxySet { code, .. } => self.codes.push(("cloud".to_owned(), *code)),
            AppEvent::Joined { config, at } => {
                self.first_join_at.get_or_insert(*at);
                self.left = false;
                self.config_in_force = Some(config.to_json_redacted().to_string());
                self.codes.push(("join".to_owned(), 0));
            }
            AppEvent::JoinRefused { code, .. } => self.codes.push(("join".to_owned(), *code)),
            AppEvent::Left => {
                self.left = true;
                self.sent_at.clear();
                self.codes.push(("leave".to_owned(), 0));
            }
            AppEvent::LeaveRefused { code, .. } => self.codes.push(("leave".to_owned(), *code)),
            AppEvent::StateChanged { state, reason, at } if !self.left => {
                self.state_changed(*state, reason.to_string(), *at);
            }
            AppEvent::ProxyConnected {
                proxy_type, relay, ..
            } if !self.left => self.proxy = Some((*proxy_type, *relay)),
            AppEvent::MediaPathChanged(path) if !self.left => self.media_path = Some(*path),
            AppEvent::SignallingSent { seq, at } => {
                self.signalling_sent += 1;
                self.timed_send(*seq, *at);
            }
            AppEvent::MediaSent { .. } => self.media_sent += 1,
            AppEvent::Acked { seq, sent, at } => {
                if !sent {
                    self.signalling_bad_acks += 1;
                }
                self.signalling_acked.insert(*seq);
                if let Some(sent_at) = self.sent_at.remove(seq) {
                    self.rtt_us.push(micros(at.saturating_sub(sent_at)));
                }
            }
            AppEvent::SignallingBroken { .. } => self.signalling_bad_acks += 1,
            AppEvent::MediaReceived {
                header,
                at,
                sent_us,
            } => {
                let stream = self.media_from.entry(header.uid).or_default();
                let fresh = header.intact && !stream.seen.contains(&header.seq);
                stream.record(header.seq, header.intact);
                if let (true, Some(sent_us)) = (fresh, sent_us) {
                    let arrived_us = i64::try_from(at.as_micros()).unwrap_or(i64::MAX);
                    let sent_us = i64::try_from(*sent_us).unwrap_or(i64::MAX);
                    let estimate = stream.record_transit(arrived_us.saturating_sub(sent_us));
                    self.jitter_us.push(estimate);
                }
                self.media_window = Some(self.media_window.map_or((*at, *at), |(a, _)| (a, *at)));
                *self.media_per_second.entry(at.as_secs()).or_default() += 1;
            }
            AppEvent::StateChanged { .. }
            | AppEvent::ProxyConnected { .. }
            | AppEvent::MediaPathChanged(_) => {}
        }
    }

    /// Remembers when message `seq` was sent, forgetting the oldest beyond the bound.
    fn timed_send(&mut self, seq: u64, at: Duration) {
        if self.sent_at.len() >= MAX_TIMED_SIGNALS {
            self.sent_at.pop_first();
        }
        self.sent_at.insert(seq, at);
    }

    fn state_changed(&mut self, state: ConnectionState, reason: String, at: Duration) {
        if state != ConnectionState::Connected {
            // What is in flight now is re-sent on the next connection: unmeasured.
            self.sent_at.clear();
        }
        if self.state == Some(ConnectionState::Connected) && state == ConnectionState::Reconnecting
        {
            self.reconnects += 1;
            self.outages.push((at, None));
        }
        if state == ConnectionState::Connected {
            if let Some(last) = self.outages.last_mut() {
                last.1.get_or_insert(at);
            }
            if self.join_time.is_none() {
                let joined = self.first_join_at.unwrap_or_default();
                self.join_time = Some(at.saturating_sub(joined));
            }
        }
        self.state = Some(state);
        self.last_reason = reason;
    }
}

/// `d` in whole microseconds, saturating.
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}
