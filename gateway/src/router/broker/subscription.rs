//! One subscription: a topic or pattern, its filter and conflation window, and the sessions on it.
//! Sessions subscribing with the same topic, match policy, filter and rate share it and its id, as the
//! spec requires (and the filter is evaluated once per event for all of them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use switchboard_config::MatchPolicy;

use super::super::filter::Filter;
use super::super::peer::Peer;
use super::conflation::Window;
use crate::wamp::Id;

/// What makes two SUBSCRIBEs the same subscription.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// The topic or pattern.
    pub topic: String,
    /// How it matches.
    pub policy: MatchPolicy,
    /// The filter's canonical text (`_filter`), if any.
    pub filter: Option<String>,
    /// The conflation window (`_rate_ms`), 0 for none.
    pub rate_ms: u64,
}

/// How a session asked to receive a topic or pattern: the parts of SUBSCRIBE that shape delivery.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    /// The topic or pattern.
    pub topic: String,
    /// How it matches.
    pub policy: MatchPolicy,
    /// Only events whose kwargs match it (`_filter`).
    pub filter: Option<Filter>,
    /// At most one event per window, the newest (per row on model topics) (`_rate_ms`).
    pub rate: Option<Duration>,
}

impl Wanted {
    /// An exact or pattern subscription with no filter and no conflation.
    pub(crate) fn plain(topic: &str, policy: MatchPolicy) -> Self {
        Wanted {
            topic: topic.to_string(),
            policy,
            filter: None,
            rate: None,
        }
    }

    pub(super) fn key(&self) -> Key {
        Key {
            topic: self.topic.clone(),
            policy: self.policy,
            filter: self.filter.as_ref().map(|f| f.key().to_string()),
            rate_ms: self.rate.map_or(0, |rate| rate.as_millis() as u64),
        }
    }
}

/// One session on a subscription, and whether its role must be asked about each event's topic.
#[derive(Debug)]
pub(super) struct Subscriber {
    pub(super) peer: Arc<Peer>,
    /// `Some(role key)` when the role may subscribe to some but not all of the pattern's topics: each
    /// event's concrete topic is checked before it is delivered. The key
    /// ([`super::super::authorize::Grants::key`]) is kept here so the check needs no pointer chase.
    pub(super) checked: Option<usize>,
}

/// One subscription and its subscribers.
#[derive(Debug)]
pub(super) struct Subscription {
    pub(super) wanted: Wanted,
    /// Kept in a vector for fast fan-out, with `positions` so that joins and leaves are O(1).
    pub(super) subscribers: Vec<Subscriber>,
    positions: HashMap<Id, usize>,
    window: Option<Mutex<Window>>,
    /// When the subscription was created (its first subscriber came), for the subscription meta API.
    pub(super) created: SystemTime,
}

impl Subscription {
    pub(super) fn new(wanted: Wanted) -> Self {
        Subscription {
            window: wanted.rate.map(|rate| Mutex::new(Window::new(rate))),
            wanted,
            subscribers: Vec::new(),
            positions: HashMap::new(),
            created: SystemTime::now(),
        }
    }

    pub(super) fn add(&mut self, peer: &Arc<Peer>, checked: Option<usize>) {
        if !self.positions.contains_key(&peer.id) {
            self.positions.insert(peer.id, self.subscribers.len());
            self.subscribers.push(Subscriber {
                peer: Arc::clone(peer),
                checked,
            });
        }
    }

    pub(super) fn remove(&mut self, session: Id) -> bool {
        let Some(position) = self.positions.remove(&session) else {
            return false;
        };
        self.subscribers.swap_remove(position);
        if let Some(moved) = self.subscribers.get(position) {
            self.positions.insert(moved.peer.id, position);
        }
        true
    }

    /// The conflation window, when the subscription has one (its lock is held only for bookkeeping).
    pub(super) fn window(&self) -> Option<MutexGuard<'_, Window>> {
        self.window
            .as_ref()
            .map(|window| window.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
