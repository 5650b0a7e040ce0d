//! The handshake machines: alone against scripted peers, and against each other.

use super::*;

fn bytes_of<T: Codec>(values: &[T]) -> Vec<u8> {
    values.iter().flat_map(to_bytes).collect()
}

fn selection(method: Method) -> Vec<u8> {
    to_bytes(&MethodSelection { method })
}

fn ok_reply(bound: &Address) -> Reply {
    Reply {
        code: ReplyCode::Succeeded,
        bound: bound.clone(),
    }
}

fn policy_all(credentials: Option<Credentials>) -> ServerPolicy {
    ServerPolicy {
        allow_no_auth: credentials.is_none(),
        credentials,
        connect: true,
        bind: true,
        udp_associate: true,
    }
}

/// How a client run ended.
#[derive(Debug, PartialEq)]
enum ClientOutcome {
    /// All bytes were delivered and the client still waits.
    Stuck,
    /// `Done`: the `Bound` replies seen first, the final reply, and every byte after it
    /// (`leftover` and the bytes not delivered yet).
    Done {
        bound: Vec<Reply>,
        reply: Reply,
        after: Vec<u8>,
    },
}

/// Feeds `input` to `client` in `sizes` chunks; also returns all it transmitted.
fn run_client(
    client: &mut ClientHandshake,
    input: &[u8],
    sizes: &[usize],
) -> (Result<ClientOutcome, Socks5Error>, Vec<u8>) {
    let mut sent = client.poll_transmit().unwrap_or_default();
    let mut bound = Vec::new();
    let mut pieces = chunks(input, sizes);
    let mut delivered = 0;
    let outcome = loop {
        let piece = pieces.next();
        let exhausted = piece.is_none();
        let piece = piece.unwrap_or(&[]);
        delivered += piece.len();
        let progress = client.handle_bytes(piece);
        sent.extend(client.poll_transmit().unwrap_or_default());
        match progress {
            Ok(ClientProgress::Pending) if exhausted => break Ok(ClientOutcome::Stuck),
            Ok(ClientProgress::Pending) => {}
            Ok(ClientProgress::Bound { reply }) => bound.push(reply),
            Ok(ClientProgress::Done {
                reply,
                mut leftover,
            }) => {
                leftover.extend_from_slice(&input[delivered..]);
                break Ok(ClientOutcome::Done {
                    bound,
                    reply,
                    after: leftover,
                });
            }
            Err(e) => break Err(e),
        }
    };
    if outcome.is_err() || matches!(outcome, Ok(ClientOutcome::Done { .. })) {
        assert_eq!(
            client.handle_bytes(&[5]),
            Err(Socks5Error::HandshakeFinished)
        );
    }
    (outcome, sent)
}

/// How a server run ended: the request with every byte after it, or `None` while waiting.
type ServerEnd = Result<Option<(Request, Vec<u8>)>, Socks5Error>;

/// How a client ended in [`converse`]: the `Bound` replies, the final reply, the bytes after.
type ClientEnd = Result<(Vec<Reply>, Reply, Vec<u8>), Socks5Error>;

