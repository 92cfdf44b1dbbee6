//! Switchboard's gateway: a WAMP v2 router that browsers reach over WebSocket and web apps publish into.
//!
//! The flow is transport -> codec -> session -> router: [`transport`] moves frames, [`wamp`] encodes and
//! decodes them, [`router::Session`] runs one client's protocol, and [`router`] routes between sessions.

pub mod router;
pub mod transport;
pub mod wamp;
