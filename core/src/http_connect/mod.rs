//! HTTP `CONNECT` tunnels through an enterprise web proxy ([RFC 9110 §9.3.6], [RFC 9112]), with
//! optional Basic `Proxy-Authorization` ([RFC 7617]).
//!
//! **Beyond the seed** (from ByteRTC's HTTP tunnel proxy): the seed's proxy types are SOCKS5
//! and the cloud proxy; enterprises far more often run an HTTP proxy (squid, tinyproxy, a
//! commercial web gateway) that opens TCP tunnels with `CONNECT host:port`. Only TCP goes
//! through such a tunnel: signalling and TCP media yes, UDP media never, by design.
//!
//! Two layers, both pure (no IO, no clock, no randomness):
//!
//! - **Codec**: [`encode_request`] writes the request byte-exact; [`ResponseHead::decode`] and
//!   the incremental [`HeadReader`] read a response head (status line and header fields) within
//!   stated bounds, never panicking, and say what was wrong when it is not one:
//!
//!   | bound | value | error |
//!   |---|---|---|
//!   | status line, without its line end | [`MAX_STATUS_LINE_LEN`] = 1024 bytes | [`HttpConnectError::StatusLineTooLong`] |
//!   | each header line, without its line end | [`MAX_HEADER_LINE_LEN`] = 8192 bytes | [`HttpConnectError::HeaderLineTooLong`] |
//!   | header lines per head | [`MAX_HEADERS`] = 64 | [`HttpConnectError::TooManyHeaders`] |
//!   | the whole head, line ends and the empty line included | [`MAX_HEAD_LEN`] = 16384 bytes | [`HttpConnectError::HeadTooLarge`] |
//!   | interim (1xx) responses before the final one | [`MAX_INTERIM_RESPONSES`] = 4 | [`HttpConnectError::TooManyInterimResponses`] |
//!   | a 407's body skipped to reuse the connection | [`MAX_SKIPPED_BODY_LEN`] = 65536 bytes | none: a larger or unframed body means a new connection |
//!
//! - **Machine**: [`HttpConnectClient`], in the house IO shape (`handle_input`, `poll_output`,
//!   `poll_timeout`, time as a parameter): it asks for a connection to the proxy, sends
//!   `CONNECT`, reads the answer, answers a `407` with the credentials when it has them (on the
//!   same connection after skipping the 407's body, or on a new one when the proxy closes or the
//!   body cannot be skipped), and ends with [`HttpConnectOutput::Established`], handing back
//!   the bytes that followed the response head (the tunnel's first bytes), or with
//!   [`HttpConnectOutput::Failed`] and a typed error.
//!
//! - **The proxy's side**, for the simulated enterprise proxies: [`head_len`] finds where a
//!   request head ends, [`decide_connect`] says what a proxy that tunnels only to `ip:port`
//!   answers it ([`ConnectDecision`]: tunnel, `407` [`CHALLENGE`], or a refusal).
//!
//! Status codes: any `2xx` establishes the tunnel (RFC 9110 §9.3.6; its `Content-Length` and
//! `Transfer-Encoding` are ignored, the bytes after the head belong to the tunnel); `1xx`
//! other than `101` are interim and skipped; `407` is the authentication round; anything else
//! is [`HttpConnectError::Refused`], naming the status and the reason phrase.
//!
//! ```
//! use cloudproxy_core::http_connect::{encode_request, Authority, BasicCredentials, ResponseHead};
//!
//! let target = Authority::domain("edge.example.com", 443).unwrap();
//! let user = BasicCredentials::new("Aladdin", "open sesame").unwrap();
//! let mut request = Vec::new();
//! encode_request(&target, Some(&user), &mut request);
//! assert_eq!(
//!     request,
//!     b"CONNECT edge.example.com:443 HTTP/1.1\r\nHost: edge.example.com:443\r\n\
//!       Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
//! );
//! let answer = b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01";
//! let (head, used) = ResponseHead::decode(answer).unwrap().unwrap();
//! assert_eq!((head.status, head.reason.as_str()), (200, "Connection established"));
//! assert_eq!(&answer[used..], b"\x16\x03\x01"); // the tunnel's first bytes
//! ```
//!
//! [RFC 9110 §9.3.6]: https://www.rfc-editor.org/rfc/rfc9110#section-9.3.6
//! [RFC 9112]: https://www.rfc-editor.org/rfc/rfc9112
//! [RFC 7617]: https://www.rfc-editor.org/rfc/rfc7617

