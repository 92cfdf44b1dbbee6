//! Building an emitter: its target (JSON-RPC, ZeroMQ or AMQP), secret, buffer and timeouts, in code or
//! from the shared `switchboard.toml`.

use std::sync::Arc;
use std::time::Duration;

use switchboard_config::{Config, EmitterTransport};
use tokio::sync::{mpsc, watch};

use crate::emitter::Emitter;
use crate::model::DEFAULT_MODEL_PREFIX;
use crate::signing::Signer;
use crate::ticket::TicketKey;
#[cfg(feature = "amqp")]
use crate::transport::amqp::AmqpTransport;
#[cfg(feature = "jsonrpc")]
use crate::transport::jsonrpc::{JsonRpcCalls, JsonRpcTransport};
#[cfg(feature = "zmq")]
use crate::transport::zmq::ZmqTransport;
use crate::transport::Transport;
use crate::worker::{run, LastError};
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
pub(crate) fn not_built(transport: &'static str) -> EmitError {
    EmitError::Setup {
        transport,
        reason: format!("switchboard-emitter was built without its `{transport}` feature"),
    }
}
