//! Sessions driven in memory: frames in, decoded frames out, no sockets.

mod auth;
mod testament;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_config::Config;

use super::Session;
use crate::router::{Closing, Outbox, OutboxReceiver, Router};
use crate::wamp::{Frame, Message, Serializer};

struct Client {
    session: Session,
    receiver: OutboxReceiver,
    serializer: Serializer,
    max_message_bytes: usize,
}

fn router_with(config: Config) -> Arc<Router> {
    Arc::new(Router::new(&config))
}

fn router() -> Arc<Router> {
    router_with(Config::embedded_default())
}

impl Client {
    fn new(router: &Arc<Router>, serializer: Serializer) -> Self {
        let (outbox, receiver) = Outbox::new(serializer, router.limits.queue);
        let session = Session::new(Arc::clone(router), Arc::new(outbox));
        Client {
            session,
            receiver,
            serializer,
            max_message_bytes: router.limits.max_message_bytes,
        }
    }

    fn joined(router: &Arc<Router>) -> Self {
        let mut client = Client::new(router, Serializer::Json);
        client.send(
            json!([1, "realm1", {"roles": {"subscriber": {}, "publisher": {}, "caller": {},
            "callee": {"features": {"call_canceling": true, "progressive_call_results": true}}}}]),
        );
        match client.next() {
            Some(Message::Welcome { .. }) => client,
            other => panic!("expected WELCOME, got {other:?}"),
        }
    }

    /// A frame as the transport hands it on: size check and decoding, then the session.
    fn feed(&mut self, bytes: &[u8]) {
        match crate::transport::inbound::decode(self.serializer, bytes, self.max_message_bytes) {
            Ok(message) => self.session.on_message(message),
            Err(refusal) => self.session.abort(refusal.uri, refusal.message),
        }
    }

    fn send(&mut self, message: Value) {
        self.feed(message.to_string().as_bytes());
    }

    fn next(&mut self) -> Option<Message> {
        let frame = self.receiver.frames.try_recv()?;
        Some(
            self.serializer
                .decode(frame.as_bytes())
                .expect("router output decodes"),
        )
    }

    fn closing(&self) -> Option<Closing> {
        self.receiver.closing.get()
    }

    fn expect_abort(&self, reason: &str, fragment: &str) {
        match self.closing() {
            Some(Closing::Abort { reason: r, message }) => {
                assert_eq!(r, reason, "abort reason (message: {message})");
                assert!(
                    message.contains(fragment),
                    "{message:?} should mention {fragment:?}"
                );
            }
            other => panic!("expected ABORT {reason}, got {other:?}"),
        }
    }

    fn session_id(&self) -> u64 {
        self.session.id().expect("joined")
    }
}

