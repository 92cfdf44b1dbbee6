//! WAMP messages on the wire for the two subprotocols the gateway speaks (`wamp.2.json`,
//! `wamp.2.msgpack`), and the benchmark's event payload.

use std::str::FromStr;

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// WAMP message type codes the generator uses.
pub mod code {
    /// HELLO.
    pub const HELLO: u64 = 1;
    /// WELCOME.
    pub const WELCOME: u64 = 2;
    /// ABORT.
    pub const ABORT: u64 = 3;
    /// ERROR.
    pub const ERROR: u64 = 8;
    /// PUBLISH.
    pub const PUBLISH: u64 = 16;
    /// PUBLISHED.
    pub const PUBLISHED: u64 = 17;
    /// SUBSCRIBE.
    pub const SUBSCRIBE: u64 = 32;
    /// SUBSCRIBED.
    pub const SUBSCRIBED: u64 = 33;
    /// EVENT.
    pub const EVENT: u64 = 36;
    /// CALL.
    pub const CALL: u64 = 48;
    /// RESULT.
    pub const RESULT: u64 = 50;
    /// GOODBYE.
    pub const GOODBYE: u64 = 6;
}

/// A WAMP serializer, chosen per connection through the WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Serializer {
    /// `wamp.2.json`, text frames.
    #[default]
    Json,
    /// `wamp.2.msgpack`, binary frames.
    Msgpack,
}

impl FromStr for Serializer {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        match text {
            "json" => Ok(Self::Json),
            "msgpack" => Ok(Self::Msgpack),
            other => bail!("unknown serializer {other:?} (json or msgpack)"),
        }
    }
}

/// How a connection carries WAMP messages to the gateway (both on its HTTP port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// WebSocket (`ws://.../ws`), the subprotocol naming the serializer.
    #[default]
    Websocket,
    /// WAMP RawSocket over TCP: a 4-byte handshake, then 4-byte frame headers.
    Rawsocket,
}

impl FromStr for Transport {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        match text {
            "websocket" => Ok(Self::Websocket),
            "rawsocket" => Ok(Self::Rawsocket),
            other => bail!("unknown transport {other:?} (websocket or rawsocket)"),
        }
    }
}

impl Serializer {
    /// The WebSocket subprotocol name.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Self::Json => "wamp.2.json",
            Self::Msgpack => "wamp.2.msgpack",
        }
    }

    /// Encodes a message given in its JSON array form.
    pub fn encode(self, value: &Value) -> Message {
        match self {
            Self::Json => Message::text(value.to_string()),
            Self::Msgpack => Message::binary(
                rmp_serde::to_vec(value).expect("a JSON value serializes to MessagePack"),
            ),
        }
    }

    /// Decodes a data frame into the message's JSON array form.
    pub fn decode(self, bytes: &[u8]) -> anyhow::Result<Value> {
        match self {
            Self::Json => serde_json::from_slice(bytes).context("frame is not JSON"),
            Self::Msgpack => rmp_serde::from_slice(bytes).context("frame is not MessagePack"),
        }
    }
}

/// The benchmark event: arguments `[sequence, publish_ns, padding]` (and, with kwargs, keyword arguments
/// `{"n": sequence}` for server-side filters to test), padded so that the EVENT frame a subscriber
/// receives is about `size` bytes (a few bytes either way, as ids vary in width).
#[derive(Debug, Clone)]
pub struct EventPayload {
    topic: String,
    padding: String,
    kwargs: bool,
}

impl EventPayload {
    /// A payload for `topic` whose EVENT frames come out at about `size` bytes with `serializer`.
    pub fn new(topic: &str, size: usize, serializer: Serializer) -> Self {
        Self::with_kwargs(topic, size, serializer, false)
    }

    /// Like [`EventPayload::new`]; with `kwargs`, every event also carries `{"n": sequence}` (counted in
    /// the frame size).
    pub fn with_kwargs(topic: &str, size: usize, serializer: Serializer, kwargs: bool) -> Self {
        // A typical EVENT: a 2-digit subscription id (the gateway counts them up), a 16-digit random
        // publication id, a 4-digit sequence and an 11-digit timestamp.
        let publication = 4_503_599_627_370_495u64;
        let event = |padding: &str| {
            let args = json!([9_999u64, 10_000_000_000u64, padding]);
            match kwargs {
                true => json!([code::EVENT, 99, publication, {}, args, {"n": 9_999u64}]),
                false => json!([code::EVENT, 99, publication, {}, args]),
            }
        };
        let bare = frame_len(&serializer.encode(&event("")));
        let mut padding = "x".repeat(size.saturating_sub(bare));
        // MessagePack string headers grow with the length; trim until the frame fits.
        while !padding.is_empty() && frame_len(&serializer.encode(&event(&padding))) > size {
            padding.pop();
        }
        EventPayload {
            topic: topic.to_string(),
            padding,
            kwargs,
        }
    }

    /// The padding string that brings the EVENT frame to the asked size (the third argument).
    pub fn padding(&self) -> &str {
        &self.padding
    }

    /// The PUBLISH for event `sequence`, stamped now; `acknowledge` asks for PUBLISHED.
    pub fn publish(&self, sequence: u64, acknowledge: bool) -> Value {
        let options = if acknowledge {
            json!({"acknowledge": true})
        } else {
            json!({})
        };
        let stamp = crate::clock::now_ns();
        let args = json!([sequence, stamp, self.padding]);
        match self.kwargs {
            true => json!([
                code::PUBLISH,
                sequence,
                options,
                self.topic,
                args,
                {"n": sequence}
            ]),
            false => json!([code::PUBLISH, sequence, options, self.topic, args]),
        }
    }
}

/// Sequence number and publish timestamp of a decoded EVENT, or `None` when it is not a benchmark EVENT.
pub fn event_stamp(message: &Value) -> Option<(u64, u64)> {
    if message.get(0)?.as_u64()? != code::EVENT {
        return None;
    }
    let args = message.get(4)?;
    Some((args.get(0)?.as_u64()?, args.get(1)?.as_u64()?))
}

/// Payload length of a data frame.
pub fn frame_len(message: &Message) -> usize {
    match message {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) => bytes.len(),
        _ => 0,
    }
}
