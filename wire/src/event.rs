//! The one event shape every ingestion transport carries (DESIGN.md section 5), with a validating parser
//! that names the offending field, so the gateway can answer bad input precisely and emitters can fail
//! fast before anything goes on the wire.

use crate::uri::{self, MatchPolicy};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest accepted idempotency key (`id`), in bytes: keys are for deduplication, not payload.
pub const MAX_ID_BYTES: usize = 256;

/// An event a web app publishes: topic, payload, delivery options and an optional idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The WAMP topic URI subscribers listen on.
    pub topic: String,
    /// Positional payload (WAMP Arguments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Value>,
    /// Keyword payload (WAMP ArgumentsKw).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub kwargs: Map<String, Value>,
    /// Who may receive it and whether the gateway retains it.
    #[serde(default, skip_serializing_if = "EventOptions::is_default")]
    pub options: EventOptions,
    /// Optional idempotency key chosen by the publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Realm to publish in; absent means the gateway's first configured realm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
}

/// Delivery options of an event: private delivery (black/white listing by authid and authrole) and
/// retention. `None` for an `eligible_*` list means "everyone"; `Some(vec![])` means "nobody".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOptions {
    /// Ask the gateway to keep the event as the topic's retained event.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retain: bool,
    /// Only sessions authenticated as one of these authids receive the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligible_authid: Option<Vec<String>>,
    /// Sessions authenticated as these authids never receive the event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_authid: Vec<String>,
    /// Only sessions with one of these roles receive the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligible_authrole: Option<Vec<String>>,
    /// Sessions with these roles never receive the event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_authrole: Vec<String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl EventOptions {
    /// True when no option is set (nothing needs to go on the wire).
    pub fn is_default(&self) -> bool {
        *self == EventOptions::default()
    }

    /// The options as a WAMP PUBLISH options dictionary (the keys the router's audience reads).
    pub fn to_dict(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

/// Why an event was refused: the field at fault (a path such as `options.eligible_authid[2]`) and the
/// reason, so that a JSON-RPC `-32602` answer can name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct EventError {
    /// Path of the offending field.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl EventError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        EventError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with `prefix` put in front of the field path (for events inside a batch).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

impl Event {
    /// An event on `topic` with no payload and default options.
    pub fn new(topic: impl Into<String>) -> Self {
        Event {
            topic: topic.into(),
            args: Vec::new(),
            kwargs: Map::new(),
            options: EventOptions::default(),
            id: None,
            realm: None,
        }
    }

    /// Sets the positional payload.
    pub fn with_args(mut self, args: Vec<Value>) -> Self {
        self.args = args;
        self
    }

    /// Sets the keyword payload.
    pub fn with_kwargs(mut self, kwargs: Map<String, Value>) -> Self {
        self.kwargs = kwargs;
        self
    }

    /// Adds one keyword argument.
    pub fn with_kwarg(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.kwargs.insert(key.into(), value.into());
        self
    }

    /// Delivers only to sessions authenticated as one of `authids` (private messages).
    pub fn eligible_authids<S: Into<String>>(
        mut self,
        authids: impl IntoIterator<Item = S>,
    ) -> Self {
        self.options.eligible_authid = Some(authids.into_iter().map(Into::into).collect());
        self
    }

    /// Never delivers to sessions authenticated as one of `authids`.
    pub fn exclude_authids<S: Into<String>>(
        mut self,
        authids: impl IntoIterator<Item = S>,
    ) -> Self {
        self.options.exclude_authid = authids.into_iter().map(Into::into).collect();
        self
    }

    /// Delivers only to sessions holding one of `roles`.
    pub fn eligible_authroles<S: Into<String>>(
        mut self,
        roles: impl IntoIterator<Item = S>,
    ) -> Self {
        self.options.eligible_authrole = Some(roles.into_iter().map(Into::into).collect());
        self
    }

    /// Asks the gateway to retain the event for late subscribers.
    pub fn retained(mut self, retain: bool) -> Self {
        self.options.retain = retain;
        self
    }

    /// Sets the idempotency key.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Publishes in `realm` instead of the gateway's first realm.
    pub fn in_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Checks what the gateway will check (topic URI, realm, id length), so emitters fail before sending.
    pub fn validate(&self) -> Result<(), EventError> {
        uri::validate(&self.topic, MatchPolicy::Exact).map_err(|r| EventError::new("topic", r))?;
        if let Some(realm) = &self.realm {
            uri::validate(realm, MatchPolicy::Exact).map_err(|r| EventError::new("realm", r))?;
        }
        if let Some(id) = &self.id {
            check_id(id)?;
        }
        Ok(())
    }

    /// The event as compact JSON bytes, the body that gets signed and sent.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings, vectors and JSON values cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Length of [`Event::to_json`] without building it (for size limits on the hot path).
    pub fn json_len(&self) -> usize {
        json_len(self)
    }

    /// Parses and validates an event from a JSON value, naming the field at fault on error. Unknown
    /// top-level and option keys are refused: a misspelt `eligible_authid` silently ignored would turn a
    /// private message into a broadcast.
    pub fn from_value(value: Value) -> Result<Event, EventError> {
        let Value::Object(mut object) = value else {
            return Err(EventError::new(
                "event",
                format!("expected an object, got {}", kind(&value)),
            ));
        };
        const KNOWN: [&str; 6] = ["topic", "args", "kwargs", "options", "id", "realm"];
        if let Some(unknown) = object.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(EventError::new(
                unknown.clone(),
                format!("unknown key; known keys are {}", KNOWN.join(", ")),
            ));
        }
        let topic = match object.remove("topic") {
            Some(Value::String(topic)) => topic,
            Some(other) => {
                return Err(EventError::new(
                    "topic",
                    format!("expected a string, got {}", kind(&other)),
                ))
            }
            None => return Err(EventError::new("topic", "missing")),
        };
        let args = match object.remove("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(args)) => args,
            Some(other) => {
                return Err(EventError::new(
                    "args",
                    format!("expected an array, got {}", kind(&other)),
                ))
            }
        };
        let kwargs = match object.remove("kwargs") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(kwargs)) => kwargs,
            Some(other) => {
                return Err(EventError::new(
                    "kwargs",
                    format!("expected an object, got {}", kind(&other)),
                ))
            }
        };
        let options = match object.remove("options") {
            None | Some(Value::Null) => EventOptions::default(),
            Some(value) => parse_options(value)?,
        };
        let id = optional_string(&mut object, "id")?;
        let realm = optional_string(&mut object, "realm")?;
        let event = Event {
            topic,
            args,
            kwargs,
            options,
            id,
            realm,
        };
        event.validate()?;
        Ok(event)
    }
}

