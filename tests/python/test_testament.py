"""Testaments (wamp.session.add_testament / flush_testaments) with an unmodified Autobahn|Python client, and
WAMP served at the root path `/` as well as `/ws`."""

import asyncio

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from support import Clients, Gateway, Inbox, running, uid, wamp_test
from rawws import RawWs

ADD = "wamp.session.add_testament"
FLUSH = "wamp.session.flush_testaments"
DETAILS = SubscribeOptions(details_arg="details")

# realm2: a role that may subscribe to everything but publish only under com.allowed.
REALM2 = """
[[realms]]
name = "realm2"
anonymous_role = "limited"
[[realms.roles]]
name = "limited"
permissions = [
  { uri = "", match = "prefix", allow = { subscribe = true, call = true } },
  { uri = "com.allowed.", match = "prefix", allow = { subscribe = true, publish = true } },
]
"""


@pytest.fixture(scope="module")
def gateway():
    yield from running(Gateway(extra_config=REALM2))


def collector(inbox: Inbox):
    def on_event(*args, details=None, **kwargs):
        inbox.put((list(args), kwargs, details))

    return on_event


async def refused(call) -> str:
    with pytest.raises(ApplicationError) as caught:
        await call
    return caught.value.error


@wamp_test()
async def test_welcome_announces_testament_meta_api(url, serializer):
    async with Clients(url, serializer) as c:
        s = await c.connect()
        assert s.router_roles["dealer"].testament_meta_api is True


@wamp_test()
async def test_testament_published_when_connection_is_cut(url, serializer):
    topic = f"com.test.testament.{uid()}"
    async with Clients(url, serializer) as c:
        watcher = await c.connect()
        inbox = Inbox()
        await watcher.subscribe(collector(inbox), topic, options=DETAILS)
        dying = await c.connect()
        dying_id = dying.session_id
        await dying.call(ADD, topic, [1, "gone", {"x": None}], {"session": dying_id, "why": "cut"})
        await dying.call(ADD, topic, ["second"], {})
        await asyncio.sleep(0.2)
        assert inbox.items == [], "a testament is published only when its session ends"
        dying.drop()
        items = await inbox.count(2, "both testaments after the TCP connection was cut")
        (args, kwargs, details), (args2, kwargs2, _) = items
        assert args == [1, "gone", {"x": None}]
        assert kwargs == {"session": dying_id, "why": "cut"}
        assert details.publisher is None, "the session is gone: no publisher is disclosed"
        assert (args2, kwargs2) == (["second"], {}), "published in the order added"


@wamp_test()
async def test_testament_published_on_goodbye_with_publish_options(url, serializer):
    topic = f"com.test.testament.{uid()}"
    async with Clients(url, serializer) as c:
        watcher = await c.connect()
        other = await c.connect()
        inbox, other_inbox = Inbox(), Inbox()
        await watcher.subscribe(collector(inbox), topic, options=DETAILS)
        await other.subscribe(collector(other_inbox), topic, options=DETAILS)
        leaving = await c.connect()
        await leaving.call(ADD, topic, ["bye"], {"k": 1}, publish_options={"exclude": [other.session_id]})
        await leaving.call(ADD, topic, ["kept"], {}, publish_options={"retain": True})
        await leaving.leave()
        items = await inbox.count(2, "the testaments after GOODBYE")
        assert [(a, k) for (a, k, _d) in items] == [(["bye"], {"k": 1}), (["kept"], {})]
        await other_inbox.count(1, "the testament that does not exclude it")
        await asyncio.sleep(0.2)
        assert [a for (a, _k, _d) in other_inbox.items] == [["kept"]], "publish_options.exclude applies"
        # retain: a later subscriber asking for retained events gets it.
        late = await c.connect()
        retained = Inbox()
        await late.subscribe(
            collector(retained), topic, options=SubscribeOptions(details_arg="details", get_retained=True)
        )
        (args, kwargs, details), = await retained.count(1, "the retained testament")
        assert (args, kwargs, details.retained) == (["kept"], {}, True)


@wamp_test()
async def test_flush_removes_testaments_and_counts_them(url, serializer):
    topic = f"com.test.testament.{uid()}"
    async with Clients(url, serializer) as c:
        watcher = await c.connect()
        inbox = Inbox()
        await watcher.subscribe(collector(inbox), topic, options=DETAILS)
        s = await c.connect()
        await s.call(ADD, topic, ["a"], {})
        await s.call(ADD, topic, ["b"], {}, scope="destroyed")
        await s.call(ADD, topic, ["c"], {}, scope="detached")
        assert await s.call(FLUSH) == 2, "flush without scope drops the `destroyed` ones"
        assert await s.call(FLUSH, scope="destroyed") == 0
        assert await s.call(FLUSH, scope="detached") == 1
        s.drop()
        # Publish a marker afterwards: if a testament were published it would arrive first.
        marker = await c.connect()
        await marker.publish(topic, "marker", options=PublishOptions(acknowledge=True))
        items = await inbox.count(1, "the marker")
        await asyncio.sleep(0.2)
        assert [a for (a, _k, _d) in inbox.items] == [["marker"]], "flushed testaments are not published"


