//! What the subscription meta API (`wamp.subscription.list`, `lookup`, `match`, `get`,
//! `list_subscribers`, `count_subscribers`) reads of the broker, and whether a meta event would reach
//! anybody at all (so that a realm without meta subscribers builds no meta events).

use serde_json::{json, Value};
use switchboard_config::MatchPolicy;

use super::subscription::Key;
use super::Broker;
use crate::wamp::Id;

/// Subscription ids by match policy, as `wamp.subscription.list` answers them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Listed {
    pub exact: Vec<Id>,
    pub prefix: Vec<Id>,
    pub wildcard: Vec<Id>,
}

/// A session taken off a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Removed {
    /// It was the last subscriber: the subscription is gone.
    pub deleted: bool,
    /// The subscription's topic is under `wamp.` (no meta events are published about those).
    pub meta: bool,
}

/// Is `topic` under `wamp.`? Subscriptions to the router's own topics raise no subscription meta events
/// (as in Crossbar), so that watching the meta topics does not itself make meta events.
pub(crate) fn is_meta(topic: &str) -> bool {
    topic.starts_with("wamp.")
}

impl Broker {
    /// Would an event on `topic` find at least one subscription (ignoring filters and permissions)?
    pub(crate) fn reaches(&self, topic: &str) -> bool {
        self.exact.contains_key(topic)
            || self.patterns.iter().any(|id| {
                self.subscriptions
                    .get(id)
                    .is_some_and(|s| s.wanted.policy.matches(&s.wanted.topic, topic))
            })
    }

    /// Every subscription's id, by match policy, each list sorted.
    pub(crate) fn list(&self) -> Listed {
        let mut listed = Listed::default();
        for (id, subscription) in &self.subscriptions {
            match subscription.wanted.policy {
                MatchPolicy::Exact => listed.exact.push(*id),
                MatchPolicy::Prefix => listed.prefix.push(*id),
                MatchPolicy::Wildcard => listed.wildcard.push(*id),
            }
        }
        listed.exact.sort_unstable();
        listed.prefix.sort_unstable();
        listed.wildcard.sort_unstable();
        listed
    }

    /// The subscription to `topic` with `policy`: the plain one (no filter, no conflation) if there is
    /// one, else the oldest of those that differ only in filter or rate.
    pub(crate) fn lookup(&self, topic: &str, policy: MatchPolicy) -> Option<Id> {
        let plain = Key {
            topic: topic.to_string(),
            policy,
            filter: None,
            rate_ms: 0,
        };
        self.by_key.get(&plain).copied().or_else(|| {
            self.subscriptions
                .iter()
                .filter(|(_, s)| s.wanted.policy == policy && s.wanted.topic == topic)
                .map(|(id, _)| *id)
                .min()
        })
    }

    /// Every subscription an event on `topic` would match (exact and patterns), sorted.
    pub(crate) fn matching(&self, topic: &str) -> Vec<Id> {
        let mut ids: Vec<Id> = self.exact.get(topic).cloned().unwrap_or_default();
        ids.extend(self.patterns.iter().copied().filter(|id| {
            self.subscriptions
                .get(id)
                .is_some_and(|s| s.wanted.policy.matches(&s.wanted.topic, topic))
        }));
        ids.sort_unstable();
        ids
    }

    /// `{id, created, uri, match}` of subscription `id`, as `wamp.subscription.get` and `on_create` give it.
    pub(crate) fn details(&self, id: Id) -> Option<Value> {
        self.subscriptions.get(&id).map(|s| {
            json!({
                "id": id,
                "created": humantime::format_rfc3339_millis(s.created).to_string(),
                "uri": s.wanted.topic,
                "match": s.wanted.policy.as_str(),
            })
        })
    }

    /// The sessions on subscription `id`, sorted; `None` when there is no such subscription.
    pub(crate) fn subscribers_of(&self, id: Id) -> Option<Vec<Id>> {
        self.subscriptions.get(&id).map(|s| {
            let mut ids: Vec<Id> = s.subscribers.iter().map(|s| s.peer.id).collect();
            ids.sort_unstable();
            ids
        })
    }
}
