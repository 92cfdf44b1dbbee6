//! A page of a model view: `switchboard.model.rows`' order, cursor, filter and total.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::{Row, ViewError, Views, MODEL_PREFIX};
use crate::wamp::Id;

/// What `switchboard.model.rows` asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowsQuery {
    /// Field to order by (`pk` by default); rows without it come first.
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
        if let Some(reason) = &view.incomplete {
            return Err(ViewError::Incomplete(name.to_string(), reason.clone()));
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
            Some(after) => rows
                .iter()
                .position(|row| row.pk == *after)
                .map(|at| at + 1)
                .ok_or_else(|| ViewError::NoSuchRow(after.to_string()))?,
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