mod body;
mod client;
mod request;
mod response;
mod server;

#[cfg(test)]
mod tests;

pub use client::{
    HttpConnectClient, HttpConnectConfig, HttpConnectInput, HttpConnectOutput, ProxyConn,
    DEFAULT_HANDSHAKE_TIMEOUT,
};
pub use request::{encode_request, Authority, BasicCredentials, MAX_CREDENTIAL_LEN};
pub use response::{BodyFraming, HeadReader, Header, HttpVersion, ResponseHead};
pub use server::{decide_connect, head_len, ConnectDecision, CHALLENGE, ESTABLISHED};

/// The longest status line accepted, in bytes, without its line end.
pub const MAX_STATUS_LINE_LEN: usize = 1024;
/// The longest header line accepted, in bytes, without its line end.
pub const MAX_HEADER_LINE_LEN: usize = 8192;
/// The most header lines (continuation lines included) one response head may have.
pub const MAX_HEADERS: usize = 64;
/// The largest response head accepted, in bytes: status line, header lines, every line end
/// and the final empty line.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// The most interim (`1xx`) responses skipped before the final response.
pub const MAX_INTERIM_RESPONSES: usize = 4;
/// The largest `407` body the machine reads past to send its second request on the same
/// connection, in bytes (chunk framing and trailers included); a larger body, or one whose end
/// only the connection's close would tell, is left unread and the machine reconnects.
pub const MAX_SKIPPED_BODY_LEN: u64 = 64 * 1024;
/// The most authentication schemes an error lists from the proxy's challenges.
pub const MAX_LISTED_SCHEMES: usize = 8;

