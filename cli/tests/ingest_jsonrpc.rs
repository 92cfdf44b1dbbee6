//! JSON-RPC ingestion against the real binary: signed events reach WAMP subscribers with exactly the
//! kwargs sent, every kind of bad request gets its precise error and is not delivered, and the
//! management calls see and kick sessions.

mod ingest_support;
mod support;

use std::time::{Duration, Instant};

use ingest_support::{jsonrpc_config, post, unix_now, Rpc, Subscriber, SECRET};
use serde_json::{json, Value};
use support::Gateway;
use switchboard_emitter::{ModelChange, Signer, DEFAULT_MODEL_PREFIX};

fn start() -> (Gateway, Rpc) {
    let gateway = Gateway::start("", &jsonrpc_config(0));
    let rpc = Rpc::new(gateway.jsonrpc_port());
    (gateway, rpc)
}

#[tokio::test]
async fn a_signed_model_change_reaches_the_subscriber_with_exact_kwargs() {
    let (gateway, mut rpc) = start();
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    let subscription = subscriber.subscribe("models.shop.order").await;

    let change = ModelChange::updated(
        "shop.order",
        42,
        &json!({"status": "paid", "total": 30.5, "note": "Grüße"}),
        &["status"],
    )
    .expect("valid change");
    let event = change.to_event(DEFAULT_MODEL_PREFIX);
    let result = rpc
        .result("publish", serde_json::to_value(&event).expect("json"))
        .await;
    let publication = result["publication"].as_u64().expect("publication id");

    let delivered = subscriber.event().await;
    assert_eq!(delivered[1], subscription);
    assert_eq!(delivered[2], publication, "EVENT carries the returned id");
    assert_eq!(delivered[4], json!([]));
    assert_eq!(
        delivered[5],
        json!({"action": "updated", "model": "shop.order", "pk": 42,
               "data": {"status": "paid", "total": 30.5, "note": "Grüße"}, "changed": ["status"]})
    );
}

#[tokio::test]
async fn publish_batch_answers_per_event_and_delivers_the_good_ones_in_order() {
    let (gateway, mut rpc) = start();
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe("com.example.batch").await;

    let results = rpc
        .result(
            "publish_batch",
            json!({"events": [
                {"topic": "com.example.batch", "args": [1]},
                {"topic": "com.example..batch", "args": [2]},
                {"topic": "com.example.batch", "args": [3], "kwargs": {"k": "v"}},
                {"topic": "com.example.batch", "realm": "nowhere"},
            ]}),
        )
        .await;
    let results = results.as_array().expect("one result per event");
    assert_eq!(results.len(), 4);
    assert!(results[0]["publication"].is_u64(), "{results:?}");
    assert_eq!(results[1]["error"]["code"], -32602);
    assert_eq!(results[1]["error"]["data"]["field"], "events[1].topic");
    assert!(results[2]["publication"].is_u64(), "{results:?}");
    assert_eq!(results[3]["error"]["code"], -32602);
    assert_eq!(results[3]["error"]["data"]["field"], "events[3].realm");

    let first = subscriber.event().await;
    assert_eq!(first[4], json!([1]));
    let second = subscriber.event().await;
    assert_eq!(second[4], json!([3]));
    assert_eq!(second[5], json!({"k": "v"}));
}

/// Sends a marker event after the refused ones: if any refused event had been delivered, the subscriber
/// would see it before the marker (one session's events arrive in order).
async fn assert_nothing_delivered_before_marker(
    rpc: &mut Rpc,
    subscriber: &mut Subscriber,
    topic: &str,
) {
    rpc.result("publish", json!({"topic": topic, "args": ["marker"]}))
        .await;
    let event = subscriber.event().await;
    assert_eq!(
        event[4],
        json!(["marker"]),
        "a refused event was delivered: {event}"
    );
}

