//! The WAMP v2 messages the router speaks, as typed values: the codec turns frames into these and back, and
//! the router never looks at raw arrays.

use serde::ser::SerializeSeq;
use serde_json::{Map, Value};

/// A WAMP dictionary (Details, Options, ArgumentsKw).
pub type Dict = Map<String, Value>;

/// A WAMP id: session, request, subscription, registration or publication (0..=2^53).
pub type Id = u64;

/// Largest id the spec allows (2^53), so ids survive JavaScript's number type.
pub const MAX_ID: Id = 1 << 53;

/// The application payload of PUBLISH, EVENT, CALL, RESULT, INVOCATION, YIELD and ERROR, kept exactly as
/// the sender shaped it so the router forwards it untouched.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Payload {
    /// No Arguments element.
    #[default]
    Empty,
    /// Only the Arguments list.
    Args(Vec<Value>),
    /// Arguments and ArgumentsKw.
    ArgsKwargs(Vec<Value>, Dict),
    /// Payload transparency (E2EE): an opaque string or binary value the router must not interpret.
    Transparent(Value),
}

impl Payload {
    /// Builds the payload a router-generated message carries (errors, results).
    pub fn from_parts(args: Vec<Value>, kwargs: Dict) -> Self {
        match (args.is_empty(), kwargs.is_empty()) {
            (true, true) => Self::Empty,
            (_, true) => Self::Args(args),
            _ => Self::ArgsKwargs(args, kwargs),
        }
    }

    /// The size of the arguments as JSON, counted without building the text (what storing or holding
    /// them back costs).
    pub fn json_len(&self) -> usize {
        use switchboard_wire::event::json_len;
        match self {
            Self::Empty => 0,
            Self::Args(args) => json_len(args),
            Self::ArgsKwargs(args, kwargs) => json_len(args) + json_len(kwargs),
            Self::Transparent(value) => json_len(value),
        }
    }

    /// How many array elements the payload takes on the wire (0, 1 or 2), for the array's length.
    pub fn element_count(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::Args(_) | Self::Transparent(_) => 1,
            Self::ArgsKwargs(..) => 2,
        }
    }

    /// Writes the payload's elements into a message array being serialized, borrowing them: this is how
    /// one EVENT is encoded for its subscribers without copying its arguments.
    pub fn serialize_elements<S: SerializeSeq>(&self, seq: &mut S) -> Result<(), S::Error> {
        match self {
            Self::Empty => Ok(()),
            Self::Args(args) => seq.serialize_element(args),
            Self::ArgsKwargs(args, kwargs) => {
                seq.serialize_element(args)?;
                seq.serialize_element(kwargs)
            }
            Self::Transparent(value) => seq.serialize_element(value),
        }
    }
}

// The message table: one row per message, fields in wire order with their element kind and the element's
// name in error texts. `table.rs` explains the kinds and generates the code constants, `name_of`, the
// enum, its parsing and its encoding from these rows.
wamp_messages! {
    /// Opens a session in a realm.
    Hello = HELLO(1) { realm: uri "Realm", details: dict "Details" },
    /// Accepts a HELLO: the session is open.
    Welcome = WELCOME(2) { session: id "Session", details: dict "Details" },
    /// Ends a session that never opened or broke the protocol.
    Abort = ABORT(3) { details: dict "Details", reason: uri "Reason" },
    /// Asks the client to authenticate.
    Challenge = CHALLENGE(4) { authmethod: string "AuthMethod", extra: dict "Extra" },
    /// Answers a CHALLENGE.
    Authenticate = AUTHENTICATE(5) { signature: string "Signature", extra: dict "Extra" },
    /// Closes an open session (and acknowledges the peer's GOODBYE).
    Goodbye = GOODBYE(6) { details: dict "Details", reason: uri "Reason" },
    /// Reports that a request failed.
    Error = ERROR(8) {
        request_type: int "REQUEST.Type",
        request: id "Request",
        details: dict "Details",
        error: uri "Error",
        payload: payload(details),
    },
    /// Publishes an event to a topic.
    Publish = PUBLISH(16) {
        request: id "Request",
        options: options "Options",
        topic: uri "Topic",
        payload: payload(options),
    },
    /// Acknowledges a PUBLISH that asked for it.
    Published = PUBLISHED(17) { request: id "Request", publication: id "Publication" },
    /// Subscribes to a topic.
    Subscribe = SUBSCRIBE(32) { request: id "Request", options: options "Options", topic: uri "Topic" },
    /// Acknowledges a SUBSCRIBE.
    Subscribed = SUBSCRIBED(33) { request: id "Request", subscription: id "Subscription" },
    /// Ends a subscription.
    Unsubscribe = UNSUBSCRIBE(34) { request: id "Request", subscription: id "Subscription" },
    /// Acknowledges an UNSUBSCRIBE, or (request 0, with details) says the router ended a subscription.
    Unsubscribed = UNSUBSCRIBED(35) { request: id "Request", details: opt_dict "Details" },
    /// Delivers a published event to a subscriber.
    Event = EVENT(36) {
        subscription: id "Subscription",
        publication: id "Publication",
        details: options "Details",
        payload: payload(details),
    },
    /// Calls a procedure.
    Call = CALL(48) {
        request: id "Request",
        options: options "Options",
        procedure: uri "Procedure",
        payload: payload(options),
    },
    /// Cancels a CALL.
    Cancel = CANCEL(49) { request: id "Request", options: options "Options" },
    /// Answers a CALL.
    Result = RESULT(50) { request: id "Request", details: options "Details", payload: payload(details) },
    /// Registers a procedure.
    Register = REGISTER(64) { request: id "Request", options: options "Options", procedure: uri "Procedure" },
    /// Acknowledges a REGISTER.
    Registered = REGISTERED(65) { request: id "Request", registration: id "Registration" },
    /// Withdraws a registration.
    Unregister = UNREGISTER(66) { request: id "Request", registration: id "Registration" },
    /// Acknowledges an UNREGISTER, or (request 0, with details) says the router revoked a registration.
    Unregistered = UNREGISTERED(67) { request: id "Request", details: opt_dict "Details" },
    /// Hands a CALL to the callee.
    Invocation = INVOCATION(68) {
        request: id "Request",
        registration: id "Registration",
        details: options "Details",
        payload: payload(details),
    },
    /// Asks the callee to stop an INVOCATION.
    Interrupt = INTERRUPT(69) { request: id "Request", options: options "Options" },
    /// The callee's answer to an INVOCATION.
    Yield = YIELD(70) { request: id "Request", options: options "Options", payload: payload(options) },
}

impl Message {
    /// An ABORT with a human-readable message, as sent for protocol violations and refused HELLOs.
    pub fn abort(reason: &str, message: impl Into<String>) -> Self {
        let mut details = Dict::new();
        details.insert("message".into(), Value::String(message.into()));
        Message::Abort {
            details,
            reason: reason.to_string(),
        }
    }

    /// An ERROR answering request `request` of type `request_type`, with a human-readable message as its
    /// first argument (what Autobahn shows the user).
    pub fn error(request_type: u64, request: Id, error: &str, message: impl Into<String>) -> Self {
        Message::Error {
            request_type,
            request,
            details: Dict::new(),
            error: error.to_string(),
            payload: Payload::Args(vec![Value::String(message.into())]),
        }
    }
}
