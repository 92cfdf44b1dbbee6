//! The project's own codec fixtures, `tests/fixtures/wamp/*.json`: every message type the router speaks,
//! in JSON and MessagePack, well-formed (with the fields each must decode to, by the spec's element
//! names) and malformed (with a text the error must contain). They were written from the WAMP v2 spec's
//! message definitions (`tests/fixtures/wamp/cases.py`, turned into the JSON files by `generate.py`,
//! which has its own MessagePack encoder), so they do not depend on the codec under test.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use switchboard_gateway::wamp::message::name_of;
use switchboard_gateway::wamp::{Message, Payload};

use super::{frame_bytes, show, SERIALIZERS};

/// The fixture files, one per group of messages plus one for whole-frame errors.
const FILES: [&str; 5] = [
    "session.json",
    "pubsub.json",
    "rpc.json",
    "error.json",
    "frames.json",
];

/// Every message type code the router speaks.
const CODES: [u64; 24] = [
    1, 2, 3, 4, 5, 6, 8, 16, 17, 32, 33, 34, 35, 36, 48, 49, 50, 64, 65, 66, 67, 68, 69, 70,
];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wamp")
}

/// Every case of every fixture file, with its file name.
fn cases() -> Vec<(&'static str, Value)> {
    let mut all = Vec::new();
    for file in FILES {
        let path = fixture_dir().join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let document: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
        let cases = document["cases"]
            .as_array()
            .unwrap_or_else(|| panic!("{} has no cases list", path.display()));
        assert!(!cases.is_empty(), "{} has no cases", path.display());
        all.extend(cases.iter().map(|case| (file, case.clone())));
    }
    all
}

/// A decoded message as the fixtures write it: `type` and the spec's element names after the type code
/// (`Arguments`/`ArgumentsKw` only when present, `Payload` for a transparent payload).
fn spec_fields(message: &Message) -> Value {
    let mut fields = Map::new();
    let mut put = |key: &str, value: Value| {
        fields.insert(key.to_string(), value);
    };
    put("type", message.name().into());
    let dict = |d: &Map<String, Value>| Value::Object(d.clone());
    let payload = match message {
        Message::Hello { realm, details } => {
            put("Realm", realm.as_str().into());
            put("Details", dict(details));
            None
        }
        Message::Welcome { session, details } => {
            put("Session", (*session).into());
            put("Details", dict(details));
            None
        }
        Message::Abort { details, reason } | Message::Goodbye { details, reason } => {
            put("Details", dict(details));
            put("Reason", reason.as_str().into());
            None
        }
        Message::Challenge { authmethod, extra } => {
            put("AuthMethod", authmethod.as_str().into());
            put("Extra", dict(extra));
            None
        }
        Message::Authenticate { signature, extra } => {
            put("Signature", signature.as_str().into());
            put("Extra", dict(extra));
            None
        }
        Message::Error {
            request_type,
            request,
            details,
            error,
            payload,
        } => {
            put("REQUEST.Type", (*request_type).into());
            put("REQUEST.Request", (*request).into());
            put("Details", dict(details));
            put("Error", error.as_str().into());
            Some(payload)
        }
        Message::Publish {
            request,
            options,
            topic,
            payload,
        } => {
            put("Request", (*request).into());
            put("Options", dict(options));
            put("Topic", topic.as_str().into());
            Some(payload)
        }
        Message::Published {
            request,
            publication,
        } => {
            put("Request", (*request).into());
            put("Publication", (*publication).into());
            None
        }
        Message::Subscribe {
            request,
            options,
            topic,
        } => {
            put("Request", (*request).into());
            put("Options", dict(options));
            put("Topic", topic.as_str().into());
            None
        }
        Message::Subscribed {
            request,
            subscription,
        }
        | Message::Unsubscribe {
            request,
            subscription,
        } => {
            put("Request", (*request).into());
            put("Subscription", (*subscription).into());
            None
        }
        Message::Unsubscribed { request, details } | Message::Unregistered { request, details } => {
            put("Request", (*request).into());
            if let Some(details) = details {
                put("Details", dict(details));
            }
            None
        }
        Message::Event {
            subscription,
            publication,
            details,
            payload,
        } => {
            put("Subscription", (*subscription).into());
            put("Publication", (*publication).into());
            put("Details", dict(details));
            Some(payload)
        }
        Message::Call {
            request,
            options,
            procedure,
            payload,
        } => {
            put("Request", (*request).into());
            put("Options", dict(options));
            put("Procedure", procedure.as_str().into());
            Some(payload)
        }
        Message::Cancel { request, options } | Message::Interrupt { request, options } => {
            put("Request", (*request).into());
            put("Options", dict(options));
            None
        }
        Message::Result {
            request,
            details,
            payload,
        } => {
            put("Request", (*request).into());
            put("Details", dict(details));
            Some(payload)
        }
        Message::Register {
            request,
            options,
            procedure,
        } => {
            put("Request", (*request).into());
            put("Options", dict(options));
            put("Procedure", procedure.as_str().into());
            None
        }
        Message::Registered {
            request,
            registration,
        }
        | Message::Unregister {
            request,
            registration,
        } => {
            put("Request", (*request).into());
            put("Registration", (*registration).into());
            None
        }
        Message::Invocation {
            request,
            registration,
            details,
            payload,
        } => {
            put("Request", (*request).into());
            put("Registration", (*registration).into());
            put("Details", dict(details));
            Some(payload)
        }
        Message::Yield {
            request,
            options,
            payload,
        } => {
            put("Request", (*request).into());
            put("Options", dict(options));
            Some(payload)
        }
    };
    match payload {
        None | Some(Payload::Empty) => {}
        Some(Payload::Args(args)) => put("Arguments", Value::Array(args.clone())),
        Some(Payload::ArgsKwargs(args, kwargs)) => {
            put("Arguments", Value::Array(args.clone()));
            put("ArgumentsKw", dict(kwargs));
        }
        Some(Payload::Transparent(value)) => put("Payload", value.clone()),
    }
    Value::Object(fields)
}

