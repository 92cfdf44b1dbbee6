//! The array form of WAMP messages: typed [`Message`] values to and from the arrays both serializers carry,
//! naming exactly what is wrong when an array is not a well-formed WAMP message.

use serde_json::Value;

use super::message::{self, name_of, Dict, Id, Message, Payload, MAX_ID};
use super::options;

/// Reads the elements of one message array in order, with error texts that name the element; the parsing
/// the message table generates calls one method per field.
pub(super) struct Elements {
    name: &'static str,
    items: std::vec::IntoIter<Value>,
    position: usize,
}

impl Elements {
    fn next(&mut self, what: &str) -> Result<Value, String> {
        self.position += 1;
        self.items
            .next()
            .ok_or_else(|| format!("{} has no {what} (element {})", self.name, self.position))
    }

    pub(super) fn id(&mut self, what: &str) -> Result<Id, String> {
        let value = self.next(what)?;
        match value.as_u64() {
            Some(id) if id <= MAX_ID => Ok(id),
            _ => Err(format!(
                "{}.{what} must be an id (integer 0..2^53), got {value}",
                self.name
            )),
        }
    }

    pub(super) fn integer(&mut self, what: &str) -> Result<u64, String> {
        let value = self.next(what)?;
        value
            .as_u64()
            .ok_or_else(|| format!("{}.{what} must be an integer, got {value}", self.name))
    }

    pub(super) fn string(&mut self, what: &str) -> Result<String, String> {
        match self.next(what)? {
            Value::String(s) => Ok(s),
            other => Err(format!(
                "{}.{what} must be a string, got {other}",
                self.name
            )),
        }
    }

    pub(super) fn dict(&mut self, what: &str) -> Result<Dict, String> {
        match self.next(what)? {
            Value::Object(map) => Ok(map),
            other => Err(format!("{}.{what} must be a dict, got {other}", self.name)),
        }
    }

    pub(super) fn checked_dict(&mut self, code: u64, what: &str) -> Result<Dict, String> {
        let dict = self.dict(what)?;
        options::check(code, &format!("{}.{what}", self.name), &dict)?;
        Ok(dict)
    }

    pub(super) fn optional_dict(&mut self, what: &str) -> Result<Option<Dict>, String> {
        if self.items.len() == 0 {
            return Ok(None);
        }
        self.dict(what).map(Some)
    }

    /// The optional Arguments and ArgumentsKw, or a transparent payload when `dict` announces one.
    pub(super) fn payload(&mut self, dict: &Dict) -> Result<Payload, String> {
        let Some(first) = self.items.next() else {
            return Ok(Payload::Empty);
        };
        let payload = match first {
            Value::Array(args) => match self.items.next() {
                None => Payload::Args(args),
                Some(Value::Object(kwargs)) => Payload::ArgsKwargs(args, kwargs),
                Some(other) => {
                    return Err(format!(
                        "{}.ArgumentsKw must be a dict, got {other}",
                        self.name
                    ))
                }
            },
            Value::String(_)
                if dict.contains_key("enc_algo") || dict.contains_key("ppt_scheme") =>
            {
                Payload::Transparent(first)
            }
            other => {
                return Err(format!(
                    "{}.Arguments must be a list, got {other}",
                    self.name
                ))
            }
        };
        if self.items.len() > 0 {
            return Err(format!(
                "{} has {} elements too many",
                self.name,
                self.items.len()
            ));
        }
        Ok(payload)
    }

    pub(super) fn finish(self, message: Message) -> Result<Message, String> {
        if self.items.len() > 0 {
            return Err(format!(
                "{} has {} elements too many",
                self.name,
                self.items.len()
            ));
        }
        Ok(message)
    }
}

/// Decodes one WAMP message from its array form; `Err` carries a human-readable protocol violation.
pub fn from_array(value: Value) -> Result<Message, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "a WAMP message must be an array, got {}",
            kind_of(&value)
        ));
    };
    let mut items = items.into_iter();
    let type_code = match items.next() {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("message type must be an integer, got {v}"))?,
        None => return Err("a WAMP message must not be an empty array".into()),
    };
    let name = name_of(type_code);
    if name == "UNKNOWN" {
        return Err(format!("unknown message type {type_code}"));
    }
    let el = Elements {
        name,
        items,
        position: 1,
    };
    message::parse(type_code, el)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a dict",
    }
}

