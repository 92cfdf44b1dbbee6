//! The WAMP project's own message test vectors (wamp-proto/wamp-proto, folder `testsuite/`) against our
//! codec: every JSON and MessagePack encoding they list must decode to the expected fields and re-encode
//! to one of the listed byte strings, and every validation sample must be accepted or rejected as listed.
//!
//! The vectors are third-party data and are not copied into this repository: they are an extra check on
//! top of the project's own fixtures, read only from the folder `$SWITCHBOARD_WAMP_TESTSUITE` names (then
//! they must be there), and skipped with a note when it is not set: a clone of the repository alone runs
//! the project's own fixtures and nothing outside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Map, Value};
use switchboard_gateway::wamp::message::name_of;
use switchboard_gateway::wamp::{Message, Payload};

use super::{frame_bytes, show, SERIALIZERS};

/// Message types the vectors cover but the codec deliberately does not speak. Their samples are not
/// skipped silently: every listed encoding must be rejected as an unknown message type, so adding support
/// makes this test fail until the entry is removed here.
const UNSUPPORTED: &[(u64, &str)] = &[(
    337,
    "EVENT_RECEIVED (337, provisional, for acknowledged event delivery) is not implemented",
)];

// ---------------------------------------------------------------------------------------------------------
// Locating and reading the vectors

/// Where the vectors are, or `None` (with a note) when `SWITCHBOARD_WAMP_TESTSUITE` is not set. A folder it
/// names must exist: whoever sets it wants the check to run.
fn suite_dir() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SWITCHBOARD_WAMP_TESTSUITE").filter(|dir| !dir.is_empty())
    else {
        eprintln!(
            "note: skipping the WAMP project's test vectors (an optional extra check: point \
             SWITCHBOARD_WAMP_TESTSUITE at a copy of the wamp-proto testsuite to run them); the \
             project's own fixtures in tests/fixtures/wamp still ran"
        );
        return None;
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("singlemessage").is_dir(),
        "SWITCHBOARD_WAMP_TESTSUITE={} has no singlemessage/ folder",
        dir.display()
    );
    Some(dir.canonicalize().unwrap_or(dir))
}

/// Every `*.json` file under `dir`, recursively, sorted by path.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// The byte strings one entry of a `serializers` list holds (`bytes`, `bytes_hex`, `bytes_base64`); the
/// text form `bytes` only means something for JSON.
fn byte_forms(serializer: &str, entry: &Value) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let mut forms = Vec::new();
    if let Some(text) = entry.get("bytes").and_then(Value::as_str) {
        if serializer == "json" {
            forms.push(("bytes", text.as_bytes().to_vec()));
        }
    }
    if let Some(text) = entry.get("bytes_hex").and_then(Value::as_str) {
        forms.push((
            "bytes_hex",
            hex::decode(text).map_err(|e| format!("bad bytes_hex: {e}"))?,
        ));
    }
    if let Some(text) = entry.get("bytes_base64").and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("bad bytes_base64: {e}"))?;
        forms.push(("bytes_base64", bytes));
    }
    if forms.is_empty() {
        return Err(format!("no {serializer} byte string in {entry}"));
    }
    Ok(forms)
}

// ---------------------------------------------------------------------------------------------------------
// Messages as the vectors' attributes

