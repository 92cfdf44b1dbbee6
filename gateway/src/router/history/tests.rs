use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_config::{HistoryConfig, MatchPolicy};

use super::*;

fn store(limit: usize, max_bytes: usize) -> Store {
    let rules = Rules::from_config(&[HistoryConfig {
        uri: "app.".into(),
        match_policy: MatchPolicy::Prefix,
        limit,
        ttl_s: 60,
    }]);
    Store::new(rules, Views::default(), max_bytes)
}

fn payload(n: u64) -> Payload {
    Payload::Args(vec![json!(n)])
}

fn ids(events: &[Arc<StoredEvent>]) -> Vec<Id> {
    events.iter().map(|e| e.id).collect()
}

fn query(uri: &str, policy: MatchPolicy, after: Option<Id>) -> Query<'_> {
    Query {
        uri,
        policy,
        after,
        limit: 1000,
        reverse: false,
    }
}

#[test]
fn recovery_returns_exactly_what_came_after_in_publication_order() {
    let mut store = store(100, 1 << 20);
    let now = Instant::now();
    for id in 1..=6 {
        let topic = if id % 2 == 0 { "app.b" } else { "app.a" };
        store.record(id, topic, &payload(id), false, now);
    }
    let exact = store.events(&query("app.a", MatchPolicy::Exact, Some(1)), now, |_| true);
    assert_eq!(exact.map(|e| ids(&e)), Ok(vec![3, 5]));
    let prefix = store.events(&query("app.", MatchPolicy::Prefix, Some(2)), now, |_| true);
    assert_eq!(prefix.map(|e| ids(&e)), Ok(vec![3, 4, 5, 6]));
    let newest = Query {
        limit: 2,
        ..query("app.", MatchPolicy::Prefix, None)
    };
    assert_eq!(
        store.events(&newest, now, |_| true).map(|e| ids(&e)),
        Ok(vec![5, 6])
    );
    let reverse = Query {
        reverse: true,
        ..newest
    };
    assert_eq!(
        store.events(&reverse, now, |_| true).map(|e| ids(&e)),
        Ok(vec![6, 5])
    );
    let filtered = store.events(&query("app.", MatchPolicy::Prefix, None), now, |e| e.id > 4);
    assert_eq!(filtered.map(|e| ids(&e)), Ok(vec![5, 6]));
    assert_eq!(store.last_publication("app.a", now), Some(5));
    assert_eq!(
        store.last_publication("app.c", now),
        Some(6),
        "the realm's newest"
    );
}

#[test]
fn an_eviction_after_the_position_is_a_gap_never_a_partial_list() {
    let mut store = store(3, 1 << 20);
    let now = Instant::now();
    for id in 1..=5 {
        store.record(id, "app.a", &payload(id), false, now);
    }
    assert_eq!(
        store
            .events(&query("app.a", MatchPolicy::Exact, Some(1)), now, |_| true)
            .map(|e| ids(&e)),
        Err(Gap::Unknown(1))
    );
    assert_eq!(
        store
            .events(&query("app.a", MatchPolicy::Exact, Some(3)), now, |_| true)
            .map(|e| ids(&e)),
        Ok(vec![4, 5])
    );
    assert_eq!(
        store
            .events(&query("app.a", MatchPolicy::Exact, Some(999)), now, |_| {
                true
            })
            .map(|e| ids(&e)),
        Err(Gap::Unknown(999))
    );
    // A position on one topic, evictions on another the pattern also reaches.
    store.record(10, "app.b", &payload(10), false, now);
    for id in 11..=14 {
        store.record(id, "app.c", &payload(id), false, now);
    }
    assert_eq!(
        store
            .events(&query("app.", MatchPolicy::Prefix, Some(10)), now, |_| true)
            .map(|e| ids(&e)),
        Err(Gap::Evicted(10)),
        "app.c's event 11 was evicted after 10"
    );
    assert!(store
        .events(&query("app.b", MatchPolicy::Exact, Some(10)), now, |_| true)
        .is_ok());
}

#[test]
fn expired_events_are_gone_and_count_as_evicted() {
    let mut store = store(100, 1 << 20);
    let start = Instant::now();
    store.record(1, "app.a", &payload(1), false, start);
    store.record(2, "app.a", &payload(2), false, start);
    let later = start + Duration::from_secs(61);
    store.record(3, "app.b", &payload(3), false, later);
    assert_eq!(
        store
            .events(&query("app.a", MatchPolicy::Exact, None), later, |_| true)
            .map(|e| ids(&e)),
        Ok(vec![])
    );
    assert_eq!(
        store
            .events(&query("app.", MatchPolicy::Prefix, Some(3)), later, |_| {
                true
            })
            .map(|e| ids(&e)),
        Ok(vec![])
    );
    assert_eq!(
        store.last_publication("app.a", later),
        Some(3),
        "a topic with nothing stored recovers from the realm's newest stored event"
    );
    assert!(
        !store.topics.contains_key("app.a"),
        "an emptied log is forgotten"
    );
    assert_eq!(store.last_publication("chat.x", later), None, "no history");
}

