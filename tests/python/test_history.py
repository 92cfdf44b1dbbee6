"""History, recovery and retention with the unmodified Autobahn|Python client (both serializers):
`wamp.subscription.get_events` answers exactly the events a subscription missed, in publication order,
or `switchboard.error.history_gap` (never a partial list); only the subscription's own session may read
it; private events are never stored; a retained event reaches a new subscriber that asks for it, and
only then. A web app reads a topic's position with the signed JSON-RPC `last_publication`."""

import asyncio
import json

import pytest
import requests
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from ingest_support import SECURITY_CONFIG, sign
from support import Clients, Gateway, Inbox, running, uid, wamp_test

GET_EVENTS = "wamp.subscription.get_events"
LIMIT = 5  # events kept per topic under app.

HISTORY = f"""
[[realms.history]]
uri = "app."
match = "prefix"
limit = {LIMIT}
ttl_s = 600

[[realms.history]]
uri = "big."
match = "prefix"
limit = 1000
"""


@pytest.fixture(scope="module")
def gw():
    yield from running(
        Gateway(extra_config=HISTORY + SECURITY_CONFIG + '\n[ingest.jsonrpc]\nlisten = "127.0.0.1:0"\n')
    )


async def publish(session, topic: str, n: int, **options) -> int:
    """Publishes [n] with acknowledgement; returns the publication id."""
    published = await session.publish(topic, n, options=PublishOptions(acknowledge=True, **options))
    return published.id


async def error_of(awaitable) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await awaitable
    return caught.value


def rpc(gw, method: str, params: dict) -> dict:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    headers = {"Content-Type": "application/json", "X-Switchboard-Signature": sign(body)}
    return requests.post(gw.rpc_url, data=body, headers=headers, timeout=10).json()


@wamp_test()
async def test_get_events_answers_exactly_the_missed_events_in_order(gw, serializer):
    base = f"app.h{uid()}"
    async with Clients(gw.url, serializer) as clients:
        reader = await clients.connect()
        publisher = await clients.connect()
        exact = await reader.subscribe(lambda *a: None, f"{base}.x")
        prefix = await reader.subscribe(lambda *a: None, f"{base}.", options=SubscribeOptions(match="prefix"))
        ids = []
        for n, topic in enumerate(["x", "y", "x", "y", "x"]):
            ids.append(await publish(publisher, f"{base}.{topic}", n))

        missed = await reader.call(GET_EVENTS, exact.id, after_publication=ids[0])
        assert [e["publication"] for e in missed] == [ids[2], ids[4]]
        assert [e["args"] for e in missed] == [[2], [4]]
        assert all(e["topic"] == f"{base}.x" and e["subscription"] == exact.id for e in missed)
        assert all(e["timestamp"].endswith("Z") for e in missed)

        missed = await reader.call(GET_EVENTS, prefix.id, after_publication=ids[1])
        assert [e["publication"] for e in missed] == ids[2:]
        assert [e["topic"] for e in missed] == [f"{base}.x", f"{base}.y", f"{base}.x"]

        # Crossbar's positional form: the newest `limit` events, oldest first; reverse: newest first.
        assert [e["args"][0] for e in await reader.call(GET_EVENTS, prefix.id, 2)] == [3, 4]
        newest = await reader.call(GET_EVENTS, prefix.id, limit=2, reverse=True)
        assert [e["args"][0] for e in newest] == [4, 3]
        assert await reader.call(GET_EVENTS, exact.id, after_publication=ids[4]) == []


@wamp_test()
async def test_an_evicted_or_unknown_position_is_a_gap_not_a_partial_list(gw, serializer):
    topic = f"app.gap{uid()}"
    async with Clients(gw.url, serializer) as clients:
        reader = await clients.connect()
        publisher = await clients.connect()
        sub = await reader.subscribe(lambda *a: None, topic)
        ids = [await publish(publisher, topic, n) for n in range(LIMIT + 3)]
        gap = await error_of(reader.call(GET_EVENTS, sub.id, after_publication=ids[0]))
        assert gap.error == "switchboard.error.history_gap", gap
        gap = await error_of(reader.call(GET_EVENTS, sub.id, after_publication=424242))
        assert gap.error == "switchboard.error.history_gap", gap
        kept = await reader.call(GET_EVENTS, sub.id, after_publication=ids[3])
        assert [e["args"][0] for e in kept] == list(range(4, LIMIT + 3))
        # Topics outside [[realms.history]] cannot be recovered at all, and say so.
        other = await reader.subscribe(lambda *a: None, f"chat.{uid()}")
        none = await error_of(reader.call(GET_EVENTS, other.id))
        assert none.error == "switchboard.error.no_history", none


@wamp_test()
async def test_only_the_subscriptions_own_session_may_read_its_history(gw, serializer):
    topic = f"app.own{uid()}"
    async with Clients(gw.url, serializer) as clients:
        owner = await clients.connect()
        other = await clients.connect()
        sub = await owner.subscribe(lambda *a: None, topic)
        await publish(other, topic, 1)
        refused = await error_of(other.call(GET_EVENTS, sub.id))
        assert refused.error == "wamp.error.no_such_subscription", refused
        assert [e["args"] for e in await owner.call(GET_EVENTS, sub.id)] == [[1]]


@wamp_test()
async def test_private_events_are_not_stored(gw, serializer):
    topic = f"app.private{uid()}"
    async with Clients(gw.url, serializer) as clients:
        reader = await clients.connect()
        publisher = await clients.connect()
        inbox = Inbox()
        sub = await reader.subscribe(lambda n: inbox.put(n), topic)
        await publish(publisher, topic, 1, eligible=[reader._session_id])
        await publish(publisher, topic, 2, exclude_authid=["nobody"])
        await publish(publisher, topic, 3)
        await inbox.count(3, "three live events")
        assert [e["args"][0] for e in await reader.call(GET_EVENTS, sub.id)] == [3]


