//! The macro that turns the one table of WAMP messages in `message.rs` into everything derived from it: the
//! type codes, their names, the [`Message`](super::Message) enum, its parsing from the array form and its
//! encoding into it. A message is added or changed in one row, and parsing and encoding cannot disagree.
//!
//! A row is `Variant = CODE_NAME(code) { field: kind "Element", ... }`, fields in wire order. The kinds:
//!
//! | kind | Rust type | parsed with | error texts name |
//! | --- | --- | --- | --- |
//! | `id` | [`Id`](super::Id) | an integer 0..=2^53 | `NAME.Element` |
//! | `int` | `u64` | any unsigned integer | `NAME.Element` |
//! | `uri`, `string` | `String` | a string | `NAME.Element` |
//! | `dict` | [`Dict`](super::Dict) | a dict | `NAME.Element` |
//! | `options` | [`Dict`](super::Dict) | a dict checked by [`options::check`](super::options::check) | `NAME.Element.key` |
//! | `opt_dict` | `Option<Dict>` | a dict when present (last element only) | `NAME.Element` |
//! | `payload(dict)` | [`Payload`](super::Payload) | Arguments, ArgumentsKw or a transparent payload announced by `dict` | `NAME.Arguments` |

/// The Rust type of a field of the given kind.
macro_rules! wamp_field_type {
    (id) => { $crate::wamp::message::Id };
    (int) => { u64 };
    (uri) => { ::std::string::String };
    (string) => { ::std::string::String };
    (dict) => { $crate::wamp::message::Dict };
    (options) => { $crate::wamp::message::Dict };
    (opt_dict) => { ::std::option::Option<$crate::wamp::message::Dict> };
    (payload) => { $crate::wamp::message::Payload };
}

/// Reads one field of the given kind from `$el` (an `array::Elements`), returning early with its error.
macro_rules! wamp_parse_field {
    ($el:ident, $code:expr, id $what:literal) => {
        $el.id($what)?
    };
    ($el:ident, $code:expr, int $what:literal) => {
        $el.integer($what)?
    };
    ($el:ident, $code:expr, uri $what:literal) => {
        $el.string($what)?
    };
    ($el:ident, $code:expr, string $what:literal) => {
        $el.string($what)?
    };
    ($el:ident, $code:expr, dict $what:literal) => {
        $el.dict($what)?
    };
    ($el:ident, $code:expr, options $what:literal) => {
        $el.checked_dict($code, $what)?
    };
    ($el:ident, $code:expr, opt_dict $what:literal) => {
        $el.optional_dict($what)?
    };
    ($el:ident, $code:expr, payload ($dict:ident)) => {
        $el.payload(&$dict)?
    };
}

/// How many array elements a field of the given kind takes on the wire.
macro_rules! wamp_field_len {
    (opt_dict, $field:ident) => {
        usize::from($field.is_some())
    };
    (payload, $field:ident) => {
        $field.element_count()
    };
    ($kind:ident, $field:ident) => {
        1
    };
}

/// Writes a field of the given kind as elements of the array `$seq` (a `serde::ser::SerializeSeq`).
macro_rules! wamp_write_field {
    ($seq:ident, opt_dict, $field:ident) => {
        if let Some(dict) = $field {
            $seq.serialize_element(dict)?;
        }
    };
    ($seq:ident, payload, $field:ident) => {
        $field.serialize_elements(&mut $seq)?
    };
    ($seq:ident, $kind:ident, $field:ident) => {
        $seq.serialize_element($field)?
    };
}

/// Generates, from the table of messages: the `code` module of type codes, `name_of`, the `Message` enum
/// with `code()` and `name()`, `parse` (the elements after the type code into a `Message`) and
/// `serde::Serialize` for `Message` (its array form, written from the borrowed message).
macro_rules! wamp_messages {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:ident($code:literal) {
            $($field:ident : $kind:ident $(($dict:ident))? $($what:literal)?),* $(,)?
        }
    ),* $(,)?) => {
        /// Message type codes of the WAMP v2 spec.
        pub mod code {
            $(
                #[doc = concat!("Type code of ", stringify!($name), ".")]
                pub const $name: u64 = $code;
            )*
        }

        /// The spec's name for a message type code ("UNKNOWN" for none), for logs and error texts.
        pub fn name_of(code: u64) -> &'static str {
            match code {
                $(code::$name => stringify!($name),)*
                _ => "UNKNOWN",
            }
        }

        /// One WAMP message. Field names follow the spec's element names.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(missing_docs)]
        pub enum Message {
            $(
                $(#[$doc])*
                $variant { $($field: wamp_field_type!($kind)),* },
            )*
        }

        impl Message {
            /// The spec's type code of this message.
            pub fn code(&self) -> u64 {
                match self {
                    $(Message::$variant { .. } => code::$name,)*
                }
            }

            /// The spec's name of this message, for logs and error texts.
            pub fn name(&self) -> &'static str {
                name_of(self.code())
            }
        }

        /// Reads the elements after the type code `type_code` into a message: every element in wire order,
        /// then no more.
        pub(super) fn parse(
            type_code: u64,
            mut el: super::array::Elements,
        ) -> Result<Message, String> {
            let message = match type_code {
                $(code::$name => {
                    $(let $field = wamp_parse_field!(el, type_code, $kind $(($dict))? $($what)?);)*
                    Message::$variant { $($field),* }
                })*
                _ => return Err(format!("unknown message type {type_code}")),
            };
            el.finish(message)
        }

        impl ::serde::Serialize for Message {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeSeq;
                match self {
                    $(Message::$variant { $($field),* } => {
                        let len = 1 $(+ wamp_field_len!($kind, $field))*;
                        let mut seq = serializer.serialize_seq(Some(len))?;
                        seq.serialize_element(&code::$name)?;
                        $(wamp_write_field!(seq, $kind, $field);)*
                        seq.end()
                    })*
                }
            }
        }
    };
}
