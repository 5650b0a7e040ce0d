//! The client machine: one tunnel through an HTTP proxy, from the first connection to
//! `Established` or `Failed`.

use std::collections::VecDeque;
use std::time::Duration;

use super::body::BodySkipper;
use super::{
    encode_request, Authority, BasicCredentials, HeadReader, HttpConnectError, ResponseHead,
    MAX_INTERIM_RESPONSES,
};
use crate::time::Instant;

/// The default [`HttpConnectConfig::handshake_timeout`]: 5 s, as the proxy client's
/// `connect_timeout`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The machine's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConnectConfig {
    /// How long the whole handshake may take, from [`HttpConnectClient::new`] to the tunnel:
    /// every connection, request and response, the authentication round included. Zero is
    /// treated as one millisecond. Default [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
}

impl Default for HttpConnectConfig {
    fn default() -> Self {
        HttpConnectConfig {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// The machine-assigned number of one TCP connection to the proxy: `ProxyConn(0)` first, then
/// `ProxyConn(1)` if the authentication round needs a new connection. Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProxyConn(pub u32);

/// What happened, for [`HttpConnectClient::handle_input`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpConnectInput<'a> {
    /// The connection asked for with [`HttpConnectOutput::Connect`] is up.
    Connected {
        /// The connection.
        conn: ProxyConn,
    },
    /// The connection asked for could not be opened (refused, unreachable, timed out).
    ConnectFailed {
        /// The connection.
        conn: ProxyConn,
    },
    /// Bytes from the proxy, in order.
    Data {
        /// The connection.
        conn: ProxyConn,
        /// The bytes.
        data: &'a [u8],
    },
    /// The proxy closed or reset the connection; the machine forgets it.
    Closed {
        /// The connection.
        conn: ProxyConn,
    },
}

/// What the driver must do, from [`HttpConnectClient::poll_output`], in order.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpConnectOutput {
    /// Open a TCP connection to the proxy; report it with `Connected` or `ConnectFailed`.
    Connect {
        /// The number later inputs name it by.
        conn: ProxyConn,
    },
    /// Write these bytes on the connection.
    Transmit {
        /// The connection.
        conn: ProxyConn,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Close the connection (or abandon the attempt to open it); the machine forgets it.
    Close {
        /// The connection.
        conn: ProxyConn,
    },
    /// The tunnel is up: the connection now carries the target's bytes both ways and belongs to
    /// the caller (the machine sends nothing more on it and ignores its inputs).
    Established {
        /// The connection.
        conn: ProxyConn,
        /// The proxy's `2xx` response head.
        head: ResponseHead,
        /// The bytes that followed the head in the same read: the tunnel's first bytes.
        early: Vec<u8>,
    },
    /// The handshake failed; every connection was closed (a `Close` came first when the
    /// machine had one open). This is the last output.
    Failed {
        /// Why.
        error: HttpConnectError,
    },
}

/// What the machine is doing.
///
/// ```text
///   new(): Connect(conn 0)
///     │
///     ▼
///   Connecting(c) ──ConnectFailed / Closed─────────────────────────► Failed(ProxyUnreachable)
///     │ Connected: Transmit CONNECT (with Proxy-Authorization once challenged)
///     ▼
///   AwaitingHead(c) ──1xx (not 101)──► AwaitingHead (at most 4, then Failed)
///     │  │  │ ──2xx──► Established { head, early } (the connection is the caller's)
///     │  │  │ ──other status──► Close, Failed(Refused)
///     │  │  │ ──Closed before the head ended──► Failed(ClosedEarly)
///     │  │  │ ──malformed or oversized head──► Close, Failed(the codec error)
///     │  │  └─407, no credentials──► Close, Failed(AuthRequired)
///     │  │    407 without Basic──► Close, Failed(AuthUnsupported)
///     │  │    407 (or 401) after credentials were sent──► Close, Failed(AuthRejected)
///     │  │ 407 offering Basic, connection kept alive, body ≤ 64 KiB framed by length or chunks
///     │  ▼
///     │ SkippingBody(c) ──body read past──► Transmit CONNECT with credentials ──► AwaitingHead(c)
///     │  │ body broken, too large, or Closed
///     │  ▼
///     └─407 offering Basic, connection closing or body unframed──► Close(c), Connect(c + 1) ──► Connecting(c + 1)
///
///   Any state before Established: the handshake deadline ─► Close (if open), Failed(Timeout).
///   Established, Failed: every input is ignored (and counted).
/// ```
#[derive(Debug)]
enum State {
    Connecting {
        conn: ProxyConn,
    },
    AwaitingHead {
        conn: ProxyConn,
        reader: HeadReader,
    },
    SkippingBody {
        conn: ProxyConn,
        skipper: BodySkipper,
    },
    Established,
    Failed,
}

/// A sans-IO `CONNECT` handshake through an HTTP proxy.
///
/// Drain contract (as for the proxy client): right after [`new`](Self::new) and after every
/// [`handle_input`](Self::handle_input) or [`handle_timeout`](Self::handle_timeout), call
/// [`poll_output`](Self::poll_output) until `None` and carry out every output in order; then
/// call `handle_timeout` once the clock reaches [`poll_timeout`](Self::poll_timeout). Both
/// `handle_*` calls first fire the deadline if it is due at `now`; `now` must not go backwards
/// (an earlier `now` counts as the latest seen). Inputs naming a connection the machine does not
/// hold, and every input once it is finished, are ignored and counted. Over its whole life the
/// machine makes at most two connections and produces at most seven outputs.
///
/// ```
/// use cloudproxy_core::http_connect::*;
/// use cloudproxy_core::time::Instant;
///
/// let target = Authority::domain("edge.example.com", 443).unwrap();
/// let user = BasicCredentials::new("alice", "secret").ok();
/// let mut t = HttpConnectClient::new(target, user, HttpConnectConfig::default(), Instant::EPOCH);
/// let conn = ProxyConn(0);
/// assert_eq!(t.poll_output(), Some(HttpConnectOutput::Connect { conn }));
/// t.handle_input(HttpConnectInput::Connected { conn }, Instant::EPOCH);
/// let Some(HttpConnectOutput::Transmit { data, .. }) = t.poll_output() else { panic!() };
/// assert!(data.starts_with(b"CONNECT edge.example.com:443 HTTP/1.1\r\n"));
/// // The proxy wants credentials, keeps the connection and sends a 6-byte body.
/// let data = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
///     Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 6\r\n\r\nDenied";
/// t.handle_input(HttpConnectInput::Data { conn, data }, Instant::EPOCH);
/// let Some(HttpConnectOutput::Transmit { data, .. }) = t.poll_output() else { panic!() };
/// assert!(data.ends_with(b"Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n"));
/// let data = b"HTTP/1.1 200 OK\r\n\r\nhello";
/// t.handle_input(HttpConnectInput::Data { conn, data }, Instant::EPOCH);
/// let Some(HttpConnectOutput::Established { early, .. }) = t.poll_output() else { panic!() };
/// assert_eq!(early, b"hello");
/// assert_eq!(t.poll_timeout(), None);
/// ```
#[derive(Debug)]
pub struct HttpConnectClient {
    target: Authority,
    credentials: Option<BasicCredentials>,
    timeout: Duration,
    deadline: Instant,
    now: Instant,
    state: State,
    next_conn: u32,
    /// The proxy challenged with Basic: every request from now on carries the credentials.
    answer_challenge: bool,
    /// A request with the credentials was sent.
    credentials_sent: bool,
    interim: usize,
    outputs: VecDeque<HttpConnectOutput>,
    ignored_inputs: u64,
}

impl HttpConnectClient {
    /// A handshake towards `target`, with the credentials to answer a Basic challenge with, if
    /// any. Its first output (`Connect`) is ready to poll.
    pub fn new(
        target: Authority,
        credentials: Option<BasicCredentials>,
        config: HttpConnectConfig,
        now: Instant,
    ) -> Self {
        let timeout = config.handshake_timeout.max(Duration::from_millis(1));
        let mut machine = HttpConnectClient {
            target,
            credentials,
            timeout,
            deadline: now + timeout,
            now,
            state: State::Failed,
            next_conn: 0,
            answer_challenge: false,
            credentials_sent: false,
            interim: 0,
            outputs: VecDeque::new(),
            ignored_inputs: 0,
        };
        machine.connect();
        machine
    }

    /// The tunnel's target.
    pub fn target(&self) -> &Authority {
        &self.target
    }

    /// Whether the machine ended (`Established` or `Failed` was output).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Established | State::Failed)
    }

    /// Inputs ignored so far: stale connections, data before `Connected`, anything once
    /// finished.
    pub fn ignored_inputs(&self) -> u64 {
        self.ignored_inputs
    }

    /// Bytes of an unfinished response head held, at most
    /// [`MAX_HEAD_LEN`](super::MAX_HEAD_LEN); nothing else is buffered (a 407's body is read
    /// past, not kept).
    pub fn buffered_len(&self) -> usize {
        match &self.state {
            State::AwaitingHead { reader, .. } => reader.buffered_len(),
            _ => 0,
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<HttpConnectOutput> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due: the handshake deadline, while
    /// the machine is not finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_finished()).then_some(self.deadline)
    }

    /// Fires the deadline if it is due at `now` (an early call does nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.fire_deadline(now, true);
    }

    /// Fires the deadline if due; `close` when the connection is still open.
    fn fire_deadline(&mut self, now: Instant, close: bool) {
        self.now = self.now.max(now);
        if !self.is_finished() && self.deadline <= self.now {
            let error = HttpConnectError::Timeout {
                target: self.target.to_string(),
                timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            };
            self.fail(error, close);
        }
    }

    /// The connection the machine holds, if any.
    fn current(&self) -> Option<ProxyConn> {
        match &self.state {
            State::Connecting { conn }
            | State::AwaitingHead { conn, .. }
            | State::SkippingBody { conn, .. } => Some(*conn),
            State::Established | State::Failed => None,
        }
    }

    /// Handles one input.
    pub fn handle_input(&mut self, input: HttpConnectInput<'_>, now: Instant) {
        let conn = match input {
            HttpConnectInput::Connected { conn }
            | HttpConnectInput::ConnectFailed { conn }
            | HttpConnectInput::Data { conn, .. }
            | HttpConnectInput::Closed { conn } => conn,
        };
        let connecting = matches!(self.state, State::Connecting { .. });
        let ours = self.current() == Some(conn);
        // A deadline due now fires first; it closes nothing the input says is gone.
        let gone = ours
            && match input {
                HttpConnectInput::Closed { .. } => true,
                HttpConnectInput::ConnectFailed { .. } => connecting,
                _ => false,
            };
        self.fire_deadline(now, !gone);
        if !ours || self.is_finished() {
            self.ignored_inputs += 1;
            return;
        }
        match input {
            HttpConnectInput::Connected { .. } if connecting => {
                self.send_request(conn);
                self.state = State::AwaitingHead {
                    conn,
                    reader: HeadReader::new(),
                };
            }
            HttpConnectInput::ConnectFailed { .. } if connecting => {
                self.fail(HttpConnectError::ProxyUnreachable, false);
            }
            HttpConnectInput::Closed { .. } => self.on_closed(),
            HttpConnectInput::Data { data, .. } if !connecting => self.on_data(conn, data),
            _ => self.ignored_inputs += 1,
        }
    }

    fn on_closed(&mut self) {
        match self.state {
            State::Connecting { .. } => self.fail(HttpConnectError::ProxyUnreachable, false),
            State::AwaitingHead { .. } => {
                let target = self.target.to_string();
                self.fail(HttpConnectError::ClosedEarly { target }, false);
            }
            // The 407's body ended with the connection (or the proxy gave up on it).
            State::SkippingBody { .. } => self.connect(),
            State::Established | State::Failed => {}
        }
    }

    fn on_data(&mut self, conn: ProxyConn, data: &[u8]) {
        let mut rest = data;
        loop {
            match &mut self.state {
                State::AwaitingHead { reader, .. } => match reader.push(rest) {
                    Err(error) => return self.fail(error, true),
                    Ok(None) => return,
                    Ok(Some((head, used))) => {
                        // `used` never exceeds what was pushed; past it, nothing is left.
                        rest = rest.get(used..).unwrap_or_default();
                        if !self.on_head(conn, head, rest) {
                            return;
                        }
                    }
                },
                State::SkippingBody { skipper, .. } => match skipper.skip(rest) {
                    Err(_) => return self.reconnect(conn),
                    Ok(None) => return,
                    Ok(Some(used)) => {
                        // `used` never exceeds what was pushed; past it, nothing is left.
                        rest = rest.get(used..).unwrap_or_default();
                        self.send_request(conn);
                        self.state = State::AwaitingHead {
                            conn,
                            reader: HeadReader::new(),
                        };
                    }
                },
                State::Connecting { .. } | State::Established | State::Failed => return,
            }
        }
    }

    /// Acts on a complete head; `true` when the bytes after it are still the machine's.
    fn on_head(&mut self, conn: ProxyConn, head: ResponseHead, rest: &[u8]) -> bool {
        if head.is_interim() {
            self.interim += 1;
            if self.interim > MAX_INTERIM_RESPONSES {
                let max = MAX_INTERIM_RESPONSES;
                self.fail(HttpConnectError::TooManyInterimResponses { max }, true);
                return false;
            }
            return true;
        }
        if head.is_success() {
            self.state = State::Established;
            self.outputs.push_back(HttpConnectOutput::Established {
                conn,
                head,
                early: rest.to_vec(),
            });
            return false;
        }
        if head.status == 407 {
            return self.on_challenge(conn, &head);
        }
        let error = if head.status == 401 && self.credentials_sent {
            // tinyproxy answers wrong credentials with 401 rather than a second 407.
            HttpConnectError::AuthRejected {
                target: self.target.to_string(),
                status: head.status,
                reason: short(&head.reason),
            }
        } else {
            HttpConnectError::Refused {
                target: self.target.to_string(),
                status: head.status,
                reason: short(&head.reason),
            }
        };
        self.fail(error, true);
        false
    }

    /// A 407: answer it (on this connection or a new one) or fail; `true` when the bytes after
    /// the head are still the machine's.
    fn on_challenge(&mut self, conn: ProxyConn, head: &ResponseHead) -> bool {
        let target = self.target.to_string();
        let error = if self.credentials_sent {
            Some(HttpConnectError::AuthRejected {
                target,
                status: head.status,
                reason: short(&head.reason),
            })
        } else if self.credentials.is_none() {
            Some(HttpConnectError::AuthRequired {
                target,
                status: head.status,
                reason: short(&head.reason),
                offered: offered(head),
            })
        } else if !head.offers_basic() {
            Some(HttpConnectError::AuthUnsupported {
                target,
                offered: offered(head),
            })
        } else {
            None
        };
        if let Some(error) = error {
            self.fail(error, true);
            return false;
        }
        self.answer_challenge = true;
        if head.keeps_alive() {
            match BodySkipper::new(head.body_framing()) {
                Ok(None) => {
                    self.send_request(conn);
                    self.state = State::AwaitingHead {
                        conn,
                        reader: HeadReader::new(),
                    };
                    return true;
                }
                Ok(Some(skipper)) => {
                    self.state = State::SkippingBody { conn, skipper };
                    return true;
                }
                Err(_) => {}
            }
        }
        self.reconnect(conn);
        false
    }

    /// Writes the request on `conn`, with the credentials once challenged.
    fn send_request(&mut self, conn: ProxyConn) {
        let credentials = self.credentials.as_ref().filter(|_| self.answer_challenge);
        self.credentials_sent |= credentials.is_some();
        let mut data = Vec::new();
        encode_request(&self.target, credentials, &mut data);
        self.outputs
            .push_back(HttpConnectOutput::Transmit { conn, data });
    }

    /// Closes `conn` and opens the next connection.
    fn reconnect(&mut self, conn: ProxyConn) {
        self.outputs.push_back(HttpConnectOutput::Close { conn });
        self.connect();
    }

    /// Asks for the next connection.
    fn connect(&mut self) {
        let conn = ProxyConn(self.next_conn);
        self.next_conn += 1;
        self.outputs.push_back(HttpConnectOutput::Connect { conn });
        self.state = State::Connecting { conn };
    }

    /// Ends the machine; `close` when the machine's connection is still open.
    fn fail(&mut self, error: HttpConnectError, close: bool) {
        if let Some(conn) = self.current().filter(|_| close) {
            self.outputs.push_back(HttpConnectOutput::Close { conn });
        }
        self.outputs.push_back(HttpConnectOutput::Failed { error });
        self.state = State::Failed;
    }
}

/// A reason phrase for an error: at most 64 characters.
fn short(reason: &str) -> String {
    if reason.chars().count() <= 64 {
        reason.to_owned()
    } else {
        let head: String = reason.chars().take(61).collect();
        format!("{head}...")
    }
}

/// The schemes a 407 offers, for an error.
fn offered(head: &ResponseHead) -> String {
    let schemes = head.auth_schemes();
    if schemes.is_empty() {
        "no Proxy-Authenticate challenge".to_owned()
    } else {
        schemes.join(", ")
    }
}
