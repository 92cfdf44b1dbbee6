//! The session and subscription meta procedures (`wamp.session.count`, `list`, `get`, `kill`,
//! `kill_by_authid`, `kill_by_authrole`; `wamp.subscription.list`, `lookup`, `match`, `get`,
//! `list_subscribers`, `count_subscribers`), answered by the router in the WAMP spec's shapes. They are
//! permission-checked like any procedure (see `rpc.rs`): only a role allowed to call them gets them.

use serde_json::{json, Value};
use switchboard_config::{uri, MatchPolicy};

use super::super::admin::KILLED_REASON;
use super::super::meta::session_details;
use super::super::outbox::Closing;
use super::super::Refusal;
use super::arguments::{answer_budget, invalid, Arguments, ANSWER_TOO_LARGE};
use super::Session;
use crate::wamp::{code, Dict, Id, Message, Payload};

/// Every meta procedure the router answers.
const PROCEDURES: &[&str] = &[
    "wamp.session.count",
    "wamp.session.list",
    "wamp.session.get",
    "wamp.session.kill",
    "wamp.session.kill_by_authid",
    "wamp.session.kill_by_authrole",
    "wamp.subscription.list",
    "wamp.subscription.lookup",
    "wamp.subscription.match",
    "wamp.subscription.get",
    "wamp.subscription.list_subscribers",
    "wamp.subscription.count_subscribers",
];

/// Is `procedure` one of the meta procedures the router answers?
pub(super) fn is_meta_procedure(procedure: &str) -> bool {
    PROCEDURES.contains(&procedure)
}

fn no_such_session(id: Id) -> Refusal {
    Refusal::new("wamp.error.no_such_session", format!("no session {id}"))
}

fn no_such_subscription(id: Id) -> Refusal {
    Refusal::new(
        "wamp.error.no_such_subscription",
        format!("no subscription {id}"),
    )
}

/// `filter_authroles`: a list of role names, `None` when absent (every role).
fn authroles(arguments: &Arguments<'_>) -> Result<Option<Vec<String>>, Refusal> {
    let name = "filter_authroles";
    match arguments.get(Some(0), name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| invalid(format!("{name} must be a list of strings"))),
        Some(other) => Err(invalid(format!(
            "{name} must be a list of strings, got {other}"
        ))),
    }
}

/// The GOODBYE of a kill: `reason` (a URI, default `wamp.close.killed`) and `message` keyword arguments.
fn goodbye(arguments: &Arguments<'_>) -> Result<Closing, Refusal> {
    let reason = arguments.text(None, "reason")?.unwrap_or(KILLED_REASON);
    uri::validate(reason, MatchPolicy::Exact)
        .map_err(|fault| invalid(format!("reason must be a URI: {fault}")))?;
    let message = arguments
        .text(None, "message")?
        .unwrap_or("killed by another session");
    Ok(Closing::Goodbye {
        reason: reason.to_string(),
        message: message.to_string(),
    })
}

/// A single positional result.
fn one(value: Value) -> Payload {
    Payload::Args(vec![value])
}

impl Session {
    /// Answers a meta procedure (its call permission was checked by the caller).
    pub(super) fn meta_call(&mut self, request: Id, procedure: &str, payload: &Payload) {
        match self.meta_answer(procedure, payload) {
            Ok(payload) => {
                let budget = answer_budget(self.router.limits.queue.max_bytes);
                let bytes = payload.json_len();
                if bytes > budget {
                    let refusal = Refusal::new(
                        ANSWER_TOO_LARGE,
                        format!(
                            "the answer of {procedure} would take {bytes} bytes, over this session's \
                             budget of {budget} bytes (half of gateway.outbound_queue_bytes)"
                        ),
                    );
                    return self.refuse(code::CALL, request, refusal);
                }
                self.send(&Message::Result {
                    request,
                    details: Dict::new(),
                    payload,
                });
            }
            Err(refusal) => self.refuse(code::CALL, request, refusal),
        }
    }