#[tokio::test]
async fn every_signature_failure_is_refused_with_32001_and_not_delivered() {
    let (gateway, mut rpc) = start();
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    let topic = "com.example.signed";
    subscriber.subscribe(topic).await;
    let body = rpc
        .request("publish", json!({"topic": topic, "args": ["forged"]}))
        .to_string();
    let body = body.as_bytes();
    let signer = Signer::new(SECRET);
    let stale = signer.sign_with(body, unix_now() - 301, "stale-nonce-1");
    let future = signer.sign_with(body, unix_now() + 301, "future-nonce-1");
    let wrong_key = Signer::new("not-the-secret").sign(body);
    let tampered = signer.sign(b"{\"other\": \"body\"}");
    let replayed = signer.sign(body);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("malformed", Some("t=1,s=abc".to_string())),
        ("expired", Some(stale)),
        ("expired", Some(future)),
        ("invalid", Some(wrong_key)),
        ("invalid", Some(tampered)),
    ];
    for (which, header) in cases {
        let headers: Vec<(&str, String)> = header
            .into_iter()
            .map(|h| ("X-Switchboard-Signature", h))
            .collect();
        let answer = post(rpc.port, body, &headers).await;
        assert_eq!(answer.body["error"]["code"], -32001, "{which}: {answer:?}");
        assert_eq!(answer.body["error"]["data"]["reason"], which, "{answer:?}");
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(which)),
            "message names the check: {answer:?}"
        );
    }
    // The same signed request twice: the first is delivered, the replay is not.
    let header = vec![("X-Switchboard-Signature", replayed)];
    let first = post(rpc.port, body, &header).await;
    assert!(first.body["result"]["publication"].is_u64(), "{first:?}");
    assert_eq!(subscriber.event().await[4], json!(["forged"]));
    let again = post(rpc.port, body, &header).await;
    assert_eq!(again.body["error"]["code"], -32001, "{again:?}");
    assert_eq!(again.body["error"]["data"]["reason"], "replayed");

    assert_nothing_delivered_before_marker(&mut rpc, &mut subscriber, topic).await;
    assert!(gateway.log_contains("bad signature"));
}

#[tokio::test]
async fn bad_requests_get_precise_standard_errors_and_are_not_delivered() {
    let (gateway, mut rpc) = start();
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    let topic = "com.example.bad";
    subscriber.subscribe(topic).await;

    let parse = rpc
        .send_signed(b"{\"jsonrpc\": \"2.0\", \"method\": ")
        .await;
    assert_eq!(parse.body["error"]["code"], -32700, "{parse:?}");
    let invalid = rpc
        .send_signed(br#"{"jsonrpc": "1.0", "id": 1, "method": "publish"}"#)
        .await;
    assert_eq!(invalid.body["error"]["code"], -32600, "{invalid:?}");
    let unknown = rpc.call("publish_everything", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    let calls: Vec<Value> = (0..101)
        .map(|_| rpc.request("session_count", json!({})))
        .collect();
    let too_many_calls = rpc
        .send_signed(Value::Array(calls).to_string().as_bytes())
        .await;
    assert_eq!(
        too_many_calls.body["error"]["code"], -32010,
        "{too_many_calls:?}"
    );
    assert_eq!(
        too_many_calls.body["error"]["data"], "Exceeded max limit of 100",
        "a JSON-RPC batch is limited to 100 calls"
    );

    let cases = [
        (json!({"args": [1]}), "topic"),
        (json!({"topic": "com.example. bad", "args": [1]}), "topic"),
        (json!({"topic": 7}), "topic"),
        (json!({"topic": topic, "args": {"a": 1}}), "args"),
        (json!({"topic": topic, "kwargs": [1]}), "kwargs"),
        (
            json!({"topic": topic, "options": {"eligible_authid": "alice"}}),
            "options.eligible_authid",
        ),
        (
            json!({"topic": topic, "options": {"eligible_authids": ["alice"]}}),
            "options.eligible_authids",
        ),
        (
            json!({"topic": topic, "options": {"retain": 1}}),
            "options.retain",
        ),
        (json!({"topic": topic, "realm": "realm9"}), "realm"),
        (json!([{"topic": topic}, {"topic": topic}]), "params"),
        (json!("models.shop.order"), "event"),
    ];
    for (params, field) in cases {
        let response = rpc.call("publish", params.clone()).await;
        assert_eq!(response["error"]["code"], -32602, "{params}: {response}");
        assert_eq!(
            response["error"]["data"]["field"], field,
            "{params}: {response}"
        );
        let message = response["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "message {message:?} names {field}");
    }
    let batch = rpc.call("publish_batch", json!({"events": {}})).await;
    assert_eq!(batch["error"]["data"]["field"], "events", "{batch}");
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"topic": topic})).collect();
    let batch = rpc.call("publish_batch", json!({"events": too_many})).await;
    assert_eq!(batch["error"]["data"]["field"], "events", "{batch}");

    assert_nothing_delivered_before_marker(&mut rpc, &mut subscriber, topic).await;
    assert!(gateway.log_contains("-32700"));
    assert!(gateway.log_contains("JSON-RPC call refused"));
}

#[tokio::test]
async fn eligible_and_excluded_authids_make_events_private() {
    let (gateway, mut rpc) = start();
    let topic = "com.example.private";
    let mut alice = Subscriber::join(&gateway.url()).await;
    let mut bob = Subscriber::join(&gateway.url()).await;
    alice.subscribe(topic).await;
    bob.subscribe(topic).await;

    let only_alice = json!({"topic": topic, "args": ["for alice"],
                            "options": {"eligible_authid": [alice.authid]}});
    rpc.result("publish", only_alice).await;
    let not_alice = json!({"topic": topic, "args": ["not for alice"],
                           "options": {"exclude_authid": [alice.authid]}});
    rpc.result("publish", not_alice).await;
    let nobody =
        json!({"topic": topic, "args": ["for nobody"], "options": {"eligible_authid": []}});
    rpc.result("publish", nobody).await;
    rpc.result("publish", json!({"topic": topic, "args": ["everyone"]}))
        .await;

    assert_eq!(alice.event().await[4], json!(["for alice"]));
    assert_eq!(alice.event().await[4], json!(["everyone"]));
    assert_eq!(bob.event().await[4], json!(["not for alice"]));
    assert_eq!(bob.event().await[4], json!(["everyone"]));
}

