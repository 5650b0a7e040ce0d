//! Errors of the `setParameters` grammar.
//!
//! The messages are part of the interface: SDK engineers read them in logs and tools script
//! against them, so each names the key, the element and the reason, and the snapshot tests pin
//! them word for word.

use std::fmt;

/// Which element of `"rtc.proxy_server"` an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    /// The value as a whole (not an array, wrong length).
    Whole,
    /// Element 0, the proxy type.
    Type,
    /// Element 1, the host (an IP literal, a DNS name or an IP list).
    Host,
    /// Element 2, the port.
    Port,
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Element::Whole => "value",
            Element::Type => "element 0 (type)",
            Element::Host => "element 1 (host)",
            Element::Port => "element 2 (port)",
        })
    }
}

/// Why one `setParameters` call was rejected. A rejected call changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The text is longer than [`MAX_INPUT_LEN`](super::MAX_INPUT_LEN).
    #[error("setParameters: the input is {len} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// Length of the input in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The text is not JSON (or nests deeper than the parser allows).
    #[error("setParameters: not valid JSON at line {line} column {column}: {reason}")]
    NotJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The JSON parser's reason.
        reason: String,
    },
    /// The seed document's own type-2 example, copied literally: the IP list inside the host
    /// string is not escaped, so the text is not JSON.
    #[error(
        "setParameters: not valid JSON: the IP list in \"rtc.proxy_server\" element 1 (host) is \
         not escaped, as in the documentation's type-2 example; the host must be one JSON \
         string, so write {escaped} (or enable the compatibility option to accept this shape)"
    )]
    UnescapedIpList {
        /// The same call, correctly escaped.
        escaped: String,
    },
    /// The top-level JSON value is not an object.
    #[error("setParameters: expected one JSON object, found {found}")]
    NotAnObject {
        /// What was found instead, e.g. "an array".
        found: &'static str,
    },
    /// A proxy key appears twice in one call, which would make the call ambiguous.
    #[error("setParameters: key \"{key}\" appears more than once")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// `"rtc.enable_proxy"` is not a boolean.
    #[error("\"rtc.enable_proxy\": expected a JSON boolean (true or false), found {found}")]
    EnableProxy {
        /// What was found instead, e.g. "a string".
        found: String,
    },
    /// `"rtc.proxy_server"` is invalid.
    #[error("\"rtc.proxy_server\" {element}: {reason}")]
    ProxyServer {
        /// The element that is wrong.
        element: Element,
        /// Why, naming the offending value.
        reason: String,
    },
}

impl ParamsError {
    pub(crate) fn server(element: Element, reason: impl Into<String>) -> Self {
        ParamsError::ProxyServer {
            element,
            reason: reason.into(),
        }
    }
}

/// A short description of a JSON value for error messages: its kind and, when short, the value.
pub(crate) fn describe(value: &serde_json::Value) -> String {
    use serde_json::Value;
    let kind = match value {
        Value::Null => return "null".to_owned(),
        Value::Bool(b) => return format!("the boolean {b}"),
        Value::Number(n) => return format!("the number {n}"),
        Value::String(_) => "the string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let text = value.to_string();
    if text.chars().count() <= 40 {
        format!("{kind} {text}")
    } else {
        let head: String = text.chars().take(37).collect();
        format!("{kind} {head}...")
    }
}

/// The kind of a JSON value, for "found ..." messages.
pub(crate) fn kind_of(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
