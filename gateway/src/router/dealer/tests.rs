//! The dealer across nodes: what goes out to other nodes and what a caller or callee here receives.

use serde_json::{json, Value};

use super::*;
use crate::cluster::nodes::{Body, Message as NodeMessage, Nodes, Outbound};
use crate::cluster::rpc::{Announced, Rpc};
use crate::router::peer::{received, test_peer as peer, ClientFeatures};

const ALL: ClientFeatures = ClientFeatures {
    callee_call_canceling: true,
    callee_progressive_call_results: true,
};

/// The RPC messages this node sent, with the queue each went to (None: every node).
pub(crate) fn sent(outgoing: &mut Outbound) -> Vec<(Option<String>, Rpc)> {
    let mut messages = Vec::new();
    while let Some(out) = outgoing.try_recv() {
        let message = NodeMessage::decode(&out.body).expect("a node message");
        let Body::Rpc { rpc } = message.body else {
            continue;
        };
        messages.push((out.to, rpc));
    }
    messages
}

fn clustered() -> (Dealer, Outbound) {
    let (nodes, outgoing) = Nodes::new("s", "n1");
    let mut dealer = Dealer::default();
    dealer.join_cluster(&nodes, "realm1");
    (dealer, outgoing)
}

fn announced(session: Id, procedure: &str, invoke: InvokePolicy, since_us: u64) -> Announced {
    Announced {
        realm: "realm1".into(),
        procedure: procedure.into(),
        session,
        invoke,
        since_us,
        call_canceling: true,
        progressive: true,
    }
}

fn receive_progress() -> Dict {
    let mut options = Dict::new();
    options.insert("receive_progress".into(), Value::Bool(true));
    options
}

#[test]
fn a_call_for_a_remote_callee_goes_to_its_node_and_the_answers_come_back() {
    let (mut dealer, mut outgoing) = clustered();
    dealer.node_registered("n2", announced(50, "p", InvokePolicy::Single, 1));
    let (caller, caller_rx) = peer(1, ALL);
    let payload = Payload::Args(vec![json!("x")]);
    let key = dealer
        .call(&caller, 9, "p", &receive_progress(), payload.clone())
        .expect("routed");
    let messages = sent(&mut outgoing);
    let [(
        Some(queue),
        Rpc::Invoke {
            caller: from,
            call,
            callee,
            details,
            payload: args,
            ..
        },
    )] = &messages[..]
    else {
        panic!("expected one Invoke to node n2, got {messages:?}")
    };
    assert_eq!(queue, "s.node.n2");
    assert_eq!((*from, *callee, key), (1, 50, (50, *call)));
    assert_eq!(details.get("receive_progress"), Some(&Value::Bool(true)));
    assert_eq!(Payload::from(args.clone()), payload);
    assert_eq!(caller.pending_calls.load(Ordering::Relaxed), 1);

    dealer.on_result(50, *call, true, Payload::Args(vec![json!(1)]));
    dealer.on_result(50, *call, false, Payload::Args(vec![json!(2)]));
    dealer.on_result(50, *call, false, Payload::Args(vec![json!(3)]));
    assert_eq!(
        received(&caller_rx),
        vec![
            json!([50, 9, {"progress": true}, [1]]),
            json!([50, 9, {}, [2]])
        ],
        "one progressive and one final RESULT; the answer after the end is dropped"
    );
    assert_eq!(caller.pending_calls.load(Ordering::Relaxed), 0);
}

#[test]
fn roundrobin_takes_every_callee_of_the_cluster_in_turn() {
    let (mut dealer, _outgoing) = clustered();
    dealer.node_registered("n2", announced(50, "p", InvokePolicy::RoundRobin, 1));
    let (callee, _callee_rx) = peer(2, ALL);
    dealer
        .register(&callee, "p", InvokePolicy::RoundRobin)
        .expect("joins the shared registration");
    let (caller, _caller_rx) = peer(1, ALL);
    let callees: Vec<Id> = (0..4)
        .map(|request| {
            let key = dealer.call(&caller, request, "p", &Dict::new(), Payload::Empty);
            key.expect("routed").0
        })
        .collect();
    assert_eq!(callees, vec![2, 50, 2, 50]);
}

