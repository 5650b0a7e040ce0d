//! Batched UDP on Linux: `recvmmsg(2)` and `sendmmsg(2)`, many datagrams per system call,
//! segmentation offload (`UDP_SEGMENT`, GSO) for runs of datagrams to one destination, and
//! receive offload (`UDP_GRO`): datagrams that arrive together from one source in one
//! message, cut back into datagrams by [`RecvMeta::datagrams`].
//! Called through tokio's readiness (`UdpSocket::try_io`), never blocking.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{SockAddr, SockAddrStorage};

use super::RecvMeta;

/// Most datagrams one receive call takes.
pub(super) const BATCH: usize = 32;

/// Most datagrams one [`send`] takes.
pub(super) const SEND_BATCH: usize = 64;
/// Most segments of one GSO send (the kernel's `UDP_MAX_SEGMENTS`).
const GSO_SEGMENTS: usize = 64;
/// Most payload bytes of one GSO send (under IPv4's 65,507-byte UDP limit).
const GSO_BYTES: usize = 65_000;
/// The largest datagram sent segmented: a segment must fit the path's MTU (1,500 bytes less
/// the IPv6 and UDP headers), or the kernel refuses the send; larger ones go one by one.
const GSO_MAX_SEGMENT: usize = 1_452;
/// Room for one `UDP_SEGMENT` control message (`CMSG_SPACE(sizeof(u16))`) or one `UDP_GRO`
/// message (`CMSG_SPACE(sizeof(int))`), 8-byte aligned.
pub(super) const CMSG_WORDS: usize = 3;

/// Whether segmentation offload (`UDP_SEGMENT`) may be used: true until a segmented send
/// fails with `EIO` (a device without checksum offload), then never again in this process.
static GSO: AtomicBool = AtomicBool::new(true);

/// Whether segmented sends are on (until one failed with `EIO`).
pub(super) fn gso_enabled() -> bool {
    GSO.load(Ordering::Relaxed)
}

/// Sends datagrams from the front of `batch` (at most [`SEND_BATCH`]) in one `sendmmsg`; how
/// many went. Consecutive datagrams to one destination of one size (the last of a run may be
/// shorter) go as one message with `UDP_SEGMENT` (GSO): the kernel carries them through its
/// stack as one and cuts them into datagrams at the end (the device, or the receiving
/// socket on loopback).
pub(super) fn send(fd: RawFd, batch: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
    let batch = batch.get(..batch.len().min(SEND_BATCH)).unwrap_or_default();
    let gso = GSO.load(Ordering::Relaxed);
    match send_grouped(fd, batch, gso) {
        Err(e) if gso && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) => {
            // EIO: the device cannot segment (never try again); EINVAL: this send could not be
            // segmented (a segment over the route's MTU). Either way, send this batch plainly.
            if e.raw_os_error() == Some(libc::EIO) {
                GSO.store(false, Ordering::Relaxed);
            }
            send_grouped(fd, batch, false)
        }
        other => other,
    }
}

/// How many datagrams from the front of `batch` go in one message.
pub(super) fn group_len(batch: &[(SocketAddr, &[u8])], gso: bool) -> usize {
    let Some((to, first)) = batch.first() else {
        return 0;
    };
    let size = first.len();
    if !gso || size == 0 || size > GSO_MAX_SEGMENT {
        return 1;
    }
    let (mut n, mut bytes) = (1, size);
    for (next_to, data) in batch.iter().skip(1) {
        if next_to != to || data.len() > size || data.is_empty() {
            break;
        }
        if n >= GSO_SEGMENTS || bytes + data.len() > GSO_BYTES {
            break;
        }
        n += 1;
        bytes += data.len();
        if data.len() < size {
            break; // a shorter one ends the run
        }
    }
    n
}

