//! The `CONNECT` request: its target, the Basic credentials, and the bytes.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::HttpConnectError;

/// The longest user name, and the longest password, accepted, in bytes.
pub const MAX_CREDENTIAL_LEN: usize = 255;
/// The longest host name accepted in a target, in bytes (RFC 1035 §2.3.4).
const MAX_HOST_NAME_LEN: usize = 253;

/// The target of a tunnel: `host:port` in the authority form of RFC 9112 §3.2.3, an IPv6
/// address in brackets.
///
/// ```
/// use cloudproxy_core::http_connect::Authority;
///
/// assert_eq!(Authority::from_socket_addr("[2001:db8::1]:443".parse().unwrap()).unwrap().to_string(), "[2001:db8::1]:443");
/// assert!(Authority::domain("edge.example.com\r\nX-Evil: 1", 443).is_err());
/// assert!(Authority::domain("edge.example.com", 0).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Authority {
    host: Host,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Authority {
    /// The target at an IP address and port (port 1..=65535).
    pub fn from_socket_addr(addr: SocketAddr) -> Result<Self, HttpConnectError> {
        check_port(addr.port())?;
        Ok(Authority {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        })
    }

    /// The target at a host name and port: 1 to 253 bytes of letters, digits, `-`, `.` and
    /// `_`; port 1..=65535. A name that is an IP literal is taken as the address.
    pub fn domain(name: &str, port: u16) -> Result<Self, HttpConnectError> {
        check_port(port)?;
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(Authority {
                host: Host::Ip(ip),
                port,
            });
        }
        let invalid = |why: String| Err(HttpConnectError::InvalidTarget { why });
        if name.is_empty() {
            return invalid("the host name is empty".to_owned());
        }
        if name.len() > MAX_HOST_NAME_LEN {
            return invalid(format!(
                "the host name is {} bytes long, more than {MAX_HOST_NAME_LEN}",
                name.len()
            ));
        }
        let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if let Some(bad) = name.bytes().find(|b| !allowed(b)) {
            return invalid(format!(
                "the host name {} contains the byte {}: only letters, digits, '-', '.' and '_' are allowed",
                super::escape_excerpt(name.as_bytes(), 64),
                super::escape_excerpt(&[bad], 1)
            ));
        }
        Ok(Authority {
            host: Host::Name(name.to_owned()),
            port,
        })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

fn check_port(port: u16) -> Result<(), HttpConnectError> {
    if port == 0 {
        return Err(HttpConnectError::InvalidTarget {
            why: "port 0: expected 1..=65535".to_owned(),
        });
    }
    Ok(())
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}:{}", self.port),
            Host::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// A user name and password for Basic authentication (RFC 7617), sent as UTF-8.
///
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BasicCredentials {
    user: String,
    password: String,
}

impl BasicCredentials {
    /// Credentials, checked: the user name 1..=255 bytes without `:` (RFC 7617 §2), the
    /// password at most 255 bytes, neither with control characters.
    pub fn new(user: &str, password: &str) -> Result<Self, HttpConnectError> {
        let why = if user.is_empty() {
            Some("the user name is empty")
        } else if user.len() > MAX_CREDENTIAL_LEN {
            Some("the user name is longer than 255 bytes")
        } else if password.len() > MAX_CREDENTIAL_LEN {
            Some("the password is longer than 255 bytes")
        } else if user.contains(':') {
            Some("the user name contains ':', which Basic authentication cannot carry")
        } else if user.chars().any(char::is_control) {
            Some("the user name contains a control character")
        } else if password.chars().any(char::is_control) {
            Some("the password contains a control character")
        } else {
            None
        };
        match why {
            Some(why) => Err(HttpConnectError::InvalidCredentials { why }),
            None => Ok(BasicCredentials {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password (for the canonical `setParameters` form, which must re-parse to the same
    /// configuration; `Debug` never shows it).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The `Proxy-Authorization` field value: `Basic base64(user ":" password)`.
    pub fn header_value(&self) -> String {
        let mut pair = Vec::with_capacity(self.user.len() + 1 + self.password.len());
        pair.extend_from_slice(self.user.as_bytes());
        pair.push(b':');
        pair.extend_from_slice(self.password.as_bytes());
        format!("Basic {}", base64(&pair))
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Writes `CONNECT target HTTP/1.1`, the `Host` field (RFC 9112 §3.2.3: the same authority)
/// and, when `credentials` are given, `Proxy-Authorization: Basic ...`, then the empty line.
pub fn encode_request(
    target: &Authority,
    credentials: Option<&BasicCredentials>,
    out: &mut Vec<u8>,
) {
    let mut text = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(credentials) = credentials {
        text.push_str("Proxy-Authorization: ");
        text.push_str(&credentials.header_value());
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    out.extend_from_slice(text.as_bytes());
}

/// Base64 with the standard alphabet and padding (RFC 4648 §4).
pub(crate) fn base64(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for group in input.chunks(3) {
        let b = [0, 1, 2].map(|k| group.get(k).copied().unwrap_or(0));
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(base64_digit((n >> shift) as u8 & 0x3F));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The digit of the standard alphabet for a sextet (`0..64`; higher bits are ignored).
fn base64_digit(sextet: u8) -> char {
    let v = sextet & 0x3F;
    char::from(match v {
        0..=25 => b'A' + v,
        26..=51 => b'a' + (v - 26),
        52..=61 => b'0' + (v - 52),
        62 => b'+',
        _ => b'/',
    })
}
