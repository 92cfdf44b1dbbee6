//! Presence: who (which authids) holds an exact subscription to a topic, de-duplicated across that
//! authid's sessions (tabs), with the public state its sessions set (`switchboard.session.set_state`).
//!
//! - Only EXACT subscriptions count: a prefix or wildcard subscription does not make a user present on a
//!   concrete topic. Topics under `wamp.` and `switchboard.` (the router's own) have no presence.
//! - An authid joins a topic when its first session subscribes to it and leaves it when its last session
//!   unsubscribes or leaves the realm. Join, leave and state events (kwargs `{event: "join"|"leave"|"state",
//!   authid, state}`) are published on `switchboard.presence.<topic>` through [`Realm::publish`] with no
//!   publisher, so only sessions whose role may subscribe there get them.
//! - An authid's state is the one its most recently updated session set (null when none did, or when that
//!   session left and no other of its sessions set one).
//!
//! Who is on a topic is not copied here: it is read from the broker's exact subscriptions
//! (`broker/members.rs`), and only when somebody watches `switchboard.presence.<topic>` or lists it, so a
//! subscribed session costs presence nothing. This module keeps the public states. Its lock is taken
//! before the broker changes a session's exact subscriptions and held until the events those changes
//! decided are published, so every watcher sees one authid's join and leave events in the order they
//! happened, and two tabs subscribing at once make exactly one join.

use std::collections::HashMap;
use std::sync::{LazyLock, MutexGuard};

use serde_json::{json, Value};

use super::publish::Outgoing;
use super::Realm;
use crate::wamp::ids::random_id;
use crate::wamp::{Dict, Id, Payload};

/// Where the presence events of `<topic>` are published: `switchboard.presence.<topic>`.
pub(crate) const TOPIC_PREFIX: &str = "switchboard.presence.";

/// Largest public state of one session, as JSON.
pub(crate) const MAX_STATE_BYTES: usize = 4096;

static NO_OPTIONS: LazyLock<Dict> = LazyLock::new(Dict::new);

/// Does presence track subscriptions to `topic`? Not for the router's own topics.
pub(crate) fn tracked(topic: &str) -> bool {
    !(topic.starts_with("wamp.") || topic.starts_with("switchboard."))
}

/// One realm's public states, and the lock that orders presence decisions (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Presence {
    /// authid -> states its sessions set: (session, update sequence, state).
    states: HashMap<String, Vec<(Id, u64, Value)>>,
    sequence: u64,
}

/// An event decided under the lock: (topic it is about, kwargs).
type Event = (String, Dict);

fn event(kind: &str, topic: &str, authid: &str, state: Value) -> Event {
    let mut kwargs = Dict::new();
    kwargs.insert("event".into(), Value::from(kind));
    kwargs.insert("authid".into(), Value::from(authid));
    kwargs.insert("state".into(), state);
    (topic.to_string(), kwargs)
}

fn watched_topic(topic: &str) -> String {
    format!("{TOPIC_PREFIX}{topic}")
}

impl Presence {
    /// The state of `authid`: the one its most recently updated session set.
    fn state_of(&self, authid: &str) -> Value {
        self.states
            .get(authid)
            .and_then(|states| states.iter().max_by_key(|(_, seq, _)| *seq))
            .map(|(_, _, state)| state.clone())
            .unwrap_or(Value::Null)
    }

    /// Records the state `session` of `authid` set; returns the authid's state before and after.
    fn set(&mut self, session: Id, authid: &str, state: Value) {
        self.sequence += 1;
        let states = self.states.entry(authid.to_string()).or_default();
        states.retain(|(id, _, _)| *id != session);
        states.push((session, self.sequence, state));
    }

    /// Forgets the state `session` of `authid` set; true when the authid's state changed with it.
    fn forget(&mut self, session: Id, authid: &str) -> bool {
        let Some(states) = self.states.get_mut(authid) else {
            return false;
        };
        if !states.iter().any(|(id, _, _)| *id == session) {
            return false;
        }
        let before = self.state_of(authid);
        if let Some(states) = self.states.get_mut(authid) {
            states.retain(|(id, _, _)| *id != session);
            if states.is_empty() {
                self.states.remove(authid);
            }
        }
        before != self.state_of(authid)
    }
}

/// Presence's lock, held across a change of a session's exact subscriptions (see the module doc).
pub(crate) struct PresenceGuard<'a>(MutexGuard<'a, Presence>);

