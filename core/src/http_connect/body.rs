//! Reading past the body of a `407` (RFC 9112 §6, §7.1), without keeping it, so that the second
//! request can go on the same connection.

use super::{BodyFraming, MAX_HEADERS, MAX_HEADER_LINE_LEN, MAX_SKIPPED_BODY_LEN};

/// The longest chunk-size line (size and extensions) read past, in bytes.
const MAX_CHUNK_LINE_LEN: usize = 1024;

/// Why a body cannot be read past: the connection is not reused (the machine reconnects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unskippable {
    /// Its framing is `UntilClose` or `Unclear`.
    Framing,
    /// It is (or grew) larger than [`MAX_SKIPPED_BODY_LEN`].
    TooLarge,
    /// The chunked framing is broken.
    BadChunk,
}

/// A body being read past. Holds no body bytes: a few counters only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BodySkipper {
    state: Skip,
    /// Body bytes read past so far (framing included).
    skipped: u64,
}

// State diagram (bytes are the proxy's):
//
//   Length(n) ──n bytes──────────────────────────────────────────────► done
//   Chunked:
//     Size ──hex digits [; ext] CRLF, size > 0──► Data(size) ──size bytes──► DataEnd
//       │                                                                      │ CRLF
//       │ ◄────────────────────────────────────────────────────────────────────┘
//       └──"0" [; ext] CRLF──► Trailer ──field lines──► Trailer ──empty line──► done
//   Any state: over MAX_SKIPPED_BODY_LEN, a line too long, or bad chunk syntax ─► refused.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Skip {
    /// Bytes left of a `Content-Length` body.
    Length(u64),
    /// A chunk-size line: its size so far, whether a digit was seen, whether the extensions
    /// started, its length, and whether the last byte was CR.
    Size {
        size: u64,
        digits: bool,
        ext: bool,
        len: usize,
        cr: bool,
    },
    /// Bytes left of a chunk's data.
    Data(u64),
    /// The CRLF after a chunk's data; `true` once the CR was seen.
    DataEnd(bool),
    /// The trailer section: the current line's length (without CR), lines so far, and
    /// whether the last byte was CR.
    Trailer { len: usize, lines: usize, cr: bool },
}

impl BodySkipper {
    /// A skipper for a body of this framing, or why the connection is not reused.
    pub(crate) fn new(framing: BodyFraming) -> Result<Option<BodySkipper>, Unskippable> {
        let state = match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => return Ok(None),
            BodyFraming::Length(n) if n > MAX_SKIPPED_BODY_LEN => {
                return Err(Unskippable::TooLarge)
            }
            BodyFraming::Length(n) => Skip::Length(n),
            BodyFraming::Chunked => Skip::size_line(),
            BodyFraming::UntilClose | BodyFraming::Unclear => return Err(Unskippable::Framing),
        };
        Ok(Some(BodySkipper { state, skipped: 0 }))
    }

    /// Reads past bytes of the body: `Ok(Some(used))` when the body ended after `used` bytes
    /// of `input` (the rest is the next response), `Ok(None)` when all of `input` was body.
    pub(crate) fn skip(&mut self, input: &[u8]) -> Result<Option<usize>, Unskippable> {
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            if let Skip::Length(left) | Skip::Data(left) = &mut self.state {
                // Whole runs of data at once.
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - i);
                *left -= n as u64;
                i += n;
                self.count(n as u64)?;
                match self.state {
                    Skip::Length(0) => return Ok(Some(i)),
                    Skip::Data(0) => self.state = Skip::DataEnd(false),
                    _ => {}
                }
                continue;
            }
            i += 1;
            self.count(1)?;
            if self.step(b)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    fn count(&mut self, n: u64) -> Result<(), Unskippable> {
        self.skipped += n;
        if self.skipped > MAX_SKIPPED_BODY_LEN {
            return Err(Unskippable::TooLarge);
        }
        Ok(())
    }

    /// One byte of chunk framing; `Ok(true)` when the body ended with it.
    fn step(&mut self, b: u8) -> Result<bool, Unskippable> {
        match &mut self.state {
            Skip::Size {
                size,
                digits,
                ext,
                len,
                cr,
            } => {
                *len += 1;
                if *len > MAX_CHUNK_LINE_LEN {
                    return Err(Unskippable::BadChunk);
                }
                match b {
                    b'\n' if *digits => {
                        self.state = match *size {
                            0 => Skip::Trailer {
                                len: 0,
                                lines: 0,
                                cr: false,
                            },
                            n if n > MAX_SKIPPED_BODY_LEN => return Err(Unskippable::TooLarge),
                            n => Skip::Data(n),
                        };
                    }
                    _ if *cr => return Err(Unskippable::BadChunk),
                    b'\r' => *cr = true,
                    _ if *ext => {
                        if (b < 0x20 && b != b'\t') || b == 0x7F {
                            return Err(Unskippable::BadChunk);
                        }
                    }
                    b';' | b' ' | b'\t' if *digits => *ext = true,
                    _ => {
                        let digit = char::from(b).to_digit(16).ok_or(Unskippable::BadChunk)?;
                        *size = size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(u64::from(digit)))
                            .ok_or(Unskippable::TooLarge)?;
                        *digits = true;
                    }
                }
            }
            Skip::DataEnd(seen_cr) => match b {
                b'\r' if !*seen_cr => *seen_cr = true,
                b'\n' => self.state = Skip::size_line(),
                _ => return Err(Unskippable::BadChunk),
            },
            Skip::Trailer { len, lines, cr } => match b {
                b'\n' if *len == 0 => return Ok(true),
                b'\n' => {
                    *lines += 1;
                    *len = 0;
                    *cr = false;
                    if *lines > MAX_HEADERS {
                        return Err(Unskippable::BadChunk);
                    }
                }
                _ if *cr => return Err(Unskippable::BadChunk),
                b'\r' => *cr = true,
                _ => {
                    *len += 1;
                    if *len > MAX_HEADER_LINE_LEN {
                        return Err(Unskippable::BadChunk);
                    }
                }
            },
            Skip::Length(_) | Skip::Data(_) => {}
        }
        Ok(false)
    }
}

impl Skip {
    fn size_line() -> Skip {
        Skip::Size {
            size: 0,
            digits: false,
            ext: false,
            len: 0,
            cr: false,
        }
    }
}
