//! The client's inputs, outputs, events and counters.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::http_connect::HttpConnectError;
use crate::socks5::Socks5Error;
use crate::wire::ErrorCode;

/// The client-assigned id of one outgoing TCP connection.
///
/// Ids are never reused by one [`ProxyClient`](super::ProxyClient): an input naming an id the
/// client has closed or forgotten is stale, and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Something that happened, for [`ProxyClient::handle_input`](super::ProxyClient::handle_input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientInput<'a> {
    /// The answer to [`ClientOutput::Resolve`]; an empty list means NXDOMAIN or refused.
    Resolved {
        /// The name that was asked for.
        name: &'a str,
        /// Its addresses, in the resolver's order.
        addrs: &'a [IpAddr],
    },
    /// The resolver failed (timed out, server failure).
    ResolveFailed {
        /// The name that was asked for.
        name: &'a str,
        /// Why, for the humans reading the reason text.
        reason: &'a str,
    },
    /// A [`ClientOutput::TcpConnect`] succeeded.
    TcpConnected {
        /// The connection.
        conn: ConnId,
    },
    /// A [`ClientOutput::TcpConnect`] failed: refused, unreachable, or timed out by the driver.
    TcpFailed {
        /// The connection.
        conn: ConnId,
        /// Why, for the humans reading the reason text.
        reason: &'a str,
    },
    /// **Beyond the seed**: a [`ClientOutput::TcpConnect`] to a TLS port (443) connected but
    /// its TLS handshake failed (the driver's TLS layer refused the server's certificate or
    /// ALPN, or the handshake broke). Handled as [`ClientInput::TcpFailed`]; the reason is
    /// kept, and an attempt that then ends with no access point or relay answering is
    /// reported as [`StateReason::TlsFailed`] with it.
    TlsFailed {
        /// The connection.
        conn: ConnId,
        /// Why, naming the server and the TLS reason (`TLS to 127.93.1.1:443 (verifying
        /// ap-proxy.agora.io): invalid peer certificate: UnknownIssuer`).
        reason: &'a str,
    },
    /// Bytes received on a connection, in order.
    TcpData {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: &'a [u8],
    },
    /// The peer closed or reset a connection. The client forgets it.
    TcpClosed {
        /// The connection.
        conn: ConnId,
    },
    /// A datagram received on the client's one UDP socket.
    UdpData {
        /// Its source.
        from: SocketAddr,
        /// Its bytes.
        data: &'a [u8],
    },
    /// The application: bytes for SD-RTN's signalling stream.
    SendSignalling {
        /// The bytes, sent in order after every earlier call's.
        data: &'a [u8],
    },
    /// The application: one media datagram for SD-RTN (1..=1500 bytes).
    SendMedia {
        /// The datagram.
        payload: &'a [u8],
    },
    /// The application: leave the channel and tear everything down.
    Leave,
    /// **Beyond the seed**: the driver saw the local network change (see [`NetworkChange`]).
    NetworkChanged {
        /// What changed.
        change: NetworkChange,
    },
}

/// A change of the local network, for [`ClientInput::NetworkChanged`] (**beyond the seed**).
#[cfg_attr(feature = "serde-events", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkChange {
    /// The UDP socket's local port changed, the address did not (the driver re-bound the
    /// socket, or saw a NAT rebinding). The relay keeps the session and follows the new port
    /// (docs/protocol.md §2.3); the client sends a keepalive at once so that it learns the new
    /// address without waiting for the next interval.
    PortChanged,
    /// The local IP address changed (Wi-Fi to cellular, a VPN came up, DHCP renewed to a new
    /// address). Every connection and the ticket are bound to the old address: the client
    /// closes everything and reconnects at once with a new ticket (automatic mode starts from
    /// the direct attempt again).
    AddressChanged,
}

