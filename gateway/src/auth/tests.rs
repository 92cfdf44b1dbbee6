//! HELLO decisions and the ticket flow, without sessions or sockets.

use std::time::Duration;

use serde_json::json;
use switchboard_config::{RealmConfig, RoleConfig, UserConfig};

use super::*;

fn realm(anonymous: bool) -> RealmAuth {
    let role = |name: &str| RoleConfig {
        name: name.into(),
        permissions: vec![],
    };
    RealmAuth::from_config(&RealmConfig {
        name: "realm1".into(),
        anonymous_role: anonymous.then(|| "anonymous".to_string()),
        roles: vec![role("anonymous"), role("member"), role("backend")],
        users: vec![UserConfig {
            authid: "backend".into(),
            secret: "s33kr1t".into(),
            role: "backend".into(),
            salt: None,
            iterations: None,
            keylen: None,
        }],
        history: vec![],
        models: vec![],
    })
}

fn details(value: serde_json::Value) -> Dict {
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn abort_uri(outcome: HelloOutcome) -> &'static str {
    match outcome {
        HelloOutcome::Abort(refusal) => refusal.uri,
        other => panic!("expected ABORT, got {other:?}"),
    }
}

#[test]
fn anonymous_only_where_the_realm_names_a_role() {
    let key = TicketKey::new("k");
    let hello_anon = details(json!({}));
    match hello(&realm(true), Some(&key), &hello_anon, 1) {
        HelloOutcome::Welcome(identity) => {
            assert_eq!(identity.authrole(), "anonymous");
            assert!(identity.authid.starts_with("anonymous-"));
        }
        other => panic!("expected WELCOME, got {other:?}"),
    }
    assert_eq!(
        abort_uri(hello(&realm(false), Some(&key), &hello_anon, 1)),
        NOT_AUTHORIZED
    );
    let explicit = details(json!({"authmethods": ["anonymous"]}));
    assert_eq!(
        abort_uri(hello(&realm(false), Some(&key), &explicit, 1)),
        NOT_AUTHORIZED
    );
}

#[test]
fn unusable_authmethods_and_bad_details_are_refused() {
    let key = TicketKey::new("k");
    let check = |value, tickets: Option<&TicketKey>| {
        abort_uri(hello(&realm(false), tickets, &details(value), 1))
    };
    assert_eq!(
        check(json!({"authmethods": ["cryptosign"]}), Some(&key)),
        NO_AUTH_METHOD
    );
    assert_eq!(
        check(json!({"authmethods": ["ticket"]}), None),
        NO_AUTH_METHOD
    );
    assert_eq!(
        check(json!({"authmethods": ["wampcra"]}), Some(&key)),
        NO_AUTH_METHOD
    );
    assert_eq!(
        check(json!({"authmethods": "ticket"}), Some(&key)),
        PROTOCOL_VIOLATION
    );
    assert_eq!(
        check(json!({"authmethods": ["ticket"], "authid": 5}), Some(&key)),
        PROTOCOL_VIOLATION
    );
}

fn ticket_pending(authid: Option<&str>) -> Pending {
    let hello_details = details(json!({"authmethods": ["ticket"], "authid": authid}));
    match hello(&realm(false), Some(&TicketKey::new("k")), &hello_details, 1) {
        HelloOutcome::Challenge {
            authmethod,
            extra,
            pending,
        } => {
            assert_eq!(authmethod, "ticket");
            assert!(extra.is_empty());
            pending
        }
        other => panic!("expected CHALLENGE, got {other:?}"),
    }
}

#[test]
fn tickets_grant_their_roles_defined_in_the_realm() {
    let key = TicketKey::new("k");
    let realm = realm(false);
    let minute = Duration::from_secs(60);
    let ticket = key
        .mint("alice", ["ghost", "member"], minute)
        .expect("ticket");
    for authid in [Some("alice"), None] {
        let identity = ticket_pending(authid)
            .authenticate(&realm, Some(&key), &ticket)
            .expect("authenticated");
        assert_eq!(identity.authid, "alice");
        assert_eq!(identity.roles, vec!["member".to_string()]);
        assert_eq!(identity.authmethod, "ticket");
    }
    let refused = |pending: Pending, ticket: &str| {
        pending
            .authenticate(&realm, Some(&key), ticket)
            .unwrap_err()
    };
    let wrong = refused(ticket_pending(Some("bob")), &ticket);
    assert_eq!(wrong.uri, AUTHENTICATION_FAILED);
    assert!(
        wrong.message.contains("another authid"),
        "{}",
        wrong.message
    );
    let forged = TicketKey::new("guess")
        .mint("alice", ["member"], minute)
        .expect("ticket");
    let refusal = refused(ticket_pending(Some("alice")), &forged);
    assert_eq!(refusal.uri, AUTHENTICATION_FAILED);
    assert!(
        !refusal.message.contains(&forged),
        "the refusal must not echo the ticket"
    );
    assert_eq!(
        refused(ticket_pending(Some("alice")), "garbage").uri,
        AUTHENTICATION_FAILED
    );
    let ghost = key.mint("alice", ["ghost"], minute).expect("ticket");
    assert_eq!(refused(ticket_pending(None), &ghost).uri, NOT_AUTHORIZED);
}
