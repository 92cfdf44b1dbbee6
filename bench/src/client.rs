//! A minimal WAMP client over WebSocket or RawSocket: connect (optionally from a chosen 127.0.0.x source
//! address), join a realm, subscribe, publish, leave, and hand over the bare TCP stream for cheap frame
//! counting.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::WebSocketStream;

use crate::counter::close_frame;
use crate::rawsocket::{self, RawLink};
use crate::wire::{code, Serializer, Transport};

/// The realm every scenario joins.
pub const REALM: &str = "realm1";
/// How long one handshake step (connect, HELLO, SUBSCRIBE) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the gateway listens, checked to be a loopback address in 127.0.0.0/8.
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    addr: SocketAddr,
    transport: Transport,
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
            transport: Transport::Websocket,
        })
    }

    /// The same gateway reached over `transport` (RawSocket: the URL's host and port, its path unused).
    pub fn over(mut self, transport: Transport) -> Target {
        self.transport = transport;
        self
    }

    /// The transport connections to this target use.
    pub fn transport(&self) -> Transport {
        self.transport
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

/// The stream under a [`Connection`].
enum Link {
    Ws(Box<WebSocketStream<TcpStream>>),
    Raw(RawLink),
}

/// What a client sends before dropping a bare stream from [`Connection::into_raw`]: a WebSocket close
/// frame, or (RawSocket has no close frame) a GOODBYE message.
pub fn farewell(transport: Transport, serializer: Serializer) -> Vec<u8> {
    match transport {
        Transport::Websocket => close_frame().to_vec(),
        Transport::Rawsocket => {
            rawsocket::message_frame(&serializer.encode(&goodbye()).into_data())
        }
    }
}

/// A GOODBYE with reason `wamp.close.normal`.
fn goodbye() -> Value {
    json!([code::GOODBYE, {}, "wamp.close.normal"])
}

/// One WAMP session over a WebSocket or a RawSocket.
pub struct Connection {
    link: Link,
    /// The negotiated serializer.
    pub serializer: Serializer,
    next_request: u64,
}

impl Connection {
    /// Opens a WebSocket (with `serializer`'s subprotocol) or a RawSocket to `target`, as the target says,
    /// from `source` when given (`config` applies to WebSockets).
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
        if target.transport == Transport::Rawsocket {
            let link = tokio::time::timeout(STEP_TIMEOUT, RawLink::open(stream, serializer))
                .await
                .context("RawSocket handshake timed out")??;
            return Ok(Connection {
                link: Link::Raw(link),
                serializer,
                next_request: 1,
            });
        }
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
            link: Link::Ws(Box::new(ws)),
            serializer,
            next_request: 1,
        })
    }

    /// Queues a message without flushing.
    pub async fn feed(&mut self, message: &Value) -> anyhow::Result<()> {
        let frame = self.serializer.encode(message);
        match &mut self.link {
            Link::Ws(ws) => ws.feed(frame).await.context("WebSocket write failed"),
            Link::Raw(raw) => raw.feed(&frame.into_data()),
        }
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match &mut self.link {
            Link::Ws(ws) => ws.flush().await.context("WebSocket flush failed"),
            Link::Raw(raw) => raw.flush().await,
        }
    }

    /// The transport this connection uses.
    pub fn transport(&self) -> Transport {
        match self.link {
            Link::Ws(_) => Transport::Websocket,
            Link::Raw(_) => Transport::Rawsocket,
        }
    }

    /// The next data frame's payload (pings and pongs skipped); `None` once the gateway closed the
    /// connection (a WebSocket close frame or the end of the stream). Cancel-safe.
    pub async fn next_data(&mut self) -> anyhow::Result<Option<Bytes>> {
        match &mut self.link {
            Link::Ws(ws) => loop {
                let Some(frame) = ws.next().await else {
                    return Ok(None);
                };
                match frame.context("WebSocket read failed")? {
                    Message::Text(text) => return Ok(Some(text.into())),
                    Message::Binary(bytes) => return Ok(Some(bytes)),
                    Message::Close(_) => return Ok(None),
                    _ => {}
                }
            },
            Link::Raw(raw) => Ok(raw.next_message().await?.map(Bytes::from)),
        }
    }

    /// The WebSocket itself (`None` over RawSocket).
    pub fn into_websocket(self) -> Option<WebSocketStream<TcpStream>> {
        match self.link {
            Link::Ws(ws) => Some(*ws),
            Link::Raw(_) => None,
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        self.feed(message).await?;
        self.flush().await
    }

    /// The next WAMP message (pings and pongs skipped); an error once the socket closes.
    pub async fn recv(&mut self) -> anyhow::Result<Value> {
        let bytes = self
            .next_data()
            .await?
            .ok_or_else(|| anyhow!("connection closed by the gateway"))?;
        self.serializer.decode(&bytes)
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
                let bytes = self
                    .next_data()
                    .await?
                    .ok_or_else(|| anyhow!("connection closed by the gateway"))?;
                let received = Instant::now();
                let message = self.serializer.decode(&bytes)?;
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

    /// Closes politely (a WebSocket close frame; over RawSocket, GOODBYE and the end of the stream),
    /// giving up after a second.
    pub async fn close(mut self) {
        let closing = async {
            match &mut self.link {
                Link::Ws(ws) => {
                    let _ = (**ws).close(None).await;
                }
                Link::Raw(raw) => {
                    let _ = raw.feed(&self.serializer.encode(&goodbye()).into_data());
                    let _ = raw.flush().await;
                    raw.shutdown().await;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), closing).await;
    }

    /// Sends GOODBYE and waits (at most [`STEP_TIMEOUT`]) for the gateway's GOODBYE, skipping anything
    /// else (EVENTs), then closes the connection.
    pub async fn leave(mut self) -> anyhow::Result<()> {
        self.send(&goodbye()).await?;
        let wait = async {
            loop {
                let message = self.recv().await?;
                match message.get(0).and_then(Value::as_u64) {
                    Some(code::GOODBYE) => return anyhow::Ok(()),
                    Some(code::ABORT) => bail!("session aborted: {message}"),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(STEP_TIMEOUT, wait)
            .await
            .with_context(|| format!("no GOODBYE within {} s", STEP_TIMEOUT.as_secs()))??;
        self.close().await;
        Ok(())
    }

    /// The bare TCP stream. Only call this when nothing more is buffered (after a reply, before any
    /// event is published): bytes the WebSocket or RawSocket reader already read would be lost.
    pub fn into_raw(self) -> TcpStream {
        match self.link {
            Link::Ws(ws) => (*ws).into_inner(),
            Link::Raw(raw) => {
                debug_assert!(!raw.has_buffered(), "bytes read ahead would be lost");
                raw.into_inner()
            }
        }
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
