//! SUBSCRIBE, UNSUBSCRIBE and PUBLISH for a joined session.

use serde_json::Value;
use switchboard_config::MatchPolicy;

use super::super::authorize::Action;
use super::super::broker::{Audience, Publication};
use super::Session;
use crate::wamp::{code, options, Dict, Id, Message, Payload};

impl Session {
    pub(super) fn subscribe(&mut self, request: Id, subscribe_options: &Dict, topic: String) {
        let policy = options::text(subscribe_options, "match")
            .and_then(MatchPolicy::parse)
            .unwrap_or_default();
        if let Err(refusal) = self.check(Action::Subscribe, &topic, policy) {
            return self.refuse(code::SUBSCRIBE, request, refusal);
        }
        let Some(joined) = self.joined_mut() else {
            return;
        };
        let subscription = joined
            .realm
            .broker_mut()
            .subscribe(&joined.peer, &topic, policy);
        joined.subscriptions.insert(subscription);
        tracing::debug!(session = joined.peer.id, %topic, policy = policy.as_str(), subscription, "subscribed");
        self.send(&Message::Subscribed {
            request,
            subscription,
        });
    }

    pub(super) fn unsubscribe(&mut self, request: Id, subscription: Id) {
        let Some(joined) = self.joined_mut() else {
            return;
        };
        if !joined.subscriptions.remove(&subscription) {
            let refusal = super::Refusal::new(
                "wamp.error.no_such_subscription",
                format!("this session has no subscription {subscription}"),
            );
            return self.refuse(code::UNSUBSCRIBE, request, refusal);
        }
        joined
            .realm
            .broker_mut()
            .unsubscribe(joined.peer.id, subscription);
        self.send(&Message::Unsubscribed {
            request,
            details: None,
        });
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
            tracing::warn!(session = self.id(), uri = refusal.uri, message = %refusal.message, "publish refused");
            return;
        }
        let Some(joined) = self.joined() else { return };
        let peer = &joined.peer;
        let exclude_me = options::flag(publish_options, "exclude_me", true);
        let audience = Audience::from_options(publish_options, exclude_me.then_some(peer.id));
        let mut publisher_details = Dict::new();
        if options::flag(publish_options, "disclose_me", false) {
            publisher_details.insert("publisher".into(), Value::from(peer.id));
            publisher_details.insert("publisher_authid".into(), Value::from(peer.authid.clone()));
            publisher_details.insert(
                "publisher_authrole".into(),
                Value::from(peer.authrole.clone()),
            );
        }
        let publication = Publication {
            id: crate::wamp::ids::random_id(),
            topic,
            payload: &payload,
            publisher_details,
            audience: &audience,
        };
        let fanout = joined.realm.broker().publish(&publication);
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
                publication: publication.id,
            });
        }
    }
}
