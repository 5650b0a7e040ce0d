//! Type 3, an enterprise HTTP proxy (`CONNECT` tunnels), **beyond the seed** (ByteRTC's HTTP
//! tunnel proxy): `[3, host, port]` or `[3, host, port, user, password]`.
//!
//! - host: an IPv4 or IPv6 literal (no brackets, no zone) or a DNS name (as for type 1: case
//!   and one trailing dot normalised away);
//! - port: `1..=65535` (no default: HTTP proxies listen on 3128, 8080, 80...);
//! - user and password: both or neither, strings; the user name 1..=255 bytes without `:`
//!   (RFC 7617 §2), the password at most 255 bytes, neither with control characters. Sent as
//!   Basic `Proxy-Authorization` only when the proxy answers `407` offering Basic.
//!
//! Errors name the element and never quote the password.

use std::fmt;
use std::net::IpAddr;

use serde_json::{json, Value};

use super::error::{kind_of, Element, ParamsError};
use super::host;
use crate::http_connect::BasicCredentials;

/// What a redacted password prints as.
pub(crate) const REDACTED: &str = "<redacted>";

/// Where an HTTP proxy (type 3) is: an IP address or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProxyHost {
    /// An IP literal.
    Ip(IpAddr),
    /// A DNS name, lower case, without a trailing dot.
    Domain(String),
}

impl fmt::Display for ProxyHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyHost::Ip(ip) => write!(f, "{ip}"),
            ProxyHost::Domain(name) => f.write_str(name),
        }
    }
}

/// Reads the host element of a type-3 server.
pub(crate) fn parse_host(value: &Value) -> Result<ProxyHost, ParamsError> {
    let Value::String(text) = value else {
        return Err(ParamsError::server(
            Element::Host,
            format!(
                "expected a string holding the HTTP proxy's IP address or DNS name, found {}",
                kind_of(value)
            ),
        ));
    };
    let why = |why: String| {
        ParamsError::server(
            Element::Host,
            format!("an HTTP proxy (type 3) needs its IP address or DNS name: {why}"),
        )
    };
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ProxyHost::Ip(ip));
    }
    if let Some(hint) = pasted_url_or_authority(text) {
        return Err(why(hint));
    }
    // Something that looks like an address (brackets, a zone, colons) gets the IP literal's
    // reason; anything else is judged as a DNS name.
    if text.contains(':') || text.contains('%') || text.starts_with('[') {
        return Err(why(host::parse_ip_literal(text).err().unwrap_or_default()));
    }
    host::normalize_dns_name(text)
        .map(ProxyHost::Domain)
        .map_err(why)
}

