//! `socks5`: the RFC 1928/1929 codecs and both handshake machines.
//!
//! Every input is used three ways:
//!
//! 1. **Codecs on the raw bytes.** Every decoder never panics; whatever decodes re-encodes to
//!    exactly the consumed bytes (and `encoded_len` agrees); `Incomplete { needed }` promises
//!    more than was given; strict prefixes of a valid message are `Incomplete`; a UDP datagram
//!    is never `Incomplete`.
//! 2. **Machines on the raw bytes.** A [`ServerHandshake`] (three policies) and a
//!    [`ClientHandshake`] (four set-ups) are fed the bytes whole, then cut into chunks: both
//!    feedings must give the same transmitted bytes, the same progress and the same leftover;
//!    a finished machine refuses more bytes.
//! 3. **Structured.** The bytes are read as fields ([`Case`]): the messages built from them
//!    round-trip, and a client and a server built from them talk to each other to the outcome
//!    the policy dictates (method, credentials, command, reply).

use std::net::SocketAddr;

use arbitrary::Unstructured;
use cloudproxy_core::socks5::{
    decode_udp_datagram, encode_udp_datagram, Address, ClientHandshake, ClientProgress, Command,
    Credentials, Greeting, Method, MethodSelection, Reply, ReplyCode, Request, ServerHandshake,
    ServerPolicy, ServerProgress, Socks5Error, UdpHeader, UserPassReply, UserPassRequest,
};

use super::input;

/// Chunk sizes the machines' input is cut into, cycled from an offset picked by its length.
const CHUNKS: &[usize] = &[1, 2, 3, 7, 1, 64, 4, 300, 5];

/// The target: see the module docs.
pub fn run(data: &[u8]) {
    check_codecs(data);
    check_machines(data);
    check_structured(data);
}

// ----- 1. codecs on raw bytes -----

/// Checks one codec on `input`.
macro_rules! check_codec {
    ($ty:ty, $input:expr) => {{
        let input: &[u8] = $input;
        match <$ty>::decode(input) {
            Ok((value, used)) => {
                assert!(used <= input.len(), "{}: used {used}", stringify!($ty));
                let mut out = Vec::new();
                value.encode(&mut out);
                assert_eq!(out, &input[..used], "{} {value:?} re-encodes differently", stringify!($ty));
                assert_eq!(value.encoded_len(), used, "{}: encoded_len", stringify!($ty));
                for cut in [0, 1, used / 2, used.saturating_sub(1)] {
                    if cut < used {
                        match <$ty>::decode(&input[..cut]) {
                            Err(Socks5Error::Incomplete { needed }) => assert!(needed > cut),
                            other => panic!(
                                "{}: a {cut}-byte prefix of a valid {used}-byte message gave {other:?}",
                                stringify!($ty)
                            ),
                        }
                    }
                }
            }
            Err(Socks5Error::Incomplete { needed }) => {
                assert!(needed > input.len(), "{}: Incomplete needs {needed}", stringify!($ty))
            }
            Err(err) => assert!(!err.to_string().is_empty()),
        }
    }};
}

fn check_codecs(data: &[u8]) {
    check_codec!(Greeting, data);
    check_codec!(MethodSelection, data);
    check_codec!(UserPassRequest, data);
    check_codec!(UserPassReply, data);
    check_codec!(Request, data);
    check_codec!(Reply, data);
    check_codec!(Address, data);
    check_codec!(UdpHeader, data);
    match decode_udp_datagram(data) {
        Ok((dst, payload)) => {
            let mut out = Vec::new();
            encode_udp_datagram(&dst, payload, &mut out);
            assert_eq!(out, data, "UDP datagram for {dst} re-encodes differently");
        }
        Err(err @ Socks5Error::Incomplete { .. }) => panic!("a datagram gave {err:?}"),
        Err(_) => {}
    }
}

// ----- 2. machines on raw bytes -----

fn credentials() -> Credentials {
    match Credentials::new("user", "pass") {
        Ok(c) => c,
        Err(err) => panic!("fixed credentials: {err}"),
    }
}

