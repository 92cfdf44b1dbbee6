//! The WAMP codec against message vectors: the project's own fixtures (`tests/fixtures/wamp/`, always
//! run, so a plain clone tests its codec) and, when a copy is present, the WAMP project's test vectors
//! as an extra check.
//!
//! Run with `--nocapture` to see how many cases of each file were checked, or why the WAMP project's
//! vectors were skipped.

mod fixtures;
mod vectors;

use switchboard_gateway::wamp::Frame;

/// The serializers the gateway speaks, by the names the fixtures and vectors use.
const SERIALIZERS: [(&str, switchboard_gateway::wamp::Serializer); 2] = [
    ("json", switchboard_gateway::wamp::Serializer::Json),
    ("msgpack", switchboard_gateway::wamp::Serializer::Msgpack),
];

/// The bytes a frame puts on the socket.
fn frame_bytes(frame: &Frame) -> &[u8] {
    match frame {
        Frame::Text(text) => text.as_str().as_bytes(),
        Frame::Binary(bytes) => bytes,
    }
}

/// Bytes for a failure message: JSON as text, anything else as hex.
fn show(serializer: &str, bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if serializer == "json" => text.to_string(),
        _ => hex::encode(bytes),
    }
}
