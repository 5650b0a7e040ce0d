//! The server end of the handshake: what a SOCKS5 proxy runs for each client connection.

use super::{
    complete, Address, Command, Credentials, Greeting, Method, MethodSelection, Reply, ReplyCode,
    Request, Socks5Error, UserPassReply, UserPassRequest,
};

/// What a [`ServerHandshake`] accepts.
///
/// The default accepts NO AUTHENTICATION, CONNECT and UDP ASSOCIATE, and refuses BIND.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerPolicy {
    /// Accept NO AUTHENTICATION REQUIRED.
    pub allow_no_auth: bool,
    /// Accept USERNAME/PASSWORD, with exactly these credentials. When a client offers both
    /// methods and both are allowed, USERNAME/PASSWORD is chosen.
    pub credentials: Option<Credentials>,
    /// Serve CONNECT.
    pub connect: bool,
    /// Serve BIND.
    pub bind: bool,
    /// Serve UDP ASSOCIATE. When false, a UDP ASSOCIATE gets reply 7 (command not supported)
    /// and the handshake fails, which tells a client to fall back to TCP.
    pub udp_associate: bool,
}

impl Default for ServerPolicy {
    fn default() -> Self {
        ServerPolicy {
            allow_no_auth: true,
            credentials: None,
            connect: true,
            bind: false,
            udp_associate: true,
        }
    }
}

impl ServerPolicy {
    /// Whether the policy serves `command`.
    pub fn supports(&self, command: Command) -> bool {
        match command {
            Command::Connect => self.connect,
            Command::Bind => self.bind,
            Command::UdpAssociate => self.udp_associate,
        }
    }

    /// The method to select for `greeting`, if any is acceptable.
    fn choose(&self, greeting: &Greeting) -> Option<Method> {
        if self.credentials.is_some() && greeting.offers(Method::UserPass) {
            Some(Method::UserPass)
        } else if self.allow_no_auth && greeting.offers(Method::NoAuth) {
            Some(Method::NoAuth)
        } else {
            None
        }
    }
}

/// What [`ServerHandshake::handle_bytes`] made of the client's bytes so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerProgress {
    /// Waiting for more bytes from the client (send whatever
    /// [`ServerHandshake::poll_transmit`] has first).
    Pending,
    /// The client's request is in and allowed by the policy: carry it out, then answer with
    /// [`ServerHandshake::reply`]. The machine takes no more bytes: what follows belongs to
    /// the caller.
    Request {
        /// The request.
        request: Request,
        /// Bytes that followed the request in the input (a client's early data).
        leftover: Vec<u8>,
    },
}

// State diagram of the server machine (bytes are what the client sends, then what we send):
//
//   AwaitGreeting ──VER ≠ 05──────────────────────────────► Failed (nothing sent)
//     │   │       ──NMETHODS = 0 / nothing acceptable: 05 FF► Failed
//     │   │ offers 02 and policy has credentials: 05 02
//     │   ▼
//     │ AwaitAuth ──malformed / wrong credentials: 01 01───► Failed
//     │   │ right credentials: 01 00
//     │   │
//     │ offers 00 and policy allows no-auth: 05 00
//     ▼   ▼
//   AwaitRequest ──unknown CMD, or CMD off in policy: reply 07► Failed
//     │          ──unknown ATYP: reply 08─────────────────────► Failed
//     │          ──other malformed request: reply 01──────────► Failed
//     │ valid request: → ServerProgress::Request (caller acts)
//     ▼
//   AwaitReply ──reply(REP ≠ 00) or reply(00) to CONNECT / UDP ASSOCIATE──► Done
//     │ reply(00) to BIND (listening address)
//     ▼
//   AwaitBindReply ──reply(any) (peer's address, or failure)───────────────► Done
//
//   handle_bytes in AwaitReply, AwaitBindReply, Done, Failed ─► Err(HandshakeFinished).
//   reply() outside AwaitReply, AwaitBindReply ─► Err(NotAwaitingReply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitGreeting,
    AwaitAuth,
    AwaitRequest,
    AwaitReply { command: Command },
    AwaitBindReply,
    Done,
    Failed,
}

