//! The `setParameters` grammar for the proxy keys.
//!
//! `setParameters` takes one JSON object. Two keys belong to the proxy:
//!
//! - `"rtc.enable_proxy"`: a boolean. `true` turns the proxy on, `false` turns it off and keeps
//!   the chosen server for a later `true`.
//! - `"rtc.proxy_server"`: `[type, host, port]` with integer type and port:
//!   - `0`, SOCKS5: host an IPv4 or IPv6 literal, port `1..=65535`;
//!   - `1`, cloud proxy by domain: host a DNS name, port `0` (the default access-point ports)
//!     or `1..=65535`;
//!   - `2`, cloud proxy by IP list: host a string holding a JSON array of IP literals (a native
//!     JSON array is accepted too), 1 to 64 distinct addresses, port as for type 1;
//!   - `3`, an enterprise HTTP proxy (**beyond the seed**, from ByteRTC's HTTP tunnel proxy):
//!     host an IP literal or a DNS name, port `1..=65535`, and optionally a user name and a
//!     password as elements 3 and 4 (`[3, "proxy.corp", 3128, "alice", "secret"]`), sent with
//!     Basic authentication when the proxy asks. Signalling and TCP media only: no UDP.
//!
//! Every other key belongs to another SDK feature: it is accepted, ignored and listed in
//! [`ParamUpdate::ignored`]; one that looks like a misspelt proxy key (`rtc.enable_proxi`,
//! `RTC.ENABLE_PROXY`) also gets a "did you mean" in [`ParamUpdate::suggestions`]. A call is all or nothing: [`parse`] either returns the whole update
//! or an error, and an error changes nothing.
//!
//! ```
//! use cloudproxy_core::params::{parse, Mode, ProxyConfig};
//!
//! let mut config = ProxyConfig::default();
//! let update = parse(r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[2,"[\"1.1.1.1\",\"2.2.2.2\"]",0]}"#, Mode::Strict)?;
//! config.apply(&update);
//! assert_eq!(
//!     config.canonical(),
//!     r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[2,"[\"1.1.1.1\",\"2.2.2.2\"]",0]}"#
//! );
//! // The canonical form applied to a fresh configuration gives the same configuration.
//! let mut again = ProxyConfig::default();
//! again.apply(&parse(&config.canonical(), Mode::Strict)?);
//! assert_eq!(again, config);
//! # Ok::<(), cloudproxy_core::params::ParamsError>(())
//! ```

mod compat;
mod error;
mod host;
mod http;
mod source;
mod suggest;
mod toplevel;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde_json::{json, Value};

pub use error::{Element, ParamsError, MAX_EXCERPT_CHARS, MAX_FIX_CHARS, MAX_MESSAGE_CHARS};
pub use host::{MAX_DNS_LABEL_LEN, MAX_DNS_NAME_LEN, MAX_IP_LIST_LEN};
pub use http::{redact_text, ProxyHost};
pub use suggest::{KeySuggestion, MAX_SUGGESTION_DISTANCE};

use crate::http_connect::BasicCredentials;
use error::{describe, kind_of};

/// The largest `setParameters` text accepted, in bytes.
pub const MAX_INPUT_LEN: usize = 64 * 1024;
/// The key that turns the proxy on and off.
pub const KEY_ENABLE_PROXY: &str = "rtc.enable_proxy";
/// The key that chooses the proxy server.
pub const KEY_PROXY_SERVER: &str = "rtc.proxy_server";
/// The domain of the default cloud proxy access point.
pub const DEFAULT_DOMAIN: &str = "ap-proxy.agora.io";

/// How strictly [`parse`] reads its input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Only valid JSON is accepted (the default).
    #[default]
    Strict,
    /// Also accept the documentation's unescaped type-2 example,
    /// `{"rtc.proxy_server":[2, "["ip1","ip2"]", 0]}`, and exactly that shape.
    Compat,
}

/// The proxy server chosen with `"rtc.proxy_server"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProxyServer {
    /// Type 0: an enterprise SOCKS5 server.
    Socks5(SocketAddr),
    /// Type 1: the cloud proxy, found through a DNS name.
    CloudDomain {
        /// The access point's DNS name, lower case, without a trailing dot.
        domain: String,
        /// The access-point port, `0` for the default ports.
        port: u16,
    },
    /// Type 2: the cloud proxy at a list of IP addresses (when DNS is blocked).
    CloudIpList {
        /// The access points' addresses, distinct, in the order given; 1 to 64 of them.
        ips: Vec<IpAddr>,
        /// The access-point port, `0` for the default ports.
        port: u16,
    },
    /// Type 3 (**beyond the seed**, from ByteRTC's HTTP tunnel proxy): an enterprise HTTP
    /// proxy that opens TCP tunnels with `CONNECT`. Signalling and TCP media go through it;
    /// UDP media cannot.
    HttpConnect {
        /// The proxy's address or name.
        host: ProxyHost,
        /// The proxy's port, 1..=65535.
        port: u16,
        /// The user name and password for Basic `Proxy-Authorization`, sent only when the
        /// proxy answers `407` offering Basic.
        credentials: Option<BasicCredentials>,
    },
}

