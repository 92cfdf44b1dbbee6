//! A call in flight: who its caller and callee are (a session of this node, or of another) and how
//! each is told what happened. What a local session gets as a WAMP message goes to a remote one as a
//! node message, so the dealer's rules read the same for both.

use std::sync::Arc;

use serde_json::Value;

use super::{CallKey, CancelMode, Dealer, CANCELED};
use crate::router::peer::Peer;
use crate::wamp::{code, Dict, Id, Message, Payload};

/// Who made a call in flight.
#[derive(Debug)]
pub(super) enum Caller {
    Local(Arc<Peer>),
    /// A session of another node; the call's `call_request` is that node's id of the call.
    Remote {
        node: String,
        session: Id,
    },
}

/// Who serves a call in flight.
#[derive(Debug)]
pub(super) enum Callee {
    Local(Arc<Peer>),
    /// A session of another node.
    Remote {
        node: String,
        session: Id,
    },
}

impl Caller {
    pub(super) fn session(&self) -> Id {
        match self {
            Caller::Local(peer) => peer.id,
            Caller::Remote { session, .. } => *session,
        }
    }
}

impl Callee {
    pub(super) fn session(&self) -> Id {
        match self {
            Callee::Local(peer) => peer.id,
            Callee::Remote { session, .. } => *session,
        }
    }

    /// Whether INTERRUPT is worth sending: a local callee must support it; a remote one's node decides.
    pub(super) fn interruptible(&self) -> bool {
        match self {
            Callee::Local(peer) => peer.features.callee_call_canceling,
            Callee::Remote { .. } => true,
        }
    }
}

/// A call in flight, keyed by (callee session, INVOCATION request id) for a local callee and by
/// (callee session, this node's call id) for a remote one.
#[derive(Debug)]
pub(super) struct PendingCall {
    pub(super) caller: Caller,
    /// The CALL's request id (local caller) or the caller's node's id of the call (remote caller).
    pub(super) call_request: Id,
    pub(super) callee: Callee,
    pub(super) receive_progress: bool,
    pub(super) timer: Option<tokio::task::AbortHandle>,
    /// The caller canceled in `kill` mode: whatever the callee answers, the caller gets
    /// `wamp.error.canceled`.
    pub(super) killed: bool,
}

impl Dealer {
    /// Sends a RESULT (progressive or final) to the call's caller; false when a progressive one for a
    /// caller on another node could not be queued.
    pub(super) fn send_result(
        &self,
        pending: &PendingCall,
        progress: bool,
        payload: Payload,
    ) -> bool {
        match &pending.caller {
            Caller::Local(peer) => {
                let mut details = Dict::new();
                if progress {
                    details.insert("progress".into(), Value::Bool(true));
                }
                // A caller that does not keep up is closed by its outbox (slow consumer).
                peer.outbox.send_message(&Message::Result {
                    request: pending.call_request,
                    details,
                    payload,
                });
                true
            }
            Caller::Remote { node, .. } => {
                self.remote.send_result(node, pending, progress, payload)
            }
        }
    }

    /// Sends the call's ERROR to its caller.
    pub(super) fn send_error(
        &self,
        pending: &PendingCall,
        details: Dict,
        error: String,
        payload: Payload,
    ) {
        match &pending.caller {
            Caller::Local(peer) => {
                peer.outbox.send_message(&Message::Error {
                    request_type: code::CALL,
                    request: pending.call_request,
                    details,
                    error,
                    payload,
                });
            }
            Caller::Remote { node, .. } => {
                self.remote
                    .send_error(node, pending, details, error, payload);
            }
        }
    }

    /// Ends a call for its caller with ERROR `wamp.error.canceled` and `why`.
    pub(super) fn fail_call(&self, pending: &PendingCall, why: &str) {
        let payload = Payload::Args(vec![Value::from(why)]);
        self.send_error(pending, Dict::new(), CANCELED.to_string(), payload);
    }

    /// Interrupts the callee of call `key`: INTERRUPT for a local callee, a cancel to its node for a
    /// remote one.
    pub(super) fn interrupt(
        &self,
        pending: &PendingCall,
        key: CallKey,
        mode: CancelMode,
        reason: &str,
    ) {
        match &pending.callee {
            Callee::Local(peer) => {
                let mut interrupt_options = Dict::new();
                interrupt_options.insert("mode".into(), Value::from(mode.as_str()));
                interrupt_options.insert("reason".into(), Value::from(reason));
                peer.outbox.send_message(&Message::Interrupt {
                    request: key.1,
                    options: interrupt_options,
                });
            }
            Callee::Remote { node, .. } => {
                self.remote
                    .send_cancel(node, (pending.caller.session(), key.1), mode, reason);
            }
        }
    }
}