/// The sans-IO server handshake: method selection, optional username/password check, request.
///
/// Feed every byte read from the client to [`ServerHandshake::handle_bytes`] and write out
/// [`ServerHandshake::poll_transmit`] after each call, until a
/// [`ServerProgress::Request`] or an error. On an error, write out what `poll_transmit` still
/// holds (the error reply the RFC defines, if any) and close the connection.
///
/// ```
/// use cloudproxy_core::socks5::{Address, ReplyCode, ServerHandshake, ServerPolicy, ServerProgress};
///
/// let mut server = ServerHandshake::new(ServerPolicy::default());
/// assert_eq!(server.handle_bytes(&[0x05, 0x01, 0x00]).unwrap(), ServerProgress::Pending);
/// assert_eq!(server.poll_transmit().unwrap(), [0x05, 0x00]);
/// let connect = [0x05, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0x00, 0x50];
/// let ServerProgress::Request { request, .. } = server.handle_bytes(&connect).unwrap() else {
///     panic!()
/// };
/// assert_eq!(request.dst.to_string(), "1.2.3.4:80");
/// let reply = server.reply(ReplyCode::Succeeded, "10.0.0.1:5555".parse::<std::net::SocketAddr>().unwrap().into());
/// assert_eq!(reply.unwrap(), [0x05, 0x00, 0x00, 0x01, 10, 0, 0, 1, 0x15, 0xB3]);
/// ```
#[derive(Clone, Debug)]
pub struct ServerHandshake {
    policy: ServerPolicy,
    state: State,
    method: Option<Method>,
    /// Bytes received but not decoded yet. Between calls this is a strict prefix of one
    /// message of the current phase, so it never exceeds the longest client message (an
    /// RFC 1929 request of 513 bytes).
    inbox: Vec<u8>,
    /// Bytes for the client, until `poll_transmit` takes them.
    outbox: Vec<u8>,
}

impl ServerHandshake {
    /// A handshake for one client connection, under `policy`.
    pub fn new(policy: ServerPolicy) -> Self {
        ServerHandshake {
            policy,
            state: State::AwaitGreeting,
            method: None,
            inbox: Vec::new(),
            outbox: Vec::new(),
        }
    }

