//! The dealer's other half in a cluster: the callees other nodes announced, the way to them, and what
//! the dealer does when a node message arrives (`crate::cluster::rpc` is the wire).
//!
//! A node learns the others' callees from their announcements and forgets a node's callees, and its
//! calls, when that node leaves, falls silent for [`EXPIRY`](crate::cluster::nodes::EXPIRY), or this
//! node's own link goes down: a call in flight towards it fails with `wamp.error.canceled`, never hangs.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::call::{Callee, Caller, PendingCall};
use super::{CancelMode, Dealer, InvokePolicy, CANCELED};
use super::{CALLEE_UNAVAILABLE, NO_SUCH_PROCEDURE};
use crate::cluster::nodes::Nodes;
use crate::cluster::rpc::{Announced, Rpc};
use crate::router::peer::{ClientFeatures, Peer};
use crate::router::Refusal;
use crate::wamp::{options, Dict, Id, Message, Payload};

/// A callee on another node, as it was announced.
#[derive(Debug, Clone)]
pub(super) struct RemoteCallee {
    pub(super) node: String,
    pub(super) session: Id,
    pub(super) invoke: InvokePolicy,
    pub(super) since_us: u64,
    pub(super) features: ClientFeatures,
}

/// The other nodes' callees of one procedure.
#[derive(Debug, Default)]
pub(super) struct RemoteProcedure {
    pub(super) callees: Vec<RemoteCallee>,
    /// Round robin's turn over every callee of the procedure, this node's included.
    pub(super) turn: usize,
}

/// The way to the other nodes.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) nodes: Arc<Nodes>,
    realm: String,
}

/// What a realm's dealer knows of the other nodes.
#[derive(Debug, Default)]
pub(super) struct Remote {
    /// Set when the node joins a cluster.
    pub(super) link: Option<Link>,
    /// By procedure; a procedure with no remote callee has no entry.
    pub(super) procedures: HashMap<String, RemoteProcedure>,
}

fn error_payload(why: impl Into<String>) -> Payload {
    Payload::Args(vec![Value::String(why.into())])
}

impl Remote {
    fn send(&self, to: Option<&str>, rpc: impl FnOnce(&str) -> Rpc) -> bool {
        match &self.link {
            Some(link) => link.nodes.send(to, rpc(&link.realm)),
            None => false,
        }
    }

    /// `wamp.error.procedure_already_exists` when another node serves `procedure` with `single` or
    /// another policy than `invoke`.
    pub(super) fn conflict(&self, procedure: &str, invoke: InvokePolicy) -> Option<Refusal> {
        let existing = self.procedures.get(procedure)?.callees.first()?;
        (invoke == InvokePolicy::Single || existing.invoke != invoke).then(|| {
            Refusal::new(
                "wamp.error.procedure_already_exists",
                format!(
                    "procedure {procedure} is already registered with invoke={} on node {}",
                    existing.invoke.as_str(),
                    existing.node
                ),
            )
        })
    }

    pub(super) fn announce_registered(
        &self,
        procedure: &str,
        callee: &Peer,
        invoke: InvokePolicy,
        since_us: u64,
    ) {
        self.send(None, |realm| Rpc::Registered {
            callee: announced(realm, procedure, callee, invoke, since_us),
        });
    }

    pub(super) fn announce_unregistered(&self, procedure: &str, session: Id) {
        self.send(None, |realm| Rpc::Unregistered {
            realm: realm.to_string(),
            procedure: procedure.to_string(),
            session,
        });
    }

    /// Sends a call to a remote callee; refused when the node messages' queue is full.
    pub(super) fn invoke(
        &self,
        callee: &RemoteCallee,
        (caller, call): (Id, Id),
        procedure: &str,
        details: Dict,
        payload: Payload,
    ) -> Result<(), Refusal> {
        let sent = self.send(Some(&callee.node), |realm| Rpc::Invoke {
            realm: realm.to_string(),
            caller,
            call,
            callee: callee.session,
            procedure: procedure.to_string(),
            details,
            payload: payload.into(),
        });
        if sent {
            Ok(())
        } else {
            Err(Refusal::new(
                CALLEE_UNAVAILABLE,
                format!(
                    "the callee is on node {}, and this node's messages to it are not getting through",
                    callee.node
                ),
            ))
        }
    }

    pub(super) fn send_result(
        &self,
        node: &str,
        pending: &PendingCall,
        progress: bool,
        payload: Payload,
    ) -> bool {
        self.send(Some(node), |realm| Rpc::Yield {
            realm: realm.to_string(),
            callee: pending.callee.session(),
            call: pending.call_request,
            progress,
            payload: payload.into(),
        })
    }

    pub(super) fn send_error(
        &self,
        node: &str,
        pending: &PendingCall,
        details: Dict,
        error: String,
        payload: Payload,
    ) {
        self.send(Some(node), |realm| Rpc::Error {
            realm: realm.to_string(),
            callee: pending.callee.session(),
            call: pending.call_request,
            details,
            error,
            payload: payload.into(),
        });
    }

    pub(super) fn send_cancel(
        &self,
        node: &str,
        (caller, call): (Id, Id),
        mode: CancelMode,
        reason: &str,
    ) {
        self.send(Some(node), |realm| Rpc::Cancel {
            realm: realm.to_string(),
            caller,
            call,
            mode,
            reason: reason.to_string(),
        });
    }

