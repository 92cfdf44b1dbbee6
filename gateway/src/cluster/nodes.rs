//! Node-to-node messages: heartbeats, management calls (`session_count`, `sessions`, `subscribers`,
//! `kick`) that answer for the whole cluster, and RPC across nodes (the wire is in [`rpc`](super::rpc)).
//!
//! Every node binds its exclusive queue `<stream>.node.<name>` (see [`node`](super::node)) to the
//! fanout exchange `<stream>.nodes` and consumes it. Three kinds of message travel on it, JSON encoded
//! ([`Message`]):
//!
//! - a heartbeat, fanned out every [`HEARTBEAT`]: each node learns which nodes are live from them (a
//!   node not heard from for [`EXPIRY`] is forgotten; a node that stops cleanly says `leaving`);
//! - a request, fanned out, with `reply_to` = the asker's node queue and a correlation id;
//! - an answer, published straight to the asker's node queue;
//! - RPC: callee announcements (fanned out) and a call's way (straight to one node's queue).
//!
//! The asker answers for itself locally, then gathers answers until every node it knows as live has
//! answered or [`DEADLINE`] passed; whoever did not answer is named as missing, the call never hangs.
//! Messages that do not decode (another version, a stranger's publish) are skipped, counted and logged
//! (rate-limited).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::rpc::{self, Rpc};
use crate::router::admin::UnknownRealm;
use crate::router::Router;
use crate::throttle;

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node not heard from for this long is no longer asked (three heartbeats missed).
pub const EXPIRY: Duration = Duration::from_millis(3500);
/// Longest a management call waits for the other nodes' answers.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// The fanout exchange every node queue of the cluster of `stream` is bound to.
pub fn exchange_name(stream: &str) -> String {
    format!("{stream}.nodes")
}

pub use wire::{Answer, Body, Message, Query, SessionEntry, VERSION};

/// Answers `query` for this node.
pub fn answer_locally(router: &Router, query: &Query) -> Result<Answer, UnknownRealm> {
    Ok(match query {
        Query::SessionCount { realm } => {
            Answer::Count(router.count_sessions(realm.as_deref())? as u64)
        }
        Query::Sessions { authid, realm } => Answer::Sessions(
            router
                .sessions_of(authid, realm.as_deref())?
                .into_iter()
                .map(|s| SessionEntry {
                    session: s.session,
                    authid: s.authid,
                    authrole: s.authrole,
                    realm: s.realm,
                })
                .collect(),
        ),
        Query::Subscribers { topic, realm } => {
            Answer::Subscribers(router.subscribers_of(topic, realm.as_deref())?)
        }
        Query::Kick {
            authid,
            reason,
            message,
            realm,
        } => {
            let kicked = router.kick(authid, reason, message, realm.as_deref())?;
            if kicked > 0 {
                tracing::info!(
                    authid,
                    reason,
                    kicked,
                    "sessions kicked (asked by another node)"
                );
            }
            Answer::Kicked(kicked as u64)
        }
    })
}

/// What a call gathered: every answer (this node's first) and the nodes that did not answer in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    /// `(node, answer)`, this node's first.
    pub answers: Vec<(String, Answer)>,
    /// Live nodes that did not answer within [`DEADLINE`] (or refused), sorted.
    pub missing: Vec<String>,
}

mod outgoing;
mod wire;
pub(crate) use outgoing::{Outbound, Outgoing};

/// This node's view of the others, and the calls waiting for their answers. Shared by the link task
/// (which feeds it what arrives on the node queue) and whoever asks.
pub struct Nodes {
    me: String,
    /// This node's [`Message::incarnation`], renewed per connection.
    incarnation: std::sync::atomic::AtomicU64,
    stream: String,
    reply_to: String,
    queues: outgoing::Senders,
    /// A registration announcement was refused (queue full): the full list goes out with the next
    /// heartbeat.
    resync: std::sync::atomic::AtomicBool,
    state: Mutex<State>,
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nodes").field("me", &self.me).finish()
    }
}

/// What a node knows of another live node.
struct Live {
    /// When it was last heard from.
    seen: Instant,
    /// Its [`Message::incarnation`].
    incarnation: u64,
}

/// How a message's sender relates to what this node knew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Known, same incarnation.
    Known,
    /// Not known (new, or forgotten).
    New,
    /// Known under another incarnation: it restarted or reconnected.
    Restarted,
}

#[derive(Default)]
struct State {
    /// Other live nodes.
    live: HashMap<String, Live>,
    /// Calls waiting for answers, by correlation id.
    waiting: HashMap<u64, mpsc::UnboundedSender<(String, Answer)>>,
    next_id: u64,
}

