//! Keepalives on the cloud route: their clock, their misses, and what silence means.
//!
//! Silence on the path in use for `keepalive_misses` intervals means the relay is dead (the
//! session ends and the client reconnects). **Beyond the seed**, with
//! [`ClientConfig::udp_loss_fallback`]: the first missed keepalive on UDP re-probes UDP
//! (keepalives every third of `udp_probe_timeout`) and, when nothing answers within
//! `udp_probe_timeout`, media moves to a TCP media channel on the same session (a VPN or a new
//! firewall rule that blocks UDP mid-call). UDP blocked at `b`: the next keepalive goes out by
//! `b + I` and is missed at `b + 2I` (`I` the keepalive interval), so media is on TCP by
//! `b + 2I + udp_probe_timeout` plus one connection and one round trip to the relay.

use std::net::SocketAddr;

use crate::time::Instant;
use crate::wire::Message;

use super::super::config::ClientConfig;
use super::super::io::Io;
use super::super::media_wire::MediaRoute;
use super::super::types::{ConnId, StateReason};
use super::{Media, MediaState, MediaStep};

impl Media {
    /// The relay answered.
    pub(super) fn heard(&mut self) {
        if let Some(k) = &mut self.keepalive {
            k.heard = true;
            k.misses = 0;
        }
    }

    /// The regular keepalive (cloud): count a miss if the relay was silent since the last one,
    /// declare it dead after `keepalive_misses`, send the next.
    pub(super) fn keepalive_tick(
        &mut self,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> MediaStep {
        let Some(k) = &mut self.keepalive else {
            return MediaStep::Ok;
        };
        if k.next_at > now {
            return MediaStep::Ok;
        }
        k.next_at = now + k.interval;
        let (udp, tcp) = match &self.state {
            MediaState::Udp { to, .. } => (Some(*to), None),
            MediaState::Tcp { conn, .. } => (None, Some(*conn)),
            // Probing and opening have their own clocks.
            _ => {
                k.heard = true;
                k.misses = 0;
                return MediaStep::Ok;
            }
        };
        if !k.heard {
            k.misses = k.misses.saturating_add(1);
            if let (Some(to), true) = (udp, config.udp_loss_fallback) {
                self.reprobe_udp(to, config, io, now);
                return MediaStep::Ok;
            }
            if k.misses >= config.keepalive_misses.max(1) {
                return MediaStep::Lost(StateReason::RelayLost);
            }
        }
        k.heard = false;
        self.send_keepalive(udp, tcp, io);
        MediaStep::Ok
    }

    /// UDP went silent mid-call (beyond the seed): probe it again; when the probe times out,
    /// media falls back to TCP on the same session. The confirmed path stays UDP meanwhile.
    fn reprobe_udp(&mut self, to: SocketAddr, config: &ClientConfig, io: &mut Io, now: Instant) {
        let MediaState::Udp { control, .. } = self.state else {
            return;
        };
        let probe = ClientConfig::timer(config.udp_probe_timeout);
        let deadline = now + probe;
        let next = now + ClientConfig::timer(probe / 3);
        self.state = MediaState::UdpProbing {
            to,
            control,
            deadline: Some(deadline),
            next_probe: (next < deadline).then_some(next),
        };
        self.reprobing = true;
        self.send_keepalive(Some(to), None, io);
    }

    /// The local UDP port changed (a NAT rebinding the driver saw, a re-bound socket): on UDP
    /// to the relay, a keepalive goes out at once so that the relay follows the new address.
    pub(in super::super) fn port_changed(&mut self, io: &mut Io) -> bool {
        match self.state {
            MediaState::Udp { to, .. } | MediaState::UdpProbing { to, .. }
                if matches!(self.route, MediaRoute::Cloud { .. }) =>
            {
                self.send_keepalive(Some(to), None, io);
                true
            }
            _ => false,
        }
    }

    /// Sends a keepalive over UDP to `udp` or on the connection `tcp` (cloud only).
    pub(super) fn send_keepalive(
        &mut self,
        udp: Option<SocketAddr>,
        tcp: Option<ConnId>,
        io: &mut Io,
    ) {
        let (MediaRoute::Cloud { session_id, .. }, Some(k)) = (&self.route, &mut self.keepalive)
        else {
            return;
        };
        k.seq = k.seq.wrapping_add(1);
        let msg = Message::Keepalive {
            session_id: *session_id,
            seq: k.seq,
        };
        if let Some(to) = udp {
            io.udp_message(to, &msg);
        }
        if let Some(conn) = tcp {
            io.send_message(conn, &msg);
        }
    }
}
