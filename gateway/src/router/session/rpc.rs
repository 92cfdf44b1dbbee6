//! REGISTER, UNREGISTER, CALL, CANCEL, YIELD and invocation ERRORs for a joined session.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use switchboard_config::MatchPolicy;

use super::super::authorize::Action;
use super::super::dealer::{CancelMode, InvokePolicy};
use super::super::Refusal;
use super::Session;
use crate::wamp::{code, options, Dict, Id, Message, Payload};

impl Session {
    pub(super) fn register(&mut self, request: Id, register_options: &Dict, procedure: String) {
        if options::text(register_options, "match").is_some_and(|m| m != "exact") {
            let refusal = Refusal::new(
                "wamp.error.invalid_argument",
                "pattern-based registration is not supported",
            );
            return self.refuse(code::REGISTER, request, refusal);
        }
        if let Err(refusal) = self.check(Action::Register, &procedure, MatchPolicy::Exact) {
            return self.refuse(code::REGISTER, request, refusal);
        }
        let invoke = InvokePolicy::from_option(options::text(register_options, "invoke"));
        let Some(joined) = self.joined_mut() else {
            return;
        };
        let registered = {
            let mut dealer = joined.realm.dealer();
            let registered = dealer.register(&joined.peer, &procedure, invoke);
            // Queued while the dealer is still locked: a CALL on another thread reaches the new callee
            // only after REGISTERED is in its queue, so no INVOCATION can precede it.
            if let Ok(registration) = registered {
                joined.peer.outbox.send_message(&Message::Registered {
                    request,
                    registration,
                });
            }
            registered
        };
        match registered {
            Ok(registration) => {
                joined.registrations.insert(registration);
                tracing::debug!(session = joined.peer.id, %procedure, registration, "registered");
            }
            Err(refusal) => self.refuse(code::REGISTER, request, refusal),
        }
    }

    pub(super) fn unregister(&mut self, request: Id, registration: Id) {
        let Some(joined) = self.joined_mut() else {
            return;
        };
        if !joined.registrations.remove(&registration) {
            let refusal = Refusal::new(
                "wamp.error.no_such_registration",
                format!("this session has no registration {registration}"),
            );
            return self.refuse(code::UNREGISTER, request, refusal);
        }
        joined
            .realm
            .dealer()
            .unregister(joined.peer.id, registration);
        self.send(&Message::Unregistered {
            request,
            details: None,
        });
    }

    pub(super) fn call(
        &mut self,
        request: Id,
        call_options: &Dict,
        procedure: &str,
        payload: Payload,
    ) {
        // Procedures the router answers itself, each with its own permission rule.
        match procedure {
            super::stored::GET_EVENTS => return self.get_events(request, &payload),
            super::views::MODEL_ROWS => return self.model_rows(request, &payload),
            super::testament::ADD_TESTAMENT => return self.add_testament(request, &payload),
            super::testament::FLUSH_TESTAMENTS => return self.flush_testaments(request, &payload),
            super::presence::SET_STATE => return self.set_state(request, &payload),
            super::presence::PRESENCE_LIST => return self.presence_list(request, &payload),
            _ => {}
        }
        if let Err(refusal) = self.check(Action::Call, procedure, MatchPolicy::Exact) {
            return self.refuse(code::CALL, request, refusal);
        }
        // The meta procedures, answered by the router once the role may call them.
        if super::meta::is_meta_procedure(procedure) {
            return self.meta_call(request, procedure, &payload);
        }
        let max = self.router.limits.max_pending_requests;
        let Some(joined) = self.joined() else { return };
        if joined.peer.pending_calls.load(Ordering::Relaxed) >= max {
            let refusal = Refusal::new(
                super::super::LIMIT_EXCEEDED,
                format!(
                    "this session already has {max} calls in flight, the most allowed \
                     (gateway.max_pending_requests)"
                ),
            );
            return self.refuse(code::CALL, request, refusal);
        }
        let routed =
            joined
                .realm
                .dealer()
                .call(&joined.peer, request, procedure, call_options, payload);
        let key = match routed {
            Ok(key) => key,
            Err(refusal) => return self.refuse(code::CALL, request, refusal),
        };
        let timeout_ms = options::number(call_options, "timeout").unwrap_or(0);
        if timeout_ms > 0 {
            let realm = Arc::downgrade(&joined.realm);
            let timer = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(timeout_ms)).await;
                if let Some(realm) = realm.upgrade() {
                    realm.dealer().time_out(key, timeout_ms);
                }
            });
            joined.realm.dealer().set_timer(key, timer.abort_handle());
        }
    }

    pub(super) fn cancel(&mut self, request: Id, cancel_options: &Dict) {
        let Some(joined) = self.joined() else { return };
        let mode = CancelMode::from_option(options::text(cancel_options, "mode"));
        joined
            .realm
            .dealer()
            .cancel(joined.peer.id, request, mode, "wamp.error.canceled");
    }

    pub(super) fn on_yield(&mut self, request: Id, yield_options: &Dict, payload: Payload) {
        let Some(joined) = self.joined() else { return };
        joined
            .realm
            .dealer()
            .on_yield(joined.peer.id, request, yield_options, payload);
    }

    pub(super) fn on_invocation_error(
        &mut self,
        request: Id,
        details: Dict,
        error: String,
        payload: Payload,
    ) {
        let Some(joined) = self.joined() else { return };
        joined
            .realm
            .dealer()
            .on_error(joined.peer.id, request, details, error, payload);
    }
}
