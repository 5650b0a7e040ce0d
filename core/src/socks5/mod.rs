//! SOCKS5 ([RFC 1928]) with username/password authentication ([RFC 1929]), for both ends.
//!
//! Two layers, both pure (no IO, no clock, no randomness):
//!
//! - **Codecs**: one plain data type per message, each with
//!   `decode(&[u8]) -> Result<(Self, usize), Socks5Error>` (the `usize` is the number of bytes
//!   consumed), `encode(&self, &mut Vec<u8>)` and `encoded_len()`. Decoders never panic; on a
//!   valid but short prefix they return [`Socks5Error::Incomplete`] with a lower bound on the total
//!   length needed, and on invalid input a variant naming exactly what was wrong. For every valid
//!   encoding `x`, `encode(decode(x))` gives back exactly the consumed bytes of `x`.
//!   - method negotiation: [`Greeting`], [`MethodSelection`], [`Method`];
//!   - RFC 1929 sub-negotiation: [`UserPassRequest`], [`UserPassReply`], [`Credentials`];
//!   - requests and replies: [`Request`], [`Command`], [`Reply`], [`ReplyCode`], [`Address`],
//!     [`DomainName`];
//!   - the UDP relay header (RFC 1928 §7): [`UdpHeader`], [`decode_udp_datagram`],
//!     [`encode_udp_datagram`].
//! - **Handshake machines**, driven by bytes: [`ClientHandshake`] (the SDK side, talking to an
//!   enterprise SOCKS5 proxy) and [`ServerHandshake`] (the proxy side, with a [`ServerPolicy`]).
//!   Both buffer partial messages internally, never more than the largest message of the
//!   current phase, and hand back any bytes that follow the handshake as `leftover`.
//!
//! ```
//! use cloudproxy_core::socks5::{Command, Request};
//! use std::net::SocketAddr;
//!
//! let dst: SocketAddr = "1.2.3.4:80".parse().unwrap();
//! let connect = Request { command: Command::Connect, dst: dst.into() };
//! let mut out = Vec::new();
//! connect.encode(&mut out);
//! assert_eq!(out, [0x05, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0x00, 0x50]);
//! assert_eq!(Request::decode(&out), Ok((connect, out.len())));
//! ```
//!
//! [RFC 1928]: https://www.rfc-editor.org/rfc/rfc1928
//! [RFC 1929]: https://www.rfc-editor.org/rfc/rfc1929

mod address;
mod client;
mod codec;
mod server;

#[cfg(test)]
mod tests;

pub use address::{decode_udp_datagram, encode_udp_datagram, Address, DomainName, UdpHeader};
pub use client::{ClientHandshake, ClientProgress};
pub use codec::{
    Command, Credentials, Greeting, Method, MethodSelection, Reply, ReplyCode, Request,
    UserPassReply, UserPassRequest,
};
pub use server::{ServerHandshake, ServerPolicy, ServerProgress};

/// The protocol version byte of every SOCKS5 message (RFC 1928 `VER`).
pub const SOCKS_VERSION: u8 = 0x05;

/// The version byte of the RFC 1929 username/password sub-negotiation.
pub const USER_PASS_VERSION: u8 = 0x01;

