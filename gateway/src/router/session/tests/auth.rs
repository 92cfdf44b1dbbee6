//! The authentication states of a session: HELLO -> CHALLENGE -> AUTHENTICATE -> WELCOME or ABORT.

use std::time::Duration;

use serde_json::json;
use switchboard_config::Config;
use switchboard_wire::TicketKey;

use super::{router_with, Client};
use crate::auth::wampcra;
use crate::wamp::{Message, Serializer};

const CONFIG: &str = r#"
[security]
secret = "ticket-secret"
[[realms]]
name = "realm1"
[[realms.roles]]
name = "member"
permissions = [{ uri = "app.public", match = "prefix", allow = { subscribe = true } }]
[[realms.users]]
authid = "backend"
secret = "s33kr1t"
role = "member"
salt = "salt123"
iterations = 100
keylen = 32
"#;

fn client() -> Client {
    let config = Config::from_toml_str(CONFIG, "test.toml").expect("config");
    Client::new(&router_with(config), Serializer::Json)
}

fn hello(client: &mut Client, details: serde_json::Value) -> Option<Message> {
    let mut details = details;
    details["roles"] = json!({"subscriber": {}});
    client.send(json!([1, "realm1", details]));
    client.next()
}

#[test]
fn ticket_join_announces_identity_in_welcome() {
    let ticket = TicketKey::new("ticket-secret")
        .mint("alice", ["member"], Duration::from_secs(60))
        .expect("ticket");
    let mut client = client();
    match hello(
        &mut client,
        json!({"authmethods": ["ticket"], "authid": "alice"}),
    ) {
        Some(Message::Challenge { authmethod, extra }) => {
            assert_eq!(authmethod, "ticket");
            assert!(extra.is_empty());
        }
        other => panic!("expected CHALLENGE, got {other:?}"),
    }
    assert!(!client.session.is_joined());
    client.send(json!([5, ticket, {}]));
    match client.next() {
        Some(Message::Welcome { details, session }) => {
            assert_eq!(details["authid"], "alice");
            assert_eq!(details["authrole"], "member");
            assert_eq!(details["authmethod"], "ticket");
            assert_eq!(client.session.id(), Some(session));
        }
        other => panic!("expected WELCOME, got {other:?}"),
    }
    client.send(json!([32, 1, {}, "app.private"]));
    assert_eq!(super::error_uri(client.next()), "wamp.error.not_authorized");
    client.send(json!([32, 2, {}, "app.public.news"]));
    assert!(matches!(client.next(), Some(Message::Subscribed { .. })));
}

#[test]
fn salted_wampcra_join_uses_the_announced_session_id() {
    let mut client = client();
    let Some(Message::Challenge { extra, .. }) = hello(
        &mut client,
        json!({"authmethods": ["wampcra"], "authid": "backend"}),
    ) else {
        panic!("expected CHALLENGE");
    };
    assert_eq!(extra["salt"], "salt123");
    let challenge = extra["challenge"].as_str().expect("challenge").to_string();
    let announced: serde_json::Value = serde_json::from_str(&challenge).expect("json");
    let key = wampcra::derive_key("s33kr1t", "salt123", 100, 32);
    client.send(json!([5, wampcra::sign(key.as_bytes(), &challenge), {}]));
    match client.next() {
        Some(Message::Welcome { session, details }) => {
            assert_eq!(json!(session), announced["session"]);
            assert_eq!(details["authmethod"], "wampcra");
        }
        other => panic!("expected WELCOME, got {other:?}"),
    }
}

#[test]
fn failures_and_out_of_sequence_messages_abort() {
    let mut c = client();
    assert_eq!(hello(&mut c, json!({})), None);
    c.expect_abort("wamp.error.not_authorized", "anonymous");

    let mut c = client();
    c.send(json!([5, "signature", {}]));
    c.expect_abort("wamp.error.protocol_violation", "AUTHENTICATE before HELLO");

    let mut c = client();
    hello(
        &mut c,
        json!({"authmethods": ["ticket"], "authid": "alice"}),
    );
    c.send(json!([1, "realm1", {"roles": {"subscriber": {}}}]));
    c.expect_abort("wamp.error.protocol_violation", "waiting for AUTHENTICATE");

    let mut c = client();
    hello(
        &mut c,
        json!({"authmethods": ["ticket"], "authid": "alice"}),
    );
    c.send(json!([5, "forged.00", {}]));
    c.expect_abort("wamp.error.authentication_failed", "ticket malformed");

    let mut c = client();
    hello(
        &mut c,
        json!({"authmethods": ["wampcra"], "authid": "backend"}),
    );
    c.send(json!([5, wampcra::sign(b"wrong", "x"), {}]));
    c.expect_abort("wamp.error.authentication_failed", "WAMP-CRA");
}