    /// The bytes to write to the client next, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.outbox.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.outbox))
        }
    }

    /// The method selected for this client, once selected.
    pub fn method(&self) -> Option<Method> {
        self.method
    }

    /// Consumes bytes from the client, which may hold part of a message, or several.
    ///
    /// After an error the machine is failed: send what [`ServerHandshake::poll_transmit`]
    /// holds, then close the connection.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<ServerProgress, Socks5Error> {
        if !matches!(
            self.state,
            State::AwaitGreeting | State::AwaitAuth | State::AwaitRequest
        ) {
            return Err(Socks5Error::HandshakeFinished);
        }
        self.inbox.extend_from_slice(bytes);
        let mut inbox = std::mem::take(&mut self.inbox);
        let mut pos = 0;
        let result = loop {
            // `step` consumes at most the bytes it is given, so `pos <= inbox.len()`.
            match self.step(inbox.get(pos..).unwrap_or_default()) {
                Ok(None) => break Ok(None),
                Ok(Some((n, None))) => pos += n,
                Ok(Some((n, Some(request)))) => {
                    pos += n;
                    break Ok(Some(request));
                }
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(None) => {
                inbox.drain(..pos);
                self.inbox = inbox;
                Ok(ServerProgress::Pending)
            }
            Ok(Some(request)) => {
                let leftover = inbox.split_off(pos);
                Ok(ServerProgress::Request { request, leftover })
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// The reply to the request [`ServerHandshake::handle_bytes`] handed over: `code` and the
    /// `bound` address (use [`Address::unspecified`] on failure). Returns the bytes to send.
    ///
    /// For BIND, call it twice: first with the listening address, then with the connecting
    /// peer's address (or a failure). After a failure reply, close the connection.
    pub fn reply(&mut self, code: ReplyCode, bound: Address) -> Result<Vec<u8>, Socks5Error> {
        self.state = match self.state {
            State::AwaitReply {
                command: Command::Bind,
            } if code.is_success() => State::AwaitBindReply,
            State::AwaitReply { .. } | State::AwaitBindReply => State::Done,
            _ => return Err(Socks5Error::NotAwaitingReply),
        };
        let reply = Reply { code, bound };
        let mut out = Vec::with_capacity(reply.encoded_len());
        reply.encode(&mut out);
        Ok(out)
    }

    /// Decodes one message of the current phase from `input` and acts on it. `Ok(None)`: the
    /// message is incomplete; `Ok(Some((consumed, request)))`: it was handled, and `request`
    /// is the request to hand over, if that was it.
    fn step(&mut self, input: &[u8]) -> Result<Option<(usize, Option<Request>)>, Socks5Error> {
        match self.state {
            State::AwaitGreeting => {
                let greeting = match complete(Greeting::decode(input)) {
                    Ok(Some(greeting)) => greeting,
                    Ok(None) => return Ok(None),
                    Err(e @ Socks5Error::ZeroMethods) => {
                        self.select(Method::NoAcceptable);
                        return Err(e);
                    }
                    // Not SOCKS5 (or garbage): no reply is defined.
                    Err(e) => return Err(e),
                };
                let (greeting, n) = greeting;
                let Some(method) = self.policy.choose(&greeting) else {
                    self.select(Method::NoAcceptable);
                    return Err(Socks5Error::NoAcceptableMethod);
                };
                self.select(method);
                self.method = Some(method);
                self.state = match method {
                    Method::UserPass => State::AwaitAuth,
                    _ => State::AwaitRequest,
                };
                Ok(Some((n, None)))
            }
            State::AwaitAuth => {
                let verdict = match complete(UserPassRequest::decode(input)) {
                    Ok(None) => return Ok(None),
                    Ok(Some((auth, n))) => match &self.policy.credentials {
                        Some(expected) if *expected == auth.credentials => Ok(n),
                        _ => Err(Socks5Error::BadCredentials),
                    },
                    Err(e) => Err(e),
                };
                let status = match verdict {
                    Ok(_) => UserPassReply::SUCCESS,
                    Err(_) => UserPassReply::FAILURE,
                };
                UserPassReply { status }.encode(&mut self.outbox);
                let n = verdict?;
                self.state = State::AwaitRequest;
                Ok(Some((n, None)))
            }
            State::AwaitRequest => {
                let (request, n) = match complete(Request::decode(input)) {
                    Ok(Some(decoded)) => decoded,
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        let code = match e {
                            Socks5Error::UnknownCommand(_) => ReplyCode::CommandNotSupported,
                            Socks5Error::UnknownAddressType(_) => {
                                ReplyCode::AddressTypeNotSupported
                            }
                            _ => ReplyCode::GeneralFailure,
                        };
                        Reply::unbound(code).encode(&mut self.outbox);
                        return Err(e);
                    }
                };
                if !self.policy.supports(request.command) {
                    Reply::unbound(ReplyCode::CommandNotSupported).encode(&mut self.outbox);
                    return Err(Socks5Error::UnsupportedCommand(request.command));
                }
                self.state = State::AwaitReply {
                    command: request.command,
                };
                Ok(Some((n, Some(request))))
            }
            State::AwaitReply { .. } | State::AwaitBindReply | State::Done | State::Failed => {
                Err(Socks5Error::HandshakeFinished)
            }
        }
    }

    /// Queues a method selection.
    fn select(&mut self, method: Method) {
        MethodSelection { method }.encode(&mut self.outbox);
    }
}
