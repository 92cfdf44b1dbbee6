use super::*;
use serde_json::json;

fn router() -> Router {
    let config =
        switchboard_config::Config::from_toml_str("[[realms]]\nname = \"realm1\"\n", "test.toml")
            .expect("config");
    Router::new(&config)
}

fn message(body: Body) -> Message {
    in_incarnation(1, body)
}

fn in_incarnation(incarnation: u64, body: Body) -> Message {
    Message {
        v: VERSION,
        node: "node-2".to_string(),
        incarnation,
        body,
    }
}

/// The queues of the RPC messages `outgoing` holds (None: fanned out), and whether each asks for an
/// answer.
fn hellos(outgoing: &mut Outbound) -> Vec<Option<String>> {
    let mut to = Vec::new();
    while let Some(out) = outgoing.try_recv() {
        if let Body::Rpc {
            rpc: Rpc::Callees { reply: true, .. },
        } = Message::decode(&out.body).unwrap().body
        {
            to.push(out.to);
        }
    }
    to
}

#[test]
fn every_message_survives_its_encoding() {
    let bodies = [
        Body::Heartbeat,
        Body::Leaving,
        Body::Request {
            id: 7,
            reply_to: "s.node.node-1".to_string(),
            query: Query::Kick {
                authid: "alice".to_string(),
                reason: "wamp.close.killed".to_string(),
                message: "bye".to_string(),
                realm: None,
            },
        },
        Body::Request {
            id: 8,
            reply_to: "s.node.node-1".to_string(),
            query: Query::Subscribers {
                topic: "a.b".to_string(),
                realm: Some("realm1".to_string()),
            },
        },
        Body::Answer {
            id: 7,
            answer: Answer::Sessions(vec![SessionEntry {
                session: 1,
                authid: "alice".to_string(),
                authrole: "user".to_string(),
                realm: "realm1".to_string(),
            }]),
        },
        Body::Answer {
            id: 9,
            answer: Answer::Refused("no realm named \"x\"".to_string()),
        },
    ];
    for body in bodies {
        let sent = message(body);
        assert_eq!(Message::decode(&sent.encode()), Ok(sent));
    }
}

#[test]
fn the_encoding_is_readable_json() {
    let request = message(Body::Request {
        id: 3,
        reply_to: "s.node.node-1".to_string(),
        query: Query::SessionCount { realm: None },
    });
    let value: serde_json::Value = serde_json::from_slice(&request.encode()).unwrap();
    assert_eq!(
        value,
        json!({"v": 1, "node": "node-2", "incarnation": 1, "kind": "request", "id": 3, "reply_to": "s.node.node-1",
               "query": {"call": "session_count", "realm": null}})
    );
    let answer = message(Body::Answer {
        id: 3,
        answer: Answer::Count(4),
    });
    let value: serde_json::Value = serde_json::from_slice(&answer.encode()).unwrap();
    assert_eq!(
        value,
        json!({"v": 1, "node": "node-2", "incarnation": 1, "kind": "answer", "id": 3, "answer": {"count": 4}})
    );
}

#[test]
fn foreign_and_bad_messages_are_refused_not_panicked_on() {
    for body in [
        &b""[..],
        b"not json",
        b"[]",
        b"{\"v\": 1}",
        b"{\"v\": 1, \"node\": \"x\", \"kind\": \"shout\"}",
        b"{\"v\": 2, \"node\": \"x\", \"kind\": \"heartbeat\"}",
        b"{\"v\": 1, \"node\": \"x\", \"kind\": \"answer\", \"id\": -1, \"answer\": {\"count\": 1}}",
    ] {
        assert!(Message::decode(body).is_err(), "{body:?}");
    }
}

#[test]
fn the_exchange_is_named_after_the_stream() {
    assert_eq!(
        exchange_name("switchboard.events"),
        "switchboard.events.nodes"
    );
}

#[tokio::test]
async fn heartbeats_make_a_node_live_and_leaving_forgets_it() {
    let (nodes, _outgoing) = Nodes::new("s", "node-1");
    let router = router();
    assert!(nodes
        .take(&router, &message(Body::Heartbeat).encode())
        .is_none());
    assert_eq!(nodes.live(), vec!["node-2".to_string()]);
    // Our own messages come back through the fanout: not a live other node.
    let own = Message {
        v: VERSION,
        node: "node-1".to_string(),
        incarnation: 1,
        body: Body::Heartbeat,
    };
    nodes.take(&router, &own.encode());
    assert_eq!(nodes.live(), vec!["node-2".to_string()]);
    nodes.take(&router, b"garbage");
    nodes.take(&router, &message(Body::Leaving).encode());
    assert!(nodes.live().is_empty());
}