fn policies() -> [ServerPolicy; 3] {
    [
        ServerPolicy::default(),
        ServerPolicy {
            allow_no_auth: false,
            credentials: Some(credentials()),
            connect: true,
            bind: true,
            udp_associate: true,
        },
        ServerPolicy {
            allow_no_auth: true,
            credentials: Some(credentials()),
            connect: true,
            bind: true,
            udp_associate: false,
        },
    ]
}

fn clients() -> Vec<ClientHandshake> {
    let domain = Address::domain("example.com", 443).unwrap_or_else(|_| Address::unspecified());
    vec![
        ClientHandshake::new(
            None,
            Command::Connect,
            Address::Ip(SocketAddr::from(([1, 2, 3, 4], 80))),
        ),
        ClientHandshake::new(Some(credentials()), Command::Connect, domain),
        ClientHandshake::new(
            None,
            Command::Bind,
            Address::Ip(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 8080))),
        ),
        ClientHandshake::new(
            Some(credentials()),
            Command::UdpAssociate,
            Address::unspecified(),
        ),
    ]
}

/// The chunks `data` is cut into: whole, or cycling through [`CHUNKS`].
fn chunks(data: &[u8], whole: bool) -> Vec<&[u8]> {
    if whole {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    let mut sizes = CHUNKS.iter().cycle().skip(data.len() % CHUNKS.len());
    while !rest.is_empty() {
        let size = sizes.next().copied().unwrap_or(1).min(rest.len());
        out.push(&rest[..size]);
        rest = &rest[size..];
    }
    out
}

/// How a run of a machine ended.
#[derive(Debug, PartialEq, Eq)]
enum End<T> {
    /// Still waiting for bytes.
    Pending,
    /// Finished with a result and the bytes that follow the handshake in the stream.
    Done(T, Vec<u8>),
    /// Failed.
    Failed(Socks5Error),
}

/// What a machine did with its input.
#[derive(Debug, PartialEq, Eq)]
struct Run<T> {
    transmitted: Vec<u8>,
    bound: Vec<Reply>,
    end: End<T>,
}

fn run_server(policy: &ServerPolicy, data: &[u8], whole: bool) -> Run<Request> {
    let mut server = ServerHandshake::new(policy.clone());
    let mut transmitted = Vec::new();
    let pieces = chunks(data, whole);
    let mut end = End::Pending;
    for (i, piece) in pieces.iter().enumerate() {
        let result = server.handle_bytes(piece);
        transmitted.extend(server.poll_transmit().unwrap_or_default());
        match result {
            Ok(ServerProgress::Pending) => {}
            Ok(ServerProgress::Request { request, leftover }) => {
                let rest: Vec<u8> = leftover
                    .into_iter()
                    .chain(pieces[i + 1..].iter().flat_map(|p| p.iter().copied()))
                    .collect();
                end = End::Done(request, rest);
                break;
            }
            Err(err) => {
                end = End::Failed(err);
                break;
            }
        }
    }
    match &end {
        End::Done(request, _) => {
            assert_eq!(
                server.handle_bytes(b"x"),
                Err(Socks5Error::HandshakeFinished)
            );
            check_server_replies(&mut server, request.command);
        }
        End::Failed(_) => {
            assert_eq!(
                server.handle_bytes(b"x"),
                Err(Socks5Error::HandshakeFinished)
            );
            assert_eq!(
                server.reply(ReplyCode::Succeeded, Address::unspecified()),
                Err(Socks5Error::NotAwaitingReply)
            );
        }
        End::Pending => assert_eq!(
            server.reply(ReplyCode::Succeeded, Address::unspecified()),
            Err(Socks5Error::NotAwaitingReply)
        ),
    }
    Run {
        transmitted,
        bound: Vec::new(),
        end,
    }
}

/// After a request: a success reply (two for BIND) encodes as a reply, then no more replies.
fn check_server_replies(server: &mut ServerHandshake, command: Command) {
    let bound = Address::Ip(([10, 0, 0, 1], 5555).into());
    let replies = if command == Command::Bind { 2 } else { 1 };
    for _ in 0..replies {
        let bytes = match server.reply(ReplyCode::Succeeded, bound.clone()) {
            Ok(bytes) => bytes,
            Err(err) => panic!("reply to {command}: {err}"),
        };
        let expected = Reply {
            code: ReplyCode::Succeeded,
            bound: bound.clone(),
        };
        assert_eq!(Reply::decode(&bytes), Ok((expected, bytes.len())));
    }
    assert_eq!(
        server.reply(ReplyCode::Succeeded, bound),
        Err(Socks5Error::NotAwaitingReply)
    );
}

fn run_client(mut client: ClientHandshake, data: &[u8], whole: bool) -> Run<Reply> {
    let mut transmitted = client.poll_transmit().unwrap_or_default();
    let mut bound = Vec::new();
    let pieces = chunks(data, whole);
    let mut end = End::Pending;
    'feed: for (i, piece) in pieces.iter().enumerate() {
        let mut result = client.handle_bytes(piece);
        loop {
            transmitted.extend(client.poll_transmit().unwrap_or_default());
            match result {
                Ok(ClientProgress::Pending) => break,
                Ok(ClientProgress::Bound { reply }) => {
                    bound.push(reply);
                    // The bytes after the first reply stay buffered: go on with them.
                    result = client.handle_bytes(&[]);
                }
                Ok(ClientProgress::Done { reply, leftover }) => {
                    let rest: Vec<u8> = leftover
                        .into_iter()
                        .chain(pieces[i + 1..].iter().flat_map(|p| p.iter().copied()))
                        .collect();
                    end = End::Done(reply, rest);
                    break 'feed;
                }
                Err(err) => {
                    end = End::Failed(err);
                    break 'feed;
                }
            }
        }
    }
    assert!(bound.len() <= 1, "more than one BIND reply before the last");
    if !matches!(end, End::Pending) {
        assert!(client.is_finished());
        assert_eq!(
            client.handle_bytes(b"x"),
            Err(Socks5Error::HandshakeFinished)
        );
    }
    Run {
        transmitted,
        bound,
        end,
    }
}

