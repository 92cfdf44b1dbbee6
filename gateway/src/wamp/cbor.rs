//! CBOR (`wamp.2.cbor`, RFC 8949) on the gateway's terms: frames decode into the same JSON values as the
//! other serializers, and messages encode straight from borrowed values through serde.
//!
//! Headers are read and written by `ciborium-ll` (the ciborium project's low-level codec); the values
//! are built here, not by ciborium's serde bridge, because the gateway must bound what a peer's frame
//! makes it do and must map binary to the WAMP convention:
//!
//! - every declared length is checked against the bytes left in the frame before anything is allocated
//!   (an item takes at least one byte, so an array of n items needs n bytes, a map 2n), so a 20-byte
//!   frame declaring a 4 GiB string or array is refused at once;
//! - nesting stops at the same 127 levels as the JSON and MessagePack decoders (a protocol violation,
//!   never a stack overflow);
//! - byte strings become the WAMP JSON convention for binary (a string holding a NUL byte then base64),
//!   and such strings are written back as byte strings, as for MessagePack, so subscribers on any
//!   serializer see the same value;
//! - map keys must be text strings; tags are refused (bignums, dates... have no JSON form); `undefined`
//!   reads as null; NaN and the infinities are refused (no JSON number); indefinite-length items are read.

use base64::Engine;
use ciborium_ll::{simple, Decoder, Encoder, Header};
use serde::Serialize;
use serde_json::{Number, Value};

use super::binary_writer::{self, Error, Format, BINARY_MARK};
use super::codec::TOO_DEEP;

/// The deepest nesting of lists and dicts a frame may have (the message array counts as one level), the
/// same as serde_json's recursion limit admits for JSON frames.
pub(crate) const MAX_DEPTH: usize = 127;

/// Why a frame could not be decoded: the protocol-violation text for the peer.
pub(crate) type DecodeError = String;

/// Decodes one CBOR data item filling all of `bytes` into a JSON value.
pub(crate) fn from_slice(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut reader = Reader {
        decoder: Decoder::from(bytes),
        total: bytes.len(),
    };
    let value = reader.value(0)?;
    let left = reader.left();
    if left > 0 {
        return Err(format!("{left} bytes after the CBOR message"));
    }
    Ok(value)
}

struct Reader<'a> {
    decoder: Decoder<&'a [u8]>,
    total: usize,
}

/// What a data item starts with: a value, or the break that ends an indefinite-length list or dict.
enum Item {
    Value(Value),
    Break,
}

