//! Property tests (stable-Rust fuzzing) of what the gateway's ingestion reads from the network: the event
//! envelope ([`Event::from_value`]) and the signature header ([`Verifier`]). Neither may panic on any
//! input; valid events survive a trip through their JSON; no header but the signer's own is accepted.
//!
//! CI runs a few hundred cases per property; `PROPTEST_CASES` asks for more, e.g.
//! `PROPTEST_CASES=100000 cargo test --release -p switchboard-emitter --test fuzz_ingest`.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value};
use switchboard_emitter::{Event, EventError, EventOptions, SignatureError, Signer, Verifier};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 500;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with the envelope's own keys (and a few others), each holding any value, so that every
/// field check is reached.
fn plausible_envelope() -> impl Strategy<Value = Value> {
    let key = proptest::sample::select(vec![
        "topic", "args", "kwargs", "options", "id", "realm", "topik", "",
    ]);
    let option_key = proptest::sample::select(vec![
        "retain",
        "eligible_authid",
        "exclude_authid",
        "eligible_authrole",
        "exclude_authrole",
        "acknowledge",
    ]);
    let options = btree_map(option_key, json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    let value = prop_oneof![
        json_value(),
        options,
        uri().prop_map(Value::from),
        vec(".{0,6}".prop_map(Value::from), 0..3).prop_map(Value::Array),
    ];
    btree_map(key, value, 0..6)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

/// A URI that passes the exact-match rules: dot-separated, non-empty components without whitespace or #.
fn uri() -> impl Strategy<Value = String> {
    "[a-z0-9_]{1,8}(\\.[a-z0-9_\\-]{1,8}){0,3}"
}

fn names() -> impl Strategy<Value = Vec<String>> {
    vec(".{0,8}", 0..3)
}

/// Any event the emitter may send.
fn valid_event() -> impl Strategy<Value = Event> {
    let options = (
        any::<bool>(),
        option::of(names()),
        names(),
        option::of(names()),
        names(),
    )
        .prop_map(
            |(retain, eligible_authid, exclude_authid, eligible_authrole, exclude_authrole)| {
                EventOptions {
                    retain,
                    eligible_authid,
                    exclude_authid,
                    eligible_authrole,
                    exclude_authrole,
                }
            },
        );
    let kwargs = btree_map(".{0,6}", json_value(), 0..4).prop_map(|m| m.into_iter().collect());
    (
        uri(),
        vec(json_value(), 0..4),
        kwargs,
        options,
        option::of(".{1,64}"),
        option::of(uri()),
    )
        .prop_map(
            |(topic, args, kwargs, options, id, realm): (_, _, Map<String, Value>, _, _, _)| {
                Event {
                    topic,
                    args,
                    kwargs,
                    options,
                    id,
                    realm,
                }
            },
        )
}

/// Checks that `error` says what is wrong with something `value` holds: the whole event, a key it has
/// (or the missing topic), or a path below such a key.
fn names_a_field_of(value: &Value, error: &EventError) -> Result<(), TestCaseError> {
    prop_assert!(!error.reason.is_empty(), "{error:?}");
    let object = value.as_object();
    let has = |key: &str| object.is_some_and(|o| o.contains_key(key));
    let head = error.field.split(['.', '[']).next().unwrap_or_default();
    prop_assert!(
        error.field == "event" || head == "topic" || has(&error.field) || has(head),
        "{error:?} names nothing in {value}"
    );
    Ok(())
}

const SECRET: &str = "fuzz-secret";
const NOW: u64 = 1_800_000_000;
const SKEW_S: u64 = 300;

/// Header-shaped text: `t=`, `n=` and `s=` parts with plausible and implausible values, in any order,
/// sometimes repeated or with other parts.
fn plausible_header() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        (NOW - 400..NOW + 400).prop_map(|t| format!("t={t}")),
        ".{0,12}".prop_map(|t| format!("t={t}")),
        "[A-Za-z0-9_-]{6,20}".prop_map(|n| format!("n={n}")),
        ".{0,12}".prop_map(|n| format!("n={n}")),
        "[0-9a-f]{64}".prop_map(|s| format!("s={s}")),
        "[0-9a-fA-Fz]{0,70}".prop_map(|s| format!("s={s}")),
        ".{0,8}",
    ];
    vec(part, 0..5).prop_map(|parts| parts.join(","))
}

