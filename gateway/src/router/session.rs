//! One client session's protocol state machine: HELLO (then CHALLENGE/AUTHENTICATE when authenticating,
//! see [`crate::auth`]) and WELCOME, then requests routed to the broker and dealer, until GOODBYE, ABORT or
//! the transport goes away. Transports hand it decoded messages; it answers
//! through the session's outbox and never blocks.

mod arguments;
mod meta;
mod presence;
mod pubsub;
mod rpc;
mod stored;
mod testament;
mod views;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;
use switchboard_config::{uri, MatchPolicy};

use super::authorize::{Action, Coverage, DecisionCache};
use super::outbox::{Closing, Outbox};
use super::peer::{ClientFeatures, Peer};
use super::{welcome, Realm, Refusal, Router};
use crate::auth::{self, HelloOutcome, Identity, Pending};
use crate::wamp::ids::{random_id, IdSequence};
use crate::wamp::{code, Dict, Id, Message};

use crate::wamp::refusal::PROTOCOL_VIOLATION;

/// A joined session's own bookkeeping (only this session touches it, so no lock).
struct Joined {
    realm: Arc<Realm>,
    peer: Arc<Peer>,
    subscriptions: HashSet<Id>,
    /// The subset of `subscriptions` that are prefix or wildcard patterns.
    patterns: HashSet<Id>,
    registrations: HashSet<Id>,
    /// Authorization decisions already taken for this session.
    permissions: DecisionCache,
    /// Events to publish once the session has left (see `session/testament.rs`), in the order added.
    testaments: Vec<testament::Testament>,
}

/// HELLO answered with CHALLENGE; waiting for AUTHENTICATE.
struct Challenged {
    realm: Arc<Realm>,
    pending: Pending,
    /// HELLO.Details, for the client's features at join.
    hello: Dict,
    /// The session id announced in the challenge.
    session: Id,
}

enum State {
    /// Waiting for HELLO (also after a GOODBYE, when the client may join again).
    Establishing,
    /// Waiting for AUTHENTICATE.
    Challenged(Box<Challenged>),
    Joined(Box<Joined>),
}

/// The protocol side of one connection.
pub struct Session {
    router: Arc<Router>,
    outbox: Arc<Outbox>,
    state: State,
    /// Set once we sent GOODBYE (shutdown), so the client's answering GOODBYE is not answered again.
    goodbye_sent: bool,
}

impl Session {
    /// A session on a fresh connection whose frames go out through `outbox`.
    pub fn new(router: Arc<Router>, outbox: Arc<Outbox>) -> Self {
        Session {
            router,
            outbox,
            state: State::Establishing,
            goodbye_sent: false,
        }
    }

    /// True between WELCOME and GOODBYE/ABORT.
    pub fn is_joined(&self) -> bool {
        matches!(self.state, State::Joined(_))
    }

    /// The session id once joined.
    pub fn id(&self) -> Option<Id> {
        match &self.state {
            State::Joined(joined) => Some(joined.peer.id),
            State::Establishing | State::Challenged(_) => None,
        }
    }

    /// Tells a joined client the gateway is going away (GOODBYE `wamp.close.system_shutdown`).
    pub fn shutdown(&mut self) {
        if self.is_joined() {
            self.goodbye_sent = true;
            self.leave();
            self.outbox.close(Closing::Goodbye {
                reason: "wamp.close.system_shutdown".into(),
                message: "the gateway is shutting down".into(),
            });
        } else {
            self.outbox.close(Closing::Silent);
        }
    }

    /// Aborts the session: ABORT with `reason` and `message`, then the transport closes.
    pub fn abort(&mut self, reason: &str, message: String) {
        metrics::counter!("switchboard_wamp_refusals_total", "error" => reason.to_string())
            .increment(1);
        if let Some(suppressed) = crate::throttle::allow("wamp_abort", reason) {
            tracing::warn!(session = self.id(), reason, %message, suppressed, "aborting session");
        }
        self.leave();
        self.outbox.close(Closing::Abort {
            reason: reason.to_string(),
            message,
        });
    }

    /// Leaves the realm (if joined), dropping subscriptions, registrations and calls in flight.
    pub fn leave(&mut self) {
        if let State::Joined(joined) = std::mem::replace(&mut self.state, State::Establishing) {
            tracing::debug!(session = joined.peer.id, realm = %joined.realm.name, "session left");
            metrics::gauge!("switchboard_subscriptions")
                .decrement(joined.subscriptions.len() as f64);
            joined
                .realm
                .leave(joined.peer.id, joined.subscriptions, joined.registrations);
            testament::publish_all(&joined.realm, joined.peer.id, joined.testaments);
        }
    }

    fn send(&self, message: &Message) {
        self.outbox.send_message(message);
    }

