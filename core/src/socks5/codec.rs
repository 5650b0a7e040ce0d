//! The messages of RFC 1928 (method negotiation, requests, replies) and RFC 1929
//! (username/password sub-negotiation).

use std::fmt;
use std::hash::{Hash, Hasher};

use super::address::{Address, Reader, MIN_ADDRESS_LEN};
use super::{Socks5Error, SOCKS_VERSION, USER_PASS_VERSION};

/// Reads the version byte and checks it is SOCKS 5.
fn read_socks_version(r: &mut Reader<'_>) -> Result<(), Socks5Error> {
    match r.u8()? {
        SOCKS_VERSION => Ok(()),
        found => Err(Socks5Error::BadVersion { found }),
    }
}

/// Reads the version byte and checks it is the RFC 1929 sub-negotiation version 1.
fn read_auth_version(r: &mut Reader<'_>) -> Result<(), Socks5Error> {
    match r.u8()? {
        USER_PASS_VERSION => Ok(()),
        found => Err(Socks5Error::BadAuthVersion { found }),
    }
}

/// Reads a one-byte reserved field and checks it is zero.
fn read_reserved(r: &mut Reader<'_>) -> Result<(), Socks5Error> {
    match r.u8()? {
        0 => Ok(()),
        found => Err(Socks5Error::BadReserved {
            found: found.into(),
        }),
    }
}

/// An authentication method of the negotiation (RFC 1928 §3).
///
/// Equality and hashing go by the byte on the wire, so `Method::Other(0)` equals
/// `Method::NoAuth`; [`Method::from`] always gives the named variant.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    /// `X'00'` NO AUTHENTICATION REQUIRED.
    NoAuth,
    /// `X'01'` GSSAPI (RFC 1961).
    Gssapi,
    /// `X'02'` USERNAME/PASSWORD (RFC 1929).
    UserPass,
    /// `X'FF'` NO ACCEPTABLE METHODS (only in a server's selection).
    NoAcceptable,
    /// Any other value (IANA-assigned or private), kept so that it round-trips.
    Other(u8),
}

impl Method {
    /// The method a byte stands for.
    pub const fn from_u8(byte: u8) -> Method {
        match byte {
            0x00 => Method::NoAuth,
            0x01 => Method::Gssapi,
            0x02 => Method::UserPass,
            0xFF => Method::NoAcceptable,
            other => Method::Other(other),
        }
    }

    /// The byte on the wire.
    pub const fn to_u8(self) -> u8 {
        match self {
            Method::NoAuth => 0x00,
            Method::Gssapi => 0x01,
            Method::UserPass => 0x02,
            Method::NoAcceptable => 0xFF,
            Method::Other(byte) => byte,
        }
    }
}

impl From<u8> for Method {
    fn from(byte: u8) -> Method {
        Method::from_u8(byte)
    }
}

impl From<Method> for u8 {
    fn from(method: Method) -> u8 {
        method.to_u8()
    }
}

impl PartialEq for Method {
    fn eq(&self, other: &Method) -> bool {
        self.to_u8() == other.to_u8()
    }
}

impl Eq for Method {}

impl Hash for Method {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.to_u8().hash(state);
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match Method::from_u8(self.to_u8()) {
            Method::NoAuth => "no authentication required",
            Method::Gssapi => "GSSAPI",
            Method::UserPass => "username/password",
            Method::NoAcceptable => "no acceptable methods",
            Method::Other(_) => "method",
        };
        write!(f, "{name} ({:#04x})", self.to_u8())
    }
}

/// The client's first message (RFC 1928 §3): `VER` `NMETHODS` `METHODS`, offering 1 to 255
/// authentication methods.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Greeting {
    /// 1 to 255 methods (also relied on by the client machine, which builds one directly).
    pub(super) methods: Vec<Method>,
}

impl Greeting {
    /// The most methods `NMETHODS` can count.
    pub const MAX_METHODS: usize = 255;

