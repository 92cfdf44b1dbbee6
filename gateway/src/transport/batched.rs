//! The batched WebSocket subprotocols (`wamp.2.json.batched`, `wamp.2.msgpack.batched`,
//! `wamp.2.cbor.batched`; WAMP spec, "Batched WebSocket transport"): one WebSocket message carries
//! several WAMP messages. JSON messages are each followed by the ASCII record separator 0x1E; binary
//! (MessagePack, CBOR) messages are each prefixed with their length as a 4-byte big-endian integer.
//!
//! The spec writes the separator as `\30` and as byte 0x1e; Autobahn|Python (and so Crossbar.io) took
//! `\30` as an octal escape and separates with 0x18. JSON text never holds a raw control character, so
//! both split unambiguously: the gateway reads either, and answers with the one the client used
//! ([`json_separator`]; the client speaks first, with HELLO), 0x1E until it knows.
//!
//! Framing is the WebSocket connection's, not the serializer's: the serializer encodes one message as
//! for any transport (one encoding of an event is still shared by every subscriber), and the writer of a
//! batched connection packs several queued frames into one WebSocket message.

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::wamp::codec::Text;
use crate::wamp::{Frame, Serializer};

/// The separator that ends each JSON message of a batch (the spec's record separator).
pub const SEPARATOR: u8 = 0x1E;
/// The separator Autobahn|Python writes (`b"\30"`, octal), read as well.
pub const SEPARATOR_AUTOBAHN_PYTHON: u8 = 0x18;

fn is_separator(byte: u8) -> bool {
    byte == SEPARATOR || byte == SEPARATOR_AUTOBAHN_PYTHON
}

/// The separator a JSON batch from a client ends with, if it ends with one.
pub fn json_separator(bytes: &[u8]) -> Option<u8> {
    bytes.last().copied().filter(|&b| is_separator(b))
}

/// The most WAMP messages one inbound WebSocket message may carry: a batch is handled in one go, past
/// the reader's back-pressure check, so its size is bounded here (its bytes by the WebSocket read
/// limit).
pub const MAX_MESSAGES: usize = 1024;

/// How many bytes the writer packs into one outbound WebSocket message before starting another (a
/// single larger frame still goes out whole, alone).
pub const PACK_BYTES: usize = 64 * 1024;

/// Splits one inbound WebSocket message of a batched connection into its WAMP messages, without copying
/// them; `Err` is the protocol-violation text. Every declared length is checked against the bytes that
/// are there: a lying prefix is refused, never allocated for.
pub fn split(serializer: Serializer, bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut messages = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if messages.len() == MAX_MESSAGES {
            return Err(format!("a batch holds more than {MAX_MESSAGES} messages"));
        }
        let message = match serializer {
            Serializer::Json => {
                // Each message is followed by the separator; a last one without it is taken as is.
                let end = rest
                    .iter()
                    .position(|&b| is_separator(b))
                    .unwrap_or(rest.len());
                let message = &rest[..end];
                rest = rest.get(end + 1..).unwrap_or_default();
                message
            }
            Serializer::Msgpack | Serializer::Cbor => take_prefixed(&mut rest)?,
        };
        if message.is_empty() {
            return Err("a batch holds an empty message".into());
        }
        messages.push(message);
    }
    if messages.is_empty() {
        return Err("an empty batch".into());
    }
    Ok(messages)
}

/// Takes the next message of a binary batch (a 4-byte big-endian length, then that many bytes) off the
/// front of `rest`; the declared length is checked against the bytes that are there, never allocated
/// for. Shared with the batched long-poll protocols, which frame binary messages the same way.
pub fn take_prefixed<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let Some((prefix, after)) = rest.split_first_chunk::<4>() else {
        return Err(format!(
            "a batch ends with {} bytes, too few for a 4-byte length prefix",
            rest.len()
        ));
    };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > after.len() {
        return Err(format!(
            "a batched message declares {len} bytes with {} bytes left in the batch",
            after.len()
        ));
    }
    let (message, after) = after.split_at(len);
    *rest = after;
    Ok(message)
}

/// Packs queued frames from the front of `batch` into one WebSocket message of a batched connection, up
/// to [`PACK_BYTES`] (at least one frame), JSON frames each followed by `separator`; returns it with the
/// encoded bytes and the number of frames it holds (what the outbox is told was written). `None` when
/// `batch` is empty.
pub fn pack(batch: &mut VecDeque<Frame>, separator: u8) -> Option<(Frame, usize, usize)> {
    let first = batch.front()?;
    let binary = matches!(first, Frame::Binary(_));
    let mut out = BytesMut::new();
    let (mut bytes, mut count) = (0, 0);
    while let Some(frame) = batch.front() {
        if count > 0 && out.len() + frame.len() + 4 > PACK_BYTES {
            break;
        }
        let Some(frame) = batch.pop_front() else {
            break;
        };
        bytes += frame.len();
        count += 1;
        push(&mut out, &frame, binary, separator);
    }
    Some((seal(out, binary), bytes, count))
}

/// One frame alone as a batch of one (the closing ABORT or GOODBYE of a batched connection).
pub fn single(frame: Frame, separator: u8) -> Frame {
    let binary = matches!(frame, Frame::Binary(_));
    let mut out = BytesMut::with_capacity(frame.len() + 4);
    push(&mut out, &frame, binary, separator);
    seal(out, binary)
}