impl Nodes {
    /// This node (`me`) of the cluster of `stream`; the receiver takes the requests to fan out.
    pub(crate) fn new(stream: &str, me: &str) -> (Arc<Nodes>, Outbound) {
        let (queues, outgoing) = outgoing::queues();
        let nodes = Nodes {
            me: me.to_string(),
            incarnation: std::sync::atomic::AtomicU64::new(rand::random()),
            stream: stream.to_string(),
            reply_to: super::node::queue_name(stream, me),
            queues,
            resync: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::new(State::default()),
        };
        (Arc::new(nodes), outgoing)
    }

    /// This node's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The other nodes heard from within [`EXPIRY`], sorted.
    pub fn live(&self) -> Vec<String> {
        let now = Instant::now();
        let state = self.state();
        let mut live: Vec<String> = state
            .live
            .iter()
            .filter(|(_, live)| now.duration_since(live.seen) < EXPIRY)
            .map(|(node, _)| node.clone())
            .collect();
        live.sort();
        live
    }

    /// Forgets the nodes not heard from within [`EXPIRY`] and returns them (their callees and calls
    /// go with them: see [`rpc::forget_node`]).
    pub(super) fn expire(&self) -> Vec<String> {
        let now = Instant::now();
        let mut expired = Vec::new();
        self.state().live.retain(|node, live| {
            let live = now.duration_since(live.seen) < EXPIRY;
            if !live {
                expired.push(node.clone());
            }
            live
        });
        expired
    }

    /// Forgets every other node (this node's link went down: its queue, and what was on its way to
    /// it, is gone) and returns them.
    pub(super) fn forget_all(&self) -> Vec<String> {
        self.state().live.drain().map(|(node, _)| node).collect()
    }

    /// A new incarnation for a new connection: the other nodes forget what they knew of the last.
    pub(super) fn renew(&self) {
        self.incarnation
            .store(rand::random(), std::sync::atomic::Ordering::Relaxed);
    }

    /// `node` (in `incarnation`) is alive: it said something.
    fn seen(&self, node: &str, incarnation: u64) -> Seen {
        let now = Live {
            seen: Instant::now(),
            incarnation,
        };
        match self.state().live.insert(node.to_string(), now) {
            None => Seen::New,
            Some(before) if before.incarnation != incarnation => Seen::Restarted,
            Some(_) => Seen::Known,
        }
    }

    /// Queues an RPC message for `to` (a node name), or for every node; false when it was refused
    /// (the bounded queue is full: see `nodes/outgoing.rs` for which messages can be).
    pub(crate) fn send(&self, to: Option<&str>, rpc: Rpc) -> bool {
        let always = rpc.must_arrive();
        let announcement = matches!(rpc, Rpc::Registered { .. } | Rpc::Unregistered { .. });
        let outgoing = Outgoing {
            to: to.map(|node| super::node::queue_name(&self.stream, node)),
            body: self.message(Body::Rpc { rpc }).encode(),
        };
        let sent = if always {
            self.queues.send_always(outgoing)
        } else {
            self.queues.try_send(outgoing)
        };
        if !sent && announcement {
            self.resync
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if !sent {
            metrics::counter!("switchboard_cluster_node_messages_dropped_total").increment(1);
            if let Some(suppressed) = throttle::allow("cluster_node_message_dropped", "node") {
                tracing::warn!(
                    suppressed,
                    "cluster: the queue of node messages is full (RabbitMQ is slow or away); a remote call is refused or its answer lost"
                );
            }
        }
        sent
    }

    /// What this node says every [`HEARTBEAT`].
    pub(super) fn heartbeat(&self) -> Vec<u8> {
        self.message(Body::Heartbeat).encode()
    }

    /// What this node says when it stops.
    pub(super) fn leaving(&self) -> Vec<u8> {
        self.message(Body::Leaving).encode()
    }

    /// Every callee of this node, for `to` (or every node), asking for theirs in return: sent when the
    /// link comes up and to a node heard from without being known. The receiver ends the calls it has
    /// in flight with this node: this node knows none of them any more.
    pub(super) fn hello(&self, router: &Router, to: Option<&str>) {
        self.send_callees(router, to, true);
    }

    /// Every callee of this node, for `to` (or every node); `reply` asks for theirs.
    pub(super) fn send_callees(&self, router: &Router, to: Option<&str>, reply: bool) {
        let callees = rpc::local_callees(router);
        self.send(to, Rpc::Callees { callees, reply });
    }

    /// Sends every callee of this node to every node again when an announcement was refused (called
    /// every [`HEARTBEAT`]).
    pub(super) fn resync(&self, router: &Router) {
        if self
            .resync
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.send_callees(router, None, false);
        }
    }

