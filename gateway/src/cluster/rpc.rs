//! RPC across nodes (DESIGN.md section 8): what nodes tell each other so that a CALL on one node reaches
//! a callee registered on another, with its results, errors, progress and cancellation coming back.
//!
//! These travel as node messages ([`Body::Rpc`](super::nodes::Body::Rpc)) over the node queues, in the
//! order one node sent them (one channel, one queue):
//!
//! - callee announcements, fanned out: [`Rpc::Registered`] / [`Rpc::Unregistered`] as local sessions
//!   register and leave, and [`Rpc::Callees`], every callee of the sender at once, which replaces what a
//!   node knew of the sender's callees. A node sends `Callees` with `reply: true` when its link comes up
//!   and to any node it hears from without knowing it (new, or forgotten after [`EXPIRY`](super::nodes::EXPIRY)),
//!   so both sides end with each other's registrations, also after messages were lost with a connection;
//! - a call's way, straight to one node's queue: [`Rpc::Invoke`] from the caller's node, [`Rpc::Yield`]
//!   and [`Rpc::Error`] back from the callee's node, [`Rpc::Cancel`] from the caller's node.
//!
//! A call is named by (caller session, call id) towards the callee's node and by (callee session, call
//! id) on the way back; session ids are random across the cluster and call ids are unique per calling
//! node, so both pairs are unique. The dealer (`router/dealer/`) decides everything; this is the wire.

use serde::{Deserialize, Serialize};

use super::nodes::Nodes;
use super::record::RecordPayload;
use crate::router::dealer::{CancelMode, InvokePolicy};
use crate::router::Router;
use crate::throttle;
use crate::wamp::{Dict, Id};

/// One callee of a procedure on the announcing node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    /// The realm of the registration.
    pub realm: String,
    /// The procedure.
    pub procedure: String,
    /// The callee's session.
    pub session: Id,
    /// The registration's invocation policy.
    pub invoke: InvokePolicy,
    /// When the callee registered, in microseconds since the Unix epoch: `first` and `last` pick across
    /// nodes by it (ties broken by node name, then session), so every node picks the same callee.
    pub since_us: u64,
    /// The callee handles INTERRUPT.
    pub call_canceling: bool,
    /// The callee may send progressive results.
    pub progressive: bool,
}

/// What one node says to another about procedures and calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Rpc {
    /// Every callee of the sender: replaces what the receiver knew of the sender's callees. `reply`
    /// asks the receiver to answer with its own.
    Callees {
        /// The sender's callees, every realm.
        callees: Vec<Announced>,
        /// Answer with yours.
        reply: bool,
    },
    /// A session of the sender registered.
    Registered {
        /// The new callee.
        callee: Announced,
    },
    /// A session of the sender no longer serves `procedure`.
    Unregistered {
        /// The realm.
        realm: String,
        /// The procedure.
        procedure: String,
        /// The callee's session.
        session: Id,
    },
    /// A CALL for a callee of the receiver.
    Invoke {
        /// The realm.
        realm: String,
        /// The caller's session (on the sender).
        caller: Id,
        /// The sender's id of this call.
        call: Id,
        /// The callee's session (on the receiver).
        callee: Id,
        /// The procedure called.
        procedure: String,
        /// INVOCATION.Details as the caller's node built them (`receive_progress`, disclosure).
        details: Dict,
        /// The call's arguments.
        payload: RecordPayload,
    },
    /// The callee's YIELD (a progressive or the final result) for call `call`.
    Yield {
        /// The realm.
        realm: String,
        /// The callee's session.
        callee: Id,
        /// The caller's node's id of the call.
        call: Id,
        /// A progressive result; more follow.
        progress: bool,
        /// The result.
        payload: RecordPayload,
    },
    /// The call ended in an error (the callee's, or the callee node's: no such procedure, canceled).
    Error {
        /// The realm.
        realm: String,
        /// The callee's session.
        callee: Id,
        /// The caller's node's id of the call.
        call: Id,
        /// ERROR.Details.
        details: Dict,
        /// The error URI.
        error: String,
        /// The error's arguments.
        payload: RecordPayload,
    },
    /// The caller canceled, left or timed out: interrupt the callee as `mode` says.
    Cancel {
        /// The realm.
        realm: String,
        /// The caller's session.
        caller: Id,
        /// The caller's node's id of the call.
        call: Id,
        /// How the callee is treated.
        mode: CancelMode,
        /// INTERRUPT.Options.reason.
        reason: String,
    },
}

impl Rpc {
    /// Whether losing this message would leave a call waiting for ever or two nodes disagreeing about
    /// the calls between them: a call's end (final result, error, cancel) and the callee lists nodes
    /// exchange when they meet. These are never refused for a full queue.
    pub fn must_arrive(&self) -> bool {
        match self {
            Rpc::Yield { progress, .. } => !progress,
            Rpc::Error { .. } | Rpc::Cancel { .. } | Rpc::Callees { .. } => true,
            Rpc::Registered { .. } | Rpc::Unregistered { .. } | Rpc::Invoke { .. } => false,
        }
    }

