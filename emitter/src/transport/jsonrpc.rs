//! JSON-RPC 2.0 over HTTP (jsonrpsee's HTTP client): one `publish` for a single event, one
//! `publish_batch` for several. A tower layer signs the exact body bytes the client sends, with a fresh
//! timestamp and nonce on every attempt, so a retried request is never taken for a replay.
//! [`JsonRpcCalls`] uses the same signed client for the gateway's other methods (`last_publication`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use jsonrpsee_core::client::{ClientT, Error as ClientError};
use jsonrpsee_core::http_helpers::{Body as HttpBody, Request as HttpRequest};
use jsonrpsee_core::params::ObjectParams;
use jsonrpsee_http_client::transport::{Error as HttpTransportError, HttpBackend};
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder, RpcService, RpcServiceBuilder};
use serde_json::{Map, Value};
use tower::{Layer, Service};

use super::{Receipt, SendError};
use crate::event::Event;
use crate::signing::{Signer, SIGNATURE_HEADER};
use crate::EmitError;

/// Most events in one `publish_batch` call (the gateway accepts up to 1000).
pub const MAX_BATCH: usize = 500;

/// How long one HTTP request may take before it counts as failed (and is retried).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

type SignedClient = HttpClient<RpcService<SigningService<HttpBackend>>>;

/// The JSON-RPC transport.
pub struct JsonRpcTransport {
    client: SignedClient,
}

/// A JSON-RPC client for the gateway at `url` whose every request is signed with `signer`.
fn signed_client(url: &str, signer: Signer, timeout: Duration) -> Result<SignedClient, EmitError> {
    HttpClientBuilder::default()
        .request_timeout(timeout)
        .set_rpc_middleware(RpcServiceBuilder::new())
        .set_http_middleware(tower::ServiceBuilder::new().layer(SigningLayer { signer }))
        .build(url)
        .map_err(|e| EmitError::Setup {
            transport: "jsonrpc",
            reason: format!("{url}: {e}"),
        })
}

impl JsonRpcTransport {
    /// A client for the gateway at `url` (e.g. `http://127.0.0.1:8081`), signing with `signer`.
    pub fn new(url: &str, signer: Signer) -> Result<Self, EmitError> {
        let client = signed_client(url, signer, REQUEST_TIMEOUT)?;
        Ok(JsonRpcTransport { client })
    }

    /// Sends `events`: `publish` for one, `publish_batch` for more.
    pub async fn send(
        &mut self,
        events: &[&Event],
    ) -> Result<Vec<Result<Receipt, EmitError>>, SendError> {
        if let [event] = events {
            let params = match serde_json::to_value(event) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            };
            let result: Value = self
                .client
                .request("publish", params)
                .await
                .map_err(classify)?;
            return Ok(vec![Ok(receipt(&result))]);
        }
        let mut params = ObjectParams::new();
        params.insert("events", events).map_err(|e| {
            SendError::Fatal(EmitError::Setup {
                transport: "jsonrpc",
                reason: format!("events do not serialize: {e}"),
            })
        })?;
        let results: Vec<Value> = self
            .client
            .request("publish_batch", params)
            .await
            .map_err(classify)?;
        if results.len() != events.len() {
            return Err(SendError::Fatal(EmitError::Rejected {
                code: -32603,
                message: format!(
                    "publish_batch answered {} results for {} events",
                    results.len(),
                    events.len()
                ),
            }));
        }
        Ok(results
            .iter()
            .map(|result| match result.get("error") {
                Some(error) => Err(rejected(error)),
                None => Ok(receipt(result)),
            })
            .collect())
    }
}

/// The gateway's signed JSON-RPC methods other than publishing, called directly rather than through
/// the emitter's buffer (whose transport belongs to the background task): one request, one answer.
pub struct JsonRpcCalls {
    url: String,
    client: SignedClient,
}

impl std::fmt::Debug for JsonRpcCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonRpcCalls")
            .field("url", &self.url)
            .finish()
    }
}

impl JsonRpcCalls {
    /// A client for the gateway's JSON-RPC endpoint at `url`, signing like the transport does and
    /// waiting at most `timeout` for each answer.
    pub fn new(url: &str, signer: Signer, timeout: Duration) -> Result<Self, EmitError> {
        Ok(JsonRpcCalls {
            url: url.to_string(),
            client: signed_client(url, signer, timeout)?,
        })
    }

    /// `last_publication({"topic": topic}) -> {"publication": id | null}`: the id of the newest
    /// publication the gateway stores for `topic`, or `None` when it stores none.
    pub async fn last_publication(&self, topic: &str) -> Result<Option<u64>, EmitError> {
        let mut params = ObjectParams::new();
        params
            .insert("topic", topic)
            .map_err(|e| EmitError::Setup {
                transport: "jsonrpc",
                reason: format!("topic does not serialize: {e}"),
            })?;
        let answer: Value = self
            .client
            .request("last_publication", params)
            .await
            .map_err(|error| match classify(error) {
                SendError::Fatal(error) => error,
                SendError::Retry(reason) => EmitError::Unreachable {
                    url: self.url.clone(),
                    reason,
                },
            })?;
        match answer.get("publication") {
            Some(Value::Null) => Ok(None),
            Some(id) if id.is_u64() => Ok(id.as_u64()),
            _ => Err(EmitError::Rejected {
                code: -32700,
                message: format!(
                    "unexpected answer to last_publication from the gateway: {answer}"
                ),
            }),
        }
    }
}

fn receipt(result: &Value) -> Receipt {
    Receipt {
        publication: result.get("publication").and_then(Value::as_u64),
    }
}

fn rejected(error: &Value) -> EmitError {
    EmitError::Rejected {
        code: error
            .get("code")
            .and_then(Value::as_i64)
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or(-32603),
        message: error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string(),
    }
}

/// Network trouble is worth retrying; an answer from the gateway refusing the call is not.
fn classify(error: ClientError) -> SendError {
    match error {
        ClientError::Call(error) => SendError::Fatal(EmitError::Rejected {
            code: error.code(),
            message: error.message().to_string(),
        }),
        ClientError::ParseError(error) => SendError::Fatal(EmitError::Rejected {
            code: -32700,
            message: format!("unexpected answer from the gateway: {error}"),
        }),
        other => SendError::Retry(other.to_string()),
    }
}

/// Adds [`SigningService`] to the client's HTTP stack.
#[derive(Clone)]
struct SigningLayer {
    signer: Signer,
}

impl<S> Layer<S> for SigningLayer {
    type Service = SigningService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SigningService {
            inner,
            signer: self.signer.clone(),
        }
    }
}

/// Signs each outgoing request body into the `X-Switchboard-Signature` header.
#[derive(Clone)]
pub struct SigningService<S> {
    inner: S,
    signer: Signer,
}

impl<S> Service<HttpRequest> for SigningService<S>
where
    S: Service<HttpRequest, Error = HttpTransportError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = HttpTransportError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, HttpTransportError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let signer = self.signer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // The client built this body in memory, so reading it back cannot fail in practice.
            let bytes = body
                .collect()
                .await
                .map_err(|_| HttpTransportError::RequestTooLarge)?
                .to_bytes();
            let signature = signer.sign(&bytes);
            if let Ok(value) = http::HeaderValue::from_str(&signature) {
                parts.headers.insert(SIGNATURE_HEADER, value);
            }
            inner
                .call(HttpRequest::from_parts(
                    parts,
                    HttpBody::from(bytes.to_vec()),
                ))
                .await
        })
    }
}
