//! Helpers shared by the ingestion tests: configs with `[ingest.*]` sections, a signed JSON-RPC client
//! over plain HTTP/1.1, and WAMP subscribers that know their authid.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_emitter::Signer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{RawClient, OPEN_REALM};

/// The secret every ingestion test gateway is configured with.
pub(crate) const SECRET: &str = "ingest-test-secret";

/// The current time in unix seconds, as signatures carry it.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Config text (after `[gateway]`) enabling JSON-RPC ingestion on `port` (0: the OS chooses; the
/// gateway's ready file says which), with the open realm.
pub(crate) fn jsonrpc_config(port: u16) -> String {
    format!(
        "[security]\nsecret = \"{SECRET}\"\nmax_skew_s = 300\n[ingest.jsonrpc]\nlisten = \"127.0.0.1:{port}\"\n{OPEN_REALM}"
    )
}

/// An HTTP answer: status and JSON body (Null when the body was not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
}

/// POSTs `body` to the JSON-RPC endpoint with `headers`; one connection per request.
pub(crate) async fn post(port: u16, body: &[u8], headers: &[(&str, String)]) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("JSON-RPC port answers");
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("response within 10 s")
        .expect("read");
    parse_response(&response)
}

fn parse_response(response: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Answer {
        status,
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A JSON-RPC client signing every request with [`SECRET`].
pub(crate) struct Rpc {
    pub port: u16,
    signer: Signer,
    next_id: u64,
}

impl Rpc {
    pub(crate) fn new(port: u16) -> Rpc {
        Rpc {
            port,
            signer: Signer::new(SECRET),
            next_id: 0,
        }
    }

    /// A JSON-RPC request object for `method` with `params`.
    pub(crate) fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
    }

    /// Sends raw bytes signed correctly.
    pub(crate) async fn send_signed(&self, body: &[u8]) -> Answer {
        let signature = self.signer.sign(body);
        post(self.port, body, &[("X-Switchboard-Signature", signature)]).await
    }

    /// Calls `method` with a valid signature; returns the whole response object.
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Value {
        let body = self.request(method, params).to_string();
        let answer = self.send_signed(body.as_bytes()).await;
        assert_eq!(answer.status, 200, "HTTP status for {method}: {answer:?}");
        answer.body
    }

    /// Calls `method` and returns its result, failing on an error response.
    pub(crate) async fn result(&mut self, method: &str, params: Value) -> Value {
        let response = self.call(method, params).await;
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }
}

/// A joined WAMP session that knows its authid.
pub(crate) struct Subscriber {
    pub client: RawClient,
    pub session: u64,
    pub authid: String,
    next_request: u64,
}

impl Subscriber {
    pub(crate) async fn join(url: &str) -> Subscriber {
        let mut client = RawClient::connect(url, "wamp.2.json").await;
        client
            .send(json!([1, "realm1", {"roles": {"subscriber": {}}}]))
            .await;
        let welcome = client.recv().await.expect("WELCOME");
        assert_eq!(welcome[0], 2, "expected WELCOME, got {welcome}");
        Subscriber {
            client,
            session: welcome[1].as_u64().expect("session id"),
            authid: welcome[2]["authid"]
                .as_str()
                .expect("authid in WELCOME")
                .to_string(),
            next_request: 0,
        }
    }

    /// Subscribes to `topic` (exact) and waits for SUBSCRIBED.
    pub(crate) async fn subscribe(&mut self, topic: &str) -> u64 {
        self.next_request += 1;
        self.client
            .send(json!([32, self.next_request, {}, topic]))
            .await;
        let subscribed = self.client.recv().await.expect("SUBSCRIBED");
        assert_eq!(subscribed[0], 33, "expected SUBSCRIBED, got {subscribed}");
        subscribed[2].as_u64().expect("subscription id")
    }

    /// The next EVENT: `[36, subscription, publication, details, args?, kwargs?]`.
    pub(crate) async fn event(&mut self) -> Value {
        let event = self.client.recv().await.expect("an EVENT within 10 s");
        assert_eq!(event[0], 36, "expected EVENT, got {event}");
        event
    }
}

/// Config text (after `[gateway]`) enabling ZeroMQ ingestion on `port` (and JSON-RPC on `rpc_port`); 0
/// lets the OS choose.
pub(crate) fn zmq_config(port: u16, rpc_port: u16) -> String {
    format!(
        "[security]\nsecret = \"{SECRET}\"\n[ingest.jsonrpc]\nlisten = \"127.0.0.1:{rpc_port}\"\n[ingest.zmq]\nendpoint = \"tcp://127.0.0.1:{port}\"\n{OPEN_REALM}"
    )
}

/// The RabbitMQ every AMQP test uses (DESIGN.md: 127.0.0.1:5672, guest/guest).
pub(crate) const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Config text enabling AMQP ingestion with test-specific exchange and queue names.
pub(crate) fn amqp_config(exchange: &str, queue: &str) -> String {
    format!(
        "[security]\nsecret = \"{SECRET}\"\n[ingest.amqp]\nurl = \"{AMQP_URL}\"\nexchange = \"{exchange}\"\nqueue = \"{queue}\"\n{OPEN_REALM}"
    )
}

/// Exchange and queue names no other test run uses.
pub(crate) fn amqp_names(test: &str) -> (String, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let unique = format!("{}.{}.{nanos}.{n}", test, std::process::id());
    (
        format!("sbtest.{unique}.events"),
        format!("sbtest.{unique}.ingest"),
    )
}