    fn meta_answer(&self, procedure: &str, payload: &Payload) -> Result<Payload, Refusal> {
        let Some(joined) = self.joined() else {
            return Err(Refusal::new(
                crate::wamp::refusal::PROTOCOL_VIOLATION,
                "not joined",
            ));
        };
        let realm = &joined.realm;
        let me = joined.peer.id;
        let arguments = Arguments::of(procedure, payload)?;
        let answer = match procedure {
            "wamp.session.count" | "wamp.session.list" => {
                let roles = authroles(&arguments)?;
                let mut ids: Vec<Id> = realm
                    .peers()
                    .iter()
                    .filter(|peer| roles.as_ref().is_none_or(|r| r.contains(&peer.authrole)))
                    .map(|peer| peer.id)
                    .collect();
                if procedure == "wamp.session.count" {
                    one(Value::from(ids.len()))
                } else {
                    ids.sort_unstable();
                    one(json!(ids))
                }
            }
            "wamp.session.get" => {
                let id = arguments.required_id(0, "session")?;
                let peer = realm.peer(id).ok_or_else(|| no_such_session(id))?;
                one(session_details(&peer))
            }
            "wamp.session.kill" => {
                let id = arguments.required_id(0, "session")?;
                let closing = goodbye(&arguments)?;
                if id == me {
                    return Err(invalid(
                        "a session cannot kill itself (it may leave with GOODBYE)".into(),
                    ));
                }
                let peer = realm.peer(id).ok_or_else(|| no_such_session(id))?;
                peer.outbox.close(closing);
                Payload::Empty
            }
            "wamp.session.kill_by_authid" | "wamp.session.kill_by_authrole" => {
                let by_authid = procedure == "wamp.session.kill_by_authid";
                let name = if by_authid { "authid" } else { "authrole" };
                let wanted = arguments.required_text(0, name)?;
                let closing = goodbye(&arguments)?;
                let mut killed: Vec<Id> = realm
                    .peers()
                    .iter()
                    .filter(|peer| peer.id != me)
                    .filter(|peer| {
                        if by_authid {
                            peer.authid == wanted
                        } else {
                            peer.authrole == wanted
                        }
                    })
                    .filter(|peer| peer.outbox.close(closing.clone()))
                    .map(|peer| peer.id)
                    .collect();
                killed.sort_unstable();
                if by_authid {
                    one(json!(killed))
                } else {
                    one(Value::from(killed.len()))
                }
            }
            "wamp.subscription.list" => {
                let listed = realm.broker().list();
                one(json!({
                    "exact": listed.exact,
                    "prefix": listed.prefix,
                    "wildcard": listed.wildcard,
                }))
            }
            "wamp.subscription.lookup" => {
                let topic = arguments.required_text(0, "topic")?;
                let policy = match arguments.get(Some(1), "options") {
                    None => MatchPolicy::Exact,
                    Some(Value::Object(options)) => match options.get("match") {
                        None | Some(Value::Null) => MatchPolicy::Exact,
                        Some(value) => {
                            value.as_str().and_then(MatchPolicy::parse).ok_or_else(|| {
                                invalid(format!(
                                    "options.match must be exact, prefix or wildcard, got {value}"
                                ))
                            })?
                        }
                    },
                    Some(other) => {
                        return Err(invalid(format!("options must be a dict, got {other}")))
                    }
                };
                one(realm
                    .broker()
                    .lookup(topic, policy)
                    .map_or(Value::Null, Value::from))
            }
            "wamp.subscription.match" => {
                let topic = arguments.required_text(0, "topic")?;
                let ids = realm.broker().matching(topic);
                one(if ids.is_empty() {
                    Value::Null
                } else {
                    json!(ids)
                })
            }
            "wamp.subscription.get" => {
                let id = arguments.required_id(0, "subscription")?;
                let details = realm.broker().details(id);
                one(details.ok_or_else(|| no_such_subscription(id))?)
            }
            "wamp.subscription.list_subscribers" | "wamp.subscription.count_subscribers" => {
                let id = arguments.required_id(0, "subscription")?;
                let sessions = realm.broker().subscribers_of(id);
                let sessions = sessions.ok_or_else(|| no_such_subscription(id))?;
                if procedure == "wamp.subscription.count_subscribers" {
                    one(Value::from(sessions.len()))
                } else {
                    one(json!(sessions))
                }
            }
            _ => {
                return Err(Refusal::new(
                    "wamp.error.no_such_procedure",
                    procedure.to_string(),
                ))
            }
        };
        Ok(answer)
    }
}
