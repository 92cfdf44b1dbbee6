//! Runs the real `switchboard` binary on ports the OS chooses (`--ready-file` says which) and talks raw
//! WAMP to it over WebSocket.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A gateway process that is killed when dropped.
pub(crate) struct Gateway {
    pub child: Child,
    /// The HTTP (WebSocket) port.
    pub port: u16,
    /// The ready file's JSON: the bound addresses (`http`, `jsonrpc`, `zmq`) and the `pid`.
    pub ready: Value,
    log: PathBuf,
    _dir: TempDir,
}

/// A directory removed when dropped.
pub(crate) struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A directory name no other gateway of this test process uses.
fn unique_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("switchboard-test-{}-{n}", std::process::id()))
}

/// Waits (up to 20 s) for the gateway to write its ready file and returns the file's JSON; panics with
/// the gateway's log if it exits first.
pub(crate) fn wait_ready(child: &mut Child, ready: &Path, log: &Path) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(ready) {
            return serde_json::from_str(&text).expect("the ready file is JSON");
        }
        let log_text = || std::fs::read_to_string(log).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the gateway exited ({status}) before it was ready:\n{}",
                log_text()
            );
        }
        if Instant::now() >= deadline {
            panic!("the gateway was not ready after 20 s:\n{}", log_text());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The port of a `HOST:PORT` or `tcp://HOST:PORT` address.
pub(crate) fn port_of(address: &str) -> u16 {
    address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {address:?}"))
}

/// The `[[realms]]` part every test config uses unless it brings its own.
pub(crate) const OPEN_REALM: &str = r#"
[[realms]]
name = "realm1"
anonymous_role = "anonymous"
[[realms.roles]]
name = "anonymous"
permissions = [{ uri = "", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } }]
"#;

impl Gateway {
    /// Starts the gateway with `[gateway]` extra lines and `realms` TOML (which may enable ingestion, on
    /// port 0 or a given one), listening on a port the OS chooses, and waits for its ready file.
    pub(crate) fn start(gateway_extra: &str, realms: &str) -> Gateway {
        let dir = unique_dir();
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("switchboard.toml");
        let text = format!("[gateway]\nlisten = \"127.0.0.1:0\"\n{gateway_extra}\n{realms}");
        std::fs::File::create(&config)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("config written");
        let log = dir.join("gateway.log");
        let ready_file = dir.join("ready.json");
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["gateway", "--config"])
            .arg(&config)
            .arg("--ready-file")
            .arg(&ready_file)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("gateway starts");
        let ready = wait_ready(&mut child, &ready_file, &log);
        let port = port_of(ready["http"].as_str().expect("http address"));
        Gateway {
            child,
            port,
            ready,
            log,
            _dir: TempDir(dir),
        }
    }

    /// The JSON-RPC ingestion port (the gateway must have `[ingest.jsonrpc]`).
    pub(crate) fn jsonrpc_port(&self) -> u16 {
        port_of(
            self.ready["jsonrpc"]
                .as_str()
                .expect("JSON-RPC ingestion enabled"),
        )
    }

    /// The ZeroMQ ingestion port (the gateway must have `[ingest.zmq]`).
    pub(crate) fn zmq_port(&self) -> u16 {
        port_of(
            self.ready["zmq"]
                .as_str()
                .expect("ZeroMQ ingestion enabled"),
        )
    }

    /// Status code of GET /healthz, or None when nothing answers.
    pub(crate) fn healthz(&self) -> Option<u16> {
        use std::io::Read;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.split_whitespace().nth(1)?.parse().ok()
    }

    /// Whether the gateway's log (stderr) mentions `text` so far.
    pub(crate) fn log_contains(&self, text: &str) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(text))
    }

    pub(crate) fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw WAMP-over-WebSocket client speaking JSON.
pub(crate) struct RawClient {
    pub socket: Socket,
}

impl RawClient {
    pub(crate) async fn connect(url: &str, subprotocol: &str) -> RawClient {
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            subprotocol.parse().expect("header"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket connects");
        RawClient { socket }
    }

    pub(crate) async fn joined(url: &str) -> (RawClient, u64) {
        let mut client = RawClient::connect(url, "wamp.2.json").await;
        client
            .send(serde_json::json!([1, "realm1", {"roles": {"subscriber": {}, "publisher": {}}}]))
            .await;
        let welcome = client.recv().await.expect("WELCOME");
        assert_eq!(welcome[0], 2, "expected WELCOME, got {welcome}");
        let session = welcome[1].as_u64().expect("session id");
        (client, session)
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.socket
            .send(WsMessage::text(message.to_string()))
            .await
            .expect("send");
    }

    pub(crate) async fn send_raw(&mut self, frame: WsMessage) {
        let _ = self.socket.send(frame).await;
    }

    /// The next WAMP message (JSON), or None when the connection closed; gives up after 10 s.
    pub(crate) async fn recv(&mut self) -> Option<Value> {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .ok()??;
            match next.ok()? {
                WsMessage::Text(text) => return serde_json::from_str(text.as_str()).ok(),
                WsMessage::Binary(bytes) => return rmpv_to_json(&bytes),
                WsMessage::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Reads until the connection closes, returning the messages seen.
    pub(crate) async fn recv_until_closed(&mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(message) = self.recv().await {
            seen.push(message);
        }
        seen
    }
}

fn rmpv_to_json(bytes: &[u8]) -> Option<Value> {
    let message = switchboard_gateway::wamp::Serializer::Msgpack
        .decode(bytes)
        .ok()?;
    match switchboard_gateway::wamp::Serializer::Json.encode(&message) {
        switchboard_gateway::wamp::Frame::Text(text) => serde_json::from_str(text.as_str()).ok(),
        switchboard_gateway::wamp::Frame::Binary(_) => None,
    }
}

/// Asserts `message` is ABORT with `reason` and a message containing `fragment`.
pub(crate) fn assert_abort(message: Option<&Value>, reason: &str, fragment: &str) {
    let message =
        message.unwrap_or_else(|| panic!("expected ABORT {reason}, connection closed without it"));
    let mut shown = message.to_string();
    shown.truncate(300);
    assert_eq!(message[0], 3, "expected ABORT, got {shown}");
    assert_eq!(message[2], reason, "ABORT reason in {message}");
    let text = message[1]["message"].as_str().unwrap_or_default();
    assert!(
        text.contains(fragment),
        "ABORT message {text:?} should mention {fragment:?}"
    );
}
