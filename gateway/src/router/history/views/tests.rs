use serde_json::json;
use switchboard_config::ModelViewConfig;

use super::*;

fn event(kwargs: Value) -> Payload {
    Payload::ArgsKwargs(vec![], serde_json::from_value(kwargs).unwrap_or_default())
}

fn views(max_rows: usize) -> Views {
    Views::from_config(&[ModelViewConfig {
        name: "shop.order".into(),
        max_rows,
        max_bytes: 64 * 1024,
    }])
}

fn all(views: &Views) -> Result<Page, ViewError> {
    let query = RowsQuery {
        limit: 100,
        ..RowsQuery::default()
    };
    views.rows("shop.order", &query, |_| true)
}

#[test]
fn model_events_keep_the_latest_row_per_pk() {
    let mut views = views(10);
    let topic = "models.shop.order";
    assert!(matches!(all(&views), Err(ViewError::Unseeded(_))));
    views.apply(topic, 0, &event(json!({"action": "synced", "rows": []})));
    views.apply(
        topic,
        1,
        &event(json!({"action": "created", "pk": 1, "data": {"total": 5, "city": "Oslo"}})),
    );
    views.apply(
        topic,
        2,
        &event(json!({"action": "created", "pk": 2, "data": {"total": 9}})),
    );
    views.apply(
        topic,
        3,
        &event(json!({"action": "updated", "pk": 1, "data": {"total": 7}})),
    );
    views.apply(topic, 4, &event(json!({"action": "deleted", "pk": 2})));
    views.apply(
        "models.shop.item",
        5,
        &event(json!({"action": "created", "pk": 9, "data": {}})),
    );
    let page = all(&views).expect("view");
    assert_eq!(
        page.rows,
        vec![json!({"pk": 1, "total": 7, "city": "Oslo"})]
    );
    assert_eq!((page.total, page.publication), (1, Some(4)));
    views.apply(
        topic,
        6,
        &event(json!({"action": "synced", "rows": [{"pk": 3, "total": 1}, {"pk": 4}]})),
    );
    let page = all(&views).expect("view");
    assert_eq!(
        page.rows,
        vec![json!({"pk": 3, "total": 1}), json!({"pk": 4})]
    );
}

#[test]
fn pages_follow_the_order_and_the_cursor() {
    let mut views = views(100);
    views.apply(
        "models.shop.order",
        99,
        &event(json!({"action": "synced", "rows": []})),
    );
    for pk in 1..=5 {
        let data = json!({"action": "created", "pk": pk, "data": {"total": 10 - pk}});
        views.apply("models.shop.order", pk, &event(data));
    }
    let query = RowsQuery {
        order_by: Some("total".into()),
        desc: true,
        limit: 2,
        after: Some(json!(2)),
    };
    let page = views.rows("shop.order", &query, |_| true).expect("view");
    let pks: Vec<&Value> = page.rows.iter().filter_map(|r| r.get("pk")).collect();
    assert_eq!(pks, vec![&json!(3), &json!(4)]);
    assert_eq!(page.total, 5);
    let filtered = views.rows(
        "shop.order",
        &RowsQuery {
            limit: 10,
            ..Default::default()
        },
        |k| {
            k.pointer("/data/total")
                .and_then(Value::as_u64)
                .is_some_and(|t| t > 6)
        },
    );
    assert_eq!(filtered.map(|p| p.total), Ok(3));
    let gone = RowsQuery {
        after: Some(json!(99)),
        limit: 1,
        ..Default::default()
    };
    assert_eq!(
        views.rows("shop.order", &gone, |_| true),
        Err(ViewError::NoSuchRow("99".into()))
    );
    assert!(matches!(
        views.rows("shop.nope", &query, |_| true),
        Err(ViewError::NoSuchModel(_))
    ));
}

#[test]
fn a_view_past_max_rows_says_it_is_incomplete_until_a_sync_fits() {
    let mut views = views(2);
    let topic = "models.shop.order";
    views.apply(topic, 99, &event(json!({"action": "synced", "rows": []})));
    for pk in 1..=2 {
        let created = event(json!({"action": "created", "pk": pk, "data": {}}));
        assert!(views.apply(topic, pk, &created).is_none());
    }
    let third = event(json!({"action": "created", "pk": 3, "data": {}}));
    assert!(views
        .apply(topic, 3, &third)
        .is_some_and(|f| f.contains("max_rows")));
    assert!(matches!(all(&views), Err(ViewError::Incomplete(..))));
    views.apply(
        topic,
        4,
        &event(json!({"action": "synced", "rows": [{"pk": 1}]})),
    );
    assert_eq!(all(&views).map(|p| p.total), Ok(1));
}

#[test]
fn malformed_model_events_make_the_view_incomplete_instead_of_wrong() {
    let topic = "models.shop.order";
    let seeded = || {
        let mut views = views(10);
        views.apply(
            topic,
            1,
            &event(json!({"action": "synced", "rows": [{"pk": 1}]})),
        );
        views
    };
    for bad in [
        json!({"action": "synced", "rows": "all"}),
        json!({"action": "synced"}),
        json!({"action": "synced", "rows": [{"total": 1}]}),
        json!({"action": "synced", "rows": [7]}),
        json!({"action": "synced", "rows": [{"pk": 1}, {"pk": 1}]}),
        json!({"action": "created", "pk": 1.5, "data": {}}),
        json!({"action": "created", "pk": null, "data": {}}),
        json!({"action": "updated", "pk": {"id": 1}, "data": {}}),
        json!({"action": "updated", "pk": 2, "data": [1]}),
    ] {
        let mut views = seeded();
        let fault = views.apply(topic, 2, &event(bad.clone()));
        assert!(fault.is_some(), "{bad}");
        assert!(
            matches!(all(&views), Err(ViewError::Incomplete(..))),
            "{bad}"
        );
        views.apply(
            topic,
            3,
            &event(json!({"action": "synced", "rows": [{"pk": "a"}]})),
        );
        assert_eq!(
            all(&views).map(|p| p.total),
            Ok(1),
            "a valid sync restores it after {bad}"
        );
    }
}

#[test]
fn a_view_past_max_bytes_is_incomplete_and_gives_its_memory_back() {
    let topic = "models.shop.order";
    let mut views = views(10);
    views.apply(topic, 1, &event(json!({"action": "synced", "rows": []})));
    let mut fault = None;
    for n in 0..200 {
        // Each update adds a new 1 KB field to the same row: the row grows.
        let data =
            json!({"action": "updated", "pk": 1, "data": {format!("f{n}"): "x".repeat(1000)}});
        fault = fault.or(views.apply(topic, 2 + n, &event(data)));
    }
    assert!(
        fault.as_deref().is_some_and(|f| f.contains("max_bytes")),
        "{fault:?}"
    );
    assert!(matches!(all(&views), Err(ViewError::Incomplete(..))));
}
