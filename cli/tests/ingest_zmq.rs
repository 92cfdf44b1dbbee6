//! ZeroMQ ingestion against the real binary: the Rust emitter's PUSH and a raw zmq.rs PUSH reach WAMP
//! subscribers, every refused message is logged and not delivered, and the emitter reconnects after the
//! gateway restarts.

mod ingest_support;
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use ingest_support::{unix_now, zmq_config, Subscriber, SECRET};
use serde_json::json;
use support::Gateway;
use switchboard_emitter::{Emitter, Event, Signer};
use zeromq::{Socket, SocketSend, ZmqMessage};

fn start() -> (Gateway, u16, u16) {
    let gateway = Gateway::start("", &zmq_config(0, 0));
    let (port, rpc_port) = (gateway.zmq_port(), gateway.jsonrpc_port());
    (gateway, port, rpc_port)
}

fn emitter(port: u16) -> Emitter {
    Emitter::builder()
        .zmq(format!("tcp://127.0.0.1:{port}"))
        .secret(SECRET)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("emitter")
}

#[tokio::test]
async fn emitted_model_changes_arrive_with_exact_kwargs_in_order() {
    let (gateway, port, _) = start();
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe("models.shop.order").await;
    let emitter = emitter(port);
    emitter
        .model("shop.order")
        .updated(42, &json!({"status": "paid"}), &["status"])
        .await
        .expect("sent");
    assert_eq!(
        subscriber.event().await[5],
        json!({"action": "updated", "model": "shop.order", "pk": 42,
               "data": {"status": "paid"}, "changed": ["status"]})
    );
    let events = (0..100)
        .map(|i| Event::new("models.shop.order").with_kwarg("i", i))
        .collect();
    let results = emitter.emit_batch(events).await.expect("buffered");
    assert!(results.iter().all(Result::is_ok));
    for i in 0..100 {
        assert_eq!(subscriber.event().await[5]["i"], i);
    }
}

async fn push(port: u16) -> zeromq::PushSocket {
    let mut socket = zeromq::PushSocket::new();
    socket
        .connect(&format!("tcp://127.0.0.1:{port}"))
        .await
        .expect("PUSH connects");
    socket
}

async fn send(socket: &mut zeromq::PushSocket, frames: Vec<Vec<u8>>) {
    let frames: Vec<Bytes> = frames.into_iter().map(Bytes::from).collect();
    let message = ZmqMessage::try_from(frames).expect("at least one frame");
    socket.send(message).await.expect("sent");
}

#[tokio::test]
async fn refused_messages_are_logged_and_not_delivered() {
    let (gateway, port, _) = start();
    let topic = "com.example.zmq";
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe(topic).await;
    let mut socket = push(port).await;
    let signer = Signer::new(SECRET);
    let body = json!({"topic": topic, "args": ["refused"]})
        .to_string()
        .into_bytes();
    let now = unix_now();
    let sign = |body: &[u8]| signer.sign(body).into_bytes();

    send(&mut socket, vec![body.clone()]).await;
    send(
        &mut socket,
        vec![sign(&body), body.clone(), b"extra".to_vec()],
    )
    .await;
    send(&mut socket, vec![Vec::new(), body.clone()]).await;
    send(&mut socket, vec![b"t=1,n=x".to_vec(), body.clone()]).await;
    let forged = Signer::new("wrong").sign(&body).into_bytes();
    send(&mut socket, vec![forged, body.clone()]).await;
    let stale = signer
        .sign_with(&body, now - 1000, "stale-zmq-1")
        .into_bytes();
    send(&mut socket, vec![stale, body.clone()]).await;
    let once = sign(&body);
    send(&mut socket, vec![once.clone(), body.clone()]).await;
    send(&mut socket, vec![once, body.clone()]).await;
    let not_json = b"{\"topic\": ".to_vec();
    send(&mut socket, vec![sign(&not_json), not_json]).await;
    let bad_topic = json!({"topic": "a..b"}).to_string().into_bytes();
    send(&mut socket, vec![sign(&bad_topic), bad_topic]).await;
    let bad_realm = json!({"topic": topic, "realm": "elsewhere"})
        .to_string()
        .into_bytes();
    send(&mut socket, vec![sign(&bad_realm), bad_realm]).await;
    let marker = json!({"topic": topic, "args": ["marker"]})
        .to_string()
        .into_bytes();
    send(&mut socket, vec![sign(&marker), marker]).await;

    // Only the one correctly signed copy arrives, then the marker: one peer's messages stay in order.
    assert_eq!(subscriber.event().await[4], json!(["refused"]));
    assert_eq!(subscriber.event().await[4], json!(["marker"]));
    for which in [
        "which=\"frames\"",
        "which=\"missing\"",
        "which=\"malformed\"",
        "which=\"invalid\"",
        "which=\"expired\"",
        "which=\"replayed\"",
        "which=\"not_json\"",
        "which=\"invalid_event\"",
        "which=\"unknown_realm\"",
    ] {
        assert!(gateway.log_contains(which), "log should mention {which}");
    }
    assert!(
        gateway.log_contains("rejected=10"),
        "the counter counts all ten"
    );
}

#[tokio::test]
async fn the_emitter_reconnects_after_a_gateway_restart() {
    let (gateway, port, rpc_port) = start();
    let emitter = emitter(port);
    emitter.emit(Event::new("a.before")).await.expect("sent");
    drop(gateway);

    let gateway = Gateway::start("", &zmq_config(port, rpc_port));
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe("com.example.after").await;
    // ZeroMQ has no acknowledgement: a message handed to the old connection before the emitter saw it
    // close is lost. Keep emitting until one arrives, which proves the emitter reconnected.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut sent = 0;
    let received = loop {
        assert!(
            Instant::now() < deadline,
            "nothing arrived after the restart"
        );
        sent += 1;
        emitter
            .emit(Event::new("com.example.after").with_args(vec![json!(sent)]))
            .await
            .expect("handed to the socket");
        let next = tokio::time::timeout(Duration::from_millis(200), subscriber.client.recv()).await;
        if let Ok(Some(event)) = next {
            break event;
        }
    };
    assert_eq!(received[0], 36, "{received}");
    assert!(received[4][0].as_u64().is_some_and(|n| n <= sent));
}