fn check_machines(data: &[u8]) {
    for policy in &policies() {
        let whole = run_server(policy, data, true);
        let cut = run_server(policy, data, false);
        assert_eq!(
            whole, cut,
            "server ({policy:?}): chunking changed the outcome"
        );
    }
    for (i, client) in clients().into_iter().enumerate() {
        let whole = run_client(client.clone(), data, true);
        let cut = run_client(client, data, false);
        assert_eq!(
            whole, cut,
            "client set-up {i}: chunking changed the outcome"
        );
    }
}

// ----- 3. structured -----

/// What the structured part reads from the input.
#[derive(Clone, Debug)]
pub struct Case {
    /// The client's credentials, if it has any (and they are valid).
    pub client_credentials: Option<Credentials>,
    /// The client's command.
    pub command: Command,
    /// The client's target.
    pub target: Address,
    /// The server's policy.
    pub policy: ServerPolicy,
    /// The server's reply code.
    pub reply_code: ReplyCode,
    /// The server's bound address.
    pub bound: Address,
    /// A fragment number and a payload for the UDP header.
    pub frag: u8,
    /// The UDP payload.
    pub payload: Vec<u8>,
    /// Methods for a greeting.
    pub methods: Vec<u8>,
}

fn address(u: &mut Unstructured<'_>) -> Address {
    match input::tag(u, 3) {
        0 => Address::Ip(SocketAddr::from((input::array::<4>(u), input::be_u16(u)))),
        1 => Address::Ip(SocketAddr::from((input::array::<16>(u), input::be_u16(u)))),
        _ => {
            let name = input::short_bytes(u);
            let port = input::be_u16(u);
            Address::domain(name, port).unwrap_or_else(|_| Address::unspecified())
        }
    }
}

