//! The JSON-RPC methods (DESIGN.md section 5): `publish`, `publish_batch`, and the management calls a web
//! app needs: `session_count`, `sessions`, `kick`, `subscribers`, `last_publication`. Every call must carry a valid
//! signature; every refusal is logged as a warning and answered with a precise error.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{Extensions, RpcModule};
use serde_json::{json, Map, Value};
use switchboard_config::{uri, MatchPolicy};
use switchboard_wire::{Event, SignatureError};

use super::errors::{invalid_event, invalid_params, signature, unpublishable};
use super::signature::SignatureCheck;
use crate::ingest::publish::{PublishError, Publisher};
use crate::router::admin::{UnknownRealm, KILLED_REASON};
use crate::throttle;

/// Every method this server answers (also used to log calls to unknown methods).
pub const METHODS: [&str; 7] = [
    "publish",
    "publish_batch",
    "session_count",
    "sessions",
    "kick",
    "subscribers",
    "last_publication",
];

/// Most events one `publish_batch` call may carry.
pub const MAX_BATCH_EVENTS: usize = 1000;

type Answer = Result<Value, ErrorObjectOwned>;
type Method = fn(&Params<'_>, &Publisher) -> Answer;

/// The methods, bound to `publisher`. `publish` and `publish_batch` are asynchronous: in a cluster they
/// answer once the cluster's event log confirmed the events.
pub fn module(
    publisher: Publisher,
) -> Result<RpcModule<Publisher>, jsonrpsee::core::RegisterMethodError> {
    let mut module = RpcModule::new(publisher);
    let methods: [(&'static str, Method); 5] = [
        ("session_count", session_count),
        ("sessions", sessions),
        ("kick", kick),
        ("subscribers", subscribers),
        ("last_publication", last_publication),
    ];
    for (name, method) in methods {
        module.register_method(name, move |params, publisher, extensions| {
            let answer = signed(extensions).and_then(|()| method(&params, publisher));
            note_refused(name, &answer);
            answer
        })?;
    }
    module.register_async_method("publish", |params, publisher, extensions| async move {
        let answer = match signed(&extensions) {
            Ok(()) => publish(&params, &publisher).await,
            Err(error) => Err(error),
        };
        note_refused("publish", &answer);
        answer
    })?;
    module.register_async_method(
        "publish_batch",
        |params, publisher, extensions| async move {
            let answer = match signed(&extensions) {
                Ok(()) => publish_batch(&params, &publisher).await,
                Err(error) => Err(error),
            };
            note_refused("publish_batch", &answer);
            answer
        },
    )?;
    Ok(module)
}

/// Logs a refused call (rate-limited).
fn note_refused(name: &'static str, answer: &Answer) {
    if let Err(error) = answer {
        // Signature refusals were counted and logged once per HTTP request by the middleware.
        let source = format!("{name}/{}", error.code());
        if error.code() != super::errors::SIGNATURE_REJECTED {
            if let Some(suppressed) = throttle::allow("jsonrpc_call_refused", &source) {
                tracing::warn!(
                    method = name,
                    code = error.code(),
                    message = error.message(),
                    suppressed,
                    "JSON-RPC call refused"
                );
            }
        }
    }
}

fn signed(extensions: &Extensions) -> Result<(), ErrorObjectOwned> {
    match extensions.get::<SignatureCheck>() {
        Some(SignatureCheck(Ok(()))) => Ok(()),
        Some(SignatureCheck(Err(error))) => Err(signature(error)),
        None => Err(signature(&SignatureError::Missing)),
    }
}

/// The call's params as JSON (None when absent). jsonrpsee has already checked that they are JSON.
fn params_value(params: &Params<'_>) -> Option<Value> {
    params
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
}

/// `publish(event) -> {"publication": id}`; the event is the params object (or the only positional param).
async fn publish(params: &Params<'_>, publisher: &Publisher) -> Answer {
    let value = match params_value(params) {
        Some(Value::Array(mut items)) if items.len() == 1 => items.remove(0),
        Some(Value::Array(_)) => {
            return Err(invalid_params(
                "params",
                "expected the event as an object (or an array holding just the event)",
            ))
        }
        Some(value) => value,
        None => return Err(invalid_params("params", "missing: expected the event")),
    };
    let event =
        Event::from_value(value).map_err(|e| counted("invalid_event", invalid_event(&e)))?;
    let publication = publisher
        .publish(&event)
        .await
        .map_err(|e| counted(publish_reason(&e), unpublishable(&e, None)))?;
    accepted();
    Ok(json!({"publication": publication}))
}

/// `publish_batch({"events": [...]}) -> [{"publication": id} | {"error": {...}}]`, one entry per event in
/// order; a bad event does not stop the others. Every event is accepted (appended, in a cluster) before
/// the first confirmation is awaited, so a batch costs one round trip to the event log, not one per event.
async fn publish_batch(params: &Params<'_>, publisher: &Publisher) -> Answer {
    let events = match params_value(params) {
        Some(Value::Array(mut items)) if items.len() == 1 => items.remove(0),
        Some(Value::Object(mut object)) => {
            if let Some(unknown) = object.keys().find(|k| *k != "events") {
                return Err(invalid_params(
                    unknown,
                    "unknown key; expected only `events`",
                ));
            }
            object.remove("events").unwrap_or(Value::Null)
        }
        _ => return Err(invalid_params("params", "expected {\"events\": [...]}")),
    };
    let Value::Array(events) = events else {
        return Err(invalid_params("events", "expected an array of events"));
    };
    if events.len() > MAX_BATCH_EVENTS {
        return Err(invalid_params(
            "events",
            &format!(
                "{} events; at most {MAX_BATCH_EVENTS} per call",
                events.len()
            ),
        ));
    }
    let pending: Vec<_> = events
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let at = format!("events[{i}]");
            let pending = Event::from_value(value)
                .map_err(|e| counted("invalid_event", invalid_event(&e.within(&at))))
                .and_then(|event| {
                    publisher
                        .accept(&event)
                        .map_err(|e| counted(publish_reason(&e), unpublishable(&e, Some(&at))))
                });
            (at, pending)
        })
        .collect();
    let mut results = Vec::with_capacity(pending.len());
    for (at, pending) in pending {
        let outcome = match pending {
            Ok(pending) => pending
                .confirmed()
                .await
                .map_err(|e| counted(publish_reason(&e), unpublishable(&e, Some(&at)))),
            Err(error) => Err(error),
        };
        results.push(match outcome {
            Ok(publication) => {
                accepted();
                json!({"publication": publication})
            }
            Err(error) => {
                if let Some(suppressed) = throttle::allow("jsonrpc_batch_refused", "events") {
                    tracing::warn!(
                        method = "publish_batch",
                        code = error.code(),
                        message = error.message(),
                        suppressed,
                        "batched event refused"
                    );
                }
                json!({"error": error})
            }
        });
    }
    Ok(Value::Array(results))
}

