//! WAMP ids: random ids in the global scope (sessions, publications) and sequential ids in the router and
//! session scopes, all within 1..=2^53 as the spec requires.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use super::message::{Id, MAX_ID};

/// A random id in 1..=2^53, for session and publication ids that must not be guessable or reused.
pub fn random_id() -> Id {
    rand::rng().random_range(1..=MAX_ID)
}

/// Sequential ids (1, 2, 3, ... wrapping back to 1 after 2^53) for the router and session scopes.
#[derive(Debug, Default)]
pub struct IdSequence(AtomicU64);

impl IdSequence {
    /// The next id of the sequence.
    pub fn next(&self) -> Id {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        n % MAX_ID + 1
    }
}
