//! A `splice(2)` relay direction: socket → pipe → socket, the bytes never copied to user
//! space.
//!
//! The pipe is filled only when empty through tokio's readiness (`try_io`), so that an
//! `EAGAIN` clears the socket's readiness only when it really is the socket's; more is pulled
//! while the pipe has room with plain calls that never touch the readiness. Then the pipe is
//! drained to the other socket, waiting for it to be writable as needed.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Pipe capacity asked for (the default is 64 KiB; `/proc/sys/fs/pipe-max-size` is 1 MiB).
const PIPE_SIZE: i32 = 1 << 20;
/// Most bytes one splice call moves.
const CHUNK: usize = 1 << 20;

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both descriptors are open and owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_SETPIPE_SZ on a pipe we own; failure only leaves the default size.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
    Ok((r, w))
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call; null offsets mean the
    // current file positions (required for sockets and pipes).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Moves every byte from `src` to `dst` until `src` ends, then half-closes `dst`.
pub async fn one_way(src: Rc<TcpStream>, dst: Rc<TcpStream>) -> io::Result<()> {
    let (pipe_r, pipe_w) = pipe()?;
    let (src_fd, dst_fd) = (src.as_raw_fd(), dst.as_raw_fd());
    let mut in_pipe = 0usize;
    let mut eof = false;
    while !eof {
        if in_pipe == 0 {
            src.readable().await?;
            match src.try_io(Interest::READABLE, || {
                splice(src_fd, pipe_w.as_raw_fd(), CHUNK)
            }) {
                Ok(0) => eof = true,
                Ok(n) => in_pipe += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        // More while there is room, without touching tokio's readiness.
        while !eof && in_pipe < PIPE_SIZE as usize {
            match splice(src_fd, pipe_w.as_raw_fd(), CHUNK) {
                Ok(0) => eof = true,
                Ok(n) => in_pipe += n,
                Err(_) => break,
            }
        }
        while in_pipe > 0 {
            dst.writable().await?;
            match dst.try_io(Interest::WRITABLE, || {
                splice(pipe_r.as_raw_fd(), dst_fd, in_pipe)
            }) {
                Ok(n) => in_pipe -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
    // SAFETY: shutdown on a socket we hold open.
    unsafe { libc::shutdown(dst_fd, libc::SHUT_WR) };
    Ok(())
}
