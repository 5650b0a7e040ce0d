//! Tickets: the access point's signed permission for one client to open a tunnel on a relay.
//!
//! The access point and the relays share a [`TicketKey`]. The access point issues a [`Ticket`]
//! binding an application id, the client's IP address, an expiry in Unix time and a
//! random nonce, authenticated with HMAC-SHA256. The client cannot read anything secret in it
//! (nothing is) and cannot change anything in it without invalidating the MAC. A relay checks it
//! with [`Ticket::verify`]; rejecting a ticket whose nonce has already been used is the relay's
//! job, since only the relay knows what it has seen.
//!
//! Encoding (all integers big-endian), 64 to 139 bytes:
//!
//! | size     | field           | notes                                               |
//! |----------|-----------------|-----------------------------------------------------|
//! | 1        | `version`       | [`TICKET_VERSION`] = 1                              |
//! | 8        | `expires_at_ms` | milliseconds since the Unix epoch ([`UnixTime`])    |
//! | 16       | `nonce`         | random, unique per ticket                           |
//! | 5 or 17  | `client_ip`     | family (4 or 6) + address bytes                     |
//! | 2..=65   | `app_id`        | `str8`, 1..=64 bytes of printable ASCII             |
//! | 32       | `mac`           | HMAC-SHA256(key, every preceding ticket byte)       |

use std::fmt;
use std::net::IpAddr;

use hmac::Mac;
use thiserror::Error;

use super::codec::{self, Reader};
use super::{DecodeError, EncodeError, ErrorCode};
use crate::entropy::{hmac_sha256, Entropy};
use crate::time::UnixTime;

/// The ticket format version, the first byte of every ticket.
pub const TICKET_VERSION: u8 = 1;
/// Length of a ticket's nonce.
pub const NONCE_LEN: usize = 16;
/// Length of a ticket's MAC (a full HMAC-SHA256 tag, not truncated).
pub const MAC_LEN: usize = 32;
/// Length of the shortest ticket (IPv4 client, 1-byte application id).
pub const MIN_TICKET_LEN: usize = 1 + 8 + NONCE_LEN + 5 + 2 + MAC_LEN;
/// Length of the longest ticket (IPv6 client, 64-byte application id).
pub const MAX_TICKET_LEN: usize = 1 + 8 + NONCE_LEN + 17 + 65 + MAC_LEN;

/// The secret shared by the access point and the relays to sign and check tickets.
///
/// `Debug` never shows the key bytes.
#[derive(Clone)]
pub struct TicketKey([u8; 32]);

impl TicketKey {
    /// A key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        TicketKey(bytes)
    }

    /// A fresh key drawn from `entropy` (which must be seeded unpredictably for real use).
    pub fn generate(entropy: &mut Entropy) -> Self {
        TicketKey(entropy.next_array())
    }

    /// The MAC of `signed` under this key.
    fn mac(&self, signed: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = hmac_sha256(&self.0);
        mac.update(signed);
        mac
    }
}

impl fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketKey(<redacted>)")
    }
}

/// A signed permission to open tunnels, issued by the access point and checked by relays.
///
/// The fields are public so that tests and tools can build any ticket, including broken ones;
/// a ticket whose fields were changed after [`Ticket::issue`] fails [`Ticket::verify`] with
/// [`TicketError::BadMac`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    /// The application the client asked for: 1..=64 bytes of printable ASCII.
    pub app_id: String,
    /// The client's IP address as the access point saw it (IPv4-mapped IPv6 addresses are
    /// stored in their IPv4 form by [`Ticket::issue`]).
    pub client_ip: IpAddr,
    /// End of validity, in milliseconds since the Unix epoch ([`UnixTime::as_millis`]): wall
    /// clock, shared by the access point and the relays. The ticket is valid strictly before
    /// this time.
    pub expires_at_ms: u64,
    /// Random, unique per ticket: the relay's replay cache remembers it.
    pub nonce: [u8; NONCE_LEN],
    /// HMAC-SHA256 under the [`TicketKey`] of every preceding byte of the encoding.
    pub mac: [u8; MAC_LEN],
}

/// Why a relay refuses a ticket.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TicketError {
    /// The MAC does not match the contents: forged, altered, or signed with another key.
    #[error("ticket MAC does not verify")]
    BadMac,
    /// The ticket expired at `expired_at_ms`; it is now `now_ms`.
    #[error("ticket expired at {expired_at_ms} ms, now is {now_ms} ms")]
    Expired {
        /// The ticket's `expires_at_ms`.
        expired_at_ms: u64,
        /// The verifier's clock, in milliseconds.
        now_ms: u64,
    },
    /// The ticket was issued to `ticket_ip` but presented from `peer_ip`.
    #[error("ticket issued to {ticket_ip}, presented by {peer_ip}")]
    ClientMismatch {
        /// The address in the ticket.
        ticket_ip: IpAddr,
        /// The address the ticket came from.
        peer_ip: IpAddr,
    },
}