/// Something for the driver to do, from [`ProxyClient::poll_output`](super::ProxyClient::poll_output).
#[must_use = "every output is an action the driver must carry out"]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// Resolve a DNS name; answer with [`ClientInput::Resolved`] or
    /// [`ClientInput::ResolveFailed`].
    Resolve {
        /// The name.
        name: String,
    },
    /// Open a TCP connection; answer with [`ClientInput::TcpConnected`] or
    /// [`ClientInput::TcpFailed`].
    TcpConnect {
        /// The id the client gives the connection.
        conn: ConnId,
        /// Where to.
        to: SocketAddr,
    },
    /// Write bytes on a connection, after every earlier write on it.
    TcpSend {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Close a connection (after writing what was queued on it). The client will ignore
    /// anything the driver still reports about it.
    TcpClose {
        /// The connection.
        conn: ConnId,
    },
    /// Send a datagram from the client's UDP socket.
    UdpSend {
        /// Its destination.
        to: SocketAddr,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// Something for the application.
    Event(ClientEvent),
}

/// What the application hears about, in the order it happened.
///
/// `ConnectionStateChanged` is emitted only when the state really changes, with one exception
/// (Agora's `onConnectionStateChanged(CONNECTING, SETTING_PROXY_SERVER)`): in automatic mode,
/// the fallback from the direct attempt to the cloud proxy is reported as a change to the
/// state the client is already in, with the reason [`StateReason::FallbackToProxy`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The connection state changed (emitted only when the state really changes).
    ConnectionStateChanged {
        /// The new state.
        state: ConnectionState,
        /// Why.
        reason: StateReason,
    },
    /// The path to SD-RTN through a proxy is up.
    ProxyConnected {
        /// 0 (SOCKS5), 1 (cloud proxy by domain), 2 (cloud proxy by IP list) or 3 (HTTP
        /// proxy); in automatic mode, the type of the cloud proxy it fell back to.
        proxy_type: u8,
        /// The relay in use (for SOCKS5 and HTTP proxies: the proxy).
        relay: SocketAddr,
        /// Time since [`ProxyClient::new`](super::ProxyClient::new).
        elapsed: Duration,
    },
    /// The confirmed media path changed.
    MediaPathChanged(MediaPath),
    /// Bytes of SD-RTN's signalling stream, in order.
    SignallingReceived(Vec<u8>),
    /// One media datagram from SD-RTN.
    MediaReceived {
        /// Its SD-RTN source. Media that came over a TCP framing path (which carries no
        /// source) is reported as coming from the edge's `media_udp` address.
        from: SocketAddr,
        /// The datagram.
        payload: Vec<u8>,
    },
}

/// The connection state, numbered as the SDK family numbers it.
#[cfg_attr(feature = "serde-events", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectionState {
    /// 1: not connected, not trying (before joining, after leaving).
    Disconnected = 1,
    /// 2: the first connection attempt is under way.
    Connecting = 2,
    /// 3: signalling reaches SD-RTN.
    Connected = 3,
    /// 4: an attempt failed or the connection was lost; retrying with backoff.
    Reconnecting = 4,
    /// 5: gave up (or the configuration cannot work); only `Leave` does anything now.
    Failed = 5,
}

impl ConnectionState {
    /// The SDK's integer for this state.
    pub const fn as_i32(self) -> i32 {
        self as i32
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Failed => "failed",
        })
    }
}