    /// A greeting offering `methods` in order of preference; fails with
    /// [`Socks5Error::ZeroMethods`] or [`Socks5Error::TooManyMethods`].
    pub fn new(methods: Vec<Method>) -> Result<Greeting, Socks5Error> {
        match methods.len() {
            0 => Err(Socks5Error::ZeroMethods),
            count if count > Self::MAX_METHODS => Err(Socks5Error::TooManyMethods { count }),
            _ => Ok(Greeting { methods }),
        }
    }

    /// The methods offered, as sent (duplicates included).
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// Whether `method` is among those offered.
    pub fn offers(&self, method: Method) -> bool {
        self.methods.contains(&method)
    }

    /// Decodes a greeting from the start of `input`; returns it and the bytes consumed.
    pub fn decode(input: &[u8]) -> Result<(Greeting, usize), Socks5Error> {
        let mut r = Reader::new(input);
        r.at_least(3);
        read_socks_version(&mut r)?;
        let count = usize::from(r.u8()?);
        if count == 0 {
            return Err(Socks5Error::ZeroMethods);
        }
        r.at_least(2 + count);
        let methods = r
            .bytes(count)?
            .iter()
            .map(|&b| Method::from_u8(b))
            .collect();
        Ok((Greeting { methods }, r.pos()))
    }

    /// Appends the greeting to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // `new` and `decode` guarantee 1..=255 methods.
        out.extend_from_slice(&[SOCKS_VERSION, self.methods.len() as u8]);
        out.extend(self.methods.iter().map(|m| m.to_u8()));
    }

    /// The length of [`Greeting::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        2 + self.methods.len()
    }
}

/// The server's choice of method (RFC 1928 §3): `VER` `METHOD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MethodSelection {
    /// The method chosen, or [`Method::NoAcceptable`].
    pub method: Method,
}

impl MethodSelection {
    /// Its fixed length.
    pub const LEN: usize = 2;

    /// Decodes a method selection from the start of `input`; returns it and the bytes consumed.
    pub fn decode(input: &[u8]) -> Result<(MethodSelection, usize), Socks5Error> {
        let mut r = Reader::new(input);
        r.at_least(Self::LEN);
        read_socks_version(&mut r)?;
        let method = Method::from_u8(r.u8()?);
        Ok((MethodSelection { method }, r.pos()))
    }

    /// Appends the method selection to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[SOCKS_VERSION, self.method.to_u8()]);
    }

    /// The length of [`MethodSelection::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        Self::LEN
    }
}

/// A username and a password for RFC 1929: each 1 to 255 bytes (not necessarily UTF-8).
///
/// `Debug` shows the username but never the password. Equality compares the contents in time
/// independent of where they differ (lengths are not hidden).
#[derive(Clone)]
pub struct Credentials {
    username: Box<[u8]>,
    password: Box<[u8]>,
}

/// Compares two byte strings without an early exit on the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Credentials {
    /// The longest username or password the one-byte length fields can carry.
    pub const MAX_LEN: usize = 255;

    /// Credentials from a username and a password; fails with [`Socks5Error::EmptyUsername`],
    /// [`Socks5Error::UsernameTooLong`], [`Socks5Error::EmptyPassword`] or
    /// [`Socks5Error::PasswordTooLong`].
    ///
    /// ```
    /// use cloudproxy_core::socks5::Credentials;
    /// let creds = Credentials::new("user", "hunter2").unwrap();
    /// assert!(!format!("{creds:?}").contains("hunter2"));
    /// ```
    pub fn new(
        username: impl Into<Vec<u8>>,
        password: impl Into<Vec<u8>>,
    ) -> Result<Credentials, Socks5Error> {
        let (username, password) = (username.into(), password.into());
        match username.len() {
            0 => return Err(Socks5Error::EmptyUsername),
            len if len > Self::MAX_LEN => return Err(Socks5Error::UsernameTooLong { len }),
            _ => {}
        }
        match password.len() {
            0 => return Err(Socks5Error::EmptyPassword),
            len if len > Self::MAX_LEN => return Err(Socks5Error::PasswordTooLong { len }),
            _ => {}
        }
        Ok(Credentials {
            username: username.into_boxed_slice(),
            password: password.into_boxed_slice(),
        })
    }

    /// The username.
    pub fn username(&self) -> &[u8] {
        &self.username
    }

    /// The password.
    pub fn password(&self) -> &[u8] {
        &self.password
    }
}

