//! The HTTP side of the metrics endpoint: one request per connection (`GET /metrics`), each
//! connection in a slot of a bounded table with a budget of its own, so that idle or slow
//! clients cannot keep a scraper out.
//!
//! - At most [`EndpointLimits::max_connections`] connections at once (default
//!   [`MAX_CONNECTIONS`]).
//! - A connection must send its whole request (at most [`MAX_REQUEST`] bytes, else `431`)
//!   within [`REQUEST_TIMEOUT`] of being accepted, and take its answer within
//!   [`WRITE_TIMEOUT`]; otherwise it is closed.
//! - When every slot is taken, the **oldest connection still sending its request** is closed
//!   to make room (a slowloris, most likely; a scraper sends its request at once). Only when
//!   every slot is busy writing an answer is the newcomer closed unanswered.
//!
//! Each outcome is counted ([`EndpointCounters`], rendered as `cloudproxy_metrics_*`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

use super::metrics::{render, Sources};

/// Connections served at once (by default).
pub const MAX_CONNECTIONS: usize = 16;
/// The longest request read (by default).
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its whole request (by default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to read its answer (by default).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The endpoint's bounds.
#[derive(Clone, Copy, Debug)]
pub struct EndpointLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// The longest request, in bytes.
    pub max_request_bytes: usize,
    /// How long a connection may take to send its request.
    pub request_timeout: Duration,
    /// How long a connection may take to read its answer.
    pub write_timeout: Duration,
}

impl Default for EndpointLimits {
    fn default() -> Self {
        EndpointLimits {
            max_connections: MAX_CONNECTIONS,
            max_request_bytes: MAX_REQUEST,
            request_timeout: REQUEST_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
        }
    }
}

/// What the endpoint did, for its own metrics.
#[derive(Debug, Default)]
pub struct EndpointCounters {
    /// Connections open now.
    pub open: Cell<u64>,
    /// Connections accepted.
    pub accepted: Cell<u64>,
    /// Requests answered (any status).
    pub answered: Cell<u64>,
    /// Connections still sending their request, closed to make room for a newer one.
    pub shed: Cell<u64>,
    /// Connections closed at once: every slot was busy writing an answer.
    pub refused: Cell<u64>,
    /// Connections closed for not sending their request, or not reading the answer, in time.
    pub timeouts: Cell<u64>,
    /// Requests longer than the bound (answered `431`).
    pub too_large: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get().saturating_add(1));
}

/// One connection's slot.
struct Slot {
    /// Still sending its request (may be shed).
    reading: bool,
    abort: Option<AbortHandle>,
}

/// The table of slots, oldest first (ids only grow).
#[derive(Default)]
struct Slots {
    next: u64,
    open: BTreeMap<u64, Slot>,
}

/// Frees its slot when the connection's task ends or is aborted.
struct SlotGuard {
    slots: Rc<RefCell<Slots>>,
    counters: Rc<EndpointCounters>,
    id: u64,
}