/// A decoded message as the attribute set the vectors' `expected_attributes` use (Autobahn's names):
/// `request_id`, `subscription_id`, ... (but `subscription`/`publication` in EVENT), `method` for
/// CHALLENGE, HELLO/WELCOME Details flattened (`roles`, `authid`, ...). The payload is `args`, `kwargs`
/// (null when the element is absent) and `payload`, the hex of a transparent (E2EE) binary payload.
fn attributes(message: &Message) -> Value {
    let mut a = Map::new();
    let mut put = |key: &str, value: Value| {
        a.insert(key.to_string(), value);
    };
    put("message_type", message.code().into());
    let dict = |d: &Map<String, Value>| Value::Object(d.clone());
    let mut payload = Payload::Empty;
    match message {
        Message::Hello { realm, details } => {
            put("realm", realm.as_str().into());
            details.iter().for_each(|(k, v)| put(k, v.clone()));
        }
        Message::Welcome { session, details } => {
            put("session_id", (*session).into());
            details.iter().for_each(|(k, v)| put(k, v.clone()));
        }
        Message::Abort { details, reason } | Message::Goodbye { details, reason } => {
            put("details", dict(details));
            put("reason", reason.as_str().into());
        }
        Message::Challenge { authmethod, extra } => {
            put("method", authmethod.as_str().into());
            put("extra", dict(extra));
        }
        Message::Authenticate { signature, extra } => {
            put("signature", signature.as_str().into());
            put("extra", dict(extra));
        }
        Message::Error {
            request_type,
            request,
            details,
            error,
            payload: p,
        } => {
            put("request_type", (*request_type).into());
            put("request_id", (*request).into());
            put("details", dict(details));
            put("error", error.as_str().into());
            payload = p.clone();
        }
        Message::Publish {
            request,
            options,
            topic,
            payload: p,
        } => {
            put("request_id", (*request).into());
            put("options", dict(options));
            put("topic", topic.as_str().into());
            payload = p.clone();
        }
        Message::Published {
            request,
            publication,
        } => {
            put("request_id", (*request).into());
            put("publication_id", (*publication).into());
        }
        Message::Subscribe {
            request,
            options,
            topic,
        } => {
            put("request_id", (*request).into());
            put("options", dict(options));
            put("topic", topic.as_str().into());
        }
        Message::Subscribed {
            request,
            subscription,
        }
        | Message::Unsubscribe {
            request,
            subscription,
        } => {
            put("request_id", (*request).into());
            put("subscription_id", (*subscription).into());
        }
        Message::Unsubscribed { request, details } | Message::Unregistered { request, details } => {
            put("request_id", (*request).into());
            put("details", details.as_ref().map_or(Value::Null, dict));
        }
        Message::Event {
            subscription,
            publication,
            details,
            payload: p,
        } => {
            put("subscription", (*subscription).into());
            put("publication", (*publication).into());
            put("details", dict(details));
            payload = p.clone();
        }
        Message::Call {
            request,
            options,
            procedure,
            payload: p,
        } => {
            put("request_id", (*request).into());
            put("options", dict(options));
            put("procedure", procedure.as_str().into());
            payload = p.clone();
        }
        Message::Cancel { request, options } | Message::Interrupt { request, options } => {
            put("request_id", (*request).into());
            put("options", dict(options));
        }
        Message::Result {
            request,
            details,
            payload: p,
        } => {
            put("request_id", (*request).into());
            put("details", dict(details));
            payload = p.clone();
        }
        Message::Register {
            request,
            options,
            procedure,
        } => {
            put("request_id", (*request).into());
            put("options", dict(options));
            put("procedure", procedure.as_str().into());
        }
        Message::Registered {
            request,
            registration,
        }
        | Message::Unregister {
            request,
            registration,
        } => {
            put("request_id", (*request).into());
            put("registration_id", (*registration).into());
        }
        Message::Invocation {
            request,
            registration,
            details,
            payload: p,
        } => {
            put("request_id", (*request).into());
            put("registration_id", (*registration).into());
            put("details", dict(details));
            payload = p.clone();
        }
        Message::Yield {
            request,
            options,
            payload: p,
        } => {
            put("request_id", (*request).into());
            put("options", dict(options));
            payload = p.clone();
        }
    }
    let (args, kwargs, transparent) = match payload {
        Payload::Empty => (Value::Null, Value::Null, Value::Null),
        Payload::Args(args) => (Value::Array(args), Value::Null, Value::Null),
        Payload::ArgsKwargs(args, kwargs) => {
            (Value::Array(args), Value::Object(kwargs), Value::Null)
        }
        Payload::Transparent(value) => (Value::Null, Value::Null, binary_as_hex(value)),
    };
    put("args", args);
    put("kwargs", kwargs);
    put("payload", transparent);
    Value::Object(a)
}

