//! Sends on many UDP sockets in one system call: `io_uring(7)` (Linux 5.11 and later).
//!
//! The relay's loop ends each round by sending what the round queued on every socket. With
//! one upstream socket per media session, a round that relayed datagrams of 20 sessions made
//! 20 `sendmmsg(2)` calls, and each call whose datagram woke a receiver on this core could be
//! preempted at its return (measured: nearly every involuntary context switch of the relay's
//! worker happened there, twice as many as the naive relay's). A [`SendRing`] stages every
//! socket's datagrams as `IORING_OP_SENDMSG` entries and submits them in one
//! `io_uring_enter(2)`: one return to user space for the whole round.
//!
//! - Runs of datagrams to one destination of one size go as one segmented message
//!   (`UDP_SEGMENT`), as `sendmmsg` does (unless a segmented send once failed with `EIO`).
//! - One socket's messages are linked (`IOSQE_IO_LINK`): they go in order, and the first that
//!   fails cancels the rest of that socket's chain (never another socket's).
//! - Every message carries `MSG_DONTWAIT`: a socket that cannot take a datagram completes it
//!   with `EAGAIN` at once, never parked in the kernel. Should a kernel park one anyway, the
//!   submit does not wait for it: it is cancelled and reported unsent ([`SendRing::submit`]),
//!   and the caller sends it the ordinary way, which waits for the socket's readiness.
//! - What could not be staged (the ring full) or sent stays in the caller's queue.
//!
//! No allocation per round: the ring, its headers, addresses, control messages and iovecs
//! are allocated once, when the ring is made.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types, IoUring};
use socket2::SockAddr;

use super::mmsg::{group_len, gso_enabled, set_segment_size, CMSG_WORDS};

/// Most messages (one datagram, or a segmented run of them) one submit carries.
pub const RING_MESSAGES: usize = 256;
/// Most datagrams one submit carries (the iovecs of its messages).
pub const RING_DATAGRAMS: usize = 1024;

/// One staged message: its header and what the header points at.
struct Slot {
    addr: SockAddr,
    hdr: libc::msghdr,
    ctrl: [u64; CMSG_WORDS],
    /// The socket it goes out on.
    fd: RawFd,
    /// Datagrams in it.
    datagrams: usize,
    /// Its completion's result once known.
    result: Option<i32>,
}

/// What a submit did for one staged socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams sent from the front of what was staged (in order).
    pub datagrams: usize,
    /// Whether a message failed (its error, and the rest of the socket's chain, unsent): the
    /// caller then sends the rest the ordinary way, which knows each error's handling.
    pub failed: bool,
}

/// A ring for the sends of one loop (one thread), reused round after round.
pub struct SendRing {
    ring: IoUring,
    slots: Vec<Slot>,
    iovs: Box<[libc::iovec]>,
    iovs_used: usize,
    /// Per staged socket: its first slot and how many.
    sockets: Vec<(usize, usize)>,
    /// Results per staged socket after [`SendRing::submit`].
    sent: Vec<Sent>,
    cancelled: u64,
}