impl ProxyServer {
    /// The server used when the proxy is enabled and none was chosen:
    /// `[1, "ap-proxy.agora.io", 0]`.
    pub fn default_cloud() -> Self {
        ProxyServer::CloudDomain {
            domain: DEFAULT_DOMAIN.to_owned(),
            port: 0,
        }
    }

    /// The `proxy_type` number of the grammar: 0, 1, 2 or 3.
    pub fn proxy_type(&self) -> u8 {
        match self {
            ProxyServer::Socks5(_) => 0,
            ProxyServer::CloudDomain { .. } => 1,
            ProxyServer::CloudIpList { .. } => 2,
            ProxyServer::HttpConnect { .. } => 3,
        }
    }

    /// Whether this is the cloud proxy (type 1 or 2).
    pub fn is_cloud(&self) -> bool {
        matches!(
            self,
            ProxyServer::CloudDomain { .. } | ProxyServer::CloudIpList { .. }
        )
    }

    /// The `[type, host, port]` array of the canonical form (`[3, host, port, user,
    /// password]` for an HTTP proxy with credentials, the password in clear so that the form
    /// re-parses to the same server). A type-2 host is always the escaped-string form.
    pub fn to_json(&self) -> Value {
        self.json(false)
    }

    /// [`to_json`](Self::to_json) with an HTTP proxy's password shown as `"<redacted>"`: for
    /// logs and tools. It does not re-parse to the same server.
    pub fn to_json_redacted(&self) -> Value {
        self.json(true)
    }

    fn json(&self, redact: bool) -> Value {
        match self {
            ProxyServer::Socks5(addr) => json!([0, addr.ip().to_string(), addr.port()]),
            ProxyServer::CloudDomain { domain, port } => json!([1, domain, port]),
            ProxyServer::CloudIpList { ips, port } => {
                let list: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
                json!([2, Value::from(list).to_string(), port])
            }
            ProxyServer::HttpConnect {
                host,
                port,
                credentials,
            } => http::to_json(host, *port, credentials.as_ref(), redact),
        }
    }
}

impl fmt::Display for ProxyServer {
    /// The redacted JSON form (an HTTP proxy's password never shows).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json_redacted())
    }
}

/// The proxy configuration an engine holds: whether the proxy is on, and which server.
///
/// A fresh configuration is off with the default server, so that `"rtc.enable_proxy":true`
/// alone selects `[1, "ap-proxy.agora.io", 0]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProxyConfig {
    /// Whether the proxy is on.
    pub enabled: bool,
    /// The chosen server, kept while the proxy is off.
    pub server: ProxyServer,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            enabled: false,
            server: ProxyServer::default_cloud(),
        }
    }
}

impl ProxyConfig {
    /// Applies a parsed update (keys absent from the update stay as they are).
    pub fn apply(&mut self, update: &ParamUpdate) {
        if let Some(enabled) = update.enable_proxy {
            self.enabled = enabled;
        }
        if let Some(server) = &update.proxy_server {
            self.server = server.clone();
        }
    }

    /// The server in use: `Some` when the proxy is on.
    pub fn active_server(&self) -> Option<&ProxyServer> {
        self.enabled.then_some(&self.server)
    }

    /// The configuration as a setParameters JSON object (see [`ProxyConfig::canonical`]).
    pub fn to_json(&self) -> Value {
        json!({ KEY_ENABLE_PROXY: self.enabled, KEY_PROXY_SERVER: self.server.to_json() })
    }

    /// [`to_json`](Self::to_json) with an HTTP proxy's password shown as `"<redacted>"`, for
    /// printing (the engine CLI, logs, reports).
    pub fn to_json_redacted(&self) -> Value {
        json!({ KEY_ENABLE_PROXY: self.enabled, KEY_PROXY_SERVER: self.server.to_json_redacted() })
    }

    /// The canonical form: the configuration printed as one setParameters object, e.g.
    /// `{"rtc.enable_proxy":true,"rtc.proxy_server":[1,"ap-proxy.agora.io",0]}`. Applying it to a
    /// fresh configuration gives this configuration.
    pub fn canonical(&self) -> String {
        self.to_json().to_string()
    }
}

