//! Testaments (the WAMP advanced profile's testament meta API): events a session asks the router to
//! publish for it once it is gone. `wamp.session.add_testament(topic, args, kwargs, publish_options=,
//! scope=)` stores one; `wamp.session.flush_testaments(scope=)` drops those of a scope and answers how many.
//! When the session leaves its realm, however it leaves (GOODBYE, ABORT, the connection cut, a kick, a
//! slow-consumer close, shutdown: every way ends in `Session::leave`), its testaments are published through
//! [`Realm::publish`](super::super::Realm::publish) in the order they were added, with no publisher.
//!
//! Scopes: `destroyed` (the default) and `detached`. Switchboard has no session resumption, so a session
//! is detached and destroyed at the same moment: both scopes are published when it leaves.
//!
//! Permissions: calling these two procedures needs no call permission (they only concern the calling
//! session itself); the testament's topic is checked at `add_testament` time as a PUBLISH by the session's
//! role, reserved `wamp.`/`switchboard.` topics included, and refused with `wamp.error.not_authorized`.

use serde_json::Value;
use switchboard_config::MatchPolicy;

use super::super::authorize::Action;
use super::super::publish::Outgoing;
use super::super::{Realm, Refusal, LIMIT_EXCEEDED};
use super::arguments::{invalid, Arguments};
use super::Session;
use crate::wamp::{code, options, Dict, Id, Message, Payload};
use switchboard_wire::event::json_len;

/// The procedure that stores a testament.
pub(crate) const ADD_TESTAMENT: &str = "wamp.session.add_testament";

/// The procedure that drops a session's testaments of one scope.
pub(crate) const FLUSH_TESTAMENTS: &str = "wamp.session.flush_testaments";

/// Most testaments one session may hold.
pub(crate) const MAX_TESTAMENTS: usize = 16;

/// When a testament is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// When the session is destroyed (the default).
    Destroyed,
    /// When the session is detached from its transport: without resumption, the same moment.
    Detached,
}

impl Scope {
    fn parse(value: Option<&Value>) -> Result<Self, Refusal> {
        match value {
            None => Ok(Scope::Destroyed),
            Some(Value::String(s)) if s == "destroyed" => Ok(Scope::Destroyed),
            Some(Value::String(s)) if s == "detached" => Ok(Scope::Detached),
            Some(other) => Err(invalid(format!(
                "scope must be \"destroyed\" or \"detached\", got {other}"
            ))),
        }
    }
}

/// One stored testament.
#[derive(Debug)]
pub(super) struct Testament {
    topic: String,
    payload: Payload,
    options: Dict,
    scope: Scope,
}

/// `add_testament`'s arguments, checked (the topic's permission is checked by the session).
fn asked(payload: &Payload) -> Result<Testament, Refusal> {
    let usage = format!("{ADD_TESTAMENT}(topic, args, kwargs, publish_options=, scope=)");
    let arguments = Arguments::of(ADD_TESTAMENT, payload)?;
    let topic = match arguments.get(Some(0), "topic") {
        Some(Value::String(topic)) => topic.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "{usage}: topic must be a URI, got {other}"
            )))
        }
        None => return Err(invalid(format!("{usage}: the topic is missing"))),
    };
    let args = match arguments.get(Some(1), "args") {
        None => Vec::new(),
        Some(Value::Array(args)) => args.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "{usage}: args must be a list, got {other}"
            )))
        }
    };
    let kwargs = match arguments.get(Some(2), "kwargs") {
        None => Dict::new(),
        Some(Value::Object(kwargs)) => kwargs.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "{usage}: kwargs must be a dict, got {other}"
            )))
        }
    };
    let mut publish_options = match arguments.get(Some(3), "publish_options") {
        None => Dict::new(),
        Some(Value::Object(publish_options)) => publish_options.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "{usage}: publish_options must be a dict of PUBLISH options, got {other}"
            )))
        }
    };
    options::check(code::PUBLISH, "publish_options", &publish_options)
        .map_err(|reason| invalid(format!("{usage}: {reason}")))?;
    // Nobody is left to acknowledge, exclude or disclose when a testament is published.
    for key in ["acknowledge", "exclude_me", "disclose_me"] {
        publish_options.remove(key);
    }
    let scope = Scope::parse(arguments.get(Some(4), "scope"))?;
    Ok(Testament {
        topic,
        payload: Payload::from_parts(args, kwargs),
        options: publish_options,
        scope,
    })
}