impl PartialEq for Credentials {
    fn eq(&self, other: &Credentials) -> bool {
        // `&`, not `&&`: always compare both.
        constant_time_eq(&self.username, &other.username)
            & constant_time_eq(&self.password, &other.password)
    }
}

impl Eq for Credentials {}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The client's username/password request (RFC 1929 §2):
/// `VER`=1 `ULEN` `UNAME` `PLEN` `PASSWD`. `Debug` redacts the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPassRequest {
    /// The username and password carried.
    pub credentials: Credentials,
}

impl UserPassRequest {
    /// Decodes a request from the start of `input`; returns it and the bytes consumed.
    pub fn decode(input: &[u8]) -> Result<(UserPassRequest, usize), Socks5Error> {
        let mut r = Reader::new(input);
        r.at_least(5);
        read_auth_version(&mut r)?;
        let ulen = usize::from(r.u8()?);
        if ulen == 0 {
            return Err(Socks5Error::EmptyUsername);
        }
        r.at_least(4 + ulen);
        let username = r.bytes(ulen)?;
        let plen = usize::from(r.u8()?);
        if plen == 0 {
            return Err(Socks5Error::EmptyPassword);
        }
        r.at_least(3 + ulen + plen);
        let password = r.bytes(plen)?;
        let credentials = Credentials {
            username: username.into(),
            password: password.into(),
        };
        Ok((UserPassRequest { credentials }, r.pos()))
    }

    /// Appends the request to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let Credentials { username, password } = &self.credentials;
        // `Credentials` guarantees 1..=255 bytes each.
        out.extend_from_slice(&[USER_PASS_VERSION, username.len() as u8]);
        out.extend_from_slice(username);
        out.push(password.len() as u8);
        out.extend_from_slice(password);
    }

    /// The length of [`UserPassRequest::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        3 + self.credentials.username.len() + self.credentials.password.len()
    }
}

/// The server's username/password verdict (RFC 1929 §2): `VER`=1 `STATUS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserPassReply {
    /// 0 for success; anything else is a failure after which the server closes the connection.
    pub status: u8,
}

impl UserPassReply {
    /// Its fixed length.
    pub const LEN: usize = 2;
    /// The status of success.
    pub const SUCCESS: u8 = 0x00;
    /// The failure status this crate's server sends.
    pub const FAILURE: u8 = 0x01;

    /// Whether the status is success.
    pub fn is_success(&self) -> bool {
        self.status == Self::SUCCESS
    }

    /// Decodes a reply from the start of `input`; returns it and the bytes consumed.
    pub fn decode(input: &[u8]) -> Result<(UserPassReply, usize), Socks5Error> {
        let mut r = Reader::new(input);
        r.at_least(Self::LEN);
        read_auth_version(&mut r)?;
        let status = r.u8()?;
        Ok((UserPassReply { status }, r.pos()))
    }

    /// Appends the reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[USER_PASS_VERSION, self.status]);
    }

    /// The length of [`UserPassReply::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        Self::LEN
    }
}

/// The command of a request (RFC 1928 §4, `CMD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// `X'01'` CONNECT: open a TCP connection to the destination.
    Connect,
    /// `X'02'` BIND: listen for one incoming TCP connection (two replies follow).
    Bind,
    /// `X'03'` UDP ASSOCIATE: relay UDP datagrams for the client.
    UdpAssociate,
}

