//! The presence procedures (see `router/presence.rs`): `switchboard.session.set_state(state)` sets the
//! calling session's public state (a dict, as the first positional argument or as the keyword arguments;
//! at most 4 KiB as JSON), and `switchboard.presence.list(topic)` answers `[[{authid, state, sessions}]]`,
//! the authids holding an exact subscription to `topic`.
//!
//! Permissions: `set_state` needs none (it only concerns the calling session); `list` needs the caller's
//! role to be allowed to subscribe to `topic` (else `wamp.error.not_authorized`). Presence EVENTS are
//! ordinary events on `switchboard.presence.<topic>`: seeing them needs subscribe on that topic.

use serde_json::Value;
use switchboard_config::MatchPolicy;

use super::super::authorize::Action;
use super::super::presence::MAX_STATE_BYTES;
use super::super::{Refusal, LIMIT_EXCEEDED};
use super::arguments::{answer_budget, invalid, Arguments, ANSWER_TOO_LARGE};
use super::Session;
use crate::wamp::{code, Dict, Id, Message, Payload};
use switchboard_wire::event::json_len;

/// The procedure that sets the calling session's public state.
pub(crate) const SET_STATE: &str = "switchboard.session.set_state";

/// The procedure that lists who is present on a topic.
pub(crate) const PRESENCE_LIST: &str = "switchboard.presence.list";

/// `set_state`'s state: `args[0]` when given (a dict), else the keyword arguments.
fn state_of(payload: &Payload) -> Result<Dict, Refusal> {
    let usage = format!("{SET_STATE}(state) or {SET_STATE}(**state)");
    let (first, kwargs) = match payload {
        Payload::Empty => (None, None),
        Payload::Args(args) => (args.first(), None),
        Payload::ArgsKwargs(args, kwargs) => (args.first(), Some(kwargs)),
        Payload::Transparent(_) => {
            return Err(invalid(format!("{SET_STATE} takes plain arguments")))
        }
    };
    let state = match (first, kwargs) {
        (Some(Value::Object(state)), _) => state.clone(),
        (Some(other), _) => {
            return Err(invalid(format!(
                "{usage}: the state must be a dict, got {other}"
            )))
        }
        (None, Some(kwargs)) => kwargs.clone(),
        (None, None) => Dict::new(),
    };
    let bytes = json_len(&state);
    if bytes > MAX_STATE_BYTES {
        return Err(Refusal::new(
            LIMIT_EXCEEDED,
            format!(
                "a state of {bytes} bytes as JSON exceeds the limit of {MAX_STATE_BYTES} bytes"
            ),
        ));
    }
    Ok(state)
}

impl Session {
    /// Answers `switchboard.session.set_state`: an empty RESULT once set (and announced).
    pub(super) fn set_state(&mut self, request: Id, payload: &Payload) {
        let state = match state_of(payload) {
            Ok(state) => state,
            Err(refusal) => return self.refuse(code::CALL, request, refusal),
        };
        let Some(joined) = self.joined() else { return };
        joined
            .realm
            .presence_set_state(joined.peer.id, &joined.peer.authid, Value::Object(state));
        self.send(&Message::Result {
            request,
            details: Dict::new(),
            payload: Payload::Empty,
        });
    }

    /// Answers `switchboard.presence.list(topic)`: `[[{authid, state, sessions}]]`, by authid.
    pub(super) fn presence_list(&mut self, request: Id, payload: &Payload) {
        let topic =
            match Arguments::of(PRESENCE_LIST, payload).and_then(|arguments| {
                match arguments.get(Some(0), "topic") {
                    Some(Value::String(topic)) => Ok(topic.clone()),
                    Some(other) => Err(invalid(format!(
                        "{PRESENCE_LIST}(topic): topic must be a URI, got {other}"
                    ))),
                    None => Err(invalid(format!(
                        "{PRESENCE_LIST}(topic): the topic is missing"
                    ))),
                }
            }) {
                Ok(topic) => topic,
                Err(refusal) => return self.refuse(code::CALL, request, refusal),
            };
        if let Err(refusal) = self.check(Action::Subscribe, &topic, MatchPolicy::Exact) {
            return self.refuse(code::CALL, request, refusal);
        }
        let budget = answer_budget(self.router.limits.queue.max_bytes);
        let Some(joined) = self.joined() else { return };
        let members = Value::Array(joined.realm.presence_list(&topic));
        let bytes = json_len(&members);
        if bytes > budget {
            let refusal = Refusal::new(
                ANSWER_TOO_LARGE,
                format!(
                    "the presence of {topic} would take {bytes} bytes, over this session's budget of \
                     {budget} bytes (half of gateway.outbound_queue_bytes)"
                ),
            );
            return self.refuse(code::CALL, request, refusal);
        }
        self.send(&Message::Result {
            request,
            details: Dict::new(),
            payload: Payload::Args(vec![members]),
        });
    }
}
