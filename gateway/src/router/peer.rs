//! The router's view of one joined session: who it is, what its client can do, and its outbox. Brokers
//! and dealers hold `Arc<Peer>`s and deliver by pushing into the outbox; they never touch sockets.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use serde_json::Value;

use super::authorize::Grants;
use super::outbox::Outbox;
use crate::wamp::ids::IdSequence;
use crate::wamp::{Dict, Id};

/// Client features (from HELLO.Details.roles) that change how the router talks to this peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientFeatures {
    /// The callee handles INTERRUPT (call_canceling); otherwise cancel falls back to `skip`.
    pub callee_call_canceling: bool,
    /// The callee may send progressive YIELDs.
    pub callee_progressive_call_results: bool,
}

impl ClientFeatures {
    /// Reads the features announced in HELLO.Details.
    pub fn from_hello(details: &Dict) -> Self {
        let feature = |role: &str, name: &str| {
            details
                .get("roles")
                .and_then(|r| r.get(role))
                .and_then(|r| r.get("features"))
                .and_then(|f| f.get(name))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        ClientFeatures {
            callee_call_canceling: feature("callee", "call_canceling"),
            callee_progressive_call_results: feature("callee", "progressive_call_results"),
        }
    }
}

/// One joined session as the router sees it.
#[derive(Debug)]
pub struct Peer {
    /// Session id (random, global scope).
    pub id: Id,
    /// Authenticated identity.
    pub authid: String,
    /// Role granted at join (the first of `roles`), as WELCOME and disclosure name it.
    pub authrole: String,
    /// Every role the session holds (a ticket may grant several): black/white listing by role
    /// (`exclude_authrole`, `eligible_authrole`) looks at all of them.
    pub roles: Vec<String>,
    /// How the session authenticated (`anonymous`, `ticket`, `wampcra`), for the session meta API.
    pub authmethod: &'static str,
    /// What this session may do, resolved once at join.
    pub grants: Grants,
    /// What the client announced it supports.
    pub features: ClientFeatures,
    /// Where messages for this session go.
    pub outbox: Arc<Outbox>,
    /// Request ids of INVOCATIONs sent to this peer (session scope).
    pub invocation_ids: IdSequence,
    /// Calls this peer made that await their answer (`gateway.max_pending_requests`).
    pub pending_calls: AtomicUsize,
}

/// A joined session for unit tests: JSON, an outbox of 64 frames, `features`; the receiver shows what
/// it was sent.
#[cfg(test)]
pub(crate) fn test_peer(
    id: Id,
    features: ClientFeatures,
) -> (Arc<Peer>, super::outbox::OutboxReceiver) {
    let limits = super::QueueLimits {
        max_bytes: 1 << 20,
        max_frames: 64,
        slow_consumer: std::time::Duration::from_secs(1),
    };
    let (outbox, receiver) = Outbox::new(crate::wamp::codec::Serializer::Json, limits);
    let peer = Peer {
        id,
        authid: format!("user{id}"),
        authrole: "member".into(),
        roles: vec!["member".into()],
        authmethod: "anonymous",
        grants: Default::default(),
        features,
        outbox: Arc::new(outbox),
        invocation_ids: IdSequence::default(),
        pending_calls: Default::default(),
    };
    (Arc::new(peer), receiver)
}

/// The WAMP messages a JSON session received, as JSON arrays (unit tests).
#[cfg(test)]
pub(crate) fn received(receiver: &super::outbox::OutboxReceiver) -> Vec<serde_json::Value> {
    let mut messages = Vec::new();
    while let Some(frame) = receiver.frames.try_recv() {
        let crate::wamp::codec::Frame::Text(text) = frame else {
            panic!("a JSON session got a binary frame")
        };
        messages.push(serde_json::from_str(text.as_str()).expect("JSON"));
    }
    messages
}