impl TicketError {
    /// The code a relay answers with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            TicketError::BadMac => ErrorCode::TicketInvalid,
            TicketError::Expired { .. } => ErrorCode::TicketExpired,
            TicketError::ClientMismatch { .. } => ErrorCode::ClientMismatch,
        }
    }
}

impl From<TicketError> for ErrorCode {
    fn from(err: TicketError) -> Self {
        err.error_code()
    }
}

impl Ticket {
    /// Issues a ticket for `app_id` and `client_ip`, valid until `expires_at` (exclusive, at
    /// millisecond precision), with a `nonce` the caller draws from its [`Entropy`].
    ///
    /// Fails with [`EncodeError::BadAppId`] when `app_id` is not a valid application id (the
    /// ticket could not be encoded). An IPv4-mapped IPv6 `client_ip` is stored as IPv4.
    pub fn issue(
        key: &TicketKey,
        app_id: &str,
        client_ip: IpAddr,
        expires_at: UnixTime,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Ticket, EncodeError> {
        let mut ticket = Ticket {
            app_id: app_id.to_owned(),
            client_ip: client_ip.to_canonical(),
            expires_at_ms: expires_at.as_millis(),
            nonce,
            mac: [0; MAC_LEN],
        };
        let signed = ticket.signed_bytes()?;
        ticket.mac = key.mac(&signed).finalize().into_bytes().into();
        Ok(ticket)
    }

    /// Checks the ticket as a relay must, in this order:
    ///
    /// 1. the MAC, under `key`, compared in constant time ([`TicketError::BadMac`]);
    /// 2. the expiry: valid while `now` (the relay's wall clock) is strictly before
    ///    `expires_at_ms`
    ///    ([`TicketError::Expired`]);
    /// 3. the client: `peer_ip` must be `client_ip`, IPv4-mapped IPv6 addresses being equal to
    ///    their IPv4 form ([`TicketError::ClientMismatch`]).
    ///
    /// Replays (a nonce seen before) are for the caller to reject.
    pub fn verify(
        &self,
        key: &TicketKey,
        now: UnixTime,
        peer_ip: IpAddr,
    ) -> Result<(), TicketError> {
        let signed = self.signed_bytes().map_err(|_| TicketError::BadMac)?;
        key.mac(&signed)
            .verify_slice(&self.mac)
            .map_err(|_| TicketError::BadMac)?;
        let now_ms = now.as_millis();
        if now_ms >= self.expires_at_ms {
            return Err(TicketError::Expired {
                expired_at_ms: self.expires_at_ms,
                now_ms,
            });
        }
        if self.client_ip.to_canonical() != peer_ip.to_canonical() {
            return Err(TicketError::ClientMismatch {
                ticket_ip: self.client_ip,
                peer_ip,
            });
        }
        Ok(())
    }

    /// The expiry as a [`UnixTime`].
    pub fn expires_at(&self) -> UnixTime {
        UnixTime::from_millis(self.expires_at_ms)
    }

    /// Length of the encoding (meaningful for a valid application id).
    pub fn encoded_len(&self) -> usize {
        1 + 8 + NONCE_LEN + codec::ip_len(&self.client_ip) + 1 + self.app_id.len() + MAC_LEN
    }

    /// Appends the encoding to `out`; writes nothing and fails with [`EncodeError::BadAppId`]
    /// when the application id is invalid.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.validate()?;
        self.put_signed(out);
        out.extend_from_slice(&self.mac);
        Ok(())
    }

    /// Checks the bounds [`Ticket::encode`] needs.
    pub(crate) fn validate(&self) -> Result<(), EncodeError> {
        if codec::is_valid_app_id(&self.app_id) {
            Ok(())
        } else {
            Err(EncodeError::BadAppId)
        }
    }

