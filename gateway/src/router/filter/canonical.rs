//! The canonical form of a parsed filter and its text, [`Filter::key`](super::Filter::key): two filters
//! meaning the same (keys in another order, a shorthand spelled out, `$and` members shuffled, `1.0` for
//! `1`) get one key, so their sessions share one subscription.

use serde_json::{Number, Value};

use super::{Node, Op};

/// The canonical form of a tree and its text: nested `$and`s (and `$or`s) flattened, one-member ones
/// replaced by their member, double `$not`s removed, members (and `$in` values) sorted by their text and
/// deduplicated. Recursion follows the tree, which is at most [`MAX_DEPTH`](super::MAX_DEPTH) deep.
pub(super) fn canonical(node: Node) -> (Node, String) {
    match node {
        Node::And(members) => junction(members, true),
        Node::Or(members) => junction(members, false),
        Node::Not(inner) => match canonical(*inner) {
            (Node::Not(inner), _) => canonical(*inner),
            (inner, text) => (Node::Not(Box::new(inner)), format!("{{\"$not\":{text}}}")),
        },
        Node::Field { path, op } => {
            let mut text = String::from("{");
            text.push_str(&string_text(&path.join(".")));
            text.push_str(":{\"");
            let op = match op {
                Op::Eq(v) => operand(&mut text, "$eq", v, Op::Eq),
                Op::Ne(v) => operand(&mut text, "$ne", v, Op::Ne),
                Op::Gt(v) => operand(&mut text, "$gt", v, Op::Gt),
                Op::Gte(v) => operand(&mut text, "$gte", v, Op::Gte),
                Op::Lt(v) => operand(&mut text, "$lt", v, Op::Lt),
                Op::Lte(v) => operand(&mut text, "$lte", v, Op::Lte),
                Op::In(values) => {
                    let mut texts: Vec<(String, Value)> =
                        values.into_iter().map(|v| (value_text(&v), v)).collect();
                    texts.sort_by(|a, b| a.0.cmp(&b.0));
                    texts.dedup_by(|a, b| a.0 == b.0);
                    text.push_str("$in\":[");
                    let list: Vec<&str> = texts.iter().map(|(t, _)| t.as_str()).collect();
                    text.push_str(&list.join(","));
                    text.push(']');
                    Op::In(texts.into_iter().map(|(_, v)| v).collect())
                }
                Op::Like(pattern) => {
                    text.push_str("$like\":");
                    text.push_str(&string_text(pattern.source()));
                    Op::Like(pattern)
                }
                Op::Exists(exists) => {
                    text.push_str(if exists {
                        "$exists\":true"
                    } else {
                        "$exists\":false"
                    });
                    Op::Exists(exists)
                }
            };
            text.push_str("}}");
            (Node::Field { path, op }, text)
        }
    }
}

/// Writes `"name":operand` (the opening quote is already there) and rebuilds the operator.
fn operand(text: &mut String, name: &str, value: Value, op: fn(Value) -> Op) -> Op {
    text.push_str(name);
    text.push_str("\":");
    text.push_str(&value_text(&value));
    op(value)
}

/// The canonical form of an `$and` (`and`) or `$or` with these members.
fn junction(members: Vec<Node>, and: bool) -> (Node, String) {
    let mut parts: Vec<(String, Node)> = Vec::with_capacity(members.len());
    for member in members {
        match canonical(member) {
            (Node::And(inner), _) if and => {
                parts.extend(inner.into_iter().map(canonical).map(flip))
            }
            (Node::Or(inner), _) if !and => {
                parts.extend(inner.into_iter().map(canonical).map(flip))
            }
            (node, text) => parts.push((text, node)),
        }
    }
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    parts.dedup_by(|a, b| a.0 == b.0);
    if parts.len() == 1 {
        let (text, node) = parts.pop().expect("one member");
        return (node, text);
    }
    let name = if and { "$and" } else { "$or" };
    let text = if parts.is_empty() {
        "{}".to_owned()
    } else {
        let texts: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
        format!("{{\"{name}\":[{}]}}", texts.join(","))
    };
    let nodes = parts.into_iter().map(|(_, n)| n).collect();
    (
        if and {
            Node::And(nodes)
        } else {
            Node::Or(nodes)
        },
        text,
    )
}

/// `(node, text)` as `(text, node)`, for sorting by text.
fn flip((node, text): (Node, String)) -> (String, Node) {
    (text, node)
}

/// Canonical JSON of an operand: object keys sorted, numbers by [`number_text`]. The operand was bounded
/// at parse, so the recursion is.
fn value_text(value: &Value) -> String {
    match value {
        Value::Number(n) => number_text(n),
        Value::String(s) => string_text(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(value_text).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", string_text(k), value_text(v)))
                .collect();
            format!("{{{}}}", entries.join(","))
        }
        Value::Null | Value::Bool(_) => value.to_string(),
    }
}

/// A number's text, integral floats (below 2^53) written as integers: they compare equal, so `1` and
/// `1.0` give one key.
fn number_text(n: &Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
            // Exact: |f| < 2^53 is integral.
            format!("{}", f as i64)
        }
        _ => n.to_string(),
    }
}

/// A JSON string literal.
fn string_text(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}