impl Reader<'_> {
    fn left(&mut self) -> usize {
        self.total - self.decoder.offset()
    }

    fn header(&mut self) -> Result<Header, DecodeError> {
        self.decoder.pull().map_err(|e| match e {
            ciborium_ll::Error::Io(_) => {
                "frame is not valid CBOR: it ends inside an item".to_string()
            }
            ciborium_ll::Error::Syntax(at) => {
                format!("frame is not valid CBOR: malformed header at byte {at}")
            }
        })
    }

    /// Checks that `len` items of at least `each` bytes fit in what is left of the frame.
    fn fits(&mut self, len: usize, each: usize, what: &str) -> Result<(), DecodeError> {
        let left = self.left();
        if len.checked_mul(each).is_none_or(|need| need > left) {
            return Err(format!(
                "frame is not valid CBOR: {what} of {len} declared with {left} bytes left in the frame"
            ));
        }
        Ok(())
    }

    /// Reads `len` bytes of content (after its length was checked by [`Reader::fits`]).
    fn content(&mut self, len: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        self.fits(len, 1, "a string")?;
        let start = out.len();
        out.resize(start + len, 0);
        ciborium_io::Read::read_exact(&mut self.decoder, &mut out[start..])
            .map_err(|_| "frame is not valid CBOR: it ends inside a string".to_string())
    }

    /// The content of a (possibly indefinite-length) byte or text string: its chunks must be of the
    /// same major type, definite, and end with a break.
    fn string(&mut self, len: Option<usize>, text: bool) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        match len {
            Some(len) => self.content(len, &mut out)?,
            None => loop {
                match (self.header()?, text) {
                    (Header::Break, _) => break,
                    (Header::Text(Some(len)), true) | (Header::Bytes(Some(len)), false) => {
                        self.content(len, &mut out)?
                    }
                    _ => {
                        return Err(
                            "frame is not valid CBOR: a chunk of an indefinite-length string is not a definite string of its type"
                                .into(),
                        )
                    }
                }
            },
        }
        Ok(out)
    }

    fn text(&mut self, len: Option<usize>) -> Result<String, DecodeError> {
        String::from_utf8(self.string(len, true)?)
            .map_err(|_| "CBOR text string is not valid UTF-8".to_string())
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        match self.item(depth)? {
            Item::Value(value) => Ok(value),
            Item::Break => {
                Err("frame is not valid CBOR: a break outside an indefinite-length item".into())
            }
        }
    }

    fn item(&mut self, depth: usize) -> Result<Item, DecodeError> {
        Ok(Item::Value(match self.header()? {
            Header::Positive(n) => Value::from(n),
            Header::Negative(n) => match i64::try_from(n) {
                // The value is -1 - n.
                Ok(n) => Value::from(-1 - n),
                Err(_) => return Err("CBOR integer out of range".into()),
            },
            Header::Float(f) => Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| format!("{f} is not a JSON number"))?,
            Header::Simple(simple::FALSE) => Value::Bool(false),
            Header::Simple(simple::TRUE) => Value::Bool(true),
            Header::Simple(simple::NULL | simple::UNDEFINED) => Value::Null,
            Header::Simple(other) => {
                return Err(format!("CBOR simple value {other} is not supported"))
            }
            Header::Break => return Ok(Item::Break),
            Header::Tag(tag) => return Err(format!("CBOR tag {tag} is not supported")),
            Header::Bytes(len) => {
                let bytes = self.string(len, false)?;
                let mut s = String::with_capacity(1 + bytes.len().div_ceil(3) * 4);
                s.push(BINARY_MARK);
                base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut s);
                Value::String(s)
            }
            Header::Text(len) => Value::String(self.text(len)?),
            Header::Array(len) => {
                let depth = self.deeper(depth)?;
                let mut items = Vec::new();
                match len {
                    Some(len) => {
                        self.fits(len, 1, "an array")?;
                        items.reserve_exact(len);
                        for _ in 0..len {
                            items.push(self.value(depth)?);
                        }
                    }
                    None => {
                        while let Item::Value(value) = self.item(depth)? {
                            items.push(value);
                        }
                    }
                }
                Value::Array(items)
            }
            Header::Map(len) => {
                let depth = self.deeper(depth)?;
                let mut map = serde_json::Map::new();
                match len {
                    Some(len) => {
                        self.fits(len, 2, "a map")?;
                        for _ in 0..len {
                            let key = self.key()?.ok_or(
                                "frame is not valid CBOR: a break inside a definite-length map",
                            )?;
                            map.insert(key, self.value(depth)?);
                        }
                    }
                    None => {
                        while let Some(key) = self.key()? {
                            map.insert(key, self.value(depth)?);
                        }
                    }
                }
                Value::Object(map)
            }
        }))
    }

    /// A map key (a text string), or None at the break ending an indefinite-length map.
    fn key(&mut self) -> Result<Option<String>, DecodeError> {
        match self.header()? {
            Header::Text(len) => self.text(len).map(Some),
            Header::Break => Ok(None),
            _ => Err("CBOR map keys must be text strings".into()),
        }
    }

    fn deeper(&self, depth: usize) -> Result<usize, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(TOO_DEEP.into());
        }
        Ok(depth + 1)
    }
}

/// Encodes `value` as CBOR: definite lengths, the shortest integer and lossless float forms.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    binary_writer::to_vec::<Cbor, T>(value)
}

/// CBOR's encodings of the values a message holds, for the shared serde writer (`binary_writer.rs`).
struct Cbor;

// Writing into a Vec cannot fail, so the results of the encoder are ignored below.
fn push(out: &mut Vec<u8>, header: Header) {
    let _ = Encoder::from(out).push(header);
}

fn length(len: Option<usize>) -> Result<usize, Error> {
    len.ok_or_else(|| Error("CBOR is written with lengths known up front".into()))
}

