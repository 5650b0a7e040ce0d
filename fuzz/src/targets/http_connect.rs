//! `http_connect`: the HTTP CONNECT codec and handshake machine (beyond the seed: the
//! enterprise web proxy) on scripts of what a proxy does.
//!
//! Input: a flags byte (odd = the machine has Basic credentials), then [`Op`]s in the format of
//! [`input`](super::input): connection events and proxy bytes (arbitrary, or one of
//! [`RESPONSES`]) on connections 0 to 2, and time passing. Properties:
//!
//! 1. **Codec**, on every op's bytes and on all of them concatenated: [`ResponseHead::decode`]
//!    never panics; a head uses at most the input and [`MAX_HEAD_LEN`] bytes, decodes the same
//!    from exactly those bytes, is incomplete one byte short, and re-encodes to bytes that
//!    decode to it (or, only when re-encoding made it longer, hit a length bound); "incomplete" happens only within [`MAX_HEAD_LEN`]; a [`HeadReader`] fed
//!    the bytes in chunks gives the same outcome (the bytes quoted by `NotHttp` aside) and never
//!    holds more than [`MAX_HEAD_LEN`] bytes.
//! 2. **Machine, any chunking**: the concatenated bytes as one connection's stream, fed whole
//!    and in chunks, give the same outputs, and the same tunnel bytes (`early` and everything
//!    after `Established`).
//! 3. **Machine, the script**: the outputs agree with what the driver knows: connections are
//!    asked for one at a time and numbered 0, 1 (never more); bytes go only to a connection that
//!    is up; only an open connection is closed; `Proxy-Authorization` only with credentials;
//!    `Established` only on a connection that is up, with a `2xx`; `Failed` leaves nothing
//!    open; nothing after `Established` or `Failed`; at most 7 outputs in a life; at most
//!    [`MAX_HEAD_LEN`] bytes buffered; `poll_timeout` after `now`, `None` once finished.
//!
//! `FUZZ_TRACE=1` prints the script's ops and the machine's outputs.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use cloudproxy_core::http_connect::{
    Authority, BasicCredentials, HeadReader, HttpConnectClient, HttpConnectConfig,
    HttpConnectError, HttpConnectInput, HttpConnectOutput, ProxyConn, ResponseHead, MAX_HEAD_LEN,
};
use cloudproxy_core::time::Instant;

use super::input::{self, Writer};

/// Answers that mean something, so that short inputs reach every flow.
pub const RESPONSES: &[&[u8]] = &[
    b"HTTP/1.1 200 Connection established\r\n\r\n",
    b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy\r\n\r\n",
    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 6\r\n\r\nDenied",
    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nDenied\r\n0\r\n\r\n",
    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nConnection: close\r\n\r\n",
    b"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\n\r\n",
    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"\x16\x03\x01tunnel",
];

/// Chunk sizes the stream of property 2 is cut into, cycled.
const CHUNKS: &[usize] = &[1, 3, 64, 2, 7, 1, 300, 5];

/// One thing the proxy or the clock does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// The connection is up.
    Connected(u8),
    /// The connection could not be opened.
    ConnectFailed(u8),
    /// Bytes on a connection.
    Data(u8, Vec<u8>),
    /// One of [`RESPONSES`] (index modulo its length) on a connection.
    Known(u8, u8),
    /// The proxy closed the connection.
    Closed(u8),
    /// Time passes, in milliseconds.
    Wait(u16),
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let conn = |u: &mut Unstructured<'a>| input::byte(u) % 3;
        Ok(match input::tag(u, 6) {
            0 => Op::Connected(conn(u)),
            1 => Op::ConnectFailed(conn(u)),
            2 => Op::Data(conn(u), input::long_bytes(u)),
            3 => Op::Known(conn(u), input::byte(u)),
            4 => Op::Closed(conn(u)),
            _ => Op::Wait(input::be_u16(u)),
        })
    }
}

impl Op {
    /// Writes the op in the format [`Op::arbitrary`] reads.
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Op::Connected(c) => w.byte(0).byte(*c),
            Op::ConnectFailed(c) => w.byte(1).byte(*c),
            Op::Data(c, bytes) => w.byte(2).byte(*c).long_bytes(bytes),
            Op::Known(c, i) => w.byte(3).byte(*c).byte(*i),
            Op::Closed(c) => w.byte(4).byte(*c),
            Op::Wait(ms) => w.byte(5).u16(*ms),
        };
    }

    /// The proxy bytes of a data op.
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Op::Data(_, bytes) => Some(bytes),
            Op::Known(_, i) => Some(RESPONSES[usize::from(*i) % RESPONSES.len()]),
            _ => None,
        }
    }
}

/// A whole input: whether the machine has credentials, then the ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Whether the machine has Basic credentials to answer a 407 with.
    pub credentials: bool,
    /// What happens.
    pub ops: Vec<Op>,
}

