//! The fixed test vectors of `vectors.json` (shared with implementations in other languages): this crate
//! must produce exactly the signatures, tickets and model-change kwargs written there, and accept them.

use serde_json::{Map, Value};
use switchboard_wire::amqp::Topology;
use switchboard_wire::{
    Event, ModelChange, Signer, TicketClaims, TicketError, TicketKey, Verifier,
    AMQP_SIGNATURE_HEADER, DEFAULT_MODEL_PREFIX, SIGNATURE_HEADER,
};

fn vectors() -> Value {
    serde_json::from_str(include_str!("../vectors.json")).expect("vectors.json is JSON")
}

fn list(name: &str) -> Vec<Value> {
    match vectors().get(name) {
        Some(Value::Array(items)) if !items.is_empty() => items.clone(),
        other => panic!("vectors.json: {name} must be a non-empty array, got {other:?}"),
    }
}

fn list_in(vector: &Value, key: &str) -> Vec<Value> {
    vector[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not an array in {vector}"))
        .clone()
}

fn text<'a>(vector: &'a Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {vector}"))
}

fn number(vector: &Value, key: &str) -> u64 {
    vector[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number in {vector}"))
}

#[test]
fn header_names_match() {
    let headers = &vectors()["signature_headers"];
    assert_eq!(headers["jsonrpc_http"], SIGNATURE_HEADER);
    assert_eq!(headers["amqp"], AMQP_SIGNATURE_HEADER);
}

#[test]
fn signatures_match_and_verify_once() {
    for vector in list("signatures") {
        let (secret, body) = (text(&vector, "secret"), text(&vector, "body").as_bytes());
        let timestamp = number(&vector, "timestamp");
        let header = Signer::new(secret).sign_with(body, timestamp, text(&vector, "nonce"));
        assert_eq!(header, text(&vector, "header"), "{vector}");
        let verifier = Verifier::new(secret, 300);
        assert_eq!(verifier.verify_at(Some(&header), body, timestamp), Ok(()));
        let replay = verifier.verify_at(Some(&header), body, timestamp);
        assert_eq!(replay.map_err(|e| e.which()), Err("replayed"));
        let other = Verifier::new(format!("{secret}x"), 300);
        let forged = other.verify_at(Some(&header), body, timestamp);
        assert_eq!(forged.map_err(|e| e.which()), Err("invalid"));
    }
}

#[test]
fn tickets_match_and_verify_until_they_expire() {
    for vector in list("tickets") {
        let key = TicketKey::new(text(&vector, "secret"));
        let claims: TicketClaims =
            serde_json::from_value(vector["claims"].clone()).expect("claims");
        let ticket = key.mint_claims(&claims).expect("minted");
        assert_eq!(ticket, text(&vector, "ticket"), "{vector}");
        let valid_at = number(&vector, "valid_at");
        let authid = claims.authid.as_str();
        assert_eq!(
            key.verify_at(&ticket, Some(authid), valid_at),
            Ok(claims.clone())
        );
        assert_eq!(
            key.verify_at(&ticket, Some(authid), claims.exp),
            Err(TicketError::Expired)
        );
        let other = TicketKey::new(format!("{}x", text(&vector, "secret")));
        assert_eq!(
            other.verify_at(&ticket, None, valid_at),
            Err(TicketError::Invalid)
        );
    }
}

#[test]
fn model_changes_have_the_documented_topic_kwargs_and_body() {
    for vector in list("model_changes") {
        let (model, pk) = (text(&vector, "model"), vector["pk"].clone());
        let data = vector
            .get("data")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        let change = match text(&vector, "action") {
            "created" => ModelChange::created(model, pk, &data),
            "updated" => {
                let changed: Vec<String> =
                    serde_json::from_value(vector["changed"].clone()).expect("changed");
                ModelChange::updated(model, pk, &data, changed.as_slice())
            }
            "deleted" => ModelChange::deleted(model, pk),
            "synced" => {
                let rows: Vec<(Value, Value)> = list_in(&vector, "rows")
                    .into_iter()
                    .map(|row| (row["pk"].clone(), row["data"].clone()))
                    .collect();
                ModelChange::synced(model, rows.iter().map(|(pk, data)| (pk, data)))
            }
            other => panic!("unknown action {other}"),
        }
        .expect("valid change");
        let event = change.to_event(DEFAULT_MODEL_PREFIX);
        assert_eq!(event.topic, text(&vector, "topic"));
        assert_eq!(Value::Object(event.kwargs.clone()), vector["kwargs"]);
        let body = text(&vector, "event_json");
        assert_eq!(String::from_utf8(event.to_json()).expect("utf-8"), body);
        let parsed: Value = serde_json::from_str(body).expect("json");
        assert_eq!(Event::from_value(parsed), Ok(event));
    }
}

#[test]
fn amqp_dead_letter_names_follow_the_exchange_and_queue() {
    for vector in list("amqp_topologies") {
        let topology = Topology {
            exchange: text(&vector, "exchange"),
            queue: text(&vector, "queue"),
        };
        assert_eq!(
            topology.dead_letter_exchange(),
            text(&vector, "dead_letter_exchange")
        );
        assert_eq!(
            topology.dead_letter_queue(),
            text(&vector, "dead_letter_queue")
        );
    }
}
