//! The proxy's response head: status line and header fields (RFC 9112 §4, §5), read
//! incrementally within the bounds of the module.

use super::{
    escape_excerpt, HttpConnectError, MAX_HEADERS, MAX_HEADER_LINE_LEN, MAX_HEAD_LEN,
    MAX_LISTED_SCHEMES, MAX_STATUS_LINE_LEN,
};

/// The HTTP version of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// `HTTP/1.0`: the connection closes after the response unless `Connection: keep-alive`.
    Http10,
    /// `HTTP/1.1`: the connection stays open unless `Connection: close`.
    Http11,
}

/// One header field as received: the name as sent, the value without surrounding whitespace
/// (continuation lines joined with one space; bytes that are not UTF-8 replaced).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The field name, as sent (compare it without regard to ASCII case).
    pub name: String,
    /// The field value.
    pub value: String,
}

/// How the body of a response that is not `2xx` ends (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyFraming {
    /// No body: `1xx`, `204` and `304`.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
    /// Until the proxy closes the connection (no length given, or a transfer coding other than
    /// `chunked` last).
    UntilClose,
    /// Invalid or conflicting `Content-Length`, or both `Content-Length` and
    /// `Transfer-Encoding`: the body's end cannot be trusted, so the connection is not reused.
    Unclear,
}

/// A response head.
///
/// ```
/// use cloudproxy_core::http_connect::{BodyFraming, HttpVersion, ResponseHead};
///
/// let text = b"HTTP/1.0 407 Proxy Authentication Required\r\n\
///     Proxy-Authenticate: Basic realm=\"corp, inc\", NTLM\r\nContent-Length: 6\r\n\r\nDenied";
/// let (head, used) = ResponseHead::decode(text).unwrap().unwrap();
/// assert_eq!((head.version, head.status), (HttpVersion::Http10, 407));
/// assert_eq!(head.auth_schemes(), ["Basic", "NTLM"]);
/// assert_eq!(head.body_framing(), BodyFraming::Length(6));
/// assert!(!head.keeps_alive()); // HTTP/1.0 without keep-alive
/// assert_eq!(&text[used..], b"Denied");
/// let mut out = Vec::new();
/// head.encode(&mut out);
/// assert_eq!(ResponseHead::decode(&out).unwrap().unwrap().0, head);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResponseHead {
    /// The version of the status line.
    pub version: HttpVersion,
    /// The status code, 100..=599.
    pub status: u16,
    /// The reason phrase (may be empty; bytes that are not UTF-8 replaced).
    pub reason: String,
    /// The header fields, in order.
    pub headers: Vec<Header>,
}

impl ResponseHead {
    /// Decodes one head from the start of `input`: `Ok(Some((head, used)))` with the number of
    /// bytes it took (what follows is the body, or the tunnel); `Ok(None)` when `input` is a
    /// valid, within-bounds prefix of a head; an error naming the bound or the line otherwise.
    pub fn decode(input: &[u8]) -> Result<Option<(ResponseHead, usize)>, HttpConnectError> {
        HeadReader::new().push(input)
    }

