//! Testaments: stored by `wamp.session.add_testament`, published when the session leaves, dropped by
//! `wamp.session.flush_testaments`.

use serde_json::json;

use super::{error_uri, router, Client};
use crate::wamp::{Message, Payload};

#[test]
fn testaments_are_published_in_order_when_the_session_goes() {
    let router = router();
    let mut subscriber = Client::joined(&router);
    subscriber.send(json!([32, 1, {}, "com.t.gone"]));
    assert!(matches!(
        subscriber.next(),
        Some(Message::Subscribed { .. })
    ));
    let mut dying = Client::joined(&router);
    let add = "wamp.session.add_testament";
    dying.send(json!([48, 1, {}, add, ["com.t.gone", [1], {"k": "v"}]]));
    assert!(matches!(
        dying.next(),
        Some(Message::Result { request: 1, .. })
    ));
    dying.send(json!([48, 2, {}, add, ["com.t.gone", ["two"]], {"scope": "detached"}]));
    assert!(matches!(
        dying.next(),
        Some(Message::Result { request: 2, .. })
    ));
    dying.send(json!([48, 3, {}, add, ["wamp.x", [], {}]]));
    assert_eq!(error_uri(dying.next()), "wamp.error.not_authorized");
    dying.send(json!([48, 4, {}, add, ["com.t.gone", [], {}], {"scope": "later"}]));
    assert_eq!(error_uri(dying.next()), "wamp.error.invalid_argument");
    assert_eq!(
        subscriber.next(),
        None,
        "nothing is published while the session lives"
    );
    drop(dying);
    let payloads: Vec<Payload> = std::iter::from_fn(|| subscriber.next())
        .map(|message| match message {
            Message::Event {
                payload, details, ..
            } => {
                assert_eq!(details.get("publisher"), None);
                payload
            }
            other => panic!("expected EVENT, got {other:?}"),
        })
        .collect();
    assert_eq!(
        payloads,
        vec![
            Payload::ArgsKwargs(
                vec![json!(1)],
                json!({"k": "v"}).as_object().cloned().unwrap_or_default()
            ),
            Payload::Args(vec![json!("two")]),
        ]
    );
}

#[test]
fn flushed_testaments_are_counted_and_not_published() {
    let router = router();
    let mut subscriber = Client::joined(&router);
    subscriber.send(json!([32, 1, {}, "com.t.flushed"]));
    assert!(matches!(
        subscriber.next(),
        Some(Message::Subscribed { .. })
    ));
    let mut client = Client::joined(&router);
    for request in 1..=16 {
        client.send(json!([
            48,
            request,
            {},
            "wamp.session.add_testament",
            ["com.t.flushed", [request], {}]
        ]));
        assert!(matches!(client.next(), Some(Message::Result { .. })));
    }
    client.send(json!([
        48,
        17,
        {},
        "wamp.session.add_testament",
        ["com.t.flushed", [], {}]
    ]));
    assert_eq!(error_uri(client.next()), "switchboard.error.limit_exceeded");
    client.send(json!([48, 18, {}, "wamp.session.flush_testaments", [], {"scope": "destroyed"}]));
    match client.next() {
        Some(Message::Result { payload, .. }) => {
            assert_eq!(payload, Payload::Args(vec![json!(16)]))
        }
        other => panic!("expected RESULT, got {other:?}"),
    }
    client.send(json!([6, {}, "wamp.close.normal"]));
    assert!(matches!(client.next(), Some(Message::Goodbye { .. })));
    assert_eq!(subscriber.next(), None);
}
