"""Model-change kwargs: created lists every field in changed, deleted has empty data and changed,
synced rows carry their pk first; bad model names and data are refused before anything is sent."""

import pytest

from switchboard_emitter import Emitter, Invalid
from switchboard_emitter import model


def test_created_lists_every_data_field_in_changed():
    kwargs = model.created_kwargs("shop.order", 7, {"b": 1, "a": 2})
    assert kwargs == {"action": "created", "model": "shop.order", "pk": 7, "data": {"b": 1, "a": 2},
                      "changed": ["b", "a"]}
    assert list(kwargs) == ["action", "model", "pk", "data", "changed"]


def test_updated_keeps_the_changed_fields_given():
    kwargs = model.updated_kwargs("shop.order", "a-1", {"status": "paid", "total": 30}, ("status",))
    assert kwargs["changed"] == ["status"] and kwargs["data"] == {"status": "paid", "total": 30}


def test_deleted_has_empty_data_and_changed():
    assert model.deleted_kwargs("shop.order", {"id": 7}) == {
        "action": "deleted", "model": "shop.order", "pk": {"id": 7}, "data": {}, "changed": []}


def test_synced_rows_carry_their_pk_first_and_the_pk_wins():
    kwargs = model.synced_kwargs("shop.order", [(42, {"status": "paid"}), ("a-1", {"x": 1, "pk": "stale"}),
                                                ({"id": 7}, {})])
    assert list(kwargs) == ["action", "model", "rows"]
    assert kwargs["rows"] == [{"pk": 42, "status": "paid"}, {"pk": "a-1", "x": 1}, {"pk": {"id": 7}}]
    assert all(list(row)[0] == "pk" for row in kwargs["rows"])
    assert model.synced_kwargs("shop.order", [])["rows"] == []


@pytest.mark.parametrize("name", ["order", "shop..order", "shop order", "", "shop.\u200border"])
def test_bad_model_names_are_refused(name):
    with pytest.raises(Invalid) as error:
        model.deleted_kwargs(name, 1)
    assert error.value.field == "model"
    with pytest.raises(Invalid):
        Emitter("k", jsonrpc_url="http://127.0.0.1:9").model(name)


def test_bad_data_is_refused_naming_the_field():
    with pytest.raises(Invalid) as error:
        model.created_kwargs("shop.order", 1, [1, 2])
    assert error.value.field == "data"
    with pytest.raises(Invalid) as error:
        model.synced_kwargs("shop.order", [(1, {}), (2, "nope")])
    assert error.value.field == "rows[1]"
    with pytest.raises(Invalid) as error:
        model.synced_kwargs("shop.order", [(1, {}), 3])
    assert error.value.field == "rows[1]"
    with pytest.raises(Invalid) as error:
        model.updated_kwargs("shop.order", 1, {}, "status")
    assert error.value.field == "changed"


def test_model_emitter_builds_events_with_prefix_and_options():
    emitter = Emitter("k", jsonrpc_url="http://127.0.0.1:9", model_prefix="m.")
    orders = emitter.model("shop.order").eligible_authids(["alice"])
    event = orders.event("updated", 1, {"a": 1}, ["a"], realm="realm2")
    assert event.topic == "m.shop.order" and event.eligible_authid == ["alice"] and event.realm == "realm2"
    assert emitter.model("shop.order").event("synced", [(1, {"a": 1})]).kwargs["rows"] == [{"pk": 1, "a": 1}]
    with pytest.raises(Invalid):
        orders.event("renamed", 1)
