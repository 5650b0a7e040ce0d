//! Tunnel pumps: what moves a spliced tunnel's raw bytes once the relay handed it to its
//! driver ([`RelayOutput::Splice`](cloudproxy_core::relay::RelayOutput::Splice)).
//!
//! A pump owns both streams and moves bytes both ways with **bounded buffers and
//! backpressure**: it reads from one side only while it holds less than its buffer for the
//! other side, so a receiver slower than its sender slows the sender (TCP's flow control does
//! the rest), and nothing is ever cut for being slow. [`Net::tunnel`](super::Net::tunnel)
//! chooses the pump: [`copy_tunnel`] (a bounded-buffer copy: the simulation's, and every
//! network's by default) or, on Linux real sockets, `splice(2)` through a pipe
//! (`net/splice.rs`). Both report through one [`TunnelLink`] and end with one
//! [`TunnelEnd`], so they are observably the same (a test checks it).
//!
//! A pump reports the bytes it wrote to each side on its link (never per byte to the relay:
//! the driver sums them and reports at most every `report_interval`). It ends when a side
//! closes (after writing what it had read from that side to the other), when a write fails,
//! or when the link asks it to close (then it writes what it holds, within the link's linger
//! time, and stops). Its end drops both streams.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The buffer of each direction of a [`copy_tunnel`].
pub const COPY_BUFFER: usize = 64 * 1024;

/// How a tunnel pump ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunnelEnd {
    /// The client closed (or reset) its side; what it sent was written upstream.
    ClientClosed,
    /// SD-RTN closed (or reset) its side; what it sent was written to the client.
    UpstreamClosed,
    /// The link asked the pump to close.
    Closed,
}

/// What a pump shares with its driver: the bytes moved and not yet reported, and the close
/// request. Cheap to clone (one `Rc`).
#[derive(Clone, Default)]
pub struct TunnelLink(Rc<LinkState>);

#[derive(Default)]
struct LinkState {
    up: Cell<u64>,
    down: Cell<u64>,
    /// Whether bytes moved since the driver last took them.
    dirty: Cell<bool>,
    /// Called the first time bytes move after a take (the driver queues the tunnel).
    on_dirty: RefCell<Option<Box<dyn Fn()>>>,
    close: Cell<bool>,
    linger: Cell<Duration>,
    waker: RefCell<Option<Waker>>,
    /// Which pump runs (for the metrics): `true` for the kernel's splice.
    kernel: Cell<bool>,
}

impl TunnelLink {
    /// A link whose `on_dirty` runs each time bytes start moving again after
    /// [`TunnelLink::take`], and whose pump may take `linger` to flush when asked to close.
    pub fn new(linger: Duration, on_dirty: impl Fn() + 'static) -> Self {
        let link = TunnelLink::default();
        link.0.linger.set(linger);
        *link.0.on_dirty.borrow_mut() = Some(Box::new(on_dirty));
        link
    }

    /// The pump wrote `n` bytes upstream.
    pub fn moved_up(&self, n: usize) {
        self.0.up.set(self.0.up.get() + n as u64);
        self.mark();
    }

    /// The pump wrote `n` bytes to the client.
    pub fn moved_down(&self, n: usize) {
        self.0.down.set(self.0.down.get() + n as u64);
        self.mark();
    }

    fn mark(&self) {
        if !self.0.dirty.replace(true) {
            if let Some(f) = self.0.on_dirty.borrow().as_ref() {
                f();
            }
        }
    }

    /// Takes the bytes moved since the last take: (up, down).
    pub fn take(&self) -> (u64, u64) {
        self.0.dirty.set(false);
        (self.0.up.replace(0), self.0.down.replace(0))
    }

    /// Asks the pump to close: it writes what it holds (within its linger time) and ends.
    pub fn close(&self) {
        self.0.close.set(true);
        if let Some(w) = self.0.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Whether a close was asked for.
    pub fn close_requested(&self) -> bool {
        self.0.close.get()
    }

    /// How long a closing pump may take to flush.
    pub fn linger(&self) -> Duration {
        self.0.linger.get()
    }

    /// Wakes `cx`'s task when a close is asked for.
    pub fn register(&self, cx: &Context<'_>) {
        let mut w = self.0.waker.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
    }

    /// Records which pump runs the tunnel.
    pub fn set_kernel(&self, kernel: bool) {
        self.0.kernel.set(kernel);
    }

    /// Whether the kernel's splice runs the tunnel.
    pub fn is_kernel(&self) -> bool {
        self.0.kernel.get()
    }
}

/// One direction of a copy: a bounded buffer between a reader and a writer.
struct Half {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

/// What a direction did in one poll.
enum Step {
    /// Made progress or is waiting with a waker registered.
    Pending,
    /// Its source closed and everything read was written.
    SourceClosed,
    /// Writing to its destination failed.
    SinkFailed,
}

impl Half {
    fn new() -> Self {
        Half {
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
        }
    }

    fn held(&self) -> usize {
        self.end - self.start
    }

    /// Moves bytes from `r` to `w`; `reading` false stops reading (closing).
    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut R,
        w: &mut W,
        reading: bool,
        moved: &dyn Fn(usize),
    ) -> Step
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if self.held() > 0 {
                match Pin::new(&mut *w).poll_write(cx, &self.buf[self.start..self.end]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Step::SinkFailed,
                    Poll::Ready(Ok(n)) => {
                        self.start += n;
                        moved(n);
                        continue;
                    }
                    Poll::Pending => return Step::Pending,
                }
            }
            if self.eof {
                return Step::SourceClosed;
            }
            if !reading {
                return Step::Pending;
            }
            if self.buf.is_empty() {
                self.buf = vec![0; COPY_BUFFER];
            }
            let mut rb = ReadBuf::new(&mut self.buf);
            match Pin::new(&mut *r).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        self.eof = true;
                    }
                    (self.start, self.end) = (0, n);
                }
                Poll::Ready(Err(_)) => self.eof = true,
                Poll::Pending => return Step::Pending,
            }
        }
    }
}

/// Moves a tunnel's bytes with a bounded buffer each way ([`COPY_BUFFER`]), reporting on
/// `link`; see the module docs.
pub async fn copy_tunnel<S>(mut client: S, mut upstream: S, link: TunnelLink) -> TunnelEnd
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    link.set_kernel(false);
    let (mut up, mut down) = (Half::new(), Half::new());
    let mut linger: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let end = poll_fn(|cx| {
        link.register(cx);
        let reading = !link.close_requested();
        let (l1, l2) = (link.clone(), link.clone());
        let a = up.poll(cx, &mut client, &mut upstream, reading, &move |n| {
            l1.moved_up(n)
        });
        let b = down.poll(cx, &mut upstream, &mut client, reading, &move |n| {
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
        // Closing: done once both buffers are written (or cannot be), or the linger is over.
        let drained = |step: &Step, half: &Half| !matches!(step, Step::Pending) || half.held() == 0;
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
    shut(&mut client).await;
    shut(&mut upstream).await;
    end
}

/// Shuts a stream's write side down, without waiting long on a peer that does not answer.
async fn shut<S: AsyncWrite + Unpin>(s: &mut S) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(Duration::from_millis(100), s.shutdown()).await;
}