/// Turns a message into its array form as a JSON value, for tests and tools that inspect it. The codecs do
/// not go through this: they serialize the borrowed message directly.
pub fn to_array(message: &Message) -> Value {
    // A message holds only strings, integers and JSON values, which always convert.
    serde_json::to_value(message).expect("a message converts to a JSON value")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error_of(value: Value) -> String {
        match from_array(value.clone()) {
            Ok(message) => panic!("{value} decoded to {message:?}"),
            Err(e) => e,
        }
    }

    #[track_caller]
    fn assert_rejected(value: Value, expected: &str) {
        let error = error_of(value.clone());
        assert!(
            error.contains(expected),
            "{value}: error {error:?} does not contain {expected:?}"
        );
    }

    #[test]
    fn a_message_must_be_a_non_empty_array_of_a_known_type() {
        assert_rejected(
            json!({"type": 32}),
            "a WAMP message must be an array, got a dict",
        );
        assert_rejected(json!("[32]"), "must be an array, got a string");
        assert_rejected(json!(null), "must be an array, got null");
        assert_rejected(json!([]), "a WAMP message must not be an empty array");
        assert_rejected(json!([99, 1]), "unknown message type 99");
        assert_rejected(json!([337, 1]), "unknown message type 337");
        assert_rejected(json!(["32", 1]), "message type must be an integer");
        assert_rejected(json!([-1]), "message type must be an integer");
        assert_rejected(json!([32.5, 1]), "message type must be an integer");
    }

    #[test]
    fn a_wrong_element_is_named() {
        assert_rejected(
            json!([32, 1, [], "com.example.topic"]),
            "SUBSCRIBE.Options must be a dict, got []",
        );
        assert_rejected(
            json!([32, "1", {}, "com.example.topic"]),
            "SUBSCRIBE.Request must be an id",
        );
        assert_rejected(json!([32, 1, {}, 7]), "SUBSCRIBE.Topic must be a string");
        assert_rejected(json!([32, 1, {}]), "SUBSCRIBE has no Topic (element 4)");
        assert_rejected(json!([1, {}, "realm1"]), "HELLO.Realm must be a string");
        assert_rejected(json!([6, "bye", {}]), "GOODBYE.Details must be a dict");
        assert_rejected(
            json!([8, "48", 1, {}, "wamp.error.x"]),
            "ERROR.REQUEST.Type must be an integer",
        );
        assert_rejected(
            json!([16, 1, {}, "t", {"a": 1}]),
            "PUBLISH.Arguments must be a list",
        );
        assert_rejected(
            json!([16, 1, {}, "t", [], []]),
            "PUBLISH.ArgumentsKw must be a dict",
        );
        assert_rejected(
            json!([16, 1, {}, "t", [], {}, 1]),
            "PUBLISH has 1 elements too many",
        );
        assert_rejected(json!([33, 1, 2, 3]), "SUBSCRIBED has 1 elements too many");
        assert_rejected(json!([35, 1, []]), "UNSUBSCRIBED.Details must be a dict");
        assert_rejected(
            json!([32, 1, {"match": "regex"}, "t"]),
            "SUBSCRIBE.Options.match must be one of exact, prefix, wildcard",
        );
        assert_rejected(
            json!([32, 1, {"forward_for": {}}, "t"]),
            "SUBSCRIBE.Options.forward_for must be a list",
        );
        // A string payload is only a transparent payload when the dict announces one.
        assert_rejected(
            json!([36, 1, 2, {}, "opaque"]),
            "EVENT.Arguments must be a list",
        );
    }

    #[test]
    fn ids_above_2_pow_53_are_rejected() {
        let max = MAX_ID;
        assert_eq!(
            from_array(json!([33, max, max])),
            Ok(Message::Subscribed {
                request: max,
                subscription: max
            })
        );
        assert_rejected(
            json!([33, 1, max + 1]),
            "SUBSCRIBED.Subscription must be an id (integer 0..2^53), got 9007199254740993",
        );
        assert_rejected(json!([33, u64::MAX, 1]), "SUBSCRIBED.Request must be an id");
        assert_rejected(json!([33, -1, 1]), "SUBSCRIBED.Request must be an id");
        assert_rejected(json!([33, 1.0, 1]), "SUBSCRIBED.Request must be an id");
        assert_rejected(json!([2, max + 1, {}]), "WELCOME.Session must be an id");
        assert_rejected(
            json!([36, 1, 2, {"publisher": max + 1}, []]),
            "EVENT.Details.publisher must be an id",
        );
        assert_rejected(
            json!([16, 1, {"exclude": [1, max + 1]}, "t"]),
            "PUBLISH.Options.exclude must be a list of ids",
        );
    }

    #[test]
    fn arrays_round_trip() {
        let arrays = [
            json!([1, "realm1", {"roles": {"subscriber": {}}}]),
            json!([8, 48, 7, {}, "com.example.error", ["x"], {"k": 1}]),
            json!([16, 1, {"enc_algo": "cryptobox"}, "t", "\u{0}AAE="]),
            json!([35, 1]),
            json!([35, 0, {"reason": "revoked"}]),
            json!([36, 1, 2, {}, [], {}]),
            json!([70, 1, {"progress": true}, [1.5, null, true]]),
        ];
        for array in arrays {
            let message = from_array(array.clone()).expect("valid");
            assert_eq!(to_array(&message), array);
        }
    }
}
