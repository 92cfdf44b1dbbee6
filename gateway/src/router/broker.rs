//! The broker: subscriptions (exact, prefix, wildcard) and event fan-out. An event is encoded once per
//! subscription and serializer, and the same bytes go to every subscriber's outbox.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use switchboard_config::MatchPolicy;

use super::authorize::{Action, Coverage};
use super::peer::Peer;
use crate::wamp::ids::IdSequence;
use crate::wamp::{options, Dict, Frame, Id, Message, Payload, Serializer};

/// One subscription: a topic or pattern and the sessions on it. Sessions subscribing to the same topic
/// with the same policy share the subscription and its id, as the spec requires.
#[derive(Debug)]
struct Subscription {
    topic: String,
    policy: MatchPolicy,
    /// Kept in a vector for fast fan-out, with `positions` so that joins and leaves are O(1).
    subscribers: Vec<Subscriber>,
    positions: HashMap<Id, usize>,
}

/// One session on a subscription, and whether its role must be asked about each event's topic.
#[derive(Debug)]
struct Subscriber {
    peer: Arc<Peer>,
    /// `Some(role key)` when the role may subscribe to some but not all of the pattern's topics (see
    /// [`Coverage`]): each event's concrete topic is checked before it is delivered. The key
    /// ([`super::authorize::Grants::key`]) is kept here so the check needs no pointer chase.
    checked: Option<usize>,
}

impl Subscription {
    fn add(&mut self, peer: &Arc<Peer>, checked: Option<usize>) {
        if !self.positions.contains_key(&peer.id) {
            self.positions.insert(peer.id, self.subscribers.len());
            self.subscribers.push(Subscriber {
                peer: Arc::clone(peer),
                checked,
            });
        }
    }

    fn remove(&mut self, session: Id) -> bool {
        let Some(position) = self.positions.remove(&session) else {
            return false;
        };
        self.subscribers.swap_remove(position);
        if let Some(moved) = self.subscribers.get(position) {
            self.positions.insert(moved.peer.id, position);
        }
        true
    }
}

/// Per-event memory of role decisions: subscribers holding the same role share one rule walk, and a
/// run of subscribers with the same role (the common case) costs one comparison each.
#[derive(Default)]
struct RoleDecisions {
    last: Option<(usize, bool)>,
    decided: Vec<(usize, bool)>,
}

impl RoleDecisions {
    fn may_receive(&mut self, key: usize, peer: &Peer, topic: &str) -> bool {
        match self.last {
            Some((last, allowed)) if last == key => return allowed,
            _ => {}
        }
        let allowed = match self.decided.iter().find(|(k, _)| *k == key) {
            Some((_, allowed)) => *allowed,
            None => {
                let allowed = peer.grants.allows(Action::Subscribe, topic);
                self.decided.push((key, allowed));
                allowed
            }
        };
        self.last = Some((key, allowed));
        allowed
    }
}

/// Who may receive an event, from PUBLISH options (black/white listing) and publisher exclusion.
#[derive(Debug, Default, Clone)]
pub(crate) struct Audience {
    /// The publisher's session, excluded when `exclude_me` is true (the default).
    pub exclude_session: Option<Id>,
    /// `exclude`: session ids never to receive it.
    pub exclude: Vec<Id>,
    /// `eligible`: when set, only these session ids.
    pub eligible: Option<Vec<Id>>,
    /// `exclude_authid`.
    pub exclude_authid: Vec<String>,
    /// `eligible_authid`: when set, only sessions with these authids.
    pub eligible_authid: Option<Vec<String>>,
    /// `exclude_authrole`: sessions holding any of these roles (not only as their first) never receive it.
    pub exclude_authrole: Vec<String>,
    /// `eligible_authrole`: when set, only sessions holding one of these roles.
    pub eligible_authrole: Option<Vec<String>>,
}

impl Audience {
    /// Reads the black/white-listing keys of WAMP PUBLISH options (also the ingestion event's options);
    /// `exclude_session` is the publisher when it asked to be excluded.
    pub(crate) fn from_options(publish_options: &Dict, exclude_session: Option<Id>) -> Self {
        Audience {
            exclude_session,
            exclude: options::ids(publish_options, "exclude").unwrap_or_default(),
            eligible: options::ids(publish_options, "eligible"),
            exclude_authid: options::strings(publish_options, "exclude_authid").unwrap_or_default(),
            eligible_authid: options::strings(publish_options, "eligible_authid"),
            exclude_authrole: options::strings(publish_options, "exclude_authrole")
                .unwrap_or_default(),
            eligible_authrole: options::strings(publish_options, "eligible_authrole"),
        }
    }

    /// Does the publisher restrict who receives the event (black or white lists)? Such an event is private
    /// and never stored (the WAMP rule for history and retention).
    pub(crate) fn is_private(&self) -> bool {
        !self.exclude.is_empty()
            || self.eligible.is_some()
            || !self.exclude_authid.is_empty()
            || self.eligible_authid.is_some()
            || !self.exclude_authrole.is_empty()
            || self.eligible_authrole.is_some()
    }

