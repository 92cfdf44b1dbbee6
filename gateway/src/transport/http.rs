//! The HTTP front: one listener serving the WAMP WebSocket endpoint (`/ws`), the browser client
//! (`/switchboard.js`) and the health check (`/healthz`), with graceful shutdown that tells every
//! session GOODBYE before the process exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use super::upgrade::{self, Upgrade};
use super::{static_js, websocket};
use crate::router::Router;

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

async fn upgrade(State(state): State<AppState>, mut request: Request) -> Response {
    let (response, serializer, pending) = match upgrade::negotiate(&mut request) {
        Upgrade::Refused(response) => return response,
        Upgrade::Accepted {
            response,
            serializer,
            pending,
        } => (response, serializer, pending),
    };
    let config = websocket::config(state.router.limits.max_message_bytes);
    let AppState {
        router,
        shutdown,
        sessions,
    } = state;
    tokio::spawn(sessions.track_future(async move {
        if let Some(socket) = upgrade::open(pending, config).await {
            websocket::serve(socket, serializer, router, shutdown).await;
        }
    }));
    response
}