    /// The realm the message concerns (`Callees` spans every realm).
    pub fn realm(&self) -> Option<&str> {
        match self {
            Rpc::Callees { .. } => None,
            Rpc::Registered { callee } => Some(&callee.realm),
            Rpc::Unregistered { realm, .. }
            | Rpc::Invoke { realm, .. }
            | Rpc::Yield { realm, .. }
            | Rpc::Error { realm, .. }
            | Rpc::Cancel { realm, .. } => Some(realm),
        }
    }
}

/// Every callee of this node, in every realm.
pub fn local_callees(router: &Router) -> Vec<Announced> {
    router
        .realms()
        .flat_map(|realm| realm.dealer().local_callees())
        .collect()
}

/// `node` left the cluster (said so, fell silent, or this node lost its link): its callees go, calls
/// to them fail, calls from it are interrupted.
pub fn forget_node(router: &Router, node: &str) {
    for realm in router.realms() {
        realm.dealer().forget_node(node);
    }
}

/// Takes one RPC message from `from`.
pub(super) fn take(nodes: &Nodes, router: &Router, from: &str, rpc: Rpc) {
    if let Rpc::Callees { callees, reply } = rpc {
        if reply {
            // `from` met this node as a stranger (it started, reconnected, or had forgotten this
            // node): whatever calls this node has in flight with it, `from` knows nothing of them.
            forget_node(router, from);
        }
        for realm in router.realms() {
            let theirs = callees
                .iter()
                .filter(|callee| callee.realm == realm.name)
                .cloned()
                .collect();
            realm.dealer().node_callees(from, theirs);
        }
        if reply {
            nodes.send_callees(router, Some(from), false);
        }
        return;
    }
    let Some(realm) = rpc.realm().and_then(|name| router.realm(name)) else {
        if let Some(suppressed) = throttle::allow("cluster_rpc_unknown_realm", "node") {
            tracing::warn!(
                node = %from,
                realm = ?rpc.realm(),
                suppressed,
                "cluster: skipped an RPC message for a realm this node does not have (every node needs the same [[realms]])"
            );
        }
        return;
    };
    let mut dealer = realm.dealer();
    match rpc {
        Rpc::Callees { .. } => {}
        Rpc::Registered { callee } => dealer.node_registered(from, callee),
        Rpc::Unregistered {
            procedure, session, ..
        } => dealer.node_unregistered(from, &procedure, session),
        Rpc::Invoke {
            caller,
            call,
            callee,
            procedure,
            details,
            payload,
            ..
        } => dealer.invoked_by_node(
            from,
            (caller, call),
            callee,
            &procedure,
            details,
            payload.into(),
        ),
        Rpc::Yield {
            callee,
            call,
            progress,
            payload,
            ..
        } => dealer.on_result(callee, call, progress, payload.into()),
        Rpc::Error {
            callee,
            call,
            details,
            error,
            payload,
            ..
        } => dealer.on_error(callee, call, details, error, payload.into()),
        Rpc::Cancel {
            caller,
            call,
            mode,
            reason,
            ..
        } => dealer.cancel(caller, call, mode, &reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::peer::{received, test_peer, ClientFeatures};
    use crate::wamp::Payload;

    fn announced(session: Id) -> Announced {
        Announced {
            realm: "realm1".into(),
            procedure: "p".into(),
            session,
            invoke: InvokePolicy::Single,
            since_us: 1,
            call_canceling: true,
            progressive: true,
        }
    }

    #[test]
    fn a_node_that_meets_this_one_as_a_stranger_ends_the_calls_in_flight_with_it() {
        let config = switchboard_config::Config::from_toml_str(
            "[[realms]]\nname = \"realm1\"\n",
            "test.toml",
        )
        .expect("config");
        let router = Router::new(&config);
        let (nodes, mut outgoing) = Nodes::new("s", "n1");
        router.know_nodes(&nodes);
        let realm = router.realm("realm1").unwrap();
        let callee = announced(50);
        take(&nodes, &router, "n2", Rpc::Registered { callee });
        let (caller, caller_rx) = test_peer(1, ClientFeatures::default());
        let call = realm
            .dealer()
            .call(&caller, 9, "p", &Dict::new(), Payload::Empty);
        assert!(call.is_ok(), "routed to n2");
        // n2 had forgotten this node (it fell silent for it): its hello says so.
        let callees = vec![announced(50)];
        let reply = true;
        take(&nodes, &router, "n2", Rpc::Callees { callees, reply });
        let answers = received(&caller_rx);
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(answers[0][4], "wamp.error.canceled");
        assert_eq!(
            caller
                .pending_calls
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        let again = realm
            .dealer()
            .call(&caller, 10, "p", &Dict::new(), Payload::Empty);
        assert!(again.is_ok(), "n2's callee is known again from its list");
        let sent: Vec<_> = std::iter::from_fn(|| outgoing.try_recv()).collect();
        assert!(
            sent.iter().any(|out| out.to.as_deref() == Some("s.node.n2")
                && String::from_utf8_lossy(&out.body).contains("\"op\":\"callees\"")),
            "this node's callees went back to n2"
        );
    }
}