/// Counts one published event.
fn accepted() {
    metrics::counter!("switchboard_ingest_accepted_total", "transport" => "jsonrpc").increment(1);
}

/// Counts one refused event under `reason` and hands its error back.
fn counted(reason: &'static str, error: ErrorObjectOwned) -> ErrorObjectOwned {
    metrics::counter!("switchboard_ingest_refused_total", "transport" => "jsonrpc", "reason" => reason)
        .increment(1);
    error
}

/// The refusal tag for an event the router could not place.
fn publish_reason(error: &PublishError) -> &'static str {
    match error {
        PublishError::TooLarge { .. } => "too_large",
        PublishError::UnknownRealm(_) | PublishError::NoRealm => "unknown_realm",
        PublishError::Cluster(_) => "cluster_unavailable",
    }
}

/// Named params as a map, refusing keys outside `known` (a misspelt key must not go unnoticed).
fn fields(params: &Params<'_>, known: &[&str]) -> Result<Map<String, Value>, ErrorObjectOwned> {
    match params_value(params) {
        None => Ok(Map::new()),
        Some(Value::Object(object)) => {
            if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
                let reason = format!("unknown key; known keys are {}", known.join(", "));
                return Err(invalid_params(unknown, &reason));
            }
            Ok(object)
        }
        Some(_) => Err(invalid_params(
            "params",
            &format!("expected named params ({})", known.join(", ")),
        )),
    }
}