/// What one valid `setParameters` call asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamUpdate {
    /// The value of `"rtc.enable_proxy"`, if present.
    pub enable_proxy: Option<bool>,
    /// The value of `"rtc.proxy_server"`, if present.
    pub proxy_server: Option<ProxyServer>,
    /// Keys that belong to other SDK features, accepted and ignored, in input order.
    pub ignored: Vec<String>,
    /// The ignored keys that look like a misspelt proxy key, each with the key it is probably
    /// meant to be, in input order (each is also in [`ignored`](Self::ignored)).
    pub suggestions: Vec<KeySuggestion>,
}

impl ParamUpdate {
    /// Whether the call touches a proxy key (and so is subject to the engine's state rule).
    pub fn touches_proxy(&self) -> bool {
        self.enable_proxy.is_some() || self.proxy_server.is_some()
    }
}

/// Parses one `setParameters` text.
///
/// Runs in time linear in the input and never panics: inputs over [`MAX_INPUT_LEN`] bytes and
/// JSON nested deeper than the parser's limit (128) are rejected with an error. No error
/// message is longer than [`MAX_MESSAGE_CHARS`] characters, whatever the input.
///
/// Texts that are not JSON but are recognisably something else get an error that says what
/// they are and shows the text to pass: the seed document's unescaped type-2 example, a
/// leading UTF-8 byte-order mark, a call pasted from Java or C source (backslashes kept, or
/// the whole quoted literal).
pub fn parse(text: &str, mode: Mode) -> Result<ParamUpdate, ParamsError> {
    if text.len() > MAX_INPUT_LEN {
        return Err(ParamsError::TooLarge {
            len: text.len(),
            max: MAX_INPUT_LEN,
        });
    }
    if let Some(without) = text.strip_prefix('\u{feff}') {
        return Err(ParamsError::ByteOrderMark {
            without: without.to_owned(),
        });
    }
    let entries = match toplevel::read_object(text) {
        Ok(entries) => entries,
        Err(err) => return recover(text, mode, err),
    };
    let mut update = ParamUpdate::default();
    for (key, value) in entries {
        match key.as_str() {
            KEY_ENABLE_PROXY => {
                if update.enable_proxy.is_some() {
                    return Err(ParamsError::DuplicateKey { key });
                }
                update.enable_proxy = Some(parse_enable_proxy(&value)?);
            }
            KEY_PROXY_SERVER => {
                if update.proxy_server.is_some() {
                    return Err(ParamsError::DuplicateKey { key });
                }
                update.proxy_server = Some(parse_proxy_server(&value)?);
            }
            _ => {
                if !update.ignored.contains(&key) {
                    update.suggestions.extend(suggest::suggest(&key));
                    update.ignored.push(key);
                }
            }
        }
    }
    Ok(update)
}

/// A text that is not one JSON object (`err` says why): the seed's unescaped type-2 example
/// (read in compat mode, an error naming the fix in strict mode), a paste from source, or
/// `err` itself.
fn recover(text: &str, mode: Mode, err: ParamsError) -> Result<ParamUpdate, ParamsError> {
    if let Some(escaped) = compat::recover_unescaped_ip_list(text) {
        return match mode {
            Mode::Compat => parse(&escaped, Mode::Strict),
            Mode::Strict => Err(ParamsError::UnescapedIpList { escaped }),
        };
    }
    Err(match source::recognise(text) {
        Some(source::Pasted::Escaped(unescaped)) => ParamsError::EscapedSource { unescaped },
        Some(source::Pasted::Quoted(unquoted)) => ParamsError::QuotedSource { unquoted },
        None => err,
    })
}

fn parse_enable_proxy(value: &Value) -> Result<bool, ParamsError> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(ParamsError::EnableProxy {
            found: describe(other),
        }),
    }
}

