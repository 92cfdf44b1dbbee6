//! The three WAMP serializers (JSON, MessagePack, CBOR): frames to messages and back.
//!
//! Decoding goes through the message's array form as a JSON value; encoding serializes the borrowed message
//! straight into the frame's bytes, so fan-out does not copy payloads. MessagePack binary values become the
//! WAMP JSON convention for binary (a string holding a NUL byte then base64) and back, so that a JSON
//! subscriber and a MessagePack publisher see the same value; CBOR byte strings do the same (see
//! [`super::cbor`]).

use base64::Engine;
use bytes::Bytes;
use serde_json::{Number, Value};

use super::array;
use super::cbor;
use super::message::Message;
use super::msgpack::{self, BINARY_MARK};

/// A serializer negotiated through the WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serializer {
    /// `wamp.2.json`: text frames.
    Json,
    /// `wamp.2.msgpack`: binary frames.
    Msgpack,
    /// `wamp.2.cbor`: binary frames.
    Cbor,
}

/// The serializers' own subprotocol names, in order of preference. Framing variants are the transports':
/// the WebSocket's `.batched` subprotocols are in `transport/upgrade.rs`, long-poll adds its own.
pub const SUBPROTOCOLS: [&str; 3] = ["wamp.2.json", "wamp.2.msgpack", "wamp.2.cbor"];

/// An encoded message ready for the socket: its bytes and whether they go out as a WebSocket text or
/// binary frame. Cloning it shares the bytes, so one EVENT encoding can go to every subscriber. The
/// transport turns it into its WebSocket library's message; nothing here depends on that library.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A WebSocket text frame (JSON).
    Text(Text),
    /// A WebSocket binary frame (MessagePack).
    Binary(Bytes),
}

/// The bytes of a text frame, always valid UTF-8: they can only be made from a `String`. Its own type
/// rather than a bare `Bytes`, so that matching `Frame::Text` still gives a string (`as_str`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(Bytes);

impl Text {
    /// The text as a string.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a Text is made from a String")
    }

    /// The UTF-8 bytes, for the socket.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl Frame {
    /// The encoded bytes, whichever kind of frame.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Frame::Text(text) => &text.0,
            Frame::Binary(bytes) => bytes,
        }
    }

    /// The encoded size in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True when the frame holds no bytes (never the case for an encoded message).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How deep rmpv may recurse into a MessagePack frame. Its default (1024) lets a few hundred bytes of
/// nested arrays overflow a 2 MiB thread stack in debug builds, aborting the whole process. rmpv spends
/// two units per array or map level and three on a string leaf, so this admits the same 127 levels of
/// nesting as serde_json's recursion limit for JSON frames (one more when the innermost value is a
/// number, nil or empty container).
const MSGPACK_MAX_DEPTH: usize = 2 * 127 + 3;

/// The protocol-violation text for input nested past the limit, the same for every serializer.
pub(super) const TOO_DEEP: &str = "message nests lists and dicts deeper than 127 levels";