impl Case {
    /// Reads a case from the front of `data`.
    pub fn decode(data: &[u8]) -> Case {
        let u = &mut Unstructured::new(data);
        let client_credentials =
            Credentials::new(input::short_bytes(u), input::short_bytes(u)).ok();
        let command = match input::tag(u, 3) {
            0 => Command::Connect,
            1 => Command::Bind,
            _ => Command::UdpAssociate,
        };
        let target = address(u);
        let flags = input::byte(u);
        let server_credentials = match flags >> 5 {
            0..=2 => client_credentials.clone(),
            3..=5 => Credentials::new(input::short_bytes(u), input::short_bytes(u)).ok(),
            _ => None,
        };
        let policy = ServerPolicy {
            allow_no_auth: flags & 1 == 1,
            credentials: server_credentials,
            connect: flags & 2 == 2,
            bind: flags & 4 == 4,
            udp_associate: flags & 8 == 8,
        };
        Case {
            client_credentials,
            command,
            target,
            policy,
            reply_code: ReplyCode::from_u8(input::byte(u)),
            bound: address(u),
            frag: input::byte(u),
            payload: input::short_bytes(u),
            methods: input::short_bytes(u),
        }
    }
}

fn check_structured(data: &[u8]) {
    let case = Case::decode(data);
    check_round_trips(&case);
    check_pair(&case);
}

fn check_round_trips(case: &Case) {
    let request = Request {
        command: case.command,
        dst: case.target.clone(),
    };
    let reply = Reply {
        code: case.reply_code,
        bound: case.bound.clone(),
    };
    let header = UdpHeader {
        frag: case.frag,
        dst: case.target.clone(),
    };
    let mut bytes = Vec::new();
    request.encode(&mut bytes);
    assert_eq!(Request::decode(&bytes), Ok((request, bytes.len())));
    bytes.clear();
    reply.encode(&mut bytes);
    assert_eq!(Reply::decode(&bytes), Ok((reply, bytes.len())));
    bytes.clear();
    header.encode(&mut bytes);
    assert_eq!(UdpHeader::decode(&bytes), Ok((header, bytes.len())));
    bytes.clear();
    encode_udp_datagram(&case.target, &case.payload, &mut bytes);
    assert_eq!(
        decode_udp_datagram(&bytes),
        Ok((case.target.clone(), case.payload.as_slice()))
    );
    if let Some(credentials) = &case.client_credentials {
        let auth = UserPassRequest {
            credentials: credentials.clone(),
        };
        bytes.clear();
        auth.encode(&mut bytes);
        assert_eq!(UserPassRequest::decode(&bytes), Ok((auth, bytes.len())));
    }
    if let Ok(greeting) = Greeting::new(case.methods.iter().map(|&b| Method::from_u8(b)).collect())
    {
        bytes.clear();
        greeting.encode(&mut bytes);
        assert_eq!(Greeting::decode(&bytes), Ok((greeting, bytes.len())));
    }
}

/// A client and a server built from the case, talking until both stop.
fn check_pair(case: &Case) {
    let mut client = ClientHandshake::new(
        case.client_credentials.clone(),
        case.command,
        case.target.clone(),
    );
    let mut server = ServerHandshake::new(case.policy.clone());
    let (server_result, client_result) = negotiate(&mut client, &mut server);
    if refused_as_the_policy_says(case, &client, &server, &server_result, &client_result) {
        return;
    }
    let request = Request {
        command: case.command,
        dst: case.target.clone(),
    };
    assert_eq!(
        server_result,
        Ok(ServerProgress::Request {
            request,
            leftover: Vec::new()
        })
    );
    assert_eq!(client_result, Ok(ClientProgress::Pending));
    check_reply(case, &mut client, &mut server);
}

