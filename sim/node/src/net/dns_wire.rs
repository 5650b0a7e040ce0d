//! The DNS message format (RFC 1035), as much of it as an enterprise resolver and a client of
//! one need: a query for one name's IPv4 addresses, and the answer to it.
//!
//! Sans-IO and bounded: every length is checked before it is used, a name is at most 255
//! bytes on the wire in labels of at most 63, a message at most [`MAX_UDP_MESSAGE`] bytes as
//! a query and [`MAX_RESPONSE`] as a response, at most [`MAX_RECORDS`] records are read.
//! Nothing here panics on any input (a property test feeds it arbitrary bytes).
//!
//! ```
//! use cloudproxy_node::net::dns_wire::{self, Rcode};
//! use std::net::Ipv4Addr;
//!
//! let query = dns_wire::query(7, "ap-proxy.agora.io").unwrap();
//! let question = dns_wire::parse_query(&query).unwrap();
//! assert_eq!(question.name, "ap-proxy.agora.io");
//! let addrs = [Ipv4Addr::new(198, 18, 1, 1)];
//! let answer = dns_wire::response(&question, Rcode::NoError, &addrs, 60).unwrap();
//! let reply = dns_wire::parse_response(&answer, 7, "ap-proxy.agora.io").unwrap();
//! assert_eq!((reply.rcode, reply.addrs), (Rcode::NoError, addrs.to_vec()));
//! ```
//!
//! Compression pointers are read in answers (every resolver uses them) but refused in a
//! query's question, which no client compresses; EDNS and other additional records of a query
//! are ignored (the answer is never larger than 512 bytes, so it needs none).

use std::net::Ipv4Addr;

/// The most bytes of a DNS message over UDP without EDNS (RFC 1035 §4.2.1): the largest query
/// read, and the largest answer written.
pub const MAX_UDP_MESSAGE: usize = 512;
/// The largest response [`parse_response`] reads (an EDNS answer of a public resolver).
pub const MAX_RESPONSE: usize = 4096;
/// The most records of one section [`parse_response`] reads.
pub const MAX_RECORDS: usize = 64;
/// The most addresses one answer carries (they must fit in [`MAX_UDP_MESSAGE`] with the
/// longest name).
pub const MAX_ANSWERS: usize = 14;
/// The longest name on the wire, its length bytes and the final zero included (RFC 1035).
pub const MAX_NAME_WIRE: usize = 255;
/// The longest label.
pub const MAX_LABEL: usize = 63;

/// Record type A (an IPv4 address).
pub const TYPE_A: u16 = 1;
/// Record type AAAA (an IPv6 address).
pub const TYPE_AAAA: u16 = 28;
/// Class IN (the Internet).
pub const CLASS_IN: u16 = 1;

const HEADER: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;

/// A response code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rcode {
    /// 0: the answer (possibly empty: the name has no record of that type).
    NoError,
    /// 1: the query was malformed.
    FormErr,
    /// 2: the resolver failed.
    ServFail,
    /// 3: no such name.
    NxDomain,
    /// 4: the kind of query is not implemented.
    NotImp,
    /// 5: the resolver refuses to answer (policy: external names are blocked).
    Refused,
    /// Any other code.
    Other(u8),
}

impl Rcode {
    fn from_bits(bits: u16) -> Rcode {
        match bits & 0xF {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NxDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            n => Rcode::Other(n as u8),
        }
    }

    fn bits(self) -> u16 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::ServFail => 2,
            Rcode::NxDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
            Rcode::Other(n) => u16::from(n & 0xF),
        }
    }

    /// The code's name as RFC 1035 spells it (`NXDOMAIN`, `REFUSED`, ...).
    pub fn name(self) -> String {
        match self {
            Rcode::NoError => "NOERROR".to_owned(),
            Rcode::FormErr => "FORMERR".to_owned(),
            Rcode::ServFail => "SERVFAIL".to_owned(),
            Rcode::NxDomain => "NXDOMAIN".to_owned(),
            Rcode::NotImp => "NOTIMP".to_owned(),
            Rcode::Refused => "REFUSED".to_owned(),
            Rcode::Other(n) => format!("RCODE{n}"),
        }
    }
}

