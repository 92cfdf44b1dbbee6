//! Model views (`[[realms.models]]`): the latest row per pk of a model, kept from the model events on its
//! topic (`models.<app.model>`), so that a page loads its first rows from the gateway
//! (`switchboard.model.rows`) and recovers from the publication the view is consistent with. Only events
//! on the model's own topic change a view: a browser allowed to publish elsewhere cannot forge rows.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Map, Value};
use switchboard_config::ModelViewConfig;

use crate::wamp::{Id, Payload};

/// Topic prefix of model events (the emitter's default).
pub(crate) const MODEL_PREFIX: &str = "models.";

/// One row: its pk and its fields (the pk also under `pk`, as pages receive it).
#[derive(Debug, Clone)]
struct Row {
    pk: Value,
    fields: Map<String, Value>,
}

/// One model's view.
#[derive(Debug)]
struct View {
    max_rows: usize,
    /// Rows by the JSON text of their pk (so that 1 and "1" are different rows, as in the database).
    rows: HashMap<String, Row>,
    /// The last publication applied: the view holds every event up to it and none after.
    publication: Option<Id>,
    /// A created row did not fit `max_rows`: the view is incomplete until a sync that fits.
    overflowed: bool,
    /// A sync arrived since the gateway started. Before it the view holds only rows changed since the
    /// start, which would mislead a page: it answers nothing until the web app seeds it.
    seeded: bool,
}

/// Why a view cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ViewError {
    /// No `[[realms.models]]` entry names the model.
    #[error("no model view `{0}` in this realm (see [[realms.models]])")]
    NoSuchModel(String),
    /// The view passed `max_rows`.
    #[error(
        "model view `{0}` passed its max_rows ({1}) and is incomplete until the web app resyncs it"
    )]
    Incomplete(String, usize),
    /// No sync since the gateway started.
    #[error(
        "model view `{0}` has not been seeded since the gateway started: the web app seeds it with \
         model(\"{0}\").sync(rows)"
    )]
    Unseeded(String),
    /// `after` names a row that is not in the view.
    #[error("row {0} is not in the view (deleted since?): start from the first page")]
    NoSuchRow(String),
}

/// What `switchboard.model.rows` asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowsQuery {
    /// Field to order by (`pk` by default).
    pub order_by: Option<String>,
    /// Descending order.
    pub desc: bool,
    /// Most rows answered.
    pub limit: usize,
    /// The pk of the last row of the previous page.
    pub after: Option<Value>,
}

/// A page of a view.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page {
    /// The rows, each its fields with its pk under `pk`.
    pub rows: Vec<Value>,
    /// Rows matching the filter in the whole view.
    pub total: usize,
    /// The publication the view is consistent with (recover from it).
    pub publication: Option<Id>,
}

/// The realm's model views, by topic.
#[derive(Debug, Default)]
pub(crate) struct Views {
    by_topic: HashMap<String, View>,
}

fn pk_key(pk: &Value) -> String {
    pk.to_string()
}

/// Orders JSON values: missing and null first, then booleans, numbers (numerically), strings, and
/// anything else by its text.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(x), Some(y)) if rank(a) == 4 && rank(b) == 4 => x.to_string().cmp(&y.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

impl Views {
    /// The views a realm's configuration names.
    pub(crate) fn from_config(models: &[ModelViewConfig]) -> Self {
        Views {
            by_topic: models
                .iter()
                .map(|model| {
                    let view = View {
                        max_rows: model.max_rows,
                        rows: HashMap::new(),
                        publication: None,
                        overflowed: false,
                        seeded: false,
                    };
                    (format!("{MODEL_PREFIX}{}", model.name), view)
                })
                .collect(),
        }
    }

