//! HTTP middleware in front of the JSON-RPC server: reads the raw body (bounded), checks the
//! `X-Switchboard-Signature` header over exactly those bytes, and hands the outcome to the methods as a
//! request extension, so each call can answer `-32001` with its own id. It also logs a warning for
//! bodies the server will refuse (not JSON, not JSON-RPC, unknown method), since those never reach a
//! method that could log them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use serde_json::Value;
use switchboard_emitter::signing::{SignatureError, Verifier, SIGNATURE_HEADER};
use tower::{Layer, Service};

use super::methods::METHODS;

/// The signature check's outcome for one HTTP request, read by every method of that request.
#[derive(Debug, Clone)]
pub struct SignatureCheck(pub Result<(), SignatureError>);

/// Adds [`SignatureService`] around the JSON-RPC server.
#[derive(Debug, Clone)]
pub struct SignatureLayer {
    verifier: Arc<Verifier>,
    max_body: usize,
}

impl SignatureLayer {
    /// Checks signatures with `verifier`; bodies over `max_body` bytes are refused unread.
    pub fn new(verifier: Arc<Verifier>, max_body: usize) -> Self {
        SignatureLayer { verifier, max_body }
    }
}

impl<S> Layer<S> for SignatureLayer {
    type Service = SignatureService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignatureService {
            inner,
            verifier: Arc::clone(&self.verifier),
            max_body: self.max_body,
        }
    }
}

/// The middleware service; see the module documentation.
#[derive(Debug, Clone)]
pub struct SignatureService<S> {
    inner: S,
    verifier: Arc<Verifier>,
    max_body: usize,
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
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match Limited::new(body, max_body).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    let too_large = error.is::<http_body_util::LengthLimitError>();
                    tracing::warn!(%error, too_large, "JSON-RPC request refused: body unreadable");
                    return Ok(refusal(too_large, max_body));
                }
            };
            let header = parts
                .headers
                .get(SIGNATURE_HEADER)
                .map(|value| value.to_str().unwrap_or("<not ASCII>"));
            let check = verifier.verify(header, &bytes);
            if let Err(error) = &check {
                tracing::warn!(which = error.which(), %error, "JSON-RPC request refused: bad signature");
            }
            if parts.method == http::Method::POST {
                warn_if_refused(&bytes);
            }
            let mut request = HttpRequest::from_parts(parts, HttpBody::from(bytes.to_vec()));
            request.extensions_mut().insert(SignatureCheck(check));
            inner.call(request).await
        })
    }
}

/// HTTP 413 (or 400) with a JSON-RPC error body, for bodies that could not be read.
fn refusal(too_large: bool, max_body: usize) -> HttpResponse {
    let (status, message) = if too_large {
        (
            http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds {max_body} bytes"),
        )
    } else {
        (
            http::StatusCode::BAD_REQUEST,
            "request body could not be read".to_string(),
        )
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": message},
        "id": null,
    });
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Logs what the JSON-RPC server will answer with a standard error without calling any method.
fn warn_if_refused(body: &[u8]) {
    match serde_json::from_slice::<Value>(body) {
        Err(error) => {
            tracing::warn!(%error, "JSON-RPC request refused: body is not JSON (-32700)")
        }
        Ok(Value::Array(calls)) if calls.is_empty() => {
            tracing::warn!("JSON-RPC request refused: empty batch (-32600)")
        }
        Ok(Value::Array(calls)) if calls.len() > super::MAX_BATCH_CALLS as usize => {
            tracing::warn!(
                calls = calls.len(),
                limit = super::MAX_BATCH_CALLS,
                "JSON-RPC request refused: batch too large (-32010)"
            )
        }
        Ok(Value::Array(calls)) => calls.iter().for_each(warn_if_bad_call),
        Ok(call) => warn_if_bad_call(&call),
    }
}

fn warn_if_bad_call(call: &Value) {
    let method = call.get("method").and_then(Value::as_str);
    if call.get("jsonrpc").and_then(Value::as_str) != Some("2.0") || method.is_none() {
        tracing::warn!("JSON-RPC call refused: not a JSON-RPC 2.0 request object (-32600)");
    } else if let Some(method) = method.filter(|m| !METHODS.contains(m)) {
        tracing::warn!(method, "JSON-RPC call refused: no such method (-32601)");
    }
}