/// Why a message was not read (or a query not built).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// Shorter than the 12-byte header, or a field runs past the end.
    #[error("truncated: {what} runs past the end of the {len}-byte message")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// The message's length.
        len: usize,
    },
    /// Longer than the format allows here.
    #[error("the message is {len} bytes, more than the {max} read")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A query was expected and this is a response, or the other way round.
    #[error("the QR bit says {found}, a {expected} was expected")]
    WrongDirection {
        /// `query` or `response`.
        found: &'static str,
        /// `query` or `response`.
        expected: &'static str,
    },
    /// An opcode other than QUERY (0).
    #[error("opcode {0}: only standard queries (0) are answered")]
    Opcode(u8),
    /// Not exactly one question.
    #[error("{0} questions: exactly one is answered")]
    QuestionCount(u16),
    /// A query that carries answer or authority records.
    #[error("a query with {0} answer or authority records")]
    RecordsInQuery(u16),
    /// More records than [`MAX_RECORDS`].
    #[error("{count} records in one section, more than the {max} read")]
    TooManyRecords {
        /// How many the header announces.
        count: u16,
        /// The limit.
        max: usize,
    },
    /// A name is malformed: a label too long, the reserved label bits, a compression pointer
    /// where none may be, a name longer than 255 bytes, a character other than a letter,
    /// digit, `-` or `_`.
    #[error("bad name: {0}")]
    BadName(String),
    /// A response to another query (its id or question differs).
    #[error("an answer to another query: {0}")]
    Mismatch(String),
    /// The response was truncated (TC): the answer needs TCP, which this client does not
    /// speak.
    #[error("the answer is truncated (TC set)")]
    TruncatedAnswer,
    /// More addresses than [`MAX_ANSWERS`] for one answer.
    #[error("{0} addresses: at most {MAX_ANSWERS} fit in one answer")]
    TooManyAnswers(usize),
}

/// A query's question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The query's id, echoed in the answer.
    pub id: u16,
    /// Whether recursion was desired (echoed).
    pub recursion_desired: bool,
    /// The name, lower-case, without the final dot (`""` for the root).
    pub name: String,
    /// The record type asked for.
    pub qtype: u16,
    /// The class asked for.
    pub qclass: u16,
}

/// What a response said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Its response code.
    pub rcode: Rcode,
    /// The IPv4 addresses of its A records of class IN, in order.
    pub addrs: Vec<Ipv4Addr>,
}

fn read_u16(bytes: &[u8], at: usize, what: &'static str) -> Result<u16, DnsError> {
    match bytes.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(DnsError::Truncated {
            what,
            len: bytes.len(),
        }),
    }
}

/// Checks a name's text and turns it into wire labels.
fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), DnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let start = out.len();
    if !name.is_empty() {
        for label in name.split('.') {
            check_label(label.as_bytes())?;
            out.push(label.len() as u8);
            out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
    }
    out.push(0);
    if out.len() - start > MAX_NAME_WIRE {
        return Err(DnsError::BadName(format!(
            "{} bytes on the wire, more than {MAX_NAME_WIRE}",
            out.len() - start
        )));
    }
    Ok(())
}

fn check_label(label: &[u8]) -> Result<(), DnsError> {
    if label.is_empty() || label.len() > MAX_LABEL {
        return Err(DnsError::BadName(format!(
            "a label of {} bytes (1 to {MAX_LABEL})",
            label.len()
        )));
    }
    if let Some(b) = label
        .iter()
        .find(|b| !(b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_'))
    {
        return Err(DnsError::BadName(format!(
            "byte 0x{b:02x} in a label (letters, digits, - and _ only)"
        )));
    }
    Ok(())
}

/// Reads an uncompressed name at `at`; returns it (lower-case) and where it ends.
fn read_plain_name(bytes: &[u8], mut at: usize) -> Result<(String, usize), DnsError> {
    let start = at;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *bytes.get(at).ok_or(DnsError::Truncated {
            what: "a name",
            len: bytes.len(),
        })? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            return Err(DnsError::BadName(format!(
                "label byte 0x{len:02x}: compression or reserved label types are not read in a question"
            )));
        }
        let label = bytes.get(at..at + len).ok_or(DnsError::Truncated {
            what: "a label",
            len: bytes.len(),
        })?;
        check_label(label)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
        if at - start > MAX_NAME_WIRE {
            return Err(DnsError::BadName(format!(
                "longer than {MAX_NAME_WIRE} bytes on the wire"
            )));
        }
    }
    Ok((labels.join("."), at))
}

