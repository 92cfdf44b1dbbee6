//! The dealer: registrations (single or shared with an invocation policy) and calls in flight, with
//! progressive results, cancellation (skip, kill, killnowait) and timeouts.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rand::Rng;
use serde_json::Value;

use super::peer::Peer;
use super::Refusal;
use crate::wamp::ids::IdSequence;
use crate::wamp::{code, options, Dict, Id, Message, Payload};

/// How a shared registration picks its callee (the `invoke` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokePolicy {
    /// Only one callee may register.
    Single,
    /// Callees in turn.
    RoundRobin,
    /// A random callee.
    Random,
    /// The callee that registered first.
    First,
    /// The callee that registered last.
    Last,
}

impl InvokePolicy {
    /// Parses the `invoke` option (already checked by the decoder); absent means `single`.
    pub fn from_option(name: Option<&str>) -> Self {
        match name {
            Some("roundrobin") => Self::RoundRobin,
            Some("random") => Self::Random,
            Some("first") => Self::First,
            Some("last") => Self::Last,
            _ => Self::Single,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::RoundRobin => "roundrobin",
            Self::Random => "random",
            Self::First => "first",
            Self::Last => "last",
        }
    }
}

/// How a caller's CANCEL treats the running invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelMode {
    /// Answer the caller at once; let the callee finish unaware.
    Skip,
    /// Interrupt the callee and answer the caller with the callee's reply.
    Kill,
    /// Interrupt the callee and answer the caller at once.
    KillNoWait,
}

impl CancelMode {
    /// Parses CANCEL.Options.mode (already checked by the decoder); absent means `kill`.
    pub fn from_option(name: Option<&str>) -> Self {
        match name {
            Some("skip") => Self::Skip,
            Some("killnowait") => Self::KillNoWait,
            _ => Self::Kill,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Kill => "kill",
            Self::KillNoWait => "killnowait",
        }
    }
}

#[derive(Debug)]
struct Registration {
    procedure: String,
    invoke: InvokePolicy,
    callees: Vec<Arc<Peer>>,
    turn: usize,
}

/// A call in flight, keyed by (callee session, INVOCATION request id).
#[derive(Debug)]
struct PendingCall {
    caller: Arc<Peer>,
    call_request: Id,
    callee: Arc<Peer>,
    receive_progress: bool,
    timer: Option<tokio::task::AbortHandle>,
    /// The caller canceled in `kill` mode: whatever the callee answers, the caller gets
    /// `wamp.error.canceled`.
    killed: bool,
}

/// Key of a call in flight: (callee session, INVOCATION request id).
pub type CallKey = (Id, Id);

/// All registrations and calls in flight of one realm.
#[derive(Debug, Default)]
pub struct Dealer {
    registrations: HashMap<Id, Registration>,
    by_procedure: HashMap<String, Id>,
    ids: IdSequence,
    pending: HashMap<CallKey, PendingCall>,
    by_call: HashMap<(Id, Id), CallKey>,
}

const CANCELED: &str = "wamp.error.canceled";

