//! The ways an emitter reaches the gateway. A transport sends a batch of signed events and reports, per
//! event, whether the gateway took it; failures that a retry may cure are kept apart from refusals.

pub mod amqp;
pub mod jsonrpc;
pub mod zmq;

use crate::event::Event;
use crate::EmitError;

/// What the gateway confirmed for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The publication id, where the transport returns one (JSON-RPC does; ZeroMQ and AMQP do not).
    pub publication: Option<u64>,
}

/// A transport failure as a whole batch sees it. A transport that sent only part of a batch returns
/// the outcomes of that part; the rest is sent again.
#[derive(Debug)]
pub enum SendError {
    /// Connection refused, timed out, broker away: send the batch again later.
    Retry(String),
    /// The batch was refused as a whole; every event gets this error.
    Fatal(EmitError),
}

/// One of the configured transports.
pub enum Transport {
    /// JSON-RPC 2.0 over HTTP.
    JsonRpc(jsonrpc::JsonRpcTransport),
    /// ZeroMQ PUSH.
    Zmq(zmq::ZmqTransport),
    /// AMQP 0-9-1 with publisher confirms (boxed: a lapin connection is large).
    Amqp(Box<amqp::AmqpTransport>),
}

impl Transport {
    /// Sends `events`; on success one outcome per event sent, in order (a prefix of `events`).
    pub async fn send(
        &mut self,
        events: &[&Event],
    ) -> Result<Vec<Result<Receipt, EmitError>>, SendError> {
        match self {
            Transport::JsonRpc(transport) => transport.send(events).await,
            Transport::Zmq(transport) => transport.send(events).await,
            Transport::Amqp(transport) => transport.send(events).await,
        }
    }

    /// Lets what was sent reach the wire, then closes connections.
    pub async fn close(self) {
        match self {
            Transport::JsonRpc(_) => {}
            Transport::Zmq(transport) => transport.close().await,
            Transport::Amqp(transport) => (*transport).close().await,
        }
    }

    /// Most events worth sending in one go.
    pub fn max_batch(&self) -> usize {
        match self {
            Transport::JsonRpc(_) => jsonrpc::MAX_BATCH,
            Transport::Zmq(_) => zmq::MAX_BATCH,
            Transport::Amqp(_) => amqp::MAX_BATCH,
        }
    }
}