    /// Handles one decoded message (the transport checked its size and decoded it, see
    /// `transport/inbound.rs`). Nothing is handled once the session is closing.
    pub fn on_message(&mut self, message: Message) {
        if self.outbox.is_closing() {
            return;
        }
        if !self.is_joined() {
            return self.on_message_before_join(message);
        }
        match message {
            Message::Subscribe { request, options, topic } => self.subscribe(request, &options, topic),
            Message::Unsubscribe { request, subscription } => self.unsubscribe(request, subscription),
            Message::Publish { request, options, topic, payload } => self.publish(request, &options, &topic, payload),
            Message::Register { request, options, procedure } => self.register(request, &options, procedure),
            Message::Unregister { request, registration } => self.unregister(request, registration),
            Message::Call { request, options, procedure, payload } => self.call(request, &options, &procedure, payload),
            Message::Cancel { request, options } => self.cancel(request, &options),
            Message::Yield { request, options, payload } => self.on_yield(request, &options, payload),
            Message::Error { request_type: code::INVOCATION, request, details, error, payload } => {
                self.on_invocation_error(request, details, error, payload)
            }
            Message::Goodbye { reason, .. } => {
                tracing::debug!(session = self.id(), %reason, "client said goodbye");
                self.leave();
                if self.goodbye_sent {
                    self.outbox.close(Closing::Silent);
                } else {
                    self.send(&Message::Goodbye { details: Dict::new(), reason: "wamp.close.goodbye_and_out".into() });
                }
            }
            Message::Abort { reason, .. } => {
                tracing::debug!(session = self.id(), %reason, "client aborted");
                self.leave();
                self.outbox.close(Closing::Silent);
            }
            Message::Hello { .. } => self.abort(PROTOCOL_VIOLATION, "HELLO received in an established session".into()),
            Message::Authenticate { .. } => {
                self.abort(PROTOCOL_VIOLATION, "AUTHENTICATE received in an established session".into())
            }
            Message::Error { request_type, .. } => self.abort(
                PROTOCOL_VIOLATION,
                format!("a client may send ERROR only for INVOCATION (68), not for request type {request_type}"),
            ),
            other => self.abort(
                PROTOCOL_VIOLATION,
                format!("{} is not a message a client may send to a router", other.name()),
            ),
        }
    }

    fn on_message_before_join(&mut self, message: Message) {
        let challenged = matches!(self.state, State::Challenged(_));
        match message {
            Message::Hello { realm, details } if !challenged => self.hello(realm, details),
            Message::Authenticate { signature, .. } if challenged => self.authenticate(&signature),
            Message::Abort { .. } => {
                self.state = State::Establishing;
                self.outbox.close(Closing::Silent);
            }
            other if challenged => self.abort(
                PROTOCOL_VIOLATION,
                format!("received {} while waiting for AUTHENTICATE", other.name()),
            ),
            other => self.abort(
                PROTOCOL_VIOLATION,
                format!("received {} before HELLO", other.name()),
            ),
        }
    }

    fn hello(&mut self, realm_name: String, details: Dict) {
        if let Err(reason) = uri::validate(&realm_name, MatchPolicy::Exact) {
            return self.abort("wamp.error.invalid_uri", format!("invalid realm: {reason}"));
        }
        let roles_ok = details
            .get("roles")
            .and_then(Value::as_object)
            .is_some_and(|r| !r.is_empty());
        if !roles_ok {
            return self.abort(
                PROTOCOL_VIOLATION,
                "HELLO.Details.roles must be a dict naming at least one role".into(),
            );
        }
        let Some(realm) = self.router.realm(&realm_name).cloned() else {
            return self.abort(
                "wamp.error.no_such_realm",
                format!("no realm named {realm_name}"),
            );
        };
        let session = random_id();
        match auth::hello(&realm.auth, self.router.tickets.as_ref(), &details, session) {
            HelloOutcome::Welcome(identity) => self.join(realm, identity, &details, None),
            HelloOutcome::Challenge {
                authmethod,
                extra,
                pending,
            } => {
                self.send(&Message::Challenge {
                    authmethod: authmethod.to_string(),
                    extra,
                });
                self.state = State::Challenged(Box::new(Challenged {
                    realm,
                    pending,
                    hello: details,
                    session,
                }));
            }
            HelloOutcome::Abort(refusal) => self.abort(refusal.uri, refusal.message),
        }
    }

    fn authenticate(&mut self, signature: &str) {
        let State::Challenged(challenged) = std::mem::replace(&mut self.state, State::Establishing)
        else {
            return;
        };
        let Challenged {
            realm,
            pending,
            hello,
            session,
        } = *challenged;
        match pending.authenticate(&realm.auth, self.router.tickets.as_ref(), signature) {
            Ok(identity) => self.join(realm, identity, &hello, Some(session)),
            Err(refusal) => self.abort(refusal.uri, refusal.message),
        }
    }

