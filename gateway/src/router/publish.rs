//! The one way an event enters a realm, whoever publishes it: a browser's PUBLISH (see
//! `session/pubsub.rs`) and every ingestion transport (`ingest/publish.rs`) call [`Realm::publish`]. Its
//! options are read here once, the same way for both: black/white listing, publisher exclusion and
//! disclosure. History, retention and model views (router/history) hook in here; filters live with the
//! subscriptions (router/broker.rs).
//!
//! Publishing is two steps: [`Realm::publish`] accepts the event, [`Realm::deliver`] hands it to this
//! node's subscribers. On a single node the first calls the second at once. In a cluster (see
//! `crate::cluster`) accepting appends one record to the cluster's event log, and every node calls
//! `deliver` when it consumes that record: the publisher is answered once the log confirmed it.

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::broker::{Audience, Fanout, Publication};
use super::history::Evicted;
use super::peer::Peer;
use super::Realm;
use crate::cluster::Appending;
use crate::wamp::{options, Dict, Id, Payload};

/// An event on its way into a realm.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// The publication id (random, global scope), chosen by the caller so that it can answer before or
    /// after publishing (PUBLISHED, an idempotency key).
    pub id: Id,
    /// The concrete topic.
    pub topic: &'a str,
    /// Arguments as the publisher sent them.
    pub payload: &'a Payload,
    /// PUBLISH.Options, or an ingested event's options: `exclude`, `eligible`, `exclude_authid`,
    /// `eligible_authid`, `exclude_authrole`, `eligible_authrole`, and for sessions `exclude_me`
    /// (default true) and `disclose_me`.
    pub options: &'a Dict,
    /// The publishing session; `None` for ingestion (nobody to exclude or disclose).
    pub publisher: Option<&'a Peer>,
}

/// An event as every node delivers it: its options already read into who may receive it and what is
/// disclosed of its publisher (the same on every node of a cluster, see `cluster/record.rs`).
#[derive(Debug)]
pub struct Delivery<'a> {
    /// The publication id.
    pub id: Id,
    /// The concrete topic.
    pub topic: &'a str,
    /// Its arguments.
    pub payload: &'a Payload,
    /// Black/white lists and the publisher excluded by `exclude_me`.
    pub(crate) audience: Audience,
    /// `publisher`, `publisher_authid` and `publisher_authrole` when the publisher asked `disclose_me`.
    pub publisher_details: Dict,
    /// PUBLISH option `retain`.
    pub retain: bool,
    /// When it was accepted, when that was not now (an event read from the cluster's log): history's
    /// timestamp and the start of its `ttl_s`.
    pub published: Option<SystemTime>,
}

impl<'a> Delivery<'a> {
    /// Reads `event`'s options: publisher exclusion and disclosure, black/white lists, `retain`.
    fn of(event: &Outgoing<'a>) -> Self {
        let publisher = event.publisher;
        let excluded = publisher
            .filter(|_| options::flag(event.options, "exclude_me", true))
            .map(|peer| peer.id);
        let mut publisher_details = Dict::new();
        if let Some(peer) = publisher.filter(|_| options::flag(event.options, "disclose_me", false))
        {
            publisher_details.insert("publisher".into(), Value::from(peer.id));
            publisher_details.insert("publisher_authid".into(), Value::from(peer.authid.clone()));
            publisher_details.insert(
                "publisher_authrole".into(),
                Value::from(peer.authrole.clone()),
            );
        }
        Delivery {
            id: event.id,
            topic: event.topic,
            payload: event.payload,
            audience: Audience::from_options(event.options, excluded),
            publisher_details,
            retain: options::flag(event.options, "retain", false),
            published: None,
        }
    }
}

/// What accepting an event did.
#[derive(Debug)]
#[must_use = "a clustered publish is accepted only once the log confirmed it"]
pub enum Accepted {
    /// A single node: delivered to this node's subscribers already.
    Delivered(Fanout),
    /// In a cluster: being appended to the event log; every node (this one included) delivers it once
    /// it is there. Answer the publisher once it resolves.
    Appending(Appending),
}

