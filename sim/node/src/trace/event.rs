//! What a trace line says: one typed event per line, serialised with serde (the core's event
//! types derive `Serialize` behind its `serde-events` feature). A line is the event's fields
//! beside `t_us`, `node` and `event` (the variant's name, snake case), keys in sorted order.

use std::net::SocketAddr;

use cloudproxy_core::ap::{ApTransport, TcpRefusal};
use cloudproxy_core::client::{ConnectionState, MediaPath, NetworkChange};
use cloudproxy_core::relay::{SessionEnd, Transport};
use serde::Serialize;
use serde_json::Value;

/// One event of a trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    /// The application called `setParameters`; `code` is the SDK's (0: accepted).
    SetParameters {
        /// The call's text, proxy passwords redacted
        /// ([`redact_text`](cloudproxy_core::params::redact_text)).
        text: String,
        /// The SDK's return code.
        code: i32,
        /// Why it was refused.
        error: Option<String>,
    },
    /// The application called `setCloudProxy` (beyond the seed); `code` is the SDK's.
    SetCloudProxy {
        /// The cloud proxy type asked for, as the SDK numbers it.
        #[serde(rename = "type")]
        proxy_type: i32,
        /// The SDK's return code.
        code: i32,
        /// Why it was refused.
        error: Option<String>,
    },
    /// The local network changed (beyond the seed): the driver has a new UDP socket.
    NetworkChange {
        /// What changed.
        change: NetworkChange,
        /// The new socket's port.
        udp_port: u16,
    },
    /// The application joined (`code` 0, with the configuration in force, passwords
    /// redacted) or its join was refused.
    Join {
        /// The SDK's return code.
        code: i32,
        /// The configuration taken at join, passwords redacted.
        #[serde(skip_serializing_if = "Option::is_none")]
        config: Option<Value>,
        /// Why the join was refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The application left (`code` 0) or its leave was refused.
    Leave {
        /// The SDK's return code.
        code: i32,
        /// Why the leave was refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The proxy client's connection state changed.
    State {
        /// The new state.
        state: ConnectionState,
        /// Its SDK number.
        code: i32,
        /// Why, in words.
        reason: String,
    },
    /// The proxy client reached a relay (or SOCKS5 server).
    ProxyConnected {
        /// The SDK's proxy type.
        proxy_type: u8,
        /// The relay or server.
        relay: SocketAddr,
        /// From the join to now.
        elapsed_ms: u64,
    },
    /// The confirmed media path changed.
    MediaPath {
        /// The new path.
        path: MediaPath,
    },
    /// Signalling broke (the app's line reader refused the stream).
    SignallingError {
        /// What was wrong.
        error: String,
    },
    /// A name was resolved (or not).
    Resolve {
        /// The name.
        name: String,
        /// Whether it resolved.
        ok: bool,
    },
    /// The access point read a request.
    ApRequest {
        /// Its sender.
        from: SocketAddr,
        /// How it came.
        transport: ApTransport,
        /// Whether it was answered (a refusal past the rate limit is silence).
        answered: bool,
    },
    /// The access point refused a TCP connection at accept.
    ApTcpRefused {
        /// The peer.
        peer: SocketAddr,
        /// Which cap refused it.
        cause: TcpRefusal,
    },
    /// A relay opened a session.
    SessionOpened {
        /// The session id, 16 hex digits.
        session: String,
        /// The client's address.
        client: SocketAddr,
        /// The SD-RTN destination.
        destination: SocketAddr,
        /// The session's UDP port on the relay.
        udp_port: u16,
    },
    /// A relay closed a session.
    SessionClosed {
        /// The session id, 16 hex digits.
        session: String,
        /// Why.
        reason: SessionEnd,
    },
    /// A relay opened a media channel for a session.
    MediaChannelOpened {
        /// The session id, 16 hex digits.
        session: String,
        /// The channel's peer.
        peer: SocketAddr,
    },
    /// A relay refused a request.
    Refused {
        /// The error code sent (or that would have been).
        code: String,
        /// The peer.
        peer: SocketAddr,
        /// How the request came.
        transport: Transport,
    },
    /// A relay gave up on a connection that did not finish its handshake in time.
    HandshakeTimedOut {
        /// The peer.
        peer: SocketAddr,
    },
    /// The world applied a scheduled fault (or found nothing to apply it to).
    Fault {
        /// The fault, as the schedule writes it.
        fault: String,
        /// Whether it took effect.
        applied: bool,
        /// What it did, or why it did nothing.
        effect: String,
    },
}

/// How loud a real-socket node logs an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// A change an operator wants to see: sessions, states, joins.
    Info,
    /// Everything else.
    Debug,
}

