//! What presence reads of the broker: who holds exact subscriptions to a topic, by authid. Presence keeps
//! no copy of it (a copy cost every subscribed session a few hundred bytes); it asks here when a
//! presence topic is watched or listed.

use std::collections::BTreeMap;

use switchboard_config::MatchPolicy;

use super::subscription::Subscriber;
use super::Broker;
use crate::wamp::Id;

impl Broker {
    /// The subscribers of every exact subscription to `topic` (a session once per subscription).
    fn exact_subscribers<'a>(&'a self, topic: &str) -> impl Iterator<Item = &'a Subscriber> + 'a {
        self.exact
            .get(topic)
            .into_iter()
            .flatten()
            .filter_map(|id| self.subscriptions.get(id))
            .flat_map(|subscription| subscription.subscribers.iter())
    }

    /// How many exact subscriptions to `topic` sessions of `authid` hold (a session with two filters on
    /// the topic counts twice): 1 right after its first, 0 after its last.
    pub(crate) fn exact_holds_of(&self, topic: &str, authid: &str) -> usize {
        self.exact_subscribers(topic)
            .filter(|s| s.peer.authid == authid)
            .count()
    }

    /// Who holds exact subscriptions to `topic`: authid -> how many distinct sessions.
    pub(crate) fn members(&self, topic: &str) -> BTreeMap<&str, usize> {
        let mut sessions: BTreeMap<&str, Vec<Id>> = BTreeMap::new();
        for subscriber in self.exact_subscribers(topic) {
            let ids = sessions.entry(subscriber.peer.authid.as_str()).or_default();
            if !ids.contains(&subscriber.peer.id) {
                ids.push(subscriber.peer.id);
            }
        }
        sessions
            .into_iter()
            .map(|(authid, ids)| (authid, ids.len()))
            .collect()
    }

    /// The topics `authid` holds exact subscriptions to, sorted.
    pub(crate) fn topics_of(&self, authid: &str) -> Vec<String> {
        let mut topics: Vec<String> = self
            .exact
            .keys()
            .filter(|topic| {
                self.exact_subscribers(topic)
                    .any(|s| s.peer.authid == authid)
            })
            .cloned()
            .collect();
        topics.sort_unstable();
        topics
    }

    /// The topic of subscription `id` when it is an exact one.
    pub(crate) fn exact_topic(&self, id: Id) -> Option<&str> {
        self.subscriptions
            .get(&id)
            .filter(|s| s.wanted.policy == MatchPolicy::Exact)
            .map(|s| s.wanted.topic.as_str())
    }
}
