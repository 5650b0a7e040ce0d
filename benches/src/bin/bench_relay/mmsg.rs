//! A UDP relay that moves datagrams in batches: `recvmmsg(2)` up to [`BATCH`] datagrams per
//! call, `sendmmsg(2)` them per flow (client → upstream on the flow's connected socket,
//! upstream → client on the front socket with the client's address). A flow is a client
//! address with its own upstream socket, as in the naive relay, so the two differ only in the
//! system calls.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use socket2::SockAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::{ready, MAX_FLOWS};

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// Room per datagram (the protocol's largest frame is 2 054 bytes).
const SLOT: usize = 2048;

/// Buffers for one batch, reused for every call.
struct Batch {
    bufs: Vec<u8>,
    lens: [usize; BATCH],
    names: Vec<libc::sockaddr_storage>,
    name_lens: [libc::socklen_t; BATCH],
}

impl Batch {
    fn new() -> Self {
        Batch {
            bufs: vec![0; BATCH * SLOT],
            lens: [0; BATCH],
            // SAFETY: sockaddr_storage is plain old data; all zeros is a valid value.
            names: vec![unsafe { std::mem::zeroed() }; BATCH],
            name_lens: [0; BATCH],
        }
    }

    fn datagram(&self, i: usize) -> &[u8] {
        &self.bufs[i * SLOT..i * SLOT + self.lens[i]]
    }

    fn source(&self, i: usize) -> Option<SocketAddr> {
        let storage = &self.names[i];
        let len = self.name_lens[i] as usize;
        match i32::from(storage.ss_family) {
            libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the kernel wrote a sockaddr_in there (family and length checked);
                // sockaddr_storage is aligned for every sockaddr type.
                let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
                Some(SocketAddr::from((
                    u32::from_be(a.sin_addr.s_addr).to_be_bytes(),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
                Some(SocketAddr::from((
                    a.sin6_addr.s6_addr,
                    u16::from_be(a.sin6_port),
                )))
            }
            _ => None,
        }
    }

    /// One `recvmmsg`: how many datagrams arrived (`WouldBlock` when none).
    fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut iovs: Vec<libc::iovec> = self
            .bufs
            .chunks_mut(SLOT)
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: SLOT,
            })
            .collect();
        // SAFETY: mmsghdr is plain old data; all zeros is a valid value.
        let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
        for (i, h) in hdrs.iter_mut().enumerate() {
            h.msg_hdr.msg_iov = &mut iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        }
        // SAFETY: every header points at a live buffer and name of the sizes given, for the
        // duration of the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, h) in hdrs.iter().take(n).enumerate() {
            self.lens[i] = h.msg_len as usize;
            self.name_lens[i] = h.msg_hdr.msg_namelen;
        }
        Ok(n)
    }
}

/// One `sendmmsg` of `datagrams` (to `to`, or on a connected socket): how many were sent.
fn send_many(fd: RawFd, datagrams: &[&[u8]], to: Option<&SockAddr>) -> io::Result<usize> {
    let mut iovs: Vec<libc::iovec> = datagrams
        .iter()
        .map(|d| libc::iovec {
            iov_base: d.as_ptr() as *mut libc::c_void,
            iov_len: d.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain old data; all zeros is a valid value.
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; datagrams.len()];
    for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
        if let Some(to) = to {
            h.msg_hdr.msg_name = to.as_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_namelen = to.len();
        }
    }
    // SAFETY: every header points at live data and (when given) a live address for the
    // duration of the call; the kernel only reads them.
    let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as u32, libc::MSG_DONTWAIT) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sends every datagram, waiting for room when the socket buffer is full.
async fn send_all(socket: &UdpSocket, mut datagrams: &[&[u8]], to: Option<&SockAddr>) {
    let fd = socket.as_raw_fd();
    while !datagrams.is_empty() {
        if socket.writable().await.is_err() {
            return;
        }
        match socket.try_io(Interest::WRITABLE, || send_many(fd, datagrams, to)) {
            Ok(n) => datagrams = &datagrams[n.max(1).min(datagrams.len())..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // Refused (ICMP) or anything else: drop that datagram, as UDP does.
            Err(_) => datagrams = &datagrams[1..],
        }
    }
}

/// Runs the relay until the front socket fails.
pub async fn relay(listen: SocketAddr, upstream: SocketAddr) -> io::Result<()> {
    let front = Rc::new(UdpSocket::bind(listen).await?);
    ready(front.local_addr()?);
    let mut flows: HashMap<SocketAddr, Rc<UdpSocket>> = HashMap::new();
    let mut batch = Batch::new();
    let fd = front.as_raw_fd();
    loop {
        front.readable().await?;
        let n = match front.try_io(Interest::READABLE, || batch.recv(fd)) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => continue,
        };
        // Group the batch by flow, keeping each flow's order.
        let mut order: Vec<(SocketAddr, Vec<usize>)> = Vec::new();
        for i in 0..n {
            let Some(from) = batch.source(i) else {
                continue;
            };
            match order.iter_mut().find(|(a, _)| *a == from) {
                Some((_, list)) => list.push(i),
                None => order.push((from, vec![i])),
            }
        }
        for (from, list) in order {
            let up = match flows.get(&from) {
                Some(up) => up.clone(),
                None if flows.len() >= MAX_FLOWS => continue,
                None => {
                    let up = Rc::new(UdpSocket::bind(SocketAddr::new(listen.ip(), 0)).await?);
                    up.connect(upstream).await?;
                    tokio::task::spawn_local(replies(up.clone(), front.clone(), from));
                    flows.insert(from, up.clone());
                    up
                }
            };
            let datagrams: Vec<&[u8]> = list.iter().map(|i| batch.datagram(*i)).collect();
            send_all(&up, &datagrams, None).await;
        }
    }
}

/// A flow's replies: batches from upstream to the client, through the front socket.
async fn replies(up: Rc<UdpSocket>, front: Rc<UdpSocket>, client: SocketAddr) {
    let mut batch = Batch::new();
    let to = SockAddr::from(client);
    let fd = up.as_raw_fd();
    loop {
        if up.readable().await.is_err() {
            return;
        }
        let n = match up.try_io(Interest::READABLE, || batch.recv(fd)) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => continue,
        };
        let datagrams: Vec<&[u8]> = (0..n).map(|i| batch.datagram(i)).collect();
        send_all(&front, &datagrams, Some(&to)).await;
    }
}
