//! Writes MessagePack straight from borrowed values through serde, so that a message (see its
//! `Serialize` in the message table) and any JSON value encode without first being copied into an
//! `rmpv::Value`.
//!
//! It knows exactly what messages are made of: nil, booleans, integers, floats, strings, lists and dicts;
//! anything else is an error. Strings follow the WAMP binary convention: a string holding a NUL byte then
//! valid base64 is written as MessagePack binary (map keys stay strings).
//!
//! Not rmp-serde: it writes every string as a MessagePack string, so the binary convention needs this writer.

use std::fmt;

use base64::Engine;
use serde::ser::{self, Impossible, Serialize};

/// The prefix of a string that carries binary data in the WAMP JSON convention.
pub(crate) const BINARY_MARK: char = '\0';

/// Encodes `value` as MessagePack.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128);
    value.serialize(Writer {
        out: &mut out,
        binary: true,
    })?;
    Ok(out)
}

/// Why a value could not be written: only a type WAMP messages never hold.
#[derive(Debug)]
pub(crate) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// The serde serializer: writes one value to `out`; `binary` says whether the binary convention applies
/// to its strings (not to map keys).
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    binary: bool,
}

/// A list or dict being written: its length is already out, the elements follow.
struct Compound<'a> {
    out: &'a mut Vec<u8>,
}

impl Compound<'_> {
    fn write<T: Serialize + ?Sized>(&mut self, value: &T, binary: bool) -> Result<(), Error> {
        value.serialize(Writer {
            out: &mut *self.out,
            binary,
        })
    }
}

fn length(len: Option<usize>) -> Result<u32, Error> {
    len.and_then(|len| u32::try_from(len).ok())
        .ok_or_else(|| Error("MessagePack needs lengths that fit 32 bits up front".into()))
}

fn unsupported(what: &str) -> Error {
    Error(format!("{what} has no place in a WAMP message"))
}

// Writing into a Vec cannot fail, so the results of rmp's writers are ignored below.
impl<'a> ser::Serializer for Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        let _ = rmp::encode::write_bool(self.out, v);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        match u64::try_from(v) {
            Ok(v) => self.serialize_u64(v),
            Err(_) => {
                let _ = rmp::encode::write_sint(self.out, v);
                Ok(())
            }
        }
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        let _ = rmp::encode::write_uint(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        let _ = rmp::encode::write_f64(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        if self.binary {
            if let Some(b64) = v.strip_prefix(BINARY_MARK) {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) {
                    return self.serialize_bytes(&bytes);
                }
            }
        }
        let _ = rmp::encode::write_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let _ = rmp::encode::write_bin(self.out, v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        let _ = rmp::encode::write_nil(self.out);
        Ok(())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), Error> {
        Err(unsupported(name))
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Error> {
        Err(unsupported(name))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(unsupported(name))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        let _ = rmp::encode::write_array_len(self.out, length(len)?);
        Ok(Compound { out: self.out })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(unsupported(name))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(unsupported(name))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        let _ = rmp::encode::write_map_len(self.out, length(len)?);
        Ok(Compound { out: self.out })
    }
    fn serialize_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(unsupported(name))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(unsupported(name))
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.write(value, true)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.write(value, true)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.write(key, false)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.write(value, true)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
