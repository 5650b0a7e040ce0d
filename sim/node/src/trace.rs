//! The event trace: one JSON object per line, one line per state change, message or verdict,
//! stamped with simulated time. The same seed gives the same trace, byte for byte.

use std::cell::RefCell;
use std::rc::Rc;

use cloudproxy_core::time::Instant;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where a tapped trace sends its lines.
type TapFn = Rc<dyn Fn(&str)>;

/// A shared, append-only trace.
#[derive(Clone, Default)]
pub struct Trace {
    lines: Rc<RefCell<Vec<String>>>,
    /// When set, every line goes here instead of being kept (long-running real-socket nodes,
    /// whose trace is a log).
    tap: Option<TapFn>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("lines", &self.lines.borrow().len())
            .field("tap", &self.tap.is_some())
            .finish()
    }
}

/// The most lines one run keeps (a bound against runaway loops); later lines are counted only.
pub const MAX_TRACE_LINES: usize = 1_000_000;

impl Trace {
    /// Records an event of `node` at `at`; `fields` is a JSON object of details.
    pub fn record(&self, at: Instant, node: &str, event: &str, fields: Value) {
        let mut lines = self.lines.borrow_mut();
        if lines.len() >= MAX_TRACE_LINES && self.tap.is_none() {
            return;
        }
        let mut line = format!(
            "{{\"t_us\":{},\"node\":{},\"event\":{}",
            at.as_micros(),
            Value::from(node),
            Value::from(event)
        );
        if let Value::Object(map) = fields {
            for (k, v) in map {
                line.push_str(&format!(",{}:{v}", Value::from(k)));
            }
        }
        line.push('}');
        match &self.tap {
            Some(tap) => tap(&line),
            None => lines.push(line),
        }
    }

    /// A trace that keeps nothing and hands every line to `tap` as it is recorded.
    pub fn tap(tap: impl Fn(&str) + 'static) -> Self {
        Trace {
            lines: Rc::default(),
            tap: Some(Rc::new(tap)),
        }
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }

    /// How many lines.
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
