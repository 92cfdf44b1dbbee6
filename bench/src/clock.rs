//! One monotonic clock for the whole process: publishers stamp events with it and subscribers in the same
//! process compare against it, so latency needs no clock synchronisation.

use std::sync::OnceLock;
use std::time::Instant;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Nanoseconds since the process-wide origin (fixed at the first call).
pub fn now_ns() -> u64 {
    u64::try_from(origin().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Fixes the origin now, so that later readings are small and comparable.
pub fn init() {
    let _ = origin();
}
