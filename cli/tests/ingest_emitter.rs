//! The Rust emitter and `switchboard emit` against the real gateway over JSON-RPC: model changes arrive
//! with exactly the DESIGN.md section 5 kwargs, the emitter rides out a gateway restart, and failures
//! are explicit (non-zero exit with the reason, a full buffer is an error).

mod ingest_support;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ingest_support::{jsonrpc_config, Subscriber, SECRET};
use serde_json::json;
use support::{Gateway, TempDir};
use switchboard_emitter::{EmitError, Emitter, Event};

/// An emitter-side `switchboard.toml` pointing at JSON-RPC port `port`.
fn emitter_config(port: u16) -> (TempDir, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-emitter-test-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("switchboard.toml");
    let text = format!(
        "[security]\nsecret = \"{SECRET}\"\n[ingest.jsonrpc]\nlisten = \"127.0.0.1:{port}\"\n[emitter]\ntransport = \"jsonrpc\"\n"
    );
    std::fs::write(&path, text).expect("config written");
    (TempDir(dir), path)
}

#[tokio::test]
async fn model_helpers_deliver_the_design_kwargs() {
    let gateway = Gateway::start("", &jsonrpc_config(0));
    let port = gateway.jsonrpc_port();
    let (_dir, config) = emitter_config(port);
    let emitter = Emitter::from_config(&config).expect("emitter from the shared config");
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe("models.shop.order").await;

    let order = json!({"status": "paid", "total": 30});
    let receipt = emitter
        .model("shop.order")
        .updated(42, &order, &["status"])
        .await
        .expect("emitted");
    let event = subscriber.event().await;
    assert_eq!(Some(event[2].as_u64().expect("id")), receipt.publication);
    assert_eq!(
        event[5],
        json!({"action": "updated", "model": "shop.order", "pk": 42,
               "data": {"status": "paid", "total": 30}, "changed": ["status"]})
    );
    emitter
        .model("shop.order")
        .created("a-1", &json!({"x": 1}))
        .await
        .expect("emitted");
    emitter
        .model("shop.order")
        .deleted(7)
        .await
        .expect("emitted");
    assert_eq!(subscriber.event().await[5]["action"], "created");
    assert_eq!(
        subscriber.event().await[5],
        json!({"action": "deleted", "model": "shop.order", "pk": 7, "data": {}, "changed": []})
    );

    // A batch goes out in one publish_batch and arrives in order.
    let events = (0..50)
        .map(|i| Event::new("models.shop.order").with_kwarg("i", i))
        .collect();
    let results = emitter.emit_batch(events).await.expect("buffered");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for i in 0..50 {
        assert_eq!(subscriber.event().await[5]["i"], i);
    }
    // The gateway's refusal comes back as such, not as a retry.
    let refused = emitter
        .emit(Event::new("a.b").in_realm("nowhere"))
        .await
        .expect_err("unknown realm");
    assert!(
        matches!(refused, EmitError::Rejected { code: -32602, ref message } if message.contains("realm")),
        "{refused}"
    );
}

