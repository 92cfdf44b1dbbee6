//! Unit tests of `_filter`: each operator, paths, the canonical key, every refusal and `$like`'s edges.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::like::Pattern;
use super::{Filter, FilterError, MAX_DEPTH, MAX_IN_LEN, MAX_STRING_BYTES};
use crate::wamp::Payload;

fn filter(value: Value) -> Filter {
    Filter::parse(&value).unwrap_or_else(|e| panic!("{value} refused: {e}"))
}

fn refusal(value: Value) -> String {
    match Filter::parse(&value) {
        Ok(f) => panic!("{value} accepted as {}", f.key()),
        Err(e) => e.to_string(),
    }
}

/// Whether `filter` passes an event with kwargs `kwargs` (an object).
fn passes(filter: &Value, kwargs: Value) -> bool {
    let Value::Object(kwargs) = kwargs else {
        panic!("kwargs must be an object")
    };
    self::filter(filter.clone()).matches(Some(&kwargs))
}

/// Takes a value apart with an explicit stack: serde_json's own drop recurses and would overflow on the
/// very deep values these tests build.
fn dismantle(value: Value) {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// `levels` times `wrap` around `inner`, built without recursion (as long as `wrap` moves its argument).
fn nest(levels: usize, inner: Value, wrap: impl Fn(Value) -> Value) -> Value {
    (0..levels).fold(inner, |v, _| wrap(v))
}

/// `[value]`, moving `value` (`json!([value])` would copy it, recursively).
fn list(value: Value) -> Value {
    Value::Array(vec![value])
}

/// `{key: value}`, moving `value`.
fn object(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    Value::Object(map)
}

#[test]
fn eq_compares_json_with_numbers_numerically() {
    let f = json!({"pk": 1});
    assert!(passes(&f, json!({"pk": 1})));
    assert!(passes(&f, json!({"pk": 1.0})));
    assert!(!passes(&f, json!({"pk": "1"})));
    assert!(!passes(&f, json!({"pk": 2})));
    assert!(passes(&json!({"pk": {"$eq": 1.0}}), json!({"pk": 1})));
    assert!(passes(&json!({"n": null}), json!({"n": null})));
    assert!(!passes(&json!({"n": null}), json!({})));
    // Objects regardless of key order, lists element by element.
    let obj = json!({"d": {"a": 1, "b": [1, 2]}});
    assert!(passes(&obj, json!({"d": {"b": [1.0, 2], "a": 1}})));
    assert!(!passes(&obj, json!({"d": {"b": [2, 1], "a": 1}})));
    assert!(!passes(&obj, json!({"d": {"a": 1, "b": [1, 2], "c": 3}})));
    assert!(passes(&json!({"e": {}}), json!({"e": {}})));
    // Big integers stay exact.
    let big = json!({"id": u64::MAX});
    assert!(passes(&big, json!({"id": u64::MAX})));
    assert!(!passes(&big, json!({"id": u64::MAX - 1})));
    assert!(passes(&json!({"neg": -5}), json!({"neg": -5.0})));
}

#[test]
fn ne_needs_the_field() {
    let f = json!({"pk": {"$ne": 1}});
    assert!(passes(&f, json!({"pk": 2})));
    assert!(passes(&f, json!({"pk": "1"})));
    assert!(!passes(&f, json!({"pk": 1.0})));
    assert!(!passes(&f, json!({"other": 1})));
}

#[test]
fn order_operators_compare_numbers_or_strings_only() {
    let range = json!({"n": {"$gt": 1, "$lte": 3}});
    assert!(!passes(&range, json!({"n": 1})));
    assert!(passes(&range, json!({"n": 1.5})));
    assert!(passes(&range, json!({"n": 3})));
    assert!(!passes(&range, json!({"n": 3.01})));
    assert!(passes(&json!({"n": {"$gte": 2}}), json!({"n": 2.0})));
    assert!(passes(&json!({"n": {"$lt": 0}}), json!({"n": -1})));
    assert!(!passes(&json!({"n": {"$lt": 0}}), json!({"n": 0})));
    assert!(passes(&json!({"n": {"$lt": -1}}), json!({"n": i64::MIN})));
    assert!(passes(&json!({"n": {"$gt": -1}}), json!({"n": u64::MAX})));
    let s = json!({"s": {"$gte": "b", "$lt": "c"}});
    assert!(passes(&s, json!({"s": "b"})));
    assert!(passes(&s, json!({"s": "bzz"})));
    assert!(!passes(&s, json!({"s": "c"})));
    assert!(!passes(&s, json!({"s": "B"})));
    // Mixed types never compare.
    assert!(!passes(&json!({"n": {"$gt": 1}}), json!({"n": "5"})));
    assert!(!passes(&json!({"n": {"$lt": "5"}}), json!({"n": 1})));
    assert!(!passes(&json!({"n": {"$gte": 1}}), json!({"n": [5]})));
    assert!(!passes(&json!({"n": {"$lte": 1}}), json!({"n": null})));
}

#[test]
fn in_matches_any_element() {
    let f = json!({"pk": {"$in": [1, 2, "x"]}});
    assert!(passes(&f, json!({"pk": 2.0})));
    assert!(passes(&f, json!({"pk": "x"})));
    assert!(!passes(&f, json!({"pk": 3})));
    assert!(!passes(&f, json!({})));
    assert!(!passes(&json!({"pk": {"$in": []}}), json!({"pk": 1})));
    assert!(passes(
        &json!({"p": {"$in": [[1, 2], {"a": 1}]}}),
        json!({"p": {"a": 1.0}})
    ));
}

#[test]
fn exists_tells_present_from_missing() {
    let yes = json!({"a.b": {"$exists": true}});
    let no = json!({"a.b": {"$exists": false}});
    assert!(passes(&yes, json!({"a": {"b": null}})));
    assert!(!passes(&no, json!({"a": {"b": null}})));
    assert!(!passes(&yes, json!({"a": {}})));
    assert!(passes(&no, json!({"a": 3})));
}

#[test]
fn like_applies_to_strings_only() {
    let f = json!({"data.city": {"$like": "Montr%"}});
    assert!(passes(&f, json!({"data": {"city": "Montréal"}})));
    assert!(passes(&f, json!({"data": {"city": "Montr"}})));
    assert!(!passes(&f, json!({"data": {"city": "montréal"}})));
    assert!(!passes(&f, json!({"data": {"city": 5}})));
    assert!(!passes(&json!({"n": {"$like": "5"}}), json!({"n": 5})));
}

#[test]
fn logical_operators() {
    let f = json!({"$or": [{"a": 1}, {"$and": [{"b": 2}, {"c": {"$not": {"$gt": 5}}}]}]});
    assert!(passes(&f, json!({"a": 1})));
    assert!(passes(&f, json!({"b": 2, "c": 3})));
    // `$not` on a field holds when the field is missing.
    assert!(passes(&f, json!({"b": 2})));
    assert!(!passes(&f, json!({"b": 2, "c": 6})));
    assert!(!passes(&f, json!({"a": 2})));
    let not = json!({"$not": {"kind": "secret"}});
    assert!(passes(&not, json!({"kind": "public"})));
    assert!(passes(&not, json!({})));
    assert!(!passes(&not, json!({"kind": "secret"})));
    // Field-level `$not` with a plain value, and an implicit AND of several fields.
    assert!(passes(&json!({"k": {"$not": 1}}), json!({"k": 2})));
    let both = json!({"a": 1, "b": {"$in": [2, 3]}});
    assert!(passes(&both, json!({"a": 1, "b": 3})));
    assert!(!passes(&both, json!({"a": 1, "b": 4})));
    // The empty filter holds for every event.
    assert!(passes(&json!({}), json!({})));
    assert!(filter(json!({})).matches(None));
}

#[test]
fn dotted_paths_reach_into_objects_and_arrays() {
    let kwargs = json!({"data": {"items": [{"id": 7}, {"id": 8}], "0": "zero"}, "list": [10, 20]});
    assert!(passes(&json!({"data.items.1.id": 8}), kwargs.clone()));
    assert!(!passes(&json!({"data.items.1.id": 7}), kwargs.clone()));
    assert!(passes(&json!({"list.0": 10}), kwargs.clone()));
    // A numeric segment on an object is a key.
    assert!(passes(&json!({"data.0": "zero"}), kwargs.clone()));
    // Out of range, non-numeric index, through a scalar: missing.
    assert!(passes(
        &json!({"list.2": {"$exists": false}}),
        kwargs.clone()
    ));
    assert!(passes(
        &json!({"list.x": {"$exists": false}}),
        kwargs.clone()
    ));
    assert!(passes(
        &json!({"list.-1": {"$exists": false}}),
        kwargs.clone()
    ));
    assert!(passes(
        &json!({"list.0.a": {"$exists": false}}),
        kwargs.clone()
    ));
    assert!(passes(&json!({"list": [10, 20.0]}), kwargs));
}

#[test]
fn events_without_kwargs_match_only_filters_needing_no_field() {
    let absent = filter(json!({"pk": {"$exists": false}}));
    let eq = filter(json!({"pk": 1}));
    let ne = filter(json!({"pk": {"$ne": 1}}));
    for payload in [
        Payload::Empty,
        Payload::Args(vec![json!({"pk": 1})]),
        Payload::Transparent(json!("opaque")),
    ] {
        assert!(absent.matches_payload(&payload));
        assert!(!eq.matches_payload(&payload));
        assert!(!ne.matches_payload(&payload));
    }
    let Value::Object(kwargs) = json!({"pk": 1}) else {
        unreachable!()
    };
    let payload = Payload::ArgsKwargs(vec![], kwargs);
    assert!(eq.matches_payload(&payload));
    assert!(!absent.matches_payload(&payload));
}

#[test]
fn key_is_canonical() {
    let key = |v: Value| filter(v).key().to_owned();
    assert_eq!(
        key(json!({"data.city": {"$like": "Montr%"}, "pk": {"$in": [2, 1]}})),
        r#"{"$and":[{"data.city":{"$like":"Montr%"}},{"pk":{"$in":[1,2]}}]}"#
    );
    // Key order, shorthand, explicit `$and`, its order and nesting, duplicates: one key.
    let same = [
        json!({"a": 1, "b": {"$gt": 2}}),
        json!({"b": {"$gt": 2}, "a": {"$eq": 1.0}}),
        json!({"$and": [{"b": {"$gt": 2}}, {"a": 1}]}),
        json!({"$and": [{"$and": [{"a": 1}]}, {"b": {"$gt": 2}}, {"a": 1}]}),
        json!({"$not": {"$not": {"a": 1, "b": {"$gt": 2}}}}),
    ];
    let first = key(same[0].clone());
    assert_eq!(first, r#"{"$and":[{"a":{"$eq":1}},{"b":{"$gt":2}}]}"#);
    for other in &same[1..] {
        assert_eq!(key(other.clone()), first, "{other}");
        assert_eq!(filter(other.clone()), filter(same[0].clone()));
    }
    assert_eq!(
        key(json!({"o": {"y": [1, {"b": 2, "a": 1}], "x": null}})),
        key(json!({"o": {"x": null, "y": [1.0, {"a": 1, "b": 2.0}]}}))
    );
    assert_eq!(
        key(json!({"$or": [{"b": 1}, {"a": 1}]})),
        key(json!({"$or": [{"a": 1}, {"$or": [{"b": 1}]}]}))
    );
    assert_eq!(
        key(json!({"k": {"$not": {"$gt": 1}}})),
        key(json!({"$not": {"k": {"$gt": 1}}}))
    );
    // Different filters, different keys.
    let distinct = [
        json!({"a": 1}),
        json!({"a": 2}),
        json!({"a": "1"}),
        json!({"a": 1.5}),
        json!({"a": {"$ne": 1}}),
        json!({"b": 1}),
        json!({"a.b": 1}),
        json!({"a": {"b": 1}}),
        json!({"$or": [{"a": 1}, {"b": 1}]}),
        json!({"a": 1, "b": 1}),
        json!({"a": {"$exists": true}}),
        json!({"a": {"$like": "1"}}),
        json!({}),
    ];
    let keys: std::collections::HashSet<String> = distinct.iter().cloned().map(key).collect();
    assert_eq!(keys.len(), distinct.len(), "{keys:?}");
    // Every key parses back to the same key.
    for v in same.iter().chain(&distinct) {
        let k = key(v.clone());
        let reparsed: Value = serde_json::from_str(&k).expect("key is JSON");
        assert_eq!(key(reparsed), k);
    }
}

#[test]
fn refusals_name_the_fault_and_where() {
    let cases = [
        (
            json!([1]),
            "_filter: expected an object, found a list at `_filter`",
        ),
        (
            json!("pk"),
            "_filter: expected an object, found a string at `_filter`",
        ),
        (
            json!({"data.city": {"$regex": "^M"}}),
            "_filter: unknown operator `$regex` at `data.city`",
        ),
        (
            json!({"$nor": []}),
            "_filter: unknown operator `$nor` at `_filter`",
        ),
        (
            json!({"a": {"$and": [{"b": 1}]}}),
            "_filter: unknown operator `$and` at `a`",
        ),
        (
            json!({"$or": [{"a": {"$in": 3}}]}),
            "_filter: `$in` expects a list at `$or[0].a`",
        ),
        (
            json!({"a": {"$like": 3}}),
            "_filter: `$like` expects a string pattern at `a`",
        ),
        (
            json!({"a": {"$exists": 1}}),
            "_filter: `$exists` expects true or false at `a`",
        ),
        (
            json!({"a": {"$gt": [1]}}),
            "_filter: `$gt` expects a number or a string at `a`",
        ),
        (
            json!({"$and": {"a": 1}}),
            "_filter: `$and` expects a non-empty list of conditions at `$and`",
        ),
        (
            json!({"$or": []}),
            "_filter: `$or` expects a non-empty list of conditions at `$or`",
        ),
        (
            json!({"$and": [{"a": 1}, 5]}),
            "_filter: expected an object, found a number at `$and[1]`",
        ),
        (
            json!({"$not": true}),
            "_filter: expected an object, found a boolean at `$not`",
        ),
        (
            json!({"a": {"$eq": 1, "b": 2}}),
            "_filter: operators mixed with plain keys at `a`",
        ),
        (
            json!({"a..b": 1}),
            "_filter: invalid path (empty segment) at `a..b`",
        ),
        (
            json!({"": 1}),
            "_filter: invalid path (empty segment) at ``",
        ),
        (
            json!({"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q": 1}),
            "_filter: invalid path (more than 16 segments) at `a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q`",
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(refusal(value.clone()), expected, "{value}");
    }
    assert_eq!(FilterError::URI, "wamp.error.invalid_argument");
}

#[test]
fn moderately_deep_filters_are_refused() {
    // Exactly at the limit is fine; one more level is not.
    let at_limit = nest(MAX_DEPTH - 1, json!({"a": 1}), |v| object("$not", v));
    filter(at_limit.clone());
    let over = object("$not", at_limit);
    assert!(refusal(over).starts_with("_filter: nested deeper than 16 levels at `$not.$not"));
    let shapes = [
        nest(200, json!({"a": 1}), |v| object("$not", v)),
        nest(200, json!({"a": 1}), |v| object("$and", list(v))),
        object("x", object("$eq", nest(200, json!(1), list))),
        object("x", nest(200, json!(1), |v| object("k", v))),
        object("x", object("$in", list(nest(200, json!(1), list)))),
        nest(200, json!({"a": 1}), |v| object("a", object("$not", v))),
    ];
    for value in shapes {
        let got = refusal(value);
        assert!(
            got.starts_with("_filter: nested deeper than 16 levels"),
            "{got}"
        );
    }
}

#[test]
fn very_deep_filters_are_refused_without_overflow() {
    const LEVELS: usize = 100_000;
    let shapes = [
        nest(LEVELS, json!({"a": 1}), |v| object("$not", v)),
        nest(LEVELS, json!({"a": 1}), |v| object("$or", list(v))),
        object("x", object("$eq", nest(LEVELS, json!(1), list))),
        object("x", nest(LEVELS, json!(1), |v| object("k", v))),
    ];
    for value in shapes {
        let got = Filter::parse(&value).expect_err("refused");
        assert!(matches!(got, FilterError::TooDeep { .. }), "{got}");
        dismantle(value);
    }
}

#[test]
fn size_limits() {
    let in_list = |n: usize| json!({"pk": {"$in": (0..n).collect::<Vec<_>>()}});
    filter(in_list(MAX_IN_LEN));
    assert_eq!(
        refusal(in_list(MAX_IN_LEN + 1)),
        "_filter: `$in` list of 129 values, more than 128 at `pk`"
    );
    let long = "a".repeat(MAX_STRING_BYTES + 1);
    let fits = "a".repeat(MAX_STRING_BYTES);
    filter(json!({"s": {"$like": fits.clone()}}));
    assert_eq!(
        refusal(json!({"s": {"$like": long.clone()}})),
        "_filter: string of 1025 bytes, more than 1024 at `s`"
    );
    assert!(refusal(json!({"s": long.clone()})).starts_with("_filter: string of 1025 bytes"));
    assert!(refusal(json!({"s": {"$in": [{"k": long.clone()}]}})).contains("1025 bytes"));
    // A too long path is quoted cut.
    let got = refusal(json!({ long.clone(): 1 }));
    assert!(
        got.starts_with("_filter: string of 1025 bytes, more than 1024 at `_filter`"),
        "{got}"
    );
    let got = refusal(json!({"$or": [{ fits.clone(): {"$bad": 1} }]}));
    assert_eq!(
        got,
        format!(
            "_filter: unknown operator `$bad` at `$or[0].{}...`",
            "a".repeat(89)
        )
    );
    // Too many values overall: many fields, or one big operand.
    let mut many = Map::new();
    for i in 0..200 {
        many.insert(format!("f{i}"), json!({"$in": [1]}));
    }
    assert!(refusal(Value::Object(many)).starts_with("_filter: more than 256 values"));
    let wide = json!({"x": (0..1_000_000).collect::<Vec<_>>()});
    assert!(refusal(wide).starts_with("_filter: more than 256 values at `x`"));
}

#[test]
fn like_edge_cases() {
    let like = |p: &str, t: &str| Pattern::new(p).matches(t);
    assert!(like("%", ""));
    assert!(like("%", "anything"));
    assert!(like("", ""));
    assert!(!like("", "a"));
    assert!(like("_", "a"));
    assert!(like("_", "é"));
    assert!(like("__", "é€"));
    assert!(!like("_", ""));
    assert!(!like("_", "ab"));
    assert!(!like("abc", "ab"));
    assert!(!like("a_c_", "abc"));
    assert!(like("%%%a%%%", "xxaxx"));
    assert!(like("%%%", ""));
    assert!(!like("%%%a%%%", "xxx"));
    assert!(like("a%b%c", "aXbYc"));
    assert!(like("a%b%c", "abc"));
    assert!(!like("a%b%c", "acb"));
    assert!(like("%ab", "aab"));
    assert!(like("%aab", "aaab"));
    assert!(like("%a_c", "abacabc"));
    assert!(!like("%a_c", "abacb"));
    assert!(like("%_%", "x"));
    assert!(!like("%_%", ""));
    assert!(like("a%", "a"));
    assert!(!like("A%", "a"));
    assert!(like("Montr_al", "Montréal"));
    assert!(like("%.*+?[]", "x.*+?[]"));
    assert!(!like("%.*", "xyz"));
    // A worst-case shape stays quick: many `%` against a long near-miss.
    let text = "a".repeat(10_000);
    assert!(!like(&format!("{}b", "%a".repeat(100)), &text));
    assert!(like(&format!("{}%", "%a".repeat(100)), &text));
}

/// Reference LIKE: dynamic programming over chars, obviously right and slow.
fn like_reference(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // m[i][j]: p[..i] matches t[..j].
    let mut m = vec![vec![false; t.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        for j in 0..=t.len() {
            m[i][j] = match p[i - 1] {
                '%' => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                '_' => j > 0 && m[i - 1][j - 1],
                c => j > 0 && m[i - 1][j - 1] && t[j - 1] == c,
            };
        }
    }
    m[p.len()][t.len()]
}

proptest! {
    #[test]
    fn like_agrees_with_the_reference(pattern in "[ab%_é]{0,8}", text in "[abé]{0,12}") {
        prop_assert_eq!(Pattern::new(&pattern).matches(&text), like_reference(&pattern, &text));
    }

    #[test]
    fn key_is_a_fixed_point(a in 0i64..4, b in "[xy]{0,2}", c in prop::collection::vec(0u8..3, 0..4)) {
        let f = filter(json!({"$or": [{"a": {"$gte": a}}, {"b": {"$like": b}}], "c": {"$in": c}}));
        let reparsed: Value = serde_json::from_str(f.key()).expect("key is JSON");
        let again = filter(reparsed);
        prop_assert_eq!(again.key(), f.key());
    }
}
