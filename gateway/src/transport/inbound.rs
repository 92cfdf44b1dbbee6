//! What a frame from a peer becomes before the session sees it: its size checked against
//! `[gateway] max_message_bytes`, then decoded by the negotiated serializer. The session receives typed
//! messages only; a frame that fails here is refused with the ABORT to send (transport -> codec ->
//! session).

use crate::wamp::refusal::PROTOCOL_VIOLATION;
use crate::wamp::{Message, Refusal, Serializer};

/// ABORT reason for a message over the size limit.
pub const PAYLOAD_SIZE_EXCEEDED: &str = "wamp.error.payload_size_exceeded";

/// Decodes one frame of a peer speaking `serializer`, refusing it (as an ABORT) when it is larger than
/// `max_message_bytes` or not a well-formed message.
pub fn decode(
    serializer: Serializer,
    bytes: &[u8],
    max_message_bytes: usize,
) -> Result<Message, Refusal> {
    if bytes.len() > max_message_bytes {
        let message = format!(
            "message of {} bytes exceeds the limit of {max_message_bytes} bytes",
            bytes.len()
        );
        return Err(Refusal::new(PAYLOAD_SIZE_EXCEEDED, message));
    }
    serializer
        .decode(bytes)
        .map_err(|reason| Refusal::new(PROTOCOL_VIOLATION, reason))
}
