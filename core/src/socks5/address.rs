//! Addresses (`ATYP` `ADDR` `PORT`), the bounded byte reader every decoder uses, and the UDP
//! relay header of RFC 1928 §7.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::Socks5Error;

/// `ATYP` of an IPv4 address.
pub(super) const ATYP_IPV4: u8 = 0x01;
/// `ATYP` of a domain name.
pub(super) const ATYP_DOMAIN: u8 = 0x03;
/// `ATYP` of an IPv6 address.
pub(super) const ATYP_IPV6: u8 = 0x04;

/// The shortest encoded address: `ATYP`, a one-byte domain (length + 1 byte), `PORT`.
pub(super) const MIN_ADDRESS_LEN: usize = 1 + 1 + 1 + 2;

/// A cursor over a decoder's input that turns running out of bytes into
/// [`Socks5Error::Incomplete`] with the best lower bound known so far.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// What the decoder has learnt so far about the total length of the message.
    min_total: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            min_total: 0,
        }
    }

    /// Bytes consumed so far.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes not consumed yet (the cursor only advances over bytes it has read, so it
    /// never passes the end; empty at the end).
    pub(super) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Records that the message needs at least `total` bytes in all.
    pub(super) fn at_least(&mut self, total: usize) {
        self.min_total = self.min_total.max(total);
    }

    fn incomplete(&self, end: usize) -> Socks5Error {
        Socks5Error::Incomplete {
            needed: self.min_total.max(end),
        }
    }

    pub(super) fn u8(&mut self) -> Result<u8, Socks5Error> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.incomplete(self.pos + 1)),
        }
    }

    pub(super) fn u16(&mut self) -> Result<u16, Socks5Error> {
        let [hi, lo] = self.array::<2>()?;
        Ok(u16::from_be_bytes([hi, lo]))
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Socks5Error> {
        let end = self.pos.saturating_add(n);
        match self.buf.get(self.pos..end) {
            Some(slice) => {
                self.pos = end;
                Ok(slice)
            }
            None => Err(self.incomplete(end)),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Socks5Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }
}

/// A SOCKS5 domain name (`ATYP` 3): 1 to 255 bytes, kept as bytes because the protocol does not
/// require them to be UTF-8 (and keeping them makes every valid encoding round-trip).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(Box<[u8]>);

impl DomainName {
    /// The longest domain name the one-byte length field can carry.
    pub const MAX_LEN: usize = 255;

    /// A domain name from its bytes; fails with [`Socks5Error::EmptyDomain`] or
    /// [`Socks5Error::DomainTooLong`].
    ///
    /// ```
    /// use cloudproxy_core::socks5::DomainName;
    /// assert_eq!(DomainName::new("example.com").unwrap().as_str(), Some("example.com"));
    /// assert!(DomainName::new("").is_err());
    /// ```
    pub fn new(name: impl Into<Vec<u8>>) -> Result<Self, Socks5Error> {
        let name = name.into();
        match name.len() {
            0 => Err(Socks5Error::EmptyDomain),
            len if len > Self::MAX_LEN => Err(Socks5Error::DomainTooLong { len }),
            _ => Ok(DomainName(name.into_boxed_slice())),
        }
    }

    /// The name's bytes, as on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name as text, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Display for DomainName {
    /// The name as text; bytes that are not UTF-8 are shown as ASCII escapes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => f.write_str(s),
            None => write!(f, "{}", self.0.escape_ascii()),
        }
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({:?})", self.to_string())
    }
}

impl TryFrom<&str> for DomainName {
    type Error = Socks5Error;
    fn try_from(name: &str) -> Result<Self, Socks5Error> {
        DomainName::new(name)
    }
}

impl TryFrom<String> for DomainName {
    type Error = Socks5Error;
    fn try_from(name: String) -> Result<Self, Socks5Error> {
        DomainName::new(name)
    }
}

