//! The emitter: what web-app code holds to publish events. `emit` validates the event, puts it in a
//! bounded buffer and waits for the gateway's confirmation; one background task drains the buffer in
//! batches through the configured transport, retrying while the gateway is unreachable. A full buffer
//! is an immediate, explicit error: memory stays bounded and nothing is dropped silently.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use switchboard_config::{Config, EmitterTransport};
use switchboard_wire::uri::{self, MatchPolicy};
use tokio::sync::{mpsc, oneshot, watch};

use crate::event::{Event, EventError};
use crate::model::{ModelChange, DEFAULT_MODEL_PREFIX};
use crate::signing::Signer;
use crate::ticket::TicketKey;
#[cfg(feature = "amqp")]
use crate::transport::amqp::AmqpTransport;
#[cfg(feature = "jsonrpc")]
use crate::transport::jsonrpc::{JsonRpcCalls, JsonRpcTransport};
#[cfg(feature = "zmq")]
use crate::transport::zmq::ZmqTransport;
use crate::transport::{Receipt, Transport};
use crate::worker::{run, Job, LastError};
use crate::EmitError;

/// Events an emitter buffers by default while waiting to send them.
pub const DEFAULT_BUFFER: usize = 10_000;
/// How long `emit` waits for the gateway's confirmation by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where an emitter sends: the transport and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// JSON-RPC over HTTP at this URL.
    JsonRpc(String),
    /// ZeroMQ PUSH to this endpoint.
    Zmq(String),
    /// AMQP to the broker at `url`, exchange `exchange`, for the gateway's queue `queue`.
    Amqp {
        /// Broker URL.
        url: String,
        /// Topic exchange.
        exchange: String,
        /// The gateway's queue (declared with its dead-letter queue).
        queue: String,
    },
}

/// Builds an [`Emitter`]: target, secret, buffer size, timeout and model-topic prefix.
#[derive(Debug, Clone)]
pub struct EmitterBuilder {
    target: Option<Target>,
    secret: Option<String>,
    buffer: usize,
    timeout: Duration,
    model_prefix: String,
    auto_id: bool,
    jsonrpc_endpoint: Option<String>,
}

impl Default for EmitterBuilder {
    fn default() -> Self {
        EmitterBuilder {
            target: None,
            secret: None,
            buffer: DEFAULT_BUFFER,
            timeout: DEFAULT_TIMEOUT,
            model_prefix: DEFAULT_MODEL_PREFIX.to_string(),
            auto_id: true,
            jsonrpc_endpoint: None,
        }
    }
}

impl EmitterBuilder {
    /// A builder set from the shared configuration: `[emitter].transport`, the address of that
    /// transport's `[ingest.*]` section and the `[security]` secret. With another transport than
    /// JSON-RPC, an `[ingest.jsonrpc]` section still gives the endpoint of
    /// [`Emitter::last_publication`].
    pub fn from_config(config: &Config) -> Result<Self, EmitError> {
        let secret = config
            .security
            .resolve_secret()?
            .ok_or(EmitError::NoSecret)?;
        let target = match config.emitter.transport {
            EmitterTransport::Jsonrpc => {
                let jsonrpc = config
                    .ingest
                    .jsonrpc
                    .as_ref()
                    .ok_or(EmitError::NoIngestSection {
                        transport: "jsonrpc",
                    })?;
                Target::JsonRpc(format!("http://{}", jsonrpc.listen))
            }
            EmitterTransport::Zmq => {
                let zmq = config
                    .ingest
                    .zmq
                    .as_ref()
                    .ok_or(EmitError::NoIngestSection { transport: "zmq" })?;
                Target::Zmq(zmq.endpoint.clone())
            }
            EmitterTransport::Amqp => {
                let amqp = config
                    .ingest
                    .amqp
                    .as_ref()
                    .ok_or(EmitError::NoIngestSection { transport: "amqp" })?;
                Target::Amqp {
                    url: amqp.url.clone(),
                    exchange: amqp.exchange.clone(),
                    queue: amqp.queue.clone(),
                }
            }
        };
        let mut builder = EmitterBuilder::default().target(target).secret(secret);
        if let Some(jsonrpc) = &config.ingest.jsonrpc {
            builder = builder.jsonrpc_endpoint(format!("http://{}", jsonrpc.listen));
        }
        Ok(builder)
    }