impl TraceEvent {
    /// The event's name, as the `event` key of its line.
    pub fn name(&self) -> &'static str {
        match self {
            TraceEvent::SetParameters { .. } => "set_parameters",
            TraceEvent::SetCloudProxy { .. } => "set_cloud_proxy",
            TraceEvent::NetworkChange { .. } => "network_change",
            TraceEvent::Join { .. } => "join",
            TraceEvent::Leave { .. } => "leave",
            TraceEvent::State { .. } => "state",
            TraceEvent::ProxyConnected { .. } => "proxy_connected",
            TraceEvent::MediaPath { .. } => "media_path",
            TraceEvent::SignallingError { .. } => "signalling_error",
            TraceEvent::Resolve { .. } => "resolve",
            TraceEvent::ApRequest { .. } => "ap_request",
            TraceEvent::ApTcpRefused { .. } => "ap_tcp_refused",
            TraceEvent::SessionOpened { .. } => "session_opened",
            TraceEvent::SessionClosed { .. } => "session_closed",
            TraceEvent::MediaChannelOpened { .. } => "media_channel_opened",
            TraceEvent::Refused { .. } => "refused",
            TraceEvent::HandshakeTimedOut { .. } => "handshake_timed_out",
            TraceEvent::Fault { .. } => "fault",
        }
    }

    /// How loud a real-socket node logs it.
    pub fn level(&self) -> Level {
        match self {
            TraceEvent::SessionOpened { .. }
            | TraceEvent::SessionClosed { .. }
            | TraceEvent::MediaChannelOpened { .. }
            | TraceEvent::State { .. }
            | TraceEvent::ProxyConnected { .. }
            | TraceEvent::MediaPath { .. }
            | TraceEvent::Join { .. }
            | TraceEvent::Leave { .. } => Level::Info,
            _ => Level::Debug,
        }
    }

    /// The event's fields, without its name: a JSON object, keys sorted.
    pub fn fields(&self) -> serde_json::Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => {
                map.remove("event");
                map
            }
            // Every variant is a struct variant of serialisable fields: an object always.
            _ => serde_json::Map::new(),
        }
    }
}

/// A session id as traces write it: 16 hex digits.
pub fn session_hex(session_id: u64) -> String {
    format!("{session_id:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_its_event_and_writes_core_types_by_name() {
        let event = TraceEvent::SessionClosed {
            session: session_hex(0xab),
            reason: SessionEnd::IdleTimeout,
        };
        assert_eq!(event.name(), "session_closed");
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"event": "session_closed", "session": "00000000000000ab", "reason": "IdleTimeout"})
        );
        let request = TraceEvent::ApRequest {
            from: "10.1.0.11:30001".parse().unwrap(),
            transport: ApTransport::Udp,
            answered: true,
        };
        let fields = request.fields();
        assert_eq!(fields["transport"], "udp");
        assert_eq!(fields["from"], "10.1.0.11:30001");
        assert!(!fields.contains_key("event"));
        assert_eq!(request.level(), Level::Debug);
        assert_eq!(event.level(), Level::Info);
    }

    #[test]
    fn every_variant_serialises_to_an_object_tagged_with_its_name() {
        let peer: SocketAddr = "10.1.0.11:30001".parse().unwrap();
        let events = [
            TraceEvent::Leave {
                code: 0,
                error: None,
            },
            TraceEvent::State {
                state: ConnectionState::Connected,
                code: 3,
                reason: "joined".into(),
            },
            TraceEvent::MediaPath {
                path: MediaPath::Tcp,
            },
            TraceEvent::ApTcpRefused {
                peer,
                cause: TcpRefusal::TooManyFromIp,
            },
            TraceEvent::Refused {
                code: "TicketExpired".into(),
                peer,
                transport: Transport::Udp,
            },
            TraceEvent::HandshakeTimedOut { peer },
        ];
        for event in events {
            let value = serde_json::to_value(&event).unwrap();
            assert_eq!(value["event"], event.name(), "{value}");
        }
    }
}