/// Why the connection state changed. [`fmt::Display`] gives the human text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateReason {
    /// The client started its first attempt.
    Joining,
    /// The connection is up.
    Joined,
    /// Resolving the access point's name failed (the text says how).
    DnsFailed(String),
    /// No access point answered at any address and port.
    ApUnreachable,
    /// The access point answered with an error.
    ApRefused(ErrorCode),
    /// No relay of the access point's answer accepted a TCP connection.
    RelayUnreachable,
    /// A relay refused the tunnel.
    TunnelRefused(ErrorCode),
    /// The relay (or the SOCKS5 server) was lost: connection closed, an error or close from the
    /// relay, or keepalives unanswered.
    RelayLost,
    /// A server broke the protocol (the text says how).
    ProtocolViolation(String),
    /// The SOCKS5 server could not be reached.
    ProxyUnreachable,
    /// The SOCKS5 handshake failed.
    Socks5Refused(Socks5Error),
    /// Proxy off: the SD-RTN edge could not be reached.
    DirectUnreachable,
    /// Proxy off: the connection to the SD-RTN edge was lost.
    ConnectionLost,
    /// The configuration cannot work (the text says why).
    InvalidConfig(String),
    /// The retry bound was reached; the text says what was tried.
    GaveUp(String),
    /// The application left.
    Left,
    /// **Beyond the seed**: the HTTP proxy (type 3) refused or failed the `CONNECT` tunnel.
    /// Fatal when retrying cannot help: authentication required, rejected or unsupported, a
    /// refusal other than 502, 503 and 504, an answer that is not HTTP/1.x, an invalid
    /// target or invalid credentials.
    HttpProxyFailed(HttpConnectError),
    /// **Beyond the seed** (automatic mode; the Web SDK's `join-fallback-to-proxy`, Agora's
    /// `SETTING_PROXY_SERVER`): no direct connection to SD-RTN within the probe time, so the
    /// client falls back to the cloud proxy.
    FallbackToProxy {
        /// How long the direct attempt ran: the probe time, or less when it was refused at once.
        after: Duration,
        /// Why the direct attempt failed.
        cause: Box<StateReason>,
    },
    /// **Beyond the seed**: the local address changed ([`NetworkChange::AddressChanged`]): the
    /// connection and the ticket were bound to the old one.
    NetworkChanged,
    /// **Beyond the seed** (TLS on 443): no access point or relay answered, and the last
    /// connection that reached one failed its TLS handshake ([`ClientInput::TlsFailed`]); the
    /// text is the driver's (server, name verified, TLS reason, at most
    /// [`MAX_TLS_REASON_BYTES`] bytes). Not fatal: another address, or a later try, may present
    /// a certificate the client trusts.
    TlsFailed(String),
}

/// Longest reason text a [`StateReason::TlsFailed`] keeps from its input (longer texts are cut
/// at a character boundary).
pub const MAX_TLS_REASON_BYTES: usize = 512;

/// `text`, cut to at most [`MAX_TLS_REASON_BYTES`] bytes at a character boundary.
pub(super) fn bounded_reason(text: &str) -> String {
    let mut end = text.len().min(MAX_TLS_REASON_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_owned()
}

impl StateReason {
    /// Whether retrying cannot help: the client goes straight to `Failed`.
    pub(super) fn is_fatal(&self) -> bool {
        match self {
            StateReason::HttpProxyFailed(error) => http_error_is_fatal(error),
            other => matches!(
                other,
                StateReason::ApRefused(ErrorCode::UnknownApp)
                    | StateReason::InvalidConfig(_)
                    | StateReason::Socks5Refused(
                        Socks5Error::NoAcceptableMethod
                            | Socks5Error::AuthRejected { .. }
                            | Socks5Error::UnexpectedMethod(_)
                    )
            ),
        }
    }
}

/// Whether an HTTP proxy's failure is final (see [`StateReason::HttpProxyFailed`]).
fn http_error_is_fatal(error: &HttpConnectError) -> bool {
    match error {
        HttpConnectError::Refused { status, .. } => !matches!(status, 502..=504),
        HttpConnectError::AuthRequired { .. }
        | HttpConnectError::AuthRejected { .. }
        | HttpConnectError::AuthUnsupported { .. }
        | HttpConnectError::NotHttp { .. }
        | HttpConnectError::UnsupportedVersion { .. }
        | HttpConnectError::InvalidTarget { .. }
        | HttpConnectError::InvalidCredentials { .. } => true,
        _ => false,
    }
}

impl fmt::Display for StateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateReason::Joining => f.write_str("joining"),
            StateReason::Joined => f.write_str("joined"),
            StateReason::DnsFailed(detail) => write!(f, "DNS failed: {detail}"),
            StateReason::ApUnreachable => f.write_str("no access point answered"),
            StateReason::ApRefused(code) => write!(f, "access point refused: {code}"),
            StateReason::RelayUnreachable => f.write_str("no relay could be reached"),
            StateReason::TunnelRefused(code) => write!(f, "relay refused the tunnel: {code}"),
            StateReason::RelayLost => f.write_str("relay lost"),
            StateReason::ProtocolViolation(detail) => write!(f, "protocol violation: {detail}"),
            StateReason::ProxyUnreachable => f.write_str("SOCKS5 server unreachable"),
            StateReason::Socks5Refused(err) => write!(f, "SOCKS5 refused: {err}"),
            StateReason::DirectUnreachable => f.write_str("SD-RTN edge unreachable"),
            StateReason::ConnectionLost => f.write_str("connection to SD-RTN lost"),
            StateReason::InvalidConfig(detail) => write!(f, "invalid configuration: {detail}"),
            StateReason::GaveUp(detail) => write!(f, "gave up: {detail}"),
            StateReason::Left => f.write_str("left"),
            StateReason::HttpProxyFailed(err) => write!(f, "HTTP proxy: {err}"),
            StateReason::FallbackToProxy { after, cause } => write!(
                f,
                "no direct connection to SD-RTN after {} ms ({cause}): falling back to the cloud proxy",
                after.as_millis()
            ),
            StateReason::NetworkChanged => f.write_str(
                "the local address changed: reconnecting with a new ticket",
            ),
            StateReason::TlsFailed(detail) => write!(f, "TLS handshake failed: {detail}"),
        }
    }
}

