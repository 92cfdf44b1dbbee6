//! The HTTP front: one listener serving the WAMP WebSocket endpoint (`/ws`, and `/` for WebSocket
//! upgrades, where Crossbar serves WAMP, so that clients written against it connect unchanged), WAMP over
//! HTTP long-poll (`/lp`, [`super::longpoll`]), the browser client
//! (`/switchboard.js`), the health check (`/healthz`) and the operator metrics (`/metrics`), with graceful shutdown that tells every
//! session GOODBYE before the process exits, within a bounded grace period. Connection admission and
//! the header timeout live in [`super::accept`].

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::accept::{self, Admission, ConnectionLimits};
use super::longpoll::LongPoll;
use super::upgrade::{self, Upgrade};
use super::{static_js, websocket};
use crate::router::Router;
use crate::{telemetry, throttle};

/// What every HTTP handler shares.
#[derive(Clone)]
struct AppState {
    router: Arc<Router>,
    shutdown: watch::Receiver<bool>,
    sessions: TaskTracker,
}

/// Pause after an accept error that is not about one connection (typically out of file descriptors),
/// so that the accept loop does not spin while it lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A bound gateway listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    router: Arc<Router>,
    limits: ConnectionLimits,
}

impl Server {
    /// Binds the listener at `addr`, with the default [`ConnectionLimits`], and installs the metrics
    /// recorder if it is not yet installed.
    pub async fn bind(addr: SocketAddr, router: Arc<Router>) -> std::io::Result<Self> {
        telemetry::install();
        let listener = TcpListener::bind(addr).await?;
        Ok(Server {
            listener,
            router,
            limits: ConnectionLimits::default(),
        })
    }

    /// Applies `limits` (from `[gateway]`) instead of the defaults.
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` resolves, then stops accepting, sends GOODBYE `wamp.close.system_shutdown` to
    /// every session, lets connections finish the request in progress, and returns once everything has
    /// closed or `grace` has passed, whichever comes first: whatever clients do, the caller can exit
    /// within `grace` (connections still open are dropped with the runtime).
    pub async fn run(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> std::io::Result<()> {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let sessions = TaskTracker::new();
        let raw = accept::RawSocketContext {
            router: Arc::clone(&self.router),
            shutdown: shutdown_rx.clone(),
        };
        let admission = Admission::new(self.limits);
        let longpoll = LongPoll::new(
            Arc::clone(&self.router),
            admission.clone(),
            self.limits,
            shutdown_rx.clone(),
            sessions.clone(),
        );
        let state = AppState {
            router: self.router,
            shutdown: shutdown_rx,
            sessions: sessions.clone(),
        };
        let app = axum::Router::new()
            .route("/ws", get(upgrade))
            .route("/", get(root))
            .route("/healthz", get(healthz))
            .route("/switchboard.js", get(static_js::serve))
            .route("/metrics", get(telemetry::serve))
            .with_state(state)
            .merge(longpoll.routes());
        let builder = accept::http1_builder(self.limits);
        let connections = TaskTracker::new();
        let closing = CancellationToken::new();
        let listener = self.listener;
        let mut stop = pin!(stop);
        loop {
            let (tcp, peer) = tokio::select! {
                () = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) if accept::is_connection_error(&error) => continue,
                    Err(error) => {
                        if let Some(suppressed) = throttle::allow("accept_failed", "listener") {
                            tracing::warn!(%error, suppressed, "cannot accept connections");
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            // Small WAMP messages must not wait for the peer's delayed ACK (Nagle): events go out at once.
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
            match admission.admit() {
                Some(slot) => {
                    connections.spawn(accept::serve(
                        tcp,
                        slot,
                        peer,
                        app.clone(),
                        builder.clone(),
                        self.limits,
                        raw.clone(),
                        closing.clone(),
                    ));
                }
                None => admission.refuse(tcp, peer),
            }
        }
        // Closing the listener makes new clients fail at once instead of waiting in the backlog.
        drop(listener);
        tracing::info!("shutting down: no new connections, closing sessions");
        let _ = shutdown_tx.send(true);
        closing.cancel();
        connections.close();
        sessions.close();
        let everything_closed = async {
            connections.wait().await;
            sessions.wait().await;
        };
        if tokio::time::timeout(grace, everything_closed)
            .await
            .is_err()
        {
            tracing::warn!(
                connections = connections.len(),
                sessions = sessions.len(),
                "still open after the {} ms shutdown grace period; exiting anyway",
                grace.as_millis()
            );
        }
        Ok(())
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `/`: a WebSocket upgrade is served as at `/ws`; anything else is answered 404, as before `/` took
/// upgrades.
async fn root(state: State<AppState>, request: Request) -> Response {
    if upgrade::is_upgrade(request.headers()) {
        return upgrade(state, request).await;
    }
    axum::http::StatusCode::NOT_FOUND.into_response()
}

async fn upgrade(State(state): State<AppState>, mut request: Request) -> Response {
    let (response, subprotocol, pending) = match upgrade::negotiate(&mut request) {
        Upgrade::Refused(response) => return response,
        Upgrade::Accepted {
            response,
            subprotocol,
            pending,
        } => (response, subprotocol, pending),
    };
    let config = websocket::config(state.router.limits.max_message_bytes);
    let AppState {
        router,
        shutdown,
        sessions,
    } = state;
    tokio::spawn(sessions.track_future(async move {
        if let Some(socket) = upgrade::open(pending, config).await {
            websocket::serve(socket, subprotocol, router, shutdown).await;
        }
    }));
    response
}
