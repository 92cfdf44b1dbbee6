//! The broker: subscriptions (exact, prefix, wildcard; filtered and conflated) and event fan-out. An
//! event is encoded once per subscription and serializer, and the same bytes go to every subscriber's
//! outbox.

mod audience;
mod conflation;
mod members;
mod meta;
mod subscription;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchboard_config::MatchPolicy;

pub(crate) use audience::Audience;
pub(crate) use conflation::{MAX_RATE_MS, MIN_RATE_MS};
pub(crate) use meta::{is_meta, Removed};
pub(crate) use subscription::Wanted;

use super::authorize::Coverage;
use super::filter::Filter;
use super::peer::Peer;
use crate::wamp::ids::IdSequence;
use crate::wamp::{Dict, Frame, Id, Message, Payload, Serializer};
use audience::RoleDecisions;
use conflation::{Held, Offer};
use subscription::{Key, Subscription};

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

/// Starts the timer of a conflation window: when it ends, [`Broker::end_window`] must be called for the
/// subscription. The realm does it (it owns the runtime handle and itself).
pub(crate) type Arm<'a> = &'a mut dyn FnMut(Id, Duration);

/// All subscriptions of one realm.
#[derive(Debug, Default)]
pub struct Broker {
    subscriptions: HashMap<Id, Subscription>,
    by_key: HashMap<Key, Id>,
    /// Exact subscriptions by topic (several when they differ in filter or rate).
    exact: HashMap<String, Vec<Id>>,
    /// Prefix and wildcard subscriptions: each is matched against every event's topic.
    patterns: HashSet<Id>,
    ids: IdSequence,
}

impl Broker {
    /// Adds `peer` to the subscription `wanted` describes, creating it if needed; returns its id.
    /// `coverage` is what the peer's role allows of the pattern (never `None`: that is refused before):
    /// with `Some`, each event's concrete topic is checked against the role on delivery.
    #[cfg(test)]
    pub(crate) fn subscribe(&mut self, peer: &Arc<Peer>, wanted: Wanted, coverage: Coverage) -> Id {
        self.subscribe_noting(peer, wanted, coverage).0
    }

    /// [`Broker::subscribe`], also telling whether the subscription was created by it (for the
    /// subscription meta events).
    pub(crate) fn subscribe_noting(
        &mut self,
        peer: &Arc<Peer>,
        wanted: Wanted,
        coverage: Coverage,
    ) -> (Id, bool) {
        let key = wanted.key();
        let mut created = false;
        let id = match self.by_key.get(&key) {
            Some(id) => *id,
            None => {
                created = true;
                let id = self.ids.next();
                if wanted.policy == MatchPolicy::Exact {
                    self.exact.entry(wanted.topic.clone()).or_default().push(id);
                } else {
                    self.patterns.insert(id);
                }
                self.by_key.insert(key, id);
                self.subscriptions.insert(id, Subscription::new(wanted));
                id
            }
        };
        if let Some(subscription) = self.subscriptions.get_mut(&id) {
            let checked = (coverage != Coverage::All).then(|| peer.grants.key());
            subscription.add(peer, checked);
        }
        (id, created)
    }

    /// Removes session `session` from subscription `id`; false when it was not subscribed. A subscription
    /// left without subscribers is deleted.
    pub fn unsubscribe(&mut self, session: Id, id: Id) -> bool {
        self.unsubscribe_noting(session, id).is_some()
    }

    /// [`Broker::unsubscribe`], telling `None` when the session was not subscribed, else whether the
    /// subscription was deleted and whether it is under `wamp.` (for the subscription meta events).
    pub(crate) fn unsubscribe_noting(&mut self, session: Id, id: Id) -> Option<Removed> {
        let subscription = self.subscriptions.get_mut(&id)?;
        if !subscription.remove(session) {
            return None;
        }
        let deleted = subscription.subscribers.is_empty();
        let removed = Removed {
            deleted,
            meta: meta::is_meta(&subscription.wanted.topic),
        };
        if deleted {
            if let Some(subscription) = self.subscriptions.remove(&id) {
                let wanted = &subscription.wanted;
                self.by_key.remove(&wanted.key());
                self.patterns.remove(&id);
                if let Some(ids) = self.exact.get_mut(&wanted.topic) {
                    ids.retain(|other| *other != id);
                    if ids.is_empty() {
                        self.exact.remove(&wanted.topic);
                    }
                }
            }
        }
        Some(removed)
    }

