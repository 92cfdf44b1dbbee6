//! What can go wrong when emitting, said precisely enough for a web app to decide what to do: fix the
//! event, slow down, or wait for the gateway.

use std::time::Duration;

use crate::event::EventError;
use crate::model::ModelError;

/// Why an emitter could not be built or an event not emitted.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The configuration file could not be loaded.
    #[error(transparent)]
    Config(#[from] switchboard_config::ConfigError),
    /// No `[security]` secret to sign with.
    #[error("no [security] secret configured: emitters must sign every message with the gateway's secret")]
    NoSecret,
    /// The configuration does not say where the gateway listens for the chosen transport.
    #[error("[emitter] transport = {transport:?} but the configuration has no [ingest.{transport}] section")]
    NoIngestSection {
        /// The transport named in `[emitter]`.
        transport: &'static str,
    },
    /// The emitter was not created inside a tokio runtime (use [`crate::BlockingEmitter`] there).
    #[error("the emitter needs a tokio runtime; outside one, use BlockingEmitter")]
    NoRuntime,
    /// The transport could not be set up (bad URL or endpoint).
    #[error("{transport} transport: {reason}")]
    Setup {
        /// Which transport.
        transport: &'static str,
        /// What failed.
        reason: String,
    },
    /// The event is not valid; nothing was sent.
    #[error("invalid event: {0}")]
    Invalid(#[from] EventError),
    /// The model change is not valid; nothing was sent.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Too many events are waiting to be sent (the gateway is slow or unreachable); nothing was queued.
    #[error("emitter buffer full: {capacity} events are waiting to be sent; the gateway is slow or unreachable")]
    BufferFull {
        /// The buffer's capacity.
        capacity: usize,
    },
    /// The gateway refused the event (JSON-RPC error code and message); retrying will not help.
    #[error("gateway refused the event ({code}): {message}")]
    Rejected {
        /// The JSON-RPC error code (`-32602`, `-32001`, ...).
        code: i32,
        /// The gateway's message, naming the fault.
        message: String,
    },
    /// The event was not confirmed in time; `last_error` says why the transport was failing, if it was.
    #[error("event not confirmed within {} ms{}", .waited.as_millis(), .last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Timeout {
        /// How long the emitter waited.
        waited: Duration,
        /// The transport's latest failure.
        last_error: Option<String>,
    },
    /// A ticket could not be minted.
    #[error(transparent)]
    Ticket(#[from] crate::ticket::TicketError),
    /// A call other than publishing (e.g. [`crate::Emitter::last_publication`]) needs the gateway's
    /// JSON-RPC ingestion endpoint, and this emitter has none.
    #[error("{method} needs the gateway's JSON-RPC ingestion endpoint: use the jsonrpc transport, add an [ingest.jsonrpc] section to the configuration, or set EmitterBuilder::jsonrpc_endpoint")]
    NoJsonRpcEndpoint {
        /// The JSON-RPC method that was to be called.
        method: &'static str,
    },
    /// A direct call to the gateway (not a buffered event) could not reach it; retrying later may work.
    #[error("gateway at {url} unreachable: {reason}")]
    Unreachable {
        /// The gateway's JSON-RPC URL.
        url: String,
        /// What failed (connection refused, timeout, ...).
        reason: String,
    },
    /// The emitter's background task has stopped.
    #[error("the emitter is closed")]
    Closed,
}