fn send_grouped(fd: RawFd, batch: &[(SocketAddr, &[u8])], gso: bool) -> io::Result<usize> {
    // Every array on the stack and left uninitialised but for the entries used: no
    // allocation, and a send of one datagram writes one entry of each.
    let mut addrs = [const { MaybeUninit::<SockAddr>::uninit() }; SEND_BATCH];
    let mut iovs = [const { MaybeUninit::<libc::iovec>::uninit() }; SEND_BATCH];
    let mut ctrl = [const { MaybeUninit::<[u64; CMSG_WORDS]>::uninit() }; SEND_BATCH];
    let mut msgs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; SEND_BATCH];
    // Datagrams in each message.
    let mut sizes = [0usize; SEND_BATCH];
    let (mut start, mut count) = (0, 0);
    while start < batch.len() {
        let rest = batch.get(start..).unwrap_or_default();
        let n = group_len(rest, gso);
        let (Some((to, first)), Some(addr), Some(msg), Some(words), Some(size)) = (
            rest.first(),
            addrs.get_mut(count),
            msgs.get_mut(count),
            ctrl.get_mut(count),
            sizes.get_mut(count),
        ) else {
            break;
        };
        for (iov, (_, data)) in iovs.iter_mut().skip(start).zip(rest.iter().take(n)) {
            iov.write(libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            });
        }
        let addr = addr.write(SockAddr::from(*to));
        // SAFETY: an all-zero mmsghdr is a valid "no name, no data, no control" header.
        let msg = msg.write(unsafe { MaybeUninit::zeroed().assume_init() });
        let h = &mut msg.msg_hdr;
        h.msg_name = addr.as_ptr() as *mut libc::c_void;
        h.msg_namelen = addr.len();
        // The `n` iovecs from `start` were written above.
        h.msg_iov = iovs.as_mut_ptr().wrapping_add(start) as *mut libc::iovec;
        h.msg_iovlen = n;
        if n > 1 {
            set_segment_size(h, words.write([0; CMSG_WORDS]), first.len());
        }
        *size = n;
        start += n;
        count += 1;
    }
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: the first `count` headers are initialised and point at names (`addrs`),
    // initialised iovecs (`iovs`, into the caller's `batch`) and control messages (`ctrl`)
    // that outlive the call; the kernel only reads them. MaybeUninit<T> has T's layout.
    let n = unsafe {
        libc::sendmmsg(
            fd,
            msgs.as_mut_ptr() as *mut libc::mmsghdr,
            u32::try_from(count).unwrap_or(0),
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let sent = usize::try_from(n).unwrap_or(0);
    Ok(sizes.iter().take(sent).sum())
}

/// Puts one `UDP_SEGMENT` control message of `size` in `words` and points `h` at it.
pub(super) fn set_segment_size(h: &mut libc::msghdr, words: &mut [u64; CMSG_WORDS], size: usize) {
    let size = u16::try_from(size).unwrap_or(u16::MAX);
    h.msg_control = words.as_mut_ptr() as *mut libc::c_void;
    h.msg_controllen = std::mem::size_of_val(words);
    // SAFETY: `h.msg_control` points at `msg_controllen` writable, 8-byte aligned bytes, room
    // for one cmsghdr and a u16 (CMSG_SPACE(2) = 24 on Linux), so CMSG_FIRSTHDR is non-null
    // and CMSG_DATA points inside the buffer.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(h);
        if c.is_null() {
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            return;
        }
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = libc::UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, size);
        h.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
    }
}