    /// The topic (or pattern), match policy and filter of subscription `id`.
    pub(crate) fn describe(&self, id: Id) -> Option<(String, MatchPolicy, Option<Filter>)> {
        self.subscriptions.get(&id).map(|s| {
            let wanted = &s.wanted;
            (wanted.topic.clone(), wanted.policy, wanted.filter.clone())
        })
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

    /// Sessions an event on `topic` would reach, ignoring audience options and filters (management
    /// "subscribers of a topic"); each session once, even when several of its subscriptions match.
    pub fn subscriber_sessions(&self, topic: &str) -> Vec<Id> {
        let mut roles = RoleDecisions::default();
        let mut sessions: Vec<Id> = self
            .subscriptions
            .values()
            .filter(|s| s.wanted.policy.matches(&s.wanted.topic, topic))
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

    /// Delivers an event to every matching subscription whose filter it passes: at once, or at the end of
    /// the subscription's conflation window (`arm` starts the window's timer).
    pub(crate) fn publish(&self, publication: &Publication<'_>, arm: Arm<'_>) -> Fanout {
        let mut fanout = Fanout::default();
        let mut roles = RoleDecisions::default();
        for id in self.exact.get(publication.topic).into_iter().flatten() {
            self.offer(*id, publication, &mut roles, &mut fanout, arm);
        }
        for id in &self.patterns {
            let Some(subscription) = self.subscriptions.get(id) else {
                continue;
            };
            let wanted = &subscription.wanted;
            if wanted.policy.matches(&wanted.topic, publication.topic) {
                self.offer(*id, publication, &mut roles, &mut fanout, arm);
            }
        }
        metrics::counter!("switchboard_deliveries_total").increment(fanout.delivered as u64);
        fanout
    }

    /// A conflation window of subscription `id` ended: delivers what it held. Returns the fan-out and,
    /// when something was delivered, the next window to time (until a window ends empty).
    pub(crate) fn end_window(&self, id: Id) -> (Fanout, Option<Duration>) {
        let mut fanout = Fanout::default();
        let Some(subscription) = self.subscriptions.get(&id) else {
            return (fanout, None);
        };
        let Some((held, rate)) = subscription.window().map(|mut w| (w.end(), w.rate())) else {
            return (fanout, None);
        };
        let again = (!held.is_empty()).then_some(rate);
        self.deliver_held(id, subscription, held, &mut fanout);
        metrics::counter!("switchboard_deliveries_total").increment(fanout.delivered as u64);
        (fanout, again)
    }

    fn offer(
        &self,
        id: Id,
        publication: &Publication<'_>,
        roles: &mut RoleDecisions,
        fanout: &mut Fanout,
        arm: Arm<'_>,
    ) {
        let Some(subscription) = self.subscriptions.get(&id) else {
            return;
        };
        if let Some(filter) = &subscription.wanted.filter {
            if !filter.matches_payload(publication.payload) {
                return;
            }
        }
        if let Some(mut window) = subscription.window() {
            let hold = || Held {
                id: publication.id,
                topic: Arc::from(publication.topic),
                payload: publication.payload.clone(),
                publisher_details: publication.publisher_details.clone(),
                audience: publication.audience.clone(),
            };
            let private = publication.audience.is_private();
            match window.offer(hold, publication.topic, publication.payload, private) {
                Offer::DeliverAndArm => arm(id, window.rate()),
                Offer::Held => return,
                Offer::HeldFlushNow => {
                    let held = window.end();
                    drop(window);
                    return self.deliver_held(id, subscription, held, fanout);
                }
                Offer::FlushThenDeliver => {
                    let held = window.end();
                    drop(window);
                    self.deliver_held(id, subscription, held, fanout);
                }
            }
        }
        deliver(id, subscription, publication, roles, fanout);
    }

    fn deliver_held(
        &self,
        id: Id,
        subscription: &Subscription,
        held: Vec<Held>,
        fanout: &mut Fanout,
    ) {
        for event in held {
            let publication = Publication {
                id: event.id,
                topic: &event.topic,
                payload: &event.payload,
                publisher_details: event.publisher_details,
                audience: &event.audience,
            };
            deliver(
                id,
                subscription,
                &publication,
                &mut RoleDecisions::default(),
                fanout,
            );
        }
    }
}

/// Sends an event to every admitted subscriber of `subscription` whose role may subscribe to its topic.
fn deliver(
    id: Id,
    subscription: &Subscription,
    publication: &Publication<'_>,
    roles: &mut RoleDecisions,
    fanout: &mut Fanout,
) {
    let mut details = publication.publisher_details.clone();
    if subscription.wanted.policy != MatchPolicy::Exact {
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
    let mut cbor: Option<Frame> = None;
    for subscriber in &subscription.subscribers {
        let peer: &Peer = &subscriber.peer;
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
            Serializer::Cbor => &mut cbor,
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
