//! A minimal WAMP-over-WebSocket client: connect (optionally from a chosen 127.0.0.x source address),
//! join a realm, subscribe, publish, and hand over the bare TCP stream for cheap frame counting.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::wire::{code, Serializer};

/// The realm every scenario joins.
pub const REALM: &str = "realm1";
/// How long one handshake step (connect, HELLO, SUBSCRIBE) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the gateway listens, checked to be a loopback address in 127.0.0.0/8.
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    addr: SocketAddr,
}

impl Target {
    /// Parses `ws://127.0.0.x:PORT/PATH` (or `localhost`); anything off loopback is refused.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let request = url.into_client_request().context("bad WebSocket URL")?;
        let uri = request.uri();
        if uri.scheme_str() != Some("ws") {
            bail!("{url}: only ws:// URLs are supported");
        }
        let host = uri.host().ok_or_else(|| anyhow!("{url}: no host"))?;
        let ip: Ipv4Addr = match host {
            "localhost" => Ipv4Addr::LOCALHOST,
            other => other
                .parse()
                .with_context(|| format!("{url}: host must be a 127.0.0.x address"))?,
        };
        if ip.octets()[0] != 127 {
            bail!("{url}: the generator only talks to 127.0.0.x");
        }
        let port = uri.port_u16().unwrap_or(80);
        Ok(Target {
            url: url.to_string(),
            addr: SocketAddr::new(IpAddr::V4(ip), port),
        })
    }

    /// The gateway's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Source address for connection `index` of `total`: the default one while `total` fits in one
/// address's ephemeral ports (`per_source`), else 127.0.0.1, 127.0.0.2, ... in blocks of `per_source`.
pub fn source_address(
    index: usize,
    total: usize,
    per_source: usize,
) -> anyhow::Result<Option<Ipv4Addr>> {
    if total <= per_source {
        return Ok(None);
    }
    let block = index / per_source.max(1);
    let last = u8::try_from(block + 1)
        .ok()
        .filter(|b| *b < 255)
        .ok_or_else(|| anyhow!("too many connections for 127.0.0.1-254"))?;
    Ok(Some(Ipv4Addr::new(127, 0, 0, last)))
}

/// WebSocket buffers small enough for tens of thousands of connections in one process.
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Buffers for the publisher, which writes many frames per flush.
pub fn publisher_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(16 << 20)
}

/// One WAMP session over a WebSocket.
pub struct Connection {
    /// The WebSocket.
    pub ws: WebSocketStream<TcpStream>,
    /// The negotiated serializer.
    pub serializer: Serializer,
    next_request: u64,
}

impl Connection {
    /// Opens a WebSocket to `target` with `serializer`'s subprotocol, from `source` when given.
    pub async fn connect(
        target: &Target,
        serializer: Serializer,
        source: Option<Ipv4Addr>,
        config: WebSocketConfig,
    ) -> anyhow::Result<Connection> {
        let socket = TcpSocket::new_v4()?;
        if let Some(source) = source {
            socket
                .bind(SocketAddr::new(IpAddr::V4(source), 0))
                .with_context(|| format!("cannot bind source address {source}"))?;
        }
        Self::connect_socket(socket, target, serializer, config).await
    }