    fn join(&mut self, realm: Arc<Realm>, identity: Identity, hello: &Dict, id: Option<Id>) {
        let grants = realm.grants_of(&identity.roles);
        let outbox = Arc::clone(&self.outbox);
        let authrole = identity.authrole().to_string();
        let roles = identity.roles.clone();
        let max_per_authid = self.router.limits.max_sessions_per_authid;
        let authid = identity.authid.clone();
        let joined = realm.join(id, &authid, max_per_authid, |id| Peer {
            id,
            authid: identity.authid,
            authrole,
            roles,
            authmethod: identity.authmethod,
            grants,
            features: ClientFeatures::from_hello(hello),
            outbox,
            invocation_ids: IdSequence::default(),
            pending_calls: Default::default(),
        });
        let peer = match joined {
            Ok(peer) => peer,
            Err(refusal) => return self.abort(refusal.uri, refusal.message),
        };
        let details = welcome::details(
            &realm.name,
            &peer.authid,
            &peer.authrole,
            identity.authmethod,
        );
        self.send(&Message::Welcome {
            session: peer.id,
            details,
        });
        tracing::debug!(session = peer.id, realm = %realm.name, authid = %peer.authid, authrole = %peer.authrole, authmethod = identity.authmethod, "session joined");
        realm.meta_joined(&peer);
        self.goodbye_sent = false;
        self.state = State::Joined(Box::new(Joined {
            realm,
            peer,
            subscriptions: HashSet::new(),
            patterns: HashSet::new(),
            registrations: HashSet::new(),
            permissions: DecisionCache::default(),
            testaments: Vec::new(),
        }));
    }

    fn joined(&self) -> Option<&Joined> {
        match &self.state {
            State::Joined(joined) => Some(joined),
            State::Establishing | State::Challenged(_) => None,
        }
    }

    fn joined_mut(&mut self) -> Option<&mut Joined> {
        match &mut self.state {
            State::Joined(joined) => Some(joined),
            State::Establishing | State::Challenged(_) => None,
        }
    }

    /// Checks a URI and the session's permission for an action on it: for an exact URI whether the role
    /// may act on it (cached per session, see [`DecisionCache`]); for a pattern, how much of what it can
    /// match the role may act on. A pattern that can match nothing allowed is refused; one that can match
    /// some allowed topics is accepted with [`Coverage::Some`], and each event is checked on delivery.
    fn check(
        &mut self,
        action: Action,
        uri_text: &str,
        policy: MatchPolicy,
    ) -> Result<Coverage, Refusal> {
        let max_uri_bytes = self.router.limits.max_uri_bytes;
        if uri_text.len() > max_uri_bytes {
            return Err(Refusal::new(
                "wamp.error.invalid_uri",
                format!(
                    "URI of {} bytes exceeds the limit of {max_uri_bytes} bytes (gateway.max_uri_bytes)",
                    uri_text.len()
                ),
            ));
        }
        uri::validate(uri_text, policy)
            .map_err(|reason| Refusal::new("wamp.error.invalid_uri", reason))?;
        if matches!(action, Action::Publish | Action::Register) && uri::is_reserved(uri_text) {
            return Err(Refusal::new(
                "wamp.error.not_authorized",
                format!(
                    "{uri_text} is under wamp. or switchboard., which belong to the router: no client may {} it",
                    action.as_str()
                ),
            ));
        }
        let joined = self
            .joined_mut()
            .ok_or_else(|| Refusal::new(PROTOCOL_VIOLATION, "not joined"))?;
        let grants = &joined.peer.grants;
        let coverage = if policy == MatchPolicy::Exact {
            if joined.permissions.allows(grants, action, uri_text) {
                Coverage::All
            } else {
                Coverage::None
            }
        } else {
            grants.coverage(action, uri_text, policy)
        };
        if coverage != Coverage::None {
            return Ok(coverage);
        }
        let what = match policy {
            MatchPolicy::Exact => uri_text.to_string(),
            policy => format!(
                "any topic matching the {} pattern {uri_text:?}",
                policy.as_str()
            ),
        };
        Err(Refusal::new(
            "wamp.error.not_authorized",
            format!(
                "role {} may not {} {what}",
                joined.peer.authrole,
                action.as_str()
            ),
        ))
    }

    /// Answers a refused request with ERROR, counts it and logs it (rate-limited).
    fn refuse(&self, request_type: u64, request: Id, refusal: Refusal) {
        note_refusal(self.id(), &refusal);
        self.send(&Message::error(
            request_type,
            request,
            refusal.uri,
            refusal.message,
        ));
    }
}

/// Counts a refused request in `/metrics` and logs it, at most one line per error URI per interval.
pub(super) fn note_refusal(session: Option<Id>, refusal: &Refusal) {
    metrics::counter!("switchboard_wamp_refusals_total", "error" => refusal.uri).increment(1);
    if let Some(suppressed) = crate::throttle::allow("wamp_refusal", refusal.uri) {
        tracing::warn!(session, uri = refusal.uri, message = %refusal.message, suppressed, "request refused");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests;
