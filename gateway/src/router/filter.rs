//! Server-side event filters: the SUBSCRIBE option `_filter` (a Switchboard extension). A filter is a JSON
//! predicate over an event's kwargs, e.g. `{"data.city": {"$like": "Montr%"}}`, parsed once per distinct
//! filter into a [`Filter`] and then evaluated against every event of its subscription. Sessions sending
//! the same filter (whatever the order of its keys) share one subscription through [`Filter::key`].
//!
//! Grammar (a *condition* is a JSON object):
//! - each entry of a condition must hold (an implicit AND);
//! - `$and` / `$or` take a non-empty list of conditions, `$not` takes one condition;
//! - any other key is a dotted path into the kwargs (`data.city` is `kwargs["data"]["city"]`, a numeric
//!   segment indexes an array) whose value is either a plain JSON value (shorthand for `$eq`) or an object
//!   of operators `$eq $ne $gt $gte $lt $lte $in $like $exists $not` (several operators must all hold).
//!
//! Semantics: numbers compare numerically (1 equals 1.0); `$gt $gte $lt $lte` hold only between two
//! numbers or two strings; `$like` is SQL LIKE (`%` any run, `_` one character, case-sensitive, no
//! escape) on strings only. A comparison on a field the event lacks is false, `$ne` included: only
//! `$exists: false` (or a `$not`) holds for a missing field, so an event without kwargs matches only such
//! filters. Everything is bounded before it is built (see the `MAX_*` constants), and parsing never
//! recurses deeper than [`MAX_DEPTH`] whatever the depth of the JSON it is given.

mod canonical;
mod eval;
mod like;
mod parse;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::wamp::Payload;

/// Deepest nesting of JSON containers in a filter (the filter object itself is level 1), so parsing,
/// evaluation and the key's construction recurse a bounded number of times.
pub const MAX_DEPTH: usize = 16;

/// Most JSON values (containers and scalars) in one filter, so a filter's memory and per-event cost are
/// bounded.
pub const MAX_NODES: usize = 256;

/// Longest `$in` list.
pub const MAX_IN_LEN: usize = 128;

/// Longest string in a filter (path, operand or `$like` pattern), in bytes: it bounds `$like`'s cost to
/// O(text length x 1024).
pub const MAX_STRING_BYTES: usize = 1024;

/// Most segments in one dotted path.
pub const MAX_PATH_SEGMENTS: usize = 16;

/// A parsed `_filter`: what the broker keeps per filtered subscription and asks, per event, whether the
/// event goes to that subscription's sessions.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Node,
    key: String,
}

/// One condition of a parsed filter.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Every child holds (an empty list holds: the filter `{}`).
    And(Vec<Node>),
    /// At least one child holds.
    Or(Vec<Node>),
    /// The child does not hold.
    Not(Box<Node>),
    /// One operator applied to the value at a path of the kwargs.
    Field { path: Vec<String>, op: Op },
}

/// An operator on one field, with its operand.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(Value),
    Ne(Value),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
    In(Vec<Value>),
    Like(like::Pattern),
    Exists(bool),
}

/// Why a `_filter` was refused; its Display (which names the fault and where in the filter it is) is the
/// message of the `wamp.error.invalid_argument` ERROR the subscriber gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A condition (the filter itself, an element of `$and`/`$or`, the operand of `$not`) is not an object.
    #[error("_filter: expected an object, found {found} at `{at}`")]
    NotAnObject {
        /// The JSON type found instead.
        found: &'static str,
        /// Where in the filter.
        at: String,
    },
    /// A `$` key that is no known operator, or a known operator where it does not apply.
    #[error("_filter: unknown operator `{op}` at `{at}`")]
    UnknownOperator {
        /// The key as sent (truncated when long).
        op: String,
        /// Where in the filter.
        at: String,
    },
    /// An operator's operand has the wrong type.
    #[error("_filter: `{op}` expects {expected} at `{at}`")]
    WrongOperand {
        /// The operator.
        op: &'static str,
        /// What it expects.
        expected: &'static str,
        /// Where in the filter.
        at: String,
    },
    /// An operator object mixing `$` operators and plain keys, which would be ambiguous.
    #[error("_filter: operators mixed with plain keys at `{at}`")]
    MixedOperators {
        /// Where in the filter.
        at: String,
    },
    /// A dotted path with an empty segment or too many segments.
    #[error("_filter: invalid path ({reason}) at `{at}`")]
    BadPath {
        /// What is wrong with it.
        reason: &'static str,
        /// Where in the filter (the path itself, truncated when long).
        at: String,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("_filter: nested deeper than {max} levels at `{at}`", max = MAX_DEPTH)]
    TooDeep {
        /// Where in the filter the limit was reached.
        at: String,
    },
    /// More than [`MAX_NODES`] JSON values.
    #[error("_filter: more than {max} values at `{at}`", max = MAX_NODES)]
    TooLarge {
        /// Where in the filter the limit was reached.
        at: String,
    },
    /// An `$in` list longer than [`MAX_IN_LEN`].
    #[error("_filter: `$in` list of {len} values, more than {max} at `{at}`", max = MAX_IN_LEN)]
    InTooLong {
        /// The list's length.
        len: usize,
        /// Where in the filter.
        at: String,
    },
    /// A string (key, operand or pattern) longer than [`MAX_STRING_BYTES`].
    #[error("_filter: string of {len} bytes, more than {max} at `{at}`", max = MAX_STRING_BYTES)]
    StringTooLong {
        /// The string's length in bytes.
        len: usize,
        /// Where in the filter.
        at: String,
    },
}

impl FilterError {
    /// The ERROR URI a refused filter is answered with.
    pub const URI: &'static str = "wamp.error.invalid_argument";
}

impl Filter {
    /// Parses and bounds a `_filter` option value, building its canonical [`key`](Self::key).
    pub fn parse(value: &Value) -> Result<Filter, FilterError> {
        let root = parse::parse(value)?;
        let (root, key) = canonical::canonical(root);
        Ok(Filter { root, key })
    }

    /// Whether an event with these kwargs (None: the event has none) passes the filter.
    pub fn matches(&self, kwargs: Option<&Map<String, Value>>) -> bool {
        eval::holds(&self.root, kwargs)
    }

    /// Whether an event with this payload passes the filter: its kwargs when it has some; a payload
    /// without kwargs, or a transparent (E2EE) one the router must not look into, has none.
    pub fn matches_payload(&self, payload: &Payload) -> bool {
        match payload {
            Payload::ArgsKwargs(_, kwargs) => self.matches(Some(kwargs)),
            Payload::Empty | Payload::Args(_) | Payload::Transparent(_) => self.matches(None),
        }
    }

    /// The filter's canonical text (JSON with sorted keys, shorthands expanded, `$and`/`$or` members sorted
    /// and deduplicated, integral numbers without fraction): equal keys mean equal filters, so sessions
    /// sending the same filter share one subscription.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Filter {}

impl std::hash::Hash for Filter {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
