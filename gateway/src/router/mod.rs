//! The router: realms, sessions, the broker and the dealer. It sees typed WAMP messages and outboxes,
//! never sockets: transports feed it through [`session::Session`].

pub mod admin;
pub mod authorize;
pub mod broker;
mod coverage;
pub mod dealer;
pub mod filter;
pub(crate) mod history;
pub(crate) mod meta;
pub mod outbox;
pub mod peer;
pub(crate) mod presence;
pub mod publish;
pub mod realm;
pub mod session;
mod welcome;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_config::Config;
use switchboard_wire::TicketKey;

pub use crate::wamp::Refusal;
pub use outbox::{Closing, Outbox, OutboxReceiver, QueueLimits};
pub use realm::Realm;
pub use session::Session;

/// Per-session limits from `[gateway]`: what keeps one peer from hurting the others.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted message, in bytes.
    pub max_message_bytes: usize,
    /// Bounds of each session's outbound queue.
    pub queue: QueueLimits,
    /// How long a connection may wait before sending HELLO.
    pub hello_timeout: Duration,
    /// Most subscriptions per session.
    pub max_subscriptions: usize,
    /// Most pattern subscriptions per session.
    pub max_pattern_subscriptions: usize,
    /// Most calls of one session in flight.
    pub max_pending_requests: usize,
    /// Most sessions joined at once with one authenticated authid.
    pub max_sessions_per_authid: usize,
    /// Longest URI accepted from a peer, in bytes.
    pub max_uri_bytes: usize,
}

/// ERROR (or ABORT) URI when a request would pass one of the [`Limits`].
pub const LIMIT_EXCEEDED: &str = "switchboard.error.limit_exceeded";

/// ERROR URI of an acknowledged PUBLISH that the cluster's event log could not take (RabbitMQ away or
/// overloaded, the append not confirmed): nothing was delivered, the publisher may retry.
pub const CLUSTER_UNAVAILABLE: &str = "switchboard.error.cluster_unavailable";

/// All realms of the gateway.
#[derive(Debug)]
pub struct Router {
    realms: HashMap<String, Arc<Realm>>,
    /// The first configured realm: where ingested events without a `realm` go.
    default_realm: Option<String>,
    /// Limits every session gets.
    pub limits: Limits,
    /// Checks connection tickets (the `[security]` secret); None disables ticket authentication.
    pub tickets: Option<TicketKey>,
    /// In a cluster: the other nodes, asked by management calls.
    nodes: std::sync::OnceLock<Arc<crate::cluster::nodes::Nodes>>,
}

impl Router {
    /// Builds the router from the configuration.
    pub fn new(config: &Config) -> Self {
        let gateway = &config.gateway;
        Router {
            realms: config
                .realms
                .iter()
                .map(|r| {
                    let realm = Realm::from_config(r, gateway.history_max_bytes);
                    (r.name.clone(), realm)
                })
                .collect(),
            default_realm: config.realms.first().map(|r| r.name.clone()),
            // An unreadable secret_file was already reported by whoever resolved the secret to start.
            tickets: config
                .security
                .resolve_secret()
                .ok()
                .flatten()
                .map(TicketKey::new),
            nodes: std::sync::OnceLock::new(),
            limits: Limits {
                max_message_bytes: gateway.max_message_bytes,
                queue: QueueLimits {
                    max_bytes: gateway.outbound_queue_bytes,
                    max_frames: gateway.outbound_queue,
                    slow_consumer: Duration::from_millis(gateway.slow_consumer_ms),
                },
                hello_timeout: Duration::from_millis(gateway.hello_timeout_ms),
                max_subscriptions: gateway.max_subscriptions,
                max_pattern_subscriptions: gateway.max_pattern_subscriptions,
                max_pending_requests: gateway.max_pending_requests,
                max_sessions_per_authid: gateway.max_sessions_per_authid,
                max_uri_bytes: gateway.max_uri_bytes,
            },
        }
    }

    /// The realm named `name`.
    pub fn realm(&self, name: &str) -> Option<&Arc<Realm>> {
        self.realms.get(name)
    }

    /// The first configured realm, where ingestion publishes events that name no realm.
    pub fn default_realm(&self) -> Option<&Arc<Realm>> {
        self.default_realm
            .as_deref()
            .and_then(|name| self.realm(name))
    }

    /// Makes every realm publish through the cluster's event log (see `crate::cluster`).
    pub(crate) fn join_cluster(&self, log: &Arc<crate::cluster::Log>) {
        for realm in self.realms.values() {
            realm.join_cluster(log);
        }
    }

    /// In a cluster, management calls ask every node through `nodes`, and calls reach callees on
    /// other nodes through it.
    pub(crate) fn know_nodes(&self, nodes: &Arc<crate::cluster::nodes::Nodes>) {
        let _ = self.nodes.set(Arc::clone(nodes));
        for realm in self.realms.values() {
            realm.dealer().join_cluster(nodes, &realm.name);
        }
    }

    /// The other nodes of the cluster (None on a single node).
    pub fn cluster_nodes(&self) -> Option<&Arc<crate::cluster::nodes::Nodes>> {
        self.nodes.get()
    }

    /// True when the node is part of a cluster (its realms publish through the event log).
    pub fn is_clustered(&self) -> bool {
        self.realms
            .values()
            .any(|realm| realm.cluster_log().is_some())
    }

    /// Every realm (for management calls that span realms).
    pub fn realms(&self) -> impl Iterator<Item = &Arc<Realm>> {
        self.realms.values()
    }
}
