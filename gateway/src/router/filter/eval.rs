//! Evaluation of a parsed filter against one event's kwargs. The tree is at most
//! [`MAX_DEPTH`](super::MAX_DEPTH) deep and comparisons recurse only as deep as the filter's operand, so
//! a deeply nested event cannot make evaluation recurse further.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::{Node, Op};

/// Whether `node` holds for an event with these kwargs.
pub(super) fn holds(node: &Node, kwargs: Option<&Map<String, Value>>) -> bool {
    match node {
        Node::And(members) => members.iter().all(|m| holds(m, kwargs)),
        Node::Or(members) => members.iter().any(|m| holds(m, kwargs)),
        Node::Not(inner) => !holds(inner, kwargs),
        Node::Field { path, op } => applies(op, resolve(kwargs, path)),
    }
}

/// The value at `path` in the kwargs, if there is one: object segments by key, array segments by index.
fn resolve<'a>(kwargs: Option<&'a Map<String, Value>>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut at = kwargs?.get(first)?;
    for segment in rest {
        at = match at {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(index(segment)?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// A path segment read as an array index (decimal digits only).
fn index(segment: &str) -> Option<usize> {
    if segment.bytes().all(|b| b.is_ascii_digit()) {
        segment.parse().ok()
    } else {
        None
    }
}

/// Whether `op` holds for the field's value (None: the event lacks the field, which only `$exists: false`
/// accepts).
fn applies(op: &Op, value: Option<&Value>) -> bool {
    let Some(value) = value else {
        return matches!(op, Op::Exists(false));
    };
    match op {
        Op::Eq(operand) => equal(value, operand),
        Op::Ne(operand) => !equal(value, operand),
        Op::Gt(operand) => order(value, operand) == Some(Ordering::Greater),
        Op::Gte(operand) => matches!(
            order(value, operand),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        Op::Lt(operand) => order(value, operand) == Some(Ordering::Less),
        Op::Lte(operand) => matches!(
            order(value, operand),
            Some(Ordering::Less | Ordering::Equal)
        ),
        Op::In(operands) => operands.iter().any(|operand| equal(value, operand)),
        Op::Like(pattern) => value.as_str().is_some_and(|s| pattern.matches(s)),
        Op::Exists(exists) => *exists,
    }
}

/// JSON equality with numbers compared numerically (1 equals 1.0) and objects compared regardless of key
/// order. Recursion stops at the shallower side, and `operand` (from the filter) is bounded.
fn equal(value: &Value, operand: &Value) -> bool {
    match (value, operand) {
        (Value::Number(a), Value::Number(b)) => compare(a, b) == Some(Ordering::Equal),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && b.iter()
                    .all(|(key, y)| a.get(key).is_some_and(|x| equal(x, y)))
        }
        _ => value == operand,
    }
}

/// The order of two numbers or two strings (strings by bytes, i.e. by code point); None for anything
/// else.
fn order(value: &Value, operand: &Value) -> Option<Ordering> {
    match (value, operand) {
        (Value::Number(a), Value::Number(b)) => compare(a, b),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Numeric order: exact between integers (i64 or u64), through f64 when either is a float.
fn compare(a: &Number, b: &Number) -> Option<Ordering> {
    let integer = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}
