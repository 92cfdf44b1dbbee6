//! Reading stored events back: recovery (`get_events`), retained events and their gaps.

use std::sync::Arc;
use std::time::Instant;

use switchboard_config::MatchPolicy;

use super::{Store, StoredEvent};
use crate::wamp::Id;

/// A request for a subscription's stored events.
#[derive(Debug, Clone)]
pub(crate) struct Query<'a> {
    /// The subscription's topic or pattern.
    pub uri: &'a str,
    /// How `uri` matches.
    pub policy: MatchPolicy,
    /// Only events published after this one; `None`: the newest events.
    pub after: Option<Id>,
    /// Most events answered.
    pub limit: usize,
    /// Newest first instead of oldest first.
    pub reverse: bool,
}

/// Why stored events cannot answer a recovery completely (never answered with a partial list).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Gap {
    /// Some topic the subscription receives keeps no history.
    #[error("`{0}` reaches topics that keep no history (see [[realms.history]])")]
    NoHistory(String),
    /// The position is not (or no longer) in history.
    #[error("publication {0} is not in history (unknown, expired or evicted)")]
    Unknown(Id),
    /// An event after the position was evicted.
    #[error("events after publication {0} were evicted from history")]
    Evicted(Id),
}

impl Store {
    /// The stored events a subscription receives, per `query`, filtered by `admit` (the subscriber's
    /// role and filter) before `limit` applies; a [`Gap`] when they cannot be complete.
    pub(crate) fn events(
        &mut self,
        query: &Query<'_>,
        now: Instant,
        mut admit: impl FnMut(&StoredEvent) -> bool,
    ) -> Result<Vec<Arc<StoredEvent>>, Gap> {
        if !self.rules.cover(query.uri, query.policy) {
            return Err(Gap::NoHistory(query.uri.to_string()));
        }
        self.expire(now);
        let after = match query.after {
            None => 0,
            Some(id) => self
                .index
                .get(&id)
                .map(|(seq, _)| *seq)
                .ok_or(Gap::Unknown(id))?,
        };
        // Logs dropped when memory ran short took their eviction marks with them: conservatively, any
        // position before their last eviction is a gap.
        if query.after.is_some() && self.forgotten_upto > after {
            return Err(Gap::Evicted(query.after.unwrap_or_default()));
        }
        let mut events = Vec::new();
        let mut reached = |log: &super::TopicLog| -> Result<(), Gap> {
            if query.after.is_some() && log.evicted_upto > after {
                return Err(Gap::Evicted(query.after.unwrap_or_default()));
            }
            let newer = log.events.partition_point(|event| event.seq <= after);
            events.extend(log.events.range(newer..).filter(|e| admit(e)).cloned());
            Ok(())
        };
        match query.policy {
            MatchPolicy::Exact => {
                if let Some(log) = self.topics.get(query.uri) {
                    reached(log)?;
                }
            }
            policy => {
                for (topic, log) in &self.topics {
                    if policy.matches(query.uri, topic) {
                        reached(log)?;
                    }
                }
                events.sort_unstable_by_key(|event| event.seq);
            }
        }
        if query.reverse {
            events.reverse();
            events.truncate(query.limit);
        } else if query.after.is_some() {
            events.truncate(query.limit);
        } else {
            let skip = events.len().saturating_sub(query.limit);
            events.drain(..skip);
        }
        Ok(events)
    }

    /// The retained events of the topics a subscription to `uri` under `policy` receives, oldest first.
    pub(crate) fn retained(&self, uri: &str, policy: MatchPolicy) -> Vec<Arc<StoredEvent>> {
        self.retained.matching(uri, policy)
    }
}
