//! The connection layer under the HTTP front: admission (at most `[gateway] max_connections` at once, HTTP
//! 503 past it), hyper's HTTP/1.1 server with a header read timeout (`header_timeout_ms`), and the
//! per-connection part of graceful shutdown. `axum::serve` offers neither a header timeout nor a
//! connection limit, and its graceful shutdown waits for every connection without a deadline, so one
//! client sending half a request could hold the whole process open.

use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use switchboard_config::GatewayConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::Service;

use super::rawsocket;
use crate::router::Router;
use crate::telemetry;

/// How long a refused connection is kept to deliver its 503 (and read what the client sent meanwhile).
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Most refused connections lingering at once; past it a refused connection is closed without a word, so a
/// flood of refusals cannot itself use up the file descriptors.
const MAX_LINGERING_REFUSALS: usize = 256;
/// Most bytes read from a refused connection before closing it.
const REFUSAL_READ_LIMIT: usize = 64 * 1024;
/// How long a refused connection may take to send its first byte, which tells a RawSocket client (answered
/// with the handshake error "maximum connection count reached") from an HTTP one (answered 503).
const REFUSAL_PEEK: Duration = Duration::from_millis(200);
/// The body of the 503 sent past `max_connections`.
const BUSY_TEXT: &str = "switchboard: too many connections, try again later\n";

/// The connection limits of `[gateway]`, as the HTTP front applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a complete request header; also the idle keep-alive limit.
    pub header_timeout: Duration,
    /// Most connections served at once (an open long-poll transport counts as one).
    pub max_connections: usize,
    /// How long a long-poll `receive` is held waiting for a message.
    pub longpoll_request_timeout: Duration,
    /// How long a long-poll transport may go without a request before it is closed.
    pub longpoll_session_timeout: Duration,
}

impl ConnectionLimits {
    /// The limits configured in `[gateway]`.
    pub fn from_config(gateway: &GatewayConfig) -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_millis(gateway.header_timeout_ms),
            max_connections: gateway.max_connections,
            longpoll_request_timeout: Duration::from_millis(gateway.longpoll_request_timeout_ms),
            longpoll_session_timeout: Duration::from_millis(gateway.longpoll_session_timeout_ms),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::from_config(&GatewayConfig::default())
    }
}

/// Decides, per accepted TCP connection (and per long-poll transport opened), whether it is served or
/// refused. Clones share the same slots.
#[derive(Clone)]
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    lingering: Arc<Semaphore>,
}

impl Admission {
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        let slots = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Admission {
            slots: Arc::new(Semaphore::new(slots)),
            lingering: Arc::new(Semaphore::new(MAX_LINGERING_REFUSALS)),
        }
    }

    /// A slot for a new connection, held until the connection (WebSocket included) closes, or for a new
    /// long-poll transport, held until its session ends; None when `max_connections` are open.
    pub(crate) fn admit(&self) -> Option<Slot> {
        let permit = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        metrics::gauge!(telemetry::CONNECTIONS).increment(1.0);
        Some(Slot { _permit: permit })
    }

    /// Answers `tcp` with HTTP 503 and closes it, in the background.
    pub(crate) fn refuse(&self, tcp: TcpStream, peer: SocketAddr) {
        telemetry::connection_refused(telemetry::REFUSED_MAX_CONNECTIONS);
        if let Some(suppressed) =
            crate::throttle::allow("connection_refused", &peer.ip().to_string())
        {
            tracing::warn!(%peer, suppressed, "connection refused: max_connections reached");
        }
        // Without a lingering slot the socket is simply dropped (closed).
        if let Ok(permit) = Arc::clone(&self.lingering).try_acquire_owned() {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REFUSAL_LINGER, answer_busy(tcp)).await;
                drop(permit);
            });
        }
    }
}

/// An admitted connection's place under `max_connections` (and in the connections gauge); freed on drop.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!(telemetry::CONNECTIONS).decrement(1.0);
    }
}

/// Writes the 503 before reading the request (allowed by HTTP/1.1), then reads what the client sent until
/// it closes: closing a socket with unread input sends RST, which can destroy the response in flight.
async fn answer_busy(mut tcp: TcpStream) -> io::Result<()> {
    let mut first = [0u8; 1];
    if let Ok(Ok(1)) = tokio::time::timeout(REFUSAL_PEEK, tcp.peek(&mut first)).await {
        if first[0] == rawsocket::MAGIC {
            tcp.write_all(&rawsocket::error_reply(rawsocket::ERROR_CONNECTIONS))
                .await?;
            tcp.shutdown().await?;
            return drain_refused(&mut tcp).await;
        }
    }
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BUSY_TEXT}",
        BUSY_TEXT.len()
    );
    tcp.write_all(response.as_bytes()).await?;
    tcp.shutdown().await?;
    drain_refused(&mut tcp).await
}