/// Greeting → selection (→ auth → verdict) → request: at most three exchanges, until one
/// side fails or the server has the request. Each side's last result.
fn negotiate(
    client: &mut ClientHandshake,
    server: &mut ServerHandshake,
) -> (
    Result<ServerProgress, Socks5Error>,
    Result<ClientProgress, Socks5Error>,
) {
    let mut server_result = Ok(ServerProgress::Pending);
    let mut client_result = Ok(ClientProgress::Pending);
    for _ in 0..3 {
        let Some(to_server) = client.poll_transmit() else {
            break;
        };
        server_result = server.handle_bytes(&to_server);
        if let Some(to_client) = server.poll_transmit() {
            client_result = client.handle_bytes(&to_client);
        }
        if server_result.is_err() || client_result.is_err() {
            break;
        }
        if matches!(server_result, Ok(ServerProgress::Request { .. })) {
            break;
        }
    }
    (server_result, client_result)
}

/// Whether the policy refuses the case (no acceptable method, bad credentials, an
/// unsupported command), checking that both sides ended with that refusal and agree on the
/// method.
fn refused_as_the_policy_says(
    case: &Case,
    client: &ClientHandshake,
    server: &ServerHandshake,
    server_result: &Result<ServerProgress, Socks5Error>,
    client_result: &Result<ClientProgress, Socks5Error>,
) -> bool {
    // What the policy dictates.
    let method = if case.policy.credentials.is_some() && case.client_credentials.is_some() {
        Some(Method::UserPass)
    } else if case.policy.allow_no_auth {
        Some(Method::NoAuth)
    } else {
        None
    };
    let authenticated = match method {
        Some(Method::UserPass) => case.policy.credentials == case.client_credentials,
        Some(_) => true,
        None => false,
    };
    let Some(method) = method else {
        assert_eq!(*server_result, Err(Socks5Error::NoAcceptableMethod));
        assert_eq!(*client_result, Err(Socks5Error::NoAcceptableMethod));
        return true;
    };
    assert_eq!(server.method(), Some(method), "server's method");
    assert_eq!(client.method(), Some(method), "client's method");
    if !authenticated {
        assert_eq!(*server_result, Err(Socks5Error::BadCredentials));
        assert_eq!(
            *client_result,
            Err(Socks5Error::AuthRejected {
                status: UserPassReply::FAILURE
            })
        );
        return true;
    }
    if !case.policy.supports(case.command) {
        assert_eq!(
            *server_result,
            Err(Socks5Error::UnsupportedCommand(case.command))
        );
        assert_eq!(
            *client_result,
            Err(Socks5Error::ServerRefused(ReplyCode::CommandNotSupported))
        );
        return true;
    }
    false
}

/// The server's reply (two for a successful BIND, the second followed by the payload) and
/// what the client makes of it.
fn check_reply(case: &Case, client: &mut ClientHandshake, server: &mut ServerHandshake) {
    let reply = Reply {
        code: case.reply_code,
        bound: case.bound.clone(),
    };
    let first = match server.reply(reply.code, reply.bound.clone()) {
        Ok(bytes) => bytes,
        Err(err) => panic!("server reply: {err}"),
    };
    let got = client.handle_bytes(&first);
    if !reply.code.is_success() {
        assert_eq!(got, Err(Socks5Error::ServerRefused(reply.code)));
        return;
    }
    if case.command == Command::Bind {
        assert_eq!(got, Ok(ClientProgress::Bound { reply }));
        let second = match server.reply(ReplyCode::Succeeded, case.target.clone()) {
            Ok(bytes) => bytes,
            Err(err) => panic!("second BIND reply: {err}"),
        };
        let mut stream = second;
        stream.extend_from_slice(&case.payload);
        let done = client.handle_bytes(&stream);
        let peer = Reply {
            code: ReplyCode::Succeeded,
            bound: case.target.clone(),
        };
        assert_eq!(
            done,
            Ok(ClientProgress::Done {
                reply: peer,
                leftover: case.payload.clone()
            })
        );
        return;
    }
    assert_eq!(
        got,
        Ok(ClientProgress::Done {
            reply,
            leftover: Vec::new()
        })
    );
}