/// Skips a possibly compressed name at `at` (a pointer ends it); returns where it ends.
fn skip_name(bytes: &[u8], mut at: usize) -> Result<usize, DnsError> {
    let start = at;
    loop {
        let len = *bytes.get(at).ok_or(DnsError::Truncated {
            what: "a record's name",
            len: bytes.len(),
        })? as usize;
        match len & 0xC0 {
            0xC0 => {
                if at + 2 > bytes.len() {
                    return Err(DnsError::Truncated {
                        what: "a compression pointer",
                        len: bytes.len(),
                    });
                }
                return Ok(at + 2);
            }
            0 => {}
            _ => {
                return Err(DnsError::BadName(format!(
                    "reserved label type 0x{len:02x}"
                )))
            }
        }
        at += 1 + len;
        if len == 0 {
            return Ok(at);
        }
        if at > bytes.len() {
            return Err(DnsError::Truncated {
                what: "a record's name",
                len: bytes.len(),
            });
        }
        if at - start > MAX_NAME_WIRE {
            return Err(DnsError::BadName(format!(
                "longer than {MAX_NAME_WIRE} bytes on the wire"
            )));
        }
    }
}

/// A standard query (recursion desired) for the A records of `name`.
pub fn query(id: u16, name: &str) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(HEADER + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(name, &mut out)?;
    out.extend_from_slice(&TYPE_A.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// Reads a query: one question, no answer or authority records (additional records, such as
/// EDNS, are ignored).
pub fn parse_query(bytes: &[u8]) -> Result<Question, DnsError> {
    if bytes.len() > MAX_UDP_MESSAGE {
        return Err(DnsError::TooLong {
            len: bytes.len(),
            max: MAX_UDP_MESSAGE,
        });
    }
    let id = read_u16(bytes, 0, "the header")?;
    let flags = read_u16(bytes, 2, "the header")?;
    let counts = [
        read_u16(bytes, 4, "the header")?,
        read_u16(bytes, 6, "the header")?,
        read_u16(bytes, 8, "the header")?,
    ];
    if flags & FLAG_QR != 0 {
        return Err(DnsError::WrongDirection {
            found: "response",
            expected: "query",
        });
    }
    let opcode = ((flags >> 11) & 0xF) as u8;
    if opcode != 0 {
        return Err(DnsError::Opcode(opcode));
    }
    if counts[0] != 1 {
        return Err(DnsError::QuestionCount(counts[0]));
    }
    if counts[1] != 0 || counts[2] != 0 {
        return Err(DnsError::RecordsInQuery(
            counts[1].saturating_add(counts[2]),
        ));
    }
    let (name, at) = read_plain_name(bytes, HEADER)?;
    Ok(Question {
        id,
        recursion_desired: flags & FLAG_RD != 0,
        name,
        qtype: read_u16(bytes, at, "the question")?,
        qclass: read_u16(bytes, at + 2, "the question")?,
    })
}

/// The answer to `question`: `rcode`, the question echoed, and an A record (class IN, `ttl`
/// seconds) for each of `addrs`. Never larger than [`MAX_UDP_MESSAGE`].
pub fn response(
    question: &Question,
    rcode: Rcode,
    addrs: &[Ipv4Addr],
    ttl: u32,
) -> Result<Vec<u8>, DnsError> {
    if addrs.len() > MAX_ANSWERS {
        return Err(DnsError::TooManyAnswers(addrs.len()));
    }
    let mut out = Vec::with_capacity(MAX_UDP_MESSAGE);
    out.extend_from_slice(&question.id.to_be_bytes());
    let rd = if question.recursion_desired {
        FLAG_RD
    } else {
        0
    };
    out.extend_from_slice(&(FLAG_QR | rd | FLAG_RA | rcode.bits()).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    encode_name(&question.name, &mut out)?;
    out.extend_from_slice(&question.qtype.to_be_bytes());
    out.extend_from_slice(&question.qclass.to_be_bytes());
    for addr in addrs {
        // The name is the question's, by a pointer to offset 12.
        out.extend_from_slice(&[0xC0, HEADER as u8]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&addr.octets());
    }
    debug_assert!(out.len() <= MAX_UDP_MESSAGE);
    Ok(out)
}

/// An answer with `rcode` and no question to a message that could not be read as a query
/// (FORMERR, NOTIMP), when it at least has a header and is not itself a response; `None`
/// otherwise (nothing is ever sent in answer to a response: no loops between resolvers).
pub fn error_response(request: &[u8], rcode: Rcode) -> Option<Vec<u8>> {
    if request.len() < HEADER {
        return None;
    }
    let flags = u16::from_be_bytes([request[2], request[3]]);
    if flags & FLAG_QR != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(HEADER);
    out.extend_from_slice(&request[..2]);
    let keep = flags & (0x7800 | FLAG_RD); // opcode and RD
    out.extend_from_slice(&(FLAG_QR | keep | FLAG_RA | rcode.bits()).to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    Some(out)
}

/// Reads the answer to the query `id` for `name`: its code and the addresses of its A records.
pub fn parse_response(bytes: &[u8], id: u16, name: &str) -> Result<Reply, DnsError> {
    if bytes.len() > MAX_RESPONSE {
        return Err(DnsError::TooLong {
            len: bytes.len(),
            max: MAX_RESPONSE,
        });
    }
    let got_id = read_u16(bytes, 0, "the header")?;
    let flags = read_u16(bytes, 2, "the header")?;
    let qdcount = read_u16(bytes, 4, "the header")?;
    let ancount = read_u16(bytes, 6, "the header")?;
    if flags & FLAG_QR == 0 {
        return Err(DnsError::WrongDirection {
            found: "query",
            expected: "response",
        });
    }
    if got_id != id {
        return Err(DnsError::Mismatch(format!("id {got_id}, not {id}")));
    }
    if flags & FLAG_TC != 0 {
        return Err(DnsError::TruncatedAnswer);
    }
    let rcode = Rcode::from_bits(flags);
    if qdcount > 1 {
        return Err(DnsError::QuestionCount(qdcount));
    }
    let mut at = HEADER;
    if qdcount == 1 {
        let (asked, end) = read_plain_name(bytes, at)?;
        let wanted = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if asked != wanted {
            return Err(DnsError::Mismatch(format!(
                "the question is {asked:?}, not {wanted:?}"
            )));
        }
        read_u16(bytes, end + 2, "the question")?;
        at = end + 4;
    }
    if usize::from(ancount) > MAX_RECORDS {
        return Err(DnsError::TooManyRecords {
            count: ancount,
            max: MAX_RECORDS,
        });
    }
    let mut addrs = Vec::new();
    for _ in 0..ancount {
        at = skip_name(bytes, at)?;
        let rtype = read_u16(bytes, at, "a record")?;
        let class = read_u16(bytes, at + 2, "a record")?;
        let rdlength = usize::from(read_u16(bytes, at + 8, "a record")?);
        let data = bytes
            .get(at + 10..at + 10 + rdlength)
            .ok_or(DnsError::Truncated {
                what: "a record's data",
                len: bytes.len(),
            })?;
        if rtype == TYPE_A && class == CLASS_IN && rdlength == 4 {
            addrs.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + rdlength;
    }
    Ok(Reply { rcode, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(a: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 1, a)
    }

    #[test]
    fn a_query_round_trips_and_its_answer_is_read_back() {
        let q = query(0xBEEF, "AP-Proxy.Agora.IO.").unwrap();
        assert_eq!(&q[..2], &[0xBE, 0xEF]);
        let question = parse_query(&q).unwrap();
        assert_eq!(
            question,
            Question {
                id: 0xBEEF,
                recursion_desired: true,
                name: "ap-proxy.agora.io".into(),
                qtype: TYPE_A,
                qclass: CLASS_IN,
            }
        );
        let addrs = [ip(1), ip(2), ip(3), ip(4)];
        let answer = response(&question, Rcode::NoError, &addrs, 30).unwrap();
        let reply = parse_response(&answer, 0xBEEF, "ap-proxy.agora.io").unwrap();
        assert_eq!(reply.rcode, Rcode::NoError);
        assert_eq!(reply.addrs, addrs);
        let refused = response(&question, Rcode::Refused, &[], 30).unwrap();
        let reply = parse_response(&refused, 0xBEEF, "ap-proxy.agora.io").unwrap();
        assert_eq!((reply.rcode, reply.addrs.len()), (Rcode::Refused, 0));
        assert_eq!(Rcode::Refused.name(), "REFUSED");
    }

    #[test]
    fn answers_to_other_queries_are_refused() {
        let question = parse_query(&query(1, "a.example").unwrap()).unwrap();
        let answer = response(&question, Rcode::NoError, &[ip(1)], 30).unwrap();
        assert!(matches!(
            parse_response(&answer, 2, "a.example"),
            Err(DnsError::Mismatch(_))
        ));
        assert!(matches!(
            parse_response(&answer, 1, "b.example"),
            Err(DnsError::Mismatch(_))
        ));
        // A query is not an answer, an answer is not a query.
        assert!(matches!(
            parse_response(&query(1, "a.example").unwrap(), 1, "a.example"),
            Err(DnsError::WrongDirection { .. })
        ));
        assert!(matches!(
            parse_query(&answer),
            Err(DnsError::WrongDirection { .. })
        ));
        assert_eq!(error_response(&answer, Rcode::FormErr), None);
    }

    #[test]
    fn malformed_queries_say_what_is_wrong() {
        let good = query(9, "a.example").unwrap();
        assert!(matches!(
            parse_query(&good[..5]),
            Err(DnsError::Truncated { .. })
        ));
        assert!(matches!(
            parse_query(&good[..good.len() - 1]),
            Err(DnsError::Truncated { .. })
        ));
        let mut two = good.clone();
        two[5] = 2;
        assert_eq!(parse_query(&two), Err(DnsError::QuestionCount(2)));
        let mut update = good.clone();
        update[2] |= 5 << 3; // opcode 5 (UPDATE)
        assert_eq!(parse_query(&update), Err(DnsError::Opcode(5)));
        let mut pointer = good[..HEADER].to_vec();
        pointer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert!(matches!(parse_query(&pointer), Err(DnsError::BadName(_))));
        let long = format!("{}.example", "a".repeat(64));
        assert!(matches!(query(1, &long), Err(DnsError::BadName(_))));
        let huge = vec!["a".repeat(60); 5].join(".");
        assert!(matches!(query(1, &huge), Err(DnsError::BadName(_))));
        assert!(matches!(query(1, "a..b"), Err(DnsError::BadName(_))));
        assert!(matches!(
            parse_query(&vec![0; 513]),
            Err(DnsError::TooLong { .. })
        ));
        // FORMERR keeps the id and RD.
        let formerr = error_response(&two, Rcode::FormErr).unwrap();
        assert_eq!(&formerr[..2], &good[..2]);
        assert_eq!(formerr[3] & 0xF, 1);
        assert_eq!(formerr[2] & 0x81, 0x81);
        assert_eq!(error_response(&good[..11], Rcode::FormErr), None);
    }

    #[test]
    fn responses_with_compression_cnames_and_edns_are_read() {
        // As a public resolver answers: a CNAME, then an A record whose name is a pointer.
        let mut r = vec![0, 5, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 1];
        r.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
        r.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(b"\x01b\xC0\x0E");
        r.extend_from_slice(&[0xC0, 0x27, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        r.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
        let reply = parse_response(&r, 5, "A.example").unwrap();
        assert_eq!(reply.addrs, [Ipv4Addr::new(10, 0, 0, 1)]);
        r[7] = 65;
        assert!(matches!(
            parse_response(&r, 5, "a.example"),
            Err(DnsError::TooManyRecords { .. })
        ));
        // Three answers read the EDNS record as one; a fourth runs past the end.
        r[7] = 3;
        assert_eq!(parse_response(&r, 5, "a.example").unwrap().addrs.len(), 1);
        r[7] = 4;
        assert!(matches!(
            parse_response(&r, 5, "a.example"),
            Err(DnsError::Truncated { .. })
        ));
    }

    #[test]
    fn the_largest_answer_fits_in_512_bytes() {
        let name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        let question = parse_query(&query(1, &name).unwrap()).unwrap();
        let addrs = [ip(1); MAX_ANSWERS];
        let answer = response(&question, Rcode::NoError, &addrs, 1).unwrap();
        assert!(answer.len() <= MAX_UDP_MESSAGE, "{}", answer.len());
        assert_eq!(
            response(&question, Rcode::NoError, &[ip(1); MAX_ANSWERS + 1], 1),
            Err(DnsError::TooManyAnswers(MAX_ANSWERS + 1))
        );
    }

    proptest! {
        #[test]
        fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_query(&bytes);
            let _ = parse_response(&bytes, 0, "a.example");
            let _ = error_response(&bytes, Rcode::FormErr);
        }

        #[test]
        fn mutated_answers_never_panic(
            flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..8),
            cut in 0usize..200,
        ) {
            let question = parse_query(&query(3, "ap-proxy.agora.io").unwrap()).unwrap();
            let mut answer = response(&question, Rcode::NoError, &[ip(1), ip(2)], 5).unwrap();
            for (at, byte) in flips {
                let len = answer.len();
                answer[at % len] = byte;
            }
            answer.truncate(cut.max(1));
            let _ = parse_response(&answer, 3, "ap-proxy.agora.io");
            let _ = parse_query(&answer);
        }
    }
}