#[test]
fn first_and_last_pick_by_registration_time_across_nodes() {
    let (mut dealer, _outgoing) = clustered();
    let (callee, _callee_rx) = peer(2, ALL);
    dealer.register(&callee, "p", InvokePolicy::First).unwrap();
    // Registered on node n2 before this node's callee (time 1 µs after the epoch).
    dealer.node_registered("n2", announced(50, "p", InvokePolicy::First, 1));
    let (caller, _caller_rx) = peer(1, ALL);
    let key = dealer.call(&caller, 1, "p", &Dict::new(), Payload::Empty);
    assert_eq!(key.expect("routed").0, 50, "n2's callee registered first");
}

#[test]
fn a_single_registration_elsewhere_refuses_one_here() {
    let (mut dealer, _outgoing) = clustered();
    dealer.node_registered("n2", announced(50, "p", InvokePolicy::Single, 1));
    let (callee, _callee_rx) = peer(2, ALL);
    for invoke in [InvokePolicy::Single, InvokePolicy::RoundRobin] {
        let refused = dealer.register(&callee, "p", invoke).unwrap_err();
        assert_eq!(refused.uri, "wamp.error.procedure_already_exists");
        assert!(refused.message.contains("node n2"), "{}", refused.message);
    }
}

#[test]
fn a_node_that_is_gone_fails_its_calls_and_takes_its_procedures() {
    let (mut dealer, _outgoing) = clustered();
    dealer.node_registered("n2", announced(50, "p", InvokePolicy::Single, 1));
    let (caller, caller_rx) = peer(1, ALL);
    dealer
        .call(&caller, 9, "p", &Dict::new(), Payload::Empty)
        .unwrap();
    dealer.forget_node("n2");
    let answers = received(&caller_rx);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0][4], json!("wamp.error.canceled"));
    assert!(answers[0][5][0]
        .as_str()
        .unwrap()
        .contains("n2 left the cluster"));
    let refused = dealer
        .call(&caller, 10, "p", &Dict::new(), Payload::Empty)
        .unwrap_err();
    assert_eq!(refused.uri, NO_SUCH_PROCEDURE);
    assert_eq!(caller.pending_calls.load(Ordering::Relaxed), 0);
}

#[test]
fn a_call_from_another_node_reaches_the_callee_here_and_answers_go_back() {
    let (mut dealer, mut outgoing) = clustered();
    let (callee, callee_rx) = peer(2, ALL);
    let registration = dealer.register(&callee, "p", InvokePolicy::Single).unwrap();
    sent(&mut outgoing); // the announcement
    let payload = Payload::Args(vec![json!("x")]);
    dealer.invoked_by_node("n2", (77, 5), 2, "p", receive_progress(), payload);
    let invocation = received(&callee_rx).pop().expect("an INVOCATION");
    assert_eq!(
        invocation,
        json!([68, 1, registration, {"receive_progress": true}, ["x"]])
    );
    dealer.on_yield(
        2,
        1,
        &receive_progress_yield(),
        Payload::Args(vec![json!(1)]),
    );
    dealer.cancel(77, 5, CancelMode::Kill, "wamp.error.canceled");
    assert_eq!(
        received(&callee_rx),
        vec![json!([69, 1, {"mode": "kill", "reason": "wamp.error.canceled"}])]
    );
    dealer.on_error(2, 1, Dict::new(), "com.app.stopped".into(), Payload::Empty);
    let messages = sent(&mut outgoing);
    assert!(
        matches!(&messages[..], [
            (Some(q1), Rpc::Yield { callee: 2, call: 5, progress: true, .. }),
            (Some(q2), Rpc::Error { callee: 2, call: 5, error, .. }),
        ] if q1 == "s.node.n2" && q2 == "s.node.n2" && error == CANCELED),
        "a progressive result, then canceled (kill mode) whatever the callee said: {messages:?}"
    );
}

