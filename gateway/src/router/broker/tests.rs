use std::time::Duration;

use super::*;
use crate::router::outbox::OutboxReceiver;
use serde_json::json;

fn peer(id: Id) -> (Arc<Peer>, OutboxReceiver) {
    crate::router::peer::test_peer(id, Default::default())
}

#[test]
fn role_lists_look_at_every_role_a_session_holds() {
    let (peer, _receiver) = peer(7);
    let mut two_roles = Arc::try_unwrap(peer).expect("only owner");
    two_roles.roles = vec!["member".into(), "extra".into()];
    let roles = |key: &str| {
        let mut options = Dict::new();
        options.insert(key.into(), Value::from(vec!["extra"]));
        Audience::from_options(&options, None)
    };
    assert!(
        !roles("exclude_authrole").admits(&two_roles),
        "excluded by its second role"
    );
    assert!(
        roles("eligible_authrole").admits(&two_roles),
        "eligible by its second role"
    );
    two_roles.roles = vec!["member".into()];
    assert!(roles("exclude_authrole").admits(&two_roles));
    assert!(!roles("eligible_authrole").admits(&two_roles));
}

#[test]
fn leaving_in_any_order_keeps_the_others_subscribed() {
    let mut broker = Broker::default();
    let peers: Vec<_> = (1..=4).map(peer).collect();
    let id = peers
        .iter()
        .map(|(p, _)| broker.subscribe(p, Wanted::plain("t.x", MatchPolicy::Exact), Coverage::All))
        .last()
        .unwrap_or_default();
    assert_eq!(
        broker.subscribe(
            &peers[0].0,
            Wanted::plain("t.x", MatchPolicy::Exact),
            Coverage::All
        ),
        id
    );
    assert_eq!(
        broker.subscriber_count(id),
        4,
        "subscribing twice adds nobody"
    );
    assert!(broker.unsubscribe(2, id));
    assert!(!broker.unsubscribe(2, id), "already gone");
    assert!(broker.unsubscribe(4, id));
    let payload = Payload::Empty;
    let audience = Audience::default();
    let publication = Publication {
        id: 99,
        topic: "t.x",
        payload: &payload,
        publisher_details: Dict::new(),
        audience: &audience,
    };
    assert_eq!(broker.publish(&publication, &mut |_, _| {}).delivered, 2);
    for (peer, receiver) in &peers {
        let got = receiver.frames.try_recv().is_some();
        assert_eq!(got, peer.id == 1 || peer.id == 3, "session {}", peer.id);
    }
    assert!(broker.unsubscribe(1, id) && broker.unsubscribe(3, id));
    assert_eq!(broker.subscriber_count(id), 0);
    assert_eq!(broker.publish(&publication, &mut |_, _| {}).delivered, 0);
}

fn event_of(topic: &str, id: Id, kwargs: Value) -> (Id, String, Payload) {
    let kwargs = serde_json::from_value(kwargs).unwrap_or_default();
    (id, topic.to_string(), Payload::ArgsKwargs(vec![], kwargs))
}

fn publish(
    broker: &Broker,
    (id, topic, payload): &(Id, String, Payload),
    armed: &mut Vec<Id>,
) -> Fanout {
    let audience = Audience::default();
    let publication = Publication {
        id: *id,
        topic,
        payload,
        publisher_details: Dict::new(),
        audience: &audience,
    };
    broker.publish(&publication, &mut |sub, _| armed.push(sub))
}

fn received(receiver: &OutboxReceiver) -> Vec<Id> {
    let mut ids = Vec::new();
    while let Some(frame) = receiver.frames.try_recv() {
        let text = match frame {
            Frame::Text(text) => text.as_str().to_string(),
            Frame::Binary(bytes) => String::from_utf8_lossy(&bytes).to_string(),
        };
        let message: Value = serde_json::from_str(&text).unwrap_or_default();
        ids.push(message[2].as_u64().unwrap_or_default());
    }
    ids
}

#[test]
fn filters_are_part_of_the_subscription_and_deliver_only_matching_events() {
    let mut broker = Broker::default();
    let (a, a_rx) = peer(1);
    let (b, b_rx) = peer(2);
    let (c, c_rx) = peer(3);
    let filtered = |filter: Value| Wanted {
        filter: Some(Filter::parse(&filter).expect("valid filter")),
        ..Wanted::plain("t.x", MatchPolicy::Exact)
    };
    let paid = broker.subscribe(&a, filtered(json!({"status": "paid"})), Coverage::All);
    let same = broker.subscribe(
        &b,
        filtered(json!({"status": {"$eq": "paid"}})),
        Coverage::All,
    );
    let all = broker.subscribe(&c, Wanted::plain("t.x", MatchPolicy::Exact), Coverage::All);
    assert_eq!(
        paid, same,
        "the same filter written differently is one subscription"
    );
    assert_ne!(paid, all);
    let mut armed = Vec::new();
    publish(
        &broker,
        &event_of("t.x", 10, json!({"status": "new"})),
        &mut armed,
    );
    publish(
        &broker,
        &event_of("t.x", 11, json!({"status": "paid"})),
        &mut armed,
    );
    assert_eq!(received(&a_rx), vec![11]);
    assert_eq!(received(&b_rx), vec![11]);
    assert_eq!(received(&c_rx), vec![10, 11]);
    assert!(broker.unsubscribe(1, paid) && broker.unsubscribe(2, paid));
    assert_eq!(
        broker.describe(paid),
        None,
        "deleted with its last subscriber"
    );
    assert!(broker.describe(all).is_some());
}

