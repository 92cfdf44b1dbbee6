//! A refused request as the protocol states it: the WAMP error URI and a message for the peer. It lives
//! with the messages because every layer that answers a peer (authentication, the router's checks,
//! the dealer) produces one, and none of them should depend on another to do so.

/// A refused request: the WAMP error URI and a message for the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `wamp.error.*` or `switchboard.error.*`.
    pub uri: &'static str,
    /// What went wrong, for a human.
    pub message: String,
}

impl Refusal {
    /// A refusal with its URI and message.
    pub fn new(uri: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            uri,
            message: message.into(),
        }
    }
}

/// ABORT reason for a frame or message that breaks the protocol (malformed, out of order).
pub const PROTOCOL_VIOLATION: &str = "wamp.error.protocol_violation";