impl Testament {
    /// The size of the PUBLISH this testament stands for, roughly as it would be on the wire.
    fn bytes(&self) -> usize {
        self.topic.len() + self.payload.json_len() + json_len(&self.options) + 32
    }
}

/// Publishes what a session that left `realm` asked for, in the order it was added.
pub(super) fn publish_all(realm: &Realm, session: Id, testaments: Vec<Testament>) {
    for testament in testaments {
        let id = crate::wamp::ids::random_id();
        // In a cluster nobody waits for the append: a refused one is counted and logged by the log.
        let accepted = realm.publish(Outgoing {
            id,
            topic: &testament.topic,
            payload: &testament.payload,
            options: &testament.options,
            publisher: None,
        });
        metrics::counter!("switchboard_testaments_published_total").increment(1);
        tracing::debug!(session, topic = %testament.topic, publication = id, fanout = ?accepted.fanout(), "testament published");
    }
}

impl Session {
    /// Answers `wamp.session.add_testament`: an empty RESULT once stored.
    pub(super) fn add_testament(&mut self, request: Id, payload: &Payload) {
        let testament = match asked(payload) {
            Ok(testament) => testament,
            Err(refusal) => return self.refuse(code::CALL, request, refusal),
        };
        if let Err(refusal) = self.check(Action::Publish, &testament.topic, MatchPolicy::Exact) {
            return self.refuse(code::CALL, request, refusal);
        }
        let max_bytes = self.router.limits.max_message_bytes;
        let bytes = testament.bytes();
        if bytes > max_bytes {
            let refusal = Refusal::new(
                LIMIT_EXCEEDED,
                format!(
                    "a testament of {bytes} bytes exceeds the limit of {max_bytes} bytes \
                     (gateway.max_message_bytes)"
                ),
            );
            return self.refuse(code::CALL, request, refusal);
        }
        let Some(joined) = self.joined_mut() else {
            return;
        };
        if joined.testaments.len() >= MAX_TESTAMENTS {
            let refusal = Refusal::new(
                LIMIT_EXCEEDED,
                format!(
                    "this session already holds {MAX_TESTAMENTS} testaments, the most allowed \
                     (flush them with {FLUSH_TESTAMENTS})"
                ),
            );
            return self.refuse(code::CALL, request, refusal);
        }
        tracing::debug!(session = joined.peer.id, topic = %testament.topic, scope = ?testament.scope, "testament added");
        joined.testaments.push(testament);
        self.send(&Message::Result {
            request,
            details: Dict::new(),
            payload: Payload::Empty,
        });
    }

    /// Answers `wamp.session.flush_testaments(scope=)`: drops this session's testaments of that scope
    /// (`destroyed` when absent) and answers how many.
    pub(super) fn flush_testaments(&mut self, request: Id, payload: &Payload) {
        let scope = match Arguments::of(FLUSH_TESTAMENTS, payload)
            .and_then(|arguments| Scope::parse(arguments.get(Some(0), "scope")))
        {
            Ok(scope) => scope,
            Err(refusal) => return self.refuse(code::CALL, request, refusal),
        };
        let Some(joined) = self.joined_mut() else {
            return;
        };
        let before = joined.testaments.len();
        joined.testaments.retain(|t| t.scope != scope);
        let flushed = before - joined.testaments.len();
        self.send(&Message::Result {
            request,
            details: Dict::new(),
            payload: Payload::Args(vec![Value::from(flushed)]),
        });
    }
}