#[test]
fn topics_that_come_and_go_never_fill_the_bound_with_bookkeeping() {
    let max = 64 * 1024;
    let mut store = store(1, max);
    let start = Instant::now();
    let later = start + Duration::from_secs(61);
    for id in 1..=5000 {
        store.record(id, &format!("app.user{id}"), &payload(id), false, start);
    }
    // Every one of those expires; new events must still be stored and recoverable.
    store.expire(later);
    for id in 10_001..=10_005 {
        store.record(id, "app.live", &payload(id), false, later);
    }
    let live = Query {
        limit: 10,
        ..query("app.live", MatchPolicy::Exact, None)
    };
    let kept = store.events(&live, later, |_| true).map(|e| ids(&e));
    assert_eq!(kept, Ok(vec![10_005]), "limit 1 per topic");
    assert!(store.topics.len() <= 2, "{} logs left", store.topics.len());
    assert!(store.bytes() <= max);
    assert_eq!(store.last_publication("app.live", later), Some(10_005));
}

#[test]
fn an_event_too_large_to_store_evicts_nothing_else_and_reads_as_a_gap() {
    let mut store = store(100, 64 * 1024);
    let now = Instant::now();
    for id in 1..=3 {
        store.record(id, "app.a", &payload(id), false, now);
    }
    let huge = Payload::Args(vec![json!("x".repeat(70 * 1024))]);
    let recorded = store.record(4, "app.a", &huge, true, now);
    assert!(recorded.too_large && recorded.for_memory == 0);
    assert_eq!(
        store
            .events(&query("app.a", MatchPolicy::Exact, None), now, |_| true)
            .map(|e| ids(&e)),
        Ok(vec![1, 2, 3])
    );
    assert_eq!(
        store
            .events(&query("app.a", MatchPolicy::Exact, Some(2)), now, |_| true)
            .map(|e| ids(&e)),
        Err(Gap::Evicted(2)),
        "event 4 came after 2 and is not in history"
    );
    assert!(store.retained("app.a", MatchPolicy::Exact).is_empty());
}

#[test]
fn memory_bound_evicts_the_oldest_first_and_stays_under_it() {
    let max = 64 * 1024;
    let mut store = store(1_000_000, max);
    let now = Instant::now();
    let big = Payload::Args(vec![json!("x".repeat(1000))]);
    let mut evicted = 0;
    for id in 1..=1000 {
        evicted += store
            .record(id, &format!("app.t{}", id % 7), &big, false, now)
            .for_memory;
        assert!(store.bytes() <= max, "{} > {max}", store.bytes());
    }
    assert!(evicted > 900, "{evicted}");
    let kept = store.events(&query("app.", MatchPolicy::Prefix, None), now, |_| true);
    let kept = kept.map(|e| ids(&e)).unwrap_or_default();
    assert!(
        !kept.is_empty() && kept.iter().all(|id| *id > 900),
        "{kept:?}"
    );
    assert!(store.order.len() <= 2 * store.index.len() + 64);
}

#[test]
fn topics_without_history_are_not_recoverable() {
    let mut store = store(10, 1 << 20);
    let now = Instant::now();
    store.record(1, "chat.room", &payload(1), false, now);
    assert_eq!(
        store
            .events(&query("chat.room", MatchPolicy::Exact, None), now, |_| true)
            .map(|e| ids(&e)),
        Err(Gap::NoHistory("chat.room".into()))
    );
    assert!(matches!(
        store.events(&query("", MatchPolicy::Prefix, None), now, |_| true),
        Err(Gap::NoHistory(_))
    ));
}

#[test]
fn retained_events_replace_each_other_and_match_patterns() {
    let mut store = store(10, 1 << 20);
    let now = Instant::now();
    store.record(1, "other.x", &payload(1), true, now);
    store.record(2, "other.x", &payload(2), true, now);
    store.record(3, "other.y", &payload(3), true, now);
    store.record(4, "other.z", &payload(4), false, now);
    assert_eq!(ids(&store.retained("other.x", MatchPolicy::Exact)), vec![2]);
    assert_eq!(
        ids(&store.retained("other.", MatchPolicy::Prefix)),
        vec![2, 3]
    );
    assert!(store.retained("other.z", MatchPolicy::Exact).is_empty());
}

#[test]
fn payload_size_is_counted_without_building_text() {
    let payload = Payload::ArgsKwargs(
        vec![json!(1)],
        serde_json::from_value(json!({"a": "bc"})).unwrap_or_default(),
    );
    assert_eq!(payload.json_len(), "[1]".len() + r#"{"a":"bc"}"#.len());
}
