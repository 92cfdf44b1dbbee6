//! Switchboard's load generator: drives a running gateway over WAMP-over-WebSocket and reports fan-out
//! throughput, publish-to-delivery latency, resident memory per idle connection, and ingestion throughput
//! from the switchboard-emitter crate (JSON-RPC, ZeroMQ, AMQP) into one subscriber.
//!
//! Every scenario is a plain async function taking an options struct, so the `switchboard-bench` binary
//! and the integration tests run the same code. The generator talks only to `127.0.0.x` addresses.

#![warn(missing_docs)]

pub mod client;
pub mod clock;
pub mod counter;
pub mod fanout;
pub mod idle;
pub mod ingest;
pub mod latency;
pub mod publisher;
pub mod report;
pub mod smoke;
pub mod subscriber;
pub mod sys;
pub mod wire;

pub use fanout::FanoutOptions;
pub use idle::IdleOptions;
pub use ingest::{IngestOptions, IngestReport, IngestTransport};
pub use latency::LatencyOptions;
pub use report::{FlowReport, IdleReport};
pub use wire::Serializer;
