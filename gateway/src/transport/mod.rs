//! Transports: how bytes reach a [`crate::router::Session`]. The HTTP front serves the WebSocket endpoint,
//! the browser client and the health check on one listener; the WebSocket transport moves frames between
//! a socket and a session.

pub mod accept;
pub mod http;
pub mod inbound;
pub mod static_js;
pub mod upgrade;
pub mod websocket;
