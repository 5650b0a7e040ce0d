//! The event trace: one JSON object per line, one line per state change, message or verdict
//! (a typed [`TraceEvent`]), stamped with simulated time. The same seed gives the same trace,
//! byte for byte.

mod event;

pub use event::{session_hex, Level, TraceEvent};

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use cloudproxy_core::time::Instant;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where a tapped trace sends its lines.
type TapFn = Rc<dyn Fn(&Line<'_>)>;

/// One line as a tap sees it: the event itself (its level, its name) and its text.
#[derive(Debug)]
pub struct Line<'a> {
    /// The node that recorded it.
    pub node: &'a str,
    /// The event.
    pub event: &'a TraceEvent,
    /// The line's JSON text.
    pub text: &'a str,
}

/// A shared, append-only trace, bounded: past its cap ([`MAX_TRACE_LINES`] unless made with
/// [`Trace::with_cap`]) lines are counted ([`Trace::dropped`]), not kept.
#[derive(Clone)]
pub struct Trace {
    lines: Rc<RefCell<Vec<String>>>,
    /// Lines recorded past the cap: counted, not kept.
    dropped: Rc<Cell<u64>>,
    /// The most lines kept.
    cap: usize,
    /// When set, every line goes here instead of being kept (long-running real-socket nodes,
    /// whose trace is a log).
    tap: Option<TapFn>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace::with_cap(MAX_TRACE_LINES)
    }
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("lines", &self.lines.borrow().len())
            .field("dropped", &self.dropped.get())
            .field("cap", &self.cap)
            .field("tap", &self.tap.is_some())
            .finish()
    }
}

/// The most lines one run keeps (a bound against runaway loops); later lines are counted only
/// ([`Trace::dropped`]), and every report says how many.
pub const MAX_TRACE_LINES: usize = 1_000_000;

impl Trace {
    /// An empty trace that keeps at most `cap` lines and counts the rest.
    pub fn with_cap(cap: usize) -> Self {
        Trace {
            lines: Rc::default(),
            dropped: Rc::default(),
            cap,
            tap: None,
        }
    }

    /// Records `event` of `node` at `at`.
    pub fn record(&self, at: Instant, node: &str, event: &TraceEvent) {
        let mut lines = self.lines.borrow_mut();
        if lines.len() >= self.cap && self.tap.is_none() {
            self.dropped.set(self.dropped.get().saturating_add(1));
            return;
        }
        let mut line = format!(
            "{{\"t_us\":{},\"node\":{},\"event\":{}",
            at.as_micros(),
            Value::from(node),
            Value::from(event.name())
        );
        for (k, v) in event.fields() {
            line.push_str(&format!(",{}:{v}", Value::from(k)));
        }
        line.push('}');
        match &self.tap {
            Some(tap) => tap(&Line {
                node,
                event,
                text: &line,
            }),
            None => lines.push(line),
        }
    }

    /// A trace that keeps nothing and hands every line to `tap` as it is recorded.
    pub fn tap(tap: impl Fn(&Line<'_>) + 'static) -> Self {
        Trace {
            lines: Rc::default(),
            dropped: Rc::default(),
            cap: 0,
            tap: Some(Rc::new(tap)),
        }
    }

    /// How many lines were recorded past the cap and so not kept (0 for a complete trace).
    /// [`Trace::hash`] covers the kept lines only: a trace that dropped lines is not evidence
    /// of what happened after its cap.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// The most lines this trace keeps.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }

    /// How many lines were kept.
    pub fn len(&self) -> usize {
        self.lines.borrow().len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.lines.borrow().is_empty()
    }

    /// SHA-256 of the trace text, hex, first 16 characters.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        for line in self.lines.borrow().iter() {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        hasher
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(trace: &Trace, n: u64) {
        for i in 0..n {
            let event = TraceEvent::Resolve {
                name: format!("host-{i}"),
                ok: true,
            };
            trace.record(Instant::from_micros(i), "node", &event);
        }
    }

    #[test]
    fn past_the_cap_lines_are_counted_not_kept() {
        let trace = Trace::with_cap(3);
        record(&trace, 5);
        assert_eq!(trace.len(), 3);
        assert_eq!(trace.dropped(), 2);
        assert!(
            trace.lines()[2].contains("\"name\":\"host-2\""),
            "{:?}",
            trace.lines()
        );
        let whole = Trace::with_cap(10);
        record(&whole, 5);
        assert_eq!((whole.len(), whole.dropped()), (5, 0));
    }

    #[test]
    fn the_default_cap_is_the_documented_one_and_a_tap_keeps_nothing() {
        assert_eq!(Trace::default().cap(), MAX_TRACE_LINES);
        let seen = Rc::new(Cell::new(0));
        let counter = seen.clone();
        let tap = Trace::tap(move |_| counter.set(counter.get() + 1));
        record(&tap, 4);
        assert_eq!((tap.len(), tap.dropped(), seen.get()), (0, 0, 4));
    }
}