impl Command {
    /// The byte on the wire.
    pub const fn to_u8(self) -> u8 {
        match self {
            Command::Connect => 0x01,
            Command::Bind => 0x02,
            Command::UdpAssociate => 0x03,
        }
    }
}

impl TryFrom<u8> for Command {
    type Error = Socks5Error;
    /// Fails with [`Socks5Error::UnknownCommand`].
    fn try_from(byte: u8) -> Result<Command, Socks5Error> {
        match byte {
            0x01 => Ok(Command::Connect),
            0x02 => Ok(Command::Bind),
            0x03 => Ok(Command::UdpAssociate),
            other => Err(Socks5Error::UnknownCommand(other)),
        }
    }
}

impl From<Command> for u8 {
    fn from(command: Command) -> u8 {
        command.to_u8()
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Command::Connect => "CONNECT",
            Command::Bind => "BIND",
            Command::UdpAssociate => "UDP ASSOCIATE",
        })
    }
}

/// A client's request (RFC 1928 §4): `VER` `CMD` `RSV` `ATYP` `DST.ADDR` `DST.PORT`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// What to do.
    pub command: Command,
    /// Where to: the destination (CONNECT), the expected peer (BIND) or the address the client
    /// will send datagrams from (UDP ASSOCIATE; often `0.0.0.0:0`).
    pub dst: Address,
}

impl Request {
    /// The longest request: a 255-byte domain.
    pub const MAX_LEN: usize = 3 + Address::MAX_LEN;

    /// Decodes a request from the start of `input`; returns it and the bytes consumed.
    ///
    /// Bytes are checked in order, so an unknown command is reported as soon as its byte
    /// arrives, before the rest of the request.
    pub fn decode(input: &[u8]) -> Result<(Request, usize), Socks5Error> {
        let mut r = Reader::new(input);
        r.at_least(3 + MIN_ADDRESS_LEN);
        read_socks_version(&mut r)?;
        let command = Command::try_from(r.u8()?)?;
        read_reserved(&mut r)?;
        let dst = Address::read(&mut r)?;
        Ok((Request { command, dst }, r.pos()))
    }

    /// Appends the request to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[SOCKS_VERSION, self.command.to_u8(), 0]);
        self.dst.encode(out);
    }

    /// The length of [`Request::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        3 + self.dst.encoded_len()
    }
}

/// The reply field of a reply (RFC 1928 §6, `REP`).
///
/// Equality and hashing go by the byte on the wire, so `ReplyCode::Unassigned(0)` equals
/// `ReplyCode::Succeeded`; [`ReplyCode::from`] always gives the named variant.
#[derive(Clone, Copy, Debug)]
pub enum ReplyCode {
    /// `X'00'` succeeded.
    Succeeded,
    /// `X'01'` general SOCKS server failure.
    GeneralFailure,
    /// `X'02'` connection not allowed by ruleset.
    NotAllowed,
    /// `X'03'` Network unreachable.
    NetworkUnreachable,
    /// `X'04'` Host unreachable.
    HostUnreachable,
    /// `X'05'` Connection refused.
    ConnectionRefused,
    /// `X'06'` TTL expired.
    TtlExpired,
    /// `X'07'` Command not supported.
    CommandNotSupported,
    /// `X'08'` Address type not supported.
    AddressTypeNotSupported,
    /// `X'09'` to `X'FF'`: unassigned, kept so that it round-trips.
    Unassigned(u8),
}

impl ReplyCode {
    /// The code a byte stands for.
    pub const fn from_u8(byte: u8) -> ReplyCode {
        match byte {
            0x00 => ReplyCode::Succeeded,
            0x01 => ReplyCode::GeneralFailure,
            0x02 => ReplyCode::NotAllowed,
            0x03 => ReplyCode::NetworkUnreachable,
            0x04 => ReplyCode::HostUnreachable,
            0x05 => ReplyCode::ConnectionRefused,
            0x06 => ReplyCode::TtlExpired,
            0x07 => ReplyCode::CommandNotSupported,
            0x08 => ReplyCode::AddressTypeNotSupported,
            other => ReplyCode::Unassigned(other),
        }
    }

