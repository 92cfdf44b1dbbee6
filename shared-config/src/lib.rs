//! The one configuration file (`switchboard.toml`) that the gateway and every emitter read, so that they
//! agree on addresses, realms and secrets. See DESIGN.md section 6.
//!
//! Loading is strict: unknown keys, bad addresses and bad URI patterns are errors that name the file and
//! line. Every key can be overridden from the environment as `SWITCHBOARD__SECTION__KEY`.

mod default;
mod env;
mod error;
mod load;
mod secret;
mod spans;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use default::{DEFAULT_ANONYMOUS_ROLE, DEFAULT_REALM};
pub use env::ENV_PREFIX;
pub use error::ConfigError;
pub use switchboard_wire::uri;
pub use uri::MatchPolicy;
pub use validate::{
    check_node_name, MAX_BODY_BYTES, MIN_BODY_BYTES, MIN_HEADER_TIMEOUT_MS,
    MIN_LONGPOLL_REQUEST_TIMEOUT_MS, MIN_MESSAGE_BYTES,
};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The WebSocket/HTTP listener and router limits.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// Shared secret for ingestion signatures and tickets.
    #[serde(default)]
    pub security: SecurityConfig,
    /// Ingestion transports (JSON-RPC, ZeroMQ, AMQP).
    #[serde(default)]
    pub ingest: IngestConfig,
    /// What an emitter uses to reach the gateway.
    #[serde(default)]
    pub emitter: EmitterConfig,
    /// WAMP realms; a HELLO naming any other realm is refused.
    #[serde(default)]
    pub realms: Vec<RealmConfig>,
    /// Clustering through a RabbitMQ stream (DESIGN.md section 8); absent, the gateway runs alone.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
}

/// `[gateway]`: the listener and the per-session limits that keep one peer from hurting the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address of the HTTP listener serving `/ws`, `/healthz` and the js-client.
    pub listen: SocketAddr,
    /// Largest WAMP message accepted from a peer, in bytes.
    pub max_message_bytes: usize,
    /// Most bytes a session's outbound queue may hold (messages queued, not yet written to its socket).
    /// A session whose queue would pass it is closed with `switchboard.error.slow_consumer`: nothing is
    /// ever dropped from an open session.
    pub outbound_queue_bytes: usize,
    /// Most messages a session's outbound queue may hold (a secondary guard beside the byte bound).
    pub outbound_queue: usize,
    /// How long a session's outbound queue may stay above its low-water mark (a quarter of
    /// `outbound_queue_bytes`) before the session is closed as a slow consumer, in milliseconds.
    pub slow_consumer_ms: u64,
    /// How long a HELLO may take to arrive after the WebSocket opens, in milliseconds.
    pub hello_timeout_ms: u64,
    /// Most subscriptions one session may hold (exact and pattern together).
    pub max_subscriptions: usize,
    /// Most pattern (prefix or wildcard) subscriptions one session may hold: each costs a match on
    /// every publish.
    pub max_pattern_subscriptions: usize,
    /// Most requests of one session awaiting their answer (calls in flight); past it a CALL is refused.
    pub max_pending_requests: usize,
    /// Most sessions joined at once with the same authenticated authid (anonymous sessions each have
    /// their own authid).
    pub max_sessions_per_authid: usize,
    /// Longest URI (topic, procedure, error, realm) accepted from a peer, in bytes.
    pub max_uri_bytes: usize,
    /// How long a client may take to send a complete HTTP request header (also the idle keep-alive
    /// limit), in milliseconds: a connection that trickles half a request is closed after it, so it cannot
    /// hold a file descriptor (or shutdown) forever.
    pub header_timeout_ms: u64,
    /// Most HTTP/WebSocket connections served at once; past it new connections get HTTP 503, so a flood
    /// cannot exhaust the file descriptors that running sessions need.
    pub max_connections: usize,
    /// How long shutdown waits for sessions to say GOODBYE and connections to close before the process
    /// exits anyway, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Most bytes of stored events (history and retained events together) per realm; past it the oldest
    /// stored events are evicted first, and recovery from before them answers `history_gap`.
    pub history_max_bytes: usize,
    /// How long an HTTP long-poll `receive` is held open waiting for a message before it is answered
    /// 204 (no content), in milliseconds. Below Autobahn|JS's own request timeout (12 s), which treats a
    /// request it gives up on as a lost transport.
    pub longpoll_request_timeout_ms: u64,
    /// How long an HTTP long-poll transport may go without any request before it is closed and its
    /// session leaves, in milliseconds (a client that went away sends no close). Longer than
    /// `longpoll_request_timeout_ms`, so that a client always polling is never closed.
    pub longpoll_session_timeout_ms: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_message_bytes: 1024 * 1024,
            outbound_queue_bytes: 4 * 1024 * 1024,
            outbound_queue: 65_536,
            slow_consumer_ms: 5000,
            hello_timeout_ms: 10_000,
            max_subscriptions: 1024,
            max_pattern_subscriptions: 64,
            max_pending_requests: 1024,
            max_sessions_per_authid: 100,
            max_uri_bytes: 512,
            header_timeout_ms: 10_000,
            max_connections: 10_000,
            shutdown_grace_ms: 3_000,
            history_max_bytes: 64 * 1024 * 1024,
            longpoll_request_timeout_ms: 10_000,
            longpoll_session_timeout_ms: 30_000,
        }
    }
}

