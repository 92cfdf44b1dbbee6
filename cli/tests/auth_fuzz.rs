//! Fuzz-style robustness of the handshake, against the real binary: random byte frames and random
//! well-formed-but-wrong HELLO / AUTHENTICATE sequences (seeded, bounded). No panic, every connection
//! gets a WAMP answer (ABORT, or WELCOME/CHALLENGE where the HELLO happened to be acceptable, and then
//! ABORT for the wrong AUTHENTICATE), and /healthz stays 200 throughout.
//!
//! `SWITCHBOARD_FUZZ_SEED` replays one seed; `SWITCHBOARD_FUZZ_CASES` changes the number of connections.

mod support;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::{Gateway, RawClient};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const REALMS: &str = r#"
[security]
secret = "fuzz-secret"

[[realms]]
name = "realm1"
anonymous_role = "anonymous"
[[realms.roles]]
name = "anonymous"
permissions = [{ uri = "", match = "prefix", allow = { subscribe = true } }]

[[realms]]
name = "secure"
[[realms.roles]]
name = "member"
permissions = [{ uri = "app.public", match = "prefix", allow = { subscribe = true } }]
[[realms.users]]
authid = "backend"
secret = "backend-secret"
role = "member"
[[realms.users]]
authid = "salty"
secret = "s33kr1t"
role = "member"
salt = "salt123"
iterations = 10
keylen = 16
"#;

fn random_text(rng: &mut StdRng, max: usize) -> String {
    let len = rng.random_range(0..=max);
    (0..len)
        .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
        .collect()
}

fn random_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..7) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(random_text(rng, 40)),
        4 => json!([random_text(rng, 8), rng.random::<u32>()]),
        5 => json!({ random_text(rng, 6): random_text(rng, 6) }),
        _ => json!(rng.random::<f64>()),
    }
}

/// A forged signature: random text, a ticket-shaped string, or a base64-shaped WAMP-CRA answer.
fn random_signature(rng: &mut StdRng) -> String {
    match rng.random_range(0..3) {
        0 => random_text(rng, 200),
        1 => format!(
            "{}.{}",
            random_text(rng, 60).replace('.', ""),
            hex::encode(rng.random::<[u8; 32]>())
        ),
        _ => base64_like(rng),
    }
}

fn base64_like(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text: String = (0..43)
        .map(|_| char::from(*ALPHABET.choose(rng).expect("alphabet")))
        .collect();
    text.push('=');
    text
}

/// A HELLO that is well-formed WAMP but wrong (or merely unusual) in its details.
fn random_hello(rng: &mut StdRng) -> Value {
    let realm = *[
        "realm1",
        "secure",
        "secure",
        "no.such.realm",
        "bad realm!",
        "",
    ]
    .choose(rng)
    .expect("realm");
    let mut details = json!({});
    if rng.random_bool(0.9) {
        details["roles"] = json!({"subscriber": {}, "caller": {}});
    }
    let methods = ["ticket", "wampcra", "anonymous", "cryptosign", "scram", ""];
    match rng.random_range(0..4) {
        0 => {}
        1 => details["authmethods"] = random_value(rng),
        _ => {
            let n = rng.random_range(0..3);
            let chosen: Vec<&str> = (0..n).map(|_| *methods.choose(rng).expect("m")).collect();
            details["authmethods"] = json!(chosen);
        }
    }
    match rng.random_range(0..4) {
        0 => {}
        1 => details["authid"] = random_value(rng),
        _ => {
            details["authid"] = json!(*["alice", "backend", "salty", "nobody"]
                .choose(rng)
                .expect("id"))
        }
    }
    json!([1, realm, details])
}

/// A wrong AUTHENTICATE: a forged signature, or a wrong shape.
fn random_authenticate(rng: &mut StdRng) -> Value {
    match rng.random_range(0..5) {
        0 => json!([5, random_value(rng), {}]),
        1 => json!([5, random_signature(rng)]),
        2 => json!([5, random_signature(rng), random_value(rng)]),
        _ => json!([5, random_signature(rng), {}]),
    }
}

/// Reads the answer to what was sent; None when the connection closed without a WAMP message.
async fn answer(client: &mut RawClient) -> Option<Value> {
    client.recv().await
}

fn is_abort(message: &Value) -> bool {
    message[0] == 3
        && message[2]
            .as_str()
            .is_some_and(|r| r.starts_with("wamp.error."))
}

