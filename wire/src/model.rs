//! Model-change events, the emitter's first-class API (DESIGN.md section 5): "order 42 of app shop was
//! updated" becomes an event on `models.shop.order` whose kwargs every subscriber can rely on. A
//! `synced` event carries every row of a model at once: it replaces the gateway's model view and tells
//! open pages to resync.

use crate::uri::{self, MatchPolicy};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::{kind, Event};

/// Topic prefix of model-change events unless configured otherwise.
pub const DEFAULT_MODEL_PREFIX: &str = "models.";

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A row was inserted.
    Created,
    /// A row was changed.
    Updated,
    /// A row was removed.
    Deleted,
    /// The whole model was sent again: the rows replace the gateway's view of the model, and open pages
    /// resync from them (after a bulk import, a migration, or when the app is unsure what it missed).
    Synced,
}

impl Action {
    /// The wire name (`created`, `updated`, `deleted`, `synced`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Synced => "synced",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "created" => Some(Action::Created),
            "updated" => Some(Action::Updated),
            "deleted" => Some(Action::Deleted),
            "synced" => Some(Action::Synced),
            _ => None,
        }
    }
}

/// Why a model change could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model name is not `<app>.<model>` made of valid URI components.
    #[error("model name {name:?} is not valid: {reason}")]
    Name {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The row data did not serialize to a JSON object.
    #[error("model data must serialize to a JSON object, got {0}")]
    DataNotAnObject(&'static str),
    /// The data of a synced row did not serialize to a JSON object.
    #[error("model data of synced row {index} must serialize to a JSON object, got {kind}")]
    RowNotAnObject {
        /// The row's position among the rows given (from 0).
        index: usize,
        /// The JSON type it serialized to instead.
        kind: &'static str,
    },
    /// The primary key or data failed to serialize.
    #[error("model change does not serialize to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// One change of one row: model, action, primary key, row data and the names of the changed fields; or,
/// for [`Action::Synced`], every row of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChange {
    /// `<app>.<model>`, e.g. `shop.order`.
    pub model: String,
    /// What happened.
    pub action: Action,
    /// The row's primary key (any JSON; null for a sync, whose rows carry their own).
    pub pk: Value,
    /// The row's fields (after the change; empty for a deletion and a sync).
    pub data: Map<String, Value>,
    /// The fields that changed (every field of `data` for a creation, none for a deletion or a sync).
    pub changed: Vec<String>,
    /// For a sync, every row of the model: its data with its primary key under `pk`. Empty for the
    /// other actions.
    pub rows: Vec<Map<String, Value>>,
}

impl ModelChange {
    /// A new row: `changed` lists every field of `data`, since all of them are new.
    pub fn created(
        model: &str,
        pk: impl Serialize,
        data: &impl Serialize,
    ) -> Result<Self, ModelError> {
        let data = object(data)?;
        let changed = data.keys().cloned().collect();
        Self::build(model, Action::Created, pk, data, changed)
    }

    /// A changed row: `data` is the row after the change, `changed` the fields that changed.
    pub fn updated<S: AsRef<str>>(
        model: &str,
        pk: impl Serialize,
        data: &impl Serialize,
        changed: &[S],
    ) -> Result<Self, ModelError> {
        let data = object(data)?;
        let changed = changed.iter().map(|s| s.as_ref().to_string()).collect();
        Self::build(model, Action::Updated, pk, data, changed)
    }

    /// A removed row: no data, nothing changed.
    pub fn deleted(model: &str, pk: impl Serialize) -> Result<Self, ModelError> {
        Self::build(model, Action::Deleted, pk, Map::new(), Vec::new())
    }

    /// Every row of the model, replacing whatever the gateway's model view holds; open pages resync.
    /// `rows` yields `(pk, data)` pairs; each `data` must serialize to a JSON object. Each row goes on
    /// the wire as that object with the pk inserted first under `"pk"` (the pk wins over a data field
    /// named `pk`). The kwargs are exactly `{"action": "synced", "model": ..., "rows": [...]}`.
    ///
    /// The whole sync is one event: it must fit the gateway's `max_message_bytes` (1 MiB by default).
    pub fn synced<'a, P, D>(
        model: &str,
        rows: impl IntoIterator<Item = (P, &'a D)>,
    ) -> Result<Self, ModelError>
    where
        P: Serialize,
        D: Serialize + ?Sized + 'a,
    {
        check_model_name(model)?;
        let rows = rows
            .into_iter()
            .enumerate()
            .map(|(index, (pk, data))| synced_row(index, pk, data))
            .collect::<Result<_, _>>()?;
        Ok(ModelChange {
            model: model.to_string(),
            action: Action::Synced,
            pk: Value::Null,
            data: Map::new(),
            changed: Vec::new(),
            rows,
        })
    }

    fn build(
        model: &str,
        action: Action,
        pk: impl Serialize,
        data: Map<String, Value>,
        changed: Vec<String>,
    ) -> Result<Self, ModelError> {
        check_model_name(model)?;
        Ok(ModelChange {
            model: model.to_string(),
            action,
            pk: serde_json::to_value(pk)?,
            data,
            changed,
            rows: Vec::new(),
        })
    }

    /// The topic: `<prefix><app>.<model>`, e.g. `models.shop.order`.
    pub fn topic(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.model)
    }

    /// The kwargs every subscriber relies on: `action`, `model`, `pk`, `data`, `changed`; for a sync,
    /// `action`, `model` and `rows` only.
    pub fn kwargs(&self) -> Map<String, Value> {
        let mut kwargs = Map::new();
        kwargs.insert("action".into(), self.action.as_str().into());
        kwargs.insert("model".into(), self.model.clone().into());
        if self.action == Action::Synced {
            let rows = self.rows.iter().cloned().map(Value::Object).collect();
            kwargs.insert("rows".into(), Value::Array(rows));
            return kwargs;
        }
        kwargs.insert("pk".into(), self.pk.clone());
        kwargs.insert("data".into(), Value::Object(self.data.clone()));
        kwargs.insert(
            "changed".into(),
            Value::Array(self.changed.iter().cloned().map(Value::String).collect()),
        );
        kwargs
    }

    /// The event to emit, on the topic under `prefix`; add targeting with the [`Event`] builders.
    pub fn to_event(&self, prefix: &str) -> Event {
        Event::new(self.topic(prefix)).with_kwargs(self.kwargs())
    }
}

