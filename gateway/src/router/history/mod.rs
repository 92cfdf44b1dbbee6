//! Stored events of a realm: the recent history of the topics `[[realms.history]]` names (for recovery,
//! `wamp.subscription.get_events`) and each topic's retained event (`retain: true`). One store per realm,
//! bounded by `[gateway] history_max_bytes`: past it the oldest stored events are evicted first. Every
//! eviction is remembered per topic, so a recovery that would skip an evicted event is refused as a gap
//! instead of answered with a partial list.

mod evict;
mod query;
mod retained;
mod rules;
#[cfg(test)]
mod tests;
mod views;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub(crate) use query::{Gap, Query};
pub(crate) use rules::Rules;
pub(crate) use views::{RowsQuery, ViewError, Views, MODEL_PREFIX};

use crate::wamp::{Id, Payload};
use retained::Retained;
use rules::Keep;

/// One stored event: what `get_events` answers with and `get_retained` delivers.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    /// Realm-wide order of storing: publication ids are random, this is what "after" means.
    pub seq: u64,
    /// The publication id.
    pub id: Id,
    /// The concrete topic.
    pub topic: Arc<str>,
    /// Arguments as published.
    pub payload: Payload,
    /// When it was published (the `timestamp` of `get_events`).
    pub published: SystemTime,
    /// When it was stored, for `ttl_s`.
    stored: Instant,
    /// What it counts against `history_max_bytes`.
    bytes: usize,
}

/// Bytes an event costs beyond its payload and topic: the event's own fields, its slots in the topic's
/// queue, in the realm-wide order and in the publication index, and the allocator's share. Measured:
/// 653 bytes of resident memory per stored 200-byte event (BENCHMARKS.md, "Live data"), of which the
/// payload and topic are about 180.
const EVENT_OVERHEAD: usize = 480;

/// Bytes a topic's log costs when empty (its map entry and bookkeeping).
const TOPIC_OVERHEAD: usize = 96;

/// The stored events of one topic, oldest first.
#[derive(Debug)]
struct TopicLog {
    events: VecDeque<Arc<StoredEvent>>,
    keep: Keep,
    /// `seq` of the newest event evicted from this topic (0: none): recovering from any earlier position
    /// would skip it.
    evicted_upto: u64,
}

/// A realm's stored events.
#[derive(Debug)]
pub(crate) struct Store {
    rules: Rules,
    max_bytes: usize,
    bytes: usize,
    next_seq: u64,
    topics: HashMap<Arc<str>, TopicLog>,
    /// Every stored history event's position, by publication id.
    index: HashMap<Id, (u64, Arc<str>)>,
    /// History events in storing order (with entries left behind by per-topic eviction, skipped and
    /// compacted away), for evicting the oldest first.
    order: VecDeque<(u64, Arc<str>)>,
    /// The newest `evicted_upto` of topic logs dropped altogether (when memory ran short): a recovery
    /// from before it may have missed their events.
    forgotten_upto: u64,
    retained: Retained,
    views: Views,
}

/// What storing one event did, for `/metrics` and logs (by the caller, outside the lock).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Evicted {
    /// Events evicted because memory (`history_max_bytes`) ran short.
    pub for_memory: usize,
    /// Why a model view became untrustworthy with this event (a bound passed, a malformed event).
    pub view_fault: Option<String>,
    /// The event alone was larger than `history_max_bytes`: not stored.
    pub too_large: bool,
}

impl Store {
    /// An empty store with the realm's history entries, model views and the memory bound.
    pub(crate) fn new(rules: Rules, views: Views, max_bytes: usize) -> Self {
        Store {
            rules,
            max_bytes,
            bytes: 0,
            next_seq: 1,
            topics: HashMap::new(),
            index: HashMap::new(),
            order: VecDeque::new(),
            forgotten_upto: 0,
            retained: Retained::default(),
            views,
        }
    }

    /// The realm's model views.
    pub(crate) fn views(&self) -> &Views {
        &self.views
    }

    /// Bytes counted against `history_max_bytes` now.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Stores an event: in its topic's history when an entry names the topic, as the topic's retained
    /// event when `retain` is set, and into the model view of its topic. Returns what had to be evicted.
    #[cfg(test)]
    pub(crate) fn record(
        &mut self,
        id: Id,
        topic: &str,
        payload: &Payload,
        retain: bool,
        now: Instant,
    ) -> Evicted {
        self.record_at(id, topic, payload, retain, SystemTime::now(), now)
    }

