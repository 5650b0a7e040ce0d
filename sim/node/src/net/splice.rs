//! The Linux tunnel pump: `splice(2)` through a pipe, each way, driven by tokio's readiness.
//!
//! Bytes go socket → pipe → socket inside the kernel: no copy to user space, no buffer of ours.
//! Each direction's pipe is the bound (its capacity, 64 KiB by default): the pump splices
//! from a socket only while the pipe has room, so a slow receiver stops the reading and TCP's
//! flow control slows the sender. Same contract as [`copy_tunnel`](super::tunnel::copy_tunnel)
//! (see [`super::tunnel`]).
//!
//! A direction holds its pipe only while bytes move: once the pipe is empty and the source
//! has nothing to read, the pipe goes back to the thread's pool ([`POOL_MAX`] kept, the rest
//! closed, all of them once the thread's last tunnel ended), so an idle tunnel holds its two
//! sockets and no pipe (2 descriptors, not 6). When
//! no pipe can be had when bytes come (out of descriptors), the direction waits
//! [`PIPE_RETRY`] and tries again, the bytes held back by TCP meanwhile; when none can be had
//! at the start, the tunnel is the copy.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;

use super::tunnel::{copy_tunnel, TunnelEnd, TunnelLink};

/// Most bytes one `splice` call moves.
const CHUNK: usize = 1 << 20;

/// Empty pipes each thread keeps for the next direction that moves bytes.
const POOL_MAX: usize = 16;
/// How long a direction waits before asking again for a pipe it could not have.
const PIPE_RETRY: Duration = Duration::from_millis(50);

thread_local! {
    /// The thread's empty pipes (each relay worker has its own thread).
    static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
    /// The thread's spliced tunnels running now: the pool is emptied when the last one ends,
    /// so that no descriptor outlives the tunnels.
    static RUNNING: Cell<usize> = const { Cell::new(0) };
}

/// One running tunnel on this thread, for as long as it lives (its pump may be dropped).
struct Running;

impl Running {
    fn start() -> Running {
        RUNNING.with(|r| r.set(r.get() + 1));
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let left = RUNNING.with(|r| {
            r.set(r.get().saturating_sub(1));
            r.get()
        });
        if left == 0 {
            POOL.with(|p| p.borrow_mut().clear());
        }
    }
}

/// A pipe, both ends non-blocking, closed on drop.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
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
        Ok(Pipe { read, write })
    }

    /// An empty pipe: the pool's, else a new one.
    fn take() -> io::Result<Pipe> {
        match POOL.with(|p| p.borrow_mut().pop()) {
            Some(pipe) => Ok(pipe),
            None => Pipe::new(),
        }
    }

    /// Gives an empty pipe back to the pool (closed when the pool is full).
    fn give_back(self) {
        POOL.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOL_MAX {
                pool.push(self);
            }
        });
    }
}

/// One direction of a tunnel.
#[derive(Default)]
struct Way {
    /// Its pipe, while bytes move.
    pipe: Option<Pipe>,
    /// Bytes in the pipe (spliced in, not yet out).
    held: usize,
    /// The source reached its end (or failed) and everything in the pipe went out.
    eof: bool,
    /// Waiting to ask again for a pipe.
    retry: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Way {
    /// An empty pipe goes back to the pool.
    fn release(&mut self) {
        if self.held == 0 {
            if let Some(pipe) = self.pipe.take() {
                pipe.give_back();
            }
        }
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

/// Moves bytes `src` → pipe → `dst` until it would block; `reading` false stops reading.
fn poll_dir(
    cx: &mut Context<'_>,
    src: &TcpStream,
    dst: &TcpStream,
    way: &mut Way,
    reading: bool,
    moved: &dyn Fn(usize),
) -> Step {
    loop {
        if let (true, Some(pipe)) = (way.held > 0, &way.pipe) {
            match dst.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Step::SinkFailed,
                Poll::Pending => return Step::Pending,
            }
            // The pipe holds `held` bytes, so a would-block can only be the socket's.
            let out = dst.try_io(Interest::WRITABLE, || {
                splice(pipe.read.as_raw_fd(), dst.as_raw_fd(), way.held)
            });
            match out {
                Ok(0) => return Step::SinkFailed,
                Ok(n) => {
                    way.held -= n.min(way.held);
                    moved(n);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => return Step::SinkFailed,
            }
        }
        if way.eof {
            way.release();
            return Step::SourceClosed;
        }
        if !reading {
            way.release();
            return Step::Pending;
        }
        match src.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => {
                way.eof = true;
                continue;
            }
            Poll::Pending => {
                // Nothing to move: an idle direction holds no pipe.
                way.release();
                return Step::Pending;
            }
        }
        let pipe = match way.pipe.take().map_or_else(Pipe::take, Ok) {
            Ok(pipe) => way.pipe.insert(pipe),
            Err(_) => {
                // Out of descriptors: TCP holds the bytes back until a pipe can be had.
                let retry = way
                    .retry
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(PIPE_RETRY)));
                if retry.as_mut().poll(cx).is_pending() {
                    return Step::Pending;
                }
                way.retry = None;
                continue;
            }
        };
        // The pipe is empty here, so a would-block can only be the socket's: try_io clears the
        // socket's readiness then, and the next poll waits for more bytes.
        let read = src.try_io(Interest::READABLE, || {
            splice(src.as_raw_fd(), pipe.write.as_raw_fd(), CHUNK)
        });
        match read {
            Ok(0) => way.eof = true,
            Ok(n) => way.held += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => way.eof = true,
        }
    }
}

/// Moves a tunnel's bytes with `splice(2)`; falls back to the copy when its pipes cannot be
/// made. See the module docs.
pub async fn splice_tunnel(client: TcpStream, upstream: TcpStream, link: TunnelLink) -> TunnelEnd {
    let _running = Running::start();
    // A pipe must be had at the start (it goes back to the pool at once), else the copy.
    match Pipe::take() {
        Ok(pipe) => pipe.give_back(),
        Err(_) => return copy_tunnel(client, upstream, link).await,
    }
    let (mut up, mut down) = (Way::default(), Way::default());
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
        let drained = |step: &Step, way: &Way| !matches!(step, Step::Pending) || way.held == 0;
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
