//! Switchboard's wire contract: what the gateway and every emitter must agree on, in one crate both
//! sides depend on, with no transport in it.
//!
//! - [`Event`]: the one event shape of DESIGN.md section 5, with its validating parser;
//! - [`ModelChange`]: model-change events and the kwargs subscribers rely on;
//! - [`Signer`] / [`Verifier`]: message signatures, with the verifier's bounded replay cache;
//! - [`TicketKey`]: the connection tickets browsers authenticate with;
//! - [`uri`]: WAMP URI rules and [`MatchPolicy`] (also used by the configuration's validation);
//! - [`amqp`]: the AMQP exchange/queue layout (declaring it needs the `amqp` feature).
//!
//! `vectors.json` beside this crate's `Cargo.toml` holds fixed test vectors (signatures, tickets,
//! model-change kwargs) for implementations in other languages; `tests/vectors.rs` checks this one.

pub mod amqp;
pub mod event;
pub mod model;
mod replay;
pub mod signing;
pub mod ticket;
pub mod uri;

pub use event::{Event, EventError, EventOptions};
pub use model::{Action, ModelChange, ModelError, DEFAULT_MODEL_PREFIX};
pub use signing::{SignatureError, Signer, Verifier, AMQP_SIGNATURE_HEADER, SIGNATURE_HEADER};
pub use ticket::{TicketClaims, TicketError, TicketKey};
pub use uri::MatchPolicy;
