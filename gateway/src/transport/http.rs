//! The HTTP front: one listener serving the WAMP WebSocket endpoint (`/ws`), the browser client
//! (`/switchboard.js`) and the health check (`/healthz`), with graceful shutdown that tells every
//! session GOODBYE before the process exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use super::{static_js, websocket};
use crate::router::Router;
use crate::wamp::codec::SUBPROTOCOLS;
use crate::wamp::Serializer;

/// Initial WebSocket read buffer per connection (tungstenite's default, 128 KiB, would dominate the
/// memory of an idle connection).
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// What every HTTP handler shares.
#[derive(Clone)]
struct AppState {
    router: Arc<Router>,
    shutdown: watch::Receiver<bool>,
    sessions: TaskTracker,
}

/// A bound gateway listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    router: Arc<Router>,
}

impl Server {
    /// Binds the listener at `addr`.
    pub async fn bind(addr: SocketAddr, router: Arc<Router>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server { listener, router })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` resolves, then stops accepting, sends GOODBYE `wamp.close.system_shutdown` to
    /// every session and waits up to `drain` for the sessions to close.
    pub async fn run(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
        drain: Duration,
    ) -> std::io::Result<()> {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shutdown_tx = Arc::new(shutdown_tx);
        let sessions = TaskTracker::new();
        let state = AppState {
            router: self.router,
            shutdown: shutdown_rx,
            sessions: sessions.clone(),
        };
        let app = axum::Router::new()
            .route("/ws", get(upgrade))
            .route("/healthz", get(healthz))
            .route("/switchboard.js", get(static_js::serve))
            .with_state(state);
        let signal = {
            let shutdown_tx = Arc::clone(&shutdown_tx);
            async move {
                stop.await;
                tracing::info!("shutting down: no new connections, closing sessions");
                let _ = shutdown_tx.send(true);
            }
        };
        // Small WAMP messages must not wait for the peer's delayed ACK (Nagle): events go out at once.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await?;
        sessions.close();
        if tokio::time::timeout(drain, sessions.wait()).await.is_err() {
            tracing::warn!(
                "sessions still open after {} ms; exiting anyway",
                drain.as_millis()
            );
        }
        Ok(())
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let ws = ws.protocols(SUBPROTOCOLS);
    let serializer = ws
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .and_then(Serializer::from_subprotocol);
    let Some(serializer) = serializer else {
        tracing::warn!("websocket refused: no supported WAMP subprotocol offered");
        let text = format!(
            "offer one of the WebSocket subprotocols {}\n",
            SUBPROTOCOLS.join(", ")
        );
        return (StatusCode::BAD_REQUEST, text).into_response();
    };
    let limits = state.router.limits;
    let frame_limit = websocket::frame_limit(limits.max_message_bytes);
    let AppState {
        router,
        shutdown,
        sessions,
    } = state;
    // Buffers sized for many mostly idle connections: the read buffer grows for large messages.
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(frame_limit.saturating_mul(2))
        .max_message_size(frame_limit)
        .max_frame_size(frame_limit)
        .on_upgrade(move |socket| {
            sessions.track_future(websocket::serve(socket, serializer, router, shutdown))
        })
}
