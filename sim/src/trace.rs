//! The event trace: one JSON object per line, one line per state change, message or verdict,
//! stamped with simulated time. The same seed gives the same trace, byte for byte.

use std::cell::RefCell;
use std::rc::Rc;

use cloudproxy_core::time::Instant;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A shared, append-only trace.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    lines: Rc<RefCell<Vec<String>>>,
}

/// The most lines one run keeps (a bound against runaway loops); later lines are counted only.
pub const MAX_TRACE_LINES: usize = 1_000_000;

impl Trace {
    /// Records an event of `node` at `at`; `fields` is a JSON object of details.
    pub fn record(&self, at: Instant, node: &str, event: &str, fields: Value) {
        let mut lines = self.lines.borrow_mut();
        if lines.len() >= MAX_TRACE_LINES {
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
        lines.push(line);
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
