//! The simulated SDK application, as a sans-IO machine: what a scenario's client does on top
//! of the SDK, so that the simulation's nodes, the pair harness and `cloudproxy call` run the
//! same rules.
//!
//! An [`App`] runs a script of SDK calls ([`Op`]: `setParameters`, `joinChannel`,
//! `leaveChannel`) on an [`Engine`], starts the [`ProxyClient`] each join's configuration asks
//! for, and talks over it as a real-time application does:
//!
//! - **(Re)joining the channel.** Every time the proxy client connects (the first time and
//!   after each reconnect) the application sends the edge a [`Signal::Join`], then every
//!   message the edge has not acknowledged yet, again (the SDK's re-send; at most
//!   [`MAX_UNACKED`] are kept).
//! - **Join gating.** Media starts only once the edge has acknowledged one of the joins sent
//!   since the application last went quiet, so that the channel knows the sender (a join sent
//!   on a tunnel that died at once is never acknowledged; the re-join on the next tunnel is:
//!   the swarm sweep found this, crowd seed 44). After a reconnect, media goes on.
//! - **Ticks.** [`AppConfig::media_pps`] media packets a second, of 200 to 1,200 bytes (sizes
//!   drawn from the seed's [`Entropy`]), and a [`Signal::Msg`] every
//!   [`AppConfig::signalling_every`].
//! - **A quiet period.** From [`AppConfig::talk_until`] on, nothing more is sent, so that what
//!   was sent can land and be acknowledged before the leave.
//! - **Leaving** tells the proxy client, carries out what it says (its closes and its state
//!   changes), then drops it.
//! - **The report** is a fold of the [`AppEvent`]s: [`ClientReport::record`].
//!
//! # Drain contract
//!
//! The application never does IO and never reads a clock. The driver owns the sockets (one UDP
//! socket, the TCP connections the proxy client asks for), the resolver and one timer, and
//! runs the crate's loop (see the [crate documentation](crate)):
//!
//! 1. After **every** [`App::handle_input`] or [`App::handle_timeout`],
//!    drain [`App::poll_output`] until `None` and carry out every [`AppOutput`] in order (the
//!    network outputs exactly as [`ProxyClient`]'s drain contract says; the events go to the
//!    trace and the report).
//! 2. Then read [`App::poll_timeout`] and call `handle_timeout` once the clock reaches it. Unlike
//!    the proxy client's, `handle_input` never fires the application's own timers (the script,
//!    the ticks): only `handle_timeout` does, so that a driver that handles every pending
//!    input before its timer keeps the order of a run.
//! 3. The application is finished when [`App::is_done`]: its script has run out and it is no
//!    longer in a channel.
//!
//! ```
//! use std::time::Duration;
//! use cloudproxy_core::app::{App, AppConfig, AppEvent, AppOutput};
//! use cloudproxy_core::client::{ClientInput, ClientOutput};
//! use cloudproxy_core::sdrtn::SdRtnEndpoints;
//! use cloudproxy_core::time::Instant;
//!
//! let sdrtn = SdRtnEndpoints {
//!     signalling: "203.0.113.10:5000".parse().unwrap(),
//!     media_udp: "203.0.113.10:5001".parse().unwrap(),
//!     media_tcp: "203.0.113.10:5002".parse().unwrap(),
//! };
//! // Proxy off, joining at once: the proxy client goes straight to the edge.
//! let config = AppConfig::new("alice", 7, "room", &[], Duration::ZERO);
//! let mut app = App::new(config, sdrtn, Instant::EPOCH);
//! app.handle_timeout(Instant::EPOCH);
//! let outputs: Vec<AppOutput> = std::iter::from_fn(|| app.poll_output()).collect();
//! assert!(matches!(outputs[0], AppOutput::Event(AppEvent::Joined { .. })));
//! let conn = outputs.iter().find_map(|o| match o {
//!     AppOutput::Net(ClientOutput::TcpConnect { conn, .. }) => Some(*conn),
//!     _ => None,
//! }).unwrap();
//!
//! // Connected: the application joins the channel on the edge.
//! app.handle_input(ClientInput::TcpConnected { conn }, Instant::from_millis(10)).unwrap();
//! let sent: Vec<u8> = std::iter::from_fn(|| app.poll_output())
//!     .filter_map(|o| match o {
//!         AppOutput::Net(ClientOutput::TcpSend { data, .. }) => Some(data),
//!         _ => None,
//!     })
//!     .flatten()
//!     .collect();
//! assert_eq!(sent, b"{\"t\":\"join\",\"ch\":\"room\",\"uid\":7,\"seq\":1}\n");
//! ```
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod report;
pub mod stats;
mod types;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::client::{
    ClientConfig, ClientEvent, ClientInput, ClientOutput, ConnectionState, ProxyClient,
};
use crate::engine::Engine;
use crate::entropy::Entropy;
use crate::params::Mode;
use crate::sdrtn::SdRtnEndpoints;
use crate::time::Instant;