    fn message(&self, body: Body) -> Message {
        Message {
            v: VERSION,
            node: self.me.clone(),
            incarnation: self.incarnation.load(std::sync::atomic::Ordering::Relaxed),
            body,
        }
    }

    /// Takes one message from the node queue. Returns the answer to publish, with the queue it goes
    /// to, when the message was another node's request.
    pub(super) fn take(&self, router: &Router, body: &[u8]) -> Option<(String, Vec<u8>)> {
        let message = match Message::decode(body) {
            Ok(message) => message,
            Err(reason) => {
                metrics::counter!("switchboard_cluster_node_messages_skipped_total").increment(1);
                if let Some(suppressed) = throttle::allow("cluster_node_message_skipped", "node") {
                    tracing::warn!(
                        %reason,
                        bytes = body.len(),
                        suppressed,
                        "cluster: skipped a message on this node's queue that is not a node message"
                    );
                }
                return None;
            }
        };
        if message.node == self.me {
            // Our own heartbeats and requests come back through the fanout.
            return None;
        }
        if let Body::Leaving = message.body {
            self.state().live.remove(&message.node);
            rpc::forget_node(router, &message.node);
            return None;
        }
        let seen = self.seen(&message.node, message.incarnation);
        if seen == Seen::Restarted {
            tracing::info!(node = %message.node, "cluster: node restarted or reconnected; its calls in flight end");
            rpc::forget_node(router, &message.node);
        }
        let hello = matches!(
            message.body,
            Body::Rpc {
                rpc: Rpc::Callees { reply: true, .. }
            }
        );
        if seen != Seen::Known && !hello {
            // A node we did not know (new, forgotten when it fell silent, or restarted): exchange
            // callees.
            self.hello(router, Some(&message.node));
        }
        match message.body {
            Body::Heartbeat | Body::Leaving => {}
            Body::Rpc { rpc } => rpc::take(self, router, &message.node, rpc),
            // Answered to the sender's own queue: `reply_to` names the same for every node of this
            // version and is not trusted to name a queue.
            Body::Request { id, query, .. } => {
                let answer = answer_locally(router, &query)
                    .unwrap_or_else(|error| Answer::Refused(error.to_string()));
                let answer = self.message(Body::Answer { id, answer }).encode();
                return Some((super::node::queue_name(&self.stream, &message.node), answer));
            }
            Body::Answer { id, answer } => {
                let state = self.state();
                if let Some(waiting) = state.waiting.get(&id) {
                    let _ = waiting.send((message.node, answer));
                }
            }
        }
        None
    }

    /// Asks every live node `query` (this one answers locally first: an unknown realm is refused
    /// here), and gathers their answers until all answered or [`DEADLINE`] passed.
    pub async fn ask(&self, router: &Router, query: Query) -> Result<Gathered, UnknownRealm> {
        let mine = answer_locally(router, &query)?;
        let mut answers = vec![(self.me.clone(), mine)];
        let mut expected: HashSet<String> = self.live().into_iter().collect();
        if expected.is_empty() {
            return Ok(Gathered {
                answers,
                missing: Vec::new(),
            });
        }
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let id = {
            let mut state = self.state();
            state.next_id = state.next_id.wrapping_add(1);
            let id = state.next_id;
            state.waiting.insert(id, sender);
            id
        };
        let _forget = Forget { nodes: self, id };
        let request = self
            .message(Body::Request {
                id,
                reply_to: self.reply_to.clone(),
                query,
            })
            .encode();
        let mut refused = Vec::new();
        let request = Outgoing {
            to: None,
            body: request,
        };
        if self.queues.try_send(request) {
            let deadline = tokio::time::Instant::now() + DEADLINE;
            while !expected.is_empty() {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some((node, answer))) => {
                        if !expected.remove(&node) && answers.iter().any(|(n, _)| *n == node) {
                            continue; // a second answer from one node
                        }
                        match answer {
                            Answer::Refused(reason) => {
                                tracing::warn!(%node, %reason, "cluster: a node refused a management call");
                                refused.push(node);
                            }
                            answer => answers.push((node, answer)),
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let mut missing: Vec<String> = expected.into_iter().chain(refused).collect();
        missing.sort();
        if !missing.is_empty() {
            metrics::counter!("switchboard_cluster_nodes_missing_total").increment(1);
        }
        Ok(Gathered { answers, missing })
    }
}

/// Forgets a call's correlation id when the call ends, however it ends.
struct Forget<'a> {
    nodes: &'a Nodes,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.nodes.state().waiting.remove(&self.id);
    }
}

#[cfg(test)]
mod tests;