/// Reads what a refused client sends until it closes, at most [`REFUSAL_READ_LIMIT`] bytes.
async fn drain_refused(tcp: &mut TcpStream) -> io::Result<()> {
    let mut sink = [0u8; 4096];
    let mut read = 0;
    while read < REFUSAL_READ_LIMIT {
        match tcp.read(&mut sink).await? {
            0 => break,
            n => read += n,
        }
    }
    Ok(())
}

/// hyper's HTTP/1.1 server configured with the header timeout.
pub(crate) fn http1_builder(limits: ConnectionLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
}

/// What a RawSocket connection on the HTTP port needs: the router its sessions join and the gateway's
/// shutdown signal (GOODBYE to every session).
#[derive(Clone)]
pub(crate) struct RawSocketContext {
    pub(crate) router: Arc<Router>,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Serves one admitted connection: its first byte (awaited within the header timeout) tells a RawSocket
/// client ([`rawsocket::MAGIC`]), handed to [`rawsocket::serve`] with its slot, from an HTTP one, served
/// by [`serve_http`].
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    tcp: TcpStream,
    slot: Slot,
    peer: SocketAddr,
    app: axum::Router,
    builder: http1::Builder,
    limits: ConnectionLimits,
    raw: RawSocketContext,
    stop: CancellationToken,
) {
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        peeked = tokio::time::timeout(limits.header_timeout, tcp.peek(&mut first)) => peeked,
        () = stop.cancelled() => return,
    };
    match peeked {
        Ok(Ok(1)) if first[0] == rawsocket::MAGIC => {
            rawsocket::serve(tcp, raw.router, raw.shutdown, limits.header_timeout).await;
            drop(slot);
        }
        Ok(Ok(0) | Err(_)) => {}
        Err(_) => {
            telemetry::connection_refused(telemetry::REFUSED_HEADER_TIMEOUT);
            if let Some(suppressed) =
                crate::throttle::allow("header_timeout", &peer.ip().to_string())
            {
                tracing::warn!(%peer, suppressed, "connection closed: nothing received in time");
            }
        }
        Ok(Ok(_)) => serve_http(tcp, slot, peer, app, builder, stop).await,
    }
}

/// Serves one admitted connection with `app` until it closes, upgrades to a WebSocket (whose task then
/// owns the socket and the slot) or `stop` fires; on `stop` the connection finishes the request in
/// progress and closes. A connection that never completes its request is ended by the header timeout,
/// or by the process exiting after the shutdown grace period.
async fn serve_http(
    tcp: TcpStream,
    slot: Slot,
    peer: SocketAddr,
    app: axum::Router,
    builder: http1::Builder,
    stop: CancellationToken,
) {
    // Whether a request arrived: a header timeout before the first request is a refused client, after
    // it an idle keep-alive connection being closed.
    let served = Arc::new(AtomicBool::new(false));
    let service = {
        let served = Arc::clone(&served);
        hyper::service::service_fn(move |request: Request<Incoming>| {
            served.store(true, Ordering::Relaxed);
            let mut app = app.clone();
            async move {
                std::future::poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(&mut app, cx))
                    .await?;
                app.call(request).await
            }
        })
    };
    let io = TokioIo::new(Counted {
        _slot: slot,
        inner: tcp,
    });
    let mut connection = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut stopping = pin!(stop.cancelled());
    let mut stopped = false;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            // Once only: a finished `cancelled()` is ready again at every poll.
            () = &mut stopping, if !stopped => {
                stopped = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    };
    match result {
        Ok(()) => {}
        Err(error) if error.is_timeout() && !served.load(Ordering::Relaxed) => {
            telemetry::connection_refused(telemetry::REFUSED_HEADER_TIMEOUT);
            if let Some(suppressed) =
                crate::throttle::allow("header_timeout", &peer.ip().to_string())
            {
                tracing::warn!(%peer, suppressed, "connection closed: no complete request header in time");
            }
        }
        Err(error) => tracing::debug!(%peer, %error, "connection ended with an error"),
    }
}

/// A connection's socket together with its slot: the slot is freed when the socket is dropped, which
/// for a WebSocket is when the session ends, not when the HTTP upgrade completes.
struct Counted<T> {
    // Declared (so dropped) first: the slot is free before the client can see the connection close.
    _slot: Slot,
    inner: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Whether an accept error concerns only the one connection (accept again at once) rather than the
/// process (out of file descriptors: back off before trying again).
pub(crate) fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
