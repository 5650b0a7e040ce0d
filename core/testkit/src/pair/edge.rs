//! The pair world's SD-RTN edge, in one of two modes: an echo (for tests that drive a bare
//! proxy client and check their own bytes come back), or a channel (for applications: every
//! signalling message acknowledged, media forwarded to the other senders).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cloudproxy_core::app::{read_media, LineReader, Signal};
use cloudproxy_core::sdrtn::{encode_media_frame, MediaFrameReader};

use super::net::{End, EndEvent};
use super::World;

/// How the pair world's edge answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EdgeMode {
    /// Signalling bytes and media datagrams go back to where they came from, unchanged.
    #[default]
    Echo,
    /// The edge of the simulated application (`cloudproxy_core::app`): each signalling line
    /// (`Join`, `Msg`) is acknowledged with `Ack { seq }` on its connection; each intact media
    /// packet makes its source the sender's sink (UDP address or TCP media connection, latest
    /// wins) and goes to every other sender's sink. One channel: everyone hears everyone.
    Channel,
}

/// Where a sender's media goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    Udp(SocketAddr),
    Tcp(u64),
}

/// One accepted edge connection.
#[derive(Debug, Default)]
struct EdgeConn {
    /// Set on the media port: the framing of datagrams.
    media: Option<MediaFrameReader>,
    /// Signalling lines (channel mode).
    lines: LineReader,
}

/// What the edge holds.
#[derive(Debug, Default)]
pub(super) struct EdgeState {
    conns: BTreeMap<u64, EdgeConn>,
    /// Channel mode: each sender's sink, by uid.
    sinks: BTreeMap<u32, Sink>,
}

impl World {
    pub(super) fn edge_accept(&mut self, id: u64, media: bool) {
        let media = media.then(MediaFrameReader::default);
        let conn = EdgeConn {
            media,
            ..EdgeConn::default()
        };
        self.edge_state.conns.insert(id, conn);
    }

    pub(super) fn edge_tcp(&mut self, id: u64, event: EndEvent) {
        let end = End::Edge(id);
        let EndEvent::Data(data) = event else {
            if matches!(event, EndEvent::Closed) {
                self.edge_state.conns.remove(&id);
            }
            return;
        };
        let Some(conn) = self.edge_state.conns.get_mut(&id) else {
            return;
        };
        let Some(reader) = conn.media.as_mut() else {
            self.edge_signalling_bytes += data.len();
            match self.edge_mode {
                EdgeMode::Echo => self.tcp_send(end, data),
                EdgeMode::Channel => {
                    let signals = conn.lines.push(&data).unwrap_or_default();
                    let acks: Vec<u8> = signals
                        .iter()
                        .filter(|s| !matches!(s, Signal::Ack { .. }))
                        .flat_map(|s| Signal::Ack { seq: s.seq() }.to_line())
                        .collect();
                    if !acks.is_empty() {
                        self.tcp_send(end, acks);
                    }
                }
            }
            return;
        };
        reader.push(&data);
        let mut datagrams = Vec::new();
        while let Ok(Some(datagram)) = reader.pop() {
            datagrams.push(datagram);
        }
        self.edge_media_packets += datagrams.len();
        for datagram in datagrams {
            match self.edge_mode {
                EdgeMode::Echo => self.edge_to(Sink::Tcp(id), &datagram),
                EdgeMode::Channel => self.edge_forward(Sink::Tcp(id), &datagram),
            }
        }
    }

    pub(super) fn edge_udp(&mut self, from: SocketAddr, data: Vec<u8>) {
        self.edge_media_packets += 1;
        match self.edge_mode {
            EdgeMode::Echo => self.edge_to(Sink::Udp(from), &data),
            EdgeMode::Channel => self.edge_forward(Sink::Udp(from), &data),
        }
    }

    /// Channel mode: records the sender's sink and sends the packet to every other sender.
    fn edge_forward(&mut self, from: Sink, packet: &[u8]) {
        let Some(header) = read_media(packet).filter(|h| h.intact) else {
            return;
        };
        self.edge_state.sinks.insert(header.uid, from);
        let others: Vec<Sink> = self
            .edge_state
            .sinks
            .iter()
            .filter(|(uid, _)| **uid != header.uid)
            .map(|(_, sink)| *sink)
            .collect();
        for sink in others {
            self.edge_to(sink, packet);
        }
    }

    fn edge_to(&mut self, sink: Sink, packet: &[u8]) {
        match sink {
            Sink::Udp(to) => self.udp_send(self.edge.media_udp, to, packet.to_vec()),
            Sink::Tcp(id) => {
                let mut frame = Vec::new();
                if encode_media_frame(packet, &mut frame).is_ok() {
                    self.tcp_send(End::Edge(id), frame);
                }
            }
        }
    }
}
