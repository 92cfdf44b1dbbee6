//! Switchboard's gateway: a WAMP v2 router that browsers reach over WebSocket and web apps publish into.
//!
//! The flow is transport -> codec -> session -> router: [`transport`] moves frames, [`wamp`] encodes and
//! decodes them, [`router::Session`] runs one client's protocol, and [`router`] routes between sessions.
//! [`auth`] authenticates sessions at HELLO (anonymous, ticket, WAMP-CRA).
//! [`ingest`] turns events from web apps (JSON-RPC, ZeroMQ, AMQP) into publications on the router.
//! [`telemetry`] names the operator metrics and serves them at `/metrics`.

pub mod auth;
pub mod cluster;
pub mod fd_limit;
pub mod ingest;
pub mod router;
pub mod telemetry;
pub mod throttle;
pub mod transport;
pub mod wamp;
