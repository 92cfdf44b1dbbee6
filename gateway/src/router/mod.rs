//! The router: realms, sessions, the broker and the dealer. It sees typed WAMP messages and outboxes,
//! never sockets: transports feed it through [`session::Session`].

pub mod authorize;
pub mod broker;
pub mod dealer;
pub mod outbox;
pub mod peer;
pub mod realm;
pub mod session;
mod welcome;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_config::Config;
use switchboard_emitter::TicketKey;

pub use outbox::{Closing, Outbox, OutboxReceiver};
pub use realm::Realm;
pub use session::Session;

/// A refused request: the WAMP error URI and a message for the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `wamp.error.*` or `switchboard.error.*`.
    pub uri: &'static str,
    /// What went wrong, for a human.
    pub message: String,
}

impl Refusal {
    /// A refusal with its URI and message.
    pub fn new(uri: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            uri,
            message: message.into(),
        }
    }
}

/// Per-session limits from `[gateway]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted message, in bytes.
    pub max_message_bytes: usize,
    /// Outbound queue capacity, in messages.
    pub outbound_queue: usize,
    /// How long an outbound queue may stay full.
    pub slow_consumer: Duration,
    /// How long a connection may wait before sending HELLO.
    pub hello_timeout: Duration,
}

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
}

impl Router {
    /// Builds the router from the configuration.
    pub fn new(config: &Config) -> Self {
        let gateway = &config.gateway;
        Router {
            realms: config
                .realms
                .iter()
                .map(|r| (r.name.clone(), Arc::new(Realm::from_config(r))))
                .collect(),
            default_realm: config.realms.first().map(|r| r.name.clone()),
            // An unreadable secret_file was already reported by whoever resolved the secret to start.
            tickets: config
                .security
                .resolve_secret()
                .ok()
                .flatten()
                .map(TicketKey::new),
            limits: Limits {
                max_message_bytes: gateway.max_message_bytes,
                outbound_queue: gateway.outbound_queue,
                slow_consumer: Duration::from_millis(gateway.slow_consumer_ms),
                hello_timeout: Duration::from_millis(gateway.hello_timeout_ms),
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

    /// Number of joined sessions across realms.
    pub fn session_count(&self) -> usize {
        self.realms.values().map(|r| r.session_count()).sum()
    }

    /// Every realm (for management calls that span realms).
    pub fn realms(&self) -> impl Iterator<Item = &Arc<Realm>> {
        self.realms.values()
    }
}
