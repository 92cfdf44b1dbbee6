//! The two WAMP serializers (JSON and MessagePack): frames to messages and back.
//!
//! Both go through the message's array form; MessagePack binary values become the WAMP JSON convention for
//! binary (a string holding a NUL byte then base64) so that a JSON subscriber and a MessagePack publisher
//! see the same value.

use axum::extract::ws::Utf8Bytes;
use base64::Engine;
use bytes::Bytes;
use serde_json::{Number, Value};

use super::array;
use super::message::Message;

/// A serializer negotiated through the WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serializer {
    /// `wamp.2.json`: text frames.
    Json,
    /// `wamp.2.msgpack`: binary frames.
    Msgpack,
}

/// The WebSocket subprotocols we speak, in order of preference.
pub const SUBPROTOCOLS: [&str; 2] = ["wamp.2.json", "wamp.2.msgpack"];

/// An encoded message ready for the socket; cloning it shares the bytes, so one EVENT encoding can go to
/// every subscriber.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A WebSocket text frame (JSON).
    Text(Utf8Bytes),
    /// A WebSocket binary frame (MessagePack).
    Binary(Bytes),
}

impl Frame {
    /// The encoded size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Binary(bytes) => bytes.len(),
        }
    }

    /// True when the frame holds no bytes (never the case for an encoded message).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const BINARY_MARK: char = '\0';

impl Serializer {
    /// The serializer for a negotiated subprotocol name.
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        match name {
            "wamp.2.json" => Some(Self::Json),
            "wamp.2.msgpack" => Some(Self::Msgpack),
            _ => None,
        }
    }

    /// Decodes one frame's bytes into a message; `Err` is a protocol violation text for the peer.
    pub fn decode(self, bytes: &[u8]) -> Result<Message, String> {
        let value = match self {
            Self::Json => serde_json::from_slice::<Value>(bytes)
                .map_err(|e| format!("frame is not valid JSON: {e}"))?,
            Self::Msgpack => {
                let mut reader = bytes;
                let value = rmpv::decode::read_value(&mut reader)
                    .map_err(|e| format!("frame is not valid MessagePack: {e}"))?;
                if !reader.is_empty() {
                    return Err(format!(
                        "{} bytes after the MessagePack message",
                        reader.len()
                    ));
                }
                from_msgpack(value)?
            }
        };
        array::from_array(value)
    }

    /// Encodes a message into a frame for this serializer.
    pub fn encode(self, message: &Message) -> Frame {
        self.encode_value(array::to_array(message))
    }

    /// Encodes any JSON value (normally a message's array form) into a frame for this serializer, with
    /// the same binary convention as [`Serializer::encode`]. Nothing checks that `value` is a well-formed
    /// WAMP message: this is for tests and tools that need to put arbitrary (also malformed) arrays on the
    /// wire.
    pub fn encode_value(self, value: Value) -> Frame {
        match self {
            Self::Json => Frame::Text(Utf8Bytes::from(value.to_string())),
            Self::Msgpack => {
                let mut out = Vec::with_capacity(128);
                // Writing into a Vec cannot fail.
                let _ = rmpv::encode::write_value(&mut out, &to_msgpack(value));
                Frame::Binary(Bytes::from(out))
            }
        }
    }
}

fn from_msgpack(value: rmpv::Value) -> Result<Value, String> {
    Ok(match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(b),
        rmpv::Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::from(u),
            (_, Some(s)) => Value::from(s),
            _ => return Err("MessagePack integer out of range".into()),
        },
        rmpv::Value::F32(f) => float(f64::from(f))?,
        rmpv::Value::F64(f) => float(f)?,
        rmpv::Value::String(s) => match s.into_str() {
            Some(s) => Value::String(s),
            None => return Err("MessagePack string is not valid UTF-8".into()),
        },
        rmpv::Value::Binary(b) => {
            let mut s = String::with_capacity(1 + b.len() * 4 / 3 + 4);
            s.push(BINARY_MARK);
            base64::engine::general_purpose::STANDARD.encode_string(b, &mut s);
            Value::String(s)
        }
        rmpv::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(from_msgpack)
                .collect::<Result<_, _>>()?,
        ),
        rmpv::Value::Map(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let rmpv::Value::String(key) = key else {
                    return Err("MessagePack map keys must be strings".into());
                };
                let key = key
                    .into_str()
                    .ok_or("MessagePack map key is not valid UTF-8")?;
                map.insert(key, from_msgpack(value)?);
            }
            Value::Object(map)
        }
        rmpv::Value::Ext(kind, _) => {
            return Err(format!(
                "MessagePack extension type {kind} is not supported"
            ))
        }
    })
}

fn float(f: f64) -> Result<Value, String> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("{f} is not a JSON number"))
}

fn to_msgpack(value: Value) -> rmpv::Value {
    match value {
        Value::Null => rmpv::Value::Nil,
        Value::Bool(b) => rmpv::Value::Boolean(b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                rmpv::Value::from(u)
            } else if let Some(i) = n.as_i64() {
                rmpv::Value::from(i)
            } else {
                rmpv::Value::F64(n.as_f64().unwrap_or_default())
            }
        }
        Value::String(s) => match s.strip_prefix(BINARY_MARK) {
            Some(b64) => match base64::engine::general_purpose::STANDARD.decode(b64) {
                Ok(bytes) => rmpv::Value::Binary(bytes),
                Err(_) => rmpv::Value::String(s.into()),
            },
            None => rmpv::Value::String(s.into()),
        },
        Value::Array(items) => rmpv::Value::Array(items.into_iter().map(to_msgpack).collect()),
        Value::Object(map) => rmpv::Value::Map(
            map.into_iter()
                .map(|(k, v)| (rmpv::Value::String(k.into()), to_msgpack(v)))
                .collect(),
        ),
    }
}
