//! The serde serializer the two binary serializers (MessagePack, CBOR) write messages with, straight from
//! borrowed values (a message's `Serialize` in the message table, any JSON value), without first copying
//! them into a value tree: the fan-out path encodes every event once per serializer through it.
//!
//! It knows exactly what messages are made of: nil, booleans, integers, floats, strings, lists and dicts;
//! anything else is an error. Strings follow the WAMP binary convention: a string holding a NUL byte then
//! valid base64 is written as the format's binary (map keys stay strings). A format says only how each of
//! those is written ([`Format`]); the walk over the value is shared here.
//!
//! Not rmp-serde or ciborium's serde bridge: both write every string as a string, so the binary
//! convention needs this writer.

use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use serde::ser::{self, Impossible, Serialize};

/// The prefix of a string that carries binary data in the WAMP JSON convention.
pub(crate) const BINARY_MARK: char = '\0';

/// How one binary format writes the values a WAMP message holds. Writing into a `Vec` cannot fail; only
/// a length the format cannot write is an error.
pub(crate) trait Format {
    /// Nil (JSON null).
    fn nil(out: &mut Vec<u8>);
    /// A boolean.
    fn bool(out: &mut Vec<u8>, v: bool);
    /// An integer of zero or more.
    fn unsigned(out: &mut Vec<u8>, v: u64);
    /// An integer below zero.
    fn negative(out: &mut Vec<u8>, v: i64);
    /// A float.
    fn float(out: &mut Vec<u8>, v: f64);
    /// A text string.
    fn text(out: &mut Vec<u8>, v: &str);
    /// A byte string.
    fn bytes(out: &mut Vec<u8>, v: &[u8]);
    /// The header of a list of `len` items (None when serde does not know it up front).
    fn list(out: &mut Vec<u8>, len: Option<usize>) -> Result<(), Error>;
    /// The header of a dict of `len` entries.
    fn dict(out: &mut Vec<u8>, len: Option<usize>) -> Result<(), Error>;
}

/// Encodes `value` in format `F`.
pub(crate) fn to_vec<F: Format, T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128);
    value.serialize(Writer::<F> {
        out: &mut out,
        binary: true,
        format: PhantomData,
    })?;
    Ok(out)
}

/// Why a value could not be written: only a type WAMP messages never hold, or a length the format
/// cannot write.
#[derive(Debug)]
pub(crate) struct Error(pub(crate) String);

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
struct Writer<'a, F> {
    out: &'a mut Vec<u8>,
    binary: bool,
    format: PhantomData<F>,
}

/// A list or dict being written: its length is already out, the elements follow.
struct Compound<'a, F> {
    out: &'a mut Vec<u8>,
    format: PhantomData<F>,
}

impl<F: Format> Compound<'_, F> {
    fn write<T: Serialize + ?Sized>(&mut self, value: &T, binary: bool) -> Result<(), Error> {
        value.serialize(Writer::<F> {
            out: &mut *self.out,
            binary,
            format: PhantomData,
        })
    }
}

fn unsupported(what: &str) -> Error {
    Error(format!("{what} has no place in a WAMP message"))
}

impl<'a, F: Format> ser::Serializer for Writer<'a, F> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, F>;
    type SerializeTuple = Compound<'a, F>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Compound<'a, F>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        F::bool(self.out, v);
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
            Ok(v) => F::unsigned(self.out, v),
            Err(_) => F::negative(self.out, v),
        }
        Ok(())
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
        F::unsigned(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        F::float(self.out, v);
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
        F::text(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        F::bytes(self.out, v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        F::nil(self.out);
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
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, F>, Error> {
        F::list(self.out, len)?;
        Ok(Compound {
            out: self.out,
            format: PhantomData,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, F>, Error> {
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
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, F>, Error> {
        F::dict(self.out, len)?;
        Ok(Compound {
            out: self.out,
            format: PhantomData,
        })
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

impl<F: Format> ser::SerializeSeq for Compound<'_, F> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.write(value, true)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<F: Format> ser::SerializeTuple for Compound<'_, F> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.write(value, true)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<F: Format> ser::SerializeMap for Compound<'_, F> {
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