/// How media travels now (the confirmed path).
#[cfg_attr(feature = "serde-events", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MediaPath {
    /// No confirmed path: not connected, still probing, or opening a TCP path.
    #[default]
    None,
    /// UDP datagrams (through the relay, the SOCKS5 UDP relay, or straight to the edge).
    Udp,
    /// Framed over a TCP connection.
    Tcp,
}

/// Counters of one client, from [`ProxyClient::stats`](super::ProxyClient::stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Time from [`ProxyClient::new`](super::ProxyClient::new) to the first connection.
    pub join_time: Option<Duration>,
    /// How many times the state became `Connected`.
    pub connections: u32,
    /// How many times it became `Connected` again after losing or failing a connection.
    pub reconnects: u32,
    /// Attempts started after a failure (each follows a backoff delay).
    pub reconnect_attempts: u32,
    /// Access-point rounds started.
    pub ap_queries: u32,
    /// Media datagrams handed to the driver.
    pub media_sent: u64,
    /// Their payload bytes.
    pub media_sent_bytes: u64,
    /// Media datagrams delivered to the application.
    pub media_received: u64,
    /// Their payload bytes.
    pub media_received_bytes: u64,
    /// Application media dropped: no path (not connected, path opening), empty or above 1500
    /// bytes.
    pub media_dropped: u64,
    /// Signalling bytes handed to the driver.
    pub signalling_sent_bytes: u64,
    /// Signalling bytes delivered to the application.
    pub signalling_received_bytes: u64,
    /// Application signalling bytes dropped because the queue before connection was full.
    pub signalling_dropped_bytes: u64,
    /// Inputs ignored: stale connection ids, unexpected or invalid datagrams.
    pub ignored_inputs: u64,
    /// Racing (beyond the seed): attempts still in flight closed because another attempt of
    /// the same race won (access points and relays).
    pub race_attempts_cancelled: u64,
    /// Racing: inputs from the losers of a race after it was won (late answers, bytes on their
    /// closed connections), ignored (and counted in `ignored_inputs` too).
    pub race_late_answers: u64,
    /// Automatic mode (beyond the seed): fallbacks from the direct attempt to the cloud proxy.
    pub fallbacks_to_proxy: u32,
    /// Network changes reported with [`ClientInput::NetworkChanged`] and acted upon.
    pub network_changes: u32,
    /// Mid-call fallbacks from UDP to TCP media on the same relay session (beyond the seed,
    /// [`ClientConfig::udp_loss_fallback`](super::ClientConfig::udp_loss_fallback)).
    pub udp_loss_fallbacks: u32,
}
