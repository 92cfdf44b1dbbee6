//! Switchboard's load generator: drives a running gateway over WAMP-over-WebSocket and reports fan-out
//! throughput, publish-to-delivery latency, resident memory per idle connection, ingestion throughput
//! from the switchboard-emitter crate (JSON-RPC, ZeroMQ, AMQP) into one subscriber, and whether memory
//! stays flat over a long run with churn and stalled consumers (soak), and the live-data features:
//! recovery latency (`wamp.subscription.get_events`) and memory per stored event (history); fan-out and
//! idle memory over RawSocket too, connection churn with the session meta events, and fan-out and idle
//! memory over HTTP long-poll, and RPC calls/s and round trips (on one node or across cluster nodes).
//!
//! Every scenario is a plain async function taking an options struct, so the `switchboard-bench` binary
//! and the integration tests run the same code. The generator talks only to `127.0.0.x` addresses.

pub mod churn;
pub mod client;
pub mod clock;
pub mod counter;
pub mod fanout;
pub mod idle;
pub mod ingest;
pub mod latency;
pub mod longpoll;
pub mod publisher;
pub mod rawsocket;
pub mod recovery;
pub mod report;
pub mod rpc;
pub mod smoke;
pub mod soak;
pub mod soak_report;
pub mod subscriber;
pub mod sys;
pub mod wire;

pub use churn::{ChurnOptions, ChurnReport};
pub use fanout::FanoutOptions;
pub use idle::IdleOptions;
pub use ingest::{IngestOptions, IngestReport, IngestTransport};
pub use latency::LatencyOptions;
pub use longpoll::{LongpollOptions, LongpollReport};
pub use recovery::{HistoryMemoryOptions, RecoveryOptions};
pub use report::{FlowReport, IdleReport};
pub use rpc::{RpcOptions, RpcReport};
pub use soak::SoakOptions;
pub use soak_report::SoakReport;
pub use wire::{Serializer, Transport};