fn parse_proxy_server(value: &Value) -> Result<ProxyServer, ParamsError> {
    let Value::Array(items) = value else {
        return Err(ParamsError::server(
            Element::Whole,
            format!(
                "expected an array [type, host, port], found {}",
                describe(value)
            ),
        ));
    };
    let (kind, host, port, credentials) = match items.as_slice() {
        [kind, host, port] => (kind, host, port, None),
        [kind, host, port, user, password] => (kind, host, port, Some((user, password))),
        _ => return Err(wrong_length(items)),
    };
    let kind = integer(kind, Element::Type, TYPE_RANGE)?;
    if credentials.is_some() && kind != 3 {
        return Err(ParamsError::server(
            Element::Whole,
            format!(
                "expected 3 elements [type, host, port] for type {kind}, found 5 elements: only \
                 type 3 (HTTP proxy) takes a user name and a password as elements 3 and 4"
            ),
        ));
    }
    match kind {
        0 => {
            let ip = match host {
                Value::String(text) => host::parse_ip_literal(text).map_err(|why| {
                    ParamsError::server(
                        Element::Host,
                        format!("SOCKS5 (type 0) needs the server's IP address: {why}"),
                    )
                })?,
                other => return Err(expected_string(other, "the SOCKS5 server's IP address")),
            };
            let port = port_number(port, false)?;
            Ok(ProxyServer::Socks5(SocketAddr::new(ip, port)))
        }
        1 => {
            let domain = match host {
                Value::String(text) => host::normalize_dns_name(text)
                    .map_err(|why| ParamsError::server(Element::Host, why))?,
                other => return Err(expected_string(other, "the access point's domain name")),
            };
            let port = port_number(port, true)?;
            Ok(ProxyServer::CloudDomain { domain, port })
        }
        2 => {
            let ips = match host {
                Value::String(text) => host::ip_list_from_string(text),
                Value::Array(items) => host::ip_list_from_array(items),
                other => {
                    return Err(ParamsError::server(
                        Element::Host,
                        format!(
                            "expected a string holding a JSON array of IP addresses, such as \"[\\\"1.1.1.1\\\"]\", found {}",
                            describe(other)
                        ),
                    ))
                }
            }
            .map_err(|why| ParamsError::server(Element::Host, why))?;
            let port = port_number(port, true)?;
            Ok(ProxyServer::CloudIpList { ips, port })
        }
        3 => {
            let host = http::parse_host(host)?;
            let port = http::parse_port(port)?;
            let credentials = credentials
                .map(|(user, password)| http::parse_credentials(user, password))
                .transpose()?;
            Ok(ProxyServer::HttpConnect {
                host,
                port,
                credentials,
            })
        }
        other => Err(ParamsError::server(
            Element::Type,
            format!("unknown proxy type {other}: expected {TYPE_RANGE}"),
        )),
    }
}

/// The error for an array that is neither `[type, host, port]` nor a type-3 server with
/// credentials.
fn wrong_length(items: &[Value]) -> ParamsError {
    let n = items.len();
    let plural = if n == 1 { "" } else { "s" };
    let is_http = items
        .first()
        .and_then(Value::as_u64)
        .is_some_and(|kind| kind == 3);
    let reason = if is_http && n == 4 {
        "type 3 (HTTP proxy) takes [3, host, port] or [3, host, port, user, password], found 4 \
         elements: give both the user name and the password, or neither"
            .to_owned()
    } else if is_http {
        format!(
            "type 3 (HTTP proxy) takes [3, host, port] or [3, host, port, user, password], \
             found {n} element{plural}"
        )
    } else {
        format!("expected 3 elements [type, host, port], found {n} element{plural}")
    };
    ParamsError::server(Element::Whole, reason)
}

fn expected_string(found: &Value, what: &str) -> ParamsError {
    ParamsError::server(
        Element::Host,
        format!("expected a string holding {what}, found {}", kind_of(found)),
    )
}

/// The proxy types, as errors name them.
const TYPE_RANGE: &str =
    "0 (SOCKS5), 1 (cloud proxy by domain), 2 (cloud proxy by IP list) or 3 (HTTP proxy)";

/// A non-negative JSON integer written without fraction or exponent; `range` is what the
/// element accepts, named when the number is too large for any integer.
pub(crate) fn integer(value: &Value, element: Element, range: &str) -> Result<u64, ParamsError> {
    let Value::Number(n) = value else {
        return Err(ParamsError::server(
            element,
            format!("expected an integer, found {}", describe(value)),
        ));
    };
    if let Some(v) = n.as_u64() {
        return Ok(v);
    }
    if n.is_i64() {
        return Err(ParamsError::server(element, format!("{n} is negative")));
    }
    // Beyond the integers: the JSON parser reads integers outside u64 and i64 as floats, so
    // their digits are gone; name the bound they passed instead of a rounded value.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    let beyond = match n.as_f64() {
        Some(f) if f >= 2.0 * TWO_POW_63 => Some("above 18446744073709551615"),
        Some(f) if f <= -TWO_POW_63 => Some("at or below -9223372036854775808"),
        _ => None,
    };
    if let Some(beyond) = beyond {
        return Err(ParamsError::server(
            element,
            format!("a number {beyond} is out of range: expected {range}"),
        ));
    }
    Err(ParamsError::server(
        element,
        format!("{n} is not an integer: write it without fraction or exponent"),
    ))
}

fn port_number(value: &Value, zero_means_default: bool) -> Result<u16, ParamsError> {
    let range = if zero_means_default {
        "0 (the default access-point ports) or 1..=65535"
    } else {
        "the SOCKS5 server's port, 1..=65535"
    };
    let port = integer(value, Element::Port, range)?;
    match u16::try_from(port) {
        Ok(0) if !zero_means_default => Err(ParamsError::server(
            Element::Port,
            format!("port 0 is not allowed for SOCKS5 (type 0): expected {range}"),
        )),
        Ok(p) => Ok(p),
        Err(_) => Err(ParamsError::server(
            Element::Port,
            format!("{port} is out of range: expected {range}"),
        )),
    }
}