    /// Sends to `target`.
    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// Sends over JSON-RPC to `url` (e.g. `http://127.0.0.1:8081`).
    pub fn jsonrpc(self, url: impl Into<String>) -> Self {
        self.target(Target::JsonRpc(url.into()))
    }

    /// Sends over ZeroMQ PUSH to `endpoint` (e.g. `tcp://127.0.0.1:5560`).
    pub fn zmq(self, endpoint: impl Into<String>) -> Self {
        self.target(Target::Zmq(endpoint.into()))
    }

    /// Sends over AMQP to the broker at `url`, exchange `exchange`, for the gateway's queue `queue`.
    pub fn amqp(
        self,
        url: impl Into<String>,
        exchange: impl Into<String>,
        queue: impl Into<String>,
    ) -> Self {
        self.target(Target::Amqp {
            url: url.into(),
            exchange: exchange.into(),
            queue: queue.into(),
        })
    }

    /// The gateway's JSON-RPC URL for calls other than publishing ([`Emitter::last_publication`]) when
    /// events go over ZeroMQ or AMQP; with a JSON-RPC target, the target's URL serves and this is
    /// ignored.
    pub fn jsonrpc_endpoint(mut self, url: impl Into<String>) -> Self {
        self.jsonrpc_endpoint = Some(url.into());
        self
    }

    /// Signs with `secret` (the gateway's `[security]` secret).
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Buffers at most `events` events waiting to be sent (at least 1).
    pub fn buffer(mut self, events: usize) -> Self {
        self.buffer = events.max(1);
        self
    }

    /// Waits at most `timeout` for the gateway to confirm an event.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether events without an idempotency key get a random one (default: yes), so that the gateway
    /// drops the duplicates a retry can cause (a JSON-RPC answer lost after the gateway published, an
    /// AMQP confirm lost after RabbitMQ stored the event).
    pub fn auto_id(mut self, auto_id: bool) -> Self {
        self.auto_id = auto_id;
        self
    }