fn push(out: &mut BytesMut, frame: &Frame, binary: bool, separator: u8) {
    if binary {
        let len = u32::try_from(frame.len()).expect("a frame is smaller than 4 GiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(frame.as_bytes());
    } else {
        out.extend_from_slice(frame.as_bytes());
        out.extend_from_slice(&[separator]);
    }
}

fn seal(out: BytesMut, binary: bool) -> Frame {
    if binary {
        Frame::Binary(out.freeze())
    } else {
        // JSON text and the ASCII separator: UTF-8 throughout.
        let text = String::from_utf8(Vec::from(out)).expect("JSON frames and 0x1E are UTF-8");
        Frame::Text(Text::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn text(s: &str) -> Frame {
        Frame::Text(Text::from(s.to_string()))
    }

    #[test]
    fn json_batches_split_on_the_record_separator() {
        let batch = b"[1,\"a\",{}]\x1e[6,{},\"b\"]\x1e";
        assert_eq!(
            split(Serializer::Json, batch).unwrap(),
            [&b"[1,\"a\",{}]"[..], b"[6,{},\"b\"]"]
        );
        // A last message without its separator is taken.
        assert_eq!(
            split(Serializer::Json, b"[1]\x1e[2]").unwrap(),
            [b"[1]", b"[2]"]
        );
        // Autobahn|Python's 0x18 separates too, and is what the gateway answers such a client with.
        assert_eq!(
            split(Serializer::Json, b"[1]\x18[2]\x18").unwrap(),
            [b"[1]", b"[2]"]
        );
        assert_eq!(json_separator(b"[1]\x18"), Some(0x18));
        assert_eq!(json_separator(b"[1]\x1e"), Some(0x1e));
        assert_eq!(json_separator(b"[1]"), None);
        for bad in [&b""[..], b"\x1e", b"[1]\x1e\x1e[2]\x1e"] {
            assert!(split(Serializer::Json, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn binary_batches_split_on_length_prefixes_that_must_not_lie() {
        let batch = [&[0, 0, 0, 2][..], b"ab", &[0, 0, 0, 1], b"c"].concat();
        for serializer in [Serializer::Msgpack, Serializer::Cbor] {
            assert_eq!(split(serializer, &batch).unwrap(), [&b"ab"[..], b"c"]);
        }
        let cases: [(&[u8], &str); 5] = [
            (
                &[0xff, 0xff, 0xff, 0xff, 1, 2, 3],
                "declares 4294967295 bytes with 3 bytes left",
            ),
            (&[0, 0, 0, 3, 1, 2], "declares 3 bytes with 2 bytes left"),
            (&[0, 0, 0, 1, 1, 0, 0], "ends with 2 bytes"),
            (&[0, 0, 0, 0], "an empty message"),
            (&[], "an empty batch"),
        ];
        for (bad, expected) in cases {
            let err = split(Serializer::Msgpack, bad).unwrap_err();
            assert!(err.contains(expected), "{bad:?}: {err}");
        }
    }

    #[test]
    fn batches_are_bounded_in_count() {
        let ok = b"[1]\x1e".repeat(MAX_MESSAGES);
        assert_eq!(split(Serializer::Json, &ok).unwrap().len(), MAX_MESSAGES);
        let over = b"[1]\x1e".repeat(MAX_MESSAGES + 1);
        assert!(split(Serializer::Json, &over)
            .unwrap_err()
            .contains("more than 1024"));
    }

    #[test]
    fn queued_frames_pack_into_batches_that_split_back() {
        let mut queue: VecDeque<Frame> = [text("[1]"), text("[2,\"é\"]")].into();
        let (frame, bytes, count) = pack(&mut queue, SEPARATOR).unwrap();
        assert_eq!((bytes, count), (11, 2));
        assert!(queue.is_empty() && pack(&mut queue, SEPARATOR).is_none());
        let Frame::Text(t) = &frame else { panic!() };
        assert_eq!(t.as_str(), "[1]\x1e[2,\"é\"]\x1e");
        assert_eq!(
            split(Serializer::Json, frame.as_bytes()).unwrap(),
            [&b"[1]"[..], "[2,\"é\"]".as_bytes()]
        );

        // Binary frames, cut at PACK_BYTES; a frame larger than that goes alone.
        let big = Frame::Binary(Bytes::from(vec![7u8; PACK_BYTES]));
        let small = Frame::Binary(Bytes::from_static(b"xy"));
        let mut queue: VecDeque<Frame> = [small.clone(), big.clone(), small.clone()].into();
        let (first, _, count) = pack(&mut queue, SEPARATOR).unwrap();
        assert_eq!(count, 1);
        assert_eq!(first.as_bytes(), [0, 0, 0, 2, b'x', b'y']);
        let (second, bytes, count) = pack(&mut queue, SEPARATOR).unwrap();
        assert_eq!((bytes, count), (PACK_BYTES, 1));
        assert_eq!(
            split(Serializer::Cbor, second.as_bytes()).unwrap(),
            [big.as_bytes()]
        );
        assert_eq!(pack(&mut queue, SEPARATOR).unwrap().2, 1);

        assert_eq!(
            single(small, SEPARATOR).as_bytes(),
            [0, 0, 0, 2, b'x', b'y']
        );
        assert_eq!(single(text("[1]"), 0x18).as_bytes(), b"[1]\x18");
    }
}