impl Realm {
    /// Takes presence's lock before changing a session's exact subscriptions.
    pub(crate) fn presence_lock(&self) -> PresenceGuard<'_> {
        PresenceGuard(self.presence())
    }

    /// Publishes presence events (the caller holds the presence lock, so they go out in order).
    fn presence_publish(&self, events: Vec<Event>) {
        for (topic, kwargs) in events {
            let topic = watched_topic(&topic);
            let payload = Payload::ArgsKwargs(Vec::new(), kwargs);
            self.publish(Outgoing {
                id: random_id(),
                topic: &topic,
                payload: &payload,
                options: &NO_OPTIONS,
                publisher: None,
            });
        }
    }

    /// State events about `authid` on every watched topic it is present on.
    fn state_events(&self, authid: &str, state: &Value) -> Vec<Event> {
        let broker = self.broker();
        broker
            .topics_of(authid)
            .into_iter()
            .filter(|topic| tracked(topic) && broker.reaches(&watched_topic(topic)))
            .map(|topic| event("state", &topic, authid, state.clone()))
            .collect()
    }

    /// A session of `authid` took a new exact subscription to `topic` (the broker holds it already): the
    /// join event when it is the authid's first there and somebody watches.
    pub(crate) fn presence_subscribed(&self, lock: PresenceGuard<'_>, authid: &str, topic: &str) {
        if !tracked(topic) {
            return;
        }
        let first = {
            let broker = self.broker();
            broker.reaches(&watched_topic(topic)) && broker.exact_holds_of(topic, authid) == 1
        };
        if first {
            let state = lock.0.state_of(authid);
            self.presence_publish(vec![event("join", topic, authid, state)]);
        }
        drop(lock);
    }

    /// Sessions of `authid` dropped exact subscriptions to `topics` (the broker no longer holds them): a
    /// leave event for each watched topic the authid is no longer on; then, when `left` is the session
    /// that left the realm, state events where its state went with it.
    pub(crate) fn presence_unsubscribed(
        &self,
        mut lock: PresenceGuard<'_>,
        authid: &str,
        topics: &[String],
        left: Option<Id>,
    ) {
        let mut events = Vec::new();
        {
            let broker = self.broker();
            let mut seen: Vec<&str> = Vec::new();
            for topic in topics.iter().filter(|topic| tracked(topic)) {
                if seen.contains(&topic.as_str()) {
                    continue;
                }
                seen.push(topic);
                if broker.reaches(&watched_topic(topic))
                    && broker.exact_holds_of(topic, authid) == 0
                {
                    events.push(event("leave", topic, authid, lock.0.state_of(authid)));
                }
            }
        }
        if let Some(session) = left {
            if lock.0.forget(session, authid) {
                let state = lock.0.state_of(authid);
                events.extend(self.state_events(authid, &state));
            }
        }
        self.presence_publish(events);
        drop(lock);
    }

    /// `session` of `authid` set its public state: it becomes the authid's state.
    pub(crate) fn presence_set_state(&self, session: Id, authid: &str, state: Value) {
        let mut lock = self.presence_lock();
        lock.0.set(session, authid, state.clone());
        let events = self.state_events(authid, &state);
        self.presence_publish(events);
        drop(lock);
    }

    /// Who is present on `topic`: `[{authid, state, sessions}]`, by authid.
    pub(crate) fn presence_list(&self, topic: &str) -> Vec<Value> {
        let lock = self.presence_lock();
        let broker = self.broker();
        broker
            .members(topic)
            .into_iter()
            .map(|(authid, sessions)| {
                json!({
                    "authid": authid,
                    "state": lock.0.state_of(authid),
                    "sessions": sessions,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_the_most_recently_updated_sessions() {
        let mut p = Presence::default();
        p.set(1, "alice", json!({"status": "busy"}));
        p.set(2, "alice", json!({"status": "away"}));
        assert_eq!(p.state_of("alice"), json!({"status": "away"}));
        assert!(
            p.forget(2, "alice"),
            "alice's state changes with session 2's"
        );
        assert_eq!(p.state_of("alice"), json!({"status": "busy"}));
        p.set(1, "alice", json!({"status": "busy"}));
        assert!(!p.forget(3, "alice"), "session 3 set nothing");
        assert!(p.forget(1, "alice"));
        assert_eq!(p.state_of("alice"), Value::Null);
        assert!(p.states.is_empty(), "nothing kept of sessions that left");
    }
}
