//! The output queue every part of the client writes to, the connection id allocator, the
//! counters, and a helper to cut framed messages out of TCP data.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::wire::{DecodeError, FrameReader, Message};

use super::types::{ClientEvent, ClientOutput, ClientStats, ConnId};

/// How many distinct "what was tried" entries the give-up text keeps.
const MAX_TRIED: usize = 12;
/// How many losers of races (connections, UDP sources) are remembered, to count their late
/// answers.
const MAX_LOSERS: usize = 64;

/// Outputs waiting for [`ProxyClient::poll_output`](super::ProxyClient::poll_output), and the
/// bookkeeping shared by the client's parts.
#[derive(Debug, Default)]
pub(super) struct Io {
    out: VecDeque<ClientOutput>,
    /// The id of the last connection opened (ids start at 1).
    last_conn: u64,
    /// The counters.
    pub(super) stats: ClientStats,
    /// What the current run of attempts contacted, for the give-up text (bounded).
    pub(super) tried: Vec<String>,
    /// Connections closed as losers of a race, latest last (bounded).
    cancelled: VecDeque<ConnId>,
    /// UDP sources of the last won access-point round (bounded).
    loser_sources: Vec<SocketAddr>,
}

impl Io {
    /// Asks the driver to resolve a name.
    pub(super) fn resolve(&mut self, name: String) {
        self.out.push_back(ClientOutput::Resolve { name });
    }

    /// Opens a TCP connection with a fresh id.
    pub(super) fn connect(&mut self, to: SocketAddr) -> ConnId {
        self.last_conn = self.last_conn.saturating_add(1);
        let conn = ConnId(self.last_conn);
        self.out.push_back(ClientOutput::TcpConnect { conn, to });
        conn
    }

    /// Writes bytes on a connection (nothing for an empty write).
    pub(super) fn send(&mut self, conn: ConnId, data: Vec<u8>) {
        if !data.is_empty() {
            self.out.push_back(ClientOutput::TcpSend { conn, data });
        }
    }

    /// Writes one message, framed, on a connection. Messages the client builds always encode;
    /// one that does not is dropped rather than sent half-written.
    pub(super) fn send_message(&mut self, conn: ConnId, msg: &Message) {
        if let Ok(data) = msg.to_bytes() {
            self.send(conn, data);
        }
    }

    /// Closes a connection.
    pub(super) fn close(&mut self, conn: ConnId) {
        self.out.push_back(ClientOutput::TcpClose { conn });
    }

    /// Closes a connection that lost a race, remembering it to count its late answers.
    pub(super) fn cancel(&mut self, conn: ConnId) {
        self.close(conn);
        self.stats.race_attempts_cancelled = self.stats.race_attempts_cancelled.saturating_add(1);
        if self.cancelled.len() == MAX_LOSERS {
            self.cancelled.pop_front();
        }
        self.cancelled.push_back(conn);
    }

    /// A new access-point round: its candidates may answer again.
    pub(super) fn new_race(&mut self) {
        self.loser_sources.clear();
    }

    /// Remembers a UDP source of a won access-point round, to count its late answers.
    pub(super) fn note_loser_source(&mut self, from: SocketAddr) {
        if self.loser_sources.len() < MAX_LOSERS && !self.loser_sources.contains(&from) {
            self.loser_sources.push(from);
        }
    }

    /// Counts an ignored input on `conn`, and a late answer when `conn` lost a race.
    pub(super) fn ignored_tcp(&mut self, conn: ConnId) {
        self.ignored();
        if self.cancelled.contains(&conn) {
            self.stats.race_late_answers = self.stats.race_late_answers.saturating_add(1);
        }
    }

    /// Counts an ignored datagram, and a late answer when it comes from a race's loser.
    pub(super) fn ignored_udp(&mut self, from: SocketAddr) {
        self.ignored();
        if self.loser_sources.contains(&from) {
            self.stats.race_late_answers = self.stats.race_late_answers.saturating_add(1);
        }
    }
    /// Sends a datagram.
    pub(super) fn udp(&mut self, to: SocketAddr, data: Vec<u8>) {
        self.out.push_back(ClientOutput::UdpSend { to, data });
    }

    /// Sends one message as a datagram.
    pub(super) fn udp_message(&mut self, to: SocketAddr, msg: &Message) {
        if let Ok(data) = msg.to_bytes() {
            self.udp(to, data);
        }
    }

    /// Tells the application something.
    pub(super) fn event(&mut self, event: ClientEvent) {
        self.out.push_back(ClientOutput::Event(event));
    }

    /// The next output, in order.
    pub(super) fn pop(&mut self) -> Option<ClientOutput> {
        self.out.pop_front()
    }

    /// Records that `what` was tried in the current run of attempts.
    pub(super) fn note_tried(&mut self, what: String) {
        if self.tried.len() < MAX_TRIED && !self.tried.contains(&what) {
            self.tried.push(what);
        }
    }

    /// Counts an input that was ignored.
    pub(super) fn ignored(&mut self) {
        self.stats.ignored_inputs = self.stats.ignored_inputs.saturating_add(1);
    }

    /// Delivers a media datagram to the application.
    pub(super) fn deliver_media(&mut self, from: SocketAddr, payload: Vec<u8>) {
        self.stats.media_received = self.stats.media_received.saturating_add(1);
        self.stats.media_received_bytes = self
            .stats
            .media_received_bytes
            .saturating_add(payload.len() as u64);
        self.event(ClientEvent::MediaReceived { from, payload });
    }

    /// Counts one media datagram handed to the driver.
    pub(super) fn media_sent(&mut self, payload_len: usize) {
        self.stats.media_sent = self.stats.media_sent.saturating_add(1);
        self.stats.media_sent_bytes = self
            .stats
            .media_sent_bytes
            .saturating_add(payload_len as u64);
    }

    /// Counts one media datagram dropped.
    pub(super) fn media_dropped(&mut self) {
        self.stats.media_dropped = self.stats.media_dropped.saturating_add(1);
    }
}

/// Pushes `data` into `reader` and pops messages into `out`, stopping after the first message
/// for which `stop` holds. `data` is left pointing at the bytes not pushed yet (only ever
/// non-empty after a stop). On a decode error, `out` holds the messages before it.
pub(super) fn read_frames(
    reader: &mut FrameReader,
    data: &mut &[u8],
    stop: impl Fn(&Message) -> bool,
    out: &mut Vec<Message>,
) -> Result<(), DecodeError> {
    loop {
        let taken = reader.push(data);
        *data = data.get(taken..).unwrap_or_default();
        let mut popped = false;
        while let Some(msg) = reader.pop()? {
            let done = stop(&msg);
            out.push(msg);
            popped = true;
            if done {
                return Ok(());
            }
        }
        // A full reader always pops, so no progress means no data left.
        if data.is_empty() || (taken == 0 && !popped) {
            return Ok(());
        }
    }
}