    fn admits(&self, peer: &Peer) -> bool {
        self.exclude_session != Some(peer.id)
            && !self.exclude.contains(&peer.id)
            && self
                .eligible
                .as_ref()
                .is_none_or(|ids| ids.contains(&peer.id))
            && !self.exclude_authid.contains(&peer.authid)
            && self
                .eligible_authid
                .as_ref()
                .is_none_or(|ids| ids.contains(&peer.authid))
            && !peer.roles.iter().any(|r| self.exclude_authrole.contains(r))
            && self
                .eligible_authrole
                .as_ref()
                .is_none_or(|roles| peer.roles.iter().any(|r| roles.contains(r)))
    }
}

/// An event on its way to subscribers.
#[derive(Debug)]
pub(crate) struct Publication<'a> {
    /// The publication id (random, global scope).
    pub id: Id,
    /// The concrete topic.
    pub topic: &'a str,
    /// Arguments as the publisher sent them.
    pub payload: &'a Payload,
    /// Publisher details to disclose (`publisher`, `publisher_authid`, ...), empty unless asked.
    pub publisher_details: Dict,
    /// Who may receive it.
    pub audience: &'a Audience,
}

/// Counts of one fan-out, for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fanout {
    /// Frames queued to subscribers.
    pub delivered: usize,
    /// Subscribers whose queue was full or closing.
    pub dropped: usize,
}

/// All subscriptions of one realm.
#[derive(Debug, Default)]
pub struct Broker {
    subscriptions: HashMap<Id, Subscription>,
    exact: HashMap<String, Id>,
    patterns: HashMap<(MatchPolicy, String), Id>,
    ids: IdSequence,
}

impl Broker {
    /// Adds `peer` to the subscription for `topic` under `policy`, creating it if needed; returns its id.
    /// `coverage` is what the peer's role allows of the pattern (never `None`: that is refused before):
    /// with `Some`, each event's concrete topic is checked against the role on delivery.
    pub fn subscribe(
        &mut self,
        peer: &Arc<Peer>,
        topic: &str,
        policy: MatchPolicy,
        coverage: Coverage,
    ) -> Id {
        let existing = match policy {
            MatchPolicy::Exact => self.exact.get(topic).copied(),
            _ => self.patterns.get(&(policy, topic.to_string())).copied(),
        };
        let id = existing.unwrap_or_else(|| {
            let id = self.ids.next();
            match policy {
                MatchPolicy::Exact => self.exact.insert(topic.to_string(), id),
                _ => self.patterns.insert((policy, topic.to_string()), id),
            };
            let subscription = Subscription {
                topic: topic.to_string(),
                policy,
                subscribers: Vec::new(),
                positions: HashMap::new(),
            };
            self.subscriptions.insert(id, subscription);
            id
        });
        if let Some(subscription) = self.subscriptions.get_mut(&id) {
            let checked = (coverage != Coverage::All).then(|| peer.grants.key());
            subscription.add(peer, checked);
        }
        id
    }

    /// Removes session `session` from subscription `id`; false when it was not subscribed. A subscription
    /// left without subscribers is deleted.
    pub fn unsubscribe(&mut self, session: Id, id: Id) -> bool {
        let Some(subscription) = self.subscriptions.get_mut(&id) else {
            return false;
        };
        let removed = subscription.remove(session);
        if subscription.subscribers.is_empty() {
            if let Some(subscription) = self.subscriptions.remove(&id) {
                match subscription.policy {
                    MatchPolicy::Exact => self.exact.remove(&subscription.topic),
                    policy => self.patterns.remove(&(policy, subscription.topic)),
                };
            }
        }
        removed
    }

    /// The topic (or pattern) and match policy of subscription `id`.
    pub fn describe(&self, id: Id) -> Option<(String, MatchPolicy)> {
        self.subscriptions
            .get(&id)
            .map(|s| (s.topic.clone(), s.policy))
    }

    /// Number of sessions subscribed to subscription `id`.
    pub fn subscriber_count(&self, id: Id) -> usize {
        self.subscriptions
            .get(&id)
            .map_or(0, |s| s.subscribers.len())
    }

    /// Number of subscriptions (topics and patterns with at least one subscriber); lets AMQP ingestion
    /// hold a backlog until somebody listens.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    /// Sessions an event on `topic` would reach, ignoring audience options (management "subscribers of a
    /// topic"); each session once, even when several of its subscriptions match.
    pub fn subscriber_sessions(&self, topic: &str) -> Vec<Id> {
        let mut roles = RoleDecisions::default();
        let mut sessions: Vec<Id> = self
            .subscriptions
            .values()
            .filter(|s| s.policy.matches(&s.topic, topic))
            .flat_map(|s| s.subscribers.iter())
            .filter(|s| {
                s.checked
                    .is_none_or(|key| roles.may_receive(key, &s.peer, topic))
            })
            .map(|s| s.peer.id)
            .collect();
        sessions.sort_unstable();
        sessions.dedup();
        sessions
    }

