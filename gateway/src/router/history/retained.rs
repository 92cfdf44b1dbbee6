//! Retained events (`retain: true`): the last such event of each topic, delivered to a new subscriber that
//! asks with `get_retained: true`.

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_config::MatchPolicy;

use super::StoredEvent;

/// The retained event of each topic.
#[derive(Debug, Default)]
pub(super) struct Retained {
    by_topic: HashMap<Arc<str>, Arc<StoredEvent>>,
}

impl Retained {
    /// Makes `event` its topic's retained event; returns the one it replaces.
    pub(super) fn set(&mut self, event: Arc<StoredEvent>) -> Option<Arc<StoredEvent>> {
        self.by_topic.insert(Arc::clone(&event.topic), event)
    }

    /// Removes `topic`'s retained event (replaced by one too large to keep).
    pub(super) fn remove(&mut self, topic: &str) -> Option<Arc<StoredEvent>> {
        self.by_topic.remove(topic)
    }

    /// Removes the oldest retained event (when memory runs short and no history is left to evict).
    pub(super) fn evict_oldest(&mut self) -> Option<Arc<StoredEvent>> {
        let oldest = self
            .by_topic
            .values()
            .min_by_key(|event| event.seq)
            .map(|event| Arc::clone(&event.topic))?;
        self.by_topic.remove(&oldest)
    }

    /// The retained events of the topics a subscription to `uri` under `policy` receives, oldest first.
    pub(super) fn matching(&self, uri: &str, policy: MatchPolicy) -> Vec<Arc<StoredEvent>> {
        let mut events: Vec<Arc<StoredEvent>> = match policy {
            MatchPolicy::Exact => self.by_topic.get(uri).cloned().into_iter().collect(),
            _ => self
                .by_topic
                .values()
                .filter(|event| policy.matches(uri, &event.topic))
                .cloned()
                .collect(),
        };
        events.sort_by_key(|event| event.seq);
        events
    }
}