#[tokio::test]
async fn a_request_is_answered_to_its_reply_queue() {
    let (nodes, _outgoing) = Nodes::new("s", "node-1");
    let router = router();
    let request = message(Body::Request {
        id: 5,
        reply_to: "s.node.node-2".to_string(),
        query: Query::SessionCount { realm: None },
    });
    let (to, answer) = nodes.take(&router, &request.encode()).unwrap();
    assert_eq!(to, "s.node.node-2");
    let answer = Message::decode(&answer).unwrap();
    assert_eq!(answer.node, "node-1");
    assert_eq!(
        answer.body,
        Body::Answer {
            id: 5,
            answer: Answer::Count(0)
        }
    );
    let unknown = message(Body::Request {
        id: 6,
        reply_to: "s.node.node-2".to_string(),
        query: Query::SessionCount {
            realm: Some("nowhere".to_string()),
        },
    });
    let (_, answer) = nodes.take(&router, &unknown.encode()).unwrap();
    assert!(matches!(
        Message::decode(&answer).unwrap().body,
        Body::Answer {
            answer: Answer::Refused(_),
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_silent_node_is_named_missing_after_the_deadline() {
    let (nodes, mut outgoing) = Nodes::new("s", "node-1");
    let router = router();
    nodes.take(&router, &message(Body::Heartbeat).encode());
    let started = tokio::time::Instant::now();
    let gathered = nodes
        .ask(&router, Query::SessionCount { realm: None })
        .await
        .unwrap();
    assert_eq!(gathered.missing, vec!["node-2".to_string()]);
    assert_eq!(
        gathered.answers,
        vec![("node-1".to_string(), Answer::Count(0))]
    );
    assert_eq!(started.elapsed(), DEADLINE);
    let mut fanned_out = Vec::new();
    while let Some(out) = outgoing.try_recv() {
        fanned_out.push(Message::decode(&out.body).unwrap().body);
    }
    assert!(
        fanned_out
            .iter()
            .any(|body| matches!(body, Body::Request { .. })),
        "the request was fanned out: {fanned_out:?}"
    );
    assert!(nodes.state().waiting.is_empty());
}

#[tokio::test]
async fn a_node_heard_first_or_restarted_is_sent_this_nodes_callees() {
    let (nodes, mut outgoing) = Nodes::new("s", "node-1");
    let router = router();
    let to_node_2 = vec![Some("s.node.node-2".to_string())];
    nodes.take(&router, &message(Body::Heartbeat).encode());
    assert_eq!(hellos(&mut outgoing), to_node_2, "new: callees exchanged");
    nodes.take(&router, &message(Body::Heartbeat).encode());
    assert!(hellos(&mut outgoing).is_empty(), "known: nothing to say");
    nodes.take(&router, &in_incarnation(2, Body::Heartbeat).encode());
    assert_eq!(hellos(&mut outgoing), to_node_2, "restarted: again");
    // A node's own hello is answered with this node's callees, not with another hello.
    let hello = in_incarnation(
        3,
        Body::Rpc {
            rpc: Rpc::Callees {
                callees: Vec::new(),
                reply: true,
            },
        },
    );
    nodes.take(&router, &hello.encode());
    assert!(hellos(&mut outgoing).is_empty());
}

#[tokio::test]
async fn a_name_no_node_can_have_is_skipped_and_answers_go_to_the_senders_queue() {
    let (nodes, _outgoing) = Nodes::new("s", "node-1");
    let router = router();
    let long = Message {
        node: "n".repeat(300),
        ..message(Body::Heartbeat)
    };
    assert!(Message::decode(&long.encode()).is_err());
    nodes.take(&router, &long.encode());
    assert!(
        nodes.live().is_empty(),
        "a name a queue cannot carry is no node"
    );
    let forged = message(Body::Request {
        id: 5,
        reply_to: "q".repeat(300),
        query: Query::SessionCount { realm: None },
    });
    let (to, _) = nodes.take(&router, &forged.encode()).unwrap();
    assert_eq!(to, "s.node.node-2", "not the queue the message named");
}