    /// Writes the head: status line, fields, empty line, each line ended by CRLF. A head decoded
    /// from bytes that were not UTF-8 (each replaced by the 3-byte U+FFFD) or with continuation
    /// lines (joined into one) encodes longer than it came, possibly past a bound.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let version = match self.version {
            HttpVersion::Http10 => "1.0",
            HttpVersion::Http11 => "1.1",
        };
        out.extend_from_slice(
            format!("HTTP/{version} {} {}\r\n", self.status, self.reason).as_bytes(),
        );
        for header in &self.headers {
            out.extend_from_slice(format!("{}: {}\r\n", header.name, header.value).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The values of every field called `name` (without regard to ASCII case), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every element of the comma-separated lists in the fields called `name`, trimmed.
    fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values(name)
            .flat_map(|v| v.split(','))
            .map(|item| item.trim_matches([' ', '\t']))
            .filter(|item| !item.is_empty())
    }

    /// `2xx`: for `CONNECT`, the tunnel is established (RFC 9110 §9.3.6).
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `1xx` other than `101`: an interim response, a final one follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// Whether the proxy keeps the connection open after this response (RFC 9112 §9.3):
    /// not after `Connection: close` (or the older `Proxy-Connection: close`); in HTTP/1.0
    /// only after `Connection: keep-alive`.
    pub fn keeps_alive(&self) -> bool {
        let mut keep_alive = false;
        for token in self.list("connection").chain(self.list("proxy-connection")) {
            if token.eq_ignore_ascii_case("close") {
                return false;
            }
            keep_alive |= token.eq_ignore_ascii_case("keep-alive");
        }
        self.version == HttpVersion::Http11 || keep_alive
    }

    /// How the body of this (non-`2xx`) response ends.
    pub fn body_framing(&self) -> BodyFraming {
        if self.status < 200 || self.status == 204 || self.status == 304 {
            return BodyFraming::Empty;
        }
        let has_length = self.values("content-length").next().is_some();
        if let Some(last) = self.list("transfer-encoding").last() {
            return match (last.eq_ignore_ascii_case("chunked"), has_length) {
                (_, true) => BodyFraming::Unclear,
                (true, false) => BodyFraming::Chunked,
                (false, false) => BodyFraming::UntilClose,
            };
        }
        if !has_length {
            return BodyFraming::UntilClose;
        }
        let mut length = None;
        for item in self.values("content-length").flat_map(|v| v.split(',')) {
            let item = item.trim_matches([' ', '\t']);
            let n = match item.bytes().all(|b| b.is_ascii_digit()) {
                true => item.parse::<u64>().ok(),
                false => None,
            };
            match (n, length) {
                (None, _) => return BodyFraming::Unclear,
                (Some(n), Some(seen)) if n != seen => return BodyFraming::Unclear,
                (Some(n), _) => length = Some(n),
            }
        }
        length.map_or(BodyFraming::Unclear, BodyFraming::Length)
    }

    /// The schemes of the `Proxy-Authenticate` challenges, in order, each once (compared
    /// without regard to case), at most [`MAX_LISTED_SCHEMES`], each cut to 32 characters.
    pub fn auth_schemes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for scheme in self.schemes() {
            if out.len() == MAX_LISTED_SCHEMES {
                break;
            }
            if !out.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
                out.push(scheme.chars().take(32).collect());
            }
        }
        out
    }

    /// Whether a `Proxy-Authenticate` challenge offers `Basic`.
    pub fn offers_basic(&self) -> bool {
        self.schemes().any(|s| s.eq_ignore_ascii_case("basic"))
    }

    /// The schemes of the challenges (RFC 9110 §11.6.1): in the comma-separated list of
    /// challenges and their parameters (commas inside quoted strings do not count), an element
    /// that starts with a token not followed by `=` starts a challenge.
    fn schemes(&self) -> impl Iterator<Item = &str> + '_ {
        self.values("proxy-authenticate")
            .flat_map(split_outside_quotes)
            .filter_map(|item| {
                let item = item.trim_matches([' ', '\t']);
                let end = item.find(|c: char| !is_tchar(c)).unwrap_or(item.len());
                let (token, after) = item.split_at(end);
                let param = after.trim_start_matches([' ', '\t']).starts_with('=');
                (!token.is_empty() && !param).then_some(token)
            })
    }
}

