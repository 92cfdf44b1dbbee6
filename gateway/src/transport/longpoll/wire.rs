//! The long-poll transport's wire formats, apart from HTTP: the `open` request and answer, transport ids,
//! and how several WAMP messages share one HTTP body in the batched protocols (JSON: each message followed
//! by 0x1E; MessagePack: each message after its length, 4 bytes big-endian). Pure functions, so that the
//! parsing a client controls is tested without a server.

use std::collections::VecDeque;

use rand::RngCore;

use crate::wamp::codec::SUBPROTOCOLS;
use crate::wamp::{Frame, Serializer};

/// What ends each message of a batched JSON body.
pub(super) const JSON_SEPARATOR: u8 = 0x1E;

/// The suffix that names a protocol's batched variant (`wamp.2.json.batched`).
const BATCHED: &str = ".batched";

/// A negotiated long-poll protocol: the serializer, and whether bodies carry several messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Protocol {
    /// How each message is encoded.
    pub(super) serializer: Serializer,
    /// True for the `.batched` variants: a body holds any number of messages, each delimited.
    pub(super) batched: bool,
}

impl Protocol {
    /// The protocol a client names (`wamp.2.json`, `wamp.2.msgpack.batched`, ...); None when we do not
    /// speak it.
    pub(super) fn from_name(name: &str) -> Option<Self> {
        let (base, batched) = match name.strip_suffix(BATCHED) {
            Some(base) => (base, true),
            None => (name, false),
        };
        Some(Protocol {
            serializer: Serializer::from_subprotocol(base)?,
            batched,
        })
    }

    /// The name the client sent, rebuilt (for the `open` answer and logs).
    pub(super) fn name(self) -> String {
        let base = SUBPROTOCOLS
            .iter()
            .find(|name| Serializer::from_subprotocol(name) == Some(self.serializer))
            .copied()
            .unwrap_or("wamp.2.json");
        if self.batched {
            format!("{base}{BATCHED}")
        } else {
            base.to_string()
        }
    }

    /// The HTTP content type of this protocol's bodies.
    pub(super) fn content_type(self) -> &'static str {
        match self.serializer {
            Serializer::Json if !self.batched => "application/json; charset=utf-8",
            Serializer::Json => "text/plain; charset=utf-8",
            _ => "application/octet-stream",
        }
    }

    /// Splits a `send` body into its messages: the whole body for the plain protocols, each delimited
    /// message for the batched ones. `Err` names what is wrong with the framing.
    pub(super) fn split(self, body: &[u8]) -> Result<Vec<&[u8]>, String> {
        if !self.batched {
            return Ok(vec![body]);
        }
        if self.serializer == Serializer::Json {
            if body.last().is_some_and(|&b| b != JSON_SEPARATOR) {
                return Err(
                    "batched JSON body does not end with the 0x1E message separator".into(),
                );
            }
            return Ok(body
                .split(|&b| b == JSON_SEPARATOR)
                .filter(|message| !message.is_empty())
                .collect());
        }
        let mut messages = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            messages.push(crate::transport::batched::take_prefixed(&mut rest)?);
        }
        Ok(messages)
    }

    /// Takes what one `receive` answer carries from `pending`: one message for the plain protocols; for
    /// the batched ones, messages in order while the body stays within `max_bytes` (always at least one).
    /// Returns the body, and how many bytes and frames it delivered (for the outbox's accounting).
    pub(super) fn take_body(
        self,
        pending: &mut VecDeque<Frame>,
        max_bytes: usize,
    ) -> (Vec<u8>, usize, usize) {
        let Some(first) = pending.pop_front() else {
            return (Vec::new(), 0, 0);
        };
        if !self.batched {
            let delivered = first.len();
            return (first.as_bytes().to_vec(), delivered, 1);
        }
        let mut body = Vec::with_capacity(first.len() + 4);
        let (mut delivered, mut count) = (0, 0);
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            delivered += frame.len();
            count += 1;
            self.append(&mut body, &frame);
            if pending
                .front()
                .is_some_and(|frame| body.len() + frame.len() + 4 <= max_bytes)
            {
                next = pending.pop_front();
            }
        }
        (body, delivered, count)
    }

    fn append(self, body: &mut Vec<u8>, frame: &Frame) {
        if self.serializer == Serializer::Json {
            body.extend_from_slice(frame.as_bytes());
            body.push(JSON_SEPARATOR);
        } else {
            body.extend_from_slice(&(frame.len() as u32).to_be_bytes());
            body.extend_from_slice(frame.as_bytes());
        }
    }
}