@wamp_test()
async def test_retained_event_reaches_a_new_subscriber_that_asks_and_no_other(gw, serializer):
    topic = f"status.{uid()}"
    async with Clients(gw.url, serializer) as clients:
        publisher = await clients.connect()
        await publish(publisher, topic, 1, retain=True)
        await publish(publisher, topic, 2, retain=True)
        await publish(publisher, topic, 3)  # not retained: the retained event stays 2
        late = await clients.connect()
        inbox = Inbox()
        await late.subscribe(
            lambda n, details=None: inbox.put((n, details.retained)),
            topic,
            options=SubscribeOptions(get_retained=True, details_arg="details"),
        )
        await inbox.count(1, "the retained event")
        assert inbox.items == [(2, True)]
        plain = Inbox()
        await late.subscribe(lambda n: plain.put(n), f"{topic}", options=SubscribeOptions(match="prefix"))
        await asyncio.sleep(0.2)
        assert plain.items == [], "no retained event without get_retained"


@wamp_test()
async def test_bad_arguments_get_precise_errors_and_the_gateway_keeps_serving(gw, serializer):
    topic = f"app.bad{uid()}"
    async with Clients(gw.url, serializer) as clients:
        reader = await clients.connect()
        sub = await reader.subscribe(lambda *a: None, topic)
        for args, kwargs in [
            ((sub.id,), {"limit": 10**12}),
            ((sub.id,), {"limit": 0}),
            ((sub.id,), {"after_publication": -5}),
            ((sub.id,), {"after_publication": "yesterday"}),
            ((sub.id,), {"reverse": "yes"}),
            (("one",), {}),
            ((), {}),
        ]:
            refused = await error_of(reader.call(GET_EVENTS, *args, **kwargs))
            assert refused.error == "wamp.error.invalid_argument", (args, kwargs, refused)
            assert refused.args and refused.args[0], "the message names the fault"
        await publish(reader, topic, 7, exclude_me=False)
        assert [e["args"] for e in await reader.call(GET_EVENTS, sub.id)] == [[7]]


@wamp_test()
async def test_last_publication_is_the_position_a_page_recovers_from(gw, serializer):
    topic = f"app.page{uid()}"
    assert rpc(gw, "last_publication", {"topic": f"chat.{uid()}"})["result"] == {"publication": None}, "no history"
    async with Clients(gw.url, serializer) as clients:
        publisher = await clients.connect()
        await publish(publisher, f"app.other{uid()}", 0)
        # Nothing on this topic yet: the realm's newest stored event is the position.
        rendered = rpc(gw, "last_publication", {"topic": topic})["result"]["publication"]
        reader = await clients.connect()
        sub = await reader.subscribe(lambda *a: None, topic)
        first = await publish(publisher, topic, 1)
        assert rpc(gw, "last_publication", {"topic": topic})["result"] == {"publication": first}
        missed = await reader.call(GET_EVENTS, sub.id, after_publication=rendered)
        assert [e["publication"] for e in missed] == [first]
        later = await publish(publisher, topic, 2)
        missed = await reader.call(GET_EVENTS, sub.id, after_publication=first)
        assert [e["publication"] for e in missed] == [later]
    bad = rpc(gw, "last_publication", {"topic": "not a uri"})
    assert bad["error"]["code"] == -32602, bad


@wamp_test(timeout=60)
async def test_an_answer_too_large_for_the_session_is_refused_with_advice_and_the_session_stays(gw, serializer):
    topic = f"big.{uid()}"
    async with Clients(gw.url, serializer) as clients:
        reader = await clients.connect()
        publisher = await clients.connect()
        sub = await reader.subscribe(lambda *a: None, topic)
        blob = "x" * 5000
        for n in range(600):  # 3 MB: more than half of the default 4 MiB outbound queue
            publisher.publish(topic, n, blob)
        await publish(publisher, topic, 600)
        refused = await error_of(reader.call(GET_EVENTS, sub.id, limit=1000))
        assert refused.error == "switchboard.error.answer_too_large", refused
        fit = int(refused.args[0].rsplit("limit=", 1)[1].rstrip(")"))
        assert 100 < fit < 601, refused.args
        page = await reader.call(GET_EVENTS, sub.id, limit=fit)
        assert [e["args"][0] for e in page] == list(range(601 - fit, 601))


@wamp_test(timeout=60)
async def test_retained_events_on_a_pattern_never_close_the_subscriber(gw, serializer):
    base = f"status.big{uid()}"
    async with Clients(gw.url, serializer) as clients:
        publisher = await clients.connect()
        blob = "x" * 500_000
        for n in range(10):  # 5 MB retained under one prefix
            await publisher.publish(f"{base}.t{n}", n, blob, options=PublishOptions(acknowledge=True, retain=True))
        late = await clients.connect()
        inbox = Inbox()
        await late.subscribe(
            lambda n, *blob, details=None: inbox.put(n),
            f"{base}.",
            options=SubscribeOptions(match="prefix", get_retained=True, details_arg="details"),
        )
        await inbox.count(1, "some retained events")
        await asyncio.sleep(0.3)
        assert inbox.items == sorted(inbox.items) and inbox.items[-1] == 9, "the newest, oldest first"
        assert len(inbox.items) < 10
        assert await late.call(GET_EVENTS, (await late.subscribe(lambda *a: None, "app.alive")).id) == []