impl Format for Cbor {
    fn nil(out: &mut Vec<u8>) {
        push(out, Header::Simple(simple::NULL));
    }
    fn bool(out: &mut Vec<u8>, v: bool) {
        push(
            out,
            Header::Simple(if v { simple::TRUE } else { simple::FALSE }),
        );
    }
    fn unsigned(out: &mut Vec<u8>, v: u64) {
        push(out, Header::Positive(v));
    }
    fn negative(out: &mut Vec<u8>, v: i64) {
        // CBOR's negative integers carry -1 - v, which fits a u64 for every i64 below zero.
        push(out, Header::Negative(!(v as u64)));
    }
    fn float(out: &mut Vec<u8>, v: f64) {
        push(out, Header::Float(v));
    }
    fn text(out: &mut Vec<u8>, v: &str) {
        push(out, Header::Text(Some(v.len())));
        out.extend_from_slice(v.as_bytes());
    }
    fn bytes(out: &mut Vec<u8>, v: &[u8]) {
        push(out, Header::Bytes(Some(v.len())));
        out.extend_from_slice(v);
    }
    fn list(out: &mut Vec<u8>, len: Option<usize>) -> Result<(), Error> {
        push(out, Header::Array(Some(length(len)?)));
        Ok(())
    }
    fn dict(out: &mut Vec<u8>, len: Option<usize>) -> Result<(), Error> {
        push(out, Header::Map(Some(length(len)?)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ciborium::Value as C;
    use serde_json::json;

    use super::*;

    fn cbor(value: &C) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).expect("write to a Vec");
        out
    }

    #[test]
    fn decodes_what_ciborium_writes_and_maps_bytes_to_the_binary_convention() {
        let wire = cbor(&C::Array(vec![
            C::from(16),
            C::from(1),
            C::Map(vec![]),
            C::from("com.example.topic"),
            C::Array(vec![
                C::Bytes(vec![]),
                C::Bytes(vec![0]),
                C::Bytes(vec![0, 7]),
                C::Bytes(vec![0, 7, 14]),
                C::from(-1),
                C::from(i64::MIN),
                C::from(u64::MAX),
                C::Float(1.5),
                C::Float(0.1),
                C::Bool(true),
                C::Null,
                C::from("é"),
            ]),
            C::Map(vec![(C::from("blob"), C::Bytes(vec![0, 255]))]),
        ]));
        let value = from_slice(&wire).expect("valid CBOR");
        assert_eq!(
            value,
            json!([16, 1, {}, "com.example.topic",
                ["\u{0}", "\u{0}AA==", "\u{0}AAc=", "\u{0}AAcO", -1, i64::MIN, u64::MAX, 1.5, 0.1, true, null, "é"],
                {"blob": "\u{0}AP8="}])
        );
        // And back: the same bytes as ciborium writes for the same items (shortest forms).
        assert_eq!(to_vec(&value).unwrap(), wire);
    }

    #[test]
    fn encodes_what_ciborium_reads() {
        let value = json!([0, 23, 24, 255, 256, 65_536, u64::MAX, -1, -24, -25, i64::MIN,
            0.0, -0.5, 1.5e300, 0.1, null, true, false, "", "\u{0}", "\u{0}AAE=", "\u{0}not base64!",
            "x".repeat(300), {"\u{0}AAE=": "\u{0}AAE=", "nested": {"list": [[[]]], "empty": {}}}]);
        let wire = to_vec(&value).unwrap();
        let read: C = ciborium::from_reader(wire.as_slice()).expect("ciborium reads it");
        let C::Array(items) = &read else {
            panic!("{read:?}")
        };
        assert_eq!(items[6], C::from(u64::MAX));
        assert_eq!(items[10], C::from(i64::MIN));
        assert_eq!(items[19], C::Bytes(vec![]));
        assert_eq!(items[20], C::Bytes(vec![0, 1]));
        assert_eq!(items[21], C::from("\u{0}not base64!"));
        // Map keys stay text.
        let C::Map(entries) = &items[23] else {
            panic!()
        };
        assert_eq!(entries[0], (C::from("\u{0}AAE="), C::Bytes(vec![0, 1])));
        assert_eq!(from_slice(&wire).unwrap(), value);
    }

    #[test]
    fn indefinite_lengths_are_read() {
        // [_ "a", {_ "k": (_ h'01', h'02')}, (_ "b", "c")]
        let wire = [
            0x9f, 0x61, b'a', 0xbf, 0x61, b'k', 0x5f, 0x41, 1, 0x41, 2, 0xff, 0xff, 0x7f, 0x61,
            b'b', 0x61, b'c', 0xff, 0xff,
        ];
        assert_eq!(
            from_slice(&wire).unwrap(),
            json!(["a", {"k": "\u{0}AQI="}, "bc"])
        );
        // A text chunk inside a byte string, a break where a value must be.
        for bad in [&[0x5f, 0x61, b'a', 0xff][..], &[0x82, 0x01, 0xff], &[0xff]] {
            assert!(
                from_slice(bad).unwrap_err().contains("not valid CBOR"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn declared_lengths_are_checked_before_allocating() {
        let cases: [(&[u8], &str); 6] = [
            // A 4 GiB text string, byte string, array and map in a few bytes.
            (
                &[0x7a, 0xff, 0xff, 0xff, 0xff, b'x'],
                "a string of 4294967295",
            ),
            (&[0x5a, 0xff, 0xff, 0xff, 0xff, 0], "a string of 4294967295"),
            (
                &[0x9a, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
                "an array of 4294967295",
            ),
            (&[0xba, 0xff, 0xff, 0xff, 0xff, 1, 2], "a map of 4294967295"),
            // 2^64 - 1 items: the map's 2n overflows.
            (
                &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "a map of 18446744073709551615",
            ),
            // A chunk of an indefinite string lies too.
            (
                &[0x7f, 0x7a, 0xff, 0xff, 0xff, 0xff, b'x', 0xff],
                "a string of 4294967295",
            ),
        ];
        for (wire, expected) in cases {
            let err = from_slice(wire).unwrap_err();
            assert!(err.contains(expected), "{wire:?}: {err}");
        }
        // A 20-byte frame whose array claims 4 GiB items, inside a message.
        let mut frame = vec![0x85, 16, 1, 0xa0, 0x61, b't', 0x9a, 0xff, 0xff, 0xff, 0xff];
        frame.resize(20, 0);
        assert!(from_slice(&frame)
            .unwrap_err()
            .contains("an array of 4294967295"));
    }

    #[test]
    fn refuses_what_json_cannot_carry() {
        let cases: [(&[u8], &str); 8] = [
            (&[0xa1, 0x01, 0xf6], "map keys must be text strings"),
            (&[0xa1, 0x41, 0x00, 0xf6], "map keys must be text strings"),
            (&[0xc1, 0x01], "tag 1 is not supported"),
            (&[0xc2, 0x41, 0x01], "tag 2 is not supported"),
            (&[0xf9, 0x7e, 0x00], "NaN is not a JSON number"),
            (
                &[0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
                "inf is not a JSON number",
            ),
            (&[0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0], "integer out of range"),
            (&[0xf0], "simple value 16"),
        ];
        for (wire, expected) in cases {
            let err = from_slice(wire).unwrap_err();
            assert!(err.contains(expected), "{wire:?}: {err}");
        }
        // Undefined reads as null; a half float as its value.
        assert_eq!(
            from_slice(&[0x82, 0xf7, 0xf9, 0x3e, 0x00]).unwrap(),
            json!([null, 1.5])
        );
        assert!(from_slice(&[0x62, 0xff, 0xfe])
            .unwrap_err()
            .contains("UTF-8"));
        assert!(from_slice(&[0x01, 0x02])
            .unwrap_err()
            .contains("1 bytes after"));
        assert!(from_slice(&[0x82, 0x01])
            .unwrap_err()
            .contains("not valid CBOR"));
        assert!(from_slice(&[0x1c])
            .unwrap_err()
            .contains("malformed header"));
    }

    #[test]
    fn a_megabyte_of_nesting_is_refused_without_overflowing_the_stack() {
        for open in [0x81u8, 0x9f, 0xa1] {
            let mut wire = Vec::with_capacity(1 << 20);
            while wire.len() < 1 << 20 {
                wire.push(open);
                if open == 0xa1 {
                    wire.extend_from_slice(&[0x61, b'k']);
                }
            }
            assert_eq!(from_slice(&wire).unwrap_err(), TOO_DEEP, "{open:#x}");
        }
    }
}
