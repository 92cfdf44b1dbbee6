//! Switchboard's emitter: how a web app tells the gateway that something happened, above all that a
//! row of a model changed, so that every browser watching it sees the change at once.
//!
//! [`Event`] is the one wire shape of DESIGN.md section 5; [`ModelChange`] builds the model-change events;
//! [`Emitter`] (async) and [`BlockingEmitter`] send them over the transport named in the shared
//! configuration; [`Signer`] signs every message and [`Verifier`] (used by the gateway) checks signatures;
//! [`Emitter::ticket`] (or [`TicketKey`]) mints the connection tickets browsers authenticate with.
//! The event shape, model changes, signatures and tickets come from `switchboard-wire` and are
//! re-exported here.
//!
//! [`ModelEmitter::sync`] sends every row of a model at once (a `synced` event): the gateway replaces
//! its view of the model and open pages resync; the whole sync must fit the gateway's
//! `max_message_bytes` (1 MiB by default). [`Emitter::last_publication`] asks the gateway (over its
//! JSON-RPC endpoint, whatever the transport) for a topic's newest publication id: read it, then
//! query the database, and render the rows with that id, from which the browser's live collection
//! recovers.
//!
//! Each transport is a cargo feature, all on by default: `jsonrpc`, `zmq`, `amqp`. Without a
//! transport's feature, building an emitter for it fails with [`EmitError::Setup`].
//!
//! ```no_run
//! # async fn example() -> Result<(), switchboard_emitter::EmitError> {
//! let emitter = switchboard_emitter::Emitter::from_config("switchboard.toml")?;
//! let order = serde_json::json!({"status": "paid", "total": 30});
//! emitter.model("shop.order").updated(42, &order, &["status"]).await?;
//! # Ok(())
//! # }
//! ```

// With every transport feature off the crate still builds (events, tickets, signing) but cannot send:
// the sending path is then unreachable and its pieces unused.
#![cfg_attr(
    not(any(feature = "jsonrpc", feature = "zmq", feature = "amqp")),
    allow(unused, unreachable_code)
)]

mod blocking;
mod builder;
mod emitter;
mod error;
mod model_emitter;
pub mod transport;
mod worker;

// The wire contract lives in `switchboard-wire` (shared with the gateway); its modules and types are
// re-exported here under their old paths, so `switchboard_emitter::Event` and
// `switchboard_emitter::signing::Verifier` keep working.
pub use switchboard_wire::{event, model, signing, ticket};

pub use blocking::{BlockingEmitter, BlockingModel};
pub use builder::{EmitterBuilder, Target, DEFAULT_BUFFER, DEFAULT_TIMEOUT};
pub use emitter::Emitter;
pub use error::EmitError;
pub use event::{Event, EventError, EventOptions};
pub use model::{Action, ModelChange, ModelError, DEFAULT_MODEL_PREFIX};
pub use model_emitter::ModelEmitter;
pub use signing::{SignatureError, Signer, Verifier, AMQP_SIGNATURE_HEADER, SIGNATURE_HEADER};
pub use ticket::{TicketClaims, TicketError, TicketKey};
pub use transport::Receipt;