    /// The byte on the wire.
    pub const fn to_u8(self) -> u8 {
        match self {
            ReplyCode::Succeeded => 0x00,
            ReplyCode::GeneralFailure => 0x01,
            ReplyCode::NotAllowed => 0x02,
            ReplyCode::NetworkUnreachable => 0x03,
            ReplyCode::HostUnreachable => 0x04,
            ReplyCode::ConnectionRefused => 0x05,
            ReplyCode::TtlExpired => 0x06,
            ReplyCode::CommandNotSupported => 0x07,
            ReplyCode::AddressTypeNotSupported => 0x08,
            ReplyCode::Unassigned(byte) => byte,
        }
    }

    /// Whether this is `X'00'` succeeded.
    pub const fn is_success(self) -> bool {
        self.to_u8() == 0
    }
}

impl From<u8> for ReplyCode {
    fn from(byte: u8) -> ReplyCode {
        ReplyCode::from_u8(byte)
    }
}

impl From<ReplyCode> for u8 {
    fn from(code: ReplyCode) -> u8 {
        code.to_u8()
    }
}

impl PartialEq for ReplyCode {
    fn eq(&self, other: &ReplyCode) -> bool {
        self.to_u8() == other.to_u8()
    }
}

impl Eq for ReplyCode {}

impl Hash for ReplyCode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.to_u8().hash(state);
    }
}

impl fmt::Display for ReplyCode {
    /// The RFC 1928 text of the code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match ReplyCode::from_u8(self.to_u8()) {
            ReplyCode::Succeeded => "succeeded",
            ReplyCode::GeneralFailure => "general SOCKS server failure",
            ReplyCode::NotAllowed => "connection not allowed by ruleset",
            ReplyCode::NetworkUnreachable => "network unreachable",
            ReplyCode::HostUnreachable => "host unreachable",
            ReplyCode::ConnectionRefused => "connection refused",
            ReplyCode::TtlExpired => "TTL expired",
            ReplyCode::CommandNotSupported => "command not supported",
            ReplyCode::AddressTypeNotSupported => "address type not supported",
            ReplyCode::Unassigned(byte) => return write!(f, "unassigned reply code {byte:#04x}"),
        };
        f.write_str(text)
    }
}

/// A server's reply (RFC 1928 §6): `VER` `REP` `RSV` `ATYP` `BND.ADDR` `BND.PORT`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The outcome.
    pub code: ReplyCode,
    /// The address the server bound: its outgoing address (CONNECT), its listening address
    /// then the peer's address (BIND), its UDP relay address (UDP ASSOCIATE).
    pub bound: Address,
}

impl Reply {
    /// The longest reply: a 255-byte domain.
    pub const MAX_LEN: usize = 3 + Address::MAX_LEN;

    /// A reply with `code` and the customary `0.0.0.0:0` bound address, as sent on failure.
    pub const fn unbound(code: ReplyCode) -> Reply {
        Reply {
            code,
            bound: Address::unspecified(),
        }
    }

    /// Decodes a reply from the start of `input`; returns it and the bytes consumed.
    pub fn decode(input: &[u8]) -> Result<(Reply, usize), Socks5Error> {
        let mut r = Reader::new(input);
        r.at_least(3 + MIN_ADDRESS_LEN);
        read_socks_version(&mut r)?;
        let code = ReplyCode::from_u8(r.u8()?);
        read_reserved(&mut r)?;
        let bound = Address::read(&mut r)?;
        Ok((Reply { code, bound }, r.pos()))
    }

    /// Appends the reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[SOCKS_VERSION, self.code.to_u8(), 0]);
        self.bound.encode(out);
    }

    /// The length of [`Reply::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        3 + self.bound.encoded_len()
    }
}
