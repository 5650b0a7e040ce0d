//! Properties: any bytes, in any chunking, to the codec and the machine: no panic, bounded
//! memory and outputs, the same outcome whatever the chunking, and heads that round-trip.

use proptest::prelude::*;

use super::*;

/// Bytes that look like a proxy's answers: pieces of heads and bodies, and garbage.
fn answer_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"HTTP/1.1 ",
        b"HTTP/1.0 ",
        b"200 Connection established\r\n",
        b"407 Proxy Authentication Required\r\n",
        b"100 Continue\r\n",
        b"403 Forbidden\r\n",
        b"Proxy-Authenticate: Basic realm=\"x\"\r\n",
        b"Proxy-Authenticate: NTLM\r\n",
        b"Connection: close\r\n",
        b"Connection: keep-alive\r\n",
        b"Content-Length: 3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"\r\n",
        b"\n",
        b"3\r\nabc\r\n0\r\n\r\n",
        b"abc",
    ];
    let piece = prop_oneof![
        8 => proptest::sample::select(pieces).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..8),
        1 => (1usize..3_000).prop_map(|n| format!("X: {}\r\n", "v".repeat(n)).into_bytes()),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        answer_bytes(),
        proptest::collection::vec(any::<u8>(), 0..512)
    ]
}

/// Sorted cut points into a stream of `len` bytes.
fn cuts(len: usize, raw: &[usize]) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.iter().map(|c| c % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn response_head() -> impl Strategy<Value = ResponseHead> {
    (
        prop_oneof![Just(HttpVersion::Http10), Just(HttpVersion::Http11)],
        100u16..600,
        "[ -~]{0,24}",
        proptest::collection::vec((token(), "([!-~]([ -~]{0,20}[!-~])?)?"), 0..8),
    )
        .prop_map(|(version, status, reason, headers)| ResponseHead {
            version,
            status,
            reason,
            headers: headers
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
        })
}

/// One thing the world does to the machine.
#[derive(Clone, Debug)]
enum Op {
    Connected(u32),
    ConnectFailed(u32),
    Data(u32, Vec<u8>),
    Closed(u32),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 0u32..3;
    prop_oneof![
        2 => conn.clone().prop_map(Op::Connected),
        1 => conn.clone().prop_map(Op::ConnectFailed),
        6 => (conn.clone(), any_bytes()).prop_map(|(c, d)| Op::Data(c, d)),
        1 => conn.prop_map(Op::Closed),
        1 => (0u64..3_000).prop_map(Op::Wait),
    ]
}

/// What the driver knows about the machine's connections, to check its outputs against.
#[derive(Default)]
struct Model {
    outputs: usize,
    connects: u32,
    /// Connections asked for and not closed by either side, with whether they are up.
    open: Vec<(ProxyConn, bool)>,
    finished: bool,
}

impl Model {
    fn input(&mut self, op: &Op) {
        let find = |open: &mut Vec<(ProxyConn, bool)>, c: u32| {
            open.iter().position(|(conn, _)| conn.0 == c)
        };
        match *op {
            Op::Connected(c) => {
                if let Some(i) = find(&mut self.open, c) {
                    self.open[i].1 = true;
                }
            }
            // A failed connect only means something for a connection not up yet.
            Op::ConnectFailed(c) => {
                if let Some(i) = find(&mut self.open, c).filter(|&i| !self.open[i].1) {
                    self.open.remove(i);
                }
            }
            Op::Closed(c) => {
                if let Some(i) = find(&mut self.open, c) {
                    self.open.remove(i);
                }
            }
            Op::Data(..) | Op::Wait(_) => {}
        }
    }

    fn output(&mut self, output: &HttpConnectOutput, credentials: bool) {
        assert!(!self.finished, "an output after the last one: {output:?}");
        self.outputs += 1;
        assert!(self.outputs <= 7);
        match output {
            HttpConnectOutput::Connect { conn } => {
                assert_eq!(conn.0, self.connects, "connections are numbered in order");
                self.connects += 1;
                assert!(self.connects <= 2);
                assert!(self.open.is_empty(), "one connection at a time");
                self.open.push((*conn, false));
            }
            HttpConnectOutput::Transmit { conn, data } => {
                assert!(self.open.contains(&(*conn, true)), "sent on {conn:?}");
                let auth = data.windows(20).any(|w| w == b"Proxy-Authorization:");
                assert!(credentials || !auth);
                assert!(data.starts_with(b"CONNECT edge.example.com:443 HTTP/1.1\r\n"));
            }
            HttpConnectOutput::Close { conn } => {
                let before = self.open.len();
                self.open.retain(|(c, _)| c != conn);
                assert_eq!(self.open.len() + 1, before, "closed {conn:?}");
            }
            HttpConnectOutput::Established { conn, head, .. } => {
                assert!(self.open.contains(&(*conn, true)));
                assert!(head.is_success());
                self.finished = true;
            }
            HttpConnectOutput::Failed { error } => {
                assert!(self.open.is_empty(), "failed with {:?} open", self.open);
                let message = error.to_string();
                assert!(
                    !message.is_empty() && message.chars().count() <= 400,
                    "{message}"
                );
                self.finished = true;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_decode_without_panic_and_consistently(bytes in any_bytes()) {
        match ResponseHead::decode(&bytes) {
            Ok(Some((head, used))) => {
                prop_assert!(used <= bytes.len() && used <= MAX_HEAD_LEN);
                prop_assert_eq!(ResponseHead::decode(&bytes[..used]), Ok(Some((head, used))));
                prop_assert_eq!(ResponseHead::decode(&bytes[..used - 1]), Ok(None));
            }
            Ok(None) => prop_assert!(bytes.len() <= MAX_HEAD_LEN),
            Err(error) => {
                let message = error.to_string();
                prop_assert!(!message.is_empty() && message.chars().count() <= 400, "{}", message);
            }
        }
    }

    #[test]
    fn the_reader_gives_the_same_outcome_in_any_chunking(
        bytes in any_bytes(),
        sizes in proptest::collection::vec(1usize..64, 1..16),
    ) {
        let whole = ResponseHead::decode(&bytes);
        let mut reader = HeadReader::new();
        let mut fed = 0;
        let mut chunked = Ok(None);
        for size in sizes.iter().cycle() {
            if fed == bytes.len() {
                break;
            }
            let end = (fed + size).min(bytes.len());
            chunked = reader.push(&bytes[fed..end]).map(|done| done.map(|(h, n)| (h, fed + n)));
            prop_assert!(reader.buffered_len() <= MAX_HEAD_LEN);
            fed = end;
            if !matches!(chunked, Ok(None)) {
                break;
            }
        }
        match (&whole, &chunked) {
            (Err(HttpConnectError::NotHttp { .. }), Err(HttpConnectError::NotHttp { .. })) => {}
            _ => prop_assert_eq!(whole, chunked),
        }
    }

    #[test]
    fn heads_round_trip(head in response_head()) {
        let mut out = Vec::new();
        head.encode(&mut out);
        prop_assert_eq!(ResponseHead::decode(&out), Ok(Some((head, out.len()))));
    }

    #[test]
    fn the_machine_never_panics_and_stays_bounded(
        credentials in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..24),
    ) {
        let mut h = Harness::new(credentials.then(alice));
        let mut model = Model::default();
        model.output(&connect(0), credentials);
        for op in &ops {
            model.input(op);
            let outputs = match op {
                Op::Connected(c) => h.connected(*c),
                Op::ConnectFailed(c) => h.input(HttpConnectInput::ConnectFailed { conn: ProxyConn(*c) }),
                Op::Data(c, data) => h.data(*c, data),
                Op::Closed(c) => h.closed(*c),
                Op::Wait(ms) => h.advance(Duration::from_millis(*ms)),
            };
            for output in &outputs {
                model.output(output, credentials);
            }
            prop_assert!(h.machine.buffered_len() <= MAX_HEAD_LEN);
            prop_assert_eq!(h.machine.is_finished(), model.finished);
            match h.machine.poll_timeout() {
                Some(at) => prop_assert!(at > h.now),
                None => prop_assert!(model.finished),
            }
        }
    }

    #[test]
    fn the_machine_gives_the_same_outcome_in_any_chunking(
        credentials in any::<bool>(),
        stream in answer_bytes(),
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = run_stream(credentials, &stream, &[]);
        let cut = run_stream(credentials, &stream, &cuts(stream.len(), &raw_cuts));
        match (whole.0.last(), cut.0.last()) {
            // NotHttp quotes what it has seen, which depends on the chunking.
            (
                Some(HttpConnectOutput::Failed { error: HttpConnectError::NotHttp { .. } }),
                Some(HttpConnectOutput::Failed { error: HttpConnectError::NotHttp { .. } }),
            ) => prop_assert_eq!(whole.0.len(), cut.0.len()),
            _ => prop_assert_eq!(whole, cut),
        }
    }
}
