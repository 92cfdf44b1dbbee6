//! Bad input from the network, against the real binary: every bad frame gets a precise WAMP answer, and
//! other sessions keep working meanwhile.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{assert_abort, Gateway, RawClient, OPEN_REALM};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A subscriber and a publisher that must keep working while other connections misbehave.
struct Bystanders {
    subscriber: RawClient,
    publisher: RawClient,
    topic: String,
    sent: u64,
}

impl Bystanders {
    async fn new(gateway: &Gateway, topic: &str) -> Bystanders {
        let (mut subscriber, _) = RawClient::joined(&gateway.url()).await;
        subscriber.send(json!([32, 1, {}, topic])).await;
        let subscribed = subscriber.recv().await.expect("SUBSCRIBED");
        assert_eq!(subscribed[0], 33);
        let (publisher, _) = RawClient::joined(&gateway.url()).await;
        Bystanders {
            subscriber,
            publisher,
            topic: topic.to_string(),
            sent: 0,
        }
    }

    /// Publishes one event and checks it arrives.
    async fn still_work(&mut self) {
        self.sent += 1;
        self.publisher
            .send(json!([16, self.sent, {"acknowledge": true}, self.topic, [self.sent]]))
            .await;
        let published = self.publisher.recv().await.expect("PUBLISHED");
        assert_eq!(published[0], 17, "publisher got {published}");
        let event = self.subscriber.recv().await.expect("EVENT");
        assert_eq!(event[0], 36, "subscriber got {event}");
        assert_eq!(event[4], json!([self.sent]));
    }
}

#[tokio::test]
async fn every_bad_frame_gets_a_protocol_answer_and_others_keep_working() {
    let gateway = Gateway::start("max_message_bytes = 4096", OPEN_REALM);
    let url = gateway.url();
    let mut others = Bystanders::new(&gateway, "com.bystander.news").await;
    others.still_work().await;

    // Unparseable JSON.
    let (mut client, _) = RawClient::joined(&url).await;
    client
        .send_raw(WsMessage::text("[16, 1, {}, \"a.b\""))
        .await;
    assert_abort(
        client.recv().await.as_ref(),
        "wamp.error.protocol_violation",
        "not valid JSON",
    );
    others.still_work().await;

    // Well-formed JSON, wrong WAMP shape.
    let (mut client, _) = RawClient::joined(&url).await;
    client.send(json!([32, 1, "options", "a.b"])).await;
    assert_abort(
        client.recv().await.as_ref(),
        "wamp.error.protocol_violation",
        "SUBSCRIBE.Options must be a dict",
    );
    others.still_work().await;

    // Invalid MessagePack.
    let mut client = RawClient::connect(&url, "wamp.2.msgpack").await;
    client
        .send_raw(WsMessage::binary(vec![0xc1, 0xff, 0x00]))
        .await;
    assert_abort(
        client.recv().await.as_ref(),
        "wamp.error.protocol_violation",
        "MessagePack",
    );
    others.still_work().await;

    // Anything before HELLO.
    let mut client = RawClient::connect(&url, "wamp.2.json").await;
    client.send(json!([48, 1, {}, "com.example.proc"])).await;
    assert_abort(
        client.recv().await.as_ref(),
        "wamp.error.protocol_violation",
        "CALL before HELLO",
    );

    // No such realm.
    let mut client = RawClient::connect(&url, "wamp.2.json").await;
    client
        .send(json!([1, "realm.elsewhere", {"roles": {"caller": {}}}]))
        .await;
    assert_abort(
        client.recv().await.as_ref(),
        "wamp.error.no_such_realm",
        "realm.elsewhere",
    );
    others.still_work().await;

    // Invalid URI: an ERROR, and the session stays usable.
    let (mut client, _) = RawClient::joined(&url).await;
    client.send(json!([32, 7, {}, "com.bad uri"])).await;
    let error = client.recv().await.expect("ERROR");
    assert_eq!(error[0], 8, "expected ERROR, got {error}");
    assert_eq!(error[4], "wamp.error.invalid_uri");
    client.send(json!([32, 8, {}, "com.good.uri"])).await;
    let subscribed = client.recv().await.expect("SUBSCRIBED");
    assert_eq!(subscribed[0], 33, "the session survives an invalid URI");

    // Oversized: above max_message_bytes, and far above the WebSocket frame limit.
    let (mut client, _) = RawClient::joined(&url).await;
    client
        .send(json!([16, 1, {}, "a.b", ["x".repeat(6000)]]))
        .await;
    assert_abort(
        client.recv().await.as_ref(),
        "wamp.error.payload_size_exceeded",
        "exceeds the limit of 4096 bytes",
    );
    let (mut client, _) = RawClient::joined(&url).await;
    client
        .send(json!([16, 1, {}, "a.b", ["x".repeat(1 << 20)]]))
        .await;
    let answer = client.recv_until_closed().await;
    if let Some(abort) = answer.last() {
        assert_abort(Some(abort), "wamp.error.payload_size_exceeded", "too large");
    }
    others.still_work().await;

    // Binary garbage on a JSON connection, text on a msgpack one.
    let (mut client, _) = RawClient::joined(&url).await;
    client.send_raw(WsMessage::binary(vec![0u8; 64])).await;
    assert_abort(
        client.recv().await.as_ref(),
        "wamp.error.protocol_violation",
        "JSON",
    );
    others.still_work().await;

    assert_eq!(gateway.healthz(), Some(200));
}