fn receive_progress_yield() -> Dict {
    let mut options = Dict::new();
    options.insert("progress".into(), Value::Bool(true));
    options
}

#[test]
fn a_call_for_a_callee_that_left_is_answered_no_such_procedure() {
    let (mut dealer, mut outgoing) = clustered();
    dealer.invoked_by_node("n2", (77, 5), 2, "p", Dict::new(), Payload::Empty);
    let messages = sent(&mut outgoing);
    assert!(
        matches!(&messages[..], [(Some(_), Rpc::Error { call: 5, error, .. })] if error == NO_SUCH_PROCEDURE),
        "{messages:?}"
    );
}

#[test]
fn skip_and_killnowait_answer_the_caller_at_once_and_tell_the_callee_node() {
    for mode in [CancelMode::Skip, CancelMode::KillNoWait, CancelMode::Kill] {
        let (mut dealer, mut outgoing) = clustered();
        dealer.node_registered("n2", announced(50, "p", InvokePolicy::Single, 1));
        let (caller, caller_rx) = peer(1, ALL);
        let (_, call) = dealer
            .call(&caller, 9, "p", &Dict::new(), Payload::Empty)
            .unwrap();
        sent(&mut outgoing);
        dealer.cancel(1, 9, mode, CANCELED);
        let messages = sent(&mut outgoing);
        assert!(
            matches!(&messages[..], [(Some(_), Rpc::Cancel { caller: 1, call: c, mode: m, .. })] if *c == call && *m == mode),
            "{mode:?}: {messages:?}"
        );
        let answered = received(&caller_rx);
        if mode == CancelMode::Kill {
            assert!(answered.is_empty(), "kill waits for the callee's node");
            dealer.on_error(50, call, Dict::new(), CANCELED.into(), Payload::Empty);
            assert_eq!(received(&caller_rx)[0][4], json!(CANCELED));
        } else {
            assert_eq!(answered.len(), 1);
            assert_eq!(answered[0][4], json!(CANCELED));
        }
    }
}

#[test]
fn a_progressive_result_the_link_cannot_take_ends_the_call_for_both_sides() {
    let (nodes, mut outgoing) = Nodes::new("s", "n1");
    let mut dealer = Dealer::default();
    dealer.join_cluster(&nodes, "realm1");
    let (callee, callee_rx) = peer(2, ALL);
    dealer.register(&callee, "p", InvokePolicy::Single).unwrap();
    dealer.invoked_by_node("n2", (77, 5), 2, "p", receive_progress(), Payload::Empty);
    sent(&mut outgoing);
    received(&callee_rx);
    // The link is backed up: refusable messages fill its queue.
    let mut queued = 0;
    while nodes.send(
        None,
        Rpc::Unregistered {
            realm: "realm1".into(),
            procedure: "x".into(),
            session: 0,
        },
    ) {
        queued += 1;
    }
    let progress = receive_progress_yield();
    dealer.on_yield(2, 1, &progress, Payload::Empty);
    let interrupts = received(&callee_rx);
    assert_eq!(
        interrupts.len(),
        1,
        "the callee is interrupted: {interrupts:?}"
    );
    assert_eq!(interrupts[0][0], json!(69));
    let messages = sent(&mut outgoing);
    assert_eq!(messages.len(), queued + 1);
    assert!(
        matches!(&messages[queued..], [(_, Rpc::Error { call: 5, error, .. })] if error == CALLEE_UNAVAILABLE),
        "the caller's node hears the call ended: {messages:?}"
    );
    dealer.on_yield(2, 1, &Dict::new(), Payload::Empty);
    assert!(sent(&mut outgoing).is_empty(), "nothing after the end");
}