    /// Applies a model event on `topic` (created and updated merge `data` into the row, deleted removes it,
    /// synced replaces every row); returns true when a created row did not fit `max_rows`. Events that are
    /// not model events still move the view's publication: it is consistent with them.
    pub(crate) fn apply(&mut self, topic: &str, id: Id, payload: &Payload) -> bool {
        let Some(view) = self.by_topic.get_mut(topic) else {
            return false;
        };
        view.publication = Some(id);
        let Payload::ArgsKwargs(_, kwargs) = payload else {
            return false;
        };
        let action = kwargs.get("action").and_then(Value::as_str);
        if action == Some("synced") {
            let rows = kwargs.get("rows").and_then(Value::as_array);
            view.rows.clear();
            view.overflowed = false;
            view.seeded = true;
            for row in rows.into_iter().flatten() {
                let (Some(fields), Some(pk)) = (row.as_object(), row.get("pk")) else {
                    continue;
                };
                if view.rows.len() >= view.max_rows {
                    view.overflowed = true;
                    return true;
                }
                let row = Row {
                    pk: pk.clone(),
                    fields: fields.clone(),
                };
                view.rows.insert(pk_key(pk), row);
            }
            return false;
        }
        let Some(pk) = kwargs.get("pk") else {
            return false;
        };
        let key = pk_key(pk);
        let data = kwargs.get("data").and_then(Value::as_object);
        match action {
            Some("deleted") => {
                view.rows.remove(&key);
            }
            Some("created" | "updated") => {
                if !view.rows.contains_key(&key) && view.rows.len() >= view.max_rows {
                    view.overflowed = true;
                    return true;
                }
                let row = view.rows.entry(key).or_insert_with(|| Row {
                    pk: pk.clone(),
                    fields: Map::new(),
                });
                if let Some(data) = data {
                    row.fields
                        .extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                row.fields.insert("pk".into(), pk.clone());
            }
            _ => {}
        }
        false
    }

    /// A page of model `name`'s rows that `admit` accepts (given `{pk, model, data}`, the shape of a
    /// model event's kwargs, so that one filter serves both the subscription and the view).
    pub(crate) fn rows(
        &self,
        name: &str,
        query: &RowsQuery,
        admit: impl Fn(&Value) -> bool,
    ) -> Result<Page, ViewError> {
        let view = self
            .by_topic
            .get(&format!("{MODEL_PREFIX}{name}"))
            .ok_or_else(|| ViewError::NoSuchModel(name.to_string()))?;
        if !view.seeded {
            return Err(ViewError::Unseeded(name.to_string()));
        }
        if view.overflowed {
            return Err(ViewError::Incomplete(name.to_string(), view.max_rows));
        }
        let mut rows: Vec<&Row> = view
            .rows
            .values()
            .filter(|row| {
                let mut kwargs = Map::new();
                kwargs.insert("pk".into(), row.pk.clone());
                kwargs.insert("model".into(), Value::String(name.to_string()));
                kwargs.insert("data".into(), Value::Object(row.fields.clone()));
                admit(&Value::Object(kwargs))
            })
            .collect();
        let field = query.order_by.as_deref().unwrap_or("pk");
        rows.sort_by(|a, b| {
            let order = compare(a.fields.get(field), b.fields.get(field))
                .then_with(|| compare(Some(&a.pk), Some(&b.pk)));
            if query.desc {
                order.reverse()
            } else {
                order
            }
        });
        let total = rows.len();
        let start = match &query.after {
            None => 0,
            Some(after) => {
                let key = pk_key(after);
                rows.iter()
                    .position(|row| pk_key(&row.pk) == key)
                    .map(|at| at + 1)
                    .ok_or(ViewError::NoSuchRow(key))?
            }
        };
        Ok(Page {
            rows: rows
                .iter()
                .skip(start)
                .take(query.limit)
                .map(|row| Value::Object(row.fields.clone()))
                .collect(),
            total,
            publication: view.publication,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(kwargs: Value) -> Payload {
        Payload::ArgsKwargs(vec![], serde_json::from_value(kwargs).unwrap_or_default())
    }

    fn views(max_rows: usize) -> Views {
        Views::from_config(&[ModelViewConfig {
            name: "shop.order".into(),
            max_rows,
        }])
    }

    fn all(views: &Views) -> Result<Page, ViewError> {
        let query = RowsQuery {
            limit: 100,
            ..RowsQuery::default()
        };
        views.rows("shop.order", &query, |_| true)
    }

    #[test]
    fn model_events_keep_the_latest_row_per_pk() {
        let mut views = views(10);
        let topic = "models.shop.order";
        assert!(matches!(all(&views), Err(ViewError::Unseeded(_))));
        views.apply(topic, 0, &event(json!({"action": "synced", "rows": []})));
        views.apply(
            topic,
            1,
            &event(json!({"action": "created", "pk": 1, "data": {"total": 5, "city": "Oslo"}})),
        );
        views.apply(
            topic,
            2,
            &event(json!({"action": "created", "pk": 2, "data": {"total": 9}})),
        );
        views.apply(
            topic,
            3,
            &event(json!({"action": "updated", "pk": 1, "data": {"total": 7}})),
        );
        views.apply(topic, 4, &event(json!({"action": "deleted", "pk": 2})));
        views.apply(
            "models.shop.item",
            5,
            &event(json!({"action": "created", "pk": 9, "data": {}})),
        );
        let page = all(&views).expect("view");
        assert_eq!(
            page.rows,
            vec![json!({"pk": 1, "total": 7, "city": "Oslo"})]
        );
        assert_eq!((page.total, page.publication), (1, Some(4)));
        views.apply(
            topic,
            6,
            &event(json!({"action": "synced", "rows": [{"pk": 3, "total": 1}, {"pk": 4}]})),
        );
        let page = all(&views).expect("view");
        assert_eq!(
            page.rows,
            vec![json!({"pk": 3, "total": 1}), json!({"pk": 4})]
        );
    }

    #[test]
    fn pages_follow_the_order_and_the_cursor() {
        let mut views = views(100);
        views.apply(
            "models.shop.order",
            99,
            &event(json!({"action": "synced", "rows": []})),
        );
        for pk in 1..=5 {
            let data = json!({"action": "created", "pk": pk, "data": {"total": 10 - pk}});
            views.apply("models.shop.order", pk, &event(data));
        }
        let query = RowsQuery {
            order_by: Some("total".into()),
            desc: true,
            limit: 2,
            after: Some(json!(2)),
        };
        let page = views.rows("shop.order", &query, |_| true).expect("view");
        let pks: Vec<&Value> = page.rows.iter().filter_map(|r| r.get("pk")).collect();
        assert_eq!(pks, vec![&json!(3), &json!(4)]);
        assert_eq!(page.total, 5);
        let filtered = views.rows(
            "shop.order",
            &RowsQuery {
                limit: 10,
                ..Default::default()
            },
            |k| {
                k.pointer("/data/total")
                    .and_then(Value::as_u64)
                    .is_some_and(|t| t > 6)
            },
        );
        assert_eq!(filtered.map(|p| p.total), Ok(3));
        let gone = RowsQuery {
            after: Some(json!(99)),
            limit: 1,
            ..Default::default()
        };
        assert_eq!(
            views.rows("shop.order", &gone, |_| true),
            Err(ViewError::NoSuchRow("99".into()))
        );
        assert!(matches!(
            views.rows("shop.nope", &query, |_| true),
            Err(ViewError::NoSuchModel(_))
        ));
    }

    #[test]
    fn a_view_past_max_rows_says_it_is_incomplete_until_a_sync_fits() {
        let mut views = views(2);
        let topic = "models.shop.order";
        views.apply(topic, 99, &event(json!({"action": "synced", "rows": []})));
        for pk in 1..=2 {
            assert!(!views.apply(
                topic,
                pk,
                &event(json!({"action": "created", "pk": pk, "data": {}}))
            ));
        }
        assert!(views.apply(
            topic,
            3,
            &event(json!({"action": "created", "pk": 3, "data": {}}))
        ));
        assert!(matches!(all(&views), Err(ViewError::Incomplete(_, 2))));
        views.apply(
            topic,
            4,
            &event(json!({"action": "synced", "rows": [{"pk": 1}]})),
        );
        assert_eq!(all(&views).map(|p| p.total), Ok(1));
    }
}
