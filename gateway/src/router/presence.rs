//! Presence: who (which authids) holds an exact subscription to a topic, de-duplicated across that
//! authid's sessions (tabs), with the public state its sessions set (`switchboard.session.set_state`).
//!
//! - Only EXACT subscriptions count: a prefix or wildcard subscription does not make a user present on a
//!   concrete topic. Topics under `wamp.` and `switchboard.` (the router's own) have no presence.
//! - An authid joins a topic when its first session subscribes to it and leaves it when its last session
//!   unsubscribes or leaves the realm. Join, leave and state events (kwargs `{event: "join"|"leave"|"state",
//!   authid, state}`) are published on `switchboard.presence.<topic>` through [`Realm::publish`] with no
//!   publisher, so only sessions whose role may subscribe there get them; nothing is built when nobody
//!   subscribes to that topic.
//! - An authid's state is the one its most recently updated session set (null when none did, or when that
//!   session left and no other of its sessions set one).
//!
//! The bookkeeping is one lock per realm, held while the events it decided are published, so that every
//! watcher sees one authid's join and leave events in the order they happened.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

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

/// One realm's presence bookkeeping. Every subscribed session of the realm has entries here, so it is
/// laid out for memory: topics and authids are shared (`Arc<str>`) between the maps, and a session's
/// few subscriptions are short vectors rather than maps.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    /// topic -> authid -> (session, how many exact subscriptions that session holds to the topic).
    topics: HashMap<Arc<str>, Members>,
    /// The sessions with tracked subscriptions or a public state.
    sessions: HashMap<Id, Held>,
    /// authid -> states its sessions set: (session, update sequence, state).
    states: HashMap<Arc<str>, Vec<(Id, u64, Value)>>,
    sequence: u64,
}

/// Who is on one topic: authid -> (session, how many exact subscriptions it holds to the topic).
type Members = HashMap<Arc<str>, Vec<(Id, u32)>>;

/// What presence knows of one session.
#[derive(Debug)]
struct Held {
    authid: Arc<str>,
    /// Its exact subscriptions to tracked topics: (subscription, topic).
    subscriptions: Vec<(Id, Arc<str>)>,
    /// Whether it set a public state (an entry under `states`).
    has_state: bool,
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

impl Presence {
    /// The state of `authid`: the one its most recently updated session set.
    fn state_of(&self, authid: &str) -> Value {
        self.states
            .get(authid)
            .and_then(|states| states.iter().max_by_key(|(_, seq, _)| *seq))
            .map(|(_, _, state)| state.clone())
            .unwrap_or(Value::Null)
    }

    /// The entry of `session` of `authid`, made on first use.
    fn held(&mut self, session: Id, authid: &str) -> &mut Held {
        self.sessions.entry(session).or_insert_with(|| Held {
            authid: Arc::from(authid),
            subscriptions: Vec::new(),
            has_state: false,
        })
    }

    /// `session` of `authid` took exact subscription `subscription` to `topic`: the join event when it
    /// is the authid's first.
    fn subscribed(
        &mut self,
        session: Id,
        authid: &str,
        subscription: Id,
        topic: &str,
    ) -> Option<Event> {
        let topic: Arc<str> = match self.topics.get_key_value(topic) {
            Some((shared, _)) => Arc::clone(shared),
            None => Arc::from(topic),
        };
        let held = self.held(session, authid);
        if held.subscriptions.iter().any(|(id, _)| *id == subscription) {
            return None;
        }
        held.subscriptions.push((subscription, Arc::clone(&topic)));
        let authid = Arc::clone(&held.authid);
        let members = self.topics.entry(Arc::clone(&topic)).or_default();
        let sessions = members.entry(Arc::clone(&authid)).or_default();
        let first = sessions.is_empty();
        match sessions.iter_mut().find(|(id, _)| *id == session) {
            Some((_, count)) => *count += 1,
            None => sessions.push((session, 1)),
        }
        first.then(|| event("join", &topic, &authid, self.state_of(&authid)))
    }