/// The wire bytes of `case` for serializer `name`, if the case has that form.
fn wire(case: &Value, name: &str) -> Option<Vec<u8>> {
    let text = case.get(name)?.as_str().expect("wire forms are strings");
    Some(match name {
        "json" => text.as_bytes().to_vec(),
        _ => hex::decode(text).expect("msgpack wire forms are hex"),
    })
}

/// The fields a well-formed case must decode to: `decoded`, or `decoded_text` for messages nested too
/// deep to embed in the fixture file.
fn expected_fields(case: &Value) -> Option<Value> {
    if let Some(fields) = case.get("decoded") {
        return Some(fields.clone());
    }
    let text = case
        .get("decoded_text")?
        .as_str()
        .expect("decoded_text is text");
    Some(serde_json::from_str(text).expect("decoded_text is JSON"))
}

/// Checks one case in every serializer it has a wire form for; returns the problems found.
fn check(case: &Value, checked: &mut usize) -> Vec<String> {
    let expected = expected_fields(case);
    let mut problems = Vec::new();
    let mut decoded: Vec<Message> = Vec::new();
    for (name, serializer) in SERIALIZERS {
        let Some(bytes) = wire(case, name) else {
            continue;
        };
        *checked += 1;
        let shown = show(name, &bytes);
        match (
            serializer.decode(&bytes),
            expected.as_ref(),
            case["error"].as_str(),
        ) {
            (Ok(message), Some(want), _) => {
                let got = spec_fields(&message);
                if got != *want {
                    problems.push(format!("{name}: {shown} decodes to {got}, expected {want}"));
                }
                // A canonical encoding is what the codec itself writes; any encoding must at least
                // survive a round trip through the codec unchanged.
                let again = serializer.encode(&message);
                let canonical = case["canonical"].as_bool().unwrap_or(true);
                if canonical && frame_bytes(&again) != bytes {
                    let again = show(name, frame_bytes(&again));
                    problems.push(format!("{name}: {shown} re-encodes to {again}"));
                }
                match serializer.decode(frame_bytes(&again)) {
                    Ok(back) if back == message => {}
                    other => problems.push(format!("{name}: round trip gives {other:?}")),
                }
                decoded.push(message);
            }
            (Err(e), Some(_), _) => problems.push(format!("{name}: {shown} was rejected: {e}")),
            (Err(e), None, Some(want)) if e.contains(want) => {}
            (Err(e), None, Some(want)) => {
                problems.push(format!("{name}: {shown} gives {e:?}, which lacks {want:?}"))
            }
            (Ok(message), None, _) => {
                problems.push(format!("{name}: {shown} was accepted as {message:?}"))
            }
            (Err(e), None, None) => problems.push(format!("no expectation, decoding gave {e}")),
        }
    }
    if decoded.windows(2).any(|pair| pair[0] != pair[1]) {
        problems.push(format!("json and msgpack decode differently: {decoded:?}"));
    }
    if decoded.is_empty() && expected.is_some() {
        problems.push("a well-formed case without any wire form".into());
    }
    problems
}

#[test]
fn fixtures_decode_to_the_spec_fields_or_fail_as_listed() {
    let mut failures = Vec::new();
    let mut checked = 0;
    let cases = cases();
    for (file, case) in &cases {
        let description = case["description"].as_str().unwrap_or("(no description)");
        for problem in check(case, &mut checked) {
            failures.push(format!("{file} \"{description}\": {problem}"));
        }
    }
    println!(
        "{} fixture cases in {}: {checked} decodings",
        cases.len(),
        fixture_dir().display()
    );
    assert!(
        failures.is_empty(),
        "{} fixture failures:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn fixtures_cover_every_message_type_in_both_serializers() {
    let cases = cases();
    let mut missing = String::new();
    for code in CODES {
        let name = name_of(code);
        let valid = cases
            .iter()
            .filter(|(_, case)| case["decoded"]["type"] == name);
        let both = valid
            .filter(|(_, case)| case.get("json").is_some() && case.get("msgpack").is_some())
            .count();
        let malformed = cases
            .iter()
            .filter_map(|(_, case)| case["error"].as_str())
            .filter(|error| {
                error.starts_with(&format!("{name}.")) || error.starts_with(&format!("{name} "))
            })
            .count();
        if both == 0 || malformed == 0 {
            let _ = write!(
                missing,
                "\n  {name}: {both} well-formed cases in both serializers, {malformed} malformed"
            );
        }
    }
    assert!(
        missing.is_empty(),
        "message types without fixtures:{missing}"
    );
}