    /// Delivers an event to every matching, admitted subscriber whose role may subscribe to its topic.
    pub(crate) fn publish(&self, publication: &Publication<'_>) -> Fanout {
        let mut fanout = Fanout::default();
        let mut roles = RoleDecisions::default();
        if let Some(id) = self.exact.get(publication.topic) {
            self.deliver(*id, publication, &mut roles, &mut fanout);
        }
        for ((policy, pattern), id) in &self.patterns {
            if policy.matches(pattern, publication.topic) {
                self.deliver(*id, publication, &mut roles, &mut fanout);
            }
        }
        metrics::counter!("switchboard_deliveries_total").increment(fanout.delivered as u64);
        fanout
    }

    fn deliver(
        &self,
        id: Id,
        publication: &Publication<'_>,
        roles: &mut RoleDecisions,
        fanout: &mut Fanout,
    ) {
        let Some(subscription) = self.subscriptions.get(&id) else {
            return;
        };
        let mut details = publication.publisher_details.clone();
        if subscription.policy != MatchPolicy::Exact {
            details.insert("topic".into(), Value::String(publication.topic.to_string()));
        }
        let event = Message::Event {
            subscription: id,
            publication: publication.id,
            details,
            payload: publication.payload.clone(),
        };
        let mut json: Option<Frame> = None;
        let mut msgpack: Option<Frame> = None;
        for subscriber in &subscription.subscribers {
            let peer = &subscriber.peer;
            if !publication.audience.admits(peer)
                || subscriber
                    .checked
                    .is_some_and(|key| !roles.may_receive(key, peer, publication.topic))
            {
                continue;
            }
            let serializer = peer.outbox.serializer();
            let slot = match serializer {
                Serializer::Json => &mut json,
                Serializer::Msgpack => &mut msgpack,
            };
            let frame = slot
                .get_or_insert_with(|| serializer.encode(&event))
                .clone();
            if peer.outbox.send(frame) {
                fanout.delivered += 1;
            } else {
                fanout.dropped += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::router::outbox::{Outbox, OutboxReceiver};
    use crate::router::peer::ClientFeatures;
    use crate::wamp::ids::IdSequence;

    fn peer(id: Id) -> (Arc<Peer>, OutboxReceiver) {
        let limits = crate::router::QueueLimits {
            max_bytes: 1 << 20,
            max_frames: 8,
            slow_consumer: Duration::from_secs(1),
        };
        let (outbox, receiver) = Outbox::new(Serializer::Json, limits);
        let peer = Peer {
            id,
            authid: format!("user{id}"),
            authrole: "member".into(),
            roles: vec!["member".into()],
            grants: Default::default(),
            features: ClientFeatures::default(),
            outbox: Arc::new(outbox),
            invocation_ids: IdSequence::default(),
            pending_calls: Default::default(),
        };
        (Arc::new(peer), receiver)
    }

    #[test]
    fn role_lists_look_at_every_role_a_session_holds() {
        let (peer, _receiver) = peer(7);
        let mut two_roles = Arc::try_unwrap(peer).expect("only owner");
        two_roles.roles = vec!["member".into(), "extra".into()];
        let roles = |key: &str| {
            let mut options = Dict::new();
            options.insert(key.into(), Value::from(vec!["extra"]));
            Audience::from_options(&options, None)
        };
        assert!(
            !roles("exclude_authrole").admits(&two_roles),
            "excluded by its second role"
        );
        assert!(
            roles("eligible_authrole").admits(&two_roles),
            "eligible by its second role"
        );
        two_roles.roles = vec!["member".into()];
        assert!(roles("exclude_authrole").admits(&two_roles));
        assert!(!roles("eligible_authrole").admits(&two_roles));
    }

    #[test]
    fn leaving_in_any_order_keeps_the_others_subscribed() {
        let mut broker = Broker::default();
        let peers: Vec<_> = (1..=4).map(peer).collect();
        let id = peers
            .iter()
            .map(|(p, _)| broker.subscribe(p, "t.x", MatchPolicy::Exact, Coverage::All))
            .last()
            .unwrap_or_default();
        assert_eq!(
            broker.subscribe(&peers[0].0, "t.x", MatchPolicy::Exact, Coverage::All),
            id
        );
        assert_eq!(
            broker.subscriber_count(id),
            4,
            "subscribing twice adds nobody"
        );
        assert!(broker.unsubscribe(2, id));
        assert!(!broker.unsubscribe(2, id), "already gone");
        assert!(broker.unsubscribe(4, id));
        let payload = Payload::Empty;
        let audience = Audience::default();
        let publication = Publication {
            id: 99,
            topic: "t.x",
            payload: &payload,
            publisher_details: Dict::new(),
            audience: &audience,
        };
        assert_eq!(broker.publish(&publication).delivered, 2);
        for (peer, receiver) in &peers {
            let got = receiver.frames.try_recv().is_some();
            assert_eq!(got, peer.id == 1 || peer.id == 3, "session {}", peer.id);
        }
        assert!(broker.unsubscribe(1, id) && broker.unsubscribe(3, id));
        assert_eq!(broker.subscriber_count(id), 0);
        assert_eq!(broker.publish(&publication).delivered, 0);
    }
}