    /// `session` dropped `subscription`: the leave event when it was its authid's last on the topic.
    fn unsubscribed(&mut self, session: Id, subscription: Id) -> Option<Event> {
        let held = self.sessions.get_mut(&session)?;
        let at = held
            .subscriptions
            .iter()
            .position(|(id, _)| *id == subscription)?;
        let (_, topic) = held.subscriptions.swap_remove(at);
        let authid = Arc::clone(&held.authid);
        if held.subscriptions.is_empty() && !held.has_state {
            self.sessions.remove(&session);
        }
        let members = self.topics.get_mut(&topic)?;
        let sessions = members.get_mut(&authid)?;
        if let Some(at) = sessions.iter().position(|(id, _)| *id == session) {
            sessions[at].1 -= 1;
            if sessions[at].1 == 0 {
                sessions.swap_remove(at);
            }
        }
        if !sessions.is_empty() {
            return None;
        }
        members.remove(&authid);
        if members.is_empty() {
            self.topics.remove(&topic);
        }
        Some(event("leave", &topic, &authid, self.state_of(&authid)))
    }

    /// `session` left the realm: leave events for the topics its authid is no longer on, then state
    /// events where its authid stays but its state changed with the session's.
    fn left(&mut self, session: Id) -> Vec<Event> {
        let Some(held) = self.sessions.get_mut(&session) else {
            return Vec::new();
        };
        // Without its state flag, its last `unsubscribed` drops the entry.
        let has_state = std::mem::take(&mut held.has_state);
        let authid = Arc::clone(&held.authid);
        let subscriptions: Vec<Id> = held.subscriptions.iter().map(|(id, _)| *id).collect();
        let mut events: Vec<Event> = subscriptions
            .into_iter()
            .filter_map(|subscription| self.unsubscribed(session, subscription))
            .collect();
        self.sessions.remove(&session);
        if has_state {
            let before = self.state_of(&authid);
            if let Some(states) = self.states.get_mut(&authid) {
                states.retain(|(id, _, _)| *id != session);
                if states.is_empty() {
                    self.states.remove(&authid);
                }
            }
            let after = self.state_of(&authid);
            if before != after {
                events.extend(self.state_events(&authid, &after));
            }
        }
        events
    }

    /// A state event on every topic `authid` is present on.
    fn state_events(&self, authid: &str, state: &Value) -> Vec<Event> {
        let mut events: Vec<Event> = self
            .topics
            .iter()
            .filter(|(_, members)| members.contains_key(authid))
            .map(|(topic, _)| event("state", topic, authid, state.clone()))
            .collect();
        events.sort_by(|a, b| a.0.cmp(&b.0));
        events
    }

    /// `session` of `authid` set its public state: it becomes the authid's state.
    fn set_state(&mut self, session: Id, authid: &str, state: Value) -> Vec<Event> {
        self.sequence += 1;
        let sequence = self.sequence;
        let held = self.held(session, authid);
        held.has_state = true;
        let authid = Arc::clone(&held.authid);
        let states = self.states.entry(Arc::clone(&authid)).or_default();
        states.retain(|(id, _, _)| *id != session);
        states.push((session, sequence, state.clone()));
        self.state_events(&authid, &state)
    }

    /// `[{authid, state, sessions}]` of `topic`, by authid.
    fn list(&self, topic: &str) -> Vec<Value> {
        let Some(members) = self.topics.get(topic) else {
            return Vec::new();
        };
        let mut members: Vec<_> = members.iter().collect();
        members.sort_by(|a, b| a.0.cmp(b.0));
        members
            .into_iter()
            .map(|(authid, sessions)| {
                json!({
                    "authid": &**authid,
                    "state": self.state_of(authid),
                    "sessions": sessions.len(),
                })
            })
            .collect()
    }
}

impl Realm {
    /// Publishes presence events (the caller holds the presence lock, so they go out in order).
    fn presence_publish(&self, events: Vec<Event>) {
        for (topic, kwargs) in events {
            let topic = format!("{TOPIC_PREFIX}{topic}");
            if !self.broker().reaches(&topic) {
                continue;
            }
            let payload = Payload::ArgsKwargs(Vec::new(), kwargs);
            self.deliver_local(Outgoing {
                id: random_id(),
                topic: &topic,
                payload: &payload,
                options: &NO_OPTIONS,
                publisher: None,
            });
        }
    }

