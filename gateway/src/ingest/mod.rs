//! Ingestion: how web apps publish into the gateway (DESIGN.md section 5). Each transport decodes and
//! verifies its input, then hands a validated event to the same [`publish::Publisher`]; ingestion never
//! sees WebSockets, and the router never sees ingestion transports.

pub mod amqp;
pub mod dedup;
pub mod jsonrpc;
pub mod publish;
pub mod signed;
pub mod zmq;

use std::sync::Arc;

use switchboard_config::Config;
use switchboard_wire::Verifier;

pub use publish::Publisher;

use crate::router::Router;

/// Why ingestion could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A listener could not be bound.
    #[error("{transport} ingestion cannot listen on {address}: {source}")]
    Bind {
        /// Which transport.
        transport: &'static str,
        /// The configured address.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The JSON-RPC methods could not be registered (a programming error).
    #[error("JSON-RPC methods: {0}")]
    Register(#[from] jsonrpsee::core::RegisterMethodError),
}

/// The ingestion transports running for one gateway, started from `[ingest.*]`.
pub struct Ingestion {
    jsonrpc: Option<jsonrpc::JsonRpcIngest>,
    zmq: Option<zmq::ZmqIngest>,
    amqp: Option<amqp::AmqpIngest>,
}

impl Ingestion {
    /// Starts every configured transport; `secret` is the resolved `[security]` secret.
    pub async fn start(
        config: &Config,
        router: Arc<Router>,
        secret: &str,
    ) -> Result<Self, IngestError> {
        let verifier = Arc::new(Verifier::new(secret, config.security.max_skew_s));
        let publisher = Publisher::new(router);
        let jsonrpc = match &config.ingest.jsonrpc {
            Some(jsonrpc) => Some(
                jsonrpc::JsonRpcIngest::start(jsonrpc, publisher.clone(), Arc::clone(&verifier))
                    .await?,
            ),
            None => None,
        };
        let zmq = match &config.ingest.zmq {
            Some(zmq) => Some(
                zmq::ZmqIngest::start(
                    zmq,
                    config.gateway.max_message_bytes,
                    publisher.clone(),
                    Arc::clone(&verifier),
                )
                .await?,
            ),
            None => None,
        };
        let amqp = config.ingest.amqp.as_ref().map(|amqp| {
            amqp::AmqpIngest::start(
                amqp,
                config.gateway.max_message_bytes,
                publisher.clone(),
                Arc::clone(&verifier),
            )
        });
        Ok(Ingestion { jsonrpc, zmq, amqp })
    }

    /// The JSON-RPC server, when running.
    pub fn jsonrpc(&self) -> Option<&jsonrpc::JsonRpcIngest> {
        self.jsonrpc.as_ref()
    }

    /// The ZeroMQ endpoint, when running.
    pub fn zmq(&self) -> Option<&zmq::ZmqIngest> {
        self.zmq.as_ref()
    }

    /// Stops every transport, letting what is in progress finish.
    pub async fn stop(self) {
        if let Some(jsonrpc) = self.jsonrpc {
            jsonrpc.stop().await;
        }
        if let Some(zmq) = self.zmq {
            zmq.stop().await;
        }
        if let Some(amqp) = self.amqp {
            amqp.stop().await;
        }
        tracing::info!("ingestion stopped");
    }
}