#[tokio::test]
async fn a_websocket_without_a_wamp_subprotocol_is_refused() {
    let gateway = Gateway::start("", OPEN_REALM);
    let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        gateway.url(),
    )
    .expect("request");
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(refused.is_err(), "a plain WebSocket must be refused");
    assert_eq!(gateway.healthz(), Some(200));
}

/// The promise of the outbound queue: the attentive subscriber gets every event of a burst larger than
/// the queue's frame bound, in order, and stays open; the stalled one is closed with
/// `switchboard.error.slow_consumer` and what it did get has no gap (sequence numbers in the payload,
/// read on the wire).
#[tokio::test]
async fn a_consumer_that_stops_reading_is_closed_as_slow_and_never_sees_a_gap() {
    let gateway = Gateway::start("outbound_queue = 8\nslow_consumer_ms = 100", OPEN_REALM);
    let url = gateway.url();
    let (mut stalled, _) = RawClient::joined(&url).await;
    stalled.send(json!([32, 1, {}, "com.flood"])).await;
    assert_eq!(stalled.recv().await.expect("SUBSCRIBED")[0], 33);
    let mut others = Bystanders::new(&gateway, "com.flood").await;

    // Flood with 16 KiB events, far more than socket buffers and the 8-frame queue hold, until the
    // gateway reports closing the stalled session; bounded.
    let chunk = "x".repeat(16 * 1024);
    let mut published = 0u64;
    while published < 4000 && !gateway.log_contains("closing slow consumer") {
        published += 1;
        others
            .publisher
            .send(json!([16, published, {}, "com.flood", [chunk, published]]))
            .await;
        // The attentive subscriber reads everything, in order, and stays connected.
        let event = others.subscriber.recv().await.expect("EVENT");
        assert_eq!(event[0], 36);
        assert_eq!(
            event[4][1], published,
            "the attentive subscriber missed an event"
        );
    }
    assert!(
        gateway.log_contains("closing slow consumer"),
        "no slow consumer closed after {published} events"
    );
    // Reading now shows what reached the socket before the close, then the ABORT.
    let seen = stalled.recv_until_closed().await;
    let sequence: Vec<u64> = seen
        .iter()
        .filter(|m| m[0] == 36)
        .filter_map(|m| m[4][1].as_u64())
        .collect();
    assert!(
        (sequence.len() as u64) < published,
        "the stalled consumer got all {published} events: nothing bounded"
    );
    let contiguous: Vec<u64> = (1..=sequence.len() as u64).collect();
    assert_eq!(sequence, contiguous, "the stalled consumer saw a gap");
    assert_abort(
        seen.last(),
        "switchboard.error.slow_consumer",
        "not reading fast enough",
    );
    others.still_work().await;
}

#[tokio::test]
async fn sigterm_says_goodbye_and_exits_quickly() {
    let mut gateway = Gateway::start("", OPEN_REALM);
    let (mut client, _) = RawClient::joined(&gateway.url()).await;
    let started = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &gateway.child.id().to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()));
    let goodbye = client.recv().await.expect("GOODBYE");
    assert_eq!(goodbye[0], 6, "expected GOODBYE, got {goodbye}");
    assert_eq!(goodbye[2], "wamp.close.system_shutdown");
    client
        .send(json!([6, {}, "wamp.close.goodbye_and_out"]))
        .await;
    loop {
        if let Ok(Some(status)) = gateway.child.try_wait() {
            assert!(status.success(), "clean exit, got {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "gateway still running 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