fn check_id(id: &str) -> Result<(), EventError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(EventError::new(
            "id",
            format!("must be 1 to {MAX_ID_BYTES} bytes long"),
        ));
    }
    Ok(())
}

fn optional_string(
    object: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<String>, EventError> {
    match object.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(EventError::new(
            key,
            format!("expected a string, got {}", kind(&other)),
        )),
    }
}

fn parse_options(value: Value) -> Result<EventOptions, EventError> {
    let Value::Object(object) = value else {
        return Err(EventError::new(
            "options",
            format!("expected an object, got {}", kind(&value)),
        ));
    };
    let mut options = EventOptions::default();
    for (key, value) in object {
        let field = format!("options.{key}");
        match key.as_str() {
            "retain" => match value {
                Value::Bool(retain) => options.retain = retain,
                other => {
                    return Err(EventError::new(
                        field,
                        format!("expected a boolean, got {}", kind(&other)),
                    ))
                }
            },
            "eligible_authid" => options.eligible_authid = Some(strings(&field, value)?),
            "exclude_authid" => options.exclude_authid = strings(&field, value)?,
            "eligible_authrole" => options.eligible_authrole = Some(strings(&field, value)?),
            "exclude_authrole" => options.exclude_authrole = strings(&field, value)?,
            _ => {
                return Err(EventError::new(
                    field,
                    "unknown option; known options are retain, eligible_authid, exclude_authid, \
                     eligible_authrole, exclude_authrole",
                ))
            }
        }
    }
    Ok(options)
}

