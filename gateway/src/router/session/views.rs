//! `switchboard.model.rows`: a page of a model view, answered by the router itself, with the publication
//! the page is consistent with (the position a live list recovers from).

use serde_json::{json, Value};

use super::super::authorize::Action;
use super::super::filter::Filter;
use super::super::history::{RowsQuery, ViewError, MODEL_PREFIX};
use super::super::Refusal;
use super::arguments::{answer_budget, invalid, items_that_fit, too_large, Arguments};
use super::Session;
use crate::wamp::{code, Dict, Id, Message, Payload};
use switchboard_wire::event::json_len;

/// The procedure that answers a page of a model view.
pub(crate) const MODEL_ROWS: &str = "switchboard.model.rows";

/// Rows answered when the caller names no limit.
const DEFAULT_LIMIT: u64 = 100;

/// Most rows one call may ask for (page with `after` for more).
const MAX_LIMIT: u64 = 1000;

/// Longest `order_by` field name accepted.
const MAX_FIELD_BYTES: usize = 128;

/// The model and the page asked for: `(model)` positionally or `model=`, and `order_by`, `desc`,
/// `limit`, `after`, `filter` as keyword arguments.
fn asked(payload: &Payload) -> Result<(String, RowsQuery, Option<Value>), Refusal> {
    let arguments = Arguments::of(MODEL_ROWS, payload)?;
    let model = match arguments.get(Some(0), "model") {
        Some(Value::String(model)) => model.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "model must be a model name (app.model), got {other}"
            )))
        }
        None => {
            return Err(invalid(format!(
            "{MODEL_ROWS}(model, order_by=, desc=, limit=, after=, filter=): the model is missing"
        )))
        }
    };
    let order_by = match arguments.get(None, "order_by") {
        None => None,
        Some(Value::String(field)) if !field.is_empty() && field.len() <= MAX_FIELD_BYTES => {
            Some(field.clone())
        }
        Some(other) => {
            return Err(invalid(format!(
                "order_by must be a field name of at most {MAX_FIELD_BYTES} bytes, got {other}"
            )))
        }
    };
    let after = match arguments.get(None, "after") {
        None => None,
        Some(pk @ (Value::String(_) | Value::Number(_))) => Some(pk.clone()),
        Some(other) => {
            return Err(invalid(format!(
                "after must be the pk of a row (a string or a number), got {other}"
            )))
        }
    };
    let query = RowsQuery {
        order_by,
        desc: arguments.flag("desc")?,
        limit: arguments.count(None, "limit", DEFAULT_LIMIT, MAX_LIMIT)?,
        after,
    };
    Ok((model, query, arguments.get(None, "filter").cloned()))
}

impl Session {
    /// Answers `switchboard.model.rows` with kwargs `{rows, total, publication}`. Reading a view needs
    /// `subscribe` on its topic (`models.<name>`): the same rows reach the same roles as its events.
    pub(super) fn model_rows(&mut self, request: Id, payload: &Payload) {
        let (model, query, filter) = match asked(payload) {
            Ok(asked) => asked,
            Err(refusal) => return self.refuse(code::CALL, request, refusal),
        };
        let topic = format!("{MODEL_PREFIX}{model}");
        let Some(joined) = self.joined() else { return };
        if !joined.peer.grants.allows(Action::Subscribe, &topic) {
            let refusal = Refusal::new(
                "wamp.error.not_authorized",
                format!(
                    "role {} may not subscribe to {topic}, so it may not read its view",
                    joined.peer.authrole
                ),
            );
            return self.refuse(code::CALL, request, refusal);
        }
        let filter = match filter.map(|f| Filter::parse(&f)).transpose() {
            Ok(filter) => filter,
            Err(fault) => return self.refuse(code::CALL, request, invalid(fault.to_string())),
        };
        let page = joined
            .realm
            .stored()
            .views()
            .rows(&model, &query, |kwargs| {
                filter
                    .as_ref()
                    .is_none_or(|f| f.matches(kwargs.as_object()))
            });
        match page {
            Ok(page) => {
                let budget = answer_budget(self.router.limits.queue.max_bytes);
                if let Some((fit, bytes)) = items_that_fit(page.rows.iter().map(json_len), budget) {
                    let refusal = too_large("rows", page.rows.len(), bytes, fit, budget);
                    return self.refuse(code::CALL, request, refusal);
                }
                let kwargs = json!({"rows": page.rows, "total": page.total, "publication": page.publication});
                let kwargs = match kwargs {
                    Value::Object(kwargs) => kwargs,
                    _ => Dict::new(),
                };
                self.send(&Message::Result {
                    request,
                    details: Dict::new(),
                    payload: Payload::ArgsKwargs(Vec::new(), kwargs),
                });
            }
            Err(error) => {
                let uri = match error {
                    ViewError::NoSuchModel(_) => "switchboard.error.no_such_model",
                    ViewError::Incomplete(..) | ViewError::Unseeded(_) => {
                        "switchboard.error.view_incomplete"
                    }
                    ViewError::NoSuchRow(_) => "wamp.error.invalid_argument",
                };
                self.refuse(code::CALL, request, Refusal::new(uri, error.to_string()));
            }
        }
    }
}