fn text<'a>(
    fields: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, ErrorObjectOwned> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(invalid_params(key, "expected a string")),
    }
}

fn required<'a>(fields: &'a Map<String, Value>, key: &str) -> Result<&'a str, ErrorObjectOwned> {
    text(fields, key)?.ok_or_else(|| invalid_params(key, "missing"))
}

/// A management call's realm error as `-32602` on the `realm` param.
fn no_realm(error: UnknownRealm) -> ErrorObjectOwned {
    invalid_params("realm", &error.to_string())
}

/// `session_count({"realm"?}) -> n`: joined sessions in the realm, or in all realms.
fn session_count(params: &Params<'_>, publisher: &Publisher) -> Answer {
    let fields = fields(params, &["realm"])?;
    let realm = text(&fields, "realm")?;
    let count = publisher.router().count_sessions(realm).map_err(no_realm)?;
    Ok(json!(count))
}

/// `sessions({"authid", "realm"?}) -> [{"session", "authid", "authrole", "realm"}]`: is this user online?
fn sessions(params: &Params<'_>, publisher: &Publisher) -> Answer {
    let fields = fields(params, &["authid", "realm"])?;
    let authid = required(&fields, "authid")?;
    let realm = text(&fields, "realm")?;
    let list = publisher
        .router()
        .sessions_of(authid, realm)
        .map_err(no_realm)?;
    let list = list
        .into_iter()
        .map(|s| json!({"session": s.session, "authid": s.authid, "authrole": s.authrole, "realm": s.realm}))
        .collect();
    Ok(Value::Array(list))
}

/// `kick({"authid", "reason"?, "message"?, "realm"?}) -> {"kicked": n}`: GOODBYE to every session of the
/// user (after a logout or a ban).
fn kick(params: &Params<'_>, publisher: &Publisher) -> Answer {
    let fields = fields(params, &["authid", "reason", "message", "realm"])?;
    let authid = required(&fields, "authid")?;
    let reason = text(&fields, "reason")?.unwrap_or(KILLED_REASON);
    uri::validate(reason, MatchPolicy::Exact).map_err(|r| invalid_params("reason", &r))?;
    let message = text(&fields, "message")?.unwrap_or("closed by the web app");
    let realm = text(&fields, "realm")?;
    let kicked = publisher
        .router()
        .kick(authid, reason, message, realm)
        .map_err(no_realm)?;
    tracing::info!(authid, reason, kicked, "sessions kicked");
    Ok(json!({"kicked": kicked}))
}

/// `subscribers({"topic", "realm"?}) -> {"count": n, "sessions": [...]}`: who would receive an event on
/// `topic` (before any per-event audience options).
fn subscribers(params: &Params<'_>, publisher: &Publisher) -> Answer {
    let fields = fields(params, &["topic", "realm"])?;
    let topic = required(&fields, "topic")?;
    uri::validate(topic, MatchPolicy::Exact).map_err(|r| invalid_params("topic", &r))?;
    let realm = text(&fields, "realm")?;
    let sessions = publisher
        .router()
        .subscribers_of(topic, realm)
        .map_err(no_realm)?;
    Ok(json!({"count": sessions.len(), "sessions": sessions}))
}

/// `last_publication({"topic", "realm"?}) -> {"publication": id | null}`: the newest stored publication
/// of a topic. A web app reads it, then its database, and renders both: the page recovers from there.
fn last_publication(params: &Params<'_>, publisher: &Publisher) -> Answer {
    let fields = fields(params, &["topic", "realm"])?;
    let topic = required(&fields, "topic")?;
    let max = publisher.router().limits.max_uri_bytes;
    if topic.len() > max {
        let reason = format!("{} bytes, over gateway.max_uri_bytes ({max})", topic.len());
        return Err(invalid_params("topic", &reason));
    }
    uri::validate(topic, MatchPolicy::Exact).map_err(|r| invalid_params("topic", &r))?;
    let realm = text(&fields, "realm")?;
    let publication = publisher
        .router()
        .last_publication(topic, realm)
        .map_err(no_realm)?;
    Ok(json!({"publication": publication}))
}
