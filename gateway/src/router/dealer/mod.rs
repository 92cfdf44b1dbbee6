//! The dealer: registrations (single or shared with an invocation policy) and calls in flight, with
//! progressive results, cancellation (skip, kill, killnowait) and timeouts.
//!
//! In a cluster a call's callee may be on another node, or its caller: the dealer keeps the other nodes'
//! callees beside its own (`remote.rs`), picks among all of them by the registration's policy
//! (`pick.rs`), and a call in flight names its caller and callee as local sessions or as sessions of a
//! node (`call.rs`). What a local session would get as a message goes to a remote one as a node message
//! (`crate::cluster::rpc`), so every rule here (progress, the three cancel modes, timeouts, a party that
//! leaves) holds across nodes.

mod call;
mod pick;
mod policy;
mod remote;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub use policy::{CancelMode, InvokePolicy};

use super::peer::Peer;
use super::Refusal;
use crate::wamp::ids::IdSequence;
use crate::wamp::{options, Dict, Id, Message, Payload};
use call::{Callee, Caller, PendingCall};
use pick::Target;
use remote::Remote;

/// A session of this node that serves a registration.
#[derive(Debug)]
struct LocalCallee {
    peer: Arc<Peer>,
    /// When it registered (microseconds since the Unix epoch), comparable with other nodes' callees.
    since_us: u64,
}

#[derive(Debug)]
struct Registration {
    procedure: String,
    invoke: InvokePolicy,
    callees: Vec<LocalCallee>,
    turn: usize,
}

/// Key of a call in flight: (callee session, INVOCATION request id or call id).
pub type CallKey = (Id, Id);

/// All registrations and calls in flight of one realm.
#[derive(Debug, Default)]
pub struct Dealer {
    registrations: HashMap<Id, Registration>,
    by_procedure: HashMap<String, Id>,
    ids: IdSequence,
    /// Ids of calls sent to other nodes.
    call_ids: IdSequence,
    pending: HashMap<CallKey, PendingCall>,
    /// (caller session, CALL request id or remote call id) -> the call in flight.
    by_call: HashMap<(Id, Id), CallKey>,
    /// The other nodes' callees and the way to them (empty on a single node).
    remote: Remote,
}

const CANCELED: &str = "wamp.error.canceled";
const NO_SUCH_PROCEDURE: &str = "wamp.error.no_such_procedure";
const CALLEE_UNAVAILABLE: &str = "switchboard.error.callee_unavailable";

