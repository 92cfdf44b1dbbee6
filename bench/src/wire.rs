//! WAMP messages on the wire for the two subprotocols the gateway speaks (`wamp.2.json`,
//! `wamp.2.msgpack`), and the benchmark's event payload.

use std::str::FromStr;

use anyhow::{anyhow, bail, Context};
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
            Self::Msgpack => {
                let mut bytes = Vec::with_capacity(256);
                rmpv::encode::write_value(&mut bytes, &to_msgpack(value))
                    .expect("writing to a Vec cannot fail");
                Message::binary(bytes)
            }
        }
    }

    /// Decodes a data frame into the message's JSON array form.
    pub fn decode(self, bytes: &[u8]) -> anyhow::Result<Value> {
        match self {
            Self::Json => serde_json::from_slice(bytes).context("frame is not JSON"),
            Self::Msgpack => {
                let mut reader = bytes;
                let value = rmpv::decode::read_value(&mut reader)
                    .map_err(|e| anyhow!("frame is not MessagePack: {e}"))?;
                from_msgpack(&value)
            }
        }
    }
}

fn to_msgpack(value: &Value) -> rmpv::Value {
    match value {
        Value::Null => rmpv::Value::Nil,
        Value::Bool(b) => rmpv::Value::Boolean(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => rmpv::Value::from(u),
            (_, Some(i), _) => rmpv::Value::from(i),
            (_, _, f) => rmpv::Value::F64(f.unwrap_or(0.0)),
        },
        Value::String(s) => rmpv::Value::from(s.as_str()),
        Value::Array(items) => rmpv::Value::Array(items.iter().map(to_msgpack).collect()),
        Value::Object(map) => rmpv::Value::Map(
            map.iter()
                .map(|(k, v)| (rmpv::Value::from(k.as_str()), to_msgpack(v)))
                .collect(),
        ),
    }
}

fn from_msgpack(value: &rmpv::Value) -> anyhow::Result<Value> {
    Ok(match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(*b),
        rmpv::Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => json!(u),
            (_, Some(i)) => json!(i),
            _ => bail!("integer out of range"),
        },
        rmpv::Value::F32(f) => json!(f),
        rmpv::Value::F64(f) => json!(f),
        rmpv::Value::String(s) => Value::String(s.as_str().unwrap_or_default().to_string()),
        rmpv::Value::Binary(_) | rmpv::Value::Ext(..) => bail!("unexpected binary value"),
        rmpv::Value::Array(items) => {
            Value::Array(items.iter().map(from_msgpack).collect::<Result<_, _>>()?)
        }
        rmpv::Value::Map(entries) => {
            let mut map = serde_json::Map::new();
            for (k, v) in entries {
                let key = k.as_str().ok_or_else(|| anyhow!("non-string map key"))?;
                map.insert(key.to_string(), from_msgpack(v)?);
            }
            Value::Object(map)
        }
    })
}

/// The benchmark event: arguments `[sequence, publish_ns, padding]`, padded so that the EVENT frame a
/// subscriber receives is about `size` bytes (a few bytes either way, as ids vary in width).
#[derive(Debug, Clone)]
pub struct EventPayload {
    topic: String,
    padding: String,
}

impl EventPayload {
    /// A payload for `topic` whose EVENT frames come out at about `size` bytes with `serializer`.
    pub fn new(topic: &str, size: usize, serializer: Serializer) -> Self {
        // A typical EVENT: a 2-digit subscription id (the gateway counts them up), a 16-digit random
        // publication id, a 4-digit sequence and an 11-digit timestamp.
        let publication = 4_503_599_627_370_495u64;
        let event = |padding: &str| {
            json!([
                code::EVENT,
                99,
                publication,
                {},
                [9_999u64, 10_000_000_000u64, padding]
            ])
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
        json!([
            code::PUBLISH,
            sequence,
            options,
            self.topic,
            [sequence, stamp, self.padding]
        ])
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