@wamp_test()
async def test_detached_scope_is_published_too(url, serializer):
    topic = f"com.test.testament.{uid()}"
    async with Clients(url, serializer) as c:
        watcher = await c.connect()
        inbox = Inbox()
        await watcher.subscribe(collector(inbox), topic, options=DETAILS)
        s = await c.connect()
        await s.call(ADD, topic, ["detached"], {}, scope="detached")
        s.drop()
        (args, _k, _d), = await inbox.count(1, "the detached testament (no resumption: detached = destroyed)")
        assert args == ["detached"]


@wamp_test()
async def test_topic_the_role_may_not_publish_is_refused(url, serializer):
    async with Clients(url, serializer) as c:
        s = await c.connect(realm="realm2")
        assert await refused(s.call(ADD, f"com.other.{uid()}", [], {})) == "wamp.error.not_authorized"
        assert await refused(s.call(ADD, "wamp.session.on_leave", [], {})) == "wamp.error.not_authorized"
        assert await refused(s.call(ADD, "switchboard.x", [], {})) == "wamp.error.not_authorized"
        # Allowed topic: accepted, and published on leaving.
        topic = f"com.allowed.{uid()}"
        watcher = await c.connect(realm="realm2")
        inbox = Inbox()
        await watcher.subscribe(collector(inbox), topic, options=DETAILS)
        await s.call(ADD, topic, ["ok"], {})
        s.drop()
        (args, _k, _d), = await inbox.count(1, "the permitted testament")
        assert args == ["ok"]


@wamp_test()
async def test_too_many_testaments_is_limit_exceeded(url, serializer):
    topic = f"com.test.testament.{uid()}"
    async with Clients(url, serializer) as c:
        s = await c.connect()
        for i in range(16):
            await s.call(ADD, topic, [i], {})
        assert await refused(s.call(ADD, topic, [16], {})) == "switchboard.error.limit_exceeded"
        assert await s.call(FLUSH) == 16
        await s.call(ADD, topic, ["room again"], {})


@wamp_test()
async def test_bad_arguments_are_invalid_argument(url, serializer):
    topic = f"com.test.testament.{uid()}"
    invalid = "wamp.error.invalid_argument"
    async with Clients(url, serializer) as c:
        s = await c.connect()
        assert await refused(s.call(ADD)) == invalid, "no topic"
        assert await refused(s.call(ADD, 42, [], {})) == invalid, "topic not a string"
        assert await refused(s.call(ADD, topic, "not a list", {})) == invalid
        assert await refused(s.call(ADD, topic, [], ["not", "a", "dict"])) == invalid
        assert await refused(s.call(ADD, topic, [], {}, scope="forever")) == invalid
        assert await refused(s.call(ADD, topic, [], {}, publish_options="retain")) == invalid
        assert await refused(s.call(ADD, topic, [], {}, publish_options={"retain": "yes"})) == invalid
        assert await refused(s.call(FLUSH, scope="forever")) == invalid
        assert await refused(s.call(ADD, "not a uri!", [], {})) == "wamp.error.invalid_uri"
        assert await s.call(FLUSH) == 0, "nothing refused was stored"


# ----------------------------------------------------------------------------- WAMP at the root path


@wamp_test()
async def test_autobahn_at_root_path_does_pubsub(gateway, serializer):
    root = f"ws://127.0.0.1:{gateway.port}/"
    topic = f"com.test.root.{uid()}"
    async with Clients(root, serializer) as c:
        sub = await c.connect()
        pub = await c.connect()
        inbox = Inbox()
        await sub.subscribe(collector(inbox), topic, options=DETAILS)
        await pub.publish(topic, "at root", k=1, options=PublishOptions(acknowledge=True))
        (args, kwargs, _), = await inbox.count(1, "an event over a root-path connection")
        assert (args, kwargs) == (["at root"], {"k": 1})


@wamp_test()
async def test_rawws_at_root_path_and_plain_get(gateway):
    ws = await RawWs.connect(gateway.port, path="/")
    try:
        session = await ws.join()
        assert isinstance(session, int)
    finally:
        ws.close()
    # A plain GET / (no upgrade) is answered 404, as before `/` took upgrades.
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.split()[1] == b"404", status