/// Feeds `input` to `server` in `sizes` chunks; returns the request with every byte after it,
/// or `None` if the server still waits, and all it transmitted.
fn run_server(server: &mut ServerHandshake, input: &[u8], sizes: &[usize]) -> (ServerEnd, Vec<u8>) {
    let mut sent = Vec::new();
    let mut delivered = 0;
    let mut outcome = Ok(None);
    for piece in chunks(input, sizes) {
        delivered += piece.len();
        let progress = server.handle_bytes(piece);
        sent.extend(server.poll_transmit().unwrap_or_default());
        match progress {
            Ok(ServerProgress::Pending) => {}
            Ok(ServerProgress::Request {
                request,
                mut leftover,
            }) => {
                leftover.extend_from_slice(&input[delivered..]);
                outcome = Ok(Some((request, leftover)));
                break;
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    if !matches!(outcome, Ok(None)) {
        assert_eq!(
            server.handle_bytes(&[5]),
            Err(Socks5Error::HandshakeFinished)
        );
    }
    (outcome, sent)
}

/// What the server's driver answers: the bound address, and for BIND the peer's.
const LISTEN: ([u8; 4], u16) = ([10, 9, 9, 9], 5000);
const PEER: ([u8; 4], u16) = ([203, 0, 113, 5], 40000);

/// Two machines over in-memory streams cut in `sizes` chunks. The server's driver answers a
/// request with success and `bound` (for BIND: `LISTEN`, then `PEER`), then sends
/// `server_early`. Returns how each side ended (`None`: still waiting).
fn converse(
    client: &mut ClientHandshake,
    server: &mut ServerHandshake,
    sizes: &[usize],
    bound: &Address,
    server_early: &[u8],
) -> (Option<ClientEnd>, Option<Result<Request, Socks5Error>>) {
    let mut sizes = sizes.iter().cycle();
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let (mut client_end, mut server_end) = (None, None);
    let mut bound_replies = Vec::new();
    let mut poke_client = false;
    loop {
        let mut progressed = false;
        to_server.extend(client.poll_transmit().unwrap_or_default());
        if server_end.is_none() && !to_server.is_empty() {
            let n = (*sizes.next().unwrap()).min(to_server.len());
            let piece: Vec<u8> = to_server.drain(..n).collect();
            match server.handle_bytes(&piece) {
                Ok(ServerProgress::Pending) => {}
                Ok(ServerProgress::Request { request, leftover }) => {
                    assert!(leftover.is_empty() && to_server.is_empty());
                    if request.command == Command::Bind {
                        let listen = v4(LISTEN.0, LISTEN.1);
                        to_client.extend(server.reply(ReplyCode::Succeeded, listen).unwrap());
                        let peer = v4(PEER.0, PEER.1);
                        to_client.extend(server.reply(ReplyCode::Succeeded, peer).unwrap());
                    } else {
                        to_client
                            .extend(server.reply(ReplyCode::Succeeded, bound.clone()).unwrap());
                    }
                    assert_eq!(
                        server.reply(ReplyCode::Succeeded, bound.clone()),
                        Err(Socks5Error::NotAwaitingReply)
                    );
                    to_client.extend_from_slice(server_early);
                    server_end = Some(Ok(request));
                }
                Err(e) => server_end = Some(Err(e)),
            }
            progressed = true;
        }
        to_client.extend(server.poll_transmit().unwrap_or_default());
        if client_end.is_none() && (!to_client.is_empty() || poke_client) {
            let n = (*sizes.next().unwrap()).min(to_client.len());
            let piece: Vec<u8> = to_client.drain(..n).collect();
            poke_client = false;
            match client.handle_bytes(&piece) {
                Ok(ClientProgress::Pending) => {}
                Ok(ClientProgress::Bound { reply }) => {
                    bound_replies.push(reply);
                    poke_client = true;
                }
                Ok(ClientProgress::Done {
                    reply,
                    mut leftover,
                }) => {
                    leftover.append(&mut to_client);
                    client_end = Some(Ok((std::mem::take(&mut bound_replies), reply, leftover)));
                }
                Err(e) => client_end = Some(Err(e)),
            }
            progressed = true;
        }
        if !progressed {
            return (client_end, server_end);
        }
    }
}

/// Prefixes that reach each phase of either machine, to aim arbitrary bytes past the first.
fn input_for_machines() -> impl Strategy<Value = Vec<u8>> {
    let prefixes: Vec<&'static [u8]> = vec![
        b"",
        b"\x05",
        b"\x05\x00",
        b"\x05\x02",
        b"\x05\x02\x01\x00",
        b"\x05\x01\x00",
        b"\x05\x02\x00\x02",
        b"\x05\x02\x00\x02\x01\x04user\x04pass",
        b"\x05\x01\x00\x05\x02\x00",
    ];
    (
        proptest::sample::select(prefixes),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(prefix, tail)| [prefix, &tail[..]].concat())
}

#[test]
fn client_no_auth_all_at_once() {
    let target = domain("example.com", 443);
    let mut client = ClientHandshake::new(None, Command::Connect, target.clone());
    assert_eq!(client.poll_transmit().unwrap(), [0x05, 0x01, 0x00]);
    assert_eq!(client.poll_transmit(), None);
    let bound = v4([10, 0, 0, 1], 1080);
    let input = [
        selection(Method::NoAuth),
        to_bytes(&ok_reply(&bound)),
        b"early".to_vec(),
    ]
    .concat();
    let progress = client.handle_bytes(&input).unwrap();
    assert_eq!(
        progress,
        ClientProgress::Done {
            reply: ok_reply(&bound),
            leftover: b"early".to_vec()
        }
    );
    let request = Request {
        command: Command::Connect,
        dst: target,
    };
    assert_eq!(client.poll_transmit().unwrap(), to_bytes(&request));
    assert_eq!(client.method(), Some(Method::NoAuth));
    assert!(client.is_finished());
}

#[test]
fn client_user_pass_step_by_step() {
    let creds = Credentials::new("user", "pass").unwrap();
    let mut client = ClientHandshake::new(Some(creds), Command::Connect, v4([1, 2, 3, 4], 80));
    assert_eq!(client.poll_transmit().unwrap(), [0x05, 0x02, 0x00, 0x02]);
    assert_eq!(client.handle_bytes(&[0x05]), Ok(ClientProgress::Pending));
    assert_eq!(client.poll_transmit(), None);
    assert_eq!(client.handle_bytes(&[0x02]), Ok(ClientProgress::Pending));
    assert_eq!(client.poll_transmit().unwrap(), b"\x01\x04user\x04pass");
    assert_eq!(
        client.handle_bytes(&[0x01, 0x00]),
        Ok(ClientProgress::Pending)
    );
    assert_eq!(
        client.poll_transmit().unwrap(),
        [0x05, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0x00, 0x50]
    );
    let reply = [0x05, 0x00, 0x00, 0x01, 9, 9, 9, 9, 0x00, 0x01];
    assert_eq!(
        client.handle_bytes(&reply[..9]),
        Ok(ClientProgress::Pending)
    );
    let Ok(ClientProgress::Done { reply, leftover }) = client.handle_bytes(&reply[9..]) else {
        panic!("not done");
    };
    assert_eq!(reply, ok_reply(&v4([9, 9, 9, 9], 1)));
    assert!(leftover.is_empty());
}

#[test]
fn client_failures() {
    let target = v4([1, 2, 3, 4], 80);
    let creds = Credentials::new("u", "p").unwrap();
    let cases: Vec<(Option<Credentials>, Command, Vec<u8>, Socks5Error)> = vec![
        (
            None,
            Command::Connect,
            vec![0x05, 0xFF],
            Socks5Error::NoAcceptableMethod,
        ),
        (
            None,
            Command::Connect,
            vec![0x05, 0x02],
            Socks5Error::UnexpectedMethod(Method::UserPass),
        ),
        (
            Some(creds.clone()),
            Command::Connect,
            vec![0x05, 0x01],
            Socks5Error::UnexpectedMethod(Method::Gssapi),
        ),
        (
            Some(creds.clone()),
            Command::Connect,
            vec![0x05, 0x02, 0x01, 0x01],
            Socks5Error::AuthRejected { status: 1 },
        ),
        (
            Some(creds),
            Command::Connect,
            vec![0x05, 0x02, 0x05, 0x00],
            Socks5Error::BadAuthVersion { found: 5 },
        ),
        (
            None,
            Command::Connect,
            vec![0x04, 0x00],
            Socks5Error::BadVersion { found: 4 },
        ),
        (
            None,
            Command::UdpAssociate,
            [
                &[0x05, 0x00][..],
                &to_bytes(&Reply::unbound(ReplyCode::CommandNotSupported)),
            ]
            .concat(),
            Socks5Error::ServerRefused(ReplyCode::CommandNotSupported),
        ),
        (
            None,
            Command::Connect,
            vec![0x05, 0x00, 0x05, 0x00, 0x01],
            Socks5Error::BadReserved { found: 1 },
        ),
        (
            None,
            Command::Connect,
            vec![0x05, 0x00, 0x05, 0x00, 0x00, 0x07],
            Socks5Error::UnknownAddressType(7),
        ),
    ];
    for (creds, command, input, error) in cases {
        let mut client = ClientHandshake::new(creds, command, target.clone());
        let (outcome, _) = run_client(&mut client, &input, &[1]);
        assert_eq!(outcome, Err(error.clone()), "{input:02x?}");
        assert!(client.is_finished());
    }
}

#[test]
fn client_bind_two_replies() {
    let mut client = ClientHandshake::new(None, Command::Bind, v4([192, 0, 2, 1], 21));
    let (listen, peer) = (v4(LISTEN.0, LISTEN.1), v4(PEER.0, PEER.1));
    let input = [
        selection(Method::NoAuth),
        bytes_of(&[ok_reply(&listen), ok_reply(&peer)]),
        b"data".to_vec(),
    ]
    .concat();
    assert_eq!(
        client.handle_bytes(&input),
        Ok(ClientProgress::Bound {
            reply: ok_reply(&listen)
        })
    );
    assert_eq!(
        client.handle_bytes(&[]),
        Ok(ClientProgress::Done {
            reply: ok_reply(&peer),
            leftover: b"data".to_vec()
        })
    );
    // A refused second reply fails the handshake.
    let mut client = ClientHandshake::new(None, Command::Bind, v4([192, 0, 2, 1], 21));
    let refused = Reply::unbound(ReplyCode::ConnectionRefused);
    let input = [
        selection(Method::NoAuth),
        bytes_of(&[ok_reply(&listen), refused]),
    ]
    .concat();
    let (outcome, _) = run_client(&mut client, &input, &[3]);
    assert_eq!(
        outcome,
        Err(Socks5Error::ServerRefused(ReplyCode::ConnectionRefused))
    );
}

#[test]
fn server_error_replies() {
    let user_pass = ServerPolicy {
        allow_no_auth: false,
        credentials: Some(Credentials::new("user", "pass").unwrap()),
        ..ServerPolicy::default()
    };
    let no_udp = ServerPolicy {
        udp_associate: false,
        ..ServerPolicy::default()
    };
    let reply_with = |code| to_bytes(&Reply::unbound(code));
    let cases: Vec<(ServerPolicy, &[u8], Vec<u8>, Socks5Error)> = vec![
        // Not SOCKS5: nothing to say.
        (
            ServerPolicy::default(),
            b"\x04\x01\x00\x50",
            vec![],
            Socks5Error::BadVersion { found: 4 },
        ),
        (
            ServerPolicy::default(),
            b"\x05\x00",
            vec![0x05, 0xFF],
            Socks5Error::ZeroMethods,
        ),
        (
            ServerPolicy::default(),
            b"\x05\x01\x02",
            vec![0x05, 0xFF],
            Socks5Error::NoAcceptableMethod,
        ),
        (
            user_pass.clone(),
            b"\x05\x01\x00",
            vec![0x05, 0xFF],
            Socks5Error::NoAcceptableMethod,
        ),
        (
            user_pass.clone(),
            b"\x05\x02\x00\x02\x01\x04user\x04PASS",
            vec![0x05, 0x02, 0x01, 0x01],
            Socks5Error::BadCredentials,
        ),
        (
            user_pass.clone(),
            b"\x05\x01\x02\x01\x00",
            vec![0x05, 0x02, 0x01, 0x01],
            Socks5Error::EmptyUsername,
        ),
        (
            user_pass,
            b"\x05\x01\x02\x05\x04user\x04pass",
            vec![0x05, 0x02, 0x01, 0x01],
            Socks5Error::BadAuthVersion { found: 5 },
        ),
        (
            no_udp,
            b"\x05\x01\x00\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00",
            [
                &[0x05, 0x00][..],
                &reply_with(ReplyCode::CommandNotSupported),
            ]
            .concat(),
            Socks5Error::UnsupportedCommand(Command::UdpAssociate),
        ),
        (
            ServerPolicy::default(),
            b"\x05\x01\x00\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00",
            [
                &[0x05, 0x00][..],
                &reply_with(ReplyCode::CommandNotSupported),
            ]
            .concat(),
            Socks5Error::UnsupportedCommand(Command::Bind),
        ),
        (
            ServerPolicy::default(),
            b"\x05\x01\x00\x05\x09",
            [
                &[0x05, 0x00][..],
                &reply_with(ReplyCode::CommandNotSupported),
            ]
            .concat(),
            Socks5Error::UnknownCommand(9),
        ),
        (
            ServerPolicy::default(),
            b"\x05\x01\x00\x05\x01\x00\x02",
            [
                &[0x05, 0x00][..],
                &reply_with(ReplyCode::AddressTypeNotSupported),
            ]
            .concat(),
            Socks5Error::UnknownAddressType(2),
        ),
        (
            ServerPolicy::default(),
            b"\x05\x01\x00\x05\x01\x01",
            [&[0x05, 0x00][..], &reply_with(ReplyCode::GeneralFailure)].concat(),
            Socks5Error::BadReserved { found: 1 },
        ),
        (
            ServerPolicy::default(),
            b"\x05\x01\x00\x05\x01\x00\x03\x00",
            [&[0x05, 0x00][..], &reply_with(ReplyCode::GeneralFailure)].concat(),
            Socks5Error::EmptyDomain,
        ),
    ];
    for (policy, input, expected_sent, error) in cases {
        for size in [1, 2, 64] {
            let mut server = ServerHandshake::new(policy.clone());
            let (outcome, sent) = run_server(&mut server, input, &[size]);
            assert_eq!(outcome, Err(error.clone()), "{input:02x?}");
            assert_eq!(sent, expected_sent, "{input:02x?}");
            assert_eq!(
                server.reply(ReplyCode::Succeeded, Address::unspecified()),
                Err(Socks5Error::NotAwaitingReply)
            );
        }
    }
}

#[test]
fn server_user_pass_and_early_data() {
    let creds = Credentials::new("user", "pass").unwrap();
    let mut server = ServerHandshake::new(ServerPolicy {
        credentials: Some(creds),
        ..ServerPolicy::default()
    });
    // A client that pipelines everything, with early data.
    let input = b"\x05\x02\x00\x02\x01\x04user\x04pass\x05\x01\x00\x03\x0bexample.com\x01\xbbGET /";
    let Ok(ServerProgress::Request { request, leftover }) = server.handle_bytes(input) else {
        panic!("no request");
    };
    assert_eq!(server.poll_transmit().unwrap(), [0x05, 0x02, 0x01, 0x00]);
    assert_eq!(server.method(), Some(Method::UserPass));
    assert_eq!(request.dst, domain("example.com", 443));
    assert_eq!(leftover, b"GET /");
    assert_eq!(
        server.handle_bytes(b"more"),
        Err(Socks5Error::HandshakeFinished)
    );
    let reply = server
        .reply(ReplyCode::HostUnreachable, Address::unspecified())
        .unwrap();
    assert_eq!(reply, [0x05, 0x04, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        server.reply(ReplyCode::Succeeded, Address::unspecified()),
        Err(Socks5Error::NotAwaitingReply)
    );
}

#[test]
fn server_prefers_user_pass_when_offered() {
    let policy = ServerPolicy {
        credentials: Some(Credentials::new("u", "p").unwrap()),
        ..ServerPolicy::default()
    };
    for (greeting, chosen) in [
        (&b"\x05\x02\x00\x02"[..], Method::UserPass),
        (b"\x05\x01\x00", Method::NoAuth),
    ] {
        let mut server = ServerHandshake::new(policy.clone());
        assert_eq!(server.handle_bytes(greeting), Ok(ServerProgress::Pending));
        assert_eq!(server.poll_transmit().unwrap(), selection(chosen));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn client_completes_under_any_chunking(
        credentials in proptest::option::of(credentials()),
        server_wants_auth in any::<bool>(),
        command in command(),
        target in address(),
        bound in address(),
        early in proptest::collection::vec(any::<u8>(), 0..40),
        sizes in chunking(),
    ) {
        let auth = credentials.clone().filter(|_| server_wants_auth);
        let mut client = ClientHandshake::new(credentials.clone(), command, target.clone());
        let mut script = selection(if auth.is_some() { Method::UserPass } else { Method::NoAuth });
        if auth.is_some() {
            script.extend(to_bytes(&UserPassReply { status: 0 }));
        }
        let mut bound_replies = vec![];
        if command == Command::Bind {
            bound_replies.push(ok_reply(&v4(LISTEN.0, LISTEN.1)));
            script.extend(to_bytes(&bound_replies[0]));
        }
        script.extend(to_bytes(&ok_reply(&bound)));
        script.extend(&early);
        let (outcome, sent) = run_client(&mut client, &script, &sizes);
        prop_assert_eq!(outcome, Ok(ClientOutcome::Done { bound: bound_replies, reply: ok_reply(&bound), after: early }));
        let methods = match credentials {
            Some(_) => vec![Method::NoAuth, Method::UserPass],
            None => vec![Method::NoAuth],
        };
        let mut expected = to_bytes(&Greeting::new(methods).unwrap());
        if let Some(credentials) = auth {
            expected.extend(to_bytes(&UserPassRequest { credentials }));
        }
        expected.extend(to_bytes(&Request { command, dst: target }));
        prop_assert_eq!(sent, expected);
    }

    #[test]
    fn server_completes_under_any_chunking(
        credentials in proptest::option::of(credentials()),
        request in request(),
        early in proptest::collection::vec(any::<u8>(), 0..40),
        sizes in chunking(),
    ) {
        let mut server = ServerHandshake::new(policy_all(credentials.clone()));
        let mut input = to_bytes(&Greeting::new(vec![Method::NoAuth, Method::UserPass]).unwrap());
        let mut expected_sent = selection(match credentials {
            Some(_) => Method::UserPass,
            None => Method::NoAuth,
        });
        if let Some(credentials) = credentials {
            input.extend(to_bytes(&UserPassRequest { credentials }));
            expected_sent.extend([0x01, 0x00]);
        }
        input.extend(to_bytes(&request));
        input.extend(&early);
        let (outcome, sent) = run_server(&mut server, &input, &sizes);
        prop_assert_eq!(outcome, Ok(Some((request, early))));
        prop_assert_eq!(sent, expected_sent);
    }

    #[test]
    fn machines_complete_together(
        credentials in proptest::option::of(credentials()),
        command in command(),
        target in address(),
        bound in address(),
        server_early in proptest::collection::vec(any::<u8>(), 0..40),
        sizes in chunking(),
    ) {
        let mut client = ClientHandshake::new(credentials.clone(), command, target.clone());
        let mut server = ServerHandshake::new(policy_all(credentials.clone()));
        let (client_end, server_end) = converse(&mut client, &mut server, &sizes, &bound, &server_early);
        prop_assert_eq!(server_end, Some(Ok(Request { command, dst: target })));
        let expected = if command == Command::Bind {
            (vec![ok_reply(&v4(LISTEN.0, LISTEN.1))], ok_reply(&v4(PEER.0, PEER.1)), server_early)
        } else {
            (vec![], ok_reply(&bound), server_early)
        };
        prop_assert_eq!(client_end, Some(Ok(expected)));
        let method = if credentials.is_some() { Method::UserPass } else { Method::NoAuth };
        prop_assert_eq!(client.method(), Some(method));
        prop_assert_eq!(server.method(), Some(method));
    }

    #[test]
    fn udp_associate_refused_with_reply_7(
        credentials in proptest::option::of(credentials()),
        target in address(),
        sizes in chunking(),
    ) {
        let mut client = ClientHandshake::new(credentials.clone(), Command::UdpAssociate, target);
        let policy = ServerPolicy { udp_associate: false, ..policy_all(credentials) };
        let mut server = ServerHandshake::new(policy);
        let (client_end, server_end) = converse(&mut client, &mut server, &sizes, &Address::unspecified(), b"");
        prop_assert_eq!(client_end, Some(Err(Socks5Error::ServerRefused(ReplyCode::CommandNotSupported))));
        prop_assert_eq!(server_end, Some(Err(Socks5Error::UnsupportedCommand(Command::UdpAssociate))));
    }

    #[test]
    fn wrong_credentials_are_rejected(
        right in credentials(),
        wrong in credentials(),
        sizes in chunking(),
    ) {
        prop_assume!(right != wrong);
        let mut client = ClientHandshake::new(Some(wrong), Command::Connect, Address::unspecified());
        let mut server = ServerHandshake::new(policy_all(Some(right)));
        let (client_end, server_end) = converse(&mut client, &mut server, &sizes, &Address::unspecified(), b"");
        prop_assert_eq!(client_end, Some(Err(Socks5Error::AuthRejected { status: 1 })));
        prop_assert_eq!(server_end, Some(Err(Socks5Error::BadCredentials)));
    }

    #[test]
    fn no_common_method(sizes in chunking(), credentials in credentials()) {
        let mut client = ClientHandshake::new(None, Command::Connect, Address::unspecified());
        let mut server = ServerHandshake::new(policy_all(Some(credentials)));
        let (client_end, server_end) = converse(&mut client, &mut server, &sizes, &Address::unspecified(), b"");
        prop_assert_eq!(client_end, Some(Err(Socks5Error::NoAcceptableMethod)));
        prop_assert_eq!(server_end, Some(Err(Socks5Error::NoAcceptableMethod)));
    }

    /// Anything at all, cut anyhow, into either machine: no panic, and a finished machine
    /// stays finished.
    #[test]
    fn machines_take_any_bytes(
        input in input_for_machines(),
        sizes in chunking(),
        credentials in proptest::option::of(credentials()),
        command in command(),
    ) {
        let mut client = ClientHandshake::new(credentials.clone(), command, Address::unspecified());
        let _ = run_client(&mut client, &input, &sizes);
        let mut server = ServerHandshake::new(policy_all(credentials));
        let (outcome, sent) = run_server(&mut server, &input, &sizes);
        prop_assert!(sent.len() <= 4 + Reply::MAX_LEN);
        if let Ok(Some((request, _))) = outcome {
            prop_assert!(server.reply(ReplyCode::Succeeded, request.dst).is_ok());
        }
    }
}
