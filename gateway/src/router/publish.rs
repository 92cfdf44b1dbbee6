//! The one way an event enters a realm, whoever publishes it: a browser's PUBLISH (see
//! `session/pubsub.rs`) and every ingestion transport (`ingest/publish.rs`) call [`Realm::publish`]. Its
//! options are read here once, the same way for both: black/white listing, publisher exclusion and
//! disclosure. History, retention and model views (router/history) hook in here; filters live with the
//! subscriptions (router/broker.rs). The cluster's event log hooks in at this one place.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::broker::{Audience, Fanout, Publication};
use super::history::Evicted;
use super::peer::Peer;
use super::Realm;
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

impl Realm {
    /// Delivers `event` to every subscriber it may reach; returns the fan-out's counts.
    pub fn publish(&self, event: Outgoing<'_>) -> Fanout {
        let publisher = event.publisher;
        let excluded = publisher
            .filter(|_| options::flag(event.options, "exclude_me", true))
            .map(|peer| peer.id);
        let audience = Audience::from_options(event.options, excluded);
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
        let publication = Publication {
            id: event.id,
            topic: event.topic,
            payload: event.payload,
            publisher_details,
            audience: &audience,
        };
        let retain = options::flag(event.options, "retain", false);
        let mut arm = |subscription, rate| self.time_window(subscription, rate);
        if audience.is_private() || !self.stores(event.topic, retain) {
            return self.broker().publish(&publication, &mut arm);
        }
        // Stored, then delivered, under the store's lock: history, model views and every subscriber see
        // stored events in one order (a recovery never finds them reordered), and a subscriber that
        // recovers right after receiving an event finds it in history.
        let mut stored = self.stored();
        let recorded = stored.record(event.id, event.topic, event.payload, retain, Instant::now());
        let fanout = self.broker().publish(&publication, &mut arm);
        let bytes = stored.bytes();
        drop(stored);
        self.note_stored(event.topic, &recorded, bytes);
        fanout
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
