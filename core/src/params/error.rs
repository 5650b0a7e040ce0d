//! Errors of the `setParameters` grammar.
//!
//! The messages are part of the interface: SDK engineers read them in logs and tools script
//! against them, so each names the key, the element and the reason, and the snapshot tests pin
//! them word for word.

use std::fmt;

/// The most characters of one value or key of the input an error message quotes; longer ones
/// are cut on a character boundary and end in `...`.
pub const MAX_EXCERPT_CHARS: usize = 64;
/// The most characters of a corrected text (the text to pass instead) an error message shows;
/// a longer one is cut on a character boundary, ends in `...` and is followed by its length.
pub const MAX_FIX_CHARS: usize = 256;
/// No error message of the grammar is longer than this many characters, whatever the input:
/// the fixed wording, at most one corrected text ([`MAX_FIX_CHARS`]) and at most two excerpts
/// ([`MAX_EXCERPT_CHARS`]).
pub const MAX_MESSAGE_CHARS: usize = 800;

/// Which element of `"rtc.proxy_server"` an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Element {
    /// The value as a whole (not an array, wrong length).
    Whole,
    /// Element 0, the proxy type.
    Type,
    /// Element 1, the host (an IP literal, a DNS name or an IP list).
    Host,
    /// Element 2, the port.
    Port,
    /// Element 3 of a type-3 server, the HTTP proxy's user name (beyond the seed).
    User,
    /// Element 4 of a type-3 server, the HTTP proxy's password (beyond the seed; never
    /// quoted in an error).
    Password,
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Element::Whole => "value",
            Element::Type => "element 0 (type)",
            Element::Host => "element 1 (host)",
            Element::Port => "element 2 (port)",
            Element::User => "element 3 (user)",
            Element::Password => "element 4 (password)",
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
         string, so write {} (or enable the compatibility option to accept this shape)",
        Fix(.escaped)
    )]
    UnescapedIpList {
        /// The same call, correctly escaped (whole; the message shows at most
        /// [`MAX_FIX_CHARS`] characters of it).
        escaped: String,
    },
    /// The text starts with a UTF-8 byte-order mark (U+FEFF), as some editors and Windows tools
    /// write at the start of a file; JSON text must not begin with one.
    #[error(
        "setParameters: the text starts with a UTF-8 byte-order mark (U+FEFF, bytes EF BB BF), \
         which JSON does not allow: remove it and pass {}",
        Fix(.without)
    )]
    ByteOrderMark {
        /// The text without the mark (whole; the message shows at most [`MAX_FIX_CHARS`]
        /// characters of it).
        without: String,
    },
    /// The text is still escaped as in a Java or C string literal (`{\"rtc.enable_proxy\":true}`):
    /// the source form was pasted instead of the string's value.
    #[error(
        "setParameters: not valid JSON: the text is escaped as inside a Java or C string \
         literal (a backslash before each quote); pass the string's value, not its source \
         form: {}",
        Fix(.unescaped)
    )]
    EscapedSource {
        /// The string's value: the call to pass (whole; the message shows at most
        /// [`MAX_FIX_CHARS`] characters of it).
        unescaped: String,
    },
    /// The text is a whole Java or C string literal, quotes included
    /// (`"{\"rtc.enable_proxy\":true}"`): the source form was pasted instead of its value.
    #[error(
        "setParameters: the text is a quoted string literal, as written in Java or C source; \
         pass its value, without the outer quotes and the backslashes: {}",
        Fix(.unquoted)
    )]
    QuotedSource {
        /// The literal's value: the call to pass (whole; the message shows at most
        /// [`MAX_FIX_CHARS`] characters of it).
        unquoted: String,
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

/// A corrected text in an error message: whole when short, else its first [`MAX_FIX_CHARS`]
/// characters, `...` and its length.
struct Fix<'a>(&'a str);

impl fmt::Display for Fix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.chars().count();
        if total <= MAX_FIX_CHARS {
            f.write_str(self.0)
        } else {
            write!(
                f,
                "{}... (the first {MAX_FIX_CHARS} of {total} characters)",
                excerpt(self.0, MAX_FIX_CHARS)
            )
        }
    }
}

/// The first `max_chars` characters of `text` (all of it when it is that short), cut on a
/// character boundary.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => &text[..cut],
        None => text,
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
