//! What a session reads back from its realm's stored events: `wamp.subscription.get_events` (recovery,
//! answered by the router itself) and the retained events sent right after SUBSCRIBED (`get_retained`).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use switchboard_config::MatchPolicy;

use super::super::authorize::{Action, Coverage};
use super::super::filter::Filter;
use super::super::history::{Gap, Query, StoredEvent};
use super::super::Refusal;
use super::arguments::{answer_budget, invalid, items_that_fit, too_large, Arguments};
use super::Session;
use crate::wamp::{code, Dict, Id, Message, Payload};
use switchboard_wire::event::json_len;

/// The procedure that answers a subscription's stored events (the WAMP advanced profile's event history).
pub(crate) const GET_EVENTS: &str = "wamp.subscription.get_events";

/// ERROR when stored events cannot answer a recovery completely.
pub(crate) const HISTORY_GAP: &str = "switchboard.error.history_gap";

/// ERROR when the subscription's topics keep no history at all.
pub(crate) const NO_HISTORY: &str = "switchboard.error.no_history";

/// Events answered by one `get_events` when the caller names no limit.
pub(crate) const DEFAULT_LIMIT: u64 = 1000;

/// Most events one `get_events` may ask for (page with `after_publication` for more).
pub(crate) const MAX_LIMIT: u64 = 10_000;

/// `get_events`' arguments, checked.
struct Asked {
    subscription: Id,
    limit: usize,
    after: Option<Id>,
    reverse: bool,
}

/// Reads `(subscription_id, limit?)` positionally (Crossbar's form) and `limit`, `after_publication`,
/// `reverse` from the keyword arguments.
fn asked(payload: &Payload) -> Result<Asked, Refusal> {
    let arguments = Arguments::of(GET_EVENTS, payload)?;
    let subscription = arguments.id(Some(0), "subscription")?.ok_or_else(|| {
        invalid(format!(
            "{GET_EVENTS}(subscription_id, limit=, after_publication=, reverse=): the subscription id is missing"
        ))
    })?;
    Ok(Asked {
        subscription,
        limit: arguments.count(Some(1), "limit", DEFAULT_LIMIT, MAX_LIMIT)?,
        after: arguments.id(None, "after_publication")?,
        reverse: arguments.flag("reverse")?,
    })
}

fn timestamp(event: &StoredEvent) -> String {
    humantime::format_rfc3339_millis(event.published).to_string()
}

/// One stored event as `get_events` answers it: `{timestamp, subscription, publication, topic, args,
/// kwargs}`.
fn described(event: &StoredEvent, subscription: Id) -> Value {
    let (args, kwargs) = match &event.payload {
        Payload::Empty => (Value::Array(Vec::new()), Value::Object(Dict::new())),
        Payload::Args(args) => (Value::Array(args.clone()), Value::Object(Dict::new())),
        Payload::ArgsKwargs(args, kwargs) => {
            (Value::Array(args.clone()), Value::Object(kwargs.clone()))
        }
        Payload::Transparent(value) => (json!([value]), Value::Object(Dict::new())),
    };
    json!({
        "timestamp": timestamp(event),
        "subscription": subscription,
        "publication": event.id,
        "topic": &*event.topic,
        "args": args,
        "kwargs": kwargs,
    })
}

impl Session {
    /// Answers `wamp.subscription.get_events` for one of this session's own subscriptions. No call
    /// permission is needed: holding the subscription is the permission, and a pattern subscription only
    /// reads the topics its role may subscribe to.
    pub(super) fn get_events(&mut self, request: Id, payload: &Payload) {
        let asked = match asked(payload) {
            Ok(asked) => asked,
            Err(refusal) => return self.refuse(code::CALL, request, refusal),
        };
        let Some(joined) = self.joined() else { return };
        if !joined.subscriptions.contains(&asked.subscription) {
            let refusal = Refusal::new(
                "wamp.error.no_such_subscription",
                format!("this session has no subscription {}", asked.subscription),
            );
            return self.refuse(code::CALL, request, refusal);
        }
        let Some((uri, policy, filter)) = joined.realm.broker().describe(asked.subscription) else {
            return;
        };
        let query = Query {
            uri: &uri,
            policy,
            after: asked.after,
            limit: asked.limit,
            reverse: asked.reverse,
        };
        let peer = Arc::clone(&joined.peer);
        let admit = |event: &StoredEvent| {
            (policy == MatchPolicy::Exact || peer.grants.allows(Action::Subscribe, &event.topic))
                && filter
                    .as_ref()
                    .is_none_or(|f| f.matches_payload(&event.payload))
        };
        let found = joined.realm.stored().events(&query, Instant::now(), admit);
        match found {
            Ok(events) => {
                let list: Vec<Value> = events
                    .iter()
                    .map(|e| described(e, asked.subscription))
                    .collect();
                let budget = answer_budget(self.router.limits.queue.max_bytes);
                if let Some((fit, bytes)) = items_that_fit(list.iter().map(json_len), budget) {
                    let refusal = too_large("events", list.len(), bytes, fit, budget);
                    return self.refuse(code::CALL, request, refusal);
                }
                self.send(&Message::Result {
                    request,
                    details: Dict::new(),
                    payload: Payload::Args(vec![Value::Array(list)]),
                });
            }
            Err(gap) => {
                let uri = match gap {
                    Gap::NoHistory(_) => NO_HISTORY,
                    Gap::Unknown(_) | Gap::Evicted(_) => HISTORY_GAP,
                };
                self.refuse(code::CALL, request, Refusal::new(uri, gap.to_string()));
            }
        }
    }

    /// Sends the retained events of a new subscription's topics (SUBSCRIBE with `get_retained: true`),
    /// each as an EVENT with details `retained: true`, oldest first.
    pub(super) fn send_retained(
        &self,
        subscription: Id,
        uri: &str,
        policy: MatchPolicy,
        coverage: Coverage,
        filter: Option<&Filter>,
    ) {
        let Some(joined) = self.joined() else { return };
        let retained = joined.realm.stored().retained(uri, policy);
        let mut admitted: Vec<_> = retained
            .into_iter()
            .filter(|event| filter.is_none_or(|f| f.matches_payload(&event.payload)))
            .filter(|event| {
                coverage == Coverage::All
                    || joined.peer.grants.allows(Action::Subscribe, &event.topic)
            })
            .collect();
        // A pattern may reach many retained events: the newest that fit half the session's queue are
        // sent (oldest first), the rest are counted and logged, never sent to close the session.
        let budget = answer_budget(self.router.limits.queue.max_bytes);
        let newest_first = admitted.iter().rev().map(|event| event.payload.json_len());
        if let Some((fit, _)) = items_that_fit(newest_first, budget) {
            let skipped = admitted.len() - fit;
            admitted.drain(..skipped);
            metrics::counter!("switchboard_retained_skipped_total").increment(skipped as u64);
            if let Some(suppressed) = crate::throttle::allow("retained_skipped", uri) {
                tracing::warn!(
                    session = joined.peer.id,
                    pattern = uri,
                    skipped,
                    suppressed,
                    "retained events over half the session's queue bound not sent on get_retained"
                );
            }
        }
        for event in admitted {
            let mut details = Dict::new();
            details.insert("retained".into(), Value::Bool(true));
            if policy != MatchPolicy::Exact {
                details.insert("topic".into(), Value::String(event.topic.to_string()));
            }
            self.send(&Message::Event {
                subscription,
                publication: event.id,
                details,
                payload: event.payload.clone(),
            });
        }
    }
}
