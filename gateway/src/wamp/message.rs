//! The WAMP v2 messages the router speaks, as typed values: the codec turns frames into these and back, and
//! the router never looks at raw arrays.

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
}

/// Message type codes of the WAMP v2 spec.
#[allow(missing_docs)]
pub mod code {
    pub const HELLO: u64 = 1;
    pub const WELCOME: u64 = 2;
    pub const ABORT: u64 = 3;
    pub const CHALLENGE: u64 = 4;
    pub const AUTHENTICATE: u64 = 5;
    pub const GOODBYE: u64 = 6;
    pub const ERROR: u64 = 8;
    pub const PUBLISH: u64 = 16;
    pub const PUBLISHED: u64 = 17;
    pub const SUBSCRIBE: u64 = 32;
    pub const SUBSCRIBED: u64 = 33;
    pub const UNSUBSCRIBE: u64 = 34;
    pub const UNSUBSCRIBED: u64 = 35;
    pub const EVENT: u64 = 36;
    pub const CALL: u64 = 48;
    pub const CANCEL: u64 = 49;
    pub const RESULT: u64 = 50;
    pub const REGISTER: u64 = 64;
    pub const REGISTERED: u64 = 65;
    pub const UNREGISTER: u64 = 66;
    pub const UNREGISTERED: u64 = 67;
    pub const INVOCATION: u64 = 68;
    pub const INTERRUPT: u64 = 69;
    pub const YIELD: u64 = 70;
}

/// One WAMP message. Field names follow the spec's element names.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Message {
    Hello {
        realm: String,
        details: Dict,
    },
    Welcome {
        session: Id,
        details: Dict,
    },
    Abort {
        details: Dict,
        reason: String,
    },
    Challenge {
        authmethod: String,
        extra: Dict,
    },
    Authenticate {
        signature: String,
        extra: Dict,
    },
    Goodbye {
        details: Dict,
        reason: String,
    },
    Error {
        request_type: u64,
        request: Id,
        details: Dict,
        error: String,
        payload: Payload,
    },
    Publish {
        request: Id,
        options: Dict,
        topic: String,
        payload: Payload,
    },
    Published {
        request: Id,
        publication: Id,
    },
    Subscribe {
        request: Id,
        options: Dict,
        topic: String,
    },
    Subscribed {
        request: Id,
        subscription: Id,
    },
    Unsubscribe {
        request: Id,
        subscription: Id,
    },
    Unsubscribed {
        request: Id,
        details: Option<Dict>,
    },
    Event {
        subscription: Id,
        publication: Id,
        details: Dict,
        payload: Payload,
    },
    Call {
        request: Id,
        options: Dict,
        procedure: String,
        payload: Payload,
    },
    Cancel {
        request: Id,
        options: Dict,
    },
    Result {
        request: Id,
        details: Dict,
        payload: Payload,
    },
    Register {
        request: Id,
        options: Dict,
        procedure: String,
    },
    Registered {
        request: Id,
        registration: Id,
    },
    Unregister {
        request: Id,
        registration: Id,
    },
    Unregistered {
        request: Id,
        details: Option<Dict>,
    },
    Invocation {
        request: Id,
        registration: Id,
        details: Dict,
        payload: Payload,
    },
    Interrupt {
        request: Id,
        options: Dict,
    },
    Yield {
        request: Id,
        options: Dict,
        payload: Payload,
    },
}

impl Message {
    /// The spec's type code of this message.
    pub fn code(&self) -> u64 {
        use Message::*;
        match self {
            Hello { .. } => code::HELLO,
            Welcome { .. } => code::WELCOME,
            Abort { .. } => code::ABORT,
            Challenge { .. } => code::CHALLENGE,
            Authenticate { .. } => code::AUTHENTICATE,
            Goodbye { .. } => code::GOODBYE,
            Error { .. } => code::ERROR,
            Publish { .. } => code::PUBLISH,
            Published { .. } => code::PUBLISHED,
            Subscribe { .. } => code::SUBSCRIBE,
            Subscribed { .. } => code::SUBSCRIBED,
            Unsubscribe { .. } => code::UNSUBSCRIBE,
            Unsubscribed { .. } => code::UNSUBSCRIBED,
            Event { .. } => code::EVENT,
            Call { .. } => code::CALL,
            Cancel { .. } => code::CANCEL,
            Result { .. } => code::RESULT,
            Register { .. } => code::REGISTER,
            Registered { .. } => code::REGISTERED,
            Unregister { .. } => code::UNREGISTER,
            Unregistered { .. } => code::UNREGISTERED,
            Invocation { .. } => code::INVOCATION,
            Interrupt { .. } => code::INTERRUPT,
            Yield { .. } => code::YIELD,
        }
    }

    /// The spec's name of this message, for logs and error texts.
    pub fn name(&self) -> &'static str {
        name_of(self.code())
    }

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

/// The spec's name for a message type code.
pub fn name_of(code: u64) -> &'static str {
    match code {
        code::HELLO => "HELLO",
        code::WELCOME => "WELCOME",
        code::ABORT => "ABORT",
        code::CHALLENGE => "CHALLENGE",
        code::AUTHENTICATE => "AUTHENTICATE",
        code::GOODBYE => "GOODBYE",
        code::ERROR => "ERROR",
        code::PUBLISH => "PUBLISH",
        code::PUBLISHED => "PUBLISHED",
        code::SUBSCRIBE => "SUBSCRIBE",
        code::SUBSCRIBED => "SUBSCRIBED",
        code::UNSUBSCRIBE => "UNSUBSCRIBE",
        code::UNSUBSCRIBED => "UNSUBSCRIBED",
        code::EVENT => "EVENT",
        code::CALL => "CALL",
        code::CANCEL => "CANCEL",
        code::RESULT => "RESULT",
        code::REGISTER => "REGISTER",
        code::REGISTERED => "REGISTERED",
        code::UNREGISTER => "UNREGISTER",
        code::UNREGISTERED => "UNREGISTERED",
        code::INVOCATION => "INVOCATION",
        code::INTERRUPT => "INTERRUPT",
        code::YIELD => "YIELD",
        _ => "UNKNOWN",
    }
}