/// Why an `open` request is refused (answered HTTP 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OpenRefused(pub(super) String);

/// Reads an `open` body, `{"protocols": ["wamp.2.json", ...]}`, and picks the first protocol offered that
/// we speak.
pub(super) fn negotiate(body: &[u8]) -> Result<Protocol, OpenRefused> {
    let refuse = |text: String| Err(OpenRefused(text));
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => {
            return refuse(format!(
            "the open request body must be JSON like {{\"protocols\": [\"wamp.2.json\"]}}: {error}"
        ))
        }
    };
    let Some(object) = value.as_object() else {
        return refuse(
            "the open request body must be a JSON object with a \"protocols\" list".into(),
        );
    };
    let Some(protocols) = object.get("protocols") else {
        return refuse("the open request body has no \"protocols\" list".into());
    };
    let Some(protocols) = protocols.as_array() else {
        return refuse("\"protocols\" must be a list of protocol names".into());
    };
    if protocols.is_empty() {
        return refuse("\"protocols\" is empty: name at least one protocol".into());
    }
    let mut names = Vec::with_capacity(protocols.len());
    for protocol in protocols {
        let Some(name) = protocol.as_str() else {
            return refuse("\"protocols\" must hold strings only".into());
        };
        names.push(name);
    }
    if let Some(protocol) = names.iter().find_map(|name| Protocol::from_name(name)) {
        return Ok(protocol);
    }
    let supported = SUBPROTOCOLS
        .iter()
        .flat_map(|name| [name.to_string(), format!("{name}{BATCHED}")])
        .collect::<Vec<_>>()
        .join(", ");
    refuse(format!(
        "none of the protocols offered is supported; this gateway speaks {supported}"
    ))
}

/// The `open` answer's body.
pub(super) fn opened(protocol: Protocol, transport: &str) -> String {
    serde_json::json!({"protocol": protocol.name(), "transport": transport}).to_string()
}

/// Characters in a transport id: 128 random bits as lowercase hex.
pub(super) const TRANSPORT_ID_LEN: usize = 32;