    fn add(&mut self, node: &str, callee: Announced) {
        let entry = self.procedures.entry(callee.procedure).or_default();
        entry
            .callees
            .retain(|c| !(c.node == node && c.session == callee.session));
        entry.callees.push(RemoteCallee {
            node: node.to_string(),
            session: callee.session,
            invoke: callee.invoke,
            since_us: callee.since_us,
            features: ClientFeatures {
                callee_call_canceling: callee.call_canceling,
                callee_progressive_call_results: callee.progressive,
            },
        });
    }

    fn remove(&mut self, node: &str, mut keep: impl FnMut(&str, &RemoteCallee) -> bool) {
        self.procedures.retain(|procedure, entry| {
            entry
                .callees
                .retain(|c| c.node != node || keep(procedure, c));
            !entry.callees.is_empty()
        });
    }
}

fn announced(
    realm: &str,
    procedure: &str,
    callee: &Peer,
    invoke: InvokePolicy,
    since_us: u64,
) -> Announced {
    Announced {
        realm: realm.to_string(),
        procedure: procedure.to_string(),
        session: callee.id,
        invoke,
        since_us,
        call_canceling: callee.features.callee_call_canceling,
        progressive: callee.features.callee_progressive_call_results,
    }
}

impl Dealer {
    /// Makes this dealer reach the other nodes of the cluster through `nodes` (once, at start).
    pub(crate) fn join_cluster(&mut self, nodes: &Arc<Nodes>, realm: &str) {
        self.remote.link = Some(Link {
            nodes: Arc::clone(nodes),
            realm: realm.to_string(),
        });
    }

    /// Every callee of this node, as announced to the others.
    pub(crate) fn local_callees(&self) -> Vec<Announced> {
        let Some(link) = &self.remote.link else {
            return Vec::new();
        };
        self.registrations
            .values()
            .flat_map(|registration| {
                registration.callees.iter().map(|c| {
                    announced(
                        &link.realm,
                        &registration.procedure,
                        &c.peer,
                        registration.invoke,
                        c.since_us,
                    )
                })
            })
            .collect()
    }

    /// `node` announced all its callees of this realm: they replace what was known of it.
    pub(crate) fn node_callees(&mut self, node: &str, callees: Vec<Announced>) {
        self.remote.remove(node, |_, _| false);
        for callee in callees {
            self.remote.add(node, callee);
        }
    }

    /// A session of `node` registered.
    pub(crate) fn node_registered(&mut self, node: &str, callee: Announced) {
        self.remote.add(node, callee);
    }

    /// A session of `node` no longer serves `procedure`.
    pub(crate) fn node_unregistered(&mut self, node: &str, procedure: &str, session: Id) {
        self.remote
            .remove(node, |p, c| !(p == procedure && c.session == session));
    }

    /// `node` is gone: its callees go, calls this node sent it fail, calls it sent here are
    /// interrupted.
    pub(crate) fn forget_node(&mut self, node: &str) {
        self.remote.remove(node, |_, _| false);
        let of_node = |p: &PendingCall| {
            matches!(&p.callee, Callee::Remote { node: n, .. } if n == node)
                || matches!(&p.caller, Caller::Remote { node: n, .. } if n == node)
        };
        let affected: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, p)| of_node(p))
            .map(|(key, _)| *key)
            .collect();
        for key in affected {
            let Some(pending) = self.finish(key) else {
                continue;
            };
            match &pending.callee {
                Callee::Remote { .. } => self.fail_call(
                    &pending,
                    &format!("node {node} left the cluster before the callee answered"),
                ),
                Callee::Local(peer) if peer.features.callee_call_canceling => {
                    self.interrupt(&pending, key, CancelMode::KillNoWait, CANCELED)
                }
                Callee::Local(_) => {}
            }
        }
    }

    /// `node` sends a call of its session `caller` (its id `call`) for this node's session `callee`.
    pub(crate) fn invoked_by_node(
        &mut self,
        node: &str,
        (caller, call): (Id, Id),
        callee: Id,
        procedure: &str,
        mut details: Dict,
        payload: Payload,
    ) {
        let refuse = |remote: &Remote, error: &str, why: String| {
            remote.send(Some(node), |realm| Rpc::Error {
                realm: realm.to_string(),
                callee,
                call,
                details: Dict::new(),
                error: error.to_string(),
                payload: error_payload(why).into(),
            });
        };
        let found = self
            .by_procedure
            .get(procedure)
            .and_then(|id| self.registrations.get(id).map(|r| (*id, r)))
            .and_then(|(id, r)| {
                r.callees
                    .iter()
                    .find(|c| c.peer.id == callee)
                    .map(|c| (id, Arc::clone(&c.peer)))
            });
        let Some((registration, peer)) = found else {
            return refuse(
                &self.remote,
                NO_SUCH_PROCEDURE,
                format!("the callee of {procedure} on this node is gone"),
            );
        };
        let receive_progress = options::flag(&details, "receive_progress", false)
            && peer.features.callee_progressive_call_results;
        if !receive_progress {
            details.remove("receive_progress");
        }
        let request = peer.invocation_ids.next();
        let invocation = Message::Invocation {
            request,
            registration,
            details,
            payload,
        };
        if !peer.outbox.send_message(&invocation) {
            return refuse(
                &self.remote,
                CALLEE_UNAVAILABLE,
                "the callee is not keeping up".to_string(),
            );
        }
        let key = (peer.id, request);
        self.by_call.insert((caller, call), key);
        let pending = PendingCall {
            caller: Caller::Remote {
                node: node.to_string(),
                session: caller,
            },
            call_request: call,
            callee: Callee::Local(peer),
            receive_progress,
            timer: None,
            killed: false,
        };
        self.pending.insert(key, pending);
    }
}
