//! WAMP v2 on the wire: typed messages, their array form, the JSON, MessagePack and CBOR codecs, ids and option
//! checks. Nothing here knows about sockets or routing.

#[macro_use]
mod table;

pub mod array;
mod binary_writer;
mod cbor;
pub mod codec;
pub mod ids;
pub mod message;
mod msgpack;
pub mod options;
pub mod refusal;

pub use codec::{Frame, Serializer};
pub use message::{code, Dict, Id, Message, Payload};
pub use refusal::Refusal;