/// Splits a field value at the commas that are not inside a quoted string.
fn split_outside_quotes(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let text = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, c) in text.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    rest = Some(&text[i + 1..]);
                    return Some(&text[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Reads a response head from bytes arriving in any chunking, checking every bound as the
/// bytes come (so it never holds more than [`MAX_HEAD_LEN`] bytes, and refuses a non-HTTP
/// answer at its first wrong byte).
///
/// Line ends are CRLF; a bare LF is accepted too (RFC 9112 §2.2). After a head is returned the
/// reader is empty again, ready for the next head on the same connection.
#[derive(Clone, Debug, Default)]
pub struct HeadReader {
    buf: Vec<u8>,
    /// Where the current line starts in `buf`.
    line_start: usize,
    /// Complete lines so far (the status line included).
    lines: usize,
}

impl HeadReader {
    /// An empty reader.
    pub fn new() -> Self {
        HeadReader::default()
    }

    /// Bytes held, at most [`MAX_HEAD_LEN`].
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Takes bytes from `input` until the head is complete: then returns it with the number of
    /// bytes of `input` it took; `Ok(None)` when all of `input` was taken and the head goes on.
    /// After an error the reader is spent (the caller closes the connection).
    pub fn push(
        &mut self,
        input: &[u8],
    ) -> Result<Option<(ResponseHead, usize)>, HttpConnectError> {
        for (i, &b) in input.iter().enumerate() {
            if self.buf.len() == MAX_HEAD_LEN {
                return Err(HttpConnectError::HeadTooLarge { max: MAX_HEAD_LEN });
            }
            self.buf.push(b);
            if self.lines == 0 && self.buf.len() <= 5 && !b"HTTP/".starts_with(&self.buf) {
                let mut start = std::mem::take(&mut self.buf);
                start.extend(input.iter().skip(i + 1).take(32));
                return Err(HttpConnectError::NotHttp {
                    start: escape_excerpt(&start, 32),
                });
            }
            if b != b'\n' {
                let limit = self.line_limit();
                if self.buf.len() - self.line_start > limit + 1 {
                    return Err(self.line_too_long());
                }
                continue;
            }
            let end = self.buf.len() - 1;
            let content_end = match self.buf.get(self.line_start..end).and_then(|l| l.last()) {
                Some(b'\r') => end - 1,
                _ => end,
            };
            if content_end - self.line_start > self.line_limit() {
                return Err(self.line_too_long());
            }
            if content_end == self.line_start {
                let head = parse_head(&self.buf)?;
                *self = HeadReader::new();
                return Ok(Some((head, i + 1)));
            }
            self.lines += 1;
            if self.lines > MAX_HEADERS + 1 {
                return Err(HttpConnectError::TooManyHeaders { max: MAX_HEADERS });
            }
            self.line_start = self.buf.len();
        }
        Ok(None)
    }

    fn line_limit(&self) -> usize {
        if self.lines == 0 {
            MAX_STATUS_LINE_LEN
        } else {
            MAX_HEADER_LINE_LEN
        }
    }

    fn line_too_long(&self) -> HttpConnectError {
        if self.lines == 0 {
            HttpConnectError::StatusLineTooLong {
                max: MAX_STATUS_LINE_LEN,
            }
        } else {
            HttpConnectError::HeaderLineTooLong {
                line: self.lines + 1,
                max: MAX_HEADER_LINE_LEN,
            }
        }
    }
}

fn malformed(line: usize, why: impl Into<String>) -> HttpConnectError {
    HttpConnectError::MalformedHead {
        line,
        why: why.into(),
    }
}

/// Parses a complete head (ending in an empty line), whose bounds were checked while reading.
fn parse_head(buf: &[u8]) -> Result<ResponseHead, HttpConnectError> {
    let mut lines = buf
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .enumerate()
        .map(|(i, line)| (i + 1, line));
    let (_, status_line) = lines.next().unwrap_or((1, &[]));
    let (version, status, reason) = parse_status_line(status_line)?;
    let mut headers: Vec<Header> = Vec::new();
    for (n, line) in lines {
        if line.is_empty() {
            break;
        }
        if line.contains(&b'\r') {
            return Err(malformed(n, "a bare CR inside the line"));
        }
        if let Some(b' ' | b'\t') = line.first() {
            // obs-fold (RFC 9112 §5.2): a user agent replaces it with a space.
            let Some(last) = headers.last_mut() else {
                return Err(malformed(
                    n,
                    "a continuation line (starting with whitespace) before any header field",
                ));
            };
            let value = field_value(n, &last.name, line)?;
            if !value.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(&value);
            }
            continue;
        }
        let mut parts = line.splitn(2, |&b| b == b':');
        let (Some(name), Some(raw_value)) = (parts.next(), parts.next()) else {
            return Err(malformed(
                n,
                format!("no ':' in the header line {}", escape_excerpt(line, 64)),
            ));
        };
        if name.is_empty() {
            return Err(malformed(n, "the header field name is empty"));
        }
        if let Some(&bad) = name.iter().find(|&&b| !is_tchar(char::from(b))) {
            let why = if matches!(bad, b' ' | b'\t') {
                format!(
                    "whitespace between the field name {} and ':'",
                    escape_excerpt(name.trim_ascii_end(), 64)
                )
            } else {
                format!("the field name {} is not a token", escape_excerpt(name, 64))
            };
            return Err(malformed(n, why));
        }
        // A token is ASCII, so the name is valid UTF-8.
        let name = String::from_utf8_lossy(name).into_owned();
        let value = field_value(n, &name, raw_value)?;
        headers.push(Header { name, value });
    }
    Ok(ResponseHead {
        version,
        status,
        reason,
        headers,
    })
}

/// A field value without surrounding whitespace; no control character but HTAB.
fn field_value(n: usize, name: &str, raw: &[u8]) -> Result<String, HttpConnectError> {
    let value = raw.trim_ascii();
    if value.iter().any(|&b| is_ctl(b) && b != b'\t') {
        return Err(malformed(
            n,
            format!(
                "a control character in the value of {}",
                escape_excerpt(name.as_bytes(), 64)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

/// `HTTP/1.x SP 3DIGIT [SP reason]`; the space before an empty reason may be missing.
fn parse_status_line(line: &[u8]) -> Result<(HttpVersion, u16, String), HttpConnectError> {
    let rest = line.strip_prefix(b"HTTP/").unwrap_or(line);
    let token_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let (token, after) = rest.split_at(token_len);
    let version = match token {
        b"1.0" => HttpVersion::Http10,
        b"1.1" => HttpVersion::Http11,
        _ if !token.is_empty() && token.iter().all(|&b| b.is_ascii_digit() || b == b'.') => {
            return Err(HttpConnectError::UnsupportedVersion {
                version: escape_excerpt(token, 16),
            })
        }
        _ => {
            return Err(malformed(
                1,
                "expected the version HTTP/1.0 or HTTP/1.1, a space and a status code",
            ))
        }
    };
    let Some(after) = after.strip_prefix(b" ") else {
        return Err(malformed(1, "expected a space after the HTTP version"));
    };
    let (code, after_code) = match after {
        [a, b, c, rest @ ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => (
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'),
            rest,
        ),
        _ => {
            return Err(malformed(
                1,
                "expected a three-digit status code after the version",
            ))
        }
    };
    if !(100..=599).contains(&code) {
        return Err(malformed(
            1,
            format!("status code {code} is outside 100..=599"),
        ));
    }
    let reason = match after_code {
        [] => &[][..],
        [b' ', reason @ ..] => reason,
        _ => return Err(malformed(1, "expected a space after the status code")),
    };
    if reason.contains(&b'\r') {
        return Err(malformed(1, "a bare CR inside the line"));
    }
    if reason.iter().any(|&b| is_ctl(b) && b != b'\t') {
        return Err(malformed(1, "a control character in the reason phrase"));
    }
    Ok((version, code, String::from_utf8_lossy(reason).into_owned()))
}
