//! NAT rebinding of a session's UDP media path (docs/protocol.md §2.3), **beyond the seed**.
//!
//! The rule, checked after a datagram was found authentic (an open session's id, from the IP
//! address that opened its tunnel, a client media message that decodes):
//!
//! 1. the session's first UDP datagram sets its UDP address;
//! 2. a datagram from the same address changes nothing;
//! 3. a datagram from another port of the same IP is a NAT rebinding: its source becomes the
//!    session's UDP address at once (client-bound media goes there from now on, no new ticket
//!    needed), and the previous address is retired;
//! 4. a datagram from a retired address is dropped without an answer (counted in
//!    `udp_from_retired_address`), so that the path never flaps back to a mapping the NAT may
//!    have given to someone else. At most [`MAX_RETIRED_UDP`] addresses are retired per
//!    session, the oldest forgotten first.
//!
//! A new IP address is not a rebinding: the ticket is bound to the address, so datagrams from
//! another IP stay unauthentic (`UnknownSession`) and the client fetches a new ticket.

use std::net::SocketAddr;

use super::session::MediaPath;
use super::Relay;

/// Most retired UDP addresses remembered per session.
pub(super) const MAX_RETIRED_UDP: usize = 4;

impl Relay {
    /// Applies the rebinding rule to an authentic datagram of `session_id` from `from`:
    /// `false` when it must be dropped (it comes from a retired address).
    pub(super) fn accept_udp_source(&mut self, session_id: u64, from: SocketAddr) -> bool {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return false;
        };
        if session.retired_udp.contains(&from) {
            self.counters.udp_from_retired_address += 1;
            self.counters.udp_dropped_from_client += 1;
            return false;
        }
        if let Some(MediaPath::Udp { addr, .. }) = session.udp {
            if addr != from {
                if session.retired_udp.len() == MAX_RETIRED_UDP {
                    session.retired_udp.remove(0);
                }
                session.retired_udp.push(addr);
                self.counters.udp_rebinds += 1;
            }
        }
        true
    }
}