    /// Puts model-change events under `prefix` instead of `models.`.
    pub fn model_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.model_prefix = prefix.into();
        self
    }

    /// Builds the emitter and starts its background task; must run inside a tokio runtime.
    pub fn build(self) -> Result<Emitter, EmitError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| EmitError::NoRuntime)?;
        let secret = self.secret.ok_or(EmitError::NoSecret)?;
        let signer = Signer::new(&secret);
        let tickets = TicketKey::new(&secret);
        let jsonrpc_endpoint = match &self.target {
            Some(Target::JsonRpc(url)) => Some(url.clone()),
            _ => self.jsonrpc_endpoint,
        };
        #[cfg(feature = "jsonrpc")]
        let calls = match jsonrpc_endpoint {
            Some(url) => Some(Arc::new(JsonRpcCalls::new(
                &url,
                signer.clone(),
                self.timeout,
            )?)),
            None => None,
        };
        #[cfg(not(feature = "jsonrpc"))]
        let has_jsonrpc_endpoint = jsonrpc_endpoint.is_some();
        let transport = match self.target {
            #[cfg(feature = "jsonrpc")]
            Some(Target::JsonRpc(url)) => Transport::JsonRpc(JsonRpcTransport::new(&url, signer)?),
            #[cfg(feature = "zmq")]
            Some(Target::Zmq(endpoint)) => Transport::Zmq(ZmqTransport::new(&endpoint, signer)?),
            #[cfg(feature = "amqp")]
            Some(Target::Amqp {
                url,
                exchange,
                queue,
            }) => Transport::Amqp(Box::new(AmqpTransport::new(
                &url, &exchange, &queue, signer,
            ))),
            #[cfg(not(feature = "jsonrpc"))]
            Some(Target::JsonRpc(_)) => return Err(not_built("jsonrpc")),
            #[cfg(not(feature = "zmq"))]
            Some(Target::Zmq(_)) => return Err(not_built("zmq")),
            #[cfg(not(feature = "amqp"))]
            Some(Target::Amqp { .. }) => return Err(not_built("amqp")),
            None => {
                return Err(EmitError::Setup {
                    transport: "none",
                    reason: "no target set (EmitterBuilder::jsonrpc, or from_config)".into(),
                })
            }
        };
        let (jobs, receiver) = mpsc::channel(self.buffer);
        let last_error = LastError::default();
        let last_error_worker = last_error.clone();
        let (closed_tx, closed) = watch::channel(false);
        runtime.spawn(async move {
            run(transport, receiver, last_error_worker).await;
            let _ = closed_tx.send(true);
        });
        Ok(Emitter {
            jobs,
            closed,
            last_error,
            capacity: self.buffer,
            timeout: self.timeout,
            model_prefix: Arc::from(self.model_prefix),
            auto_id: self.auto_id,
            tickets,
            #[cfg(feature = "jsonrpc")]
            calls,
            #[cfg(not(feature = "jsonrpc"))]
            has_jsonrpc_endpoint,
        })
    }
}

/// The error for a target whose transport feature this build left out.
#[cfg(not(all(feature = "jsonrpc", feature = "zmq", feature = "amqp")))]
fn not_built(transport: &'static str) -> EmitError {
    EmitError::Setup {
        transport,
        reason: format!("switchboard-emitter was built without its `{transport}` feature"),
    }
}

/// Publishes events to the gateway. Cheap to clone; clones share one buffer and background task, which
/// ends once every clone is dropped and the buffer is empty.
#[derive(Debug, Clone)]
pub struct Emitter {
    jobs: mpsc::Sender<Job>,
    /// Becomes true once the background task has sent everything and closed the transport.
    closed: watch::Receiver<bool>,
    last_error: LastError,
    capacity: usize,
    timeout: Duration,
    model_prefix: Arc<str>,
    auto_id: bool,
    tickets: TicketKey,
    /// The gateway's JSON-RPC methods other than publishing, when an endpoint is known.
    #[cfg(feature = "jsonrpc")]
    calls: Option<Arc<JsonRpcCalls>>,
    /// Whether an endpoint was given (this build cannot call it).
    #[cfg(not(feature = "jsonrpc"))]
    has_jsonrpc_endpoint: bool,
}

impl Emitter {
    /// A builder for an emitter configured in code.
    pub fn builder() -> EmitterBuilder {
        EmitterBuilder::default()
    }

    /// An emitter configured by the shared `switchboard.toml` at `path`.
    pub fn from_config(path: impl AsRef<Path>) -> Result<Emitter, EmitError> {
        let config = Config::load(path.as_ref())?;
        EmitterBuilder::from_config(&config)?.build()
    }

    /// Emits one event and waits until the gateway took it (or the timeout passes).
    pub async fn emit(&self, event: Event) -> Result<Receipt, EmitError> {
        event.validate()?;
        let event = self.with_id(event);
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .try_send(Job { event, reply })
            .map_err(|error| self.queue_error(error))?;
        self.wait(outcome).await
    }