proptest! {
    #![proptest_config(config())]

    /// Any JSON value is an event or an error naming a field, never a panic.
    #[test]
    fn arbitrary_json_is_an_event_or_names_a_field(value in json_value()) {
        if let Err(error) = Event::from_value(value.clone()) {
            names_a_field_of(&value, &error)?;
        }
    }

    /// Objects with the envelope's keys and any values: what is accepted is valid and round-trips.
    #[test]
    fn plausible_envelopes_are_valid_events_or_name_a_field(value in plausible_envelope()) {
        match Event::from_value(value.clone()) {
            Ok(event) => {
                prop_assert!(event.validate().is_ok());
                let again = serde_json::from_slice(&event.to_json()).expect("to_json is JSON");
                prop_assert_eq!(Event::from_value(again), Ok(event));
            }
            Err(error) => names_a_field_of(&value, &error)?,
        }
    }

    /// Every valid event survives its JSON body unchanged, and `json_len` is that body's length.
    #[test]
    fn valid_events_round_trip_through_json(event in valid_event()) {
        let body = event.to_json();
        prop_assert_eq!(event.json_len(), body.len());
        let value: Value = serde_json::from_slice(&body).expect("to_json is JSON");
        prop_assert_eq!(Event::from_value(value), Ok(event));
    }

    /// No header the signer did not make is accepted, whatever its shape; none makes the verifier panic.
    #[test]
    fn arbitrary_headers_are_refused(
        header in prop_oneof![".{0,120}", plausible_header()],
        body in vec(any::<u8>(), 0..64),
    ) {
        let verifier = Verifier::new(SECRET, SKEW_S);
        let result = verifier.verify_at(Some(&header), &body, NOW);
        prop_assert!(result.is_err(), "forged header {header:?} accepted");
    }

    /// A genuine signature verifies once; changing the body, the timestamp, the nonce, one digit of the
    /// MAC, or signing with another secret gets it refused.
    #[test]
    fn tampered_signatures_are_refused(
        body in vec(any::<u8>(), 0..64),
        other_body in vec(any::<u8>(), 0..64),
        timestamp in NOW - SKEW_S..=NOW + SKEW_S,
        nonce in "[A-Za-z0-9_-]{8,40}",
        digit in 0..64usize,
        shift in 1..=SKEW_S,
    ) {
        let genuine = Signer::new(SECRET).sign_with(&body, timestamp, &nonce);
        let mac = genuine.rsplit_once("s=").expect("s= part").1;
        let flipped = {
            let mut digits: Vec<char> = mac.chars().collect();
            digits[digit] = if digits[digit] == '0' { '1' } else { '0' };
            digits.into_iter().collect::<String>()
        };
        let mut forgeries = vec![
            genuine.replace(mac, &flipped),
            genuine.replace(&format!("n={nonce}"), &format!("n={nonce}x")),
            genuine.replace(&format!("t={timestamp}"), &format!("t={}", timestamp - shift)),
            Signer::new("another-secret").sign_with(&body, timestamp, &nonce),
        ];
        if other_body != body {
            forgeries.push(Signer::new(SECRET).sign_with(&body, timestamp, &nonce));
        }
        let verifier = Verifier::new(SECRET, SKEW_S);
        for (i, forged) in forgeries.iter().enumerate() {
            let checked_body = if i == 4 { &other_body } else { &body };
            let result = verifier.verify_at(Some(forged), checked_body, NOW);
            prop_assert!(result.is_err(), "forgery {i} {forged:?} accepted");
        }
        prop_assert_eq!(verifier.verify_at(Some(&genuine), &body, NOW), Ok(()));
        let replay = verifier.verify_at(Some(&genuine), &body, NOW);
        prop_assert!(matches!(replay, Err(SignatureError::Replayed(_))), "{replay:?}");
    }
}