impl SendRing {
    /// A ring, or why the kernel refused one (too old, `io_uring_disabled`, a seccomp filter):
    /// the caller then keeps to one `sendmmsg(2)` per socket.
    pub fn new() -> io::Result<SendRing> {
        let ring = IoUring::builder().build(RING_MESSAGES as u32)?;
        if !ring.params().is_feature_ext_arg() {
            // The timed wait (5.11) is what keeps a submit from ever waiting for a socket.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring without IORING_FEAT_EXT_ARG (Linux before 5.11)",
            ));
        }
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(opcode::SendMsg::CODE)
            || !probe.is_supported(opcode::AsyncCancel::CODE)
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring without IORING_OP_SENDMSG or IORING_OP_ASYNC_CANCEL",
            ));
        }
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        Ok(SendRing {
            ring,
            slots: Vec::with_capacity(RING_MESSAGES),
            iovs: vec![iov; RING_DATAGRAMS].into_boxed_slice(),
            iovs_used: 0,
            sockets: Vec::with_capacity(RING_MESSAGES),
            sent: Vec::with_capacity(RING_MESSAGES),
            cancelled: 0,
        })
    }

    /// Stages datagrams from the front of `batch` for `fd`, in order, as many as the ring has
    /// room for; returns the socket's index in this submit (for [`SendRing::sent`]) and how
    /// many were staged (0: the ring is full, nothing staged, no index used).
    ///
    /// # Safety
    ///
    /// `fd` must stay open, and every byte of `batch`'s datagrams must stay where it is,
    /// unchanged, until [`SendRing::submit`] returns: the kernel reads them then.
    pub unsafe fn stage(&mut self, fd: RawFd, batch: &[(SocketAddr, &[u8])]) -> (usize, usize) {
        let gso = gso_enabled();
        let socket = self.sockets.len();
        let first = self.slots.len();
        let mut staged = 0;
        while staged < batch.len() && self.slots.len() < RING_MESSAGES {
            let rest = batch.get(staged..).unwrap_or_default();
            let n = group_len(rest, gso).min(RING_DATAGRAMS - self.iovs_used);
            if n == 0 {
                break;
            }
            self.push_slot(fd, rest.get(..n).unwrap_or_default());
            staged += n;
        }
        if staged > 0 {
            self.sockets.push((first, self.slots.len() - first));
        }
        (socket, staged)
    }

    /// One message of `run` (one datagram, or a segmented run to one destination).
    fn push_slot(&mut self, fd: RawFd, run: &[(SocketAddr, &[u8])]) {
        let Some((to, first)) = run.first() else {
            return;
        };
        let start = self.iovs_used;
        for ((_, data), iov) in run.iter().zip(self.iovs.iter_mut().skip(start)) {
            *iov = libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            };
        }
        self.iovs_used += run.len();
        // SAFETY: an all-zero msghdr is a valid "no name, no data, no control" header.
        let hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        self.slots.push(Slot {
            addr: SockAddr::from(*to),
            hdr,
            ctrl: [0; CMSG_WORDS],
            fd,
            datagrams: run.len(),
            result: None,
        });
        let iovs = self.iovs.as_mut_ptr().wrapping_add(start);
        let Some(slot) = self.slots.last_mut() else {
            return;
        };
        // The slot's own fields are pointed at only now that it sits in `slots`, whose
        // storage (reserved for RING_MESSAGES) does not move until the next round.
        slot.hdr.msg_name = slot.addr.as_ptr() as *mut libc::c_void;
        slot.hdr.msg_namelen = slot.addr.len();
        slot.hdr.msg_iov = iovs;
        slot.hdr.msg_iovlen = run.len();
        if run.len() > 1 {
            set_segment_size(&mut slot.hdr, &mut slot.ctrl, first.len());
        }
    }

    /// Submits everything staged in one `io_uring_enter(2)` and collects the results, read
    /// with [`SendRing::sent`] until the next [`SendRing::stage`]. Never waits for a socket:
    /// a message the kernel did not complete at once is cancelled and counted unsent.
    ///
    /// An error is the ring's, not a socket's (the kernel out of memory for it): every staged
    /// socket is then reported failed, a few of its datagrams perhaps sent already (UDP
    /// allows the duplicate the caller's resend makes), and the caller should stop using
    /// the ring.
    pub fn submit(&mut self) -> io::Result<()> {
        self.sent.clear();
        self.sent.resize(self.sockets.len(), Sent::default());
        let result = self.submit_staged();
        match result {
            Ok(()) => self.tally(),
            Err(_) => self.sent.iter_mut().for_each(|s| s.failed = true),
        }
        self.reset();
        result
    }

    fn submit_staged(&mut self) -> io::Result<()> {
        let total = self.slots.len();
        if total == 0 {
            return Ok(());
        }
        self.push_entries()?;
        let done = self.complete_now(total)?;
        if done < total {
            self.cancel_rest(total - done)?;
        }
        Ok(())
    }

    /// Messages a submit found still in flight and cancelled (a kernel that parks a
    /// `MSG_DONTWAIT` send; none on the kernels measured).
    pub fn cancelled(&self) -> u64 {
        self.cancelled
    }

    /// The submission entries of every slot, each socket's chain linked.
    fn push_entries(&mut self) -> io::Result<()> {
        let mut sq = self.ring.submission();
        for &(first, count) in &self.sockets {
            for i in first..first + count {
                let Some(slot) = self.slots.get(i) else {
                    break;
                };
                let mut entry = opcode::SendMsg::new(types::Fd(slot.fd), &slot.hdr)
                    .flags(libc::MSG_DONTWAIT as u32)
                    .build()
                    .user_data(i as u64);
                if i + 1 < first + count {
                    entry = entry.flags(squeue::Flags::IO_LINK);
                }
                // SAFETY: the header, its name, control message and iovecs live in `self`
                // until `submit` returns (every entry has completed or been cancelled by
                // then), and the datagrams' bytes by `stage`'s contract.
                if unsafe { sq.push(&entry) }.is_err() {
                    return Err(io::Error::other("io_uring submission queue full"));
                }
            }
        }
        Ok(())
    }

    /// Submits and reaps what completed in the call itself; how many did.
    fn complete_now(&mut self, total: usize) -> io::Result<usize> {
        let ts = types::Timespec::new();
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(total, &args) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
            Err(e) => return Err(e),
        }
        Ok(self.reap())
    }

    /// Cancels every staged message still in flight and waits for them (a cancelled send
    /// completes at once); how many completed.
    fn cancel_rest(&mut self, missing: usize) -> io::Result<usize> {
        // Only on a kernel that parked a send: the one allocation of this module per round.
        let pending: Vec<u64> = (0..self.slots.len())
            .filter(|&i| self.slots.get(i).is_some_and(|s| s.result.is_none()))
            .map(|i| i as u64)
            .collect();
        self.cancelled += pending.len() as u64;
        {
            let mut sq = self.ring.submission();
            for &user_data in &pending {
                let cancel = opcode::AsyncCancel::new(user_data)
                    .build()
                    .user_data(u64::MAX);
                // SAFETY: a cancel entry points at nothing of ours.
                if unsafe { sq.push(&cancel) }.is_err() {
                    break;
                }
            }
        }
        let mut done = 0;
        while done < missing {
            self.ring.submit_and_wait(1)?;
            done += self.reap();
        }
        Ok(done)
    }

    /// Takes every completion waiting; how many were of staged messages.
    fn reap(&mut self) -> usize {
        let mut n = 0;
        for cqe in self.ring.completion() {
            let Some(slot) = usize::try_from(cqe.user_data())
                .ok()
                .and_then(|i| self.slots.get_mut(i))
            else {
                continue; // a cancel's own completion
            };
            if slot.result.is_none() {
                slot.result = Some(cqe.result());
                n += 1;
            }
        }
        n
    }

    /// Per socket: the datagrams sent before its first failure.
    fn tally(&mut self) {
        for (socket, &(first, count)) in self.sockets.iter().enumerate() {
            let Some(sent) = self.sent.get_mut(socket) else {
                continue;
            };
            for slot in self.slots.iter().skip(first).take(count) {
                match slot.result {
                    Some(r) if r >= 0 => sent.datagrams += slot.datagrams,
                    _ => {
                        sent.failed = true;
                        break;
                    }
                }
            }
        }
    }

    fn reset(&mut self) {
        self.slots.clear();
        self.sockets.clear();
        self.iovs_used = 0;
    }

    /// What the last [`SendRing::submit`] did for the socket staged as `socket`.
    pub fn sent(&self, socket: usize) -> Sent {
        self.sent.get(socket).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
