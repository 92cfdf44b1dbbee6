//! Idempotency keys (the event's optional `id`): an event whose key was seen recently in the same realm
//! is not published again, and its sender gets the first publication's id. This makes retries safe: an
//! emitter resending after a lost JSON-RPC answer, or RabbitMQ redelivering after a gateway crash.
//! Memory is bounded: keys are kept for [`KEY_TTL`] and at most [`KEY_CAPACITY`] of them (the oldest go
//! first), so deduplication is best effort beyond those bounds.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::wamp::Id;

/// How long an idempotency key is remembered.
pub const KEY_TTL: Duration = Duration::from_secs(600);
/// Most keys remembered at once.
pub const KEY_CAPACITY: usize = 100_000;

/// Recently seen `(realm, id)` keys and their publication ids.
#[derive(Debug)]
pub struct RecentKeys {
    ids: HashMap<(String, String), Id>,
    order: VecDeque<(Instant, (String, String))>,
    ttl: Duration,
    capacity: usize,
}

impl Default for RecentKeys {
    fn default() -> Self {
        Self::new(KEY_TTL, KEY_CAPACITY)
    }
}

impl RecentKeys {
    /// Remembers keys for `ttl`, at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        RecentKeys {
            ids: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// The publication id already given to `key` in `realm`, if it was seen within the TTL.
    pub fn get(&mut self, realm: &str, key: &str, now: Instant) -> Option<Id> {
        self.expire(now);
        self.ids.get(&(realm.to_string(), key.to_string())).copied()
    }

    /// Records that `key` in `realm` was published as `publication`.
    pub fn insert(&mut self, realm: &str, key: &str, publication: Id, now: Instant) {
        self.expire(now);
        while self.ids.len() >= self.capacity {
            match self.order.pop_front() {
                Some((_, oldest)) => {
                    self.ids.remove(&oldest);
                }
                None => break,
            }
        }
        let entry = (realm.to_string(), key.to_string());
        if self.ids.insert(entry.clone(), publication).is_none() {
            self.order.push_back((now, entry));
        }
    }

    /// Forgets `key` in `realm` if it still stands for `publication` (that event was not accepted after
    /// all, so a retry must be published).
    pub fn forget(&mut self, realm: &str, key: &str, publication: Id) {
        let entry = (realm.to_string(), key.to_string());
        if self.ids.get(&entry) == Some(&publication) {
            self.ids.remove(&entry);
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((seen, _)) = self.order.front() {
            if now.duration_since(*seen) < self.ttl {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.ids.remove(&key);
            }
        }
    }

    /// Number of remembered keys.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_maps_to_its_first_publication_per_realm() {
        let mut keys = RecentKeys::default();
        let now = Instant::now();
        assert_eq!(keys.get("realm1", "k", now), None);
        keys.insert("realm1", "k", 7, now);
        assert_eq!(keys.get("realm1", "k", now), Some(7));
        assert_eq!(keys.get("realm2", "k", now), None);
    }

    #[test]
    fn keys_expire_and_the_oldest_make_room() {
        let mut keys = RecentKeys::new(Duration::from_secs(10), 2);
        let start = Instant::now();
        keys.insert("r", "a", 1, start);
        keys.insert("r", "b", 2, start + Duration::from_secs(5));
        keys.insert("r", "c", 3, start + Duration::from_secs(6));
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys.get("r", "a", start + Duration::from_secs(6)),
            None,
            "evicted"
        );
        assert_eq!(keys.get("r", "b", start + Duration::from_secs(14)), Some(2));
        assert_eq!(
            keys.get("r", "b", start + Duration::from_secs(15)),
            None,
            "expired"
        );
        assert_eq!(keys.len(), 1);
    }
}
