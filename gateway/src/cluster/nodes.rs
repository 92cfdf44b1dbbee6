//! Node-to-node requests: management calls (`session_count`, `sessions`, `subscribers`, `kick`) that
//! answer for the whole cluster.
//!
//! Every node binds its exclusive queue `<stream>.node.<name>` (see [`node`](super::node)) to the
//! fanout exchange `<stream>.nodes` and consumes it. Three kinds of message travel on it, JSON encoded
//! ([`Message`]):
//!
//! - a heartbeat, fanned out every [`HEARTBEAT`]: each node learns which nodes are live from them (a
//!   node not heard from for [`EXPIRY`] is forgotten; a node that stops cleanly says `leaving`);
//! - a request, fanned out, with `reply_to` = the asker's node queue and a correlation id;
//! - an answer, published straight to the asker's node queue.
//!
//! The asker answers for itself locally, then gathers answers until every node it knows as live has
//! answered or [`DEADLINE`] passed; whoever did not answer is named as missing, the call never hangs.
//! Messages that do not decode (another version, a stranger's publish) are skipped, counted and logged
//! (rate-limited).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::router::admin::UnknownRealm;
use crate::router::Router;
use crate::throttle;
use crate::wamp::Id;

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node not heard from for this long is no longer asked (three heartbeats missed).
pub const EXPIRY: Duration = Duration::from_millis(3500);
/// Longest a management call waits for the other nodes' answers.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// The encoding's version; messages of another version are skipped.
pub const VERSION: u8 = 1;
/// Requests queued for the link before further ones are answered "missing" at once.
const MAX_QUEUED_REQUESTS: usize = 256;

/// The fanout exchange every node queue of the cluster of `stream` is bound to.
pub fn exchange_name(stream: &str) -> String {
    format!("{stream}.nodes")
}

/// One message between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// [`VERSION`].
    pub v: u8,
    /// The sending node.
    pub node: String,
    /// What it says.
    #[serde(flatten)]
    pub body: Body,
}

/// What a node says to the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// "I am alive."
    Heartbeat,
    /// "I am stopping": not to be waited for any more.
    Leaving,
    /// A management call to answer for this node.
    Request {
        /// The correlation id (unique per asking node).
        id: u64,
        /// The asker's node queue.
        reply_to: String,
        /// The call.
        query: Query,
    },
    /// One node's answer to request `id`.
    Answer {
        /// The request's correlation id.
        id: u64,
        /// The answer.
        answer: Answer,
    },
}

/// A management call, as asked of every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Query {
    /// Joined sessions in `realm` (or every realm).
    SessionCount {
        /// The realm, or every realm.
        realm: Option<String>,
    },
    /// The sessions of `authid`.
    Sessions {
        /// The authenticated identity.
        authid: String,
        /// The realm, or every realm.
        realm: Option<String>,
    },
    /// Who would receive an event on `topic`.
    Subscribers {
        /// The topic.
        topic: String,
        /// The realm, or every realm.
        realm: Option<String>,
    },
    /// GOODBYE to every session of `authid`.
    Kick {
        /// The authenticated identity.
        authid: String,
        /// The GOODBYE reason URI.
        reason: String,
        /// The GOODBYE message.
        message: String,
        /// The realm, or every realm.
        realm: Option<String>,
    },
}

/// One session, as `sessions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// The session id.
    pub session: Id,
    /// Its authenticated identity.
    pub authid: String,
    /// Its role.
    pub authrole: String,
    /// Its realm.
    pub realm: String,
}

/// One node's answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// `session_count`.
    Count(u64),
    /// `sessions`.
    Sessions(Vec<SessionEntry>),
    /// `subscribers`: session ids.
    Subscribers(Vec<Id>),
    /// `kick`: how many were closed.
    Kicked(u64),
    /// The node could not answer (it knows no such realm).
    Refused(String),
}

impl Message {
    /// The message's JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a node message always serializes")
    }

    /// A message from its JSON; Err says why it is skipped.
    pub fn decode(body: &[u8]) -> Result<Message, String> {
        let message: Message = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        if message.v != VERSION {
            return Err(format!(
                "version {} (this node speaks {VERSION})",
                message.v
            ));
        }
        Ok(message)
    }
}

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

/// A request on its way to the link, which fans it out.
pub(super) type Outgoing = Vec<u8>;

/// This node's view of the others, and the calls waiting for their answers. Shared by the link task
/// (which feeds it what arrives on the node queue) and whoever asks.
pub struct Nodes {
    me: String,
    reply_to: String,
    requests: mpsc::Sender<Outgoing>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nodes").field("me", &self.me).finish()
    }
}

#[derive(Default)]
struct State {
    /// Other live nodes, by when they were last heard from.
    live: HashMap<String, Instant>,
    /// Calls waiting for answers, by correlation id.
    waiting: HashMap<u64, mpsc::UnboundedSender<(String, Answer)>>,
    next_id: u64,
}

impl Nodes {
    /// This node (`me`) of the cluster of `stream`; the receiver takes the requests to fan out.
    pub(super) fn new(stream: &str, me: &str) -> (Arc<Nodes>, mpsc::Receiver<Outgoing>) {
        let (requests, outgoing) = mpsc::channel(MAX_QUEUED_REQUESTS);
        let nodes = Nodes {
            me: me.to_string(),
            reply_to: super::node::queue_name(stream, me),
            requests,
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
        let mut state = self.state();
        state
            .live
            .retain(|_, seen| now.duration_since(*seen) < EXPIRY);
        let mut live: Vec<String> = state.live.keys().cloned().collect();
        live.sort();
        live
    }

    /// `node` is alive (it said something).
    fn seen(&self, node: &str) {
        if node != self.me {
            self.state().live.insert(node.to_string(), Instant::now());
        }
    }

    /// What this node says every [`HEARTBEAT`].
    pub(super) fn heartbeat(&self) -> Vec<u8> {
        self.message(Body::Heartbeat).encode()
    }

    /// What this node says when it stops.
    pub(super) fn leaving(&self) -> Vec<u8> {
        self.message(Body::Leaving).encode()
    }

    fn message(&self, body: Body) -> Message {
        Message {
            v: VERSION,
            node: self.me.clone(),
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
        match message.body {
            Body::Heartbeat => self.seen(&message.node),
            Body::Leaving => {
                self.state().live.remove(&message.node);
            }
            Body::Request {
                id,
                reply_to,
                query,
            } => {
                self.seen(&message.node);
                let answer = answer_locally(router, &query)
                    .unwrap_or_else(|error| Answer::Refused(error.to_string()));
                let answer = self.message(Body::Answer { id, answer }).encode();
                return Some((reply_to, answer));
            }
            Body::Answer { id, answer } => {
                self.seen(&message.node);
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
        if self.requests.try_send(request).is_ok() {
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
