//! The loop's sends of one round on many sockets in one system call (Linux: io_uring).
//!
//! At the end of a round, when two or more polled sockets have datagrams queued, the loop
//! stages each one's front (as many as the ring holds) in its [`SendRing`] and submits them
//! together; what a socket could not send that way (the ring full, a send refused, a socket
//! that cannot take more now) stays queued and goes the ordinary way right after, one
//! `sendmmsg(2)` per socket, which knows every error's handling and waits for readiness.
//! A socket whose readiness says it cannot send is not staged at all.
//!
//! The ring is made with the loop; where the kernel refuses one (too old, io_uring disabled,
//! a seccomp filter), or a submit fails, the loop keeps to the ordinary way for good, as it
//! does when its network says no ([`Net::batch_sends`](crate::net::Net::batch_sends):
//! `[relay] io_uring = false`, and the simulation, whose sockets are not polled anyway).

#[cfg(target_os = "linux")]
use crate::net::uring::SendRing;

/// The loop's ring, made with the loop.
pub(super) enum Ring {
    /// In use.
    #[cfg(target_os = "linux")]
    Ready(Box<SendRing>),
    /// Off ([`Net::batch_sends`](crate::net::Net::batch_sends)), the kernel refused it, or a
    /// submit failed: never again in this loop.
    Unavailable,
}

impl Ring {
    /// A loop's ring, if its network allows one and the kernel makes it (at the loop's start,
    /// so that a serving relay's descriptors and memory do not grow later).
    pub(super) fn new(allowed: bool) -> Ring {
        #[cfg(target_os = "linux")]
        if allowed {
            if let Ok(ring) = SendRing::new() {
                return Ring::Ready(Box::new(ring));
            }
        }
        let _ = allowed;
        Ring::Unavailable
    }

    /// Whether the loop sends through it.
    pub(super) fn in_use(&self) -> bool {
        !matches!(self, Ring::Unavailable)
    }
}

/// What the ring did, for the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RingCounts {
    /// Submits (one system call each).
    pub(super) submits: u64,
    /// Datagrams sent by them.
    pub(super) datagrams: u64,
}

#[cfg(target_os = "linux")]
mod linux {
    use super::{Ring, SendRing};
    use crate::net::{Net, Udp};
    use crate::nodes::relay::driver::Driver;
    use crate::nodes::relay::inbox::Source;

    impl<N: Net> Driver<N> {
        /// Sends what `to_flush`'s sockets have queued in one submit, when two or more have
        /// something; leaves the rest queued for the ordinary flush.
        pub(in crate::nodes::relay) fn flush_through_ring(&mut self, to_flush: &[Source]) {
            if to_flush.len() < 2 {
                return;
            }
            let mut staged = std::mem::take(&mut self.ring_staged);
            staged.clear();
            let mut ring = std::mem::replace(&mut self.ring, Ring::Unavailable);
            if let Ring::Ready(r) = &mut ring {
                self.stage_all(r, to_flush, &mut staged);
                if !staged.is_empty() {
                    if r.submit().is_err() {
                        ring = Ring::Unavailable;
                    }
                    self.ring_counts.submits += 1;
                    self.take_sent(&ring, &staged);
                }
            }
            self.ring = ring;
            self.ring_staged = staged;
        }

        /// Stages the front of every ready socket's queue; `staged` gets each one's source
        /// and index in the submit.
        fn stage_all(
            &mut self,
            ring: &mut SendRing,
            to_flush: &[Source],
            staged: &mut Vec<(Source, usize)>,
        ) {
            for &source in to_flush {
                let Some(socket) = self.socket(source) else {
                    continue;
                };
                let Some(polled) = &socket.polled else {
                    continue;
                };
                let Some(fd) = polled.udp.raw_fd() else {
                    continue;
                };
                if socket.sends.len() == 0 || !polled.send_ready() {
                    continue;
                }
                // SAFETY: the socket stays open (this loop owns it and closes nothing before
                // the submit), and the queued datagrams' buffers are neither dropped nor
                // changed until `take_sent` runs, after the submit.
                let (index, n) = socket
                    .sends
                    .with_front(|views| unsafe { ring.stage(fd, views) });
                if n == 0 {
                    break; // the ring is full
                }
                staged.push((source, index));
            }
        }

        /// Takes off each staged socket's queue what the submit sent (its buffers back to the
        /// machine's pool).
        fn take_sent(&mut self, ring: &Ring, staged: &[(Source, usize)]) {
            for &(source, index) in staged {
                let sent = match ring {
                    Ring::Ready(r) => r.sent(index).datagrams,
                    // A failed submit: everything is sent again the ordinary way.
                    _ => 0,
                };
                self.ring_counts.datagrams += sent as u64;
                if let Some(sends) = self.socket(source).map(|s| s.sends.clone()) {
                    sends.drop_front(sent, |buf| self.relay.recycle(buf));
                }
            }
        }
    }
}
