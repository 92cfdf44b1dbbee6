//! Rate-limited warnings for rejected input. A peer that sends garbage in a loop must not be able to fill
//! the operator's disk through our logs: each (kind, source) pair logs at most one line per
//! [`INTERVAL`], and the next line it logs says how many were suppressed in between. Counting what was
//! refused is the job of `/metrics`; this only keeps the log readable.
//!
//! ```
//! use switchboard_gateway::throttle;
//! if let Some(suppressed) = throttle::allow("zmq_refused", "127.0.0.1:5000") {
//!     tracing::warn!(suppressed, "ZeroMQ message refused: bad signature");
//! }
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// At most one warning per kind and source in this interval.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Most (kind, source) pairs remembered; past it the table is cleared (a flood of distinct sources then
/// logs one line each per interval at worst, and memory stays bounded).
const MAX_SOURCES: usize = 4096;

#[derive(Debug)]
struct Window {
    started: Instant,
    suppressed: u64,
}

type Table = HashMap<(&'static str, String), Window>;

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default)
}

/// May a warning of `kind` about `source` (a peer address, a session id, a transport) be logged now?
/// `Some(n)` when it may, `n` being how many were suppressed since the last one logged; `None` when it
/// must be suppressed (it is counted for the next line).
pub fn allow(kind: &'static str, source: &str) -> Option<u64> {
    allow_at(table(), kind, source, Instant::now())
}

fn allow_at(table: &Mutex<Table>, kind: &'static str, source: &str, now: Instant) -> Option<u64> {
    let mut table = table.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(window) = table.get_mut(&(kind, source.to_string())) {
        if now.duration_since(window.started) < INTERVAL {
            window.suppressed += 1;
            return None;
        }
        let suppressed = window.suppressed;
        *window = Window {
            started: now,
            suppressed: 0,
        };
        return Some(suppressed);
    }
    if table.len() >= MAX_SOURCES {
        table.clear();
    }
    table.insert(
        (kind, source.to_string()),
        Window {
            started: now,
            suppressed: 0,
        },
    );
    Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_source_per_interval_then_the_count() {
        let table = Mutex::default();
        let t0 = Instant::now();
        assert_eq!(allow_at(&table, "k", "a", t0), Some(0));
        for _ in 0..5 {
            assert_eq!(
                allow_at(&table, "k", "a", t0 + Duration::from_secs(1)),
                None
            );
        }
        assert_eq!(allow_at(&table, "k", "b", t0), Some(0), "another source");
        assert_eq!(allow_at(&table, "other", "a", t0), Some(0), "another kind");
        assert_eq!(allow_at(&table, "k", "a", t0 + INTERVAL), Some(5));
        assert_eq!(allow_at(&table, "k", "a", t0 + INTERVAL), None);
    }

    #[test]
    fn memory_is_bounded_by_the_number_of_sources() {
        let table = Mutex::default();
        let t0 = Instant::now();
        for i in 0..(3 * MAX_SOURCES) {
            assert_eq!(allow_at(&table, "k", &i.to_string(), t0), Some(0));
        }
        assert!(table.lock().unwrap().len() <= MAX_SOURCES);
    }
}
