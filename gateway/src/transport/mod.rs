//! Transports: how bytes reach a [`crate::router::Session`]. The HTTP front serves the WebSocket endpoint,
//! the browser client and the health check on one listener, and hands RawSocket (TCP) connections on the
//! same listener to [`rawsocket`]; the WebSocket and RawSocket transports move frames between a socket and
//! a session, sharing one session loop (`driver`).

pub mod accept;
pub mod batched;
mod driver;
pub mod http;
pub mod inbound;
pub mod rawsocket;
pub mod static_js;
pub mod upgrade;
pub mod websocket;
