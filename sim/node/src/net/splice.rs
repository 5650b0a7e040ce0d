//! The Linux tunnel pump: `splice(2)` through a pipe, each way, driven by tokio's readiness.
//!
//! Bytes go socket → pipe → socket inside the kernel: no copy to user space, no buffer of ours.
//! Each direction's pipe is the bound (its capacity, 64 KiB by default): the pump splices
//! from a socket only while the pipe has room, so a slow receiver stops the reading and TCP's
//! flow control slows the sender. Same contract as [`copy_tunnel`](super::tunnel::copy_tunnel)
//! (see [`super::tunnel`]); when the pipes cannot be made (out of descriptors) the tunnel falls
//! back to the copy.

use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::net::TcpStream;

use super::tunnel::{copy_tunnel, TunnelEnd, TunnelLink};

/// Most bytes one `splice` call moves.
const CHUNK: usize = 1 << 20;

/// A pipe, both ends non-blocking, closed on drop.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe (spliced in, not yet out).
    held: usize,
    /// The source reached its end (or failed) and everything in the pipe went out.
    eof: bool,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` is a valid, writable array of two descriptors, as pipe2 requires; on
        // success both are new descriptors that nothing else owns.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are open and owned by us alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Pipe {
            read,
            write,
            held: 0,
            eof: false,
        })
    }
}

/// One `splice` call from `from` to `to`, at most `len` bytes, never blocking.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call (borrowed from live
    // owners by the callers); null offsets mean "the file position", as for sockets and pipes.
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
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// What one direction did in one poll.
enum Step {
    Pending,
    SourceClosed,
    SinkFailed,
}

/// Moves bytes `src` → `pipe` → `dst` until it would block; `reading` false stops reading.
fn poll_dir(
    cx: &mut Context<'_>,
    src: &TcpStream,
    dst: &TcpStream,
    pipe: &mut Pipe,
    reading: bool,
    moved: &dyn Fn(usize),
) -> Step {
    loop {
        if pipe.held > 0 {
            match dst.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Step::SinkFailed,
                Poll::Pending => return Step::Pending,
            }
            // The pipe holds `held` bytes, so a would-block can only be the socket's.
            let out = dst.try_io(Interest::WRITABLE, || {
                splice(pipe.read.as_raw_fd(), dst.as_raw_fd(), pipe.held)
            });
            match out {
                Ok(0) => return Step::SinkFailed,
                Ok(n) => {
                    pipe.held -= n.min(pipe.held);
                    moved(n);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => return Step::SinkFailed,
            }
        }
        if pipe.eof {
            return Step::SourceClosed;
        }
        if !reading {
            return Step::Pending;
        }
        match src.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => {
                pipe.eof = true;
                continue;
            }
            Poll::Pending => return Step::Pending,
        }
        // The pipe is empty here, so a would-block can only be the socket's: try_io clears the
        // socket's readiness then, and the next poll waits for more bytes.
        let read = src.try_io(Interest::READABLE, || {
            splice(src.as_raw_fd(), pipe.write.as_raw_fd(), CHUNK)
        });
        match read {
            Ok(0) => pipe.eof = true,
            Ok(n) => pipe.held += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => pipe.eof = true,
        }
    }
}

/// Moves a tunnel's bytes with `splice(2)`; falls back to the copy when its pipes cannot be
/// made. See the module docs.
pub async fn splice_tunnel(client: TcpStream, upstream: TcpStream, link: TunnelLink) -> TunnelEnd {
    let (mut up, mut down) = match (Pipe::new(), Pipe::new()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return copy_tunnel(client, upstream, link).await,
    };
    link.set_kernel(true);
    let mut linger: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let end = poll_fn(|cx| {
        link.register(cx);
        let reading = !link.close_requested();
        let (l1, l2) = (link.clone(), link.clone());
        let a = poll_dir(cx, &client, &upstream, &mut up, reading, &move |n| {
            l1.moved_up(n)
        });
        let b = poll_dir(cx, &upstream, &client, &mut down, reading, &move |n| {
            l2.moved_down(n)
        });
        if reading {
            return match (a, b) {
                (Step::SourceClosed, _) | (_, Step::SinkFailed) => {
                    Poll::Ready(TunnelEnd::ClientClosed)
                }
                (Step::SinkFailed, _) | (_, Step::SourceClosed) => {
                    Poll::Ready(TunnelEnd::UpstreamClosed)
                }
                _ => Poll::Pending,
            };
        }
        let drained = |step: &Step, pipe: &Pipe| !matches!(step, Step::Pending) || pipe.held == 0;
        if drained(&a, &up) && drained(&b, &down) {
            return Poll::Ready(TunnelEnd::Closed);
        }
        let sleep = linger.get_or_insert_with(|| Box::pin(tokio::time::sleep(link.linger())));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(TunnelEnd::Closed),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    for s in [&client, &upstream] {
        let _ = socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write);
    }
    end
}
