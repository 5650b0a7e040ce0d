//! Batched UDP on Linux: `recvmmsg(2)` and `sendmmsg(2)`, many datagrams per system call, and
//! segmentation offload (`UDP_SEGMENT`, GSO) for runs of datagrams to one destination.
//! Called through tokio's readiness (`UdpSocket::try_io`), never blocking.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{SockAddr, SockAddrStorage};

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
/// Room for one `UDP_SEGMENT` control message (`CMSG_SPACE(sizeof(u16))`), 8-byte aligned.
const CMSG_WORDS: usize = 3;

/// Whether segmentation offload (`UDP_SEGMENT`) may be used: true until a segmented send
/// fails with `EIO` (a device without checksum offload), then never again in this process.
static GSO: AtomicBool = AtomicBool::new(true);

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
fn group_len(batch: &[(SocketAddr, &[u8])], gso: bool) -> usize {
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
fn set_segment_size(h: &mut libc::msghdr, words: &mut [u64; CMSG_WORDS], size: usize) {
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

/// Receives up to `bufs.len()` (at most [`BATCH`]) datagrams in one `recvmmsg`, each into its
/// buffer; their lengths and sources go to `got`. How many came.
pub(super) fn recv(
    fd: RawFd,
    bufs: &mut [Vec<u8>],
    got: &mut [(usize, SocketAddr)],
) -> io::Result<usize> {
    let count = bufs.len().min(got.len()).min(BATCH);
    let mut names: Vec<SockAddrStorage> = (0..count).map(|_| SockAddrStorage::zeroed()).collect();
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .take(count)
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = names
        .iter_mut()
        .zip(iovs.iter_mut())
        .map(|(name, iov)| {
            // SAFETY: an all-zero mmsghdr is a valid empty header, filled in below.
            let mut m: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
            m.msg_hdr.msg_namelen = name.size_of();
            m.msg_hdr.msg_name = name as *mut SockAddrStorage as *mut libc::c_void;
            m.msg_hdr.msg_iov = iov as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    if msgs.is_empty() {
        return Ok(0);
    }
    // SAFETY: `msgs` holds `count` headers pointing at live, writable name storage and
    // buffers (`names`, `iovs` into `bufs`) of the sizes given; MSG_DONTWAIT never blocks; a
    // null timeout is allowed.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            u32::try_from(count).unwrap_or(0),
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = usize::try_from(n).unwrap_or(0);
    let mut filled = 0;
    for (i, (m, name)) in msgs.iter().zip(names).enumerate().take(n) {
        // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes into `name`.
        let addr = unsafe { SockAddr::new(name, m.msg_hdr.msg_namelen) };
        if let (Some(from), Some(slot)) = (addr.as_socket(), got.get_mut(i)) {
            *slot = (usize::try_from(m.msg_len).unwrap_or(0), from);
            filled = i + 1;
        }
    }
    Ok(filled.min(n))
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
}