fn object(data: &impl Serialize) -> Result<Map<String, Value>, ModelError> {
    match serde_json::to_value(data)? {
        Value::Object(map) => Ok(map),
        other => Err(ModelError::DataNotAnObject(kind(&other))),
    }
}

/// One synced row: `{"pk": pk, ...data}`, the pk first and replacing any data field named `pk`.
fn synced_row<D: Serialize + ?Sized>(
    index: usize,
    pk: impl Serialize,
    data: &D,
) -> Result<Map<String, Value>, ModelError> {
    let data = match serde_json::to_value(data)? {
        Value::Object(map) => map,
        other => {
            return Err(ModelError::RowNotAnObject {
                index,
                kind: kind(&other),
            })
        }
    };
    let mut row = Map::with_capacity(data.len() + 1);
    row.insert("pk".into(), serde_json::to_value(pk)?);
    row.extend(data.into_iter().filter(|(field, _)| field != "pk"));
    Ok(row)
}

/// A model name is `<app>.<model>`: at least two components, each a valid URI component.
fn check_model_name(name: &str) -> Result<(), ModelError> {
    let invalid = |reason: String| ModelError::Name {
        name: name.to_string(),
        reason,
    };
    uri::validate(name, MatchPolicy::Exact).map_err(invalid)?;
    if !name.contains('.') {
        return Err(invalid(
            "expected <app>.<model>, e.g. shop.order".to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct Order {
        status: &'static str,
        total: u32,
    }

    #[test]
    fn updated_produces_the_design_topic_and_kwargs() {
        let order = Order {
            status: "paid",
            total: 30,
        };
        let change = ModelChange::updated("shop.order", 42, &order, &["status"]).expect("valid");
        let event = change.to_event(DEFAULT_MODEL_PREFIX);
        assert_eq!(event.topic, "models.shop.order");
        assert_eq!(
            Value::Object(event.kwargs),
            json!({"action": "updated", "model": "shop.order", "pk": 42,
                   "data": {"status": "paid", "total": 30}, "changed": ["status"]})
        );
    }

    #[test]
    fn created_lists_every_field_and_deleted_none() {
        let created =
            ModelChange::created("shop.order", "a-1", &json!({"x": 1, "y": 2})).expect("valid");
        assert_eq!(created.changed, vec!["x", "y"]);
        assert_eq!(created.kwargs()["action"], "created");
        let deleted = ModelChange::deleted("shop.order", json!({"id": 7})).expect("valid");
        assert_eq!(
            Value::Object(deleted.kwargs()),
            json!({"action": "deleted", "model": "shop.order", "pk": {"id": 7}, "data": {}, "changed": []})
        );
        assert_eq!(deleted.topic("app."), "app.shop.order");
    }

    #[test]
    fn bad_names_and_data_are_refused() {
        assert!(matches!(
            ModelChange::deleted("order", 1),
            Err(ModelError::Name { .. })
        ));
        assert!(matches!(
            ModelChange::deleted("shop..order", 1),
            Err(ModelError::Name { .. })
        ));
        assert!(matches!(
            ModelChange::created("shop.order", 1, &[1, 2]),
            Err(ModelError::DataNotAnObject("an array"))
        ));
    }

    #[test]
    fn synced_carries_every_row_with_its_pk_and_nothing_else() {
        let paid = Order {
            status: "paid",
            total: 30,
        };
        let rows = [
            (json!(1), json!({"status": "new", "total": 5})),
            (json!("a-2"), json!({"pk": "stale", "status": "paid"})),
            (json!({"id": 3}), json!({})),
        ];
        let change = ModelChange::synced("shop.order", rows.iter().map(|(pk, data)| (pk, data)))
            .expect("valid");
        assert_eq!(change.action, Action::Synced);
        let event = change.to_event(DEFAULT_MODEL_PREFIX);
        assert_eq!(event.topic, "models.shop.order");
        assert_eq!(
            Value::Object(event.kwargs.clone()),
            json!({"action": "synced", "model": "shop.order", "rows": [
                {"pk": 1, "status": "new", "total": 5},
                {"pk": "a-2", "status": "paid"},
                {"pk": {"id": 3}},
            ]})
        );
        // The pk comes first in each row, whatever the data's order.
        let body = String::from_utf8(event.to_json()).expect("utf-8");
        assert!(body.contains(r#"{"pk":"a-2","status":"paid"}"#), "{body}");
        // Typed rows, and a sync of no rows (the model is now empty).
        let typed = ModelChange::synced("shop.order", [(42, &paid)]).expect("valid");
        assert_eq!(
            Value::Object(typed.kwargs()),
            json!({"action": "synced", "model": "shop.order",
                   "rows": [{"pk": 42, "status": "paid", "total": 30}]})
        );
        let empty = ModelChange::synced::<u32, Value>("shop.order", []).expect("valid");
        assert_eq!(
            Value::Object(empty.kwargs()),
            json!({"action": "synced", "model": "shop.order", "rows": []})
        );
    }

    #[test]
    fn synced_refuses_bad_names_and_rows_that_are_not_objects() {
        let rows = [(1, json!({"a": 1})), (2, json!([1]))];
        assert!(matches!(
            ModelChange::synced("shop.order", rows.iter().map(|(pk, data)| (pk, data))),
            Err(ModelError::RowNotAnObject {
                index: 1,
                kind: "an array"
            })
        ));
        assert!(matches!(
            ModelChange::synced::<u32, Value>("order", []),
            Err(ModelError::Name { .. })
        ));
    }

    #[test]
    fn actions_parse_their_wire_names() {
        for action in [
            Action::Created,
            Action::Updated,
            Action::Deleted,
            Action::Synced,
        ] {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("changed"), None);
    }
}