/// A destination or bound address: `ATYP`, `ADDR` and `PORT` of RFC 1928 §4–§7.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// `ATYP` 1 (IPv4) or 4 (IPv6). Only the IP and the port travel: the flow info and scope id
    /// of an IPv6 socket address are not encoded and decode as 0.
    Ip(SocketAddr),
    /// `ATYP` 3: a domain name for the server to resolve, and a port.
    Domain(DomainName, u16),
}

impl Address {
    /// The longest encoded address: `ATYP`, a 255-byte domain with its length, `PORT`.
    pub const MAX_LEN: usize = 1 + 1 + DomainName::MAX_LEN + 2;

    /// `0.0.0.0:0`, the customary `BND` address of failure replies and the `DST` of a
    /// UDP ASSOCIATE whose client does not know its UDP source yet.
    pub const fn unspecified() -> Address {
        Address::Ip(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))
    }

    /// A domain-name address; fails like [`DomainName::new`].
    pub fn domain(name: impl Into<Vec<u8>>, port: u16) -> Result<Address, Socks5Error> {
        Ok(Address::Domain(DomainName::new(name)?, port))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            Address::Ip(addr) => addr.port(),
            Address::Domain(_, port) => *port,
        }
    }

    /// The `ATYP` byte this address encodes with.
    pub fn address_type(&self) -> u8 {
        match self {
            Address::Ip(SocketAddr::V4(_)) => ATYP_IPV4,
            Address::Ip(SocketAddr::V6(_)) => ATYP_IPV6,
            Address::Domain(..) => ATYP_DOMAIN,
        }
    }

    /// Decodes `ATYP` `ADDR` `PORT` from the start of `input`; returns the address and the bytes
    /// consumed.
    pub fn decode(input: &[u8]) -> Result<(Address, usize), Socks5Error> {
        let mut r = Reader::new(input);
        let addr = Address::read(&mut r)?;
        Ok((addr, r.pos()))
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Address, Socks5Error> {
        let start = r.pos();
        r.at_least(start + MIN_ADDRESS_LEN);
        match r.u8()? {
            ATYP_IPV4 => {
                r.at_least(start + 1 + 4 + 2);
                let ip = Ipv4Addr::from(r.array::<4>()?);
                let port = r.u16()?;
                Ok(Address::Ip(SocketAddr::V4(SocketAddrV4::new(ip, port))))
            }
            ATYP_IPV6 => {
                r.at_least(start + 1 + 16 + 2);
                let ip = Ipv6Addr::from(r.array::<16>()?);
                let port = r.u16()?;
                Ok(Address::Ip(SocketAddr::V6(SocketAddrV6::new(
                    ip, port, 0, 0,
                ))))
            }
            ATYP_DOMAIN => {
                let len = usize::from(r.u8()?);
                if len == 0 {
                    return Err(Socks5Error::EmptyDomain);
                }
                r.at_least(start + 2 + len + 2);
                let name = DomainName(r.bytes(len)?.into());
                let port = r.u16()?;
                Ok(Address::Domain(name, port))
            }
            other => Err(Socks5Error::UnknownAddressType(other)),
        }
    }

    /// Appends `ATYP` `ADDR` `PORT` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.address_type());
        match self {
            Address::Ip(SocketAddr::V4(a)) => out.extend_from_slice(&a.ip().octets()),
            Address::Ip(SocketAddr::V6(a)) => out.extend_from_slice(&a.ip().octets()),
            Address::Domain(name, _) => {
                // `DomainName` guarantees 1..=255 bytes.
                out.push(name.0.len() as u8);
                out.extend_from_slice(&name.0);
            }
        }
        out.extend_from_slice(&self.port().to_be_bytes());
    }

    /// The length of [`Address::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            Address::Ip(SocketAddr::V4(_)) => 4,
            Address::Ip(SocketAddr::V6(_)) => 16,
            Address::Domain(name, _) => 1 + name.0.len(),
        } + 2
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Address {
        Address::Ip(addr)
    }
}

impl From<SocketAddrV4> for Address {
    fn from(addr: SocketAddrV4) -> Address {
        Address::Ip(addr.into())
    }
}

impl From<SocketAddrV6> for Address {
    fn from(addr: SocketAddrV6) -> Address {
        Address::Ip(addr.into())
    }
}