/// Everything that can go wrong building a `CONNECT` request, reading the proxy's answer or
/// running the handshake. Messages name the bound, the line or the status that was wrong, and
/// quote at most 64 bytes of any one thing the proxy sent (escaped when not printable ASCII;
/// a reason phrase: at most 64 characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpConnectError {
    /// The tunnel's target is not a valid `host:port` (built by [`Authority`]).
    #[error("invalid CONNECT target: {why}")]
    InvalidTarget {
        /// Why, naming the value.
        why: String,
    },
    /// The user name or password cannot be sent with Basic authentication (built by
    /// [`BasicCredentials::new`]).
    #[error("invalid proxy credentials: {why}")]
    InvalidCredentials {
        /// Why (never quoting the password).
        why: &'static str,
    },
    /// The answer does not start with `HTTP/`: not an HTTP proxy (a SOCKS5 server, a TLS port,
    /// something else).
    #[error(
        "the proxy's answer is not HTTP: it starts {start} instead of \"HTTP/\" (is this an HTTP proxy?)"
    )]
    NotHttp {
        /// The first bytes received, escaped (at most 32).
        start: String,
    },
    /// The status line names an HTTP version other than 1.0 and 1.1.
    #[error(
        "the proxy answered with HTTP version {version}: only HTTP/1.0 and HTTP/1.1 are supported"
    )]
    UnsupportedVersion {
        /// The version as sent, quoted and escaped (e.g. `"2.0"`).
        version: String,
    },
    /// The status line is longer than [`MAX_STATUS_LINE_LEN`].
    #[error("the proxy's status line is longer than {max} bytes")]
    StatusLineTooLong {
        /// The bound.
        max: usize,
    },
    /// A header line is longer than [`MAX_HEADER_LINE_LEN`].
    #[error("line {line} of the proxy's response head is longer than {max} bytes")]
    HeaderLineTooLong {
        /// The 1-based line number (line 1 is the status line).
        line: usize,
        /// The bound.
        max: usize,
    },
    /// The head has more than [`MAX_HEADERS`] header lines.
    #[error("the proxy's response head has more than {max} header lines")]
    TooManyHeaders {
        /// The bound.
        max: usize,
    },
    /// The head is larger than [`MAX_HEAD_LEN`] without ending.
    #[error("the proxy's response head is larger than {max} bytes")]
    HeadTooLarge {
        /// The bound.
        max: usize,
    },
    /// A line of the head breaks the HTTP/1.1 syntax.
    #[error("line {line} of the proxy's response head is malformed: {why}")]
    MalformedHead {
        /// The 1-based line number (line 1 is the status line).
        line: usize,
        /// What is wrong, quoting at most 64 characters.
        why: String,
    },
    /// More than [`MAX_INTERIM_RESPONSES`] interim (`1xx`) responses came before a final one.
    #[error("the proxy sent more than {max} interim (1xx) responses")]
    TooManyInterimResponses {
        /// The bound.
        max: usize,
    },
    /// `407 Proxy Authentication Required`, and no credentials were configured.
    #[error(
        "the HTTP proxy requires authentication for CONNECT {target} ({status} {reason}; it \
         offers {offered}): configure the proxy's user name and password"
    )]
    AuthRequired {
        /// The tunnel's target.
        target: String,
        /// The status code (407).
        status: u16,
        /// The reason phrase, at most 64 characters.
        reason: String,
        /// The schemes of its `Proxy-Authenticate` challenges, e.g. `Basic`.
        offered: String,
    },
    /// `407`, and the proxy offers no Basic challenge (only NTLM, Negotiate, Digest...).
    #[error(
        "the HTTP proxy requires authentication for CONNECT {target} but offers {offered}: only \
         Basic is supported"
    )]
    AuthUnsupported {
        /// The tunnel's target.
        target: String,
        /// The schemes of its `Proxy-Authenticate` challenges, or that it sent none.
        offered: String,
    },
    /// `407` again after the credentials were sent, or `401` (tinyproxy's answer to wrong
    /// credentials): the proxy refused them.
    #[error(
        "the HTTP proxy rejected the credentials for CONNECT {target}: {status} {reason} after \
         Proxy-Authorization was sent"
    )]
    AuthRejected {
        /// The tunnel's target.
        target: String,
        /// The status code (407).
        status: u16,
        /// The reason phrase, at most 64 characters.
        reason: String,
    },
    /// The proxy answered with a final status other than `2xx` and `407`.
    #[error("the HTTP proxy refused CONNECT {target}: {status} {reason}")]
    Refused {
        /// The tunnel's target.
        target: String,
        /// The status code, e.g. 403.
        status: u16,
        /// The reason phrase, at most 64 characters.
        reason: String,
    },
    /// The TCP connection to the proxy could not be opened.
    #[error("could not connect to the HTTP proxy")]
    ProxyUnreachable,
    /// The proxy closed the connection before its response head was complete.
    #[error(
        "the HTTP proxy closed the connection before its response to CONNECT {target} was complete"
    )]
    ClosedEarly {
        /// The tunnel's target.
        target: String,
    },
    /// No tunnel within the handshake timeout ([`HttpConnectConfig::handshake_timeout`]).
    #[error("no tunnel through the HTTP proxy to {target} within {timeout_ms} ms")]
    Timeout {
        /// The tunnel's target.
        target: String,
        /// The timeout, in milliseconds.
        timeout_ms: u64,
    },
}

/// `bytes` for an error message: printable ASCII as is, anything else escaped, at most `max`
/// bytes of input (then `...`).
pub(crate) fn escape_excerpt(bytes: &[u8], max: usize) -> String {
    // Shorter than `max`: all of it.
    let shown: String = bytes.get(..max).unwrap_or(bytes).escape_ascii().to_string();
    if bytes.len() > max {
        format!("\"{shown}...\"")
    } else {
        format!("\"{shown}\"")
    }
}
