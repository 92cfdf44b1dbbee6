//! HTTP middleware in front of the JSON-RPC server: authenticates every request before its body is
//! parsed. In order:
//!
//! 1. a `Content-Length` over `max_body_bytes` is answered 413 unread;
//! 2. a missing, malformed or stale `X-Switchboard-Signature` is answered `-32001` after the body is
//!    read and dropped chunk by chunk (nothing is kept, so the client gets its answer cleanly);
//! 3. the body is read (at most `max_body_bytes`, else 413) and its MAC checked over exactly those
//!    bytes; a bad MAC or a replayed nonce is answered `-32001`, the body never parsed.
//!
//! Anyone can forge a fresh-looking header, so step 3 must read bodies it will refuse. What all
//! requests being read or served may hold at once is bounded by [`BUFFERED_BODIES`] maximal bodies:
//! each request reserves budget for the bytes it has actually sent, as they arrive (a client that
//! declares a large body and sends nothing holds nothing), and is answered 503 (the emitter retries)
//! when the budget is spent. A body must arrive within `[ingest.jsonrpc] body_timeout_ms` (408
//! otherwise), so a client sending slowly cannot hold its share, or its connection, for long.
//!
//! The `-32001` answers carry `"id": null`, since the request was not read as JSON. Only authenticated
//! bodies reach jsonrpsee, with the outcome as a request extension the methods check again. For those,
//! a warning is logged for what the server will refuse without calling a method (not JSON, unknown
//! method), read with a parse that skips the params. Warnings go through [`throttle::allow`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use serde::de::IgnoredAny;
use serde::Deserialize;
use switchboard_wire::signing::{SignatureError, Verifier, SIGNATURE_HEADER};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use super::errors::SIGNATURE_REJECTED;
use super::methods::METHODS;
use crate::throttle;

/// How many bodies of `max_body_bytes` the requests in progress may hold at once, all together.
pub const BUFFERED_BODIES: usize = 8;

/// The signature check's outcome for one HTTP request, read by every method of that request.
#[derive(Debug, Clone)]
pub struct SignatureCheck(pub Result<(), SignatureError>);

/// Adds [`SignatureService`] around the JSON-RPC server.
#[derive(Debug, Clone)]
pub struct SignatureLayer {
    verifier: Arc<Verifier>,
    max_body: usize,
    body_timeout: Duration,
    budget: Arc<Semaphore>,
}

impl SignatureLayer {
    /// Checks signatures with `verifier`; bodies over `max_body` bytes are refused unread, at most
    /// [`BUFFERED_BODIES`] times `max_body` bytes of bodies are held at once, and a body must arrive
    /// within `body_timeout`.
    pub fn new(verifier: Arc<Verifier>, max_body: usize, body_timeout: Duration) -> Self {
        let budget = kib(max_body).saturating_mul(BUFFERED_BODIES as u32);
        SignatureLayer {
            verifier,
            max_body,
            body_timeout,
            budget: Arc::new(Semaphore::new(budget as usize)),
        }
    }
}

/// `bytes` in budget units (KiB, rounded up; the semaphore counts in u32).
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

impl<S> Layer<S> for SignatureLayer {
    type Service = SignatureService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignatureService {
            inner,
            verifier: Arc::clone(&self.verifier),
            max_body: self.max_body,
            body_timeout: self.body_timeout,
            budget: Arc::clone(&self.budget),
        }
    }
}

/// The middleware service; see the module documentation.
#[derive(Debug, Clone)]
pub struct SignatureService<S> {
    inner: S,
    verifier: Arc<Verifier>,
    max_body: usize,
    body_timeout: Duration,
    budget: Arc<Semaphore>,
}

impl<S, B> Service<HttpRequest<B>> for SignatureService<S>
where
    S: Service<HttpRequest, Response = HttpResponse, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        // The usual tower dance: use the service that was polled ready, leave a clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = Arc::clone(&self.verifier);
        let max_body = self.max_body;
        let body_timeout = self.body_timeout;
        let budget = Arc::clone(&self.budget);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let declared = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|length| length > max_body as u64) {
                return Ok(unreadable(BodyFault::TooLarge, max_body));
            }
            let header = parts
                .headers
                .get(SIGNATURE_HEADER)
                .map(|value| value.to_str().unwrap_or("<not ASCII>"));
            if let Err(error) = verifier.check_header(header) {
                let drained = tokio::time::timeout(body_timeout, drain(body, max_body)).await;
                match drained {
                    Ok(Ok(())) => return Ok(unsigned(&error)),
                    Ok(Err(fault)) => return Ok(unreadable(fault, max_body)),
                    Err(_) => return Ok(unreadable(BodyFault::TimedOut, max_body)),
                }
            }
            // Held until the answer is ready: the body, and for authenticated ones their parse.
            let read = tokio::time::timeout(body_timeout, read_reserved(body, max_body, &budget));
            let (bytes, _reserved) = match read.await {
                Ok(Ok(read)) => read,
                Ok(Err(BodyFault::Busy)) => return Ok(busy()),
                Ok(Err(fault)) => return Ok(unreadable(fault, max_body)),
                Err(_) => return Ok(unreadable(BodyFault::TimedOut, max_body)),
            };
            if let Err(error) = verifier.verify(header, &bytes) {
                return Ok(unsigned(&error));
            }
            if parts.method == http::Method::POST {
                warn_if_refused(&bytes);
            }
            let mut request = HttpRequest::from_parts(parts, HttpBody::from(bytes.to_vec()));
            request
                .extensions_mut()
                .insert(SignatureCheck(Ok::<(), SignatureError>(())));
            inner.call(request).await
        })
    }
}