impl fmt::Display for Address {
    /// `1.2.3.4:80`, `[::1]:443`, `example.com:443`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(addr) => write!(f, "{addr}"),
            Address::Domain(name, port) => write!(f, "{name}:{port}"),
        }
    }
}

/// The header RFC 1928 §7 puts before every datagram relayed through a UDP ASSOCIATE:
/// `RSV` (2 bytes, 0), `FRAG`, `ATYP` `DST.ADDR` `DST.PORT`.
///
/// As a codec it keeps any `FRAG` value so that every valid header round-trips;
/// [`decode_udp_datagram`] is what a relay uses, and it drops fragments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UdpHeader {
    /// The fragment number; 0 for a standalone datagram.
    pub frag: u8,
    /// Where the datagram goes (client to relay) or comes from (relay to client).
    pub dst: Address,
}

/// `RSV` (2) + `FRAG` (1).
const UDP_PREFIX_LEN: usize = 3;

/// Reads and checks `RSV`, returns `FRAG`.
fn read_udp_prefix(r: &mut Reader<'_>) -> Result<u8, Socks5Error> {
    r.at_least(UDP_PREFIX_LEN + MIN_ADDRESS_LEN);
    match r.u16()? {
        0 => r.u8(),
        found => Err(Socks5Error::BadReserved { found }),
    }
}

impl UdpHeader {
    /// Decodes a header from the start of `input`; returns it and the bytes consumed (the
    /// payload follows). A short input is [`Socks5Error::Incomplete`] here, as for every codec.
    pub fn decode(input: &[u8]) -> Result<(UdpHeader, usize), Socks5Error> {
        let mut r = Reader::new(input);
        let frag = read_udp_prefix(&mut r)?;
        let dst = Address::read(&mut r)?;
        Ok((UdpHeader { frag, dst }, r.pos()))
    }

    /// Appends the header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[0, 0, self.frag]);
        self.dst.encode(out);
    }

    /// The length of [`UdpHeader::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        UDP_PREFIX_LEN + self.dst.encoded_len()
    }
}

/// Splits a datagram received on a UDP ASSOCIATE relay into its address and payload.
///
/// A datagram is whole, so a short one is [`Socks5Error::Truncated`], not `Incomplete`. Any
/// datagram with `FRAG` != 0 is dropped with [`Socks5Error::Fragmented`], as real servers do
/// (RFC 1928 allows an implementation not to support fragmentation).
///
/// ```
/// use cloudproxy_core::socks5::{decode_udp_datagram, Address, Socks5Error};
///
/// let dgram = [0, 0, 0, 0x01, 10, 0, 0, 1, 0x00, 0x35, 0xAA, 0xBB];
/// let (dst, payload) = decode_udp_datagram(&dgram).unwrap();
/// assert_eq!(dst, Address::Ip("10.0.0.1:53".parse().unwrap()));
/// assert_eq!(payload, [0xAA, 0xBB]);
/// assert_eq!(decode_udp_datagram(&[0, 0, 1, 0x01]), Err(Socks5Error::Fragmented { frag: 1 }));
/// ```
pub fn decode_udp_datagram(datagram: &[u8]) -> Result<(Address, &[u8]), Socks5Error> {
    let truncated = |e| match e {
        Socks5Error::Incomplete { needed } => Socks5Error::Truncated { needed },
        other => other,
    };
    let mut r = Reader::new(datagram);
    let frag = read_udp_prefix(&mut r).map_err(truncated)?;
    if frag != 0 {
        return Err(Socks5Error::Fragmented { frag });
    }
    let dst = Address::read(&mut r).map_err(truncated)?;
    Ok((dst, r.rest()))
}

/// Appends a whole datagram for a UDP ASSOCIATE relay to `out`: the header (with `FRAG` = 0)
/// for `dst`, then `payload`.
pub fn encode_udp_datagram(dst: &Address, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(UDP_PREFIX_LEN + dst.encoded_len() + payload.len());
    out.extend_from_slice(&[0, 0, 0]);
    dst.encode(out);
    out.extend_from_slice(payload);
}
