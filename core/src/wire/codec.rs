//! Field-level codec: a checked cursor over a body, and the shared field encodings (addresses,
//! short strings, application ids).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::{DecodeError, MessageType, MAX_APP_ID_LEN};

/// Address family byte of an IPv4 address.
pub(crate) const FAMILY_V4: u8 = 4;
/// Address family byte of an IPv6 address.
pub(crate) const FAMILY_V6: u8 = 6;

/// A cursor over one message body. Every read is bounds-checked and reports an
/// [`DecodeError::Underrun`] naming the field that did not fit.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    msg_type: MessageType,
}

impl<'a> Reader<'a> {
    /// A cursor over `body`, the body of a `msg_type` message.
    pub(crate) fn new(body: &'a [u8], msg_type: MessageType) -> Self {
        Reader {
            buf: body,
            msg_type,
        }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.buf.split_at_checked(n) {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(head)
            }
            None => Err(DecodeError::Underrun {
                msg_type: self.msg_type,
                field,
            }),
        }
    }

    /// The next `N` bytes, as an array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let msg_type = self.msg_type;
        self.take(N, field)?
            .try_into()
            .map_err(|_| DecodeError::Underrun { msg_type, field })
    }

    /// The next byte.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let [b] = self.array::<1>(field)?;
        Ok(b)
    }

    /// The next big-endian `u16`.
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    /// The next big-endian `u32`.
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// The next big-endian `u64`.
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// All remaining bytes.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Checks that the whole body was consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBody {
                msg_type: self.msg_type,
                extra: self.buf.len(),
            })
        }
    }

    /// An IP address: family byte, then 4 or 16 address bytes.
    pub(crate) fn ip(&mut self, field: &'static str) -> Result<IpAddr, DecodeError> {
        match self.u8(field)? {
            FAMILY_V4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>(field)?))),
            FAMILY_V6 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>(field)?))),
            other => Err(DecodeError::BadAddressFamily(other)),
        }
    }

    /// A socket address: an IP address, then the port.
    pub(crate) fn socket_addr(&mut self, field: &'static str) -> Result<SocketAddr, DecodeError> {
        let ip = self.ip(field)?;
        let port = self.u16(field)?;
        Ok(match ip {
            IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, port)),
            IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)),
        })
    }

    /// An application id: a `str8` of 1..=64 printable ASCII bytes. The length byte is judged
    /// before the bytes are read.
    pub(crate) fn app_id(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = usize::from(self.u8(field)?);
        if len == 0 || len > MAX_APP_ID_LEN {
            return Err(DecodeError::BadAppId);
        }
        let bytes = self.take(len, field)?;
        if !bytes.iter().all(|b| is_app_id_byte(*b)) {
            return Err(DecodeError::BadAppId);
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadAppId)
    }
}

/// Whether `b` may appear in an application id: printable ASCII, no space.
fn is_app_id_byte(b: u8) -> bool {
    (0x21..=0x7E).contains(&b)
}

/// Whether `id` is a valid application id: 1..=64 bytes of printable ASCII `0x21..=0x7E`.
pub(crate) fn is_valid_app_id(id: &str) -> bool {
    (1..=MAX_APP_ID_LEN).contains(&id.len()) && id.bytes().all(is_app_id_byte)
}

/// Encoded length of an IP address.
pub(crate) fn ip_len(ip: &IpAddr) -> usize {
    match ip {
        IpAddr::V4(_) => 1 + 4,
        IpAddr::V6(_) => 1 + 16,
    }
}

/// Encoded length of a socket address.
pub(crate) fn socket_addr_len(addr: &SocketAddr) -> usize {
    ip_len(&addr.ip()) + 2
}

/// Writes an IP address: family byte, then the address bytes.
pub(crate) fn put_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(ip) => {
            out.push(FAMILY_V4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(FAMILY_V6);
            out.extend_from_slice(&ip.octets());
        }
    }
}

/// Writes a socket address: the IP address, then the port. An IPv6 address's flow info and
/// scope id are not carried.
pub(crate) fn put_socket_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    put_ip(out, &addr.ip());
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Writes a `str8` whose length the caller has validated (at most 255 bytes); longer input is
/// cut at 255 bytes rather than written with a wrong length byte.
pub(crate) fn put_str8(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend(bytes.iter().take(usize::from(len)));
}