pub use report::{ClientReport, StreamStats, MAX_TIMED_SIGNALS};
pub use types::{AppConfig, AppEvent, AppInputError, AppOutput, Op};
pub use wire::{
    media_packet, media_sent_us, read_media, stamped_payload, LineError, LineReader, MediaHeader,
    Signal, MAX_LINE_LEN, MEDIA_HEADER_LEN, MEDIA_STAMP_LEN,
};

/// Most signalling messages kept for re-sending until the edge acknowledges them.
pub const MAX_UNACKED: usize = 10_000;
/// Smallest media packet the application sends, header included.
pub const MEDIA_MIN_LEN: usize = 200;
/// The most media packets one late wake-up sends (a bound on bursts after a stall).
pub const MEDIA_BURST_MAX: u32 = 32;
/// Largest media packet the application sends, header included.
pub const MEDIA_MAX_LEN: usize = 1_200;

/// What the application sends, and when.
///
/// ```text
///             connected, before talk_until: send Join(seq)
///   Silent ──────────────────────────────────────────────► Joining { joins: {seq} }
///     ▲  ▲                                                   │   │ connected again:
///     │  │  the edge acks a join in `joins`                  │   │ joins += {seq}
///     │  │  (before talk_until)                              │   ◄
///     │  │        ┌──────────────────────────────────────────┘
///     │  │        ▼
///     │  │    Talking ─── connected again: media goes on ───► Talking
///     │  │        │
///     │  └────────┴── talk_until reached, or Leave
///     └──────────────────────────────────────────────────── (from Joining too)
/// ```
///
/// `Joining` sends signalling only; `Talking` sends media and signalling. Each tick fires at
/// most once a `handle_timeout` and is then set one period after `now`.
#[derive(Debug)]
enum Talk {
    /// Nothing to send.
    Silent,
    /// Connected; waiting for the edge to acknowledge a join before media starts.
    Joining {
        /// The joins sent and not acknowledged yet.
        joins: BTreeSet<u64>,
        /// The next signalling message.
        next_signal: Instant,
    },
    /// Media and signalling flow.
    Talking {
        /// The next media packet.
        next_media: Instant,
        /// The next signalling message.
        next_signal: Instant,
    },
}

/// The simulated SDK application. See the [module documentation](self) for its rules and its
/// drain contract.
#[derive(Debug)]
pub struct App {
    config: AppConfig,
    sdrtn: SdRtnEndpoints,
    started_at: Instant,
    now: Instant,
    engine: Engine,
    /// Payload sizes, and the proxy clients' own streams (forked at each join).
    entropy: Entropy,
    /// The index of the next script step.
    next_step: usize,
    /// The proxy client, while in a channel.
    client: Option<ProxyClient>,
    lines: LineReader,
    media_seq: u32,
    signal_seq: u64,
    /// Messages not acknowledged yet, by sequence number (at most [`MAX_UNACKED`]).
    unacked: BTreeMap<u64, Vec<u8>>,
    talk: Talk,
    out: VecDeque<AppOutput>,
}

impl App {
    /// An application that starts its script at `now`, reaching SD-RTN at `sdrtn`.
    pub fn new(config: AppConfig, sdrtn: SdRtnEndpoints, now: Instant) -> Self {
        let mode = if config.compat {
            Mode::Compat
        } else {
            Mode::Strict
        };
        App {
            entropy: Entropy::from_u64(config.seed),
            config,
            sdrtn,
            started_at: now,
            now,
            engine: Engine::new(mode),
            next_step: 0,
            client: None,
            lines: LineReader::default(),
            media_seq: 0,
            signal_seq: 0,
            unacked: BTreeMap::new(),
            talk: Talk::Silent,
            out: VecDeque::new(),
        }
    }

