//! The application's configuration, inputs, outputs and events.

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::ConnectionState;
use crate::client::{ClientConfig, ClientInput, ClientOutput, MediaPath, StateReason};
use crate::engine::CloudProxyType;
use crate::params::ProxyConfig;
use crate::socks5::Credentials;

use super::wire::{LineError, MediaHeader};

/// One step of an application's script: a call of the SDK's API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `setParameters(text)`.
    Set(String),
    /// `joinChannel`.
    Join,
    /// `leaveChannel`.
    Leave,
    /// `setCloudProxy(type)` (**beyond the seed**, Agora 4.x): see
    /// [`Engine::set_cloud_proxy`](crate::engine::Engine::set_cloud_proxy).
    SetCloudProxy(CloudProxyType),
}

/// What an application does, when: its script, its traffic, and the proxy client's tweaks.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Its name, in the trace, the report and the messages it sends.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// The channel it joins.
    pub channel: String,
    /// The application id it presents to the access point.
    pub app_id: String,
    /// Read setParameters in compatibility mode.
    pub compat: bool,
    /// The script: (time since start, op), in order.
    pub script: Vec<(Duration, Op)>,
    /// Media packets per second once the channel has acknowledged a join.
    pub media_pps: u32,
    /// A signalling message every this long once connected.
    pub signalling_every: Duration,
    /// The seed of its randomness (payload sizes, the proxy client's backoff jitter).
    pub seed: u64,
    /// The proxy client's configuration tweaks (timeouts), applied over the defaults.
    pub tune: fn(&mut ClientConfig),
    /// Stop sending media and signalling this long after the start (a quiet period before
    /// leaving, so that everything sent can be delivered and acknowledged).
    pub talk_until: Option<Duration>,
    /// Username and password for a SOCKS5 server that asks for them (RFC 1929).
    pub socks5_credentials: Option<Credentials>,
}

impl AppConfig {
    /// An application that runs `params` then joins at `start`, sending 50 media packets/s
    /// and a signalling message every second.
    pub fn new(name: &str, uid: u32, channel: &str, params: &[&str], start: Duration) -> Self {
        let mut script: Vec<(Duration, Op)> = params
            .iter()
            .map(|p| (start, Op::Set((*p).to_owned())))
            .collect();
        script.push((start, Op::Join));
        AppConfig {
            name: name.to_owned(),
            uid,
            channel: channel.to_owned(),
            app_id: "cloudproxy-sim".to_owned(),
            compat: false,
            script,
            media_pps: 50,
            signalling_every: Duration::from_secs(1),
            seed: u64::from(uid),
            tune: |_| {},
            talk_until: None,
            socks5_credentials: None,
        }
    }
}

/// Why [`App::handle_input`](super::App::handle_input) refused an input (and changed nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppInputError {
    /// The input is one of the application's own commands to its proxy client
    /// (`SendSignalling`, `SendMedia` or `Leave`): the machine gives those itself, from its
    /// script and its ticks; a driver only reports what the network did.
    #[error("ClientInput::{0} is the application's own command to its proxy client, not news from the network")]
    Command(&'static str),
}

impl AppInputError {
    /// `Err` for the application's own commands, `Ok` for news from the network.
    pub(super) fn check(input: &ClientInput<'_>) -> Result<(), AppInputError> {
        match input {
            ClientInput::SendSignalling { .. } => Err(AppInputError::Command("SendSignalling")),
            ClientInput::SendMedia { .. } => Err(AppInputError::Command("SendMedia")),
            ClientInput::Leave => Err(AppInputError::Command("Leave")),
            _ => Ok(()),
        }
    }
}

/// Something for the driver to do, from [`App::poll_output`](super::App::poll_output).
#[must_use = "every output is an action the driver must carry out"]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppOutput {
    /// Network work of the proxy client, passed on in its order and meaning exactly what its
    /// drain contract says. Never a [`ClientOutput::Event`]: the application takes those and
    /// says what they meant to it as [`AppOutput::Event`]s.
    Net(ClientOutput),
    /// Something happened, for the trace and the report
    /// ([`ClientReport::record`](super::ClientReport::record)).
    Event(AppEvent),
}

impl AppOutput {
    /// The network output, or the event.
    pub fn into_client(self) -> Result<ClientOutput, AppEvent> {
        match self {
            AppOutput::Net(output) => Ok(output),
            AppOutput::Event(event) => Err(event),
        }
    }
}

/// What the application did and saw, in the order it happened. Times (`at`) are since the
/// application started ([`App::new`](super::App::new)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppEvent {
    /// `setParameters(text)` returned `code` (0, or the engine's error code with its text).
    ParametersSet {
        /// The JSON text.
        text: String,
        /// The SDK's return code.
        code: i32,
        /// The error, when `code` is not 0.
        error: Option<String>,
    },
    /// `setCloudProxy(type)` returned `code` (0, or the engine's error code with its text).
    CloudProxySet {
        /// The type asked for.
        proxy_type: CloudProxyType,
        /// The SDK's return code.
        code: i32,
        /// The error, when `code` is not 0.
        error: Option<String>,
    },
    /// `joinChannel` returned 0: the proxy client starts with this configuration.
    Joined {
        /// The configuration taken into force.
        config: ProxyConfig,
        /// When the script called it.
        at: Duration,
    },
    /// `joinChannel` was refused.
    JoinRefused {
        /// The SDK's return code.
        code: i32,
        /// Why.
        error: String,
    },
    /// `leaveChannel` returned 0. The proxy client's own outputs of leaving follow (closes,
    /// then its state changes), then it is gone.
    Left,
    /// `leaveChannel` was refused.
    LeaveRefused {
        /// The SDK's return code.
        code: i32,
        /// Why.
        error: String,
    },
    /// The proxy client's connection state changed.
    StateChanged {
        /// The new state.
        state: ConnectionState,
        /// Why.
        reason: StateReason,
        /// When.
        at: Duration,
    },
    /// The proxy client reached SD-RTN through a proxy.
    ProxyConnected {
        /// 0 (SOCKS5), 1 (cloud proxy by domain) or 2 (cloud proxy by IP list).
        proxy_type: u8,
        /// The relay (or SOCKS5 server).
        relay: SocketAddr,
        /// Time since the proxy client started.
        elapsed: Duration,
    },
    /// The confirmed media path changed.
    MediaPathChanged(MediaPath),
    /// A signalling message (a join or a message) went to the proxy client.
    SignallingSent {
        /// Its sequence number.
        seq: u64,
        /// When (since the application started).
        at: Duration,
    },
    /// A media packet went to the proxy client.
    MediaSent {
        /// Its sequence number.
        seq: u32,
    },
    /// The edge acknowledged a signalling message.
    Acked {
        /// The acknowledged sequence number.
        seq: u64,
        /// Whether a message with that number was sent (an ack of one never sent is a fault).
        sent: bool,
        /// When (since the application started).
        at: Duration,
    },
    /// The signalling stream broke its framing; the reader starts afresh.
    SignallingBroken {
        /// How.
        error: LineError,
    },
    /// A media packet arrived (one at least a header long).
    MediaReceived {
        /// Its header.
        header: MediaHeader,
        /// When (since the application started).
        at: Duration,
        /// Its send stamp, on the sender's clock ([`media_sent_us`](super::media_sent_us)),
        /// when it carries one.
        sent_us: Option<u64>,
    },
}