    /// Reads a ticket at the cursor.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Ticket, DecodeError> {
        let version = r.u8("ticket.version")?;
        if version != TICKET_VERSION {
            return Err(DecodeError::UnsupportedTicketVersion(version));
        }
        let expires_at_ms = r.u64("ticket.expires_at_ms")?;
        let nonce = r.array("ticket.nonce")?;
        let client_ip = r.ip("ticket.client_ip")?;
        let app_id = r.app_id("ticket.app_id")?;
        let mac = r.array("ticket.mac")?;
        Ok(Ticket {
            app_id,
            client_ip,
            expires_at_ms,
            nonce,
            mac,
        })
    }

    /// The bytes the MAC covers, after validation.
    fn signed_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        self.validate()?;
        let mut out = Vec::with_capacity(self.encoded_len());
        self.put_signed(&mut out);
        Ok(out)
    }

    /// Writes everything but the MAC.
    fn put_signed(&self, out: &mut Vec<u8>) {
        out.push(TICKET_VERSION);
        out.extend_from_slice(&self.expires_at_ms.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        codec::put_ip(out, &self.client_ip);
        codec::put_str8(out, self.app_id.as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::wire::MessageType;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const KEY: TicketKey = TicketKey::from_bytes([0x4B; 32]);
    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

    fn issue() -> Ticket {
        Ticket::issue(
            &KEY,
            "demo-app",
            CLIENT,
            UnixTime::from_millis(1_700_000_060_000),
            [0x11; 16],
        )
        .unwrap()
    }

    fn decode(bytes: &[u8]) -> Result<Ticket, DecodeError> {
        let mut r = Reader::new(bytes, MessageType::TunnelOpen);
        let t = Ticket::read(&mut r)?;
        r.finish()?;
        Ok(t)
    }

    fn encode(t: &Ticket) -> Vec<u8> {
        let mut out = Vec::new();
        t.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn known_answer() {
        // The MAC computed independently with Python's hmac over the signed bytes below.
        let t = issue();
        let bytes = encode(&t);
        let mut expected = vec![1];
        expected.extend_from_slice(&1_700_000_060_000u64.to_be_bytes());
        expected.extend_from_slice(&[0x11; 16]);
        expected.extend_from_slice(&[4, 203, 0, 113, 7]);
        expected.push(8);
        expected.extend_from_slice(b"demo-app");
        assert_eq!(&bytes[..expected.len()], &expected[..]);
        assert_eq!(
            t.mac,
            [
                0x4c, 0xd1, 0x81, 0x6a, 0xe4, 0xe3, 0xb8, 0xad, 0x1f, 0xa5, 0x8e, 0x19, 0x96, 0x5d,
                0x2c, 0x3c, 0xaa, 0xb9, 0xf4, 0x64, 0x33, 0x01, 0xbb, 0xe8, 0x09, 0x6d, 0xf6, 0x80,
                0x7e, 0xeb, 0xd5, 0xca
            ]
        );
        assert_eq!(bytes.len(), t.encoded_len());
        assert_eq!(bytes.len(), 71);
        assert_eq!(decode(&bytes).unwrap(), t);
    }

    #[test]
    fn valid_ticket_verifies() {
        let t = issue();
        assert_eq!(
            t.verify(&KEY, UnixTime::from_millis(1_700_000_000_000), CLIENT),
            Ok(())
        );
        assert_eq!(t.expires_at(), UnixTime::from_millis(1_700_000_060_000));
        let again = decode(&encode(&t)).unwrap();
        assert_eq!(again.verify(&KEY, UnixTime::EPOCH, CLIENT), Ok(()));
    }

    #[test]
    fn every_tampered_byte_is_caught() {
        let t = issue();
        let bytes = encode(&t);
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xFF] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                // Some changes break the structure itself; the others must break the MAC.
                if let Ok(tampered) = decode(&bad) {
                    assert_eq!(
                        tampered.verify(&KEY, UnixTime::EPOCH, CLIENT),
                        Err(TicketError::BadMac),
                        "byte {i} ^ {flip:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn tampered_fields_and_wrong_key_fail_the_mac() {
        let now = UnixTime::EPOCH;
        let mut t = issue();
        t.expires_at_ms += 1;
        assert_eq!(t.verify(&KEY, now, CLIENT), Err(TicketError::BadMac));
        let mut t = issue();
        t.client_ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 8));
        assert_eq!(t.verify(&KEY, now, t.client_ip), Err(TicketError::BadMac));
        let mut t = issue();
        t.app_id = "other-app".into();
        assert_eq!(t.verify(&KEY, now, CLIENT), Err(TicketError::BadMac));
        let mut t = issue();
        t.app_id = String::new();
        assert_eq!(t.verify(&KEY, now, CLIENT), Err(TicketError::BadMac));
        let other = TicketKey::from_bytes([0x4C; 32]);
        assert_eq!(
            issue().verify(&other, now, CLIENT),
            Err(TicketError::BadMac)
        );
    }

    #[test]
    fn expiry_is_exclusive_and_checked_after_the_mac() {
        let t = issue();
        let last = UnixTime::from_millis(1_700_000_059_999);
        assert_eq!(t.verify(&KEY, last, CLIENT), Ok(()));
        let at = UnixTime::from_millis(1_700_000_060_000);
        assert_eq!(
            t.verify(&KEY, at, CLIENT),
            Err(TicketError::Expired {
                expired_at_ms: 1_700_000_060_000,
                now_ms: 1_700_000_060_000
            })
        );
        // Expired and from the wrong client: expiry is reported first.
        let stranger = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        assert!(matches!(
            t.verify(&KEY, at, stranger),
            Err(TicketError::Expired { .. })
        ));
        // Expired and tampered: the MAC is reported first.
        let mut bad = t.clone();
        bad.nonce[0] ^= 1;
        assert_eq!(bad.verify(&KEY, at, stranger), Err(TicketError::BadMac));
    }

    #[test]
    fn wrong_client_is_refused() {
        let t = issue();
        let stranger = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(
            t.verify(&KEY, UnixTime::EPOCH, stranger),
            Err(TicketError::ClientMismatch {
                ticket_ip: CLIENT,
                peer_ip: stranger
            })
        );
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));
        assert!(matches!(
            t.verify(&KEY, UnixTime::EPOCH, v6),
            Err(TicketError::ClientMismatch { .. })
        ));
    }

    #[test]
    fn mapped_ipv4_equals_ipv4() {
        let mapped = IpAddr::V6(Ipv4Addr::new(203, 0, 113, 7).to_ipv6_mapped());
        // Issued to IPv4, presented over a dual-stack socket.
        assert_eq!(issue().verify(&KEY, UnixTime::EPOCH, mapped), Ok(()));
        // Issued to the mapped form: stored as IPv4, accepted both ways.
        let t = Ticket::issue(&KEY, "demo-app", mapped, UnixTime::MAX, [0; 16]).unwrap();
        assert_eq!(t.client_ip, CLIENT);
        assert_eq!(t.verify(&KEY, UnixTime::EPOCH, CLIENT), Ok(()));
        assert_eq!(t.verify(&KEY, UnixTime::EPOCH, mapped), Ok(()));
        // A ticket carrying the mapped form on the wire (built by hand) also matches.
        let mut raw = t.clone();
        raw.client_ip = mapped;
        let mut signed = Vec::new();
        raw.put_signed(&mut signed);
        raw.mac = KEY.mac(&signed).finalize().into_bytes().into();
        assert_eq!(raw.verify(&KEY, UnixTime::EPOCH, CLIENT), Ok(()));
        assert_eq!(decode(&encode(&raw)).unwrap(), raw);
        // The IPv4-compatible (not mapped) form is a different address.
        let compat = IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0xcb00, 0x7107));
        assert!(t.verify(&KEY, UnixTime::EPOCH, compat).is_err());
    }

    #[test]
    fn issue_rejects_bad_app_ids() {
        for id in ["", "has space", "é", &"x".repeat(65)] {
            assert_eq!(
                Ticket::issue(&KEY, id, CLIENT, UnixTime::MAX, [0; 16]),
                Err(EncodeError::BadAppId),
                "{id:?}"
            );
        }
        assert!(Ticket::issue(&KEY, &"x".repeat(64), CLIENT, UnixTime::MAX, [0; 16]).is_ok());
        let mut t = issue();
        t.app_id = "bad id".into();
        let mut out = vec![9];
        assert_eq!(t.encode(&mut out), Err(EncodeError::BadAppId));
        assert_eq!(out, [9], "nothing written on error");
    }

    #[test]
    fn ticket_version_and_bounds() {
        let mut bytes = encode(&issue());
        bytes[0] = 2;
        assert_eq!(
            decode(&bytes),
            Err(DecodeError::UnsupportedTicketVersion(2))
        );
        let v6 = Ticket::issue(
            &KEY,
            &"a".repeat(64),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            UnixTime::MAX,
            [0; 16],
        )
        .unwrap();
        assert_eq!(encode(&v6).len(), MAX_TICKET_LEN);
        let short = Ticket::issue(&KEY, "a", CLIENT, UnixTime::MAX, [0; 16]).unwrap();
        assert_eq!(encode(&short).len(), MIN_TICKET_LEN);
    }

    #[test]
    fn errors_map_to_codes_and_keys_stay_secret() {
        assert_eq!(
            ErrorCode::from(TicketError::BadMac),
            ErrorCode::TicketInvalid
        );
        assert_eq!(
            TicketError::Expired {
                expired_at_ms: 0,
                now_ms: 0
            }
            .error_code(),
            ErrorCode::TicketExpired
        );
        assert_eq!(format!("{KEY:?}"), "TicketKey(<redacted>)");
        let mut e = Entropy::from_u64(1);
        let k = TicketKey::generate(&mut e);
        assert!(!format!("{k:?}").contains(", "));
    }
}