/// `[security]`: the HMAC key shared by the gateway and the web app's emitters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The secret itself.
    pub secret: Option<String>,
    /// A file holding the secret (trailing newline ignored); an alternative to `secret`.
    pub secret_file: Option<PathBuf>,
    /// Oldest accepted signature timestamp, in seconds from now.
    pub max_skew_s: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            secret: None,
            secret_file: None,
            max_skew_s: 300,
        }
    }
}

/// `[ingest]`: the three ways a web app publishes into the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// `[ingest.jsonrpc]`; absent disables JSON-RPC ingestion.
    pub jsonrpc: Option<JsonRpcConfig>,
    /// `[ingest.zmq]`; absent disables ZeroMQ ingestion.
    pub zmq: Option<ZmqConfig>,
    /// `[ingest.amqp]`; absent disables AMQP ingestion.
    pub amqp: Option<AmqpConfig>,
}

/// `[ingest.jsonrpc]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonRpcConfig {
    /// Address of the JSON-RPC 2.0 HTTP listener.
    pub listen: SocketAddr,
    /// Largest request body, in bytes: a bigger one is answered 413 before it is read, so one request
    /// costs the gateway at most this much memory (a full `publish_batch` needs a few MiB).
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive in full, in milliseconds (HTTP 408 past it), so that
    /// a client sending slowly cannot hold its share of the body budget or its connection for long.
    pub body_timeout_ms: u64,
}

/// Default `[ingest.jsonrpc] max_body_bytes`: 8 MiB.
pub const DEFAULT_JSONRPC_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

impl Default for JsonRpcConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            max_body_bytes: DEFAULT_JSONRPC_MAX_BODY_BYTES,
            body_timeout_ms: 30_000,
        }
    }
}

/// `[ingest.zmq]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZmqConfig {
    /// Endpoint the gateway binds its PULL socket to.
    pub endpoint: String,
}

impl Default for ZmqConfig {
    fn default() -> Self {
        Self {
            endpoint: "tcp://127.0.0.1:5560".to_string(),
        }
    }
}

/// `[ingest.amqp]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpConfig {
    /// Broker URL.
    pub url: String,
    /// Topic exchange events are published to (routing key = event topic).
    pub exchange: String,
    /// Queue the gateway consumes.
    pub queue: String,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
            exchange: "switchboard.events".to_string(),
            queue: "switchboard.ingest".to_string(),
        }
    }
}

/// Which transport an emitter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EmitterTransport {
    /// JSON-RPC 2.0 over HTTP.
    #[default]
    Jsonrpc,
    /// ZeroMQ PUSH.
    Zmq,
    /// AMQP 0-9-1 (RabbitMQ).
    Amqp,
}

/// `[emitter]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EmitterConfig {
    /// The transport emitters use.
    pub transport: EmitterTransport,
}

/// `[[realms]]`: a WAMP routing namespace with its roles and users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealmConfig {
    /// The realm URI clients name in HELLO.
    pub name: String,
    /// Role granted to sessions that do not authenticate; absent: every session must authenticate.
    #[serde(default)]
    pub anonymous_role: Option<String>,
    /// Roles and what each may do.
    #[serde(default)]
    pub roles: Vec<RoleConfig>,
    /// Static WAMP-CRA users.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Topics whose recent events are kept for recovery (`wamp.subscription.get_events`).
    #[serde(default)]
    pub history: Vec<HistoryConfig>,
    /// Model views: the latest row per pk of a model, kept from its model events
    /// (`switchboard.model.rows`).
    #[serde(default)]
    pub models: Vec<ModelViewConfig>,
}

/// `[[realms.history]]`: which topics keep their recent events, how many and for how long. A topic
/// matched by several entries uses the most specific one (exact, then the longest pattern).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// The topic or topic pattern.
    pub uri: String,
    /// How `uri` matches.
    #[serde(rename = "match", default)]
    pub match_policy: MatchPolicy,
    /// Most events kept per topic (the newest).
    #[serde(default = "HistoryConfig::default_limit")]
    pub limit: usize,
    /// Longest time an event is kept, in seconds.
    #[serde(default = "HistoryConfig::default_ttl_s")]
    pub ttl_s: u64,
}

impl HistoryConfig {
    /// Events kept per topic when `limit` is not given.
    pub const DEFAULT_LIMIT: usize = 1000;
    /// Seconds an event is kept when `ttl_s` is not given.
    pub const DEFAULT_TTL_S: u64 = 3600;
    /// Most events per topic a config may ask for.
    pub const MAX_LIMIT: usize = 1_000_000;