/// Microseconds since the Unix epoch: when a callee registered, ordered across nodes.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Dealer {
    /// Registers `callee` for `procedure`. A second callee (on this node or another) joins only when
    /// both ask for the same shared policy; otherwise `wamp.error.procedure_already_exists`.
    pub fn register(
        &mut self,
        callee: &Arc<Peer>,
        procedure: &str,
        invoke: InvokePolicy,
    ) -> Result<Id, Refusal> {
        if let Some(refusal) = self.remote.conflict(procedure, invoke) {
            return Err(refusal);
        }
        let since_us = now_us();
        let existing = self.by_procedure.get(procedure).copied();
        let id = if let Some((id, registration)) =
            existing.and_then(|id| self.registrations.get_mut(&id).map(|r| (id, r)))
        {
            if invoke == InvokePolicy::Single || registration.invoke != invoke {
                return Err(Refusal::new(
                    "wamp.error.procedure_already_exists",
                    format!(
                        "procedure {procedure} is already registered with invoke={}",
                        registration.invoke.as_str()
                    ),
                ));
            }
            if registration.callees.iter().any(|c| c.peer.id == callee.id) {
                return Err(Refusal::new(
                    "wamp.error.procedure_already_exists",
                    format!("this session already registered {procedure}"),
                ));
            }
            registration.callees.push(LocalCallee {
                peer: Arc::clone(callee),
                since_us,
            });
            id
        } else {
            let id = self.ids.next();
            self.by_procedure.insert(procedure.to_string(), id);
            let registration = Registration {
                procedure: procedure.to_string(),
                invoke,
                callees: vec![LocalCallee {
                    peer: Arc::clone(callee),
                    since_us,
                }],
                turn: 0,
            };
            self.registrations.insert(id, registration);
            id
        };
        self.remote
            .announce_registered(procedure, callee, invoke, since_us);
        Ok(id)
    }

    /// Removes `session` from registration `id`; false when it was not registered there.
    pub fn unregister(&mut self, session: Id, id: Id) -> bool {
        let Some(registration) = self.registrations.get_mut(&id) else {
            return false;
        };
        let before = registration.callees.len();
        registration.callees.retain(|c| c.peer.id != session);
        let removed = registration.callees.len() != before;
        if removed {
            self.remote
                .announce_unregistered(&registration.procedure, session);
        }
        if registration.callees.is_empty() {
            if let Some(registration) = self.registrations.remove(&id) {
                self.by_procedure.remove(&registration.procedure);
            }
        }
        removed
    }

    /// Routes a CALL to a callee, here as an INVOCATION or on another node; returns the key of the
    /// call in flight.
    pub fn call(
        &mut self,
        caller: &Arc<Peer>,
        request: Id,
        procedure: &str,
        call_options: &Dict,
        payload: Payload,
    ) -> Result<CallKey, Refusal> {
        let Some(target) = self.pick(procedure) else {
            return Err(Refusal::new(
                NO_SUCH_PROCEDURE,
                format!("no callee registered {procedure}"),
            ));
        };
        let receive_progress = options::flag(call_options, "receive_progress", false)
            && target.features().callee_progressive_call_results;
        let mut details = Dict::new();
        if receive_progress {
            details.insert("receive_progress".into(), Value::Bool(true));
        }
        if options::flag(call_options, "disclose_me", false) {
            details.insert("caller".into(), Value::from(caller.id));
            details.insert("caller_authid".into(), Value::from(caller.authid.clone()));
            details.insert(
                "caller_authrole".into(),
                Value::from(caller.authrole.clone()),
            );
        }
        let (callee, key) = match target {
            Target::Local { peer, registration } => {
                let invocation_request = peer.invocation_ids.next();
                let invocation = Message::Invocation {
                    request: invocation_request,
                    registration,
                    details,
                    payload,
                };
                if !peer.outbox.send_message(&invocation) {
                    return Err(Refusal::new(
                        CALLEE_UNAVAILABLE,
                        "the callee is not keeping up",
                    ));
                }
                let key = (peer.id, invocation_request);
                (Callee::Local(peer), key)
            }
            Target::Remote(remote) => {
                let call = self.call_ids.next();
                self.remote
                    .invoke(&remote, (caller.id, call), procedure, details, payload)?;
                let key = (remote.session, call);
                let callee = Callee::Remote {
                    node: remote.node,
                    session: remote.session,
                };
                (callee, key)
            }
        };
        self.by_call.insert((caller.id, request), key);
        caller.pending_calls.fetch_add(1, Ordering::Relaxed);
        let pending = PendingCall {
            caller: Caller::Local(Arc::clone(caller)),
            call_request: request,
            callee,
            receive_progress,
            timer: None,
            killed: false,
        };
        self.pending.insert(key, pending);
        Ok(key)
    }

    /// Remembers the timer of a call with `timeout`, so it is stopped when the call ends first.
    pub fn set_timer(&mut self, key: CallKey, timer: tokio::task::AbortHandle) {
        match self.pending.get_mut(&key) {
            Some(pending) => pending.timer = Some(timer),
            None => timer.abort(),
        }
    }

    fn finish(&mut self, key: CallKey) -> Option<PendingCall> {
        let pending = self.pending.remove(&key)?;
        self.by_call
            .remove(&(pending.caller.session(), pending.call_request));
        if let Caller::Local(peer) = &pending.caller {
            peer.pending_calls.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(timer) = &pending.timer {
            timer.abort();
        }
        Some(pending)
    }

    /// A callee's YIELD: a progressive result goes on to the caller (if it asked for them); a final one
    /// ends the call. YIELDs for calls no longer in flight are ignored.
    pub fn on_yield(&mut self, callee: Id, request: Id, yield_options: &Dict, payload: Payload) {
        let progress = options::flag(yield_options, "progress", false);
        self.on_result(callee, request, progress, payload);
    }

    /// A result for call `(callee, request)`, from a local callee's YIELD or another node's.
    pub(crate) fn on_result(&mut self, callee: Id, request: Id, progress: bool, payload: Payload) {
        let key = (callee, request);
        if progress {
            let Some(pending) = self
                .pending
                .get(&key)
                .filter(|p| p.receive_progress && !p.killed)
            else {
                return;
            };
            if !self.send_result(pending, true, payload) {
                // A caller on another node, and the link to it is backed up: a lost progressive
                // result would go unseen, so the call ends, explicitly, for both sides.
                if let Some(pending) = self.finish(key) {
                    if pending.callee.interruptible() {
                        self.interrupt(&pending, key, CancelMode::KillNoWait, CANCELED);
                    }
                    let why = "progressive results came faster than the cluster link passes them; \
                               the call was ended";
                    let payload = Payload::Args(vec![Value::from(why)]);
                    self.send_error(&pending, Dict::new(), CALLEE_UNAVAILABLE.into(), payload);
                }
            }
            return;
        }
        if let Some(pending) = self.finish(key) {
            if pending.killed {
                return self.fail_call(&pending, "the call was canceled");
            }
            self.send_result(&pending, false, payload);
        }
    }

    /// A callee's ERROR for an invocation (or another node's for a call it served): goes to the caller
    /// as the call's ERROR (as `wamp.error.canceled` once the caller canceled in `kill` mode).
    pub fn on_error(
        &mut self,
        callee: Id,
        request: Id,
        details: Dict,
        error: String,
        payload: Payload,
    ) {
        if let Some(pending) = self.finish((callee, request)) {
            if pending.killed {
                return self.fail_call(&pending, "the call was canceled");
            }
            self.send_error(&pending, details, error, payload);
        }
    }

    /// A caller's CANCEL (`reason` goes to the callee's INTERRUPT). Callees that do not support call
    /// canceling are treated with `skip`; a remote callee's node decides that for its callee.
    pub fn cancel(&mut self, caller: Id, request: Id, mode: CancelMode, reason: &str) {
        let Some(key) = self.by_call.get(&(caller, request)).copied() else {
            return;
        };
        let Some(pending) = self.pending.get(&key) else {
            return;
        };
        let mode = match &pending.callee {
            Callee::Local(peer) if !peer.features.callee_call_canceling => CancelMode::Skip,
            _ => mode,
        };
        if mode != CancelMode::Skip || matches!(pending.callee, Callee::Remote { .. }) {
            // A remote callee's node hears even `skip`: it forgets the call.
            self.interrupt(pending, key, mode, reason);
        }
        match (mode, &pending.callee) {
            // The callee's node sends the callee's answer (as canceled) when it comes.
            (CancelMode::Kill, Callee::Remote { .. }) => {}
            (CancelMode::Kill, Callee::Local(_)) => {
                if let Some(pending) = self.pending.get_mut(&key) {
                    pending.killed = true;
                }
            }
            _ => {
                if let Some(pending) = self.finish(key) {
                    self.fail_call(&pending, "the call was canceled");
                }
            }
        }
    }

    /// The timer of a call with `timeout` fired: interrupt the callee and fail the call.
    pub fn time_out(&mut self, key: CallKey, timeout_ms: u64) {
        let Some(pending) = self.finish(key) else {
            return;
        };
        if pending.callee.interruptible() {
            self.interrupt(&pending, key, CancelMode::KillNoWait, "wamp.error.timeout");
        }
        self.fail_call(
            &pending,
            &format!("the call timed out after {timeout_ms} ms"),
        );
    }

    /// Cleans up after a session that left: its registrations go, calls it was serving fail, calls it
    /// made are interrupted.
    pub fn remove_session(&mut self, session: Id, registrations: impl IntoIterator<Item = Id>) {
        for id in registrations {
            self.unregister(session, id);
        }
        let affected: Vec<CallKey> = self
            .pending
            .iter()
            .filter(|(_, p)| p.callee.session() == session || p.caller.session() == session)
            .map(|(key, _)| *key)
            .collect();
        for key in affected {
            let Some(pending) = self.finish(key) else {
                continue;
            };
            if pending.callee.session() == session {
                self.fail_call(&pending, "the callee left before answering");
            } else if pending.callee.interruptible() {
                self.interrupt(&pending, key, CancelMode::KillNoWait, CANCELED);
            }
        }
    }
}

#[cfg(test)]
mod tests;