impl SlotGuard {
    fn answering(&self) {
        if let Some(slot) = self.slots.borrow_mut().open.get_mut(&self.id) {
            slot.reading = false;
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.slots.borrow_mut().open.remove(&self.id);
        self.counters
            .open
            .set(self.slots.borrow().open.len() as u64);
    }
}

/// Serves the endpoint on `listener` with the default limits until the task is dropped.
pub async fn serve(listener: TcpListener, sources: Sources) -> io::Result<()> {
    serve_with(listener, sources, EndpointLimits::default()).await
}

/// Serves the endpoint on `listener` until the task is dropped. A failed accept (descriptors
/// exhausted, say) is logged and retried after a pause; it never ends the endpoint.
pub async fn serve_with(
    listener: TcpListener,
    sources: Sources,
    limits: EndpointLimits,
) -> io::Result<()> {
    let slots = Rc::new(RefCell::new(Slots::default()));
    let counters = sources.endpoint.clone();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        bump(&counters.accepted);
        if !make_room(&slots, &counters, limits.max_connections) {
            bump(&counters.refused);
            continue;
        }
        let id = {
            let mut s = slots.borrow_mut();
            let id = s.next;
            s.next += 1;
            s.open.insert(
                id,
                Slot {
                    reading: true,
                    abort: None,
                },
            );
            id
        };
        counters.open.set(slots.borrow().open.len() as u64);
        let guard = SlotGuard {
            slots: slots.clone(),
            counters: counters.clone(),
            id,
        };
        let sources = sources.clone();
        let task = tokio::task::spawn_local(async move {
            let _ = answer(stream, &sources, &guard, limits).await;
            drop(guard);
        });
        if let Some(slot) = slots.borrow_mut().open.get_mut(&id) {
            slot.abort = Some(task.abort_handle());
        }
        // Let the new connection read what it has already sent before the next accept: a
        // burst of connections waiting in the backlog must not shed a scraper whose request
        // is already there just because they were accepted before it was read.
        tokio::task::yield_now().await;
    }
}

/// Frees a slot if the table is full, by aborting the oldest connection still reading;
/// whether there is room now.
fn make_room(slots: &RefCell<Slots>, counters: &EndpointCounters, max: usize) -> bool {
    let victim = {
        let mut s = slots.borrow_mut();
        if s.open.len() < max {
            return true;
        }
        let Some(id) = s.open.iter().find(|(_, v)| v.reading).map(|(id, _)| *id) else {
            return false;
        };
        s.open.remove(&id)
    };
    // The borrow is released: the aborted task's guard borrows the table when it drops.
    if let Some(abort) = victim.and_then(|v| v.abort) {
        abort.abort();
    }
    bump(&counters.shed);
    counters.open.set(slots.borrow().open.len() as u64);
    true
}

/// Why a request was not read.
enum Unread {
    TimedOut,
    TooLarge,
    Closed,
}

/// Reads one request head (up to the blank line) within the limits.
async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    limits: EndpointLimits,
) -> Result<Vec<u8>, Unread> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(limits.request_timeout, async {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            if request.len() > limits.max_request_bytes {
                return Err(Unread::TooLarge);
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return Err(Unread::Closed),
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        Ok(())
    })
    .await;
    match read {
        Err(_) => Err(Unread::TimedOut),
        Ok(Err(why)) => Err(why),
        Ok(Ok(())) => Ok(request),
    }
}

/// Reads one request and answers it.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    sources: &Sources,
    guard: &SlotGuard,
    limits: EndpointLimits,
) -> io::Result<()> {
    let counters = &sources.endpoint;
    let (status, body) = match read_request(&mut stream, limits).await {
        Err(Unread::TimedOut) => {
            bump(&counters.timeouts);
            return Ok(());
        }
        Err(Unread::Closed) => return Ok(()),
        Err(Unread::TooLarge) => {
            bump(&counters.too_large);
            guard.answering();
            let mut body = String::new();
            let _ = writeln!(
                body,
                "request longer than {} bytes",
                limits.max_request_bytes
            );
            ("431 Request Header Fields Too Large", body)
        }
        Ok(request) => {
            guard.answering();
            route(&request, sources).await
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let write = tokio::time::timeout(limits.write_timeout, async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    match write {
        Err(_) => bump(&counters.timeouts),
        Ok(result) => {
            result?;
            bump(&counters.answered);
        }
    }
    Ok(())
}

/// The status and body for a request head.
async fn route(request: &[u8], sources: &Sources) -> (&'static str, String) {
    let line = request.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics" | "/") => {
            super::workers::refresh(sources.relays.iter().flat_map(|(_, s)| s)).await;
            ("200 OK", render(sources))
        }
        ("GET", _) => ("404 Not Found", "not found: try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "only GET\n".to_owned()),
    }
}

#[cfg(test)]
mod tests;
