//! SUBSCRIBE, UNSUBSCRIBE and PUBLISH for a joined session.

use switchboard_config::MatchPolicy;

use std::sync::Arc;
use std::time::Duration;

use super::super::authorize::Action;
use super::super::broker::{Wanted, MAX_RATE_MS, MIN_RATE_MS};
use super::super::filter::Filter;
use super::super::presence::tracked;
use super::super::publish::{Accepted, Outgoing};
use super::super::{Refusal, CLUSTER_UNAVAILABLE};
use super::Session;
use crate::wamp::{code, options, Dict, Id, Message, Payload};

impl Session {
    pub(super) fn subscribe(&mut self, request: Id, subscribe_options: &Dict, topic: String) {
        let policy = options::text(subscribe_options, "match")
            .and_then(MatchPolicy::parse)
            .unwrap_or_default();
        let coverage = match self.check(Action::Subscribe, &topic, policy) {
            Ok(coverage) => coverage,
            Err(refusal) => return self.refuse(code::SUBSCRIBE, request, refusal),
        };
        let wanted = match wanted(subscribe_options, &topic, policy) {
            Ok(wanted) => wanted,
            Err(refusal) => return self.refuse(code::SUBSCRIBE, request, refusal),
        };
        let limits = self.router.limits;
        let Some(joined) = self.joined_mut() else {
            return;
        };
        let is_pattern = policy != MatchPolicy::Exact;
        let over = if joined.subscriptions.len() >= limits.max_subscriptions {
            Some((
                "max_subscriptions",
                limits.max_subscriptions,
                "subscriptions",
            ))
        } else if is_pattern && joined.patterns.len() >= limits.max_pattern_subscriptions {
            let max = limits.max_pattern_subscriptions;
            Some(("max_pattern_subscriptions", max, "pattern subscriptions"))
        } else {
            None
        };
        if let Some((key, max, what)) = over {
            let refusal = super::Refusal::new(
                super::super::LIMIT_EXCEEDED,
                format!(
                    "this session already holds {max} {what}, the most allowed (gateway.{key})"
                ),
            );
            return self.refuse(code::SUBSCRIBE, request, refusal);
        }
        let filter = wanted.filter.clone();
        // Presence decides a join from the broker's state right after this change: its lock spans both.
        let realm = Arc::clone(&joined.realm);
        let presence = (!is_pattern && tracked(&topic)).then(|| realm.presence_lock());
        let (subscription, created) = {
            let mut broker = joined.realm.broker_mut();
            let (subscription, created) = broker.subscribe_noting(&joined.peer, wanted, coverage);
            // Queued while the broker is still locked: a publish on another thread sees the new
            // subscriber only after SUBSCRIBED is in its queue, so no EVENT can precede it.
            joined.peer.outbox.send_message(&Message::Subscribed {
                request,
                subscription,
            });
            (subscription, created)
        };
        let fresh = joined.subscriptions.insert(subscription);
        if fresh {
            metrics::gauge!("switchboard_subscriptions").increment(1.0);
        }
        if is_pattern {
            joined.patterns.insert(subscription);
        }
        tracing::debug!(session = joined.peer.id, %topic, policy = policy.as_str(), subscription, "subscribed");
        if options::flag(subscribe_options, "get_retained", false) {
            self.send_retained(subscription, &topic, policy, coverage, filter.as_ref());
        }
        // A session subscribing again to a subscription it holds is not a new subscriber.
        if let Some(joined) = self.joined().filter(|_| fresh) {
            let session = joined.peer.id;
            joined
                .realm
                .meta_subscribed(session, subscription, &topic, created);
            if let Some(presence) = presence {
                realm.presence_subscribed(presence, &joined.peer.authid, &topic);
            }
        }
    }

