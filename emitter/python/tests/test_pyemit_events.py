"""Event validation mirrors the gateway's (wire/src/event.rs, wire/src/uri.rs): every bad field is named,
unknown option keys are refused, and the body is serde_json's compact JSON."""

import datetime
import decimal
import json
import uuid

import pytest

from switchboard_emitter import Event, Invalid


def refused(**kwargs) -> str:
    with pytest.raises(Invalid) as error:
        Event.from_dict(kwargs.pop("value")) if "value" in kwargs else Event(**kwargs)
    return error.value.field


def test_a_full_event_has_the_rust_sides_body():
    event = Event("models.shop.order", [1], {"pk": 42}, retain=True, eligible_authid=["alice"],
                  exclude_authid=["bob"], eligible_authrole=["staff"], id="k1", realm="realm2")
    assert json.loads(event.to_json()) == {
        "topic": "models.shop.order", "args": [1], "kwargs": {"pk": 42},
        "options": {"retain": True, "eligible_authid": ["alice"], "exclude_authid": ["bob"],
                    "eligible_authrole": ["staff"]},
        "id": "k1", "realm": "realm2"}
    assert event.to_json().startswith(b'{"topic":"models.shop.order","args":[1],"kwargs":{"pk":42},"options":{"retain":true,')
    assert Event.from_dict(json.loads(event.to_json())) == event


def test_a_minimal_event_is_just_a_topic_and_unicode_is_not_escaped():
    assert Event("a.b").to_json() == b'{"topic":"a.b"}'
    assert Event("chat.room", ["héllo ✓"]).to_json() == '{"topic":"chat.room","args":["héllo ✓"]}'.encode()


def test_an_empty_eligible_list_means_nobody_not_everybody():
    event = Event.from_dict({"topic": "a.b", "options": {"eligible_authid": []}})
    assert event.eligible_authid == [] and event.options() == {"eligible_authid": []}
    assert Event("a.b").options() == {}


def test_every_bad_field_is_named():
    assert refused(value=[1]) == "event"
    assert refused(value={"args": []}) == "topic"
    assert refused(value={"topic": 5}) == "topic"
    assert refused(value={"topic": "a..b"}) == "topic"
    assert refused(value={"topic": "a b"}) == "topic"
    assert refused(value={"topic": "a.b", "args": {}}) == "args"
    assert refused(value={"topic": "a.b", "kwargs": []}) == "kwargs"
    assert refused(value={"topic": "a.b", "options": 1}) == "options"
    assert refused(value={"topic": "a.b", "options": {"retain": "yes"}}) == "options.retain"
    assert refused(value={"topic": "a.b", "options": {"eligible_authid": ["a", 2]}}) == "options.eligible_authid[1]"
    assert refused(value={"topic": "a.b", "options": {"eligible_authids": ["a"]}}) == "options.eligible_authids"
    assert refused(value={"topic": "a.b", "id": 7}) == "id"
    assert refused(value={"topic": "a.b", "id": ""}) == "id"
    assert refused(value={"topic": "a.b", "realm": "x y"}) == "realm"
    assert refused(value={"topic": "a.b", "kwarg": {}}) == "kwarg"
    # The keyword builder checks the same things.
    assert refused(topic="a.b", eligible_authid="alice") == "options.eligible_authid"
    assert refused(topic="a.b", exclude_authrole=[None]) == "options.exclude_authrole[0]"
    assert refused(topic="a.b", retain=1) == "options.retain"
    assert refused(topic="a.b", options={"retian": True}) == "options.retian"
    assert refused(topic="a.b", id="x" * 257) == "id"
    assert refused(topic="a.b", id="é" * 129) == "id"  # 258 bytes
    Event("a.b", id="é" * 128)


def test_unknown_option_error_reads_well():
    with pytest.raises(Invalid) as error:
        Event("a.b", options={"eligible_authids": ["a"]})
    assert str(error.value).startswith("options.eligible_authids: unknown option; known options are retain,")
    assert str(error.value.within("events[3]")).startswith("events[3].options.eligible_authids:")


@pytest.mark.parametrize("topic", ["com.a\x00b", "com.a\x07b", "com.a\x7f", "com.a\x85", "com.a\u200bb",
                                   "com.\u202eterces", "com.\ufeffa", "com.a\U000e0041", "app.\U0001d173x",
                                   "app.\u2800x", "app.\U0001bca1x", "a#b", "a\tb", "a\u3000b", ".com", ""])
def test_uris_with_invisible_or_control_characters_or_empty_components_are_refused(topic):
    with pytest.raises(Invalid) as error:
        Event(topic)
    assert error.value.field == "topic"


def test_valid_unicode_uris_pass():
    Event("com.café.ünïcode")


def test_payloads_json_cannot_carry_are_refused_but_common_python_types_are_sent_as_text():
    with pytest.raises(Invalid) as error:
        Event("a.b", [float("nan")]).to_json()
    assert error.value.field == "event"
    with pytest.raises(Invalid):
        Event("a.b", [object()]).to_json()
    with pytest.raises(Invalid) as error:
        Event("a.b", kwargs={1: "x"})
    assert error.value.field == "kwargs"
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    key = uuid.UUID(int=1)
    body = json.loads(Event("a.b", [when, datetime.date(2026, 1, 2), decimal.Decimal("1.50"), key]).to_json())
    assert body["args"] == ["2026-01-02T03:04:05Z", "2026-01-02", "1.50", str(key)]