/// Receives up to `bufs.len()` (at most [`BATCH`]) messages in one `recvmmsg`, each into its
/// buffer; what each holds goes to `got`: its length, its source, and, when the kernel
/// coalesced datagrams into it (UDP GRO, [`enable_gro`]), their size. How many came. No
/// allocation: every array is on the stack.
pub(super) fn recv(fd: RawFd, bufs: &mut [Vec<u8>], got: &mut [RecvMeta]) -> io::Result<usize> {
    let count = bufs.len().min(got.len()).min(BATCH);
    let mut names = [const { MaybeUninit::<SockAddrStorage>::uninit() }; BATCH];
    let mut iovs = [const { MaybeUninit::<libc::iovec>::uninit() }; BATCH];
    let mut ctrl = [[0u64; CMSG_WORDS]; BATCH];
    let mut msgs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
    for (i, buf) in bufs.iter_mut().take(count).enumerate() {
        let (Some(name), Some(iov), Some(words), Some(msg)) = (
            names.get_mut(i),
            iovs.get_mut(i),
            ctrl.get_mut(i),
            msgs.get_mut(i),
        ) else {
            break;
        };
        let name = name.write(SockAddrStorage::zeroed());
        let iov = iov.write(libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        });
        // SAFETY: an all-zero mmsghdr is a valid empty header, filled in below.
        let m = msg.write(unsafe { MaybeUninit::zeroed().assume_init() });
        m.msg_hdr.msg_namelen = name.size_of();
        m.msg_hdr.msg_name = name as *mut SockAddrStorage as *mut libc::c_void;
        m.msg_hdr.msg_iov = iov as *mut libc::iovec;
        m.msg_hdr.msg_iovlen = 1;
        m.msg_hdr.msg_control = words.as_mut_ptr() as *mut libc::c_void;
        m.msg_hdr.msg_controllen = std::mem::size_of_val(words);
    }
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: the first `count` headers are initialised and point at live, writable name
    // storage, iovecs into `bufs` and control buffers of the sizes given; MSG_DONTWAIT never
    // blocks; a null timeout is allowed. MaybeUninit<T> has T's layout.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr() as *mut libc::mmsghdr,
            u32::try_from(count).unwrap_or(0),
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = usize::try_from(n).unwrap_or(0).min(count);
    let mut filled = 0;
    for i in 0..n {
        let (Some(msg), Some(name), Some(slot)) = (msgs.get(i), names.get_mut(i), got.get_mut(i))
        else {
            break;
        };
        // SAFETY: the first `count` headers and names were initialised above (the kernel
        // filled the first `n`); each name is taken once.
        let (m, name) = unsafe {
            (
                msg.assume_init_ref(),
                std::mem::replace(name, MaybeUninit::uninit()).assume_init(),
            )
        };
        // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes into `name`.
        let addr = unsafe { SockAddr::new(name, m.msg_hdr.msg_namelen) };
        let Some(from) = addr.as_socket() else {
            break;
        };
        let mut len = usize::try_from(m.msg_len).unwrap_or(0);
        let stride = gro_segment_size(&m.msg_hdr).unwrap_or(len);
        if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 && stride > 0 && stride < len {
            // Coalesced beyond the buffer (a raised gro_max_size): keep the whole datagrams.
            len -= len % stride;
        }
        *slot = RecvMeta { len, stride, from };
        filled = i + 1;
    }
    Ok(filled)
}

