//! Several gateway nodes as one router, through one RabbitMQ stream (DESIGN.md section 8, issue #14).
//!
//! The path of an event in a cluster: a transport or a session hands it to
//! [`Realm::publish`](crate::router::Realm::publish), which assigns nothing new but, instead of
//! delivering, appends one record to the stream ([`log`]); the publisher is answered once RabbitMQ
//! confirmed the append. Every node, the origin included, consumes the stream ([`consume`]) and
//! delivers each record through [`Realm::deliver`](crate::router::Realm::deliver) to its own sessions,
//! recording history, retained events and model views as a single node does. So every node delivers the
//! same publication ids in the same order, and history is the same everywhere.
//!
//! - [`record`]: the log record and its encoding.
//! - [`node`]: a node's name, unique among live nodes (an exclusive queue).
//! - [`link`]: the connection, reconnection with backoff, and catching up at start.
//! - [`nodes`]: node-to-node messages over the node queues: heartbeats, and management calls that
//!   answer for the cluster.
//! - [`rpc`]: RPC across nodes: callee announcements and a call's way between the caller's node and
//!   the callee's (the dealer, `router/dealer/`, decides; this is the wire).
//!
//! Per node, for now: the WAMP meta API (`wamp.session.*`, `wamp.subscription.*` and their events) and
//! presence.

pub mod consume;
pub mod link;
pub mod log;
pub mod node;
pub mod nodes;
pub mod record;
pub mod rpc;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use switchboard_config::ClusterConfig;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use link::LinkState;
pub use log::{AppendError, Appending, Log};

use crate::router::Router;

/// The `[cluster]` settings a node runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The RabbitMQ URL.
    pub amqp_url: String,
    /// The stream queue that is the event log.
    pub stream: String,
    /// This node's name.
    pub node: String,
    /// Stream retention by age, in seconds.
    pub max_age_s: u64,
    /// Stream retention by size, in bytes.
    pub max_bytes: u64,
}

impl From<&ClusterConfig> for Settings {
    fn from(config: &ClusterConfig) -> Self {
        Settings {
            amqp_url: config.amqp_url.clone(),
            stream: config.stream.clone(),
            node: config.node.clone(),
            max_age_s: config.max_age_s,
            max_bytes: config.max_bytes,
        }
    }
}

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// At start: another live node holds this node's name, or the stream exists with other retention
    /// arguments than this node's `[cluster]` (the message says which).
    #[error("{0}")]
    Refused(String),
    /// The link task ended before the node caught up (it was stopped).
    #[error("the cluster link stopped before the node caught up with the event log")]
    Stopped,
}

/// A node's membership of its cluster: the running link to RabbitMQ.
pub struct Cluster {
    state: watch::Receiver<LinkState>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Cluster {
    /// Joins the cluster of `config`: every realm of `router` appends to the log from now on, and the
    /// link connects (retrying until RabbitMQ answers), takes the node's name and consumes the stream.
    pub fn start(config: &ClusterConfig, router: Arc<Router>) -> Cluster {
        let settings = Settings::from(config);
        let (queue, appends) = mpsc::channel(log::MAX_QUEUED_APPENDS);
        let up = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Log::new(settings.node.clone(), queue, Arc::clone(&up)));
        router.join_cluster(&log);
        let (nodes, outbound) = nodes::Nodes::new(&settings.stream, &settings.node);
        router.know_nodes(&nodes);
        let (state, watching) = watch::channel(LinkState::Starting);
        let stop = CancellationToken::new();
        let link = link::Link {
            settings,
            router,
            up,
            state,
            appends,
            nodes,
            outbound,
            stop: stop.clone(),
        };
        let task = tokio::spawn(link.run());
        Cluster {
            state: watching,
            stop,
            task,
        }
    }

    /// Waits until the node has read the stream's retained tail (history and retained events are
    /// rebuilt): only then may it accept sessions. Err when its name is taken by a live node or the
    /// stream was declared with other retention settings.
    pub async fn caught_up(&mut self) -> Result<(), ClusterError> {
        let state = self
            .state
            .wait_for(|state| *state != LinkState::Starting)
            .await
            .map_err(|_| ClusterError::Stopped)?;
        match &*state {
            LinkState::CaughtUp | LinkState::Starting => Ok(()),
            LinkState::Refused(message) => Err(ClusterError::Refused(message.clone())),
        }
    }

    /// Leaves the cluster: the connection closes (RabbitMQ frees the node's name).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
