//! The JSON-RPC methods (DESIGN.md section 5): `publish`, `publish_batch`, and the management calls a web
//! app needs: `session_count`, `sessions`, `kick`, `subscribers`, `last_publication`. Every call must carry a valid
//! signature; every refusal is logged as a warning and answered with a precise error.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{Extensions, RpcModule};
use serde_json::{json, Map, Value};
use switchboard_config::{uri, MatchPolicy};
use switchboard_wire::{Event, SignatureError};

use super::errors::{cluster_incomplete, invalid_event, invalid_params, signature, unpublishable};
use super::signature::SignatureCheck;
use crate::cluster::nodes::{answer_locally, Answer as NodeAnswer, Gathered, Query};
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
/// A management call's params, read into the query every node answers.
type Parse = fn(&Params<'_>) -> Result<Query, ErrorObjectOwned>;

/// The methods, bound to `publisher`. `publish` and `publish_batch` are asynchronous: in a cluster they
/// answer once the cluster's event log confirmed the events.
pub fn module(
    publisher: Publisher,
) -> Result<RpcModule<Publisher>, jsonrpsee::core::RegisterMethodError> {
    let mut module = RpcModule::new(publisher);
    module.register_method("last_publication", |params, publisher, extensions| {
        let answer = signed(extensions).and_then(|()| last_publication(&params, publisher));
        note_refused("last_publication", &answer);
        answer
    })?;
    let management: [(&'static str, Parse); 4] = [
        ("session_count", session_count),
        ("sessions", sessions),
        ("kick", kick),
        ("subscribers", subscribers),
    ];
    for (name, parse) in management {
        module.register_async_method(name, move |params, publisher, extensions| async move {
            let answer = match signed(&extensions) {
                Ok(()) => manage(parse(&params), &publisher).await,
                Err(error) => Err(error),
            };
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
fn session_count(params: &Params<'_>) -> Result<Query, ErrorObjectOwned> {
    let fields = fields(params, &["realm"])?;
    let realm = owned(text(&fields, "realm")?);
    Ok(Query::SessionCount { realm })
}

/// `sessions({"authid", "realm"?}) -> [{"session", "authid", "authrole", "realm"}]`: is this user online?
/// In a cluster every session also names its `node`.
fn sessions(params: &Params<'_>) -> Result<Query, ErrorObjectOwned> {
    let fields = fields(params, &["authid", "realm"])?;
    let authid = required(&fields, "authid")?.to_string();
    let realm = owned(text(&fields, "realm")?);
    Ok(Query::Sessions { authid, realm })
}

/// `kick({"authid", "reason"?, "message"?, "realm"?}) -> {"kicked": n}`: GOODBYE to every session of the
/// user (after a logout or a ban).
fn kick(params: &Params<'_>) -> Result<Query, ErrorObjectOwned> {
    let fields = fields(params, &["authid", "reason", "message", "realm"])?;
    let authid = required(&fields, "authid")?.to_string();
    let reason = text(&fields, "reason")?.unwrap_or(KILLED_REASON);
    uri::validate(reason, MatchPolicy::Exact).map_err(|r| invalid_params("reason", &r))?;
    let message = text(&fields, "message")?.unwrap_or("closed by the web app");
    let realm = owned(text(&fields, "realm")?);
    Ok(Query::Kick {
        authid,
        reason: reason.to_string(),
        message: message.to_string(),
        realm,
    })
}

/// `subscribers({"topic", "realm"?}) -> {"count": n, "sessions": [...]}`: who would receive an event on
/// `topic` (before any per-event audience options).
fn subscribers(params: &Params<'_>) -> Result<Query, ErrorObjectOwned> {
    let fields = fields(params, &["topic", "realm"])?;
    let topic = required(&fields, "topic")?;
    uri::validate(topic, MatchPolicy::Exact).map_err(|r| invalid_params("topic", &r))?;
    let realm = owned(text(&fields, "realm")?);
    Ok(Query::Subscribers {
        topic: topic.to_string(),
        realm,
    })
}

fn owned(text: Option<&str>) -> Option<String> {
    text.map(str::to_string)
}

/// Answers a management call: on a single node from this node alone; in a cluster from every live
/// node, combined (`-32003` with the partial answer when a node did not answer in time).
async fn manage(query: Result<Query, ErrorObjectOwned>, publisher: &Publisher) -> Answer {
    let query = query?;
    let router = publisher.router();
    let kick = match &query {
        Query::Kick { authid, reason, .. } => Some((authid.clone(), reason.clone())),
        _ => None,
    };
    let gathered = match router.cluster_nodes() {
        Some(nodes) => nodes.ask(router, query).await.map_err(no_realm)?,
        None => Gathered {
            answers: vec![(
                String::new(),
                answer_locally(router, &query).map_err(no_realm)?,
            )],
            missing: Vec::new(),
        },
    };
    let clustered = router.cluster_nodes().is_some();
    let value = combine(&gathered, clustered);
    if let Some((authid, reason)) = kick {
        tracing::info!(authid, reason, kicked = %value["kicked"], "sessions kicked");
    }
    if gathered.missing.is_empty() {
        Ok(value)
    } else {
        let answered = gathered
            .answers
            .iter()
            .map(|(node, _)| node.clone())
            .collect();
        Err(cluster_incomplete(&gathered.missing, answered, value))
    }
}

/// The nodes' answers as one: counts summed, lists concatenated (sessions naming their node when
/// `clustered`).
fn combine(gathered: &Gathered, clustered: bool) -> Value {
    let mut count = 0u64;
    let mut list = Vec::new();
    let mut kind = "count";
    for (node, answer) in &gathered.answers {
        match answer {
            NodeAnswer::Count(n) => count += n,
            NodeAnswer::Kicked(n) => {
                kind = "kicked";
                count += n;
            }
            NodeAnswer::Sessions(sessions) => {
                kind = "sessions";
                list.extend(sessions.iter().map(|s| {
                    let mut entry = json!({"session": s.session, "authid": s.authid, "authrole": s.authrole, "realm": s.realm});
                    if clustered {
                        entry["node"] = json!(node);
                    }
                    entry
                }));
            }
            NodeAnswer::Subscribers(ids) => {
                kind = "subscribers";
                list.extend(ids.iter().map(|id| json!(id)));
            }
            NodeAnswer::Refused(_) => {}
        }
    }
    match kind {
        "kicked" => json!({"kicked": count}),
        "sessions" => Value::Array(list),
        "subscribers" => json!({"count": list.len(), "sessions": list}),
        _ => json!(count),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::nodes::SessionEntry;

    fn entry(session: u64, authid: &str) -> SessionEntry {
        SessionEntry {
            session,
            authid: authid.to_string(),
            authrole: "member".to_string(),
            realm: "realm1".to_string(),
        }
    }

    fn gathered(answers: Vec<(&str, NodeAnswer)>) -> Gathered {
        Gathered {
            answers: answers
                .into_iter()
                .map(|(node, answer)| (node.to_string(), answer))
                .collect(),
            missing: Vec::new(),
        }
    }

    #[test]
    fn counts_are_summed_and_lists_concatenated_over_the_nodes() {
        let counts = gathered(vec![
            ("a", NodeAnswer::Count(2)),
            ("b", NodeAnswer::Count(3)),
        ]);
        assert_eq!(combine(&counts, true), json!(5));
        let kicked = gathered(vec![
            ("a", NodeAnswer::Kicked(0)),
            ("b", NodeAnswer::Kicked(1)),
        ]);
        assert_eq!(combine(&kicked, true), json!({"kicked": 1}));
        let subscribers = gathered(vec![
            ("a", NodeAnswer::Subscribers(vec![1])),
            ("b", NodeAnswer::Subscribers(vec![2, 3])),
        ]);
        assert_eq!(
            combine(&subscribers, true),
            json!({"count": 3, "sessions": [1, 2, 3]})
        );
        let sessions = gathered(vec![
            ("a", NodeAnswer::Sessions(vec![])),
            ("b", NodeAnswer::Sessions(vec![entry(7, "alice")])),
        ]);
        assert_eq!(
            combine(&sessions, true),
            json!([{"session": 7, "authid": "alice", "authrole": "member", "realm": "realm1", "node": "b"}])
        );
    }

    #[test]
    fn a_single_node_answers_as_before() {
        let sessions = gathered(vec![("", NodeAnswer::Sessions(vec![entry(7, "alice")]))]);
        assert_eq!(
            combine(&sessions, false),
            json!([{"session": 7, "authid": "alice", "authrole": "member", "realm": "realm1"}])
        );
        assert_eq!(
            combine(&gathered(vec![("", NodeAnswer::Count(0))]), false),
            json!(0)
        );
    }
}