    /// Handles news from the network at `now`: the answers to the network outputs, bytes,
    /// closes and datagrams, as [`ClientInput`]s (the proxy client's timers due at `now` fire
    /// first; the application's own wait for [`App::handle_timeout`]). Ignored while not in a
    /// channel. The application's own commands (`SendSignalling`, `SendMedia`, `Leave`) are
    /// refused, and change nothing.
    pub fn handle_input(
        &mut self,
        input: ClientInput<'_>,
        now: Instant,
    ) -> Result<(), AppInputError> {
        AppInputError::check(&input)?;
        self.now = self.now.max(now);
        if let Some(client) = self.client.as_mut() {
            client.handle_input(input, self.now);
            self.pump();
        }
        Ok(())
    }

    /// Fires everything due at `now`: the script's steps, the quiet period, the proxy client's
    /// timers, then the media and signalling ticks.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        while let Some((at, op)) = self.due_step() {
            self.run_step(at, &op);
        }
        if self.quiet() {
            self.talk = Talk::Silent;
        }
        let Some(client) = self.client.as_mut() else {
            return;
        };
        client.handle_timeout(self.now);
        self.pump();
        self.tick();
    }

    /// The next output, `None` when the queue is drained.
    pub fn poll_output(&mut self) -> Option<AppOutput> {
        self.out.pop_front()
    }

    /// When [`App::handle_timeout`] should be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let step = self.step_at(self.next_step);
        let client = self.client.as_ref().and_then(ProxyClient::poll_timeout);
        let talk = match &self.talk {
            Talk::Silent => None,
            Talk::Joining { next_signal, .. } => Some(*next_signal),
            Talk::Talking {
                next_media,
                next_signal,
            } => Some((*next_media).min(*next_signal)),
        };
        [step, client, talk].into_iter().flatten().min()
    }

    /// Whether the script has run out and the application is in no channel: nothing more
    /// will happen.
    pub fn is_done(&self) -> bool {
        self.step_at(self.next_step).is_none() && self.client.is_none()
    }

    /// The proxy client, while in a channel.
    pub fn client(&self) -> Option<&ProxyClient> {
        self.client.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    // ----- the script -----

    fn step_at(&self, index: usize) -> Option<Instant> {
        let (at, _) = self.config.script.get(index)?;
        Some(self.started_at + *at)
    }

    /// The next step, when due (and moves past it).
    fn due_step(&mut self) -> Option<(Duration, Op)> {
        let (at, op) = self.config.script.get(self.next_step)?;
        if self.started_at + *at > self.now {
            return None;
        }
        self.next_step += 1;
        Some((*at, op.clone()))
    }

    fn run_step(&mut self, at: Duration, op: &Op) {
        match op {
            Op::Set(text) => {
                let result = self.engine.set_parameters(text);
                let code = result.as_ref().err().map_or(0, |e| e.code().as_i32());
                let error = result.err().map(|e| e.to_string());
                let text = text.clone();
                self.event(AppEvent::ParametersSet { text, code, error });
            }
            Op::Join => self.join(at),
            Op::Leave => self.leave(),
            Op::SetCloudProxy(proxy_type) => {
                let result = self.engine.set_cloud_proxy(*proxy_type);
                let code = result.as_ref().err().map_or(0, |e| e.code().as_i32());
                let error = result.err().map(|e| e.to_string());
                let proxy_type = *proxy_type;
                self.event(AppEvent::CloudProxySet {
                    proxy_type,
                    code,
                    error,
                });
            }
        }
    }

    fn join(&mut self, at: Duration) {
        let config = match self.engine.join() {
            Ok(config) => config.clone(),
            Err(e) => {
                let (code, error) = (e.code().as_i32(), e.to_string());
                return self.event(AppEvent::JoinRefused { code, error });
            }
        };
        let mut client_config = ClientConfig::for_join(
            &config,
            self.engine.cloud_proxy_in_force(),
            self.config.app_id.clone(),
            self.sdrtn,
        );
        client_config
            .socks5_credentials
            .clone_from(&self.config.socks5_credentials);
        (self.config.tune)(&mut client_config);
        self.event(AppEvent::Joined { config, at });
        let entropy = self.entropy.fork();
        self.client = Some(ProxyClient::new(client_config, entropy, self.now));
        self.pump();
    }

    fn leave(&mut self) {
        self.talk = Talk::Silent;
        if let Err(e) = self.engine.leave() {
            let (code, error) = (e.code().as_i32(), e.to_string());
            return self.event(AppEvent::LeaveRefused { code, error });
        }
        self.event(AppEvent::Left);
        // The proxy client's outputs of leaving are carried out like any others: its closes,
        // then its state changes (the driver has nothing to tear down of its own).
        if let Some(client) = self.client.as_mut() {
            client.handle_input(ClientInput::Leave, self.now);
            self.pump();
        }
        self.client = None;
        self.engine.on_left();
    }

    // ----- talking -----

    /// Since the start.
    fn since_start(&self) -> Duration {
        self.now.saturating_duration_since(self.started_at)
    }

    /// Whether the quiet period has begun.
    fn quiet(&self) -> bool {
        self.config
            .talk_until
            .is_some_and(|t| self.started_at + t <= self.now)
    }

    fn media_gap(&self) -> Duration {
        Duration::from_micros(1_000_000 / u64::from(self.config.media_pps.max(1)))
    }

    /// The media and signalling ticks that are due.
    fn tick(&mut self) {
        let now = self.now;
        let (media_due, signal_due) = match &self.talk {
            Talk::Silent => (false, false),
            Talk::Joining { next_signal, .. } => (false, *next_signal <= now),
            Talk::Talking {
                next_media,
                next_signal,
            } => (*next_media <= now, *next_signal <= now),
        };
        if media_due {
            self.send_due_media();
        }
        if signal_due {
            self.send_message();
        }
    }

    /// Sends the media packets that are due, paced by the schedule rather than by the
    /// wake-up: a driver's timer fires up to a tick late (1 ms on tokio), and scheduling
    /// `now + gap` after each packet lost that much per packet (on real sockets 50 pps sent 47,
    /// 5000 sent 2240). A late wake-up sends what is due, at most [`MEDIA_BURST_MAX`]; after a
    /// longer stall the backlog is skipped.
    fn send_due_media(&mut self) {
        let gap = self.media_gap();
        let mut sent = 0;
        while let Talk::Talking { next_media, .. } = self.talk {
            if next_media > self.now || sent == MEDIA_BURST_MAX {
                break;
            }
            self.send_media(next_media + gap);
            sent += 1;
        }
        let now = self.now;
        if let Talk::Talking { next_media, .. } = &mut self.talk {
            if *next_media <= now {
                *next_media = now + gap;
            }
        }
    }

    /// Sends one media packet; the next is due at `next`.
    fn send_media(&mut self, next: Instant) {
        let seq = self.media_seq;
        let size = MEDIA_MIN_LEN + self.entropy.next_below(1001) as usize;
        // Stamped with the send instant (RFC 3550 jitter at the receiver), then filler.
        let payload = stamped_payload(
            self.now.as_micros(),
            size - MEDIA_HEADER_LEN,
            (seq % 251) as u8,
        );
        let packet = media_packet(self.config.uid, seq, &payload);
        self.command(ClientInput::SendMedia { payload: &packet });
        self.media_seq = self.media_seq.wrapping_add(1);
        self.event(AppEvent::MediaSent { seq });
        if let Talk::Talking { next_media, .. } = &mut self.talk {
            *next_media = next;
        }
    }

    fn send_message(&mut self) {
        self.signal_seq += 1;
        let seq = self.signal_seq;
        let body = format!("hello from {}", self.config.name);
        let line = Signal::Msg { seq, body }.to_line();
        self.command(ClientInput::SendSignalling { data: &line });
        if self.unacked.len() < MAX_UNACKED {
            self.unacked.insert(seq, line);
        }
        let at = self.since_start();
        self.event(AppEvent::SignallingSent { seq, at });
        let next = self.now + self.config.signalling_every;
        if let Talk::Joining { next_signal, .. } | Talk::Talking { next_signal, .. } =
            &mut self.talk
        {
            *next_signal = next;
        }
    }

    /// The proxy client connected: (re)join the channel, re-send what is unacknowledged, and
    /// start (or keep) talking.
    fn connected(&mut self) {
        self.engine.on_joined();
        self.signal_seq += 1;
        let seq = self.signal_seq;
        let join = Signal::Join {
            ch: self.config.channel.clone(),
            uid: self.config.uid,
            seq,
        };
        let at = self.since_start();
        self.event(AppEvent::SignallingSent { seq, at });
        if let Some(client) = self.client.as_mut() {
            let now = self.now;
            client.handle_input(
                ClientInput::SendSignalling {
                    data: &join.to_line(),
                },
                now,
            );
            for line in self.unacked.values() {
                client.handle_input(ClientInput::SendSignalling { data: line }, now);
            }
        }
        if self.quiet() {
            return;
        }
        let next_signal = self.now + self.config.signalling_every;
        match &mut self.talk {
            Talk::Silent => {
                self.talk = Talk::Joining {
                    joins: BTreeSet::from([seq]),
                    next_signal,
                }
            }
            Talk::Joining { joins, .. } => {
                joins.insert(seq);
            }
            Talk::Talking { .. } => {}
        }
    }

    fn signalling(&mut self, bytes: &[u8]) {
        match self.lines.push(bytes) {
            Ok(signals) => {
                for signal in signals {
                    if let Signal::Ack { seq } = signal {
                        self.acked(seq);
                    }
                }
            }
            Err(error) => {
                self.lines = LineReader::default();
                self.event(AppEvent::SignallingBroken { error });
            }
        }
    }

    fn acked(&mut self, seq: u64) {
        // A duplicate ack is expected after a reconnect (the unacknowledged messages are
        // re-sent); an ack of a message never sent is not.
        let sent = seq <= self.signal_seq;
        let at = self.since_start();
        self.event(AppEvent::Acked { seq, sent, at });
        self.unacked.remove(&seq);
        let quiet = self.quiet();
        if let Talk::Joining { joins, next_signal } = &mut self.talk {
            if joins.remove(&seq) && !quiet {
                self.talk = Talk::Talking {
                    next_media: self.now,
                    next_signal: *next_signal,
                };
            }
        }
    }

    // ----- the proxy client -----

    /// Gives the proxy client an application command, and takes its outputs.
    fn command(&mut self, input: ClientInput<'_>) {
        if let Some(client) = self.client.as_mut() {
            client.handle_input(input, self.now);
            self.pump();
        }
    }

    /// Takes every output of the proxy client: network outputs are passed on in order, events
    /// are the application's to react to.
    fn pump(&mut self) {
        while let Some(output) = self.client.as_mut().and_then(ProxyClient::poll_output) {
            match output {
                ClientOutput::Event(event) => self.client_event(event),
                output => self.out.push_back(AppOutput::Net(output)),
            }
        }
    }

    fn client_event(&mut self, event: ClientEvent) {
        let at = self.since_start();
        match event {
            ClientEvent::ConnectionStateChanged { state, reason } => {
                self.event(AppEvent::StateChanged { state, reason, at });
                if state == ConnectionState::Connected {
                    self.connected();
                }
            }
            ClientEvent::ProxyConnected {
                proxy_type,
                relay,
                elapsed,
            } => self.event(AppEvent::ProxyConnected {
                proxy_type,
                relay,
                elapsed,
            }),
            ClientEvent::MediaPathChanged(path) => self.event(AppEvent::MediaPathChanged(path)),
            ClientEvent::SignallingReceived(bytes) => self.signalling(&bytes),
            ClientEvent::MediaReceived { payload, .. } => {
                if let Some(header) = read_media(&payload) {
                    let sent_us = media_sent_us(&payload);
                    self.event(AppEvent::MediaReceived {
                        header,
                        at,
                        sent_us,
                    });
                }
            }
        }
    }

    fn event(&mut self, event: AppEvent) {
        self.out.push_back(AppOutput::Event(event));
    }
}