    /// Emits several events; they are buffered together (all or none) and confirmed one by one. The
    /// outer error means nothing was sent; the inner results are per event, in order.
    pub async fn emit_batch(
        &self,
        events: Vec<Event>,
    ) -> Result<Vec<Result<Receipt, EmitError>>, EmitError> {
        for event in &events {
            event.validate()?;
        }
        let events: Vec<Event> = events.into_iter().map(|e| self.with_id(e)).collect();
        let permits = match self.jobs.try_reserve_many(events.len()) {
            Ok(permits) => permits,
            Err(mpsc::error::TrySendError::Full(())) => {
                return Err(EmitError::BufferFull {
                    capacity: self.capacity,
                })
            }
            Err(mpsc::error::TrySendError::Closed(())) => return Err(EmitError::Closed),
        };
        let mut outcomes = Vec::with_capacity(events.len());
        for (permit, event) in permits.zip(events) {
            let (reply, outcome) = oneshot::channel();
            permit.send(Job { event, reply });
            outcomes.push(outcome);
        }
        let mut results = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            results.push(self.wait(outcome).await);
        }
        Ok(results)
    }

    /// Sends what is still buffered, closes the transport (ZeroMQ lingers briefly so that queued
    /// messages reach the wire) and returns; waits at most the emitter's timeout. The background task
    /// ends only once every clone of this emitter is gone, so drop the others first.
    pub async fn close(self) -> Result<(), EmitError> {
        let Emitter {
            jobs,
            mut closed,
            timeout,
            last_error,
            ..
        } = self;
        drop(jobs);
        let finished = tokio::time::timeout(timeout, closed.wait_for(|done| *done))
            .await
            .is_ok();
        if finished {
            Ok(())
        } else {
            Err(EmitError::Timeout {
                waited: timeout,
                last_error: last_error.get(),
            })
        }
    }

    /// Model-change events for `model` (`<app>.<model>`, e.g. `shop.order`).
    pub fn model(&self, model: impl Into<String>) -> ModelEmitter<'_> {
        ModelEmitter {
            emitter: self,
            model: model.into(),
            eligible_authid: None,
        }
    }

    /// Mints a connection ticket for `authid` with `roles`, valid for `ttl`: hand it to the browser,
    /// which joins with WAMP ticket authentication (authmethods `["ticket"]`, this authid). The ticket
    /// is signed with the shared secret and holds no secret itself.
    pub fn ticket<S: Into<String>>(
        &self,
        authid: impl Into<String>,
        roles: impl IntoIterator<Item = S>,
        ttl: Duration,
    ) -> Result<String, EmitError> {
        Ok(self.tickets.mint(authid, roles, ttl)?)
    }

    /// The id of the newest publication the gateway stores for `topic` (its history), or `None` when
    /// it stores none: the signed JSON-RPC call `last_publication({"topic": topic})`, sent directly
    /// (not buffered) and waiting at most the emitter's timeout.
    ///
    /// It exists so that a page can render rows and then follow them live without missing a change:
    /// the web app reads this id *first*, then queries its database, and renders the rows together
    /// with the id; the browser's live collection subscribes and recovers the events published after
    /// that id. A change committed between the two reads is both in the rows and after the id, which
    /// is harmless: model events are idempotent (applying one twice leaves the same rows).
    ///
    /// It needs the gateway's JSON-RPC ingestion endpoint: the target's URL with the jsonrpc
    /// transport, otherwise `[ingest.jsonrpc]` of the configuration or
    /// [`EmitterBuilder::jsonrpc_endpoint`]; without one it fails with
    /// [`EmitError::NoJsonRpcEndpoint`]. A gateway that cannot be reached gives
    /// [`EmitError::Unreachable`]; one refusing the call (say, a bad signature)
    /// [`EmitError::Rejected`].
    pub async fn last_publication(&self, topic: &str) -> Result<Option<u64>, EmitError> {
        uri::validate(topic, MatchPolicy::Exact).map_err(|r| EventError::new("topic", r))?;
        #[cfg(feature = "jsonrpc")]
        {
            let calls = self.calls.as_ref().ok_or(EmitError::NoJsonRpcEndpoint {
                method: "last_publication",
            })?;
            calls.last_publication(topic).await
        }
        #[cfg(not(feature = "jsonrpc"))]
        {
            if self.has_jsonrpc_endpoint {
                Err(not_built("jsonrpc"))
            } else {
                Err(EmitError::NoJsonRpcEndpoint {
                    method: "last_publication",
                })
            }
        }
    }

    /// The topic prefix of model-change events.
    pub fn model_prefix(&self) -> &str {
        &self.model_prefix
    }

    /// Events waiting to be sent right now.
    pub fn buffered(&self) -> usize {
        self.capacity - self.jobs.capacity()
    }

    /// The event with a random idempotency key when it has none and auto ids are on.
    fn with_id(&self, mut event: Event) -> Event {
        if self.auto_id && event.id.is_none() {
            event.id = Some(format!("e-{}", hex::encode(rand::random::<[u8; 16]>())));
        }
        event
    }

    fn queue_error(&self, error: mpsc::error::TrySendError<Job>) -> EmitError {
        match error {
            mpsc::error::TrySendError::Full(_) => EmitError::BufferFull {
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(_) => EmitError::Closed,
        }
    }

    async fn wait(
        &self,
        outcome: oneshot::Receiver<Result<Receipt, EmitError>>,
    ) -> Result<Receipt, EmitError> {
        match tokio::time::timeout(self.timeout, outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(EmitError::Closed),
            Err(_) => Err(EmitError::Timeout {
                waited: self.timeout,
                last_error: self.last_error.get(),
            }),
        }
    }
}

