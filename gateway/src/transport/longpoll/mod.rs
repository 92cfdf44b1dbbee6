//! WAMP over HTTP long-poll (the WAMP spec's long-poll transport, as Autobahn|JS speaks it), for clients
//! that cannot open a WebSocket:
//!
//! - `POST /lp/open` with `{"protocols": [...]}` answers `{"protocol", "transport"}`, the transport id
//!   being 128 random bits in hex;
//! - `POST /lp/<id>/send`: the body is one WAMP message (several, each delimited, for `.batched`);
//! - `POST /lp/<id>/receive`: held until a message is queued or `longpoll_request_timeout_ms` passes;
//!   200 with one message (as many as fit `max_message_bytes` for `.batched`), or 204 with none. A newer
//!   `receive` on the same transport takes over: the older one is answered 204 at once;
//! - `POST /lp/<id>/close`: the session leaves.
//!
//! Each transport runs a session like a WebSocket's (see [`session`]), holds a connection slot under
//! `max_connections` until it ends, and is closed after `longpoll_session_timeout_ms` without a request.

mod session;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use self::session::{Delivery, Transport};
use super::accept::{Admission, ConnectionLimits};
use super::inbound::PAYLOAD_SIZE_EXCEEDED;
use crate::router::{Closing, Outbox, Router};
use crate::{telemetry, throttle};

/// Largest `open` body read: a list of protocol names.
const OPEN_BODY_LIMIT: usize = 16 * 1024;

/// What the long-poll endpoints share: the open transports and what a new one needs.
pub(crate) struct LongPoll {
    router: Arc<Router>,
    admission: Admission,
    limits: ConnectionLimits,
    shutdown: watch::Receiver<bool>,
    sessions: TaskTracker,
    transports: Mutex<HashMap<String, Arc<Transport>>>,
}

impl LongPoll {
    /// The long-poll endpoints of one server: new transports take slots from `admission` and run their
    /// sessions on `sessions`, which shutdown waits for.
    pub(crate) fn new(
        router: Arc<Router>,
        admission: Admission,
        limits: ConnectionLimits,
        shutdown: watch::Receiver<bool>,
        sessions: TaskTracker,
    ) -> Arc<Self> {
        Arc::new(LongPoll {
            router,
            admission,
            limits,
            shutdown,
            sessions,
            transports: Mutex::default(),
        })
    }

