//! The one router call all ingestion transports share: a validated [`Event`] becomes a WAMP publication
//! in its realm, with its options read as a WAMP PUBLISH's black/white lists. Ingestion has no publisher
//! session, so nobody is excluded as "the publisher". Events with an idempotency key seen recently are
//! answered with the first publication's id and not published twice (see [`super::dedup`]).
//!
//! In a cluster an event is accepted only once the cluster's event log confirmed it: [`Publisher::accept`]
//! hands it over and [`Pending::confirmed`] waits for the log (a single node answers at once), so that
//! transports acknowledge only what the cluster holds and refuse, explicitly, what it could not take.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use switchboard_wire::Event;

use super::dedup::RecentKeys;
use crate::cluster::{AppendError, Appending};
use crate::router::publish::{Accepted, Outgoing};
use crate::router::{Realm, Router};
use crate::wamp::ids::random_id;
use crate::wamp::{Dict, Id, Payload};

/// Why an event could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The event names a realm the gateway does not serve.
    #[error("realm: no realm named {0:?}")]
    UnknownRealm(String),
    /// The event names no realm and the gateway has none configured.
    #[error("realm: the gateway has no realm configured")]
    NoRealm,
    /// The event is larger than a WAMP message may be (`[gateway].max_message_bytes`): subscribers
    /// would refuse or choke on it.
    #[error("event: {size} bytes exceeds the gateway's max_message_bytes of {limit}")]
    TooLarge {
        /// The event's size as JSON.
        size: usize,
        /// `[gateway].max_message_bytes`.
        limit: usize,
    },
    /// Clustered: the cluster's event log could not take the event (RabbitMQ away or overloaded, the
    /// append not confirmed). Nothing was delivered; the sender may retry.
    #[error("cluster: {0}")]
    Cluster(AppendError),
}

impl PublishError {
    /// The event field at fault, for a JSON-RPC `-32602` answer.
    pub fn field(&self) -> &'static str {
        match self {
            PublishError::UnknownRealm(_) | PublishError::NoRealm => "realm",
            PublishError::TooLarge { .. } => "event",
            PublishError::Cluster(_) => "cluster",
        }
    }
}

/// An accepted event on its way: in a cluster, waiting for the event log's confirmation.
#[derive(Debug)]
#[must_use = "the event is accepted only once confirmed"]
pub struct Pending {
    id: Id,
    appending: Option<Appending>,
    /// The idempotency key claimed for it, released when the log refuses the event (a retry must not
    /// be answered as a duplicate of an event nobody received).
    claimed: Option<(String, String)>,
    recent_keys: Arc<Mutex<RecentKeys>>,
}

impl Pending {
    /// The publication id, once the event is accepted (at once on a single node).
    pub async fn confirmed(self) -> Result<Id, PublishError> {
        let Some(appending) = self.appending else {
            return Ok(self.id);
        };
        match appending.confirmed().await {
            Ok(()) => Ok(self.id),
            Err(error) => {
                if let Some((realm, key)) = &self.claimed {
                    let mut keys = self.recent_keys.lock().unwrap_or_else(|e| e.into_inner());
                    keys.forget(realm, key, self.id);
                }
                Err(PublishError::Cluster(error))
            }
        }
    }
}

/// Publishes ingested events into the router.
#[derive(Debug, Clone)]
pub struct Publisher {
    router: Arc<Router>,
    recent_keys: Arc<Mutex<RecentKeys>>,
}

impl Publisher {
    /// A publisher into `router`.
    pub fn new(router: Arc<Router>) -> Self {
        Publisher {
            router,
            recent_keys: Arc::default(),
        }
    }

    /// The router, for management calls.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// The realm an event goes to: the one it names, else the first configured realm.
    pub fn realm_for(&self, event: &Event) -> Result<&Arc<Realm>, PublishError> {
        match &event.realm {
            Some(name) => self
                .router
                .realm(name)
                .ok_or_else(|| PublishError::UnknownRealm(name.clone())),
            None => self.router.default_realm().ok_or(PublishError::NoRealm),
        }
    }

    /// Publishes `event` and waits until it is accepted (see [`Publisher::accept`]); returns the
    /// publication id.
    pub async fn publish(&self, event: &Event) -> Result<Id, PublishError> {
        self.accept(event)?.confirmed().await
    }

    /// Hands `event` to the broker of its realm. Once the [`Pending`] is confirmed, every matching
    /// subscriber's outbox on this node has the event (or was found full), or, in a cluster, the
    /// event log holds it: transports may acknowledge then.
    pub fn accept(&self, event: &Event) -> Result<Pending, PublishError> {
        let realm = self.realm_for(event)?;
        let limit = self.router.limits.max_message_bytes;
        let size = event.json_len();
        if size > limit {
            return Err(PublishError::TooLarge { size, limit });
        }
        let id = random_id();
        if let Some(key) = &event.id {
            // Claim the key with this publication's id before publishing (and outside the broker's
            // lock): a copy racing in on another transport then gets the same id and is not published.
            let mut keys = self.recent_keys.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if let Some(publication) = keys.get(&realm.name, key, now) {
                tracing::debug!(realm = %realm.name, key, publication, "duplicate event not published again");
                return Ok(self.pending(publication, None, None));
            }
            keys.insert(&realm.name, key, id, now);
        }
        let options: Dict = event.options.to_dict();
        let payload = Payload::from_parts(event.args.clone(), event.kwargs.clone());
        let accepted = realm.publish(Outgoing {
            id,
            topic: &event.topic,
            payload: &payload,
            options: &options,
            publisher: None,
        });
        match accepted {
            Accepted::Delivered(fanout) => {
                tracing::debug!(
                    realm = %realm.name,
                    topic = %event.topic,
                    publication = id,
                    delivered = fanout.delivered,
                    dropped = fanout.dropped,
                    "ingested event published"
                );
                Ok(self.pending(id, None, None))
            }
            Accepted::Appending(appending) => {
                let claimed = event.id.clone().map(|key| (realm.name.clone(), key));
                Ok(self.pending(id, Some(appending), claimed))
            }
        }
    }

    fn pending(
        &self,
        id: Id,
        appending: Option<Appending>,
        claimed: Option<(String, String)>,
    ) -> Pending {
        Pending {
            id,
            appending,
            claimed,
            recent_keys: Arc::clone(&self.recent_keys),
        }
    }
}
