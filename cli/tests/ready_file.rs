//! `switchboard gateway --listen ADDR --ready-file PATH`, across processes: with port 0 everywhere the
//! OS chooses the ports, and the ready file names every bound address, each of which answers.

mod ingest_support;
mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use ingest_support::{Rpc, Subscriber, SECRET};
use serde_json::json;
use support::{port_of, wait_ready, TempDir, OPEN_REALM};

#[tokio::test]
async fn port_zero_everywhere_and_the_ready_file_names_each_bound_address() {
    let dir = std::env::temp_dir().join(format!("switchboard-ready-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let dir = TempDir(dir);
    let config = dir.0.join("switchboard.toml");
    // No [gateway] listen: the default (8080) is overridden by --listen.
    let text = format!(
        "[security]\nsecret = \"{SECRET}\"\n[ingest.jsonrpc]\nlisten = \"127.0.0.1:0\"\n\
         [ingest.zmq]\nendpoint = \"tcp://127.0.0.1:0\"\n{OPEN_REALM}"
    );
    std::fs::write(&config, text).expect("config written");
    let ready_file = dir.0.join("ready.json");
    let log = dir.0.join("gateway.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["gateway", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--ready-file")
        .arg(&ready_file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("gateway starts");
    let ready = wait_ready(&mut child, &ready_file, &log);
    let _kill = KillOnDrop(child);

    assert_eq!(ready["pid"], json!(_kill.0.id()), "{ready}");
    assert!(
        !dir.0.join("ready.json.tmp").exists(),
        "the temporary file is renamed"
    );
    let http = ready["http"].as_str().expect("http address");
    let jsonrpc = ready["jsonrpc"].as_str().expect("jsonrpc address");
    let zmq = ready["zmq"].as_str().expect("zmq endpoint");
    assert!(http.starts_with("127.0.0.1:"), "{ready}");
    assert!(jsonrpc.starts_with("127.0.0.1:"), "{ready}");
    assert!(zmq.starts_with("tcp://127.0.0.1:"), "{ready}");
    let (http, jsonrpc, zmq) = (port_of(http), port_of(jsonrpc), port_of(zmq));
    for port in [http, jsonrpc, zmq] {
        assert_ne!(port, 0, "{ready}");
    }
    assert_ne!(http, 8080, "--listen overrides the configuration");

    // HTTP answers /healthz.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", http)).expect("HTTP connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // JSON-RPC and ZeroMQ both deliver to a WAMP subscriber.
    let mut subscriber = Subscriber::join(&format!("ws://127.0.0.1:{http}/ws")).await;
    subscriber.subscribe("com.example.ready").await;
    let mut rpc = Rpc::new(jsonrpc);
    rpc.result(
        "publish",
        json!({"topic": "com.example.ready", "kwargs": {"via": "jsonrpc"}}),
    )
    .await;
    assert_eq!(subscriber.event().await[5], json!({"via": "jsonrpc"}));
    let emitter = switchboard_emitter::Emitter::builder()
        .zmq(format!("tcp://127.0.0.1:{zmq}"))
        .secret(SECRET)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("emitter");
    emitter
        .emit(switchboard_emitter::Event::new("com.example.ready").with_kwarg("via", "zmq"))
        .await
        .expect("sent");
    assert_eq!(subscriber.event().await[5], json!({"via": "zmq"}));
    emitter.close().await.expect("closed");
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
