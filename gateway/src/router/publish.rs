//! The one way an event enters a realm, whoever publishes it: a browser's PUBLISH (see
//! `session/pubsub.rs`) and every ingestion transport (`ingest/publish.rs`) call [`Realm::publish`]. Its
//! options are read here once, the same way for both: black/white listing, publisher exclusion and
//! disclosure. History, retention, filters and the cluster's event log hook in at this one place.

use std::time::Instant;

use serde_json::Value;

use super::broker::{Audience, Fanout, Publication};
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
        self.store(&event, &audience);
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
        self.broker().publish(&publication)
    }

    /// Keeps the event in history (when its topic has an entry) and as the topic's retained event (when
    /// published with `retain: true`), unless it is private. Stored before it is delivered, so that a
    /// subscriber that recovers right after receiving it finds it in history.
    fn store(&self, event: &Outgoing<'_>, audience: &Audience) {
        let retain = options::flag(event.options, "retain", false);
        if (!retain && self.history_rules().keep(event.topic).is_none()) || audience.is_private() {
            return;
        }
        let (evicted, bytes) = {
            let mut stored = self.stored();
            let evicted =
                stored.record(event.id, event.topic, event.payload, retain, Instant::now());
            (evicted, stored.bytes())
        };
        metrics::gauge!("switchboard_history_bytes", "realm" => self.name.clone())
            .set(bytes as f64);
        if evicted.for_memory > 0 {
            metrics::counter!("switchboard_history_evicted_total", "reason" => "memory")
                .increment(evicted.for_memory as u64);
        }
    }
}