/// Runs one connection; returns how the handshake went: `abort`, `welcome` or `challenge`.
async fn one_case(url: &str, rng: &mut StdRng, case: usize, seed: u64) -> &'static str {
    let context = format!("seed {seed}, case {case}");
    let kind = rng.random_range(0..5);
    let subprotocol = if rng.random_bool(0.5) {
        "wamp.2.json"
    } else {
        "wamp.2.msgpack"
    };
    let mut client = RawClient::connect(url, subprotocol).await;
    let sent = match kind {
        0 => {
            let len = rng.random_range(0..512);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            client.send_raw(WsMessage::binary(bytes)).await;
            "random bytes".to_string()
        }
        1 => {
            let text = random_text(rng, 300);
            client.send_raw(WsMessage::text(text.clone())).await;
            format!("random text {text:?}")
        }
        2 => {
            let authenticate = random_authenticate(rng);
            send_json(&mut client, subprotocol, &authenticate).await;
            format!("AUTHENTICATE before HELLO {authenticate}")
        }
        3 => {
            let hello = random_hello(rng);
            send_json(&mut client, subprotocol, &hello).await;
            format!("HELLO {hello}")
        }
        _ => {
            // A plausible authenticating HELLO, so that most of these reach AUTHENTICATE.
            let method = *["ticket", "wampcra"].choose(rng).expect("method");
            let authid = *["alice", "backend", "salty", "nobody"]
                .choose(rng)
                .expect("id");
            let hello = json!([1, "secure", {"roles": {"subscriber": {}},
                "authmethods": [method], "authid": authid}]);
            send_json(&mut client, subprotocol, &hello).await;
            format!("HELLO {hello}")
        }
    };
    let first = answer(&mut client).await;
    let first = first.unwrap_or_else(|| panic!("{context}: no answer to {sent}"));
    match first[0].as_u64() {
        Some(3) => {
            assert!(is_abort(&first), "{context}: bad ABORT {first} for {sent}");
            "abort"
        }
        Some(2) => {
            // An acceptable HELLO: the session must be usable and end cleanly.
            send_json(
                &mut client,
                subprotocol,
                &json!([6, {}, "wamp.close.normal"]),
            )
            .await;
            let goodbye = answer(&mut client).await;
            assert_eq!(
                goodbye.map(|g| g[0].clone()),
                Some(json!(6)),
                "{context}: {sent}"
            );
            "welcome"
        }
        Some(4) => {
            let wrong = if rng.random_bool(0.8) {
                random_authenticate(rng)
            } else {
                random_hello(rng)
            };
            send_json(&mut client, subprotocol, &wrong).await;
            let last = answer(&mut client).await;
            let last =
                last.unwrap_or_else(|| panic!("{context}: no answer to {wrong} after {sent}"));
            assert!(
                is_abort(&last),
                "{context}: expected ABORT for {wrong} after {sent}, got {last}"
            );
            let reason = last[2].as_str().unwrap_or_default();
            assert!(
                [
                    "wamp.error.authentication_failed",
                    "wamp.error.protocol_violation"
                ]
                .contains(&reason),
                "{context}: {reason} for {wrong}"
            );
            "challenge"
        }
        _ => panic!("{context}: unexpected answer {first} to {sent}"),
    }
}

async fn send_json(client: &mut RawClient, subprotocol: &str, message: &Value) {
    if subprotocol == "wamp.2.json" {
        return client.send(message.clone()).await;
    }
    // Encode through the gateway's own codec; shapes it cannot represent go as JSON text instead.
    let serializer = switchboard_gateway::wamp::Serializer::Json;
    match serializer.decode(message.to_string().as_bytes()) {
        Ok(decoded) => match switchboard_gateway::wamp::Serializer::Msgpack.encode(&decoded) {
            switchboard_gateway::wamp::Frame::Binary(bytes) => {
                client.send_raw(WsMessage::Binary(bytes)).await
            }
            switchboard_gateway::wamp::Frame::Text(text) => {
                client.send_raw(WsMessage::text(text.as_str())).await
            }
        },
        Err(_) => client.send_raw(WsMessage::text(message.to_string())).await,
    }
}

#[tokio::test]
async fn random_handshakes_get_answers_and_the_gateway_stays_healthy() {
    let seed = std::env::var("SWITCHBOARD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0005_u64);
    let cases = std::env::var("SWITCHBOARD_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300usize);
    let mut gateway = Gateway::start("", REALMS);
    let url = gateway.url();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut outcomes = std::collections::BTreeMap::new();
    for case in 0..cases {
        *outcomes
            .entry(one_case(&url, &mut rng, case, seed).await)
            .or_insert(0) += 1;
        if case % 50 == 49 {
            assert_eq!(
                gateway.healthz(),
                Some(200),
                "seed {seed}: /healthz after case {case}"
            );
        }
    }
    assert_eq!(
        gateway.healthz(),
        Some(200),
        "seed {seed}: /healthz at the end"
    );
    if cases >= 100 {
        for outcome in ["abort", "welcome", "challenge"] {
            assert!(
                outcomes.contains_key(outcome),
                "seed {seed}: no {outcome} in {outcomes:?}"
            );
        }
    }
    eprintln!("seed {seed}: {outcomes:?}");
    assert!(
        gateway.child.try_wait().expect("status").is_none(),
        "the gateway exited"
    );
    assert!(
        !gateway.log_contains("panicked"),
        "the gateway logged a panic"
    );
    // And an ordinary session still joins and works.
    let (mut client, _) = RawClient::joined(&url).await;
    client.send(json!([32, 1, {}, "app.public.news"])).await;
    assert_eq!(client.recv().await.expect("SUBSCRIBED")[0], 33);
}