impl Script {
    /// Reads a script.
    pub fn decode(data: &[u8]) -> Script {
        let mut u = Unstructured::new(data);
        let credentials = input::flag(&mut u);
        Script {
            credentials,
            ops: input::ops(&mut u),
        }
    }

    /// Writes the script in the format [`Script::decode`] reads.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.flag(self.credentials);
        for op in &self.ops {
            op.encode(&mut w);
        }
        w.into_bytes()
    }
}

/// The target: see the module docs.
pub fn run(data: &[u8]) {
    let script = Script::decode(data);
    let mut stream = Vec::new();
    for bytes in script.ops.iter().filter_map(Op::bytes) {
        check_codec(bytes);
        stream.extend_from_slice(bytes);
    }
    check_codec(&stream);
    check_chunking(script.credentials, &stream);
    run_script(&script);
}

fn machine(credentials: bool) -> HttpConnectClient {
    let target = Authority::domain("edge.example.com", 443).expect("a valid target");
    let credentials = credentials.then(|| BasicCredentials::new("alice", "secret").expect("valid"));
    HttpConnectClient::new(
        target,
        credentials,
        HttpConnectConfig::default(),
        Instant::EPOCH,
    )
}

// ----- 1. the codec -----

fn check_codec(bytes: &[u8]) {
    let whole = ResponseHead::decode(bytes);
    match &whole {
        Ok(Some((head, used))) => {
            let used = *used;
            assert!(used <= bytes.len() && used <= MAX_HEAD_LEN, "used {used}");
            assert_eq!(ResponseHead::decode(&bytes[..used]), whole);
            assert_eq!(ResponseHead::decode(&bytes[..used - 1]), Ok(None));
            // Re-encoded, the head decodes to itself, unless it grew past a bound: bytes that
            // were not UTF-8 come back as U+FFFD (3 bytes each), continuation lines as one.
            let mut out = Vec::new();
            head.encode(&mut out);
            match ResponseHead::decode(&out) {
                Ok(again) => assert_eq!(again, Some((head.clone(), out.len()))),
                Err(
                    HttpConnectError::StatusLineTooLong { .. }
                    | HttpConnectError::HeaderLineTooLong { .. }
                    | HttpConnectError::HeadTooLarge { .. },
                ) => assert!(
                    out.len() > used,
                    "a bound error for a head that did not grow"
                ),
                Err(error) => panic!("the re-encoded head does not decode: {error}"),
            }
        }
        Ok(None) => assert!(bytes.len() <= MAX_HEAD_LEN),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
    for size in [1, 7, 100] {
        let mut reader = HeadReader::new();
        let mut fed = 0;
        let mut chunked = Ok(None);
        for chunk in bytes.chunks(size) {
            chunked = reader
                .push(chunk)
                .map(|done| done.map(|(h, n)| (h, fed + n)));
            assert!(reader.buffered_len() <= MAX_HEAD_LEN);
            fed += chunk.len();
            if !matches!(chunked, Ok(None)) {
                break;
            }
        }
        match (&whole, &chunked) {
            (Err(HttpConnectError::NotHttp { .. }), Err(HttpConnectError::NotHttp { .. })) => {}
            _ => assert_eq!(whole, chunked, "chunks of {size}"),
        }
    }
}

// ----- 2. the machine in any chunking -----

/// The outputs (with `early` emptied) and the tunnel bytes, for `stream` on connection 0 fed
/// in pieces of the cycled `sizes` (all at once when `sizes` is empty).
fn feed(credentials: bool, stream: &[u8], sizes: &[usize]) -> (Vec<HttpConnectOutput>, Vec<u8>) {
    let mut m = machine(credentials);
    let conn = ProxyConn(0);
    m.handle_input(HttpConnectInput::Connected { conn }, Instant::EPOCH);
    let mut outputs: Vec<HttpConnectOutput> = std::iter::from_fn(|| m.poll_output()).collect();
    let mut tunnel = Vec::new();
    let mut rest = stream;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = sizes.next().map_or(rest.len(), |&s| s.min(rest.len()));
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        if m.is_finished() {
            if matches!(outputs.last(), Some(HttpConnectOutput::Established { .. })) {
                tunnel.extend_from_slice(piece);
            }
            continue;
        }
        m.handle_input(HttpConnectInput::Data { conn, data: piece }, Instant::EPOCH);
        while let Some(output) = m.poll_output() {
            match output {
                HttpConnectOutput::Established { conn, head, early } => {
                    tunnel.extend_from_slice(&early);
                    let early = Vec::new();
                    outputs.push(HttpConnectOutput::Established { conn, head, early });
                }
                other => outputs.push(other),
            }
        }
    }
    (outputs, tunnel)
}

