//! Model views (`[[realms.models]]`): the latest row per pk of a model, kept from the model events on its
//! topic (`models.<app.model>`), so that a page loads its first rows from the gateway
//! (`switchboard.model.rows`) and recovers from the publication the view is consistent with. Only events
//! on the model's own topic change a view: a browser allowed to publish elsewhere cannot forge rows. A
//! view that cannot be trusted (not seeded since the gateway started, past `max_rows` or `max_bytes`, or
//! fed a malformed model event) says so instead of answering.

mod page;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::{Map, Value};
use switchboard_config::ModelViewConfig;
use switchboard_wire::event::json_len;

#[cfg(test)]
use page::Page;
pub(crate) use page::RowsQuery;

use crate::wamp::{Id, Payload};

/// Topic prefix of model events (the emitter's default).
pub(crate) const MODEL_PREFIX: &str = "models.";

/// Bytes a row costs beyond its fields' JSON (its map entry, key text and pk).
const ROW_OVERHEAD: usize = 96;

/// One row: its pk and its fields (the pk also under `pk`, as pages receive it).
#[derive(Debug, Clone)]
struct Row {
    pk: Value,
    fields: Map<String, Value>,
    /// What the row counts against `max_bytes`.
    bytes: usize,
}

impl Row {
    fn new(pk: &Value, fields: Map<String, Value>) -> Self {
        let mut row = Row {
            pk: pk.clone(),
            fields,
            bytes: 0,
        };
        row.fields.insert("pk".into(), pk.clone());
        row.bytes = json_len(&row.fields) + ROW_OVERHEAD;
        row
    }
}

/// One model's view.
#[derive(Debug)]
struct View {
    max_rows: usize,
    max_bytes: usize,
    /// Rows by the JSON text of their pk (pks are strings or integers, so 1 and "1" stay apart).
    rows: HashMap<String, Row>,
    bytes: usize,
    /// The last publication applied: the view holds every event up to it and none after.
    publication: Option<Id>,
    /// Why the view cannot be trusted until the web app's next valid sync, if it cannot.
    incomplete: Option<String>,
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
    /// The view passed a bound or was fed a malformed event.
    #[error("model view `{0}` is incomplete until the web app resyncs it: {1}")]
    Incomplete(String, String),
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

/// The realm's model views, by topic.
#[derive(Debug, Default)]
pub(crate) struct Views {
    by_topic: HashMap<String, View>,
}

/// A row's key: the JSON text of its pk, which must be a string or an integer (a float, a boolean or a
/// structure cannot name a row a page can page after, and 1.0 would alias 1 in the browser).
fn pk_key(pk: &Value) -> Result<String, String> {
    match pk {
        Value::String(_) => Ok(pk.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(pk.to_string()),
        other => Err(format!("a pk must be a string or an integer, got {other}")),
    }
}

impl View {
    /// The rows of a `synced` event, checked: a list of objects, each with a valid and distinct pk.
    fn synced(&self, kwargs: &Map<String, Value>) -> Result<HashMap<String, Row>, String> {
        let rows = kwargs
            .get("rows")
            .and_then(Value::as_array)
            .ok_or("a synced event without a `rows` list")?;
        if rows.len() > self.max_rows {
            return Err(format!(
                "a sync of {} rows passed max_rows ({})",
                rows.len(),
                self.max_rows
            ));
        }
        let mut synced = HashMap::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            let fields = row
                .as_object()
                .ok_or_else(|| format!("synced row {index} is not an object"))?;
            let pk = fields
                .get("pk")
                .ok_or_else(|| format!("synced row {index} has no pk"))?;
            let key = pk_key(pk).map_err(|fault| format!("synced row {index}: {fault}"))?;
            if synced.insert(key, Row::new(pk, fields.clone())).is_some() {
                return Err(format!("synced row {index} repeats pk {pk}"));
            }
        }
        Ok(synced)
    }

    /// Applies one model event; an error says why the view can no longer be trusted.
    fn apply(&mut self, kwargs: &Map<String, Value>) -> Result<(), String> {
        let action = kwargs.get("action").and_then(Value::as_str);
        if action == Some("synced") {
            let rows = self.synced(kwargs)?;
            self.bytes = rows.values().map(|row| row.bytes).sum();
            self.rows = rows;
            self.seeded = true;
            self.incomplete = None;
            return self.check_bytes();
        }
        let Some(action @ ("created" | "updated" | "deleted")) = action else {
            return Ok(());
        };
        let pk = kwargs.get("pk").ok_or("a model event without a pk")?;
        let key = pk_key(pk)?;
        if action == "deleted" {
            if let Some(row) = self.rows.remove(&key) {
                self.bytes -= row.bytes;
            }
            return Ok(());
        }
        let data = match kwargs.get("data") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(data)) => data.clone(),
            Some(other) => {
                return Err(format!(
                    "a model event's data must be an object, got {other}"
                ))
            }
        };
        let mut fields = match self.rows.remove(&key) {
            Some(row) => {
                self.bytes -= row.bytes;
                row.fields
            }
            None if self.rows.len() >= self.max_rows => {
                return Err(format!("a created row passed max_rows ({})", self.max_rows))
            }
            None => Map::new(),
        };
        fields.extend(data);
        let row = Row::new(pk, fields);
        self.bytes += row.bytes;
        self.rows.insert(key, row);
        self.check_bytes()
    }

    fn check_bytes(&self) -> Result<(), String> {
        if self.bytes > self.max_bytes {
            return Err(format!("its rows passed max_bytes ({})", self.max_bytes));
        }
        Ok(())
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
                        max_bytes: model.max_bytes,
                        rows: HashMap::new(),
                        bytes: 0,
                        publication: None,
                        incomplete: None,
                        seeded: false,
                    };
                    (format!("{MODEL_PREFIX}{}", model.name), view)
                })
                .collect(),
        }
    }

    /// Applies a model event on `topic` (created and updated merge `data` into the row, deleted removes
    /// it, synced replaces every row). Returns why the view became untrustworthy with this event, if it
    /// did: past `max_rows` or `max_bytes`, or a malformed model event (its rows are then dropped to give
    /// the memory back). Events that are not model events still move the view's publication.
    pub(crate) fn apply(&mut self, topic: &str, id: Id, payload: &Payload) -> Option<String> {
        let view = self.by_topic.get_mut(topic)?;
        view.publication = Some(id);
        let Payload::ArgsKwargs(_, kwargs) = payload else {
            return None;
        };
        let fault = view.apply(kwargs).err()?;
        view.rows.clear();
        view.bytes = 0;
        let first = view.incomplete.is_none();
        view.incomplete = Some(fault.clone());
        first.then_some(fault)
    }
}
