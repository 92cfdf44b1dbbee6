//! From a `_filter` JSON value to a bounded [`Node`] tree (made canonical by [`super::canonical`]).
//! Every limit is checked before the value below it is looked at: a container is refused at depth
//! [`MAX_DEPTH`] + 1 before its children are visited, and operand values are walked with an explicit
//! stack, so a filter nested a million levels deep costs a few steps, not a stack overflow.

use serde_json::Value;

use super::like::Pattern;
use super::{
    FilterError, Node, Op, MAX_DEPTH, MAX_IN_LEN, MAX_NODES, MAX_PATH_SEGMENTS, MAX_STRING_BYTES,
};

/// How the filter's root is named in error locations.
const ROOT: &str = "_filter";

/// Longest location quoted in an error, in bytes (keys may be up to [`MAX_STRING_BYTES`] long).
const MAX_LOCATION_BYTES: usize = 96;

/// Parses `value` into a tree (not yet canonical).
pub(super) fn parse(value: &Value) -> Result<Node, FilterError> {
    Parser { nodes: 0 }.condition(value, 1, "")
}

/// The walk's state: how many JSON values it has accepted so far.
struct Parser {
    nodes: usize,
}

impl Parser {
    /// Accounts for `n` more JSON values.
    fn count(&mut self, n: usize, at: &str) -> Result<(), FilterError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(FilterError::TooLarge { at: location(at) });
        }
        Ok(())
    }

    /// A condition object at nesting `depth`: the AND of its entries.
    fn condition(&mut self, value: &Value, depth: usize, at: &str) -> Result<Node, FilterError> {
        check_depth(depth, at)?;
        self.count(1, at)?;
        let Value::Object(map) = value else {
            return Err(FilterError::NotAnObject {
                found: type_name(value),
                at: location(at),
            });
        };
        let mut all = Vec::new();
        for (key, operand) in map {
            check_string(key, at)?;
            let here = join(at, key);
            match key.as_str() {
                "$and" | "$or" => {
                    let op = if key == "$and" { "$and" } else { "$or" };
                    let list = match operand {
                        Value::Array(list) if !list.is_empty() => list,
                        _ => {
                            return Err(FilterError::WrongOperand {
                                op,
                                expected: "a non-empty list of conditions",
                                at: location(&here),
                            })
                        }
                    };
                    check_depth(depth + 1, &here)?;
                    self.count(1, &here)?;
                    let mut members = Vec::with_capacity(list.len().min(MAX_NODES));
                    for (i, member) in list.iter().enumerate() {
                        members.push(self.condition(member, depth + 2, &format!("{here}[{i}]"))?);
                    }
                    all.push(if op == "$and" {
                        Node::And(members)
                    } else {
                        Node::Or(members)
                    });
                }
                "$not" => all.push(Node::Not(Box::new(self.condition(
                    operand,
                    depth + 1,
                    &here,
                )?))),
                op if op.starts_with('$') => {
                    return Err(FilterError::UnknownOperator {
                        op: truncate(op),
                        at: location(at),
                    })
                }
                path => {
                    let path = split_path(path)?;
                    all.push(self.field(&path, operand, depth + 1, &here)?);
                }
            }
        }
        Ok(Node::And(all))
    }

    /// What a path is compared with (at nesting `depth`): an object of operators, or a plain value that
    /// stands for `$eq`.
    fn field(
        &mut self,
        path: &[String],
        value: &Value,
        depth: usize,
        at: &str,
    ) -> Result<Node, FilterError> {
        let operators = match value {
            Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => map,
            _ => {
                return Ok(Node::Field {
                    path: path.to_vec(),
                    op: Op::Eq(self.literal(value, depth, at)?),
                })
            }
        };
        check_depth(depth, at)?;
        self.count(1, at)?;
        if operators.keys().any(|k| !k.starts_with('$')) {
            return Err(FilterError::MixedOperators { at: location(at) });
        }
        let mut all = Vec::with_capacity(operators.len().min(MAX_NODES));
        for (op, operand) in operators {
            all.push(self.operator(path, op, operand, depth + 1, at)?);
        }
        Ok(Node::And(all))
    }

    /// One operator of a field with its operand (at nesting `depth`).
    fn operator(
        &mut self,
        path: &[String],
        op: &str,
        operand: &Value,
        depth: usize,
        at: &str,
    ) -> Result<Node, FilterError> {
        let wrong = |op: &'static str, expected: &'static str| FilterError::WrongOperand {
            op,
            expected,
            at: location(at),
        };
        let op = match op {
            "$eq" => Op::Eq(self.literal(operand, depth, at)?),
            "$ne" => Op::Ne(self.literal(operand, depth, at)?),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let name = match op {
                    "$gt" => "$gt",
                    "$gte" => "$gte",
                    "$lt" => "$lt",
                    _ => "$lte",
                };
                if !matches!(operand, Value::Number(_) | Value::String(_)) {
                    return Err(wrong(name, "a number or a string"));
                }
                let operand = self.literal(operand, depth, at)?;
                match name {
                    "$gt" => Op::Gt(operand),
                    "$gte" => Op::Gte(operand),
                    "$lt" => Op::Lt(operand),
                    _ => Op::Lte(operand),
                }
            }
            "$in" => {
                let Value::Array(list) = operand else {
                    return Err(wrong("$in", "a list"));
                };
                if list.len() > MAX_IN_LEN {
                    return Err(FilterError::InTooLong {
                        len: list.len(),
                        at: location(at),
                    });
                }
                check_depth(depth, at)?;
                self.count(1, at)?;
                let values = list
                    .iter()
                    .map(|v| self.literal(v, depth + 1, at))
                    .collect::<Result<_, _>>()?;
                Op::In(values)
            }
            "$like" => {
                let Value::String(pattern) = operand else {
                    return Err(wrong("$like", "a string pattern"));
                };
                check_string(pattern, at)?;
                self.count(1, at)?;
                Op::Like(Pattern::new(pattern))
            }
            "$exists" => {
                let Value::Bool(exists) = operand else {
                    return Err(wrong("$exists", "true or false"));
                };
                self.count(1, at)?;
                Op::Exists(*exists)
            }
            "$not" => return Ok(Node::Not(Box::new(self.field(path, operand, depth, at)?))),
            other => {
                return Err(FilterError::UnknownOperator {
                    op: truncate(other),
                    at: location(at),
                })
            }
        };
        Ok(Node::Field {
            path: path.to_vec(),
            op,
        })
    }

    /// A plain JSON operand whose root is at nesting `depth`, checked with an explicit stack (never
    /// recursion) before it is copied.
    fn literal(&mut self, value: &Value, depth: usize, at: &str) -> Result<Value, FilterError> {
        self.count(1, at)?;
        let mut stack = vec![(value, depth)];
        while let Some((value, depth)) = stack.pop() {
            match value {
                Value::String(s) => check_string(s, at)?,
                Value::Array(items) => {
                    check_depth(depth, at)?;
                    self.count(items.len(), at)?;
                    stack.extend(items.iter().map(|v| (v, depth + 1)));
                }
                Value::Object(map) => {
                    check_depth(depth, at)?;
                    self.count(map.len(), at)?;
                    for (key, v) in map {
                        check_string(key, at)?;
                        stack.push((v, depth + 1));
                    }
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
        // Bounded now (at most MAX_DEPTH deep, MAX_NODES values), so the recursive clone is safe.
        Ok(value.clone())
    }
}

/// Refuses a container at a nesting deeper than [`MAX_DEPTH`].
fn check_depth(depth: usize, at: &str) -> Result<(), FilterError> {
    if depth > MAX_DEPTH {
        return Err(FilterError::TooDeep { at: location(at) });
    }
    Ok(())
}

/// Refuses a string longer than [`MAX_STRING_BYTES`].
fn check_string(s: &str, at: &str) -> Result<(), FilterError> {
    if s.len() > MAX_STRING_BYTES {
        return Err(FilterError::StringTooLong {
            len: s.len(),
            at: location(at),
        });
    }
    Ok(())
}

/// Splits a dotted path into its segments.
fn split_path(path: &str) -> Result<Vec<String>, FilterError> {
    let bad = |reason| FilterError::BadPath {
        reason,
        at: truncate(path),
    };
    if path.split('.').count() > MAX_PATH_SEGMENTS {
        return Err(bad("more than 16 segments"));
    }
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(bad("empty segment"));
    }
    Ok(segments)
}

/// The location of `key` inside the condition at `at`.
fn join(at: &str, key: &str) -> String {
    let key = truncate(key);
    if at.is_empty() {
        key
    } else {
        format!("{at}.{key}")
    }
}

/// A location as quoted in an error: the root has a name, long ones are cut.
fn location(at: &str) -> String {
    if at.is_empty() {
        ROOT.to_owned()
    } else {
        truncate(at)
    }
}

/// `s` cut to [`MAX_LOCATION_BYTES`] on a char boundary, marked with `...` when cut.
fn truncate(s: &str) -> String {
    if s.len() <= MAX_LOCATION_BYTES {
        return s.to_owned();
    }
    let mut end = MAX_LOCATION_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// The JSON type of `value`, for errors.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