/// Everything that can go wrong while decoding SOCKS5 messages or driving a handshake.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Socks5Error {
    /// The input is a valid prefix of a message but too short: at least `needed` bytes in total
    /// (counted from the start of the input) are required. Wait for more bytes.
    #[error("incomplete message: at least {needed} bytes needed")]
    Incomplete {
        /// A lower bound on the total number of bytes the message needs.
        needed: usize,
    },
    /// A UDP datagram ended before its header did (a datagram is whole: this is not
    /// recoverable by waiting).
    #[error("truncated UDP datagram: its header needs at least {needed} bytes")]
    Truncated {
        /// A lower bound on the length the datagram header needs.
        needed: usize,
    },
    /// The SOCKS version byte was not 5.
    #[error("bad SOCKS version {found:#04x} (expected 0x05)")]
    BadVersion {
        /// The version byte received.
        found: u8,
    },
    /// The RFC 1929 sub-negotiation version byte was not 1.
    #[error("bad username/password sub-negotiation version {found:#04x} (expected 0x01)")]
    BadAuthVersion {
        /// The version byte received.
        found: u8,
    },
    /// A greeting offered no authentication method (`NMETHODS` = 0).
    #[error("greeting offers zero authentication methods")]
    ZeroMethods,
    /// A greeting was built with more than 255 methods.
    #[error("greeting offers {count} methods (at most 255)")]
    TooManyMethods {
        /// The number of methods given.
        count: usize,
    },
    /// An RFC 1929 username was empty (`ULEN` = 0).
    #[error("empty username")]
    EmptyUsername,
    /// An RFC 1929 username was longer than 255 bytes.
    #[error("username of {len} bytes (at most 255)")]
    UsernameTooLong {
        /// The length given.
        len: usize,
    },
    /// An RFC 1929 password was empty (`PLEN` = 0).
    #[error("empty password")]
    EmptyPassword,
    /// An RFC 1929 password was longer than 255 bytes.
    #[error("password of {len} bytes (at most 255)")]
    PasswordTooLong {
        /// The length given.
        len: usize,
    },
    /// A reserved field (`RSV`) was not zero.
    #[error("reserved field is {found:#x} (must be 0)")]
    BadReserved {
        /// The value received (one byte in requests and replies, two in UDP headers).
        found: u16,
    },
    /// The address type byte (`ATYP`) was none of 1 (IPv4), 3 (domain), 4 (IPv6).
    #[error("unknown address type {0:#04x}")]
    UnknownAddressType(u8),
    /// A domain name address had length 0.
    #[error("empty domain name")]
    EmptyDomain,
    /// A domain name was longer than 255 bytes.
    #[error("domain name of {len} bytes (at most 255)")]
    DomainTooLong {
        /// The length given.
        len: usize,
    },
    /// The command byte (`CMD`) was none of 1 (CONNECT), 2 (BIND), 3 (UDP ASSOCIATE).
    #[error("unknown command {0:#04x}")]
    UnknownCommand(u8),
    /// A UDP datagram had `FRAG` != 0. Fragmentation is not supported: the datagram is dropped.
    #[error("fragmented UDP datagram (FRAG = {frag}) dropped")]
    Fragmented {
        /// The fragment number received.
        frag: u8,
    },
    /// Client: the server accepted none of the offered methods (`METHOD` = 0xFF).
    /// Server: the client offered no method the policy accepts (`05 FF` was sent).
    #[error("no acceptable authentication method")]
    NoAcceptableMethod,
    /// Client: the server selected a method the client did not offer.
    #[error("server selected method {0} which was not offered")]
    UnexpectedMethod(Method),
    /// Client: the server rejected the username/password (RFC 1929 `STATUS` != 0).
    #[error("username/password rejected by the server (status {status:#04x})")]
    AuthRejected {
        /// The status byte received.
        status: u8,
    },
    /// Server: the client's username/password did not match the policy (a failure status was
    /// sent).
    #[error("bad username/password")]
    BadCredentials,
    /// Client: the server answered the request with a failure reply.
    #[error("request refused by the server: {0}")]
    ServerRefused(ReplyCode),
    /// Server: the policy does not support the requested command (reply 7 was sent).
    #[error("command {0} not supported by policy")]
    UnsupportedCommand(Command),
    /// A handshake machine was fed bytes after it stopped reading: it completed or failed, or
    /// (server) it handed the request over and the bytes now belong to the caller.
    #[error("the handshake takes no more bytes")]
    HandshakeFinished,
    /// [`ServerHandshake::reply`] was called while no request was waiting for a reply.
    #[error("no request is waiting for a reply")]
    NotAwaitingReply,
}

/// A decoder's result with [`Socks5Error::Incomplete`] turned into `Ok(None)`, for the
/// handshake machines that wait for more bytes.
fn complete<T>(
    decoded: Result<(T, usize), Socks5Error>,
) -> Result<Option<(T, usize)>, Socks5Error> {
    match decoded {
        Ok(done) => Ok(Some(done)),
        Err(Socks5Error::Incomplete { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
