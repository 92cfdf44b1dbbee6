//! Switchboard's emitter: how a web app tells the gateway that something happened, above all that a
//! row of a model changed, so that every browser watching it sees the change at once.
//!
//! [`Event`] is the one wire shape of DESIGN.md section 5; [`ModelChange`] builds the model-change events;
//! [`Emitter`] (async) and [`BlockingEmitter`] send them over the transport named in the shared
//! configuration; [`Signer`] signs every message and [`Verifier`] (used by the gateway) checks signatures;
//! [`Emitter::ticket`] (or [`TicketKey`]) mints the connection tickets browsers authenticate with.
//!
//! ```no_run
//! # async fn example() -> Result<(), switchboard_emitter::EmitError> {
//! let emitter = switchboard_emitter::Emitter::from_config("switchboard.toml")?;
//! let order = serde_json::json!({"status": "paid", "total": 30});
//! emitter.model("shop.order").updated(42, &order, &["status"]).await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod blocking;
mod emitter;
mod error;
pub mod event;
pub mod model;
mod replay;
pub mod signing;
pub mod ticket;
pub mod transport;
mod worker;

pub use blocking::{BlockingEmitter, BlockingModel};
pub use emitter::{Emitter, EmitterBuilder, ModelEmitter, Target, DEFAULT_BUFFER, DEFAULT_TIMEOUT};
pub use error::EmitError;
pub use event::{Event, EventError, EventOptions};
pub use model::{Action, ModelChange, ModelError, DEFAULT_MODEL_PREFIX};
pub use signing::{SignatureError, Signer, Verifier, AMQP_SIGNATURE_HEADER, SIGNATURE_HEADER};
pub use ticket::{TicketClaims, TicketError, TicketKey};
pub use transport::Receipt;