    pub(super) fn unsubscribe(&mut self, request: Id, subscription: Id) {
        let Some(joined) = self.joined_mut() else {
            return;
        };
        joined.patterns.remove(&subscription);
        if !joined.subscriptions.remove(&subscription) {
            let refusal = super::Refusal::new(
                "wamp.error.no_such_subscription",
                format!("this session has no subscription {subscription}"),
            );
            return self.refuse(code::UNSUBSCRIBE, request, refusal);
        }
        let realm = Arc::clone(&joined.realm);
        let presence = realm.presence_lock();
        let (removed, exact_topic) = {
            let mut broker = realm.broker_mut();
            let topic = broker
                .exact_topic(subscription)
                .filter(|topic| tracked(topic))
                .map(str::to_string);
            (
                broker.unsubscribe_noting(joined.peer.id, subscription),
                topic,
            )
        };
        metrics::gauge!("switchboard_subscriptions").decrement(1.0);
        self.send(&Message::Unsubscribed {
            request,
            details: None,
        });
        if let (Some(removed), Some(joined)) = (removed, self.joined()) {
            joined
                .realm
                .meta_unsubscribed(joined.peer.id, subscription, removed);
        }
        match (self.joined(), exact_topic) {
            (Some(joined), Some(topic)) if removed.is_some() => {
                realm.presence_unsubscribed(presence, &joined.peer.authid, &[topic], None)
            }
            _ => drop(presence),
        }
    }

    pub(super) fn publish(
        &mut self,
        request: Id,
        publish_options: &Dict,
        topic: &str,
        payload: Payload,
    ) {
        let acknowledge = options::flag(publish_options, "acknowledge", false);
        if let Err(refusal) = self.check(Action::Publish, topic, MatchPolicy::Exact) {
            // An unacknowledged publish has no request waiting for an answer: clients treat an ERROR
            // for it as a protocol violation, so the refusal is only logged.
            if acknowledge {
                return self.refuse(code::PUBLISH, request, refusal);
            }
            super::note_refusal(self.id(), &refusal);
            return;
        }
        let Some(joined) = self.joined() else { return };
        let peer = &joined.peer;
        let id = crate::wamp::ids::random_id();
        let accepted = joined.realm.publish(Outgoing {
            id,
            topic,
            payload: &payload,
            options: publish_options,
            publisher: Some(peer),
        });
        let appending = match accepted {
            Accepted::Delivered(fanout) => {
                tracing::trace!(
                    session = peer.id,
                    topic,
                    delivered = fanout.delivered,
                    dropped = fanout.dropped,
                    "published"
                );
                if acknowledge {
                    self.send(&Message::Published {
                        request,
                        publication: id,
                    });
                }
                return;
            }
            Accepted::Appending(appending) => appending,
        };
        // Clustered: PUBLISHED only once the event log confirmed the append; a refusal is an ERROR
        // (the log counted and logged it). Without `acknowledge` nobody waits for either.
        if !acknowledge {
            return;
        }
        if let Some(error) = appending.refused() {
            let refusal = Refusal::new(CLUSTER_UNAVAILABLE, error.to_string());
            return self.refuse(code::PUBLISH, request, refusal);
        }
        let outbox = std::sync::Arc::clone(&self.outbox);
        tokio::spawn(async move {
            let answer = match appending.confirmed().await {
                Ok(()) => Message::Published {
                    request,
                    publication: id,
                },
                Err(error) => Message::error(
                    code::PUBLISH,
                    request,
                    CLUSTER_UNAVAILABLE,
                    error.to_string(),
                ),
            };
            outbox.send_message(&answer);
        });
    }
}

/// The Switchboard extensions of SUBSCRIBE.Options, checked: `_filter` (a JSON predicate over the
/// event's kwargs) and `_rate_ms` (conflation window). Both are part of the subscription's identity.
fn wanted(subscribe_options: &Dict, topic: &str, policy: MatchPolicy) -> Result<Wanted, Refusal> {
    let invalid = |message: String| Refusal::new("wamp.error.invalid_argument", message);
    let filter = match subscribe_options.get("_filter") {
        None | Some(serde_json::Value::Null) => None,
        Some(filter) => Some(Filter::parse(filter).map_err(|fault| invalid(fault.to_string()))?),
    };
    let rate = match subscribe_options.get("_rate_ms") {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => {
            let ms = value
                .as_u64()
                .filter(|ms| (MIN_RATE_MS..=MAX_RATE_MS).contains(ms))
                .ok_or_else(|| {
                    invalid(format!(
                        "_rate_ms must be an integer from {MIN_RATE_MS} to {MAX_RATE_MS}, got {value}"
                    ))
                })?;
            Some(Duration::from_millis(ms))
        }
    };
    Ok(Wanted {
        filter,
        rate,
        ..Wanted::plain(topic, policy)
    })
}
