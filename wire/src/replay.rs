//! The verifier's memory of recent nonces. A nonce only needs remembering while a signature carrying it
//! could still pass the skew check (until its timestamp plus `max_skew_s`), so entries expire then, and
//! the number of entries is capped: memory stays bounded whatever the senders do.
//!
//! When the cap is reached under sustained load, the nonces that expire first are forgotten early and the
//! acceptance window shrinks with them: a message whose expiry is not later than that of a forgotten nonce
//! is refused as stale, because the cache can no longer tell whether it is a replay. Legitimate senders
//! sign just before sending, so they stay far inside the shrunken window; replay protection stays exact.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashSet};
use std::hash::BuildHasher;

use crate::signing::SignatureError;

/// Recent nonces, stored as 64-bit keyed hashes (16 bytes per entry plus the set's overhead, whatever the
/// nonce length). The hash key is random per process; a collision would only refuse one message.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    hasher: RandomState,
    seen: HashSet<u64>,
    /// (expiry in unix seconds, nonce hash), earliest expiry first.
    expiries: BinaryHeap<Reverse<(u64, u64)>>,
    capacity: usize,
    /// The latest expiry among nonces forgotten before their time; messages expiring at or before it are
    /// refused.
    floor: u64,
}

impl ReplayCache {
    /// A cache holding at most `capacity` nonces.
    pub(crate) fn new(capacity: usize) -> Self {
        ReplayCache {
            hasher: RandomState::new(),
            seen: HashSet::new(),
            expiries: BinaryHeap::new(),
            capacity: capacity.max(1),
            floor: 0,
        }
    }

    /// Remembers `nonce` until `expiry` (unix seconds); refuses it when already remembered, or when it
    /// expires no later than a nonce the cache had to forget early (see the module documentation).
    pub(crate) fn insert(
        &mut self,
        nonce: &str,
        expiry: u64,
        now: u64,
    ) -> Result<(), SignatureError> {
        while let Some(Reverse((when, hash))) = self.expiries.peek().copied() {
            if when >= now {
                break;
            }
            self.expiries.pop();
            self.seen.remove(&hash);
        }
        if expiry <= self.floor {
            return Err(SignatureError::Stale {
                expiry,
                floor: self.floor,
            });
        }
        let hash = self.hasher.hash_one(nonce);
        if self.seen.contains(&hash) {
            return Err(SignatureError::Replayed(nonce.to_string()));
        }
        while self.seen.len() >= self.capacity {
            let Some(Reverse((when, oldest))) = self.expiries.pop() else {
                break;
            };
            self.seen.remove(&oldest);
            self.floor = self.floor.max(when);
        }
        if expiry <= self.floor {
            return Err(SignatureError::Stale {
                expiry,
                floor: self.floor,
            });
        }
        self.seen.insert(hash);
        self.expiries.push(Reverse((expiry, hash)));
        Ok(())
    }

    /// Number of remembered nonces.
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_in_expiry_order_not_arrival_order() {
        let mut cache = ReplayCache::new(10);
        cache.insert("late", 200, 0).expect("new");
        cache.insert("early", 100, 0).expect("new");
        cache.insert("other", 300, 150).expect("new");
        assert_eq!(cache.len(), 2, "`early` expired at 150");
        assert!(
            cache.insert("late", 400, 150).is_err(),
            "`late` still remembered"
        );
        assert!(cache.insert("early", 400, 150).is_ok(), "`early` forgotten");
    }

    #[test]
    fn a_full_cache_forgets_the_oldest_and_refuses_what_it_can_no_longer_judge() {
        let mut cache = ReplayCache::new(2);
        cache.insert("a", 100, 0).expect("new");
        cache.insert("b", 101, 0).expect("new");
        cache
            .insert("c", 102, 0)
            .expect("new: `a` is forgotten early");
        assert_eq!(cache.len(), 2);
        assert!(
            matches!(
                cache.insert("a", 100, 0),
                Err(SignatureError::Stale { floor: 100, .. })
            ),
            "a replay of `a` is refused as stale, not accepted"
        );
        assert!(matches!(
            cache.insert("b", 101, 0),
            Err(SignatureError::Replayed(_))
        ));
        cache
            .insert("d", 103, 0)
            .expect("new: `b` is forgotten early");
        assert!(matches!(
            cache.insert("x", 101, 0),
            Err(SignatureError::Stale { .. })
        ));
        assert!(matches!(
            cache.insert("c", 102, 0),
            Err(SignatureError::Replayed(_))
        ));
    }

    #[test]
    fn a_nonce_is_remembered_through_its_expiry_second() {
        let mut cache = ReplayCache::new(10);
        cache.insert("n", 100, 0).expect("new");
        assert!(cache.insert("n", 200, 100).is_err());
        assert!(cache.insert("n", 200, 101).is_ok());
    }
}
