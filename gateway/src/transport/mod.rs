//! Transports: how bytes reach a [`crate::router::Session`]. The HTTP front serves the WebSocket endpoint,
//! the HTTP long-poll endpoint (`/lp`), the browser client and the health check on one listener, and hands
//! RawSocket (TCP) connections on the same listener to [`rawsocket`]; the WebSocket, RawSocket and
//! long-poll transports move messages between their peer and a session, sharing one session loop
//! (`driver`).

pub mod accept;
pub mod batched;
mod driver;
pub mod http;
pub mod inbound;
pub(crate) mod longpoll;
pub mod rawsocket;
pub mod static_js;
pub mod upgrade;
pub mod websocket;
