"""Server-side filters (`_filter`) and conflation (`_rate_ms`), checked on the wire with a raw WebSocket
client, so no client-side filtering can hide a leak (Autobahn|Python cannot send custom SUBSCRIBE options;
the js-client's tests cover it from the browser side): each
subscriber receives exactly the events its filter admits; a conflated subscriber flooded with 10,000 updates
of 100 rows ends with every row's last state; bad options get precise errors and the gateway keeps serving."""

import asyncio
import json

import pytest
import requests

from ingest_support import SECURITY_CONFIG, sign
from rawws import RawWs
from support import Gateway, running, uid, wamp_test


@pytest.fixture(scope="module")
def gw():
    yield from running(Gateway(extra_config=SECURITY_CONFIG + '\n[ingest.jsonrpc]\nlisten = "127.0.0.1:0"\n'))


def publish_batch(gw, events: list[dict]) -> None:
    """Publishes events as the web app does: signed JSON-RPC publish_batch, 1000 at most per call."""
    for start in range(0, len(events), 1000):
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "publish_batch", "params": {"events": events[start : start + 1000]}}
        ).encode()
        headers = {"Content-Type": "application/json", "X-Switchboard-Signature": sign(body)}
        answer = requests.post(gw.rpc_url, data=body, headers=headers, timeout=30).json()
        assert all("publication" in r for r in answer["result"]), answer


def order(topic: str, pk: int, city: str, total: int) -> dict:
    data = {"city": city, "total": total}
    return {"topic": topic, "args": [], "kwargs": {"action": "updated", "model": "shop.order", "pk": pk, "data": data}}


FILTERS = {
    "montreal": {"data.city": {"$like": "Montr%"}},
    "big": {"data.total": {"$gte": 100}},
    "some": {"$or": [{"pk": {"$in": [1, 2]}}, {"data.city": "Oslo"}]},
}


def admitted(name: str, event: dict) -> bool:
    kw = event["kwargs"]
    data = kw["data"]
    if name == "montreal":
        return data["city"].startswith("Montr")
    if name == "big":
        return data["total"] >= 100
    return kw["pk"] in (1, 2) or data["city"] == "Oslo"


@wamp_test(timeout=30)
async def test_three_filters_on_one_topic_each_receive_exactly_their_events_on_the_wire(gw):
    topic = f"shop.orders.{uid()}"
    subscribers = {}
    try:
        for request, (name, predicate) in enumerate(FILTERS.items(), start=1):
            ws = await RawWs.connect(gw.port)
            await ws.join()
            await ws.send([32, request, {"_filter": predicate}, topic])
            subscribed = await ws.recv()
            assert subscribed[0] == 33, subscribed
            subscribers[name] = ws
        cities = ["Montreal", "Oslo", "Montrose", "Paris", "Lima"]
        events = [order(topic, pk, cities[pk % 5], pk * 7 % 200) for pk in range(1, 61)]
        publish_batch(gw, events)
        for name, ws in subscribers.items():
            expected = [e["kwargs"] for e in events if admitted(name, e)]
            assert expected, name
            got = []
            for _ in expected:
                message = await ws.recv()
                assert message[0] == 36, message
                got.append(message[5])
            assert got == expected, name
            # Nothing else is queued for it: the next message is the answer to a round trip.
            await ws.send([34, 99, subscribed[2] + 10**9])
            assert (await ws.recv())[0] == 8, f"{name} received an event its filter does not admit"
    finally:
        for ws in subscribers.values():
            ws.close()


async def subscribe(ws: RawWs, request: int, topic: str, options: dict) -> list:
    await ws.send([32, request, options, topic])
    return await ws.recv()


@wamp_test()
async def test_filters_written_differently_share_one_subscription(gw):
    topic = f"shop.same.{uid()}"
    a, b = await RawWs.connect(gw.port), await RawWs.connect(gw.port)
    try:
        await a.join()
        await b.join()
        first = await subscribe(a, 1, topic, {"_filter": {"a": 1, "b": 2}})
        same = await subscribe(b, 1, topic, {"_filter": {"b": {"$eq": 2}, "a": 1}})
        other = await subscribe(b, 2, topic, {"_filter": {"a": 2}})
        assert first[0] == same[0] == other[0] == 33, (first, same, other)
        assert first[2] == same[2] != other[2]
    finally:
        a.close()
        b.close()


@wamp_test(timeout=60)
async def test_a_conflated_subscriber_flooded_with_updates_ends_with_every_rows_last_state(gw):
    topic = f"models.shop.flood{uid()}"
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        assert (await subscribe(ws, 1, topic, {"_rate_ms": 100}))[0] == 33
        events = [order(topic, n % 100, "Oslo", n) for n in range(10_000)]
        publishing = asyncio.create_task(asyncio.to_thread(publish_batch, gw, events))
        final = {n % 100: n for n in range(10_000)}
        rows: dict = {}
        received = 0
        while rows != final:
            event = await ws.recv(timeout=20)
            assert event[0] == 36, event
            rows[event[5]["pk"]] = event[5]["data"]["total"]
            received += 1
        await publishing
        assert received < 10_000 / 2, f"conflation delivered {received} of 10000 events"
    finally:
        ws.close()


@wamp_test()
async def test_bad_filters_and_rates_get_precise_errors_and_the_gateway_keeps_serving(gw):
    topic = f"shop.bad.{uid()}"
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join()
        deep: dict = {"pk": 1}
        for _ in range(60):
            deep = {"$not": deep}
        cases = [
            ({"_filter": {"data.city": {"$regex": "."}}}, "$regex"),
            ({"_filter": {"pk": {"$in": 5}}}, "$in"),
            ({"_filter": deep}, "deep"),
            ({"_filter": "pk = 1"}, "object"),
            ({"_rate_ms": 1}, "_rate_ms"),
            ({"_rate_ms": "fast"}, "_rate_ms"),
        ]
        for request, (options, fault) in enumerate(cases, start=1):
            error = await subscribe(ws, request, topic, options)
            assert error[:3] == [8, 32, request] and error[4] == "wamp.error.invalid_argument", (options, error)
            assert fault in error[5][0], (options, error)
        assert (await subscribe(ws, 99, topic, {"_filter": {"pk": 1}}))[0] == 33
        publish_batch(gw, [order(topic, 2, "x", 1), order(topic, 1, "x", 1)])
        event = await ws.recv()
        assert event[0] == 36 and event[5]["pk"] == 1
    finally:
        ws.close()


@wamp_test()
async def test_a_filter_nested_a_megabyte_deep_is_refused_and_others_keep_being_served(gw):
    topic = f"shop.deep.{uid()}"
    bystander = await RawWs.connect(gw.port)
    attacker = await RawWs.connect(gw.port)
    try:
        await bystander.join()
        await bystander.send([32, 1, {}, topic])
        assert (await bystander.recv())[0] == 33
        await attacker.join()
        depth = 350_000
        payload = '[32,1,{"_filter":' + '{"$not":' * depth + '{"pk":1}' + "}" * depth + "},\"" + topic + '"]'
        await attacker.send_frame(0x1, payload.encode())
        answer = await attacker.recv()
        assert answer[0] == 3, answer  # ABORT: nested past the gateway's limit, named in the message
        publish_batch(gw, [order(topic, 1, "x", 1)])
        event = await bystander.recv()
        assert event[0] == 36 and event[5]["pk"] == 1
    finally:
        bystander.close()
        attacker.close()
