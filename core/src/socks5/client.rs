//! The client end of the handshake: what the SDK side runs against an enterprise SOCKS5 proxy.

use super::{
    complete, Address, Command, Credentials, Greeting, Method, MethodSelection, Reply, Request,
    Socks5Error, UserPassReply, UserPassRequest,
};

/// What [`ClientHandshake::handle_bytes`] made of the server's bytes so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientProgress {
    /// Waiting for more bytes from the server (send whatever
    /// [`ClientHandshake::poll_transmit`] has first).
    Pending,
    /// BIND only: the first reply arrived; the server listens on `reply.bound` (tell the peer
    /// to connect there). Keep feeding bytes until the second reply. Bytes already received
    /// after this reply stay buffered: call `handle_bytes` again (an empty slice will do).
    Bound {
        /// The first, successful, reply.
        reply: Reply,
    },
    /// The handshake succeeded; the stream is now a tunnel (or, for UDP ASSOCIATE, the control
    /// connection to keep open while datagrams go to `reply.bound`).
    Done {
        /// The server's (last) successful reply.
        reply: Reply,
        /// Bytes that followed the reply in the input: early tunnel data for the caller.
        leftover: Vec<u8>,
    },
}

// State diagram of the client machine (bytes are what the server sends):
//
//   new(): queue greeting  05 01 00  (or 05 02 00 02 with credentials)
//     │
//     ▼
//   AwaitMethod ──05 FF────────────────────────────────► Failed(NoAcceptableMethod)
//     │   │     ──05 <method not offered>──────────────► Failed(UnexpectedMethod)
//     │   │ 05 02: queue 01 ULEN UNAME PLEN PASSWD
//     │   ▼
//     │ AwaitAuth ──01 <status ≠ 00>───────────────────► Failed(AuthRejected)
//     │   │ 01 00
//     │   │
//     │ 05 00 / 01 00: queue request  05 CMD 00 ATYP ADDR PORT
//     ▼   ▼
//   AwaitReply ──05 <REP ≠ 00> ...─────────────────────► Failed(ServerRefused)
//     │   │ 05 00 ... and CMD = BIND: → ClientProgress::Bound
//     │   ▼
//     │ AwaitBindReply ──05 <REP ≠ 00> ...─────────────► Failed(ServerRefused)
//     │   │ 05 00 ...
//     ▼   ▼
//   Done: → ClientProgress::Done { reply, leftover }
//
//   Any state: malformed bytes ─► Failed(the decode error).
//   Done, Failed: handle_bytes ─► Err(HandshakeFinished).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitMethod,
    AwaitAuth,
    AwaitReply,
    AwaitBindReply,
    Done,
    Failed,
}

/// The sans-IO client handshake: greeting, optional username/password, request, reply(s).
///
/// Drive it by writing out [`ClientHandshake::poll_transmit`] and feeding every byte read from
/// the server to [`ClientHandshake::handle_bytes`], in any chunking, until it returns
/// [`ClientProgress::Done`] or an error.
///
/// ```
/// use cloudproxy_core::socks5::{Address, ClientHandshake, ClientProgress, Command};
///
/// let target = Address::domain("example.com", 443).unwrap();
/// let mut client = ClientHandshake::new(None, Command::Connect, target);
/// assert_eq!(client.poll_transmit().unwrap(), [0x05, 0x01, 0x00]);
/// assert_eq!(client.handle_bytes(&[0x05, 0x00]).unwrap(), ClientProgress::Pending);
/// let request = client.poll_transmit().unwrap();
/// assert_eq!(&request[..5], [0x05, 0x01, 0x00, 0x03, 11]);
/// let progress = client.handle_bytes(&[5, 0, 0, 1, 10, 0, 0, 1, 0x1F, 0x90, b'h', b'i']).unwrap();
/// let ClientProgress::Done { reply, leftover } = progress else { panic!() };
/// assert_eq!(reply.bound.to_string(), "10.0.0.1:8080");
/// assert_eq!(leftover, b"hi");
/// ```
#[derive(Clone, Debug)]
pub struct ClientHandshake {
    credentials: Option<Credentials>,
    request: Request,
    state: State,
    method: Option<Method>,
    /// Bytes received but not decoded yet. Between calls this is a strict prefix of one
    /// message of the current phase, so it stays under [`Reply::MAX_LEN`] bytes; the one
    /// exception is right after [`ClientProgress::Bound`], when it still holds the rest of
    /// that call's input (bounded by the input).
    inbox: Vec<u8>,
    /// Bytes for the server, until `poll_transmit` takes them.
    outbox: Vec<u8>,
}