impl Dealer {
    /// Registers `callee` for `procedure`. A second callee joins only when both ask for the same shared
    /// policy; otherwise `wamp.error.procedure_already_exists`.
    pub fn register(
        &mut self,
        callee: &Arc<Peer>,
        procedure: &str,
        invoke: InvokePolicy,
    ) -> Result<Id, Refusal> {
        let existing = self.by_procedure.get(procedure).copied();
        if let Some((id, registration)) =
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
            if registration.callees.iter().any(|p| p.id == callee.id) {
                return Err(Refusal::new(
                    "wamp.error.procedure_already_exists",
                    format!("this session already registered {procedure}"),
                ));
            }
            registration.callees.push(Arc::clone(callee));
            return Ok(id);
        }
        let id = self.ids.next();
        self.by_procedure.insert(procedure.to_string(), id);
        let registration = Registration {
            procedure: procedure.to_string(),
            invoke,
            callees: vec![Arc::clone(callee)],
            turn: 0,
        };
        self.registrations.insert(id, registration);
        Ok(id)
    }

    /// Removes `session` from registration `id`; false when it was not registered there.
    pub fn unregister(&mut self, session: Id, id: Id) -> bool {
        let Some(registration) = self.registrations.get_mut(&id) else {
            return false;
        };
        let before = registration.callees.len();
        registration.callees.retain(|p| p.id != session);
        let removed = registration.callees.len() != before;
        if registration.callees.is_empty() {
            if let Some(registration) = self.registrations.remove(&id) {
                self.by_procedure.remove(&registration.procedure);
            }
        }
        removed
    }

    /// Routes a CALL to a callee as an INVOCATION; returns the key of the call in flight.
    pub fn call(
        &mut self,
        caller: &Arc<Peer>,
        request: Id,
        procedure: &str,
        call_options: &Dict,
        payload: Payload,
    ) -> Result<CallKey, Refusal> {
        let found = self.by_procedure.get(procedure).copied();
        let Some((registration_id, registration)) = found
            .and_then(|id| self.registrations.get_mut(&id).map(|r| (id, r)))
            .filter(|(_, r)| !r.callees.is_empty())
        else {
            return Err(Refusal::new(
                "wamp.error.no_such_procedure",
                format!("no callee registered {procedure}"),
            ));
        };
        let index = match registration.invoke {
            InvokePolicy::Single | InvokePolicy::First => 0,
            InvokePolicy::Last => registration.callees.len() - 1,
            InvokePolicy::Random => rand::rng().random_range(0..registration.callees.len()),
            InvokePolicy::RoundRobin => {
                registration.turn = registration.turn.wrapping_add(1);
                registration.turn % registration.callees.len()
            }
        };
        let callee = Arc::clone(&registration.callees[index]);
        let receive_progress = options::flag(call_options, "receive_progress", false)
            && callee.features.callee_progressive_call_results;
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
        let invocation_request = callee.invocation_ids.next();
        let invocation = Message::Invocation {
            request: invocation_request,
            registration: registration_id,
            details,
            payload,
        };
        if !callee.outbox.send_message(&invocation) {
            return Err(Refusal::new(
                "switchboard.error.callee_unavailable",
                "the callee is not keeping up",
            ));
        }
        let key = (callee.id, invocation_request);
        self.by_call.insert((caller.id, request), key);
        caller.pending_calls.fetch_add(1, Ordering::Relaxed);
        let pending = PendingCall {
            caller: Arc::clone(caller),
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
            .remove(&(pending.caller.id, pending.call_request));
        pending.caller.pending_calls.fetch_sub(1, Ordering::Relaxed);
        if let Some(timer) = &pending.timer {
            timer.abort();
        }
        Some(pending)
    }

    /// A callee's YIELD: a progressive result goes on to the caller (if it asked for them); a final one
    /// ends the call. YIELDs for calls no longer in flight are ignored.
    pub fn on_yield(&mut self, callee: Id, request: Id, yield_options: &Dict, payload: Payload) {
        let key = (callee, request);
        if options::flag(yield_options, "progress", false) {
            if let Some(pending) = self
                .pending
                .get(&key)
                .filter(|p| p.receive_progress && !p.killed)
            {
                let mut details = Dict::new();
                details.insert("progress".into(), Value::Bool(true));
                let result = Message::Result {
                    request: pending.call_request,
                    details,
                    payload,
                };
                pending.caller.outbox.send_message(&result);
            }
            return;
        }
        if let Some(pending) = self.finish(key) {
            if pending.killed {
                return fail_call(&pending, "the call was canceled");
            }
            let result = Message::Result {
                request: pending.call_request,
                details: Dict::new(),
                payload,
            };
            pending.caller.outbox.send_message(&result);
        }
    }

    /// A callee's ERROR for an invocation: goes to the caller as the call's ERROR (as
    /// `wamp.error.canceled` once the caller canceled in `kill` mode).
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
                return fail_call(&pending, "the call was canceled");
            }
            let message = Message::Error {
                request_type: code::CALL,
                request: pending.call_request,
                details,
                error,
                payload,
            };
            pending.caller.outbox.send_message(&message);
        }
    }

    /// A caller's CANCEL. Callees that do not support call canceling are treated with `skip`.
    pub fn cancel(&mut self, caller: Id, request: Id, mode: CancelMode) {
        let Some(key) = self.by_call.get(&(caller, request)).copied() else {
            return;
        };
        let Some(pending) = self.pending.get(&key) else {
            return;
        };
        let mode = if pending.callee.features.callee_call_canceling {
            mode
        } else {
            CancelMode::Skip
        };
        if mode != CancelMode::Skip {
            interrupt(&pending.callee, key.1, mode, CANCELED);
        }
        if mode == CancelMode::Kill {
            if let Some(pending) = self.pending.get_mut(&key) {
                pending.killed = true;
            }
        }
        if mode != CancelMode::Kill {
            if let Some(pending) = self.finish(key) {
                fail_call(&pending, "the call was canceled");
            }
        }
    }

    /// The timer of a call with `timeout` fired: interrupt the callee and fail the call.
    pub fn time_out(&mut self, key: CallKey, timeout_ms: u64) {
        let Some(pending) = self.finish(key) else {
            return;
        };
        if pending.callee.features.callee_call_canceling {
            interrupt(
                &pending.callee,
                key.1,
                CancelMode::KillNoWait,
                "wamp.error.timeout",
            );
        }
        fail_call(
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
            .filter(|(_, p)| p.callee.id == session || p.caller.id == session)
            .map(|(key, _)| *key)
            .collect();
        for key in affected {
            let Some(pending) = self.finish(key) else {
                continue;
            };
            if pending.callee.id == session {
                fail_call(&pending, "the callee left before answering");
            } else if pending.callee.features.callee_call_canceling {
                interrupt(&pending.callee, key.1, CancelMode::KillNoWait, CANCELED);
            }
        }
    }
}

/// Sends INTERRUPT for invocation `request` to `callee`.
fn interrupt(callee: &Peer, request: Id, mode: CancelMode, reason: &str) {
    let mut interrupt_options = Dict::new();
    interrupt_options.insert("mode".into(), Value::from(mode.as_str()));
    interrupt_options.insert("reason".into(), Value::from(reason));
    callee.outbox.send_message(&Message::Interrupt {
        request,
        options: interrupt_options,
    });
}

/// Ends a call for its caller with ERROR `wamp.error.canceled` and `why`.
fn fail_call(pending: &PendingCall, why: &str) {
    let error = Message::error(code::CALL, pending.call_request, CANCELED, why);
    pending.caller.outbox.send_message(&error);
}