/// Model-change events for one model: `emitter.model("shop.order").updated(42, &order, &["status"])`.
#[derive(Debug)]
pub struct ModelEmitter<'a> {
    emitter: &'a Emitter,
    model: String,
    eligible_authid: Option<Vec<String>>,
}

impl ModelEmitter<'_> {
    /// Delivers the change only to sessions of these authids (e.g. the row's owner).
    pub fn eligible_authids<S: Into<String>>(
        mut self,
        authids: impl IntoIterator<Item = S>,
    ) -> Self {
        self.eligible_authid = Some(authids.into_iter().map(Into::into).collect());
        self
    }

    /// A row was created.
    pub async fn created(
        &self,
        pk: impl Serialize,
        data: &impl Serialize,
    ) -> Result<Receipt, EmitError> {
        self.emit(ModelChange::created(&self.model, pk, data)?)
            .await
    }

    /// A row was updated; `changed` names the fields that changed.
    pub async fn updated<S: AsRef<str>>(
        &self,
        pk: impl Serialize,
        data: &impl Serialize,
        changed: &[S],
    ) -> Result<Receipt, EmitError> {
        self.emit(ModelChange::updated(&self.model, pk, data, changed)?)
            .await
    }

    /// A row was deleted.
    pub async fn deleted(&self, pk: impl Serialize) -> Result<Receipt, EmitError> {
        self.emit(ModelChange::deleted(&self.model, pk)?).await
    }

    /// Every row of the model, as `(pk, data)` pairs (`orders.iter().map(|o| (o.id, o))`): the gateway
    /// replaces its view of the model with these rows and open pages resync. See
    /// [`ModelChange::synced`] for the kwargs. The rows are serialized before this returns its future,
    /// which therefore holds neither them nor the iterator.
    ///
    /// The sync is one event and must fit the gateway's `[gateway] max_message_bytes` (1 MiB by
    /// default), kwargs and all. A larger one is refused by the gateway: over JSON-RPC as
    /// [`EmitError::Rejected`], while over ZeroMQ and AMQP the receipt comes first and the gateway then
    /// drops (AMQP: dead-letters) the event. Keep a synced model small enough, or raise the limit.
    pub fn sync<'a, P, D>(
        &self,
        rows: impl IntoIterator<Item = (P, &'a D)>,
    ) -> impl std::future::Future<Output = Result<Receipt, EmitError>> + '_
    where
        P: Serialize,
        D: Serialize + ?Sized + 'a,
    {
        let change = ModelChange::synced(&self.model, rows);
        async move { self.emit(change?).await }
    }

    async fn emit(&self, change: ModelChange) -> Result<Receipt, EmitError> {
        let mut event = change.to_event(&self.emitter.model_prefix);
        event.options.eligible_authid = self.eligible_authid.clone();
        self.emitter.emit(event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::Verifier;
    use serde_json::{json, Value};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::task::JoinHandle;

    /// A gateway for one JSON-RPC request: answers `result` to it and hands back the request's
    /// `X-Switchboard-Signature` header and body.
    async fn answer_once(result: Value) -> (String, JoinHandle<(Option<String>, Vec<u8>)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("a connection");
            let mut received = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let read = socket.read(&mut chunk).await.expect("read");
                assert!(read > 0, "connection closed before a whole request");
                received.extend_from_slice(&chunk[..read]);
                let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
                let length = header(&head, "content-length")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if received.len() >= end + 4 + length {
                    break (head, received[end + 4..end + 4 + length].to_vec());
                }
            };
            let request: Value = serde_json::from_slice(&body).expect("a JSON request");
            let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": result});
            let answer = serde_json::to_vec(&answer).expect("JSON");
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                answer.len()
            );
            socket
                .write_all(response.as_bytes())
                .await
                .expect("written");
            socket.write_all(&answer).await.expect("written");
            let _ = socket.shutdown().await;
            (header(&head, "x-switchboard-signature"), body)
        });
        (format!("http://{address}"), server)
    }

    /// The value of header `name` (lowercase) in a lowercased request head.
    fn header(head: &str, name: &str) -> Option<String> {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    }

    /// Checks one `last_publication` request the way the gateway does: signature, method, params.
    fn check_signed_request(signature: Option<&str>, body: &[u8], topic: &str) {
        assert_eq!(Verifier::new("s", 300).verify(signature, body), Ok(()));
        let forged = Verifier::new("not-s", 300).verify(signature, body);
        assert_eq!(forged.map_err(|e| e.which()), Err("invalid"));
        let request: Value = serde_json::from_slice(body).expect("JSON");
        assert_eq!(request["method"], "last_publication");
        assert_eq!(request["params"], json!({"topic": topic}));
    }

    #[tokio::test]
    async fn last_publication_is_a_signed_call_answering_an_id_or_none() {
        for (answer, expected) in [
            (json!({"publication": 17}), Some(17)),
            (json!({"publication": null}), None),
        ] {
            let (url, server) = answer_once(answer).await;
            let emitter = Emitter::builder()
                .jsonrpc(url)
                .secret("s")
                .build()
                .expect("emitter");
            let publication = emitter.last_publication("models.shop.order").await;
            assert_eq!(publication.expect("answered"), expected);
            let (signature, body) = server.await.expect("server");
            check_signed_request(signature.as_deref(), &body, "models.shop.order");
        }
    }

    #[tokio::test]
    async fn last_publication_uses_the_configured_jsonrpc_endpoint_with_another_transport() {
        let (url, server) = answer_once(json!({"publication": 5})).await;
        let listen = url.trim_start_matches("http://");
        let config = Config::from_toml_str(
            &format!(
                "[security]\nsecret = \"s\"\n[emitter]\ntransport = \"zmq\"\n\
                 [ingest.zmq]\nendpoint = \"tcp://127.0.0.1:1\"\n[ingest.jsonrpc]\nlisten = \"{listen}\"\n"
            ),
            "test.toml",
        )
        .expect("config");
        let emitter = EmitterBuilder::from_config(&config)
            .expect("builder")
            .build()
            .expect("emitter");
        assert_eq!(
            emitter
                .last_publication("models.shop.order")
                .await
                .expect("answered"),
            Some(5)
        );
        let (signature, body) = server.await.expect("server");
        check_signed_request(signature.as_deref(), &body, "models.shop.order");
    }

    #[tokio::test]
    async fn last_publication_without_a_jsonrpc_endpoint_says_what_it_needs() {
        let config = Config::from_toml_str(
            "[security]\nsecret = \"s\"\n[emitter]\ntransport = \"zmq\"\n\
             [ingest.zmq]\nendpoint = \"tcp://127.0.0.1:1\"\n",
            "test.toml",
        )
        .expect("config");
        let from_config = EmitterBuilder::from_config(&config).expect("builder");
        let in_code = Emitter::builder().zmq("tcp://127.0.0.1:1").secret("s");
        for builder in [from_config, in_code] {
            let emitter = builder.build().expect("emitter");
            let error = emitter
                .last_publication("models.shop.order")
                .await
                .expect_err("no endpoint");
            assert!(
                matches!(
                    error,
                    EmitError::NoJsonRpcEndpoint {
                        method: "last_publication"
                    }
                ),
                "{error}"
            );
            let message = error.to_string();
            assert!(
                message
                    .contains("last_publication needs the gateway's JSON-RPC ingestion endpoint"),
                "{message}"
            );
            assert!(message.contains("[ingest.jsonrpc]"), "{message}");
        }
        // A topic the gateway would refuse is refused before any call; a gateway that is not there
        // is said to be unreachable.
        let emitter = Emitter::builder()
            .jsonrpc("http://127.0.0.1:1")
            .secret("s")
            .timeout(Duration::from_secs(5))
            .build()
            .expect("emitter");
        let error = emitter.last_publication("bad..topic").await;
        assert!(matches!(error, Err(EmitError::Invalid(_))), "{error:?}");
        let error = emitter.last_publication("models.shop.order").await;
        assert!(
            matches!(error, Err(EmitError::Unreachable { .. })),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn sync_sends_one_synced_event_with_every_row() {
        let (url, server) = answer_once(json!({"publication": 9})).await;
        let emitter = Emitter::builder()
            .jsonrpc(url)
            .secret("s")
            .auto_id(false)
            .build()
            .expect("emitter");
        let rows = [
            (1, json!({"status": "new"})),
            (2, json!({"status": "paid"})),
        ];
        let receipt = emitter
            .model("shop.order")
            .sync(rows.iter().map(|(pk, data)| (pk, data)))
            .await
            .expect("published");
        assert_eq!(receipt.publication, Some(9));
        let (signature, body) = server.await.expect("server");
        assert_eq!(
            Verifier::new("s", 300).verify(signature.as_deref(), &body),
            Ok(())
        );
        let request: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(request["method"], "publish");
        assert_eq!(
            request["params"],
            json!({"topic": "models.shop.order", "kwargs": {"action": "synced", "model": "shop.order",
                   "rows": [{"pk": 1, "status": "new"}, {"pk": 2, "status": "paid"}]}})
        );
    }

    #[tokio::test]
    async fn events_get_a_random_idempotency_key_unless_they_have_one_or_it_is_off() {
        let builder = Emitter::builder().jsonrpc("http://127.0.0.1:1").secret("s");
        let emitter = builder.clone().build().expect("emitter");
        let first = emitter.with_id(Event::new("a.b")).id.expect("an id");
        let second = emitter.with_id(Event::new("a.b")).id.expect("an id");
        assert!(first.starts_with("e-") && first.len() == 34, "{first}");
        assert_ne!(first, second);
        let own = emitter.with_id(Event::new("a.b").with_id("mine")).id;
        assert_eq!(own.as_deref(), Some("mine"));
        let ticket = emitter.ticket("alice", ["member"], Duration::from_secs(60));
        let claims = TicketKey::new("s").verify(&ticket.expect("ticket"), Some("alice"));
        assert_eq!(claims.expect("valid").roles, vec!["member".to_string()]);
        let off = builder.auto_id(false).build().expect("emitter");
        assert_eq!(off.with_id(Event::new("a.b")).id, None);
    }
}
