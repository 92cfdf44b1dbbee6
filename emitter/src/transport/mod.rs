//! The ways an emitter reaches the gateway. A transport sends a batch of signed events and reports, per
//! event, whether the gateway took it; failures that a retry may cure are kept apart from refusals.
//! Each transport is behind the cargo feature of its name (all on by default).

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "jsonrpc")]
pub mod jsonrpc;
#[cfg(feature = "zmq")]
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
    #[cfg(feature = "jsonrpc")]
    JsonRpc(jsonrpc::JsonRpcTransport),
    /// ZeroMQ PUSH.
    #[cfg(feature = "zmq")]
    Zmq(zmq::ZmqTransport),
    /// AMQP 0-9-1 with publisher confirms (boxed: a lapin connection is large).
    #[cfg(feature = "amqp")]
    Amqp(Box<amqp::AmqpTransport>),
}

impl Transport {
    /// Sends `events`; on success one outcome per event sent, in order (a prefix of `events`).
    pub async fn send(
        &mut self,
        events: &[&Event],
    ) -> Result<Vec<Result<Receipt, EmitError>>, SendError> {
        // `*self`: with every transport feature off the enum is empty and so is this match.
        match *self {
            #[cfg(feature = "jsonrpc")]
            Transport::JsonRpc(ref mut transport) => transport.send(events).await,
            #[cfg(feature = "zmq")]
            Transport::Zmq(ref mut transport) => transport.send(events).await,
            #[cfg(feature = "amqp")]
            Transport::Amqp(ref mut transport) => transport.send(events).await,
        }
    }

    /// Lets what was sent reach the wire, then closes connections.
    pub async fn close(self) {
        match self {
            #[cfg(feature = "jsonrpc")]
            Transport::JsonRpc(_) => {}
            #[cfg(feature = "zmq")]
            Transport::Zmq(transport) => transport.close().await,
            #[cfg(feature = "amqp")]
            Transport::Amqp(transport) => (*transport).close().await,
        }
    }

    /// Most events worth sending in one go.
    pub fn max_batch(&self) -> usize {
        match *self {
            #[cfg(feature = "jsonrpc")]
            Transport::JsonRpc(_) => jsonrpc::MAX_BATCH,
            #[cfg(feature = "zmq")]
            Transport::Zmq(_) => zmq::MAX_BATCH,
            #[cfg(feature = "amqp")]
            Transport::Amqp(_) => amqp::MAX_BATCH,
        }
    }
}
