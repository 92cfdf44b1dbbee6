//! Types of the well-known keys of Options and Details dictionaries, checked when a message is decoded so
//! the router can read them without re-checking. Unknown keys are ignored, as the spec requires.

use serde_json::Value;

use super::message::{code, Dict, MAX_ID};

/// What a well-known key must hold.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    Id,
    Str,
    /// A non-negative integer (milliseconds and counts).
    UInt,
    IdList,
    StrList,
    List,
    /// One of a fixed set of strings.
    OneOf(&'static [&'static str]),
}

const ENC_ALGOS: &[&str] = &["null", "cryptobox", "mqtt", "xbr"];
const ENC_SERIALIZERS: &[&str] = &[
    "null",
    "json",
    "msgpack",
    "cbor",
    "ubjson",
    "opaque",
    "flatbuffers",
];
const MATCH_POLICIES: &[&str] = &["exact", "prefix", "wildcard"];
const INVOKE_POLICIES: &[&str] = &["single", "roundrobin", "random", "first", "last"];
const CANCEL_MODES: &[&str] = &["skip", "kill", "killnowait"];

/// Keys any Options/Details may carry: `forward_for` is the router-to-router (R-Link) forwarding chain,
/// which the WAMP test vectors check in SUBSCRIBE as well as in PUBLISH and EVENT.
const COMMON_KEYS: &[(&str, Kind)] = &[("forward_for", Kind::List)];

const PAYLOAD_KEYS: &[(&str, Kind)] = &[
    ("enc_algo", Kind::OneOf(ENC_ALGOS)),
    ("enc_serializer", Kind::OneOf(ENC_SERIALIZERS)),
    ("enc_key", Kind::Str),
    ("transaction_hash", Kind::Str),
];

/// The schema of the dictionary of a message with type `code`: its well-known keys and their kinds.
fn schema(code: u64) -> &'static [(&'static str, Kind)] {
    match code {
        code::PUBLISH => &[
            ("acknowledge", Kind::Bool),
            ("exclude_me", Kind::Bool),
            ("exclude", Kind::IdList),
            ("exclude_authid", Kind::StrList),
            ("exclude_authrole", Kind::StrList),
            ("eligible", Kind::IdList),
            ("eligible_authid", Kind::StrList),
            ("eligible_authrole", Kind::StrList),
            ("disclose_me", Kind::Bool),
            ("retain", Kind::Bool),
            ("x_acknowledged_delivery", Kind::Bool),
        ],
        code::EVENT => &[
            ("publisher", Kind::Id),
            ("publisher_authid", Kind::Str),
            ("publisher_authrole", Kind::Str),
            ("topic", Kind::Str),
            ("retained", Kind::Bool),
            ("x_acknowledged_delivery", Kind::Bool),
        ],
        code::SUBSCRIBE => &[
            ("match", Kind::OneOf(MATCH_POLICIES)),
            ("get_retained", Kind::Bool),
        ],
        code::REGISTER => &[
            ("match", Kind::OneOf(MATCH_POLICIES)),
            ("invoke", Kind::OneOf(INVOKE_POLICIES)),
            ("disclose_caller", Kind::Bool),
        ],
        code::CALL => &[
            ("receive_progress", Kind::Bool),
            ("timeout", Kind::UInt),
            ("disclose_me", Kind::Bool),
        ],
        code::CANCEL => &[("mode", Kind::OneOf(CANCEL_MODES))],
        code::INTERRUPT => &[("mode", Kind::OneOf(CANCEL_MODES)), ("reason", Kind::Str)],
        code::YIELD => &[("progress", Kind::Bool)],
        code::RESULT => &[("progress", Kind::Bool)],
        code::INVOCATION => &[
            ("caller", Kind::Id),
            ("receive_progress", Kind::Bool),
            ("procedure", Kind::Str),
            ("timeout", Kind::UInt),
        ],
        _ => &[],
    }
}

fn has_payload_keys(code: u64) -> bool {
    matches!(
        code,
        code::PUBLISH | code::EVENT | code::CALL | code::RESULT | code::INVOCATION | code::YIELD
    )
}

fn fits(kind: Kind, value: &Value) -> bool {
    let is_id = |v: &Value| v.as_u64().is_some_and(|n| n <= MAX_ID);
    match kind {
        Kind::Bool => value.is_boolean(),
        Kind::Id => is_id(value),
        Kind::Str => value.is_string(),
        Kind::UInt => value.as_u64().is_some(),
        Kind::IdList => value.as_array().is_some_and(|a| a.iter().all(is_id)),
        Kind::StrList => value
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)),
        Kind::List => value.is_array(),
        Kind::OneOf(names) => value.as_str().is_some_and(|s| names.contains(&s)),
    }
}

fn describe(kind: Kind) -> String {
    match kind {
        Kind::Bool => "a boolean".into(),
        Kind::Id => "an id (integer 0..2^53)".into(),
        Kind::Str => "a string".into(),
        Kind::UInt => "a non-negative integer".into(),
        Kind::IdList => "a list of ids".into(),
        Kind::StrList => "a list of strings".into(),
        Kind::List => "a list".into(),
        Kind::OneOf(names) => format!("one of {}", names.join(", ")),
    }
}

/// Checks the well-known keys of the Options/Details `dict` of a message of type `code`; `label` names the
/// element in the error (e.g. "PUBLISH.Options").
pub fn check(code: u64, label: &str, dict: &Dict) -> Result<(), String> {
    let payload_keys: &[(&str, Kind)] = if has_payload_keys(code) {
        PAYLOAD_KEYS
    } else {
        &[]
    };
    for (key, kind) in schema(code).iter().chain(payload_keys).chain(COMMON_KEYS) {
        if let Some(value) = dict.get(*key) {
            if !fits(*kind, value) {
                return Err(format!(
                    "{label}.{key} must be {}, got {value}",
                    describe(*kind)
                ));
            }
        }
    }
    Ok(())
}

/// Reads a boolean option the decoder has already checked, with its default.
pub fn flag(dict: &Dict, key: &str, default: bool) -> bool {
    dict.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// Reads a string option the decoder has already checked.
pub fn text<'a>(dict: &'a Dict, key: &str) -> Option<&'a str> {
    dict.get(key).and_then(Value::as_str)
}

/// Reads an integer option the decoder has already checked.
pub fn number(dict: &Dict, key: &str) -> Option<u64> {
    dict.get(key).and_then(Value::as_u64)
}

/// Reads a list-of-ids option the decoder has already checked.
pub fn ids(dict: &Dict, key: &str) -> Option<Vec<u64>> {
    dict.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
}

/// Reads a list-of-strings option the decoder has already checked.
pub fn strings(dict: &Dict, key: &str) -> Option<Vec<String>> {
    dict.get(key).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}