impl Accepted {
    /// The fan-out, when delivered on the spot.
    pub fn fanout(&self) -> Option<&Fanout> {
        match self {
            Accepted::Delivered(fanout) => Some(fanout),
            Accepted::Appending(_) => None,
        }
    }
}

impl Realm {
    /// Accepts `event`: on a single node delivers it at once; in a cluster appends it to the event
    /// log (every node delivers it from there). The one way an event enters a realm.
    pub fn publish(&self, event: Outgoing<'_>) -> Accepted {
        let delivery = Delivery::of(&event);
        match self.cluster_log() {
            None => Accepted::Delivered(self.deliver(delivery)),
            Some(log) => Accepted::Appending(log.append(&self.name, &delivery)),
        }
    }

    /// Delivers an accepted event to every subscriber of this node it may reach, recording it in
    /// history, retained events and model views when it is stored; returns the fan-out's counts.
    /// Node-local events (meta events, presence) come here directly.
    pub fn deliver(&self, delivery: Delivery<'_>) -> Fanout {
        let publication = Publication {
            id: delivery.id,
            topic: delivery.topic,
            payload: delivery.payload,
            publisher_details: delivery.publisher_details,
            audience: &delivery.audience,
        };
        let retain = delivery.retain;
        let mut arm = |subscription, rate| self.time_window(subscription, rate);
        if delivery.audience.is_private() || !self.stores(delivery.topic, retain) {
            return self.broker().publish(&publication, &mut arm);
        }
        // Stored, then delivered, under the store's lock: history, model views and every subscriber see
        // stored events in one order (a recovery never finds them reordered), and a subscriber that
        // recovers right after receiving an event finds it in history.
        let mut stored = self.stored();
        let now = Instant::now();
        let published = delivery.published.unwrap_or_else(SystemTime::now);
        let recorded = stored.record_at(
            delivery.id,
            delivery.topic,
            delivery.payload,
            retain,
            published,
            now,
        );
        let fanout = self.broker().publish(&publication, &mut arm);
        let bytes = stored.bytes();
        drop(stored);
        self.note_stored(delivery.topic, &recorded, bytes);
        fanout
    }

    /// Delivers an event of this node only (meta events, presence): never through the cluster's log.
    pub(crate) fn deliver_local(&self, event: Outgoing<'_>) -> Fanout {
        self.deliver(Delivery::of(&event))
    }

    /// Times a conflation window of `subscription`: when it ends, what it held is delivered, and windows
    /// follow each other until one ends empty. Without a runtime (unit tests) nothing is timed.
    fn time_window(&self, subscription: Id, rate: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let realm = self.me();
        runtime.spawn(async move {
            let mut rate = rate;
            loop {
                tokio::time::sleep(rate).await;
                let Some(realm) = realm.upgrade() else { return };
                let (_, again) = realm.broker().end_window(subscription);
                match again {
                    Some(next) => rate = next,
                    None => return,
                }
            }
        });
    }

    /// Metrics and warnings about storing an event, outside the store's lock.
    fn note_stored(&self, topic: &str, recorded: &Evicted, bytes: usize) {
        metrics::gauge!("switchboard_history_bytes", "realm" => self.name.clone())
            .set(bytes as f64);
        if recorded.for_memory > 0 {
            metrics::counter!("switchboard_history_evicted_total", "reason" => "memory")
                .increment(recorded.for_memory as u64);
        }
        if recorded.too_large {
            metrics::counter!("switchboard_history_evicted_total", "reason" => "too_large")
                .increment(1);
        }
        if let Some(fault) = &recorded.view_fault {
            metrics::counter!("switchboard_model_view_incomplete_total").increment(1);
            if let Some(suppressed) = crate::throttle::allow("model_view_incomplete", topic) {
                tracing::warn!(
                    realm = %self.name,
                    topic,
                    fault,
                    suppressed,
                    "model view incomplete: it answers switchboard.error.view_incomplete until the web app resyncs it"
                );
            }
        }
    }
}