#[test]
fn a_conflated_subscription_gets_the_first_event_then_the_newest_per_row_each_window() {
    let mut broker = Broker::default();
    let (a, a_rx) = peer(1);
    let wanted = Wanted {
        rate: Some(Duration::from_millis(50)),
        ..Wanted::plain("models.shop.order", MatchPolicy::Exact)
    };
    let id = broker.subscribe(&a, wanted, Coverage::All);
    let mut armed = Vec::new();
    let mut publication = 0;
    for (pk, total) in [(1, 1), (1, 2), (2, 1), (1, 3), (2, 2)] {
        publication += 1;
        let kwargs = json!({"action": "updated", "pk": pk, "data": {"total": total}});
        publish(
            &broker,
            &event_of("models.shop.order", publication, kwargs),
            &mut armed,
        );
    }
    assert_eq!(received(&a_rx), vec![1], "the first goes out at once");
    assert_eq!(armed, vec![id], "and starts the window");
    let (fanout, again) = broker.end_window(id);
    assert_eq!(fanout.delivered, 2);
    assert_eq!(received(&a_rx), vec![4, 5], "the last state of each row");
    assert_eq!(again, Some(Duration::from_millis(50)));
    assert_eq!(
        broker.end_window(id),
        (Fanout::default(), None),
        "an empty window goes quiet"
    );
}

#[test]
fn meta_queries_see_subscriptions_and_their_lifecycle() {
    let (a, _ra) = peer(1);
    let (b, _rb) = peer(2);
    let mut broker = Broker::default();
    assert!(!broker.reaches("t.x"));
    let exact = Wanted::plain("t.x", MatchPolicy::Exact);
    let (id, created) = broker.subscribe_noting(&a, exact.clone(), Coverage::All);
    assert!(created);
    assert_eq!(
        broker.subscribe_noting(&b, exact, Coverage::All),
        (id, false)
    );
    let prefix = Wanted::plain("t.", MatchPolicy::Prefix);
    let (pattern, _) = broker.subscribe_noting(&a, prefix, Coverage::All);
    assert!(broker.reaches("t.x") && broker.reaches("t.y") && !broker.reaches("u.x"));
    let listed = broker.list();
    assert_eq!(
        (listed.exact, listed.prefix, listed.wildcard),
        (vec![id], vec![pattern], vec![])
    );
    assert_eq!(broker.lookup("t.x", MatchPolicy::Exact), Some(id));
    assert_eq!(broker.lookup("t.x", MatchPolicy::Prefix), None);
    assert_eq!(broker.matching("t.x"), {
        let mut ids = vec![id, pattern];
        ids.sort_unstable();
        ids
    });
    assert_eq!(broker.subscribers_of(id), Some(vec![1, 2]));
    let details = broker.details(id).expect("details");
    assert_eq!(details["uri"], "t.x");
    assert_eq!(details["match"], "exact");
    let removed = |deleted| {
        Some(Removed {
            deleted,
            meta: false,
        })
    };
    assert_eq!(broker.unsubscribe_noting(1, id), removed(false));
    assert_eq!(broker.unsubscribe_noting(1, id), None);
    assert_eq!(broker.unsubscribe_noting(2, id), removed(true));
    assert_eq!(broker.details(id), None);
    let (on_join, _) = broker.subscribe_noting(
        &a,
        Wanted::plain("wamp.session.on_join", MatchPolicy::Exact),
        Coverage::All,
    );
    assert_eq!(
        broker.unsubscribe_noting(1, on_join),
        Some(Removed {
            deleted: true,
            meta: true
        })
    );
}

#[test]
fn members_count_sessions_per_authid_and_holds_per_subscription() {
    let mut broker = Broker::default();
    let (alice_tab1, _r1) = peer(1);
    let (alice_tab2, _r2) = peer(2);
    let (bob, _r3) = peer(3);
    let alice_tab2 = {
        let mut p = Arc::try_unwrap(alice_tab2).expect("only owner");
        p.authid = "user1".into();
        Arc::new(p)
    };
    let plain = || Wanted::plain("room", MatchPolicy::Exact);
    let filtered = Wanted {
        filter: Some(Filter::parse(&json!({"kind": "chat"})).expect("valid filter")),
        ..plain()
    };
    let room = broker.subscribe(&alice_tab1, plain(), Coverage::All);
    assert_eq!(broker.exact_holds_of("room", "user1"), 1, "alice's first");
    let chat = broker.subscribe(&alice_tab1, filtered, Coverage::All);
    broker.subscribe(&alice_tab2, plain(), Coverage::All);
    broker.subscribe(&bob, plain(), Coverage::All);
    broker.subscribe(
        &bob,
        Wanted::plain("room", MatchPolicy::Prefix),
        Coverage::All,
    );
    assert_eq!(broker.exact_holds_of("room", "user1"), 3);
    let members: Vec<_> = broker.members("room").into_iter().collect();
    assert_eq!(
        members,
        vec![("user1", 2), ("user3", 1)],
        "tabs counted once"
    );
    assert_eq!(broker.topics_of("user3"), vec!["room".to_string()]);
    assert_eq!(broker.exact_topic(room), Some("room"));
    assert_eq!(broker.exact_topic(chat), Some("room"));
    broker.unsubscribe(1, room);
    broker.unsubscribe(1, chat);
    broker.unsubscribe(2, room);
    assert_eq!(
        broker.exact_holds_of("room", "user1"),
        0,
        "alice's last is gone"
    );
    assert!(broker.topics_of("user1").is_empty());
}