#[tokio::test]
async fn the_emitter_rides_out_a_gateway_restart() {
    let gateway = Gateway::start("", &jsonrpc_config(0));
    let port = gateway.jsonrpc_port();
    let emitter = Emitter::builder()
        .jsonrpc(format!("http://127.0.0.1:{port}"))
        .secret(SECRET)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("emitter");
    emitter.emit(Event::new("a.before")).await.expect("first");
    drop(gateway);

    let pending = tokio::spawn({
        let emitter = emitter.clone();
        async move { emitter.emit(Event::new("a.during")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pending.is_finished(),
        "nothing can confirm while the gateway is down"
    );
    let _gateway = Gateway::start("", &jsonrpc_config(port));
    let receipt = tokio::time::timeout(Duration::from_secs(20), pending)
        .await
        .expect("confirmed after the restart")
        .expect("task")
        .expect("emitted");
    assert!(receipt.publication.is_some());
}

#[tokio::test]
async fn a_full_buffer_and_an_absent_gateway_are_explicit_errors() {
    // A port nothing listens on (no gateway is started here).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let emitter = Emitter::builder()
        .jsonrpc(format!("http://127.0.0.1:{port}"))
        .secret(SECRET)
        .buffer(2)
        .timeout(Duration::from_millis(1500))
        .build()
        .expect("emitter");
    // Each emit holds its buffer slot while it waits; the background task can take out at most one
    // buffer's worth (it is stuck retrying), so a few emits later the buffer is full.
    let mut waiting = Vec::new();
    let full = loop {
        let task = tokio::spawn({
            let emitter = emitter.clone();
            async move { emitter.emit(Event::new("a.b")).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        if task.is_finished() {
            break task.await.expect("task").expect_err("nothing can succeed");
        }
        waiting.push(task);
        assert!(waiting.len() <= 4, "the buffer never filled");
    };
    assert!(
        matches!(full, EmitError::BufferFull { capacity: 2 }),
        "{full}"
    );
    assert!(full.to_string().contains("buffer full"), "{full}");
    for task in waiting {
        let error = task.await.expect("task").expect_err("no gateway");
        let text = error.to_string();
        assert!(matches!(error, EmitError::Timeout { .. }), "{text}");
        assert!(
            text.contains("not confirmed within 1500 ms: "),
            "says why: {text}"
        );
    }
    assert!(matches!(
        emitter.emit(Event::new("bad topic")).await,
        Err(EmitError::Invalid(_))
    ));
}

fn switchboard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .expect("switchboard runs")
}

#[tokio::test]
async fn switchboard_emit_sends_custom_events_and_model_changes() {
    let gateway = Gateway::start("", &jsonrpc_config(0));
    let port = gateway.jsonrpc_port();
    let (_dir, config) = emitter_config(port);
    let config = config.to_str().expect("utf-8 path").to_string();
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe("com.example.cli").await;
    subscriber.subscribe("models.shop.order").await;

    let cli = switchboard(&[
        "emit",
        "--config",
        &config,
        "--topic",
        "com.example.cli",
        "--args",
        "[1, \"two\"]",
        "--kwargs",
        "{\"k\": {\"n\": null}}",
    ]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let printed: serde_json::Value =
        serde_json::from_slice(&cli.stdout).expect("receipt printed as JSON");
    let event = subscriber.event().await;
    assert_eq!(event[2], printed["publication"]);
    assert_eq!(event[4], json!([1, "two"]));
    assert_eq!(event[5], json!({"k": {"n": null}}));

    let cli = switchboard(&[
        "emit",
        "--config",
        &config,
        "--model",
        "shop.order",
        "--action",
        "updated",
        "--pk",
        "42",
        "--data",
        "{\"status\": \"paid\"}",
        "--changed",
        "status,total",
    ]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(
        subscriber.event().await[5],
        json!({"action": "updated", "model": "shop.order", "pk": 42,
               "data": {"status": "paid"}, "changed": ["status", "total"]})
    );

    let bad = switchboard(&[
        "emit", "--config", &config, "--topic", "a.b", "--kwargs", "[1]",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--kwargs must be a JSON object"));
    let bad_topic = switchboard(&["emit", "--config", &config, "--topic", "a..b"]);
    assert!(!bad_topic.status.success());
    assert!(String::from_utf8_lossy(&bad_topic.stderr).contains("topic"));

    drop(gateway);
    let down = switchboard(&[
        "emit",
        "--config",
        &config,
        "--topic",
        "a.b",
        "--timeout-s",
        "1",
    ]);
    assert!(!down.status.success());
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(stderr.contains("not confirmed within 1000 ms"), "{stderr}");
}

#[tokio::test]
async fn the_blocking_handle_serves_synchronous_code() {
    let gateway = Gateway::start("", &jsonrpc_config(0));
    let port = gateway.jsonrpc_port();
    let (_dir, config) = emitter_config(port);
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe("models.shop.order").await;
    // A plain thread, as in a synchronous web framework's request handler.
    let worker = std::thread::spawn(move || {
        let emitter = switchboard_emitter::BlockingEmitter::from_config(&config).expect("emitter");
        let receipt = emitter
            .model("shop.order")
            .updated(42, &json!({"status": "paid"}), &["status"])
            .expect("confirmed");
        emitter
            .emit(Event::new("models.shop.order").with_kwarg("n", 2))
            .expect("confirmed");
        receipt
    });
    let first = subscriber.event().await;
    assert_eq!(
        first[5],
        json!({"action": "updated", "model": "shop.order", "pk": 42,
               "data": {"status": "paid"}, "changed": ["status"]})
    );
    assert_eq!(subscriber.event().await[5], json!({"n": 2}));
    let receipt = tokio::task::spawn_blocking(move || worker.join().expect("thread"))
        .await
        .expect("joined");
    assert_eq!(Some(first[2].as_u64().expect("id")), receipt.publication);
}

#[tokio::test]
async fn an_emitter_with_the_wrong_secret_is_told_so_and_nothing_is_delivered() {
    let gateway = Gateway::start("", &jsonrpc_config(0));
    let port = gateway.jsonrpc_port();
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe("com.example.secret").await;
    let wrong = Emitter::builder()
        .jsonrpc(format!("http://127.0.0.1:{port}"))
        .secret("not-the-secret")
        .timeout(Duration::from_secs(10))
        .build()
        .expect("emitter");
    // The gateway answers -32001 before parsing the body, so with "id": null; the emitter must still
    // report it as the gateway's refusal, not retry it as a network error.
    let refused = wrong
        .emit(Event::new("com.example.secret").with_args(vec![json!("forged")]))
        .await
        .expect_err("wrong secret");
    assert!(
        matches!(refused, EmitError::Rejected { code: -32001, ref message } if message.contains("invalid")),
        "{refused}"
    );
    let right = Emitter::builder()
        .jsonrpc(format!("http://127.0.0.1:{port}"))
        .secret(SECRET)
        .build()
        .expect("emitter");
    right
        .emit(Event::new("com.example.secret").with_args(vec![json!("marker")]))
        .await
        .expect("delivered");
    assert_eq!(subscriber.event().await[4], json!(["marker"]));
}
