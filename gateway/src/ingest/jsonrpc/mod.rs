//! JSON-RPC 2.0 ingestion over HTTP at `[ingest.jsonrpc].listen` (jsonrpsee, HTTP only): signed
//! `publish` / `publish_batch` calls and the management calls. See [`methods`] for the calls and
//! [`signature`] for how the raw body's signature is checked.

pub mod errors;
pub mod methods;
pub mod signature;

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use switchboard_config::JsonRpcConfig;
use switchboard_wire::Verifier;

use super::publish::Publisher;
use super::IngestError;
use signature::SignatureLayer;

/// Most concurrent HTTP connections (jsonrpsee's default of 100 is too few for a busy web app's workers,
/// unlimited would let one client exhaust file descriptors).
pub const MAX_CONNECTIONS: u32 = 512;
/// Most calls in one JSON-RPC batch (jsonrpsee's default is unlimited); `publish_batch` carries more.
pub const MAX_BATCH_CALLS: u32 = 100;

/// The running JSON-RPC ingestion server.
pub struct JsonRpcIngest {
    handle: ServerHandle,
    local_addr: SocketAddr,
}

impl JsonRpcIngest {
    /// Binds `config.listen` and starts serving.
    pub async fn start(
        config: &JsonRpcConfig,
        publisher: Publisher,
        verifier: Arc<Verifier>,
    ) -> Result<Self, IngestError> {
        let server_config = ServerConfig::builder()
            .http_only()
            .max_connections(MAX_CONNECTIONS)
            .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH_CALLS))
            .max_request_body_size(u32::try_from(config.max_body_bytes).unwrap_or(u32::MAX))
            .build();
        let middleware = tower::ServiceBuilder::new().layer(SignatureLayer::new(
            verifier,
            config.max_body_bytes,
            std::time::Duration::from_millis(config.body_timeout_ms),
        ));
        let server = Server::builder()
            .set_config(server_config)
            .set_http_middleware(middleware)
            .build(config.listen)
            .await
            .map_err(|source| IngestError::Bind {
                transport: "jsonrpc",
                address: config.listen.to_string(),
                source,
            })?;
        let local_addr = server.local_addr().map_err(|source| IngestError::Bind {
            transport: "jsonrpc",
            address: config.listen.to_string(),
            source,
        })?;
        let handle = server.start(methods::module(publisher)?);
        tracing::info!("JSON-RPC ingestion on http://{local_addr}");
        Ok(JsonRpcIngest { handle, local_addr })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets calls in progress finish, and returns once the server is down.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }
}