    /// The `/lp` routes, to merge into the HTTP front's router.
    pub(crate) fn routes(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route(
                "/lp/open",
                post(open).options(preflight).fallback(method_not_allowed),
            )
            .route(
                "/lp/{id}/{action}",
                post(act).options(preflight).fallback(method_not_allowed),
            )
            .with_state(self)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Transport>>> {
        self.transports.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn find(&self, id: &str) -> Option<Arc<Transport>> {
        self.table().get(id).cloned()
    }

    /// Drops a transport from the table (its session has ended).
    fn forget(&self, id: &str) {
        self.table().remove(id);
    }
}

/// A plain-text answer; long-poll answers are never cached.
fn answer(status: StatusCode, text: &str) -> Response {
    let mut response = (status, format!("{text}\n")).into_response();
    common_headers(&mut response);
    response
}

/// What every long-poll answer carries: never cached, and readable by a page on any origin (CORS). A page
/// served from the web app's origin talks to the gateway's origin, as over WebSocket, which browsers let
/// any origin open: the session's authentication (HELLO, tickets) is the gate, not the origin, and a
/// transport id is known only to the page that opened it.
fn common_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

/// The CORS preflight a browser sends before a POST whose content type is not "simple" (Autobahn|JS
/// sends `application/json`): POST with a `Content-Type` header is allowed from any origin.
async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    common_headers(&mut response);
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

/// Logs a refused request, rate-limited per kind.
fn refused(kind: &'static str, status: StatusCode, text: &str) -> Response {
    if let Some(suppressed) = throttle::allow("longpoll_refused", kind) {
        tracing::warn!(
            kind,
            status = status.as_u16(),
            suppressed,
            "long-poll request refused: {text}"
        );
    }
    answer(status, text)
}

async fn method_not_allowed() -> Response {
    let mut response = answer(
        StatusCode::METHOD_NOT_ALLOWED,
        "the long-poll transport takes POST requests only",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// Why a body was not read.
enum BodyError {
    TooLarge(u64),
    Failed(String),
    Slow,
}

/// Reads a request body of at most `limit` bytes within `timeout`; a declared length past the limit is
/// refused before anything is read.
async fn read_body(request: Request, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&length| length > limit as u64) {
        return Err(BodyError::TooLarge(length));
    }
    let body = request.into_body();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => {
            let inner = error.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                Err(BodyError::TooLarge(limit as u64 + 1))
            } else {
                Err(BodyError::Failed(inner.to_string()))
            }
        }
        Err(_) => Err(BodyError::Slow),
    }
}

fn body_refused(error: BodyError, limit: usize, what: &str) -> Response {
    match error {
        BodyError::TooLarge(length) => refused(
            "too_large",
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("{what} body of {length} bytes or more exceeds the limit of {limit} bytes"),
        ),
        BodyError::Failed(error) => refused(
            "body",
            StatusCode::BAD_REQUEST,
            &format!("{what} body could not be read: {error}"),
        ),
        BodyError::Slow => refused(
            "body_timeout",
            StatusCode::REQUEST_TIMEOUT,
            &format!("{what} body did not arrive in time"),
        ),
    }
}

/// `POST /lp/open`.
async fn open(State(longpoll): State<Arc<LongPoll>>, request: Request) -> Response {
    if *longpoll.shutdown.borrow() {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is shutting down",
        );
    }
    let timeout = longpoll.limits.longpoll_request_timeout;
    let body = match read_body(request, OPEN_BODY_LIMIT, timeout).await {
        Ok(body) => body,
        Err(error) => return body_refused(error, OPEN_BODY_LIMIT, "open request"),
    };
    let protocol = match wire::negotiate(&body) {
        Ok(protocol) => protocol,
        Err(wire::OpenRefused(text)) => return refused("open", StatusCode::BAD_REQUEST, &text),
    };
    let Some(slot) = longpoll.admission.admit() else {
        telemetry::connection_refused(telemetry::REFUSED_MAX_CONNECTIONS);
        return refused(
            "max_connections",
            StatusCode::SERVICE_UNAVAILABLE,
            "switchboard: too many connections, try again later",
        );
    };
    let id = wire::new_transport_id();
    let (outbox, receiver) = Outbox::new(protocol.serializer, longpoll.router.limits.queue);
    let (transport, rx) = Transport::new(protocol, Arc::new(outbox.over("longpoll")), receiver);
    let transport = Arc::new(transport);
    longpoll.table().insert(id.clone(), Arc::clone(&transport));
    tracing::debug!(protocol = %protocol.name(), "long-poll transport opened");
    let body = wire::opened(protocol, &id);
    longpoll
        .sessions
        .spawn(session::run(Arc::clone(&longpoll), id, transport, rx, slot));
    let mut response = (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response();
    common_headers(&mut response);
    response
}

/// `POST /lp/<id>/send|receive|close`.
async fn act(
    State(longpoll): State<Arc<LongPoll>>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path((id, action))) = path else {
        return refused("id", StatusCode::NOT_FOUND, "no such long-poll transport");
    };
    if !matches!(action.as_str(), "send" | "receive" | "close") {
        return answer(
            StatusCode::NOT_FOUND,
            "unknown long-poll request: use /lp/<transport>/send, receive or close",
        );
    }
    let transport = wire::is_transport_id(&id)
        .then(|| longpoll.find(&id))
        .flatten();
    let Some(transport) = transport else {
        return refused(
            "id",
            StatusCode::NOT_FOUND,
            "no such long-poll transport (unknown, expired or closed): open a new one",
        );
    };
    transport.touch();
    let limits = longpoll.limits;
    let max_message_bytes = longpoll.router.limits.max_message_bytes;
    match action.as_str() {
        "send" => {
            send(
                &transport,
                request,
                max_message_bytes,
                limits.longpoll_request_timeout,
            )
            .await
        }
        "receive" => {
            match transport
                .receive(limits.longpoll_request_timeout, max_message_bytes)
                .await
            {
                Delivery::Body(body) => {
                    let mut response = Response::new(Body::from(body));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(transport.protocol.content_type()),
                    );
                    common_headers(&mut response);
                    response
                }
                Delivery::Nothing => answer_empty(),
                Delivery::Ended => answer(
                    StatusCode::GONE,
                    "the session of this long-poll transport has ended",
                ),
            }
        }
        _ => {
            // Forgotten first, so a request arriving from now on gets 404; a `receive` that found the
            // transport before sees `client_closed` and is answered 204. Closing the outbox too ends the
            // session at once, even while its queue is backed up (the session loop then stops reading
            // the channel where the close is seen).
            longpoll.forget(&id);
            transport.client_closed.cancel();
            transport.outbox.close(Closing::Silent);
            answer_empty()
        }
    }
}

fn answer_empty() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    common_headers(&mut response);
    response
}

/// `send`: the body goes to the session task; an oversized body is refused unread (HTTP 413) and ends
/// the session with ABORT `wamp.error.payload_size_exceeded`, as on WebSocket.
async fn send(
    transport: &Transport,
    request: Request,
    max_message_bytes: usize,
    timeout: Duration,
) -> Response {
    let body = match read_body(request, max_message_bytes, timeout).await {
        Ok(body) => body,
        Err(error) => {
            if let BodyError::TooLarge(length) = error {
                transport.outbox.close(Closing::Abort {
                    reason: PAYLOAD_SIZE_EXCEEDED.into(),
                    message: format!(
                        "message of {length} bytes or more exceeds the limit of {max_message_bytes} bytes"
                    ),
                });
            }
            return body_refused(error, max_message_bytes, "send");
        }
    };
    if transport.is_closing() {
        // The session is over; its last words wait for a receive. Like a socket read away, the message
        // is dropped.
        return answer_empty();
    }
    match tokio::time::timeout(timeout, transport.inbound.send(body)).await {
        Ok(Ok(())) => answer_empty(),
        Ok(Err(_)) => answer(
            StatusCode::GONE,
            "the session of this long-poll transport has ended",
        ),
        Err(_) => refused(
            "busy",
            StatusCode::SERVICE_UNAVAILABLE,
            "the session is not reading: receive what it sent, then send again",
        ),
    }
}