    /// Like [`Connection::connect`] from a socket the caller prepared (a small receive buffer for a
    /// consumer that will stall, say).
    pub async fn connect_socket(
        socket: TcpSocket,
        target: &Target,
        serializer: Serializer,
        config: WebSocketConfig,
    ) -> anyhow::Result<Connection> {
        let stream = tokio::time::timeout(STEP_TIMEOUT, socket.connect(target.addr))
            .await
            .context("TCP connect timed out")?
            .with_context(|| format!("cannot connect to {}", target.addr))?;
        stream.set_nodelay(true)?;
        let mut request = target.url.as_str().into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(serializer.subprotocol()),
        );
        let handshake = tokio_tungstenite::client_async_with_config(request, stream, Some(config));
        let (ws, response) = tokio::time::timeout(STEP_TIMEOUT, handshake)
            .await
            .context("WebSocket handshake timed out")?
            .context("WebSocket handshake failed")?;
        let agreed = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        if agreed != Some(serializer.subprotocol()) {
            bail!("gateway did not agree to {}", serializer.subprotocol());
        }
        Ok(Connection {
            ws,
            serializer,
            next_request: 1,
        })
    }

    /// Queues a message without flushing.
    pub async fn feed(&mut self, message: &Value) -> anyhow::Result<()> {
        let frame = self.serializer.encode(message);
        self.ws.feed(frame).await.context("WebSocket write failed")
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.ws.flush().await.context("WebSocket flush failed")
    }

    /// Sends one message.
    pub async fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        self.feed(message).await?;
        self.flush().await
    }

    /// The next WAMP message (pings and pongs skipped); an error once the socket closes.
    pub async fn recv(&mut self) -> anyhow::Result<Value> {
        loop {
            let frame = self
                .ws
                .next()
                .await
                .ok_or_else(|| anyhow!("connection closed"))?
                .context("WebSocket read failed")?;
            match frame {
                Message::Text(text) => return self.serializer.decode(text.as_bytes()),
                Message::Binary(bytes) => return self.serializer.decode(&bytes),
                Message::Close(close) => bail!("connection closed by the gateway: {close:?}"),
                _ => {}
            }
        }
    }

    async fn expect(&mut self, wanted: u64, what: &str) -> anyhow::Result<Value> {
        let message = tokio::time::timeout(STEP_TIMEOUT, self.recv())
            .await
            .with_context(|| format!("no {what} within {} s", STEP_TIMEOUT.as_secs()))??;
        if message.get(0).and_then(Value::as_u64) != Some(wanted) {
            bail!("expected {what}, got {message}");
        }
        Ok(message)
    }

    /// Sends HELLO for [`REALM`] and waits for WELCOME; returns the session id.
    pub async fn join(&mut self) -> anyhow::Result<u64> {
        let hello = json!([code::HELLO, REALM, {"roles": {"subscriber": {}, "publisher": {}}}]);
        self.send(&hello).await?;
        let welcome = self.expect(code::WELCOME, "WELCOME").await?;
        welcome
            .get(1)
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("WELCOME without a session id: {welcome}"))
    }

    /// Subscribes to `topic` (exact match) and waits for SUBSCRIBED; returns the subscription id.
    pub async fn subscribe(&mut self, topic: &str) -> anyhow::Result<u64> {
        self.subscribe_matching(topic, None).await
    }

    /// Subscribes to `topic` with SUBSCRIBE.Options.match `policy` (`prefix`, `wildcard`; `None`: exact);
    /// returns the subscription id.
    pub async fn subscribe_matching(
        &mut self,
        topic: &str,
        policy: Option<&str>,
    ) -> anyhow::Result<u64> {
        let options = match policy {
            Some(policy) => json!({ "match": policy }),
            None => json!({}),
        };
        self.subscribe_with(topic, options).await
    }

    /// Subscribes to `topic` with SUBSCRIBE.Options `options` (`match`, `_filter`, ...); returns the
    /// subscription id.
    pub async fn subscribe_with(&mut self, topic: &str, options: Value) -> anyhow::Result<u64> {
        let request = self.take_request_id();
        self.send(&json!([code::SUBSCRIBE, request, options, topic]))
            .await?;
        let subscribed = self.expect(code::SUBSCRIBED, "SUBSCRIBED").await?;
        subscribed
            .get(2)
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("SUBSCRIBED without an id: {subscribed}"))
    }

    /// Calls `procedure` with `args` and `kwargs` and waits (at most [`STEP_TIMEOUT`]) for its RESULT,
    /// skipping anything else that arrives meanwhile (EVENTs); returns the RESULT, its frame's size in
    /// bytes and when the frame had been read (before it was decoded). An ERROR for the call fails.
    pub async fn call(
        &mut self,
        procedure: &str,
        args: Value,
        kwargs: Value,
    ) -> anyhow::Result<(Value, usize, Instant)> {
        let request = self.take_request_id();
        self.send(&json!([code::CALL, request, {}, procedure, args, kwargs]))
            .await?;
        let wait = async {
            loop {
                let frame = self
                    .ws
                    .next()
                    .await
                    .ok_or_else(|| anyhow!("connection closed"))?
                    .context("WebSocket read failed")?;
                let received = Instant::now();
                let bytes = match &frame {
                    Message::Text(text) => text.as_bytes(),
                    Message::Binary(bytes) => &bytes[..],
                    Message::Close(close) => bail!("connection closed by the gateway: {close:?}"),
                    _ => continue,
                };
                let message = self.serializer.decode(bytes)?;
                let kind = message.get(0).and_then(Value::as_u64);
                let about = |at: usize| message.get(at).and_then(Value::as_u64) == Some(request);
                match kind {
                    Some(code::RESULT) if about(1) => return Ok((message, bytes.len(), received)),
                    Some(code::ERROR) if about(2) => bail!("{procedure} failed: {message}"),
                    Some(code::ABORT) => bail!("session aborted: {message}"),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(STEP_TIMEOUT, wait)
            .await
            .with_context(|| {
                format!(
                    "no RESULT for {procedure} within {} s",
                    STEP_TIMEOUT.as_secs()
                )
            })?
    }

    fn take_request_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    /// Closes the WebSocket politely, giving up after a second.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close(None)).await;
    }

    /// The bare TCP stream. Only call this when nothing more is buffered (after a reply, before any
    /// event is published): bytes tungstenite already read would be lost.
    pub fn into_raw(self) -> TcpStream {
        self.ws.into_inner()
    }
}

/// Connects from `source`, joins and subscribes to `topic` with SUBSCRIBE.Options `options`.
pub async fn subscribed(
    target: &Target,
    serializer: Serializer,
    source: Option<Ipv4Addr>,
    topic: &str,
    options: Value,
) -> anyhow::Result<Connection> {
    let mut connection = Connection::connect(target, serializer, source, small_buffers()).await?;
    connection.join().await?;
    connection.subscribe_with(topic, options).await?;
    Ok(connection)
}