impl Serializer {
    /// The serializer for one of [`SUBPROTOCOLS`].
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        match name {
            "wamp.2.json" => Some(Self::Json),
            "wamp.2.msgpack" => Some(Self::Msgpack),
            "wamp.2.cbor" => Some(Self::Cbor),
            _ => None,
        }
    }

    /// The serializer's name in WAMP subprotocol names (`wamp.2.<name>`) and the session meta API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Msgpack => "msgpack",
            Self::Cbor => "cbor",
        }
    }

    /// The serializer for a RawSocket handshake's serializer id (WAMP spec: 1 JSON, 2 MessagePack,
    /// 3 CBOR).
    pub fn from_rawsocket_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Json),
            2 => Some(Self::Msgpack),
            3 => Some(Self::Cbor),
            _ => None,
        }
    }

    /// Decodes one frame's bytes into a message; `Err` is a protocol violation text for the peer.
    pub fn decode(self, bytes: &[u8]) -> Result<Message, String> {
        let value = match self {
            Self::Json => serde_json::from_slice::<Value>(bytes).map_err(|e| {
                if e.to_string().contains("recursion limit") {
                    TOO_DEEP.to_string()
                } else {
                    format!("frame is not valid JSON: {e}")
                }
            })?,
            Self::Msgpack => {
                let mut reader = bytes;
                let value = rmpv::decode::read_value_with_max_depth(&mut reader, MSGPACK_MAX_DEPTH)
                    .map_err(|e| match e {
                        rmpv::decode::Error::DepthLimitExceeded => TOO_DEEP.to_string(),
                        e => format!("frame is not valid MessagePack: {e}"),
                    })?;
                if !reader.is_empty() {
                    return Err(format!(
                        "{} bytes after the MessagePack message",
                        reader.len()
                    ));
                }
                from_msgpack(value)?
            }
            Self::Cbor => cbor::from_slice(bytes)?,
        };
        array::from_array(value)
    }

    /// Encodes a message into a frame for this serializer, writing straight from the borrowed message.
    pub fn encode(self, message: &Message) -> Frame {
        self.encode_serialize(message)
    }

    /// Encodes any JSON value (normally a message's array form) into a frame for this serializer, with
    /// the same binary convention as [`Serializer::encode`]. Nothing checks that `value` is a well-formed
    /// WAMP message: this is for tests and tools that need to put arbitrary (also malformed) arrays on the
    /// wire.
    pub fn encode_value(self, value: Value) -> Frame {
        self.encode_serialize(&value)
    }

    fn encode_serialize<T: serde::Serialize + ?Sized>(self, value: &T) -> Frame {
        // Messages and JSON values hold only strings, numbers, lists and dicts with string keys, which
        // both serializers always write.
        match self {
            Self::Json => Frame::Text(Text::from(
                serde_json::to_string(value).expect("a message serializes to JSON"),
            )),
            Self::Msgpack => Frame::Binary(Bytes::from(
                msgpack::to_vec(value).expect("a message serializes to MessagePack"),
            )),
            Self::Cbor => Frame::Binary(Bytes::from(
                cbor::to_vec(value).expect("a message serializes to CBOR"),
            )),
        }
    }
}

