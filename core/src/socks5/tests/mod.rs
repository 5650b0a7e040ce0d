//! Tests of the SOCKS5 codecs and handshake machines: RFC vectors, properties, and the two
//! machines talking to each other.

use std::fmt::Debug;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;

use super::*;

mod handshake;
mod props;
mod vectors;

/// The codec interface every message type has, so that tests can be written once.
trait Codec: Sized + Clone + PartialEq + Debug {
    fn decode(input: &[u8]) -> Result<(Self, usize), Socks5Error>;
    fn encode(&self, out: &mut Vec<u8>);
    fn encoded_len(&self) -> usize;
}

macro_rules! impl_codec {
    ($($ty:ty),* $(,)?) => {$(
        impl Codec for $ty {
            fn decode(input: &[u8]) -> Result<(Self, usize), Socks5Error> {
                <$ty>::decode(input)
            }
            fn encode(&self, out: &mut Vec<u8>) {
                <$ty>::encode(self, out)
            }
            fn encoded_len(&self) -> usize {
                <$ty>::encoded_len(self)
            }
        }
    )*};
}

impl_codec!(
    Greeting,
    MethodSelection,
    UserPassRequest,
    UserPassReply,
    Request,
    Reply,
    Address,
    UdpHeader,
);

fn to_bytes<T: Codec>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    assert_eq!(out.len(), value.encoded_len(), "encoded_len of {value:?}");
    out
}

/// Everything a valid encoding must satisfy: it decodes to `expected` consuming all of it
/// (also with bytes after it), encodes back to itself, and every strict prefix is
/// `Incomplete` with a `needed` that is more than the prefix and no more than the whole.
fn check_valid<T: Codec>(bytes: &[u8], expected: &T) {
    assert_eq!(T::decode(bytes), Ok((expected.clone(), bytes.len())));
    assert_eq!(to_bytes(expected), bytes, "encoding of {expected:?}");
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0xFF, 0x00, 0x05]);
    assert_eq!(T::decode(&longer), Ok((expected.clone(), bytes.len())));
    check_prefixes::<T>(bytes);
}

/// Every strict prefix of a valid encoding is `Incomplete`, with a sound lower bound.
fn check_prefixes<T: Codec>(bytes: &[u8]) {
    for cut in 0..bytes.len() {
        match T::decode(&bytes[..cut]) {
            Err(Socks5Error::Incomplete { needed }) => assert!(
                cut < needed && needed <= bytes.len(),
                "prefix {cut} of {bytes:02x?}: needed {needed}"
            ),
            other => panic!("prefix {cut} of {bytes:02x?} decoded to {other:?}"),
        }
    }
}

/// What any decoder may do with any input: a valid message whose encoding is exactly the
/// consumed bytes, an `Incomplete` asking for more than there is, or an error.
fn check_any_input<T: Codec>(input: &[u8]) {
    match T::decode(input) {
        Ok((value, consumed)) => {
            assert!(consumed <= input.len());
            assert_eq!(to_bytes(&value), &input[..consumed], "{value:?}");
        }
        Err(Socks5Error::Incomplete { needed }) => assert!(needed > input.len()),
        Err(_) => {}
    }
}

fn v4(ip: [u8; 4], port: u16) -> Address {
    Address::Ip(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
}

fn v6(ip: [u8; 16], port: u16) -> Address {
    Address::Ip(SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::from(ip),
        port,
        0,
        0,
    )))
}

fn domain(name: &str, port: u16) -> Address {
    Address::domain(name, port).unwrap()
}

// Strategies.

fn method() -> impl Strategy<Value = Method> {
    any::<u8>().prop_map(Method::from)
}

fn credentials() -> impl Strategy<Value = Credentials> {
    (
        proptest::collection::vec(any::<u8>(), 1..=255),
        proptest::collection::vec(any::<u8>(), 1..=255),
    )
        .prop_map(|(user, pass)| Credentials::new(user, pass).unwrap())
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| v4(ip, port)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| v6(ip, port)),
        (
            proptest::collection::vec(any::<u8>(), 1..=255),
            any::<u16>()
        )
            .prop_map(|(name, port)| Address::domain(name, port).unwrap()),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Connect),
        Just(Command::Bind),
        Just(Command::UdpAssociate),
    ]
}

fn reply_code() -> impl Strategy<Value = ReplyCode> {
    any::<u8>().prop_map(ReplyCode::from)
}

fn greeting() -> impl Strategy<Value = Greeting> {
    proptest::collection::vec(method(), 1..=255).prop_map(|m| Greeting::new(m).unwrap())
}

fn request() -> impl Strategy<Value = Request> {
    (command(), address()).prop_map(|(command, dst)| Request { command, dst })
}

fn reply() -> impl Strategy<Value = Reply> {
    (reply_code(), address()).prop_map(|(code, bound)| Reply { code, bound })
}

/// Chunk sizes to cut a byte stream with, cycled; zero means an empty call.
fn chunking() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0usize..=9, 1..32)
        .prop_filter("some progress", |sizes| sizes.iter().any(|&s| s > 0))
}

/// Cuts `bytes` into chunks of the cycled `sizes`.
fn chunks<'a>(bytes: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = bytes;
    let mut sizes = sizes.iter().cycle();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = (*sizes.next()?).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}