fn check_chunking(credentials: bool, stream: &[u8]) {
    let whole = feed(credentials, stream, &[]);
    let cut = feed(credentials, stream, &CHUNKS[stream.len() % CHUNKS.len()..]);
    match (whole.0.last(), cut.0.last()) {
        (
            Some(HttpConnectOutput::Failed {
                error: HttpConnectError::NotHttp { .. },
            }),
            Some(HttpConnectOutput::Failed {
                error: HttpConnectError::NotHttp { .. },
            }),
        ) => assert_eq!(whole.0.len(), cut.0.len()),
        _ => assert_eq!(whole, cut, "the chunking changed the outcome"),
    }
}

// ----- 3. the machine against the script -----

/// What the driver knows about the machine's connections.
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
        let find = |open: &[(ProxyConn, bool)], c: u8| {
            open.iter().position(|(conn, _)| conn.0 == u32::from(c))
        };
        match op {
            Op::Connected(c) => {
                if let Some(i) = find(&self.open, *c) {
                    self.open[i].1 = true;
                }
            }
            Op::ConnectFailed(c) => {
                if let Some(i) = find(&self.open, *c).filter(|&i| !self.open[i].1) {
                    self.open.remove(i);
                }
            }
            Op::Closed(c) => {
                if let Some(i) = find(&self.open, *c) {
                    self.open.remove(i);
                }
            }
            Op::Data(..) | Op::Known(..) | Op::Wait(_) => {}
        }
    }

    fn output(&mut self, output: &HttpConnectOutput, credentials: bool) {
        assert!(!self.finished, "an output after the last one: {output:?}");
        self.outputs += 1;
        assert!(self.outputs <= 7, "more than 7 outputs");
        match output {
            HttpConnectOutput::Connect { conn } => {
                assert_eq!(conn.0, self.connects, "connections are numbered in order");
                self.connects += 1;
                assert!(self.connects <= 2, "a third connection");
                assert!(
                    self.open.is_empty(),
                    "a second connection while one is open"
                );
                self.open.push((*conn, false));
            }
            HttpConnectOutput::Transmit { conn, data } => {
                assert!(
                    self.open.contains(&(*conn, true)),
                    "sent on {conn:?}, not up"
                );
                let auth = data.windows(20).any(|w| w == b"Proxy-Authorization:");
                assert!(credentials || !auth, "credentials sent without credentials");
                assert!(data.starts_with(b"CONNECT edge.example.com:443 HTTP/1.1\r\n"));
            }
            HttpConnectOutput::Close { conn } => {
                let before = self.open.len();
                self.open.retain(|(c, _)| c != conn);
                assert_eq!(self.open.len() + 1, before, "closed {conn:?}, not open");
            }
            HttpConnectOutput::Established { conn, head, .. } => {
                assert!(
                    self.open.contains(&(*conn, true)),
                    "established on {conn:?}"
                );
                assert!(head.is_success(), "established with {}", head.status);
                self.finished = true;
            }
            HttpConnectOutput::Failed { error } => {
                assert!(self.open.is_empty(), "failed with {:?} open", self.open);
                assert!(!error.to_string().is_empty());
                self.finished = true;
            }
        }
    }
}

fn run_script(script: &Script) {
    let mut m = machine(script.credentials);
    let mut model = Model::default();
    let mut now = Instant::EPOCH;
    // `FUZZ_TRACE=1` prints every op and output, to read a failing input.
    let trace = std::env::var_os("FUZZ_TRACE").is_some();
    let drain = |m: &mut HttpConnectClient, model: &mut Model| {
        while let Some(output) = m.poll_output() {
            if trace {
                eprintln!("    -> {output:?}");
            }
            model.output(&output, script.credentials);
        }
    };
    drain(&mut m, &mut model);
    for op in &script.ops {
        if trace {
            eprintln!("{now} {op:?}");
        }
        model.input(op);
        let conn = |c: &u8| ProxyConn(u32::from(*c));
        match op {
            Op::Connected(c) => m.handle_input(HttpConnectInput::Connected { conn: conn(c) }, now),
            Op::ConnectFailed(c) => {
                m.handle_input(HttpConnectInput::ConnectFailed { conn: conn(c) }, now)
            }
            Op::Data(c, _) | Op::Known(c, _) => {
                let data = op.bytes().unwrap_or_default();
                m.handle_input(
                    HttpConnectInput::Data {
                        conn: conn(c),
                        data,
                    },
                    now,
                )
            }
            Op::Closed(c) => m.handle_input(HttpConnectInput::Closed { conn: conn(c) }, now),
            Op::Wait(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                m.handle_timeout(now);
            }
        }
        drain(&mut m, &mut model);
        assert!(m.buffered_len() <= MAX_HEAD_LEN);
        assert_eq!(m.is_finished(), model.finished);
        match m.poll_timeout() {
            Some(at) => assert!(at > now, "poll_timeout {at} not after now {now}"),
            None => assert!(model.finished, "no timer while unfinished"),
        }
    }
}