/// A binary value in the WAMP JSON convention ("\u0000" + base64) as hex, as the vectors write payloads;
/// any other value as it is.
fn binary_as_hex(value: Value) -> Value {
    match value.as_str().and_then(|s| s.strip_prefix('\0')) {
        Some(b64) => match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(bytes) => hex::encode(bytes).into(),
            Err(_) => value,
        },
        None => value,
    }
}

/// The vectors name the same field differently in different places (`subscription` in the EVENT sample,
/// `subscription_id` in the multisession EVENT): compare attribute names in one spelling.
fn canonical(key: &str) -> &str {
    match key {
        "request" => "request_id",
        "subscription" => "subscription_id",
        "publication" => "publication_id",
        "registration" => "registration_id",
        "session" => "session_id",
        "authmethod" => "method",
        other => other,
    }
}

/// Compares decoded attributes with expected ones: every expected attribute must be there with the same
/// value (`kwargs: null` means "no ArgumentsKw element", which is not the same as `{}`), and an attribute
/// the vectors do not mention must be null or an empty dict (e.g. no `args` in an ERROR sample).
fn compare_attributes(actual: &Value, expected: &Value) -> Result<(), String> {
    let canon = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .expect("attributes are a dict")
            .iter()
            .map(|(k, v)| (canonical(k).to_string(), v.clone()))
            .collect()
    };
    let (actual, expected) = (canon(actual), canon(expected));
    let mut problems = Vec::new();
    for (key, want) in &expected {
        match actual.get(key) {
            Some(got) if got == want => {}
            Some(got) => problems.push(format!("{key} is {got}, expected {want}")),
            None => problems.push(format!("{key} is missing, expected {want}")),
        }
    }
    for (key, got) in &actual {
        let empty = got.is_null() || got.as_object().is_some_and(Map::is_empty);
        if !expected.contains_key(key) && !empty {
            problems.push(format!("unexpected {key} = {got}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Single messages

#[derive(Default)]
struct Counts {
    serialization: usize,
    decodings: usize,
    encodings: usize,
    validation: usize,
    validation_decodings: usize,
    unsupported: usize,
    unsupported_decodings: usize,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.serialization += other.serialization;
        self.decodings += other.decodings;
        self.encodings += other.encodings;
        self.validation += other.validation;
        self.validation_decodings += other.validation_decodings;
        self.unsupported += other.unsupported;
        self.unsupported_decodings += other.unsupported_decodings;
    }

    fn describe(&self) -> String {
        let mut text = format!(
            "{} serialization samples ({} decodings, {} byte-exact re-encodings), {} validation samples \
             ({} decodings)",
            self.serialization,
            self.decodings,
            self.encodings,
            self.validation,
            self.validation_decodings
        );
        if self.unsupported > 0 {
            let _ = write!(
                text,
                ", {} samples of an unsupported message type ({} decodings, all checked to be rejected)",
                self.unsupported, self.unsupported_decodings
            );
        }
        text
    }
}

/// Checks one serialization sample; failures are appended to `failures`.
fn check_serialization(sample: &Value, counts: &mut Counts, failures: &mut Vec<String>) {
    let expected = &sample["expected_attributes"];
    let code = expected["message_type"].as_u64().unwrap_or_default();
    let unsupported = UNSUPPORTED.iter().find(|(c, _)| *c == code);
    let mut decoded: Vec<(String, Message)> = Vec::new();
    for (name, serializer) in SERIALIZERS {
        let Some(entries) = sample["serializers"].get(name).and_then(Value::as_array) else {
            failures.push(format!("no {name} encodings listed"));
            continue;
        };
        let mut listed: Vec<Vec<u8>> = Vec::new();
        let mut ours: Vec<(String, Message)> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let forms = match byte_forms(name, entry) {
                Ok(forms) => forms,
                Err(e) => {
                    failures.push(format!("{name}[{i}]: {e}"));
                    continue;
                }
            };
            if forms.iter().any(|(_, bytes)| *bytes != forms[0].1) {
                failures.push(format!(
                    "{name}[{i}]: its byte forms disagree with each other"
                ));
            }
            for (form, bytes) in forms {
                let what = format!("{name}[{i}].{form} {}", show(name, &bytes));
                if unsupported.is_some() {
                    counts.unsupported_decodings += 1;
                } else {
                    counts.decodings += 1;
                }
                match (serializer.decode(&bytes), unsupported) {
                    (Err(e), Some((code, _)))
                        if e.contains(&format!("unknown message type {code}")) => {}
                    (Ok(message), Some(_)) => failures.push(format!(
                        "{what}: decoded to {message:?} although listed in UNSUPPORTED"
                    )),
                    (Err(e), _) => failures.push(format!("{what}: decoding failed: {e}")),
                    (Ok(message), None) => {
                        if let Err(e) = compare_attributes(&attributes(&message), expected) {
                            failures.push(format!("{what}: {e}"));
                        }
                        ours.push((what.clone(), message.clone()));
                        decoded.push((what, message));
                    }
                }
                listed.push(bytes);
            }
        }
        for (what, message) in ours {
            counts.encodings += 1;
            let frame = serializer.encode(&message);
            let bytes = frame_bytes(&frame);
            if !listed.iter().any(|l| l == bytes) {
                failures.push(format!(
                    "{what}: decodes to {message:?}, which re-encodes to {}, not a listed {name} encoding",
                    show(name, bytes)
                ));
            }
        }
    }
    // The JSON and MessagePack encodings of one sample are the same message, binary values included.
    if let Some((first_what, first)) = decoded.first() {
        for (what, message) in &decoded[1..] {
            if message != first {
                failures.push(format!(
                    "{what} decodes to {message:?} but {first_what} to {first:?}"
                ));
            }
        }
    }
    if unsupported.is_some() {
        counts.unsupported += 1;
    } else {
        counts.serialization += 1;
    }
}

/// Checks one validation sample in both serializers; failures are appended to `failures`.
fn check_validation(sample: &Value, counts: &mut Counts, failures: &mut Vec<String>) {
    let wmsg = &sample["wmsg"];
    let expected_error = sample.get("expected_error");
    let contains = match expected_error {
        None => None,
        Some(error) => {
            if let Some(kind) = error.get("type").and_then(Value::as_str) {
                // The codec's errors are all protocol violations (the session turns them into an ABORT
                // with wamp.error.protocol_violation); any other kind would need a different check.
                if kind != "protocol_violation" {
                    failures.push(format!(
                        "expected_error.type {kind} is not one the codec can produce"
                    ));
                }
            }
            Some(error.get("contains").and_then(Value::as_str).unwrap_or(""))
        }
    };
    for (name, serializer) in SERIALIZERS {
        // The wire bytes as a peer would send them: JSON straight from the vector, MessagePack through the
        // codec's own JSON -> MessagePack conversion.
        let frame = serializer.encode_value(wmsg.clone());
        let bytes = frame_bytes(&frame);
        counts.validation_decodings += 1;
        match (serializer.decode(bytes), contains) {
            (Ok(message), None) => {
                // Accepted messages survive a round trip unchanged.
                let again = serializer.encode(&message);
                if frame_bytes(&again) != bytes {
                    failures.push(format!(
                        "{name}: {} re-encodes to {}",
                        show(name, bytes),
                        show(name, frame_bytes(&again))
                    ));
                }
            }
            (Err(e), None) => {
                failures.push(format!("{name}: {wmsg} was rejected ({e}) but is valid"));
            }
            (Ok(message), Some(want)) => failures.push(format!(
                "{name}: {wmsg} was accepted as {message:?} but must be rejected with an error \
                 containing {want:?}"
            )),
            (Err(e), Some(want)) if e.contains(want) => {}
            (Err(e), Some(want)) => failures.push(format!(
                "{name}: {wmsg} was rejected with {e:?}, which does not contain {want:?}"
            )),
        }
    }
    counts.validation += 1;
}

#[test]
fn singlemessage_vectors() {
    let Some(root) = suite_dir() else { return };
    let files = json_files(&root.join("singlemessage"));
    assert!(
        !files.is_empty(),
        "no test vectors under {}",
        root.join("singlemessage").display()
    );
    let mut report = String::new();
    let mut failures = Vec::new();
    let mut total = Counts::default();
    for path in &files {
        let file = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        let vector = read_json(path);
        let Some(samples) = vector["samples"].as_array() else {
            failures.push(format!("{file}: no samples list"));
            continue;
        };
        let mut counts = Counts::default();
        for (i, sample) in samples.iter().enumerate() {
            let description = sample["description"].as_str().unwrap_or("(no description)");
            let mut problems = Vec::new();
            if sample.get("serializers").is_some() {
                check_serialization(sample, &mut counts, &mut problems);
            } else if sample.get("wmsg").is_some() {
                check_validation(sample, &mut counts, &mut problems);
            } else {
                problems.push("neither a serialization nor a validation sample".into());
            }
            failures.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{file} sample {i} \"{description}\": {p}")),
            );
        }
        let _ = write!(report, "\n  {file}: {}", counts.describe());
        total.add(&counts);
    }
    println!(
        "WAMP test vectors in {}:{report}\n  total of {} files: {}",
        root.display(),
        files.len(),
        total.describe()
    );
    for (_, why) in UNSUPPORTED {
        println!("  not supported: {why}");
    }
    assert!(
        failures.is_empty(),
        "{} test vector failures:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------------------
// Message sequences

/// What a message array holds after the type code, by attribute name (canonical spelling).
enum Element {
    /// A required value.
    Value(&'static str),
    /// A dict, `{}` when the attribute is absent; for HELLO and WELCOME the Details are the flattened
    /// attributes (`roles`, ...).
    Dict(&'static str),
    /// A trailing dict that is left out when absent.
    OptionalDict(&'static str),
    /// Arguments, ArgumentsKw or a transparent payload.
    Payload,
}

fn layout(code: u64) -> Option<&'static [Element]> {
    use Element::*;
    Some(match code {
        1 => &[Value("realm"), Dict("details")],
        2 => &[Value("session_id"), Dict("details")],
        3 | 6 => &[Dict("details"), Value("reason")],
        4 => &[Value("method"), Dict("extra")],
        5 => &[Value("signature"), Dict("extra")],
        8 => &[
            Value("request_type"),
            Value("request_id"),
            Dict("details"),
            Value("error"),
            Payload,
        ],
        16 => &[
            Value("request_id"),
            Dict("options"),
            Value("topic"),
            Payload,
        ],
        17 => &[Value("request_id"), Value("publication_id")],
        32 => &[Value("request_id"), Dict("options"), Value("topic")],
        33 | 34 => &[Value("request_id"), Value("subscription_id")],
        35 | 67 => &[Value("request_id"), OptionalDict("details")],
        36 => &[
            Value("subscription_id"),
            Value("publication_id"),
            Dict("details"),
            Payload,
        ],
        48 => &[
            Value("request_id"),
            Dict("options"),
            Value("procedure"),
            Payload,
        ],
        49 | 69 => &[Value("request_id"), Dict("options")],
        50 => &[Value("request_id"), Dict("details"), Payload],
        64 => &[Value("request_id"), Dict("options"), Value("procedure")],
        65 | 66 => &[Value("request_id"), Value("registration_id")],
        68 => &[
            Value("request_id"),
            Value("registration_id"),
            Dict("details"),
            Payload,
        ],
        70 => &[Value("request_id"), Dict("options"), Payload],
        _ => return None,
    })
}

/// The array form of a message written as attributes (`{"type": "EVENT", "subscription_id": 1, ...}`).
fn array_from_attributes(message: &Value) -> Result<Value, String> {
    let name = message["type"].as_str().ok_or("message has no type")?;
    let code = (1..1024)
        .find(|c| name_of(*c) == name)
        .ok_or(format!("unknown message type {name}"))?;
    let layout = layout(code).ok_or(format!("no layout for {name}"))?;
    let mut attrs: Map<String, Value> = message
        .as_object()
        .ok_or("message is not a dict")?
        .iter()
        .filter(|(k, _)| *k != "type" && *k != "message_type")
        .map(|(k, v)| (canonical(k).to_string(), v.clone()))
        .collect();
    let mut items = vec![Value::from(code)];
    let flattened_details = code == 1 || code == 2;
    for element in layout {
        match element {
            Element::Value(key) => {
                items.push(attrs.remove(*key).ok_or(format!("{name} has no {key}"))?)
            }
            Element::Dict(key) => match attrs.remove(*key) {
                Some(value) => items.push(value),
                None if flattened_details => {
                    let rest = std::mem::take(&mut attrs);
                    items.push(Value::Object(
                        rest.into_iter().filter(|(_, v)| !v.is_null()).collect(),
                    ));
                }
                None => items.push(Value::Object(Map::new())),
            },
            Element::OptionalDict(key) => items.extend(attrs.remove(*key).filter(|v| !v.is_null())),
            Element::Payload => {
                let args = attrs.remove("args").filter(|v| !v.is_null());
                let kwargs = attrs.remove("kwargs").filter(|v| !v.is_null());
                match attrs.remove("payload").filter(|v| !v.is_null()) {
                    Some(payload) => {
                        let bytes = hex::decode(payload.as_str().unwrap_or_default())
                            .map_err(|e| format!("payload is not hex: {e}"))?;
                        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                        items.push(format!("\0{b64}").into());
                    }
                    None => match (args, kwargs) {
                        (None, None) => {}
                        (args, None) => items.extend(args),
                        (args, Some(kwargs)) => {
                            items.push(args.unwrap_or_else(|| Value::Array(Vec::new())));
                            items.push(kwargs);
                        }
                    },
                }
            }
        }
    }
    if let Some(key) = attrs.keys().next() {
        return Err(format!(
            "{name} has an attribute {key} that has no place in the array"
        ));
    }
    Ok(Value::Array(items))
}

#[test]
fn multisession_vectors() {
    let Some(root) = suite_dir() else { return };
    let files = json_files(&root.join("multisession"));
    let mut failures = Vec::new();
    let mut report = String::new();
    for path in &files {
        let file = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        let vector = read_json(path);
        let Some(sequence) = vector["sequence"].as_array() else {
            failures.push(format!("{file}: no sequence list"));
            continue;
        };
        let mut checked = 0;
        for step in sequence {
            let label = format!(
                "{file} step {} \"{}\"",
                step["step"],
                step["description"].as_str().unwrap_or("(no description)")
            );
            let array = match array_from_attributes(&step["message"]) {
                Ok(array) => array,
                Err(e) => {
                    failures.push(format!("{label}: {e}"));
                    continue;
                }
            };
            for (name, serializer) in SERIALIZERS {
                let frame = serializer.encode_value(array.clone());
                match serializer.decode(frame_bytes(&frame)) {
                    Ok(message) => {
                        let mut expected = step["message"].clone();
                        if let Some(attrs) = expected.as_object_mut() {
                            attrs.remove("type");
                            attrs.insert("message_type".into(), array[0].clone());
                        }
                        if let Err(e) = compare_attributes(&attributes(&message), &expected) {
                            failures.push(format!("{label}: {name}: {e}"));
                        }
                    }
                    Err(e) => failures.push(format!("{label}: {name}: {array} was rejected: {e}")),
                }
            }
            checked += 1;
        }
        let _ = write!(
            report,
            "\n  {file}: {checked} of {} messages built from their attributes, decoded in json and \
             msgpack and compared",
            sequence.len()
        );
    }
    println!("WAMP test vector sequences in {}:{report}", root.display());
    assert!(
        failures.is_empty(),
        "{} test vector failures:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