// By hand, not rmpv's serde bridge: that has no WAMP binary convention, nor these protocol-error texts.
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wamp::message::Payload;

    fn msgpack(value: &rmpv::Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).expect("write to a Vec");
        out
    }

    #[test]
    fn msgpack_binary_becomes_the_json_binary_convention_and_back() {
        use rmpv::Value as M;
        // Lengths 0..=3 cover every base64 padding case; 300 bytes needs a bin16 header.
        let blobs: Vec<Vec<u8>> = [0usize, 1, 2, 3, 300]
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 % 256) as u8).collect())
            .collect();
        let args = M::Array(blobs.iter().cloned().map(M::Binary).collect());
        let wire = msgpack(&M::Array(vec![
            M::from(16),
            M::from(1),
            M::Map(vec![]),
            M::from("com.example.topic"),
            args,
            M::Map(vec![(M::from("blob"), M::Binary(vec![0, 255]))]),
        ]));

        let message = Serializer::Msgpack.decode(&wire).expect("valid msgpack");
        let Message::Publish {
            payload: Payload::ArgsKwargs(args, kwargs),
            ..
        } = &message
        else {
            panic!("unexpected {message:?}");
        };
        assert_eq!(args[0], json!("\u{0}"));
        assert_eq!(args[1], json!("\u{0}AA=="));
        assert_eq!(args[2], json!("\u{0}AAc="));
        assert_eq!(args[3], json!("\u{0}AAcO"));
        assert_eq!(kwargs["blob"], json!("\u{0}AP8="));

        // MessagePack -> JSON -> MessagePack gives back the very same bytes.
        let text = Serializer::Json.encode(&message);
        assert!(std::str::from_utf8(text.as_bytes())
            .unwrap()
            .contains(r#"{"blob":"\u0000AP8="}"#));
        let from_json = Serializer::Json
            .decode(text.as_bytes())
            .expect("valid json");
        assert_eq!(from_json, message);
        assert_eq!(
            Serializer::Msgpack.encode(&from_json).as_bytes(),
            wire.as_slice()
        );

        // A transparent (E2EE) payload is binary too.
        let e2ee = json!([36, 1, 2, {"enc_algo": "cryptobox"}, "\u{0}g6Vj"]);
        let frame = Serializer::Msgpack.encode_value(e2ee.clone());
        assert_eq!(
            frame.as_bytes()[frame.as_bytes().len() - 5..],
            [0xc4, 3, 0x83, 0xa5, 0x63]
        );
        let event = Serializer::Msgpack.decode(frame.as_bytes()).expect("valid");
        assert_eq!(array::to_array(&event), e2ee);

        // A NUL-prefixed string that is not base64 stays a string.
        let odd = Serializer::Msgpack.encode_value(json!([3, {}, "\u{0}not base64!"]));
        let abort = Serializer::Msgpack.decode(odd.as_bytes()).expect("valid");
        assert_eq!(array::to_array(&abort)[2], json!("\u{0}not base64!"));
    }

    #[test]
    fn bytes_after_a_msgpack_message_are_rejected() {
        let goodbye = Message::Goodbye {
            details: Default::default(),
            reason: "wamp.close.normal".into(),
        };
        let mut wire = Serializer::Msgpack.encode(&goodbye).as_bytes().to_vec();
        assert_eq!(Serializer::Msgpack.decode(&wire), Ok(goodbye));
        wire.push(0xc0);
        assert_eq!(
            Serializer::Msgpack.decode(&wire),
            Err("1 bytes after the MessagePack message".into())
        );
        // Two messages in one frame.
        let twice = [&wire[..wire.len() - 1], &wire[..wire.len() - 1]].concat();
        assert!(Serializer::Msgpack
            .decode(&twice)
            .unwrap_err()
            .contains("bytes after the MessagePack message"));
        // And a truncated one.
        let err = Serializer::Msgpack
            .decode(&wire[..wire.len() - 3])
            .unwrap_err();
        assert!(err.contains("not valid MessagePack"), "{err}");
        let err = Serializer::Json
            .decode(b"[6,{},\"wamp.close.normal\"] x")
            .unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn undecodable_msgpack_values_are_rejected() {
        use rmpv::Value as M;
        let cases = [
            (M::Ext(1, vec![0]), "extension type 1"),
            (
                M::Map(vec![(M::from(1), M::Nil)]),
                "map keys must be strings",
            ),
            (M::F64(f64::NAN), "is not a JSON number"),
            (M::from(i64::MIN), "must be an id"),
        ];
        for (value, expected) in cases {
            let wire = msgpack(&M::Array(vec![M::from(33), value.clone(), M::from(1)]));
            let err = Serializer::Msgpack.decode(&wire).unwrap_err();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }

    #[test]
    fn deeply_nested_input_is_rejected_without_crashing() {
        const DEPTH: usize = 100_000;
        let json = "[".repeat(DEPTH);
        let err = Serializer::Json.decode(json.as_bytes()).unwrap_err();
        assert!(err.contains("not valid JSON") || err == TOO_DEEP, "{err}");

        let nested_args = format!(
            "[16,1,{{}},\"t\",{}{}]",
            "[".repeat(DEPTH),
            "]".repeat(DEPTH)
        );
        let err = Serializer::Json.decode(nested_args.as_bytes()).unwrap_err();
        assert_eq!(err, TOO_DEEP);

        let mut msgpack = vec![0x95, 16, 1, 0x80, 0xa1, b't'];
        msgpack.extend(std::iter::repeat_n(0x91, DEPTH));
        msgpack.push(0xc0);
        let err = Serializer::Msgpack.decode(&msgpack).unwrap_err();
        assert_eq!(err, TOO_DEEP);

        let mut cbor = vec![0x85, 16, 1, 0xa0, 0x61, b't'];
        cbor.extend(std::iter::repeat_n(0x81, DEPTH));
        cbor.push(0xf6);
        let err = Serializer::Cbor.decode(&cbor).unwrap_err();
        assert_eq!(err, TOO_DEEP);

        // Every serializer admits the same nesting: the message array plus 126 levels of Arguments around
        // a string (127 levels, serde_json's limit), and not one level more.
        let nested = |levels: usize| {
            let args = (0..levels).fold(json!("leaf"), |inner, _| json!([inner]));
            json!([16, 1, {}, "t", args])
        };
        for serializer in [Serializer::Json, Serializer::Msgpack, Serializer::Cbor] {
            let deepest = nested(126);
            let frame = serializer.encode_value(deepest.clone());
            let message = serializer
                .decode(frame.as_bytes())
                .expect("127 levels are fine");
            assert_eq!(array::to_array(&message), deepest);
            let frame = serializer.encode_value(nested(127));
            let err = serializer.decode(frame.as_bytes()).unwrap_err();
            assert_eq!(err, TOO_DEEP, "{serializer:?}");
        }
    }
}
