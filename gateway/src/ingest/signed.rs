//! One signed message from the ZeroMQ or AMQP transports: check the signature over the body bytes,
//! parse the event, publish it. The refusal says which step failed, for the transport's log, counter
//! or dead-letter reason.

use switchboard_wire::{Event, EventError, SignatureError, Verifier};

use super::publish::{PublishError, Publisher};
use crate::wamp::Id;

/// Why a signed message was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The signature failed (missing, malformed, invalid, expired, replayed).
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The body is not JSON.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// The JSON is not a valid event.
    #[error("invalid event: {0}")]
    Event(#[from] EventError),
    /// The event names an unknown realm.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl Refusal {
    /// A short tag for logs, counters and dead-letter headers.
    pub fn which(&self) -> &'static str {
        match self {
            Refusal::Signature(error) => error.which(),
            Refusal::NotJson(_) => "not_json",
            Refusal::Event(_) => "invalid_event",
            Refusal::Publish(PublishError::TooLarge { .. }) => "too_large",
            Refusal::Publish(PublishError::Cluster(_)) => "cluster_unavailable",
            Refusal::Publish(_) => "unknown_realm",
        }
    }
}

/// Verifies `signature` over `body`, parses the event and publishes it; returns the publication id once
/// it is accepted (in a cluster: once the event log confirmed it). The signature is checked first, so
/// unauthenticated input is never parsed.
pub async fn ingest(
    verifier: &Verifier,
    publisher: &Publisher,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Id, Refusal> {
    let signature = signature.filter(|s| !s.is_empty());
    verifier.verify(signature, body)?;
    let value =
        serde_json::from_slice(body).map_err(|error| Refusal::NotJson(error.to_string()))?;
    let event = Event::from_value(value)?;
    Ok(publisher.publish(&event).await?)
}