/// A new transport id: 128 bits from the thread's CSPRNG, as 32 lowercase hex digits. Knowing an id is
/// what lets a request act on a session, so it must not be guessable.
pub(super) fn new_transport_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `id` has the shape of an id we hand out (checked before any lookup, so that a garbled id is
/// refused without touching the table and without being echoed anywhere).
pub(super) fn is_transport_id(id: &str) -> bool {
    id.len() == TRANSPORT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json() -> Protocol {
        Protocol {
            serializer: Serializer::Json,
            batched: false,
        }
    }

    fn batched(serializer: Serializer) -> Protocol {
        Protocol {
            serializer,
            batched: true,
        }
    }

    fn text(s: &str) -> Frame {
        Frame::Text(s.to_string().into())
    }

    #[test]
    fn protocol_names_round_trip() {
        for name in [
            "wamp.2.json",
            "wamp.2.msgpack",
            "wamp.2.json.batched",
            "wamp.2.msgpack.batched",
        ] {
            assert_eq!(Protocol::from_name(name).unwrap().name(), name);
        }
        assert_eq!(Protocol::from_name("wamp.2.xml"), None);
        assert_eq!(Protocol::from_name("wamp.2.json.batched.batched"), None);
        assert_eq!(Protocol::from_name(".batched"), None);
    }

    #[test]
    fn open_picks_the_first_supported_protocol() {
        let chosen =
            negotiate(br#"{"protocols": ["wamp.2.cbor.x", "wamp.2.msgpack", "wamp.2.json"]}"#);
        assert_eq!(chosen.unwrap().name(), "wamp.2.msgpack");
        assert_eq!(negotiate(br#"{"protocols": ["wamp.2.json"]}"#), Ok(json()));
    }

    #[test]
    fn open_refusals_name_the_problem() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "must be JSON"),
            (b"{\"protocols\": [", "must be JSON"),
            (b"[\"wamp.2.json\"]", "JSON object"),
            (b"{}", "no \"protocols\""),
            (b"{\"protocols\": \"wamp.2.json\"}", "must be a list"),
            (b"{\"protocols\": []}", "is empty"),
            (b"{\"protocols\": [1]}", "strings only"),
        ];
        for (body, expected) in cases {
            let OpenRefused(text) = negotiate(body).unwrap_err();
            assert!(text.contains(expected), "{body:?}: {text}");
        }
        let OpenRefused(text) = negotiate(br#"{"protocols": ["wamp.2.xml"]}"#).unwrap_err();
        assert!(text.contains("none of the protocols"), "{text}");
        assert!(text.contains("wamp.2.json.batched"), "{text}");
    }

    #[test]
    fn opened_answer_is_what_autobahn_reads() {
        let body: serde_json::Value = serde_json::from_str(&opened(json(), "ab")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"protocol": "wamp.2.json", "transport": "ab"})
        );
    }

    #[test]
    fn transport_ids_are_128_bit_hex_and_distinct() {
        let a = new_transport_id();
        let b = new_transport_id();
        assert!(is_transport_id(&a) && is_transport_id(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!is_transport_id("open"));
        assert!(!is_transport_id(&a.to_uppercase()));
        assert!(!is_transport_id(&format!("{a}0")));
        assert!(!is_transport_id(&"g".repeat(TRANSPORT_ID_LEN)));
    }

    #[test]
    fn plain_bodies_are_one_message() {
        assert_eq!(json().split(b"[1,2]\x1e").unwrap(), vec![&b"[1,2]\x1e"[..]]);
        let mut pending = VecDeque::from([text("[1]"), text("[2]")]);
        assert_eq!(json().take_body(&mut pending, 1), (b"[1]".to_vec(), 3, 1));
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn batched_json_splits_on_the_separator() {
        let protocol = batched(Serializer::Json);
        let messages = protocol.split(b"[1]\x1e[2,\"a\"]\x1e").unwrap();
        assert_eq!(messages, vec![&b"[1]"[..], &b"[2,\"a\"]"[..]]);
        assert!(protocol.split(b"[1]\x1e[2]").unwrap_err().contains("0x1E"));
        assert_eq!(protocol.split(b"").unwrap(), Vec::<&[u8]>::new());
    }

    #[test]
    fn batched_msgpack_splits_on_length_prefixes() {
        let protocol = batched(Serializer::Msgpack);
        let body = [0, 0, 0, 2, 0x91, 1, 0, 0, 0, 1, 0x90];
        assert_eq!(
            protocol.split(&body).unwrap(),
            vec![&[0x91, 1][..], &[0x90][..]]
        );
        assert!(protocol
            .split(&[0, 0, 0, 9, 1])
            .unwrap_err()
            .contains("declares 9"));
        assert!(protocol.split(&[0, 0]).unwrap_err().contains("too few"));
    }

    #[test]
    fn batched_receive_bodies_stay_within_the_bound() {
        let protocol = batched(Serializer::Json);
        let mut pending = VecDeque::from([text("[1]"), text("[22]"), text("[333]")]);
        // "[1]\x1e" (4) + "[22]\x1e" (5) fits 10 with the margin of 4; "[333]" does not.
        let (body, delivered, frames) = protocol.take_body(&mut pending, 13);
        assert_eq!(body, b"[1]\x1e[22]\x1e".to_vec());
        assert_eq!((delivered, frames), (7, 2));
        assert_eq!(pending.len(), 1);
        // A message larger than the bound still goes out, alone.
        let (body, _, _) = protocol.take_body(&mut pending, 1);
        assert_eq!(body, b"[333]\x1e".to_vec());
        assert!(pending.is_empty());

        let protocol = batched(Serializer::Msgpack);
        let mut pending = VecDeque::from([
            Frame::Binary(vec![0x91, 1].into()),
            Frame::Binary(vec![0x90].into()),
        ]);
        let (body, delivered, frames) = protocol.take_body(&mut pending, 1024);
        assert_eq!(body, vec![0, 0, 0, 2, 0x91, 1, 0, 0, 0, 1, 0x90]);
        assert_eq!((delivered, frames), (3, 2));
    }
}
