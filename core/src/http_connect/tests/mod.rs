//! Tests of the HTTP CONNECT codec and machine: byte-exact requests, response vectors split at
//! every byte boundary, every bound at and past its limit, the 407 flows, properties, and the
//! error texts (snapshot).

use std::time::Duration;

use super::body::{BodySkipper, Unskippable};
use super::*;
use crate::time::Instant;

mod machine;
mod props;
mod recorded;
mod vectors;

const T0: Instant = Instant::EPOCH;

fn target() -> Authority {
    Authority::domain("edge.example.com", 443).unwrap()
}

fn alice() -> BasicCredentials {
    BasicCredentials::new("alice", "secret").unwrap()
}

/// The request the machine sends to `target()`, with or without alice's credentials.
fn request(with_credentials: bool) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(&target(), with_credentials.then(alice).as_ref(), &mut out);
    out
}

/// Decodes a whole head, panicking on anything else.
fn head(bytes: &[u8]) -> (ResponseHead, usize) {
    match ResponseHead::decode(bytes) {
        Ok(Some(done)) => done,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
    }
}

/// A machine and the outputs it produced, drained after every call.
struct Harness {
    machine: HttpConnectClient,
    now: Instant,
    outputs: Vec<HttpConnectOutput>,
}

impl Harness {
    fn new(credentials: Option<BasicCredentials>) -> Self {
        let machine =
            HttpConnectClient::new(target(), credentials, HttpConnectConfig::default(), T0);
        let mut h = Harness {
            machine,
            now: T0,
            outputs: Vec::new(),
        };
        assert_eq!(
            h.drain(),
            [HttpConnectOutput::Connect { conn: ProxyConn(0) }]
        );
        h
    }

    fn drain(&mut self) -> Vec<HttpConnectOutput> {
        let new: Vec<_> = std::iter::from_fn(|| self.machine.poll_output()).collect();
        self.outputs.extend(new.iter().cloned());
        assert!(self.outputs.len() <= 7, "{:?}", self.outputs);
        new
    }

    fn input(&mut self, input: HttpConnectInput<'_>) -> Vec<HttpConnectOutput> {
        self.machine.handle_input(input, self.now);
        if let Some(at) = self.machine.poll_timeout() {
            assert!(at > self.now);
        }
        self.drain()
    }

    fn connected(&mut self, conn: u32) -> Vec<HttpConnectOutput> {
        self.input(HttpConnectInput::Connected {
            conn: ProxyConn(conn),
        })
    }

    fn data(&mut self, conn: u32, data: &[u8]) -> Vec<HttpConnectOutput> {
        self.input(HttpConnectInput::Data {
            conn: ProxyConn(conn),
            data,
        })
    }

    fn closed(&mut self, conn: u32) -> Vec<HttpConnectOutput> {
        self.input(HttpConnectInput::Closed {
            conn: ProxyConn(conn),
        })
    }

    fn advance(&mut self, by: Duration) -> Vec<HttpConnectOutput> {
        self.now += by;
        self.machine.handle_timeout(self.now);
        self.drain()
    }
}

fn transmit(conn: u32, data: Vec<u8>) -> HttpConnectOutput {
    HttpConnectOutput::Transmit {
        conn: ProxyConn(conn),
        data,
    }
}

fn connect(conn: u32) -> HttpConnectOutput {
    HttpConnectOutput::Connect {
        conn: ProxyConn(conn),
    }
}

fn close(conn: u32) -> HttpConnectOutput {
    HttpConnectOutput::Close {
        conn: ProxyConn(conn),
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Feeds `stream` on connection 0, cut at `cuts`, and returns the outputs after the `Connect`
/// and the tunnel bytes (`early` and every byte fed after `Established`).
fn run_stream(
    credentials: bool,
    stream: &[u8],
    cuts: &[usize],
) -> (Vec<HttpConnectOutput>, Vec<u8>) {
    let mut h = Harness::new(credentials.then(alice));
    let mut outputs = h.connected(0);
    let mut tunnel = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&stream.len())) {
        let piece = &stream[from..to];
        from = to;
        if h.machine.is_finished() {
            if matches!(outputs.last(), Some(HttpConnectOutput::Established { .. })) {
                tunnel.extend_from_slice(piece);
            }
            continue;
        }
        for output in h.data(0, piece) {
            match output {
                HttpConnectOutput::Established { conn, head, early } => {
                    tunnel.extend_from_slice(&early);
                    outputs.push(HttpConnectOutput::Established {
                        conn,
                        head,
                        early: Vec::new(),
                    });
                }
                other => outputs.push(other),
            }
        }
    }
    (outputs, tunnel)
}

/// The stream gives `expected` (with the tunnel bytes apart) whole, split in two at every byte
/// boundary, and byte by byte.
fn check_every_split(credentials: bool, stream: &[u8]) -> (Vec<HttpConnectOutput>, Vec<u8>) {
    let whole = run_stream(credentials, stream, &[]);
    for cut in 0..=stream.len() {
        assert_eq!(
            run_stream(credentials, stream, &[cut]),
            whole,
            "cut at {cut}"
        );
    }
    let bytes: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(
        run_stream(credentials, stream, &bytes),
        whole,
        "byte by byte"
    );
    whole
}

/// The error of a `Failed` output, panicking on anything else.
fn failed(output: &HttpConnectOutput) -> &HttpConnectError {
    match output {
        HttpConnectOutput::Failed { error } => error,
        other => panic!("expected Failed, got {other:?}"),
    }
}