    /// `session` of `authid` took the exact subscription `subscription` to `topic` (new for it).
    pub(crate) fn presence_subscribed(
        &self,
        session: Id,
        authid: &str,
        subscription: Id,
        topic: &str,
    ) {
        if !tracked(topic) {
            return;
        }
        let mut presence = self.presence();
        let events = presence
            .subscribed(session, authid, subscription, topic)
            .into_iter()
            .collect();
        self.presence_publish(events);
    }

    /// `session` dropped `subscription` (ignored when it was no tracked exact subscription).
    pub(crate) fn presence_unsubscribed(&self, session: Id, subscription: Id) {
        let mut presence = self.presence();
        let events = presence
            .unsubscribed(session, subscription)
            .into_iter()
            .collect();
        self.presence_publish(events);
    }

    /// `session` left the realm.
    pub(crate) fn presence_left(&self, session: Id) {
        let mut presence = self.presence();
        let events = presence.left(session);
        self.presence_publish(events);
    }

    /// `session` of `authid` set its public state.
    pub(crate) fn presence_set_state(&self, session: Id, authid: &str, state: Value) {
        let mut presence = self.presence();
        let events = presence.set_state(session, authid, state);
        self.presence_publish(events);
    }

    /// Who is present on `topic`.
    pub(crate) fn presence_list(&self, topic: &str) -> Vec<Value> {
        self.presence().list(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(events: &[Event]) -> Vec<(String, String, String)> {
        events
            .iter()
            .map(|(topic, kw)| {
                (
                    topic.clone(),
                    kw["event"].as_str().unwrap().to_string(),
                    kw["authid"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn an_authid_joins_with_its_first_session_and_leaves_with_its_last() {
        let mut p = Presence::default();
        assert!(p.subscribed(1, "alice", 10, "room").is_some());
        assert!(p.subscribed(2, "alice", 11, "room").is_none(), "second tab");
        assert!(p.subscribed(3, "bob", 11, "room").is_some());
        assert!(
            p.subscribed(1, "alice", 10, "room").is_none(),
            "same subscription again"
        );
        assert_eq!(p.list("room")[0]["sessions"], 2);
        assert!(p.unsubscribed(1, 10).is_none());
        let left = p.left(2);
        assert_eq!(
            kinds(&left),
            vec![("room".into(), "leave".into(), "alice".into())]
        );
        assert_eq!(p.list("room").len(), 1);
        assert!(p.unsubscribed(3, 11).is_some());
        assert!(p.topics.is_empty());
    }

    #[test]
    fn the_state_is_the_most_recently_updated_sessions() {
        let mut p = Presence::default();
        p.subscribed(1, "alice", 10, "room");
        p.subscribed(2, "alice", 11, "room");
        let events = p.set_state(1, "alice", json!({"status": "busy"}));
        assert_eq!(
            kinds(&events),
            vec![("room".into(), "state".into(), "alice".into())]
        );
        p.set_state(2, "alice", json!({"status": "away"}));
        assert_eq!(p.list("room")[0]["state"], json!({"status": "away"}));
        let events = p.left(2);
        assert_eq!(events[0].1["state"], json!({"status": "busy"}));
        assert_eq!(p.list("room")[0]["state"], json!({"status": "busy"}));
        assert!(
            p.set_state(5, "carol", json!({})).is_empty(),
            "carol is nowhere"
        );
        p.left(5);
        assert!(!p.states.contains_key("carol"));
        assert!(
            !p.sessions.contains_key(&2) && !p.sessions.contains_key(&5),
            "nothing kept of sessions that left"
        );
    }
}
