//! Session and subscription meta events (`wamp.session.on_join`, `on_leave`; `wamp.subscription.on_create`,
//! `on_subscribe`, `on_unsubscribe`, `on_delete`), in the WAMP spec's shapes. They are ordinary events
//! published through [`Realm::publish`] with no publisher, so only sessions whose role may subscribe to
//! the meta topics get them. Nothing is built when no subscription matches the topic.

use std::sync::LazyLock;

use serde_json::{json, Value};

use super::broker::Removed;
use super::peer::Peer;
use super::publish::Outgoing;
use super::Realm;
use crate::wamp::ids::random_id;
use crate::wamp::{Dict, Id, Payload};

pub(crate) const ON_JOIN: &str = "wamp.session.on_join";
pub(crate) const ON_LEAVE: &str = "wamp.session.on_leave";
pub(crate) const ON_CREATE: &str = "wamp.subscription.on_create";
pub(crate) const ON_SUBSCRIBE: &str = "wamp.subscription.on_subscribe";
pub(crate) const ON_UNSUBSCRIBE: &str = "wamp.subscription.on_unsubscribe";
pub(crate) const ON_DELETE: &str = "wamp.subscription.on_delete";

/// Meta events carry no options.
static NO_OPTIONS: LazyLock<Dict> = LazyLock::new(Dict::new);

/// A session as the session meta API describes it (`on_join`, `wamp.session.get`).
pub(crate) fn session_details(peer: &Peer) -> Value {
    let serializer = peer.outbox.serializer().name();
    let transport = peer.outbox.transport();
    json!({
        "session": peer.id,
        "authid": peer.authid,
        "authrole": peer.authrole,
        "authmethod": peer.authmethod,
        "authprovider": "static",
        "transport": { "type": transport, "serializer": serializer },
    })
}

impl Realm {
    /// Publishes a meta event on `topic` with the positional arguments `args` builds, unless no
    /// subscription matches the topic (then nothing is built).
    fn meta_event(&self, topic: &str, args: impl FnOnce() -> Option<Vec<Value>>) {
        if !self.broker().reaches(topic) {
            return;
        }
        let Some(args) = args() else { return };
        let payload = Payload::Args(args);
        self.deliver_local(Outgoing {
            id: random_id(),
            topic,
            payload: &payload,
            options: &NO_OPTIONS,
            publisher: None,
        });
    }

    /// `on_join` for a session whose WELCOME is queued.
    pub(crate) fn meta_joined(&self, peer: &Peer) {
        self.meta_event(ON_JOIN, || Some(vec![session_details(peer)]));
    }

    /// `on_unsubscribe` and `on_delete` for the subscriptions a leaving session lost, then `on_leave`.
    pub(crate) fn meta_left(&self, peer: &Peer, removed: &[(Id, Removed)]) {
        for (subscription, removed) in removed {
            self.meta_unsubscribed(peer.id, *subscription, *removed);
        }
        self.meta_event(ON_LEAVE, || {
            Some(vec![
                Value::from(peer.id),
                Value::from(peer.authid.clone()),
                Value::from(peer.authrole.clone()),
            ])
        });
    }

    /// `on_create` (when `created`) and `on_subscribe` for `session` on `subscription` to `topic`.
    pub(crate) fn meta_subscribed(
        &self,
        session: Id,
        subscription: Id,
        topic: &str,
        created: bool,
    ) {
        if super::broker::is_meta(topic) {
            return;
        }
        if created {
            self.meta_event(ON_CREATE, || {
                let details = self.broker().details(subscription)?;
                Some(vec![Value::from(session), details])
            });
        }
        self.meta_event(ON_SUBSCRIBE, || {
            Some(vec![Value::from(session), Value::from(subscription)])
        });
    }

    /// `on_unsubscribe` and (when it was the last subscriber) `on_delete`.
    pub(crate) fn meta_unsubscribed(&self, session: Id, subscription: Id, removed: Removed) {
        if removed.meta {
            return;
        }
        let args = || Some(vec![Value::from(session), Value::from(subscription)]);
        self.meta_event(ON_UNSUBSCRIBE, args);
        if removed.deleted {
            self.meta_event(ON_DELETE, args);
        }
    }
}