/// A host that is a whole URL (`http://proxy.corp:3128/`) or `host:port`: what to write
/// instead.
fn pasted_url_or_authority(text: &str) -> Option<String> {
    // A URL may carry credentials: never quote it then.
    let with_credentials = text.contains('@');
    let shown = if with_credentials {
        "the host (not shown: it holds credentials)".to_owned()
    } else {
        host::quote(text)
    };
    let (rest, what) = match text.split_once("://") {
        Some((_, rest)) => (rest, "a URL"),
        None => (text, "host:port"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (name, port) = match authority.rsplit_once(':') {
        // IPv6 literals hold colons: only a bracketed one has a port after "]:".
        Some((name, port)) if !name.contains(':') || name.ends_with(']') => (name, Some(port)),
        _ => (authority, None),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if what == "host:port" && port.is_none_or(|p| p.parse::<u16>().is_err()) {
        return None;
    }
    let port = match port.filter(|p| p.parse::<u16>().is_ok()) {
        Some(p) => format!("and {p} as element 2 (port)"),
        None => "and the port as element 2".to_owned(),
    };
    let credentials = if with_credentials {
        ", and the user name and password as elements 3 and 4"
    } else {
        ""
    };
    Some(format!(
        "{shown} is {what}: give the host alone as element 1, {}, {port}{credentials}",
        host::quote(name)
    ))
}

/// Reads the port element of a type-3 server: 1..=65535.
pub(crate) fn parse_port(value: &Value) -> Result<u16, ParamsError> {
    const RANGE: &str = "the HTTP proxy's port, 1..=65535";
    let port = super::integer(value, Element::Port, RANGE)?;
    match u16::try_from(port) {
        Ok(0) => Err(ParamsError::server(
            Element::Port,
            format!(
                "port 0 is not allowed for an HTTP proxy (type 3): expected {RANGE} (HTTP \
                 proxies commonly listen on 3128, 8080 or 80)"
            ),
        )),
        Ok(p) => Ok(p),
        Err(_) => Err(ParamsError::server(
            Element::Port,
            format!("{port} is out of range: expected {RANGE}"),
        )),
    }
}

/// Reads elements 3 and 4 (user, password) of a type-3 server.
pub(crate) fn parse_credentials(
    user: &Value,
    password: &Value,
) -> Result<BasicCredentials, ParamsError> {
    let Value::String(user) = user else {
        return Err(ParamsError::server(
            Element::User,
            format!(
                "expected a string holding the HTTP proxy's user name, found {}",
                kind_of(user)
            ),
        ));
    };
    let Value::String(password) = password else {
        return Err(ParamsError::server(
            Element::Password,
            format!(
                "expected a string holding the HTTP proxy's password, found {}",
                kind_of(password)
            ),
        ));
    };
    BasicCredentials::new(user, password).map_err(|e| {
        let text = e.to_string();
        let element = if text.contains("password") {
            Element::Password
        } else {
            Element::User
        };
        ParamsError::server(element, text)
    })
}

/// The `[3, host, port]` or `[3, host, port, user, password]` array; the password as is
/// (`redact` false: the canonical form) or as `"<redacted>"`.
pub(crate) fn to_json(
    host: &ProxyHost,
    port: u16,
    credentials: Option<&BasicCredentials>,
    redact: bool,
) -> Value {
    match credentials {
        None => json!([3, host.to_string(), port]),
        Some(c) => {
            let password = if redact { REDACTED } else { c.password() };
            json!([3, host.to_string(), port, c.user(), password])
        }
    }
}

/// The `setParameters` text `text` with every proxy password in it shown as `"<redacted>"`,
/// the way [`ProxyConfig::to_json_redacted`](super::ProxyConfig::to_json_redacted) shows the
/// configuration: for traces and reports that print a call's text as it was given, accepted
/// or not.
///
/// In valid JSON, every element of `rtc.proxy_server` from the fifth on (type 3's password, or
/// a password given to a type that takes none) becomes `"<redacted>"`, and the text is printed
/// again compactly (so nothing that is not in the parsed value, such as a duplicate key, is
/// kept). Text that is not valid JSON is kept only when every `rtc.proxy_server` in it names
/// type 0, 1 or 2 (the documentation's unescaped type-2 example, which no password is part
/// of); otherwise it is replaced whole by a note of its length.
///
/// ```
/// use cloudproxy_core::params::redact_text;
/// let text = r#"{"rtc.proxy_server":[3,"proxy.corp",3128,"alice","s3cret"]}"#;
/// assert_eq!(
///     redact_text(text),
///     r#"{"rtc.proxy_server":[3,"proxy.corp",3128,"alice","<redacted>"]}"#
/// );
/// assert_eq!(redact_text(r#"{"rtc.enable_proxy":true}"#), r#"{"rtc.enable_proxy":true}"#);
/// ```
pub fn redact_text(text: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return if unparsed_is_safe(text) {
            text.to_owned()
        } else {
            format!("{REDACTED} ({} bytes of setParameters text that is not valid JSON and may hold a proxy password)", text.len())
        };
    };
    let Some(server) = value
        .get_mut(super::KEY_PROXY_SERVER)
        .and_then(Value::as_array_mut)
    else {
        return text.to_owned();
    };
    if server.len() <= 4 {
        return text.to_owned();
    }
    for secret in server.iter_mut().skip(4) {
        *secret = Value::from(REDACTED);
    }
    value.to_string()
}

/// Whether a text that is not valid JSON names only proxy types without credentials: after
/// every `rtc.proxy_server`, the array's first element is `0`, `1` or `2`.
fn unparsed_is_safe(text: &str) -> bool {
    text.match_indices(super::KEY_PROXY_SERVER)
        .all(|(at, key)| {
            let rest = text[at + key.len()..].trim_start_matches(|c: char| {
                c == '"' || c == ':' || c == '[' || c.is_whitespace()
            });
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let after = rest[digits.len()..].chars().next();
            matches!(digits.as_str(), "0" | "1" | "2") && matches!(after, Some(',' | ']' | ' '))
        })
}
