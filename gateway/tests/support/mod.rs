//! Runs the real `switchboard` binary on a free port and talks raw WAMP to it over WebSocket.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A gateway process that is killed when dropped.
pub struct Gateway {
    pub child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: TempDir,
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `[[realms]]` part every test config uses unless it brings its own.
pub const OPEN_REALM: &str = r#"
[[realms]]
name = "realm1"
anonymous_role = "anonymous"
[[realms.roles]]
name = "anonymous"
permissions = [{ uri = "", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } }]
"#;

impl Gateway {
    /// Starts the gateway with `[gateway]` extra lines and `realms` TOML, and waits until /healthz answers.
    pub fn start(gateway_extra: &str, realms: &str) -> Gateway {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("switchboard-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("switchboard.toml");
        let text = format!("[gateway]\nlisten = \"127.0.0.1:{port}\"\n{gateway_extra}\n{realms}");
        std::fs::File::create(&config)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("config written");
        let log = dir.join("gateway.log");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["gateway", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("gateway starts");
        let gateway = Gateway {
            child,
            port,
            log,
            _dir: TempDir(dir),
        };
        gateway.wait_healthy();
        gateway
    }

    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.healthz() == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not become healthy on port {}", self.port);
    }

    /// Status code of GET /healthz, or None when nothing answers.
    pub fn healthz(&self) -> Option<u16> {
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
    pub fn log_contains(&self, text: &str) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(text))
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw WAMP-over-WebSocket client speaking JSON.
pub struct RawClient {
    pub socket: Socket,
}

impl RawClient {
    pub async fn connect(url: &str, subprotocol: &str) -> RawClient {
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

    pub async fn joined(url: &str) -> (RawClient, u64) {
        let mut client = RawClient::connect(url, "wamp.2.json").await;
        client
            .send(serde_json::json!([1, "realm1", {"roles": {"subscriber": {}, "publisher": {}}}]))
            .await;
        let welcome = client.recv().await.expect("WELCOME");
        assert_eq!(welcome[0], 2, "expected WELCOME, got {welcome}");
        let session = welcome[1].as_u64().expect("session id");
        (client, session)
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(WsMessage::text(message.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, frame: WsMessage) {
        let _ = self.socket.send(frame).await;
    }

    /// The next WAMP message (JSON), or None when the connection closed; gives up after 10 s.
    pub async fn recv(&mut self) -> Option<Value> {
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
    pub async fn recv_until_closed(&mut self) -> Vec<Value> {
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
pub fn assert_abort(message: Option<&Value>, reason: &str, fragment: &str) {
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