/// The `UDP_GRO` control message's datagram size, if the kernel put one in `h`.
fn gro_segment_size(h: &libc::msghdr) -> Option<usize> {
    if h.msg_control.is_null() || h.msg_controllen == 0 {
        return None;
    }
    // SAFETY: `h` was filled by recvmmsg: its control buffer holds `msg_controllen` bytes of
    // well-formed cmsghdrs, which CMSG_FIRSTHDR/CMSG_NXTHDR walk within; the data of a
    // UDP_GRO message is one int, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                return usize::try_from(size).ok().filter(|s| *s > 0);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// Turns UDP GRO on for `fd` (`setsockopt(SOL_UDP, UDP_GRO, 1)`): datagrams that arrive
/// together from one source may then come as one message ([`recv`] says their size).
/// Whether the kernel took it (Linux 5.0 and later).
pub(super) fn enable_gro(fd: RawFd) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: a plain setsockopt with a pointer to a live int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_GRO,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use super::*;

    fn receiver() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    fn recv_all(s: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 4096];
        (0..count)
            .map(|_| {
                let (n, _) = s.recv_from(&mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect()
    }

    /// A batch mixing runs to two destinations, a shorter datagram ending a run, one too large
    /// to segment and an empty one arrives as the same datagrams, in order, each whole.
    #[test]
    fn segmented_batch_arrives_as_its_datagrams() {
        let (a, b) = (receiver(), receiver());
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let payload = |i: u8, len: usize| vec![i; len];
        let data: Vec<(SocketAddr, Vec<u8>)> = vec![
            (to_a, payload(1, 1200)),
            (to_a, payload(2, 1200)),
            (to_a, payload(3, 1200)),
            (to_a, payload(4, 700)),
            (to_a, payload(5, 1200)),
            (to_b, payload(6, 1200)),
            (to_b, payload(7, 1200)),
            (to_b, payload(8, 3000)),
            (to_b, payload(9, 0)),
            (to_a, payload(10, 100)),
        ];
        let batch: Vec<(SocketAddr, &[u8])> =
            data.iter().map(|(to, d)| (*to, d.as_slice())).collect();
        assert_eq!(
            group_len(&batch, true),
            4,
            "a run ends with its shorter datagram"
        );
        assert_eq!(group_len(&batch, false), 1);
        let mut sent = 0;
        while sent < batch.len() {
            sent += send(sender.as_raw_fd(), &batch[sent..]).unwrap();
        }
        let want = |to| -> Vec<Vec<u8>> {
            data.iter()
                .filter(|(t, _)| *t == to)
                .map(|(_, d)| d.clone())
                .collect()
        };
        assert_eq!(recv_all(&a, 6), want(to_a));
        assert_eq!(recv_all(&b, 4), want(to_b));
    }

    /// A run longer than one message's segments is split, and every datagram still arrives.
    #[test]
    fn long_run_splits_into_messages() {
        let a = receiver();
        let to = a.local_addr().unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let data: Vec<Vec<u8>> = (0..SEND_BATCH).map(|i| vec![i as u8; 1400]).collect();
        let batch: Vec<(SocketAddr, &[u8])> = data.iter().map(|d| (to, d.as_slice())).collect();
        let first = group_len(&batch, true);
        assert!(first * 1400 <= GSO_BYTES && first < SEND_BATCH, "{first}");
        let mut sent = 0;
        while sent < batch.len() {
            sent += send(sender.as_raw_fd(), &batch[sent..]).unwrap();
        }
        assert_eq!(recv_all(&a, SEND_BATCH), data);
    }

    /// With GRO on, a segmented send arrives as one message of its datagrams (the stride in
    /// the control message, the last one shorter); without, as the datagrams one by one.
    #[test]
    fn gro_keeps_a_segmented_send_whole_and_says_its_stride() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let data: Vec<Vec<u8>> = (0..6u8)
            .map(|i| vec![i; if i == 5 { 700 } else { 1200 }])
            .collect();
        for gro in [true, false] {
            let r = receiver();
            let to = r.local_addr().unwrap();
            if gro {
                assert!(enable_gro(r.as_raw_fd()), "UDP_GRO (Linux 5.0 and later)");
            }
            let batch: Vec<(SocketAddr, &[u8])> = data.iter().map(|d| (to, d.as_slice())).collect();
            assert_eq!(send(sender.as_raw_fd(), &batch).unwrap(), 6);
            let mut bufs = vec![vec![0u8; crate::net::GRO_MESSAGE_MAX]; BATCH];
            let mut got = vec![RecvMeta::default(); BATCH];
            let mut seen = Vec::new();
            let mut messages = 0;
            for _ in 0..1_000 {
                if seen.len() >= data.len() {
                    break;
                }
                let n = recv(r.as_raw_fd(), &mut bufs, &mut got).unwrap_or(0);
                if n == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                for (meta, buf) in got.iter().zip(&bufs).take(n) {
                    assert_eq!(meta.from, sender.local_addr().unwrap());
                    seen.extend(meta.datagrams(buf).map(<[u8]>::to_vec));
                }
                messages += n;
            }
            assert_eq!(seen, data, "gro {gro}");
            if gro {
                assert_eq!((messages, got[0].stride, got[0].len), (1, 1200, 6700));
            } else {
                assert_eq!(messages, 6);
                assert_eq!(got[0].stride, got[0].len);
            }
        }
    }
}