    /// [`Store::record`] of an event published at `published` (earlier than now when it was read
    /// from the cluster's log): its timestamp, and its `ttl_s` counts from then, as on its origin.
    pub(crate) fn record_at(
        &mut self,
        id: Id,
        topic: &str,
        payload: &Payload,
        retain: bool,
        published: SystemTime,
        now: Instant,
    ) -> Evicted {
        let age = SystemTime::now()
            .duration_since(published)
            .unwrap_or_default();
        let stored = now.checked_sub(age).unwrap_or(now);
        let view_fault = self.views.apply(topic, id, payload);
        let keep = self.rules.keep(topic);
        if keep.is_none() && !retain {
            return Evicted {
                view_fault,
                ..Evicted::default()
            };
        }
        let topic: Arc<str> = match self.topics.get_key_value(topic) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(topic),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let event = Arc::new(StoredEvent {
            seq,
            id,
            topic: Arc::clone(&topic),
            payload: payload.clone(),
            published,
            stored,
            bytes: payload.json_len() + topic.len() + EVENT_OVERHEAD,
        });
        if event.bytes > self.max_bytes {
            // Too large to store at all: never evict everything else for it. It counts as evicted, so a
            // recovery from before it answers a gap, and a retained event it replaces is gone too.
            if retain {
                if let Some(replaced) = self.retained.remove(&topic) {
                    self.bytes -= replaced.bytes;
                }
            }
            if keep.is_some() {
                self.mark_evicted(&topic, seq);
            }
            return Evicted {
                too_large: true,
                view_fault,
                ..Evicted::default()
            };
        }
        if retain {
            self.bytes += event.bytes;
            if let Some(replaced) = self.retained.set(Arc::clone(&event)) {
                self.bytes -= replaced.bytes;
            }
        }
        if let Some(keep) = keep {
            self.append(topic, event, keep, now);
        }
        self.expire_oldest(now);
        Evicted {
            view_fault,
            ..self.fit()
        }
    }

    fn append(&mut self, topic: Arc<str>, event: Arc<StoredEvent>, keep: Keep, now: Instant) {
        let log = self.topics.entry(Arc::clone(&topic)).or_insert_with(|| {
            self.bytes += topic.len() + TOPIC_OVERHEAD;
            TopicLog {
                events: VecDeque::new(),
                keep,
                evicted_upto: 0,
            }
        });
        self.bytes += event.bytes;
        self.index.insert(event.id, (event.seq, Arc::clone(&topic)));
        self.order.push_back((event.seq, topic));
        log.events.push_back(event);
        while log.events.len() > log.keep.limit {
            self.bytes -= log.evict_front(&mut self.index);
        }
        log.expire(now, &mut self.index, &mut self.bytes);
        self.compact_order();
    }

    /// The position a page rendered now recovers from (JSON-RPC `last_publication`): the newest stored
    /// event of `topic`, else the newest stored event of the realm (a position is a point in the realm's
    /// order: a recovery from it answers the topic's later events, or a gap if any was evicted). `None`
    /// when `topic` keeps no history or nothing is stored.
    pub(crate) fn last_publication(&mut self, topic: &str, now: Instant) -> Option<Id> {
        self.rules.keep(topic)?;
        if let Some(log) = self.topics.get_mut(topic) {
            log.expire(now, &mut self.index, &mut self.bytes);
            if let Some(newest) = log.events.back() {
                return Some(newest.id);
            }
            self.drop_if_empty(topic);
        }
        self.newest_stored()
    }
}

impl TopicLog {
    fn front_expired(&self, now: Instant) -> bool {
        self.events
            .front()
            .is_some_and(|event| now.saturating_duration_since(event.stored) > self.keep.ttl)
    }

    /// Evicts the oldest event, remembering it was evicted; returns the bytes freed.
    fn evict_front(&mut self, index: &mut HashMap<Id, (u64, Arc<str>)>) -> usize {
        let Some(old) = self.events.pop_front() else {
            return 0;
        };
        self.evicted_upto = old.seq;
        index.remove(&old.id);
        old.bytes
    }

    fn expire(
        &mut self,
        now: Instant,
        index: &mut HashMap<Id, (u64, Arc<str>)>,
        bytes: &mut usize,
    ) {
        while self.front_expired(now) {
            *bytes -= self.evict_front(index);
        }
    }
}
