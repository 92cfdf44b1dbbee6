//! MessagePack's encodings of the values a WAMP message holds, for the shared serde writer
//! (`binary_writer.rs`: messages and JSON values written straight from borrowed values, with the WAMP
//! binary convention: a string holding a NUL byte then valid base64 is written as MessagePack binary).

use serde::Serialize;

use super::binary_writer::{self, Error, Format};

pub(crate) use super::binary_writer::BINARY_MARK;

/// Encodes `value` as MessagePack.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    binary_writer::to_vec::<MessagePack, T>(value)
}

/// MessagePack's encodings of the values a message holds, by rmp (writing into a Vec cannot fail, so the
/// results of rmp's writers are ignored).
struct MessagePack;

fn length(len: Option<usize>) -> Result<u32, Error> {
    len.and_then(|len| u32::try_from(len).ok())
        .ok_or_else(|| Error("MessagePack needs lengths that fit 32 bits up front".into()))
}

impl Format for MessagePack {
    fn nil(out: &mut Vec<u8>) {
        let _ = rmp::encode::write_nil(out);
    }
    fn bool(out: &mut Vec<u8>, v: bool) {
        let _ = rmp::encode::write_bool(out, v);
    }
    fn unsigned(out: &mut Vec<u8>, v: u64) {
        let _ = rmp::encode::write_uint(out, v);
    }
    fn negative(out: &mut Vec<u8>, v: i64) {
        let _ = rmp::encode::write_sint(out, v);
    }
    fn float(out: &mut Vec<u8>, v: f64) {
        let _ = rmp::encode::write_f64(out, v);
    }
    fn text(out: &mut Vec<u8>, v: &str) {
        let _ = rmp::encode::write_str(out, v);
    }
    fn bytes(out: &mut Vec<u8>, v: &[u8]) {
        let _ = rmp::encode::write_bin(out, v);
    }
    fn list(out: &mut Vec<u8>, len: Option<usize>) -> Result<(), Error> {
        let _ = rmp::encode::write_array_len(out, length(len)?);
        Ok(())
    }
    fn dict(out: &mut Vec<u8>, len: Option<usize>) -> Result<(), Error> {
        let _ = rmp::encode::write_map_len(out, length(len)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::{json, Value};

    use super::*;

    /// The encoding before this writer existed: the value copied into an `rmpv::Value`, then written.
    fn through_rmpv(value: &Value) -> Vec<u8> {
        fn convert(value: &Value) -> rmpv::Value {
            match value {
                Value::Null => rmpv::Value::Nil,
                Value::Bool(b) => rmpv::Value::Boolean(*b),
                Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                    (Some(u), _) => rmpv::Value::from(u),
                    (_, Some(i)) => rmpv::Value::from(i),
                    _ => rmpv::Value::F64(n.as_f64().unwrap_or_default()),
                },
                Value::String(s) => match s
                    .strip_prefix(BINARY_MARK)
                    .map(|b64| base64::engine::general_purpose::STANDARD.decode(b64))
                {
                    Some(Ok(bytes)) => rmpv::Value::Binary(bytes),
                    _ => rmpv::Value::String(s.as_str().into()),
                },
                Value::Array(items) => rmpv::Value::Array(items.iter().map(convert).collect()),
                Value::Object(map) => rmpv::Value::Map(
                    map.iter()
                        .map(|(k, v)| (rmpv::Value::String(k.as_str().into()), convert(v)))
                        .collect(),
                ),
            }
        }
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &convert(value)).expect("write to a Vec");
        out
    }

    #[test]
    fn writes_the_same_bytes_as_going_through_rmpv() {
        let long = "y".repeat(70_000);
        let values = [
            json!([36, 1, 9_007_199_254_740_992u64, {}, [], {}]),
            json!([
                0,
                127,
                128,
                255,
                256,
                65_535,
                65_536,
                u64::MAX,
                -1,
                -32,
                -33,
                -128,
                -129,
                i64::MIN
            ]),
            json!([0.0, -0.5, 1.5e300, 3.0, null, true, false]),
            json!([
                "",
                "\u{0}",
                "\u{0}AAE=",
                "\u{0}not base64!",
                "\u{0}AAE",
                "é",
                "x".repeat(40)
            ]),
            json!({"\u{0}AAE=": "\u{0}AAE=", "nested": {"list": [[[]]], "empty": {}}}),
            json!([long.clone(), {"k": long}, (0..20).collect::<Vec<_>>()]),
        ];
        for value in values {
            assert_eq!(to_vec(&value).unwrap(), through_rmpv(&value), "{value}");
        }
    }
}