fn error_uri(message: Option<Message>) -> String {
    match message {
        Some(Message::Error { error, .. }) => error,
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[test]
fn welcome_announces_roles_and_a_session_id_in_range() {
    let router = router();
    let mut client = Client::new(&router, Serializer::Msgpack);
    let hello = json!([1, "realm1", {"roles": {"subscriber": {}}}]);
    let bytes = match Serializer::Json.decode(hello.to_string().as_bytes()) {
        Ok(message) => match Serializer::Msgpack.encode(&message) {
            Frame::Binary(bytes) => bytes,
            Frame::Text(_) => unreachable!("msgpack encodes binary"),
        },
        Err(e) => panic!("{e}"),
    };
    client.feed(&bytes);
    match client.next() {
        Some(Message::Welcome { session, details }) => {
            assert!((1..=1u64 << 53).contains(&session));
            assert_eq!(details["authrole"], "anonymous");
            assert_eq!(
                details["roles"]["broker"]["features"]["pattern_based_subscription"],
                true
            );
            assert_eq!(
                details["roles"]["dealer"]["features"]["call_canceling"],
                true
            );
        }
        other => panic!("expected WELCOME, got {other:?}"),
    }
}

#[test]
fn anything_before_hello_is_a_protocol_violation() {
    let router = router();
    let mut client = Client::new(&router, Serializer::Json);
    client.send(json!([32, 1, {}, "com.example.topic"]));
    client.expect_abort("wamp.error.protocol_violation", "SUBSCRIBE before HELLO");
}

#[test]
fn unparseable_and_misshapen_frames_abort_with_the_reason() {
    let router = router();
    let mut client = Client::joined(&router);
    client.feed(b"{not json");
    client.expect_abort("wamp.error.protocol_violation", "not valid JSON");

    let mut client = Client::joined(&router);
    client.send(json!([32, "one", {}, "com.example.topic"]));
    client.expect_abort("wamp.error.protocol_violation", "SUBSCRIBE.Request");

    let mut client = Client::joined(&router);
    client.send(json!([999]));
    client.expect_abort("wamp.error.protocol_violation", "unknown message type 999");

    let mut client = Client::joined(&router);
    client.send(json!([36, 1, 2, {}]));
    client.expect_abort(
        "wamp.error.protocol_violation",
        "EVENT is not a message a client may send",
    );
}

#[test]
fn unknown_realm_and_bad_hello_are_refused() {
    let router = router();
    let mut client = Client::new(&router, Serializer::Json);
    client.send(json!([1, "nowhere", {"roles": {"caller": {}}}]));
    client.expect_abort("wamp.error.no_such_realm", "nowhere");

    let mut client = Client::new(&router, Serializer::Json);
    client.send(json!([1, "realm1", {"roles": {}}]));
    client.expect_abort("wamp.error.protocol_violation", "roles");

    let mut client = Client::new(&router, Serializer::Json);
    client.send(json!([1, "realm 1", {"roles": {"caller": {}}}]));
    client.expect_abort("wamp.error.invalid_uri", "realm");
}

#[test]
fn oversized_messages_abort_with_payload_size_exceeded() {
    let mut config = Config::embedded_default();
    config.gateway.max_message_bytes = 1024;
    let router = router_with(config);
    let mut client = Client::joined(&router);
    client.send(json!([16, 1, {}, "com.example.topic", ["x".repeat(2000)]]));
    client.expect_abort(
        "wamp.error.payload_size_exceeded",
        "exceeds the limit of 1024 bytes",
    );
}

#[test]
fn invalid_uris_get_an_error_and_the_session_stays() {
    let router = router();
    let mut client = Client::joined(&router);
    client.send(json!([32, 1, {}, "com.my topic"]));
    assert_eq!(error_uri(client.next()), "wamp.error.invalid_uri");
    client.send(json!([64, 2, {}, "com..proc"]));
    assert_eq!(error_uri(client.next()), "wamp.error.invalid_uri");
    client.send(json!([32, 3, {}, "com.example.topic"]));
    assert!(matches!(
        client.next(),
        Some(Message::Subscribed { request: 3, .. })
    ));
    assert!(client.closing().is_none());
}

#[test]
fn events_reach_subscribers_once_and_honour_exclusion() {
    let router = router();
    let mut publisher = Client::joined(&router);
    let mut exact = Client::joined(&router);
    let mut wildcard = Client::joined(&router);
    exact.send(json!([32, 1, {}, "com.shop.order"]));
    wildcard.send(json!([32, 1, {"match": "wildcard"}, "com..order"]));
    publisher.send(json!([32, 1, {"match": "prefix"}, "com.shop"]));
    for client in [&mut exact, &mut wildcard, &mut publisher] {
        assert!(matches!(client.next(), Some(Message::Subscribed { .. })));
    }
    publisher.send(json!([16, 7, {"acknowledge": true, "disclose_me": true}, "com.shop.order", [1], {"k": "v"}]));
    assert!(matches!(
        publisher.next(),
        Some(Message::Published { request: 7, .. })
    ));
    assert_eq!(publisher.next(), None, "exclude_me defaults to true");
    match exact.next() {
        Some(Message::Event {
            details, payload, ..
        }) => {
            assert_eq!(
                details.get("topic"),
                None,
                "exact subscriptions get no topic detail"
            );
            assert_eq!(details["publisher"], json!(publisher.session_id()));
            assert_eq!(
                payload,
                crate::wamp::Payload::ArgsKwargs(
                    vec![json!(1)],
                    json!({"k": "v"}).as_object().cloned().unwrap_or_default()
                )
            );
        }
        other => panic!("expected EVENT, got {other:?}"),
    }
    match wildcard.next() {
        Some(Message::Event { details, .. }) => assert_eq!(details["topic"], "com.shop.order"),
        other => panic!("expected EVENT, got {other:?}"),
    }
    publisher.send(
        json!([16, 8, {"exclude_me": false, "exclude": [exact.session_id()]}, "com.shop.order"]),
    );
    assert!(matches!(publisher.next(), Some(Message::Event { .. })));
    assert_eq!(exact.next(), None, "excluded by session id");
    assert!(matches!(wildcard.next(), Some(Message::Event { .. })));
}

#[test]
fn eligible_authid_limits_delivery() {
    let router = router();
    let mut publisher = Client::joined(&router);
    let mut a = Client::joined(&router);
    let mut b = Client::joined(&router);
    a.send(json!([32, 1, {}, "t.x"]));
    b.send(json!([32, 1, {}, "t.x"]));
    a.next();
    b.next();
    let a_authid = match router.realm("realm1").map(|r| r.peers()) {
        Some(peers) => peers
            .iter()
            .find(|p| p.id == a.session_id())
            .map(|p| p.authid.clone())
            .unwrap_or_default(),
        None => String::new(),
    };
    publisher.send(json!([16, 1, {"eligible_authid": [a_authid]}, "t.x"]));
    assert!(matches!(a.next(), Some(Message::Event { .. })));
    assert_eq!(b.next(), None);
}

#[test]
fn unsubscribe_and_leaving_stop_delivery() {
    let router = router();
    let mut publisher = Client::joined(&router);
    let mut subscriber = Client::joined(&router);
    subscriber.send(json!([32, 1, {}, "t.y"]));
    let Some(Message::Subscribed { subscription, .. }) = subscriber.next() else {
        panic!("not subscribed")
    };
    subscriber.send(json!([34, 2, subscription]));
    assert!(matches!(
        subscriber.next(),
        Some(Message::Unsubscribed { request: 2, .. })
    ));
    subscriber.send(json!([34, 3, subscription]));
    assert_eq!(
        error_uri(subscriber.next()),
        "wamp.error.no_such_subscription"
    );
    publisher.send(json!([16, 1, {}, "t.y"]));
    assert_eq!(subscriber.next(), None);

    subscriber.send(json!([32, 4, {}, "t.y"]));
    subscriber.next();
    subscriber.send(json!([6, {}, "wamp.close.normal"]));
    assert!(
        matches!(subscriber.next(), Some(Message::Goodbye { reason, .. }) if reason == "wamp.close.goodbye_and_out")
    );
    publisher.send(json!([16, 2, {}, "t.y"]));
    assert_eq!(subscriber.next(), None);
    assert_eq!(router.count_sessions(None), Ok(1));
}

#[test]
fn calls_are_routed_with_progress_errors_and_cleanup() {
    let router = router();
    let mut callee = Client::joined(&router);
    let mut caller = Client::joined(&router);
    callee.send(json!([64, 1, {}, "com.calc.add"]));
    let Some(Message::Registered { registration, .. }) = callee.next() else {
        panic!("not registered")
    };
    callee.send(json!([64, 2, {}, "com.calc.add"]));
    assert_eq!(
        error_uri(callee.next()),
        "wamp.error.procedure_already_exists"
    );

    caller.send(json!([48, 10, {"receive_progress": true}, "com.calc.add", [1, 2]]));
    let Some(Message::Invocation {
        request,
        registration: r,
        details,
        ..
    }) = callee.next()
    else {
        panic!("no invocation")
    };
    assert_eq!(r, registration);
    assert_eq!(details["receive_progress"], true);
    callee.send(json!([70, request, {"progress": true}, ["half"]]));
    callee.send(json!([70, request, {}, [3]]));
    assert!(
        matches!(caller.next(), Some(Message::Result { request: 10, details, .. }) if details["progress"] == true)
    );
    assert!(
        matches!(caller.next(), Some(Message::Result { request: 10, details, .. }) if details.is_empty())
    );

    caller.send(json!([48, 11, {}, "com.calc.add"]));
    let Some(Message::Invocation { request, .. }) = callee.next() else {
        panic!("no invocation")
    };
    callee.send(json!([8, 68, request, {}, "com.calc.error.bad", ["no"], {"why": "test"}]));
    match caller.next() {
        Some(Message::Error {
            request_type: 48,
            request: 11,
            error,
            payload,
            ..
        }) => {
            assert_eq!(error, "com.calc.error.bad");
            assert!(
                matches!(payload, crate::wamp::Payload::ArgsKwargs(_, kw) if kw["why"] == "test")
            );
        }
        other => panic!("expected the callee's ERROR, got {other:?}"),
    }

    caller.send(json!([48, 12, {}, "com.calc.missing"]));
    assert_eq!(error_uri(caller.next()), "wamp.error.no_such_procedure");

    caller.send(json!([48, 13, {}, "com.calc.add"]));
    assert!(matches!(callee.next(), Some(Message::Invocation { .. })));
    callee.session.leave();
    assert_eq!(
        error_uri(caller.next()),
        "wamp.error.canceled",
        "the callee left mid-call"
    );
    caller.send(json!([48, 14, {}, "com.calc.add"]));
    assert_eq!(
        error_uri(caller.next()),
        "wamp.error.no_such_procedure",
        "registration vanished"
    );
}

#[test]
fn cancel_modes_interrupt_the_callee() {
    let router = router();
    let mut callee = Client::joined(&router);
    let mut caller = Client::joined(&router);
    callee.send(json!([64, 1, {}, "com.slow"]));
    callee.next();

    caller.send(json!([48, 1, {}, "com.slow"]));
    let Some(Message::Invocation { request, .. }) = callee.next() else {
        panic!("no invocation")
    };
    caller.send(json!([49, 1, {"mode": "kill"}]));
    assert!(matches!(callee.next(), Some(Message::Interrupt { request: r, .. }) if r == request));
    assert_eq!(caller.next(), None, "kill waits for the callee");
    // The callee reports the interruption its own way (Autobahn|Python: runtime_error); the caller
    // still learns its call was canceled.
    callee.send(json!([8, 68, request, {}, "wamp.error.runtime_error"]));
    assert_eq!(error_uri(caller.next()), "wamp.error.canceled");

    caller.send(json!([48, 2, {}, "com.slow"]));
    let Some(Message::Invocation { request, .. }) = callee.next() else {
        panic!("no invocation")
    };
    caller.send(json!([49, 2, {"mode": "skip"}]));
    assert_eq!(error_uri(caller.next()), "wamp.error.canceled");
    assert_eq!(callee.next(), None, "skip does not interrupt");
    callee.send(json!([70, request, {}, ["late"]]));
    assert_eq!(caller.next(), None, "a late YIELD is dropped");
}

#[test]
fn shared_registrations_take_turns() {
    let router = router();
    let mut first = Client::joined(&router);
    let mut second = Client::joined(&router);
    let mut caller = Client::joined(&router);
    first.send(json!([64, 1, {"invoke": "roundrobin"}, "com.rr"]));
    second.send(json!([64, 1, {"invoke": "roundrobin"}, "com.rr"]));
    assert!(matches!(first.next(), Some(Message::Registered { .. })));
    assert!(matches!(second.next(), Some(Message::Registered { .. })));
    second.send(json!([64, 2, {"invoke": "single"}, "com.rr"]));
    assert_eq!(
        error_uri(second.next()),
        "wamp.error.procedure_already_exists"
    );
    let mut hits = [0, 0];
    for request in 1..=4 {
        caller.send(json!([48, request, {}, "com.rr"]));
        if first.next().is_some() {
            hits[0] += 1;
        }
        if second.next().is_some() {
            hits[1] += 1;
        }
    }
    assert_eq!(hits, [2, 2]);
}

#[tokio::test(start_paused = true)]
async fn call_timeout_cancels_the_call() {
    let router = router();
    let mut callee = Client::joined(&router);
    let mut caller = Client::joined(&router);
    callee.send(json!([64, 1, {}, "com.never"]));
    callee.next();
    caller.send(json!([48, 5, {"timeout": 50}, "com.never"]));
    assert!(matches!(callee.next(), Some(Message::Invocation { .. })));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(error_uri(caller.next()), "wamp.error.canceled");
    assert!(matches!(callee.next(), Some(Message::Interrupt { .. })));
}

#[test]
fn permissions_deny_by_default() {
    let text = r#"
[[realms]]
name = "realm1"
anonymous_role = "member"
[[realms.roles]]
name = "member"
permissions = [
  { uri = "app.public", match = "prefix", allow = { subscribe = true } },
  { uri = "app.rpc.", match = "prefix", allow = { call = true } },
]
"#;
    let config = Config::from_toml_str(text, "test.toml").expect("valid config");
    let router = router_with(config);
    let mut client = Client::joined(&router);
    client.send(json!([32, 1, {}, "app.public.news"]));
    assert!(matches!(client.next(), Some(Message::Subscribed { .. })));
    client.send(json!([32, 2, {}, "app.private"]));
    assert_eq!(error_uri(client.next()), "wamp.error.not_authorized");
    client.send(json!([16, 3, {"acknowledge": true}, "app.public.news"]));
    assert_eq!(error_uri(client.next()), "wamp.error.not_authorized");
    client.send(json!([64, 4, {}, "app.rpc.add"]));
    assert_eq!(error_uri(client.next()), "wamp.error.not_authorized");
    client.send(json!([48, 5, {}, "app.rpc.add"]));
    assert_eq!(
        error_uri(client.next()),
        "wamp.error.no_such_procedure",
        "allowed, but nobody registered"
    );
    assert!(client.closing().is_none(), "denials keep the session");
}