#[tokio::test]
async fn management_calls_count_list_find_and_kick_sessions() {
    let (gateway, mut rpc) = start();
    let topic = "com.example.watched";
    let mut watcher = Subscriber::join(&gateway.url()).await;
    watcher.subscribe(topic).await;
    let other = Subscriber::join(&gateway.url()).await;

    assert_eq!(rpc.result("session_count", json!({})).await, 2);
    assert_eq!(
        rpc.result("session_count", json!({"realm": "realm1"}))
            .await,
        2
    );
    let sessions = rpc
        .result("sessions", json!({"authid": watcher.authid}))
        .await;
    assert_eq!(
        sessions,
        json!([{"session": watcher.session, "authid": watcher.authid,
                "authrole": "anonymous", "realm": "realm1"}])
    );
    assert_eq!(
        rpc.result("sessions", json!({"authid": "nobody"})).await,
        json!([])
    );
    let subscribers = rpc.result("subscribers", json!({"topic": topic})).await;
    assert_eq!(
        subscribers,
        json!({"count": 1, "sessions": [watcher.session]})
    );
    let missing = rpc.call("sessions", json!({})).await;
    assert_eq!(missing["error"]["data"]["field"], "authid", "{missing}");
    let typo = rpc
        .call("kick", json!({"authid": watcher.authid, "reasn": "x"}))
        .await;
    assert_eq!(typo["error"]["data"]["field"], "reasn", "{typo}");

    let kicked = rpc
        .result(
            "kick",
            json!({"authid": watcher.authid, "reason": "com.example.banned", "message": "bye"}),
        )
        .await;
    assert_eq!(kicked, json!({"kicked": 1}));
    let goodbye = watcher.client.recv().await.expect("GOODBYE");
    assert_eq!(goodbye[0], 6, "expected GOODBYE, got {goodbye}");
    assert_eq!(goodbye[2], "com.example.banned");
    assert_eq!(goodbye[1]["message"], "bye");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = rpc.result("session_count", json!({})).await;
        if count == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kicked session still counted: {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let subscribers = rpc.result("subscribers", json!({"topic": topic})).await;
    assert_eq!(subscribers, json!({"count": 0, "sessions": []}));
    drop(other);
}

#[tokio::test]
async fn sigterm_stops_the_json_rpc_listener_too() {
    let (mut gateway, mut rpc) = start();
    assert_eq!(rpc.result("session_count", json!({})).await, 0);
    let pid = gateway.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = gateway.child.try_wait().expect("wait") {
            assert!(status.success(), "gateway exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gateway still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", rpc.port))
            .await
            .is_err(),
        "JSON-RPC port still open"
    );
}

#[tokio::test]
async fn an_idempotency_key_publishes_once_and_answers_the_same_id() {
    let (gateway, mut rpc) = start();
    let topic = "com.example.once";
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe(topic).await;
    let event = json!({"topic": topic, "args": ["once"], "id": "order-42-paid"});
    let first = rpc.result("publish", event.clone()).await;
    let again = rpc.result("publish", event).await;
    assert_eq!(first, again, "the retry gets the first publication id");
    let batch = rpc
        .result(
            "publish_batch",
            json!({"events": [{"topic": topic, "args": ["once"], "id": "order-42-paid"}]}),
        )
        .await;
    assert_eq!(batch[0], first);
    assert_eq!(subscriber.event().await[4], json!(["once"]));
    assert_nothing_delivered_before_marker(&mut rpc, &mut subscriber, topic).await;
}

#[tokio::test]
async fn an_event_larger_than_a_wamp_message_may_be_is_refused() {
    let gateway = Gateway::start("max_message_bytes = 4096", &jsonrpc_config(0));
    let mut rpc = Rpc::new(gateway.jsonrpc_port());
    let topic = "com.example.big";
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe(topic).await;
    let big = json!({"topic": topic, "kwargs": {"blob": "x".repeat(5000)}});
    let response = rpc.call("publish", big).await;
    assert_eq!(response["error"]["code"], -32602, "{response}");
    assert_eq!(response["error"]["data"]["field"], "event", "{response}");
    let message = response["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("max_message_bytes of 4096"), "{message}");
    assert_nothing_delivered_before_marker(&mut rpc, &mut subscriber, topic).await;
}