impl ClientHandshake {
    /// A handshake that will ask the server to run `command` towards `target`, offering
    /// NO AUTHENTICATION and, when `credentials` are given, USERNAME/PASSWORD. The greeting is
    /// queued at once.
    pub fn new(credentials: Option<Credentials>, command: Command, target: Address) -> Self {
        let methods = match credentials {
            Some(_) => vec![Method::NoAuth, Method::UserPass],
            None => vec![Method::NoAuth],
        };
        let greeting = Greeting { methods };
        let mut outbox = Vec::with_capacity(greeting.encoded_len());
        greeting.encode(&mut outbox);
        ClientHandshake {
            credentials,
            request: Request {
                command,
                dst: target,
            },
            state: State::AwaitMethod,
            method: None,
            inbox: Vec::new(),
            outbox,
        }
    }

    /// The bytes to write to the server next, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.outbox.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.outbox))
        }
    }

    /// The method the server selected, once it has.
    pub fn method(&self) -> Option<Method> {
        self.method
    }

    /// Whether the machine is done or failed and takes no more bytes.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Failed)
    }

    /// Consumes bytes from the server, which may hold part of a message, or several.
    ///
    /// After an error the machine is failed: the caller closes the connection.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<ClientProgress, Socks5Error> {
        if self.is_finished() {
            return Err(Socks5Error::HandshakeFinished);
        }
        self.inbox.extend_from_slice(bytes);
        let mut inbox = std::mem::take(&mut self.inbox);
        let mut pos = 0;
        let result = loop {
            // `step` consumes at most the bytes it is given, so `pos <= inbox.len()`.
            match self.step(inbox.get(pos..).unwrap_or_default()) {
                Ok(None) => break Ok(ClientProgress::Pending),
                Ok(Some((n, None))) => pos += n,
                Ok(Some((n, Some(progress)))) => {
                    pos += n;
                    break Ok(progress);
                }
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(ClientProgress::Done { reply, .. }) => {
                self.state = State::Done;
                let leftover = inbox.split_off(pos);
                Ok(ClientProgress::Done { reply, leftover })
            }
            Ok(progress) => {
                inbox.drain(..pos);
                self.inbox = inbox;
                Ok(progress)
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// Decodes one message of the current phase from `input` and acts on it. `Ok(None)`: the
    /// message is incomplete; `Ok(Some((consumed, progress)))`: it was handled, and `progress`
    /// is what to report now, if anything (the caller fills in `leftover`).
    fn step(
        &mut self,
        input: &[u8],
    ) -> Result<Option<(usize, Option<ClientProgress>)>, Socks5Error> {
        match self.state {
            State::AwaitMethod => {
                let Some((selection, n)) = complete(MethodSelection::decode(input))? else {
                    return Ok(None);
                };
                match (selection.method, &self.credentials) {
                    (Method::NoAcceptable, _) => return Err(Socks5Error::NoAcceptableMethod),
                    (Method::NoAuth, _) => self.send_request(),
                    (Method::UserPass, Some(credentials)) => {
                        let auth = UserPassRequest {
                            credentials: credentials.clone(),
                        };
                        auth.encode(&mut self.outbox);
                        self.state = State::AwaitAuth;
                    }
                    (other, _) => return Err(Socks5Error::UnexpectedMethod(other)),
                }
                self.method = Some(selection.method);
                Ok(Some((n, None)))
            }
            State::AwaitAuth => {
                let Some((reply, n)) = complete(UserPassReply::decode(input))? else {
                    return Ok(None);
                };
                if !reply.is_success() {
                    return Err(Socks5Error::AuthRejected {
                        status: reply.status,
                    });
                }
                self.send_request();
                Ok(Some((n, None)))
            }
            State::AwaitReply | State::AwaitBindReply => {
                let Some((reply, n)) = complete(Reply::decode(input))? else {
                    return Ok(None);
                };
                if !reply.code.is_success() {
                    return Err(Socks5Error::ServerRefused(reply.code));
                }
                if self.state == State::AwaitReply && self.request.command == Command::Bind {
                    self.state = State::AwaitBindReply;
                    return Ok(Some((n, Some(ClientProgress::Bound { reply }))));
                }
                let leftover = Vec::new(); // filled in by `handle_bytes`
                Ok(Some((n, Some(ClientProgress::Done { reply, leftover }))))
            }
            State::Done | State::Failed => Err(Socks5Error::HandshakeFinished),
        }
    }

    fn send_request(&mut self) {
        self.request.encode(&mut self.outbox);
        self.state = State::AwaitReply;
    }
}