/// Why a request body was not read to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFault {
    TooLarge,
    Unreadable,
    /// The budget of bodies in progress is spent.
    Busy,
    /// Not all there within `body_timeout_ms`.
    TimedOut,
}

/// Reads `body` (at most `max_body` bytes), reserving budget for its bytes as they arrive; returns them
/// with the reservation, which the caller holds until its answer is ready.
async fn read_reserved<B>(
    body: B,
    max_body: usize,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyFault>
where
    B: http_body::Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut bytes = BytesMut::new();
    let mut reserved: Option<OwnedSemaphorePermit> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyFault::Unreadable)?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let total = bytes.len().saturating_add(data.len());
        if total > max_body {
            return Err(BodyFault::TooLarge);
        }
        let held = reserved
            .as_ref()
            .map_or(0, |permit| permit.num_permits() as u32);
        let more = kib(total).saturating_sub(held);
        if more > 0 {
            let permit = Arc::clone(budget)
                .try_acquire_many_owned(more)
                .map_err(|_| BodyFault::Busy)?;
            match &mut reserved {
                Some(held) => held.merge(permit),
                None => reserved = Some(permit),
            }
        }
        bytes.extend_from_slice(data);
    }
    Ok((bytes.freeze(), reserved))
}

/// Reads and drops `body`, at most `max_body` bytes of it.
async fn drain<B>(body: B, max_body: usize) -> Result<(), BodyFault>
where
    B: http_body::Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyFault::Unreadable)?;
        if let Some(data) = frame.data_ref() {
            seen = seen.saturating_add(data.len());
            if seen > max_body {
                return Err(BodyFault::TooLarge);
            }
        }
    }
    Ok(())
}

fn json_response(status: http::StatusCode, body: serde_json::Value) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Counts a refused request and logs it, at most once per reason per throttle interval.
fn refused(reason: &'static str, message: &str) {
    metrics::counter!("switchboard_ingest_refused_total", "transport" => "jsonrpc", "reason" => reason)
        .increment(1);
    if let Some(suppressed) = throttle::allow("jsonrpc_refused", reason) {
        tracing::warn!(
            which = reason,
            suppressed,
            "JSON-RPC request refused: {message}"
        );
    }
}

/// `-32001` (HTTP 200, as every JSON-RPC error) saying which signature check failed.
fn unsigned(error: &SignatureError) -> HttpResponse {
    refused(error.which(), &format!("bad signature: {error}"));
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": {"code": SIGNATURE_REJECTED, "message": error.to_string(), "data": {"reason": error.which()}},
        "id": null,
    });
    json_response(http::StatusCode::OK, body)
}

/// HTTP 503 when the bodies in progress hold the whole budget; the client should retry.
fn busy() -> HttpResponse {
    refused("busy", "the bodies being read hold the whole budget (503)");
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": {"code": -32603, "message": "busy: too many request bodies in progress, retry"},
        "id": null,
    });
    let mut response = json_response(http::StatusCode::SERVICE_UNAVAILABLE, body);
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

/// HTTP 413 (or 400) with a JSON-RPC error body, for bodies that were not read.
fn unreadable(fault: BodyFault, max_body: usize) -> HttpResponse {
    let (status, reason, message) = match fault {
        BodyFault::TooLarge => (
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request body exceeds {max_body} bytes"),
        ),
        BodyFault::Unreadable | BodyFault::Busy => (
            http::StatusCode::BAD_REQUEST,
            "unreadable",
            "request body could not be read".to_string(),
        ),
        BodyFault::TimedOut => (
            http::StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "request body not complete within the body timeout".to_string(),
        ),
    };
    refused(reason, &message);
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": message},
        "id": null,
    });
    json_response(status, body)
}

/// The parts of a JSON-RPC call the warnings need; everything else (the params) is skipped, not built.
#[derive(Deserialize)]
struct CallHead {
    jsonrpc: Option<String>,
    method: Option<String>,
}

/// Logs what the JSON-RPC server will answer with a standard error without calling any method.
fn warn_if_refused(body: &[u8]) {
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let calls = if batch {
        serde_json::from_slice::<Vec<CallHead>>(body)
    } else {
        serde_json::from_slice::<CallHead>(body).map(|call| vec![call])
    };
    match calls {
        Err(_) if serde_json::from_slice::<IgnoredAny>(body).is_ok() => {
            tracing::warn!("JSON-RPC call refused: not a JSON-RPC 2.0 request object (-32600)")
        }
        Err(error) => {
            tracing::warn!(%error, "JSON-RPC request refused: body is not JSON (-32700)")
        }
        Ok(calls) if batch && calls.is_empty() => {
            tracing::warn!("JSON-RPC request refused: empty batch (-32600)")
        }
        Ok(calls) if calls.len() > super::MAX_BATCH_CALLS as usize => {
            tracing::warn!(
                calls = calls.len(),
                limit = super::MAX_BATCH_CALLS,
                "JSON-RPC request refused: batch too large (-32010)"
            )
        }
        Ok(calls) => calls.iter().for_each(warn_if_bad_call),
    }
}

fn warn_if_bad_call(call: &CallHead) {
    let method = call.method.as_deref();
    if call.jsonrpc.as_deref() != Some("2.0") || method.is_none() {
        tracing::warn!("JSON-RPC call refused: not a JSON-RPC 2.0 request object (-32600)");
    } else if let Some(method) = method.filter(|m| !METHODS.contains(m)) {
        tracing::warn!(method, "JSON-RPC call refused: no such method (-32601)");
    }
}
