"""The published wire vectors (wire/vectors.json, also checked by the Rust side's wire/tests/vectors.rs):
this package must produce exactly the signatures, tickets and model-change bodies written there."""

import json
from pathlib import Path

import pytest

from switchboard_emitter import (AMQP_SIGNATURE_HEADER, SIGNATURE_HEADER, Event, Invalid, SignatureError,
                                 Signer, TicketClaims, TicketError, TicketKey, Verifier)
from switchboard_emitter import model

REPO_ROOT = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO_ROOT / "wire" / "vectors.json").read_text(encoding="utf-8"))


def test_header_names_match():
    assert VECTORS["signature_headers"] == {"jsonrpc_http": SIGNATURE_HEADER, "amqp": AMQP_SIGNATURE_HEADER}


@pytest.mark.parametrize("vector", VECTORS["signatures"], ids=lambda v: v["nonce"])
def test_signatures_match_and_verify_once(vector):
    body = vector["body"].encode("utf-8")
    header = Signer(vector["secret"]).sign_with(body, vector["timestamp"], vector["nonce"])
    assert header == vector["header"]
    verifier = Verifier(vector["secret"], 300)
    verifier.verify(header, body, now=vector["timestamp"])
    with pytest.raises(SignatureError) as replay:
        verifier.verify(header, body, now=vector["timestamp"])
    assert replay.value.which == "replayed"
    with pytest.raises(SignatureError) as forged:
        Verifier(vector["secret"] + "x", 300).verify(header, body, now=vector["timestamp"])
    assert forged.value.which == "invalid"


@pytest.mark.parametrize("vector", VECTORS["tickets"], ids=lambda v: v["claims"]["authid"])
def test_tickets_match_and_verify_until_they_expire(vector):
    key = TicketKey(vector["secret"])
    claims = TicketClaims(**vector["claims"])
    ticket = key.mint_claims(claims)
    assert ticket == vector["ticket"]
    assert key.verify(ticket, claims.authid, now=vector["valid_at"]) == claims
    with pytest.raises(TicketError) as expired:
        key.verify(ticket, claims.authid, now=claims.exp)
    assert expired.value.which == "expired"
    with pytest.raises(TicketError) as forged:
        TicketKey(vector["secret"] + "x").verify(ticket, now=vector["valid_at"])
    assert forged.value.which == "invalid"


@pytest.mark.parametrize("vector", VECTORS["model_changes"], ids=lambda v: v["action"])
def test_model_changes_have_the_documented_topic_kwargs_and_body(vector):
    name, action = vector["model"], vector["action"]
    if action == "created":
        kwargs = model.created_kwargs(name, vector["pk"], vector["data"])
    elif action == "updated":
        kwargs = model.updated_kwargs(name, vector["pk"], vector["data"], vector["changed"])
    elif action == "deleted":
        kwargs = model.deleted_kwargs(name, vector["pk"])
    else:
        kwargs = model.synced_kwargs(name, [(row["pk"], row["data"]) for row in vector["rows"]])
    event = model.model_event(kwargs)
    assert event.topic == vector["topic"]
    assert event.kwargs == vector["kwargs"]
    assert list(event.kwargs) == list(vector["kwargs"])  # key order is part of the body
    assert event.to_json().decode("utf-8") == vector["event_json"]
    assert Event.from_dict(json.loads(vector["event_json"])) == event


def test_every_vector_kind_is_checked():
    """A new kind of vector in wire/vectors.json must get a check here too."""
    assert set(VECTORS) == {"about", "signature_headers", "signatures", "tickets", "model_changes",
                            "amqp_topologies"}


@pytest.mark.parametrize("vector", VECTORS["amqp_topologies"], ids=lambda v: v["exchange"])
def test_amqp_dead_letter_names_follow_the_exchange_and_queue(vector):
    pytest.importorskip("pika")
    from switchboard_emitter.transports import AmqpTransport

    declared = []

    class Channel:
        def __getattr__(self, name):
            return lambda *args, **kwargs: declared.append((name, args, kwargs))

    transport = AmqpTransport("amqp://guest:guest@127.0.0.1:5672/%2f", vector["exchange"], vector["queue"],
                              Signer("k"))
    transport.declare(Channel())
    names = {args[0] for _name, args, _kwargs in declared}
    assert {vector["dead_letter_exchange"], vector["dead_letter_queue"]} <= names
    assert ("queue_declare", (vector["queue"],),
            {"durable": True, "arguments": {"x-dead-letter-exchange": vector["dead_letter_exchange"]}}) in declared
    assert ("queue_bind", (vector["queue"], vector["exchange"]), {"routing_key": "#"}) in declared