    fn default_limit() -> usize {
        Self::DEFAULT_LIMIT
    }

    fn default_ttl_s() -> u64 {
        Self::DEFAULT_TTL_S
    }
}

/// `[[realms.models]]`: a model view, the latest row per pk of model `name` (e.g. `shop.order`) kept from
/// the model events on its topic, so that a page can load its first rows from the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelViewConfig {
    /// The model name as model events carry it (`app.model`); its topic is the emitter's model prefix
    /// (`models.`) followed by it.
    pub name: String,
    /// Most rows kept; past it the view answers `view_incomplete` (counted and logged) until the web
    /// app resyncs it within the bound.
    #[serde(default = "ModelViewConfig::default_max_rows")]
    pub max_rows: usize,
    /// Most bytes of rows kept (as JSON); past it the view answers `view_incomplete` until the web app
    /// resyncs it within the bound.
    #[serde(default = "ModelViewConfig::default_max_bytes")]
    pub max_bytes: usize,
}

impl ModelViewConfig {
    /// Rows kept when `max_rows` is not given.
    pub const DEFAULT_MAX_ROWS: usize = 10_000;
    /// Most rows a config may ask for.
    pub const MAX_ROWS: usize = 1_000_000;

    /// Bytes of rows kept when `max_bytes` is not given.
    pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
    /// Fewest bytes a config may give a view.
    pub const MIN_BYTES: usize = 64 * 1024;

    fn default_max_rows() -> usize {
        Self::DEFAULT_MAX_ROWS
    }

    fn default_max_bytes() -> usize {
        Self::DEFAULT_MAX_BYTES
    }
}

/// `[[realms.roles]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Role name, as granted to sessions (authrole).
    pub name: String,
    /// What the role may do; anything not allowed here is denied.
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

/// One permission rule: a URI pattern and the actions it allows (Crossbar's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    /// The URI or URI pattern.
    pub uri: String,
    /// How `uri` matches.
    #[serde(rename = "match", default)]
    pub match_policy: MatchPolicy,
    /// The allowed actions.
    #[serde(default)]
    pub allow: Allow,
}

/// The four WAMP actions a permission can allow; each defaults to denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Allow {
    /// SUBSCRIBE.
    pub subscribe: bool,
    /// PUBLISH.
    pub publish: bool,
    /// CALL.
    pub call: bool,
    /// REGISTER.
    pub register: bool,
}

/// `[[realms.users]]`: a static WAMP-CRA user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user's authid.
    pub authid: String,
    /// The WAMP-CRA secret.
    pub secret: String,
    /// The role granted after authentication.
    pub role: String,
    /// PBKDF2 salt for salted WAMP-CRA.
    #[serde(default)]
    pub salt: Option<String>,
    /// PBKDF2 iterations (salted WAMP-CRA).
    #[serde(default)]
    pub iterations: Option<u32>,
    /// PBKDF2 derived key length (salted WAMP-CRA).
    #[serde(default)]
    pub keylen: Option<u32>,
}

/// `[cluster]`: several gateway nodes act as one router. Every accepted event is appended to one
/// RabbitMQ stream queue, and every node delivers what it consumes from it (DESIGN.md section 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// RabbitMQ URL the nodes meet through (`amqp://`, RabbitMQ 3.9 or later for streams).
    pub amqp_url: String,
    /// Name of the stream queue that is the cluster's event log; every node of a cluster names the same.
    #[serde(default = "ClusterConfig::default_stream")]
    pub stream: String,
    /// This node's name, unique among the live nodes of the cluster (a second live node with the same
    /// name is refused at start).
    pub node: String,
    /// Longest time the stream keeps an event, in seconds (what a restarting node can rebuild history from).
    #[serde(default = "ClusterConfig::default_max_age_s")]
    pub max_age_s: u64,
    /// Most bytes the stream keeps on the broker's disk before dropping its oldest segments.
    #[serde(default = "ClusterConfig::default_max_bytes")]
    pub max_bytes: u64,
}

impl ClusterConfig {
    /// Default `stream`.
    pub const DEFAULT_STREAM: &'static str = "switchboard.events";
    /// Default `max_age_s`: one day, longer than any `[[realms.history]]` default `ttl_s` (one hour), so
    /// that a restarted cluster finds every event its history rules would still keep.
    pub const DEFAULT_MAX_AGE_S: u64 = 86_400;
    /// Default `max_bytes`: 1 GiB, a day of 10 events/s of 1 KiB with room to spare, small enough for
    /// any broker disk.
    pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

    fn default_stream() -> String {
        Self::DEFAULT_STREAM.to_string()
    }

    fn default_max_age_s() -> u64 {
        Self::DEFAULT_MAX_AGE_S
    }

    fn default_max_bytes() -> u64 {
        Self::DEFAULT_MAX_BYTES
    }
}
