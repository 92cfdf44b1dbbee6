//! Giving memory back: per-topic expiry, the realm-wide bound (`history_max_bytes`, oldest first), and
//! forgetting topic logs as soon as they are empty, so that topics that come and go cannot fill the
//! bound with bookkeeping. What is evicted is remembered (per topic, or realm-wide once its log is gone)
//! so that a recovery from before it answers a gap.

use std::time::Instant;

use super::{Evicted, Store, TOPIC_OVERHEAD};
use crate::wamp::Id;

impl Store {
    /// Evicts the oldest stored events until the store fits `max_bytes`.
    pub(super) fn fit(&mut self) -> Evicted {
        let mut evicted = Evicted::default();
        while self.bytes > self.max_bytes {
            if let Some((seq, topic)) = self.order.pop_front() {
                let Some(log) = self.topics.get_mut(&topic) else {
                    continue;
                };
                if log.events.front().is_some_and(|e| e.seq == seq) {
                    self.bytes -= log.evict_front(&mut self.index);
                    evicted.for_memory += 1;
                    self.drop_if_empty(&topic);
                }
                continue;
            }
            let Some(old) = self.retained.evict_oldest() else {
                break;
            };
            self.bytes -= old.bytes;
            evicted.for_memory += 1;
        }
        evicted
    }

    /// Gives back the memory of expired events on topics nobody publishes to any more, a few at a time:
    /// every store looks at the realm's oldest stored events (reads skip expired events anyway).
    pub(super) fn expire_oldest(&mut self, now: Instant) {
        for _ in 0..4 {
            let Some((seq, topic)) = self.order.front().cloned() else {
                return;
            };
            if let Some(log) = self.topics.get_mut(&topic) {
                if log.events.front().is_some_and(|oldest| oldest.seq == seq) {
                    if !log.front_expired(now) {
                        return;
                    }
                    self.bytes -= log.evict_front(&mut self.index);
                    self.drop_if_empty(&topic);
                }
            }
            self.order.pop_front();
        }
    }

    /// Drops events older than their topic's `ttl_s` (before answering a recovery).
    pub(crate) fn expire(&mut self, now: Instant) {
        let mut emptied = Vec::new();
        for (topic, log) in &mut self.topics {
            log.expire(now, &mut self.index, &mut self.bytes);
            if log.events.is_empty() {
                emptied.push(topic.clone());
            }
        }
        for topic in emptied {
            self.drop_if_empty(&topic);
        }
    }

    /// Forgets `topic`'s log once it holds no event, keeping its eviction mark realm-wide.
    pub(super) fn drop_if_empty(&mut self, topic: &str) {
        if self
            .topics
            .get(topic)
            .is_some_and(|log| log.events.is_empty())
        {
            if let Some((name, log)) = self.topics.remove_entry(topic) {
                self.forgotten_upto = self.forgotten_upto.max(log.evicted_upto);
                self.bytes -= name.len() + TOPIC_OVERHEAD;
            }
        }
    }

    /// Remembers that event `seq` of `topic` is not in history (it was too large to store).
    pub(super) fn mark_evicted(&mut self, topic: &str, seq: u64) {
        match self.topics.get_mut(topic) {
            Some(log) => log.evicted_upto = seq,
            None => self.forgotten_upto = self.forgotten_upto.max(seq),
        }
    }

    /// Entries of `order` left behind by per-topic eviction are skipped when they reach the front;
    /// compact them away before they outnumber the live ones. A topic's log only loses events at its
    /// front, so an entry is live while its seq is not older than the log's oldest event.
    pub(super) fn compact_order(&mut self) {
        if self.order.len() > 2 * self.index.len() + 64 {
            let topics = &self.topics;
            self.order.retain(|(seq, topic)| {
                topics
                    .get(topic)
                    .and_then(|log| log.events.front())
                    .is_some_and(|oldest| oldest.seq <= *seq)
            });
        }
    }

    /// The newest event still in history, whatever its topic.
    pub(super) fn newest_stored(&self) -> Option<Id> {
        self.order.iter().rev().find_map(|(seq, topic)| {
            let log = self.topics.get(topic)?;
            let at = log.events.partition_point(|event| event.seq < *seq);
            log.events
                .get(at)
                .filter(|event| event.seq == *seq)
                .map(|event| event.id)
        })
    }
}
