//! Batched UDP on Linux: `recvmmsg(2)` and `sendmmsg(2)`, many datagrams per system call.
//! Called through tokio's readiness (`UdpSocket::try_io`), never blocking.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::{SockAddr, SockAddrStorage};

/// Most datagrams one call moves.
pub(super) const BATCH: usize = 32;

/// Sends `batch` (at most [`BATCH`] are taken) in one `sendmmsg`; how many went.
pub(super) fn send(fd: RawFd, batch: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
    let batch = batch.get(..batch.len().min(BATCH)).unwrap_or_default();
    let addrs: Vec<SockAddr> = batch.iter().map(|(to, _)| SockAddr::from(*to)).collect();
    let mut iovs: Vec<libc::iovec> = batch
        .iter()
        .map(|(_, data)| libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = addrs
        .iter()
        .zip(iovs.iter_mut())
        .map(|(addr, iov)| {
            // SAFETY: an all-zero mmsghdr is a valid "no name, no data, no control" header.
            let mut m: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
            m.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
            m.msg_hdr.msg_namelen = addr.len();
            m.msg_hdr.msg_iov = iov as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    if msgs.is_empty() {
        return Ok(0);
    }
    // SAFETY: `msgs` holds `msgs.len()` valid headers whose names, iovecs and buffers
    // (`addrs`, `iovs`, `batch`) outlive the call; the kernel only reads them.
    let n = unsafe {
        libc::sendmmsg(
            fd,
            msgs.as_mut_ptr(),
            u32::try_from(msgs.len()).unwrap_or(0),
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
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