fn strings(field: &str, value: Value) -> Result<Vec<String>, EventError> {
    let Value::Array(items) = value else {
        return Err(EventError::new(
            field,
            format!("expected an array of strings, got {}", kind(&value)),
        ));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(text) => Ok(text),
            other => Err(EventError::new(
                format!("{field}[{i}]"),
                format!("expected a string, got {}", kind(&other)),
            )),
        })
        .collect()
}

/// The JSON type name of `value`, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Length of the compact JSON text of `value` without building it: counted as it is written.
pub fn json_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_event_round_trips_through_json() {
        let event = Event::new("models.shop.order")
            .with_args(vec![json!(1)])
            .with_kwarg("pk", 42)
            .eligible_authids(["alice"])
            .exclude_authids(["bob"])
            .eligible_authroles(["staff"])
            .retained(true)
            .with_id("k1")
            .in_realm("realm2");
        let value: Value = serde_json::from_slice(&event.to_json()).expect("json");
        assert_eq!(
            value,
            json!({"topic": "models.shop.order", "args": [1], "kwargs": {"pk": 42},
                   "options": {"retain": true, "eligible_authid": ["alice"], "exclude_authid": ["bob"],
                               "eligible_authrole": ["staff"]},
                   "id": "k1", "realm": "realm2"})
        );
        assert_eq!(Event::from_value(value).expect("valid"), event.clone());
        assert_eq!(event.json_len(), event.to_json().len());
    }

    #[test]
    fn a_minimal_event_is_just_a_topic() {
        let event = Event::from_value(json!({"topic": "a.b"})).expect("valid");
        assert_eq!(event, Event::new("a.b"));
        assert_eq!(event.to_json(), br#"{"topic":"a.b"}"#);
    }

    #[test]
    fn an_empty_eligible_list_means_nobody_not_everybody() {
        let event = Event::from_value(json!({"topic": "a.b", "options": {"eligible_authid": []}}))
            .expect("valid");
        assert_eq!(event.options.eligible_authid, Some(vec![]));
        assert_eq!(event.options.to_dict()["eligible_authid"], json!([]));
    }

    fn refused(value: Value) -> EventError {
        Event::from_value(value).expect_err("must be refused")
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(refused(json!([1])).field, "event");
        assert_eq!(refused(json!({"args": []})).field, "topic");
        assert_eq!(refused(json!({"topic": 5})).field, "topic");
        assert_eq!(refused(json!({"topic": "a..b"})).field, "topic");
        assert_eq!(refused(json!({"topic": "a b"})).field, "topic");
        assert_eq!(refused(json!({"topic": "a.b", "args": {}})).field, "args");
        assert_eq!(
            refused(json!({"topic": "a.b", "kwargs": []})).field,
            "kwargs"
        );
        assert_eq!(
            refused(json!({"topic": "a.b", "options": 1})).field,
            "options"
        );
        assert_eq!(
            refused(json!({"topic": "a.b", "options": {"retain": "yes"}})).field,
            "options.retain"
        );
        assert_eq!(
            refused(json!({"topic": "a.b", "options": {"eligible_authid": ["a", 2]}})).field,
            "options.eligible_authid[1]"
        );
        assert_eq!(
            refused(json!({"topic": "a.b", "options": {"eligible_authids": ["a"]}})).field,
            "options.eligible_authids"
        );
        assert_eq!(refused(json!({"topic": "a.b", "id": 7})).field, "id");
        assert_eq!(refused(json!({"topic": "a.b", "id": ""})).field, "id");
        assert_eq!(
            refused(json!({"topic": "a.b", "realm": "x y"})).field,
            "realm"
        );
        assert_eq!(refused(json!({"topic": "a.b", "kwarg": {}})).field, "kwarg");
    }

    #[test]
    fn errors_read_well_and_nest_in_batches() {
        let error = refused(json!({"topic": 5})).within("events[3]");
        assert_eq!(
            error.to_string(),
            "events[3].topic: expected a string, got a number"
        );
    }
}
