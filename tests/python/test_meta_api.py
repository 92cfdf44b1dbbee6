"""Session and subscription meta API (WAMP advanced profile) with unmodified Autobahn|Python clients.

realm1's anonymous role may do anything (its permissions cover the `wamp.` URIs); the realm `plain`
has a role allowed only `app.` URIs: it gets `wamp.error.not_authorized` for the meta procedures and
cannot subscribe to the meta topics. Each test has its own gateway, so session counts are its own."""

import asyncio

import pytest
from autobahn.wamp.exception import ApplicationError

from support import Clients, Gateway, Inbox, uid, wamp_test

PLAIN = """
[[realms]]
name = "plain"
anonymous_role = "user"

[[realms.roles]]
name = "user"
permissions = [{ uri = "app.", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } }]
"""


@pytest.fixture
def gateway():
    gw = Gateway(extra_config=PLAIN).start()
    try:
        yield gw
    finally:
        gw.close()


def collector(inbox: Inbox):
    def on_event(*args, **kwargs):
        inbox.put(list(args))

    return on_event


async def watch(session, topic) -> Inbox:
    inbox = Inbox()
    await session.subscribe(collector(inbox), topic)
    return inbox


@wamp_test()
async def test_welcome_announces_the_meta_apis(url, serializer):
    async with Clients(url, serializer) as c:
        s = await c.connect()
        assert s.router_roles["broker"].session_meta_api is True
        assert s.router_roles["broker"].subscription_meta_api is True
        assert s.router_roles["dealer"].session_meta_api is True


@wamp_test()
async def test_on_join_and_on_leave_of_another_session(url, serializer):
    async with Clients(url, serializer) as c:
        watcher = await c.connect()
        joins = await watch(watcher, "wamp.session.on_join")
        leaves = await watch(watcher, "wamp.session.on_leave")
        other = await c.connect()
        [[details]] = await joins.count(1, "on_join")
        assert details["session"] == other.session_id
        assert details["authid"].startswith("anonymous-")
        assert details["authrole"] == "anonymous"
        assert details["authmethod"] == "anonymous"
        assert details["authprovider"] == "static"
        assert details["transport"]["type"] == "websocket"
        authid, other_id = details["authid"], other.session_id
        await other.leave()
        [left] = await leaves.count(1, "on_leave")
        assert left == [other_id, authid, "anonymous"]


@wamp_test()
async def test_a_session_gets_no_on_join_before_its_welcome(url, serializer):
    # A session that subscribes to on_join right after joining sees later joins only.
    async with Clients(url, serializer) as c:
        first = await c.connect()
        joins = await watch(first, "wamp.session.on_join")
        second = await c.connect()
        await joins.count(1, "on_join of the second session")
        assert [d["session"] for [d] in joins.items] == [second.session_id]


@wamp_test()
async def test_count_list_get(url, serializer):
    async with Clients(url, serializer) as c:
        a = await c.connect()
        b = await c.connect()
        assert await a.call("wamp.session.count") == 2
        assert await a.call("wamp.session.count", ["anonymous"]) == 2
        assert await a.call("wamp.session.count", ["nobody"]) == 0
        assert await a.call("wamp.session.list") == sorted([a.session_id, b.session_id])
        assert await a.call("wamp.session.list", ["nobody"]) == []
        details = await a.call("wamp.session.get", b.session_id)
        assert details["session"] == b.session_id and details["authrole"] == "anonymous"
        with pytest.raises(ApplicationError) as e:
            await a.call("wamp.session.get", 12345)
        assert e.value.error == "wamp.error.no_such_session"
        with pytest.raises(ApplicationError) as e:
            await a.call("wamp.session.get", "x")
        assert e.value.error == "wamp.error.invalid_argument"


@wamp_test()
async def test_kill_and_kill_by_authid(url, serializer):
    async with Clients(url, serializer) as c:
        admin = await c.connect()
        victim = await c.connect()
        other = await c.connect()
        victim_id = victim.session_id
        await admin.call("wamp.session.kill", victim_id, reason="wamp.close.test", message="bye")
        left = await asyncio.wait_for(victim.left, 5)
        assert left.reason == "wamp.close.test" and left.message == "bye"
        with pytest.raises(ApplicationError) as e:
            await admin.call("wamp.session.kill", admin.session_id)
        assert e.value.error == "wamp.error.invalid_argument"
        with pytest.raises(ApplicationError) as e:
            await admin.call("wamp.session.kill", 12345)
        assert e.value.error == "wamp.error.no_such_session"
        other_id = other.session_id
        authid = (await admin.call("wamp.session.get", other_id))["authid"]
        assert await admin.call("wamp.session.kill_by_authid", authid) == [other_id]
        left = await asyncio.wait_for(other.left, 5)
        assert left.reason == "wamp.close.killed"
        # The caller is never killed, even when it matches.
        mine = (await admin.call("wamp.session.get", admin.session_id))["authid"]
        assert await admin.call("wamp.session.kill_by_authid", mine) == []
        third = await c.connect()
        assert await admin.call("wamp.session.kill_by_authrole", "anonymous") == 1
        await asyncio.wait_for(third.left, 5)
        assert admin.is_attached()


@wamp_test()
async def test_subscription_events(url, serializer):
    topic = f"com.test.meta.{uid()}"
    async with Clients(url, serializer) as c:
        watcher = await c.connect()
        inboxes = {
            name: await watch(watcher, f"wamp.subscription.{name}")
            for name in ("on_create", "on_subscribe", "on_unsubscribe", "on_delete")
        }
        a = await c.connect()
        b = await c.connect()
        sub_a = await a.subscribe(lambda *args: None, topic)
        [[session, details]] = await inboxes["on_create"].count(1, "on_create")
        assert session == a.session_id
        assert details["id"] == sub_a.id and details["uri"] == topic and details["match"] == "exact"
        assert isinstance(details["created"], str)
        await inboxes["on_subscribe"].count(1, "on_subscribe of a")
        sub_b = await b.subscribe(lambda *args: None, topic)
        assert sub_b.id == sub_a.id
        await inboxes["on_subscribe"].count(2, "on_subscribe of b")
        assert inboxes["on_subscribe"].items == [[a.session_id, sub_a.id], [b.session_id, sub_a.id]]
        assert len(inboxes["on_create"].items) == 1
        await sub_a.unsubscribe()
        await inboxes["on_unsubscribe"].count(1, "on_unsubscribe of a")
        assert inboxes["on_delete"].items == []
        b_id = b.session_id
        await b.leave()  # leaving unsubscribes: on_unsubscribe, then on_delete
        await inboxes["on_delete"].count(1, "on_delete")
        assert inboxes["on_unsubscribe"].items == [[a.session_id, sub_a.id], [b_id, sub_a.id]]
        assert inboxes["on_delete"].items == [[b_id, sub_a.id]]


@wamp_test()
async def test_subscription_procedures(url, serializer):
    topic = f"com.test.meta.{uid()}"
    async with Clients(url, serializer) as c:
        admin = await c.connect()
        a = await c.connect()
        b = await c.connect()
        exact = await a.subscribe(lambda *args: None, topic)
        await b.subscribe(lambda *args: None, topic)
        from autobahn.wamp.types import SubscribeOptions

        prefix = await a.subscribe(lambda *args, **kw: None, "com.test.meta.", options=SubscribeOptions(match="prefix"))
        listed = await admin.call("wamp.subscription.list")
        assert listed == {"exact": [exact.id], "prefix": [prefix.id], "wildcard": []}
        assert await admin.call("wamp.subscription.lookup", topic) == exact.id
        assert await admin.call("wamp.subscription.lookup", topic, {"match": "exact"}) == exact.id
        assert await admin.call("wamp.subscription.lookup", "com.test.meta.", {"match": "prefix"}) == prefix.id
        assert await admin.call("wamp.subscription.lookup", "com.none") is None
        assert await admin.call("wamp.subscription.match", topic) == sorted([exact.id, prefix.id])
        assert await admin.call("wamp.subscription.match", "com.none") is None
        got = await admin.call("wamp.subscription.get", exact.id)
        assert got["id"] == exact.id and got["uri"] == topic and got["match"] == "exact"
        assert await admin.call("wamp.subscription.list_subscribers", exact.id) == sorted([a.session_id, b.session_id])
        assert await admin.call("wamp.subscription.count_subscribers", exact.id) == 2
        assert await admin.call("wamp.subscription.count_subscribers", prefix.id) == 1
        for procedure in ("get", "list_subscribers", "count_subscribers"):
            with pytest.raises(ApplicationError) as e:
                await admin.call(f"wamp.subscription.{procedure}", 12345)
            assert e.value.error == "wamp.error.no_such_subscription"


META_PROCEDURES = [
    ("wamp.session.count", []),
    ("wamp.session.list", []),
    ("wamp.session.get", [1]),
    ("wamp.session.kill", [1]),
    ("wamp.session.kill_by_authid", ["x"]),
    ("wamp.session.kill_by_authrole", ["user"]),
    ("wamp.subscription.list", []),
    ("wamp.subscription.lookup", ["app.x"]),
    ("wamp.subscription.match", ["app.x"]),
    ("wamp.subscription.get", [1]),
    ("wamp.subscription.list_subscribers", [1]),
    ("wamp.subscription.count_subscribers", [1]),
]


@wamp_test()
async def test_a_role_without_wamp_permissions_gets_nothing(url, serializer):
    async with Clients(url, serializer) as c:
        user = await c.connect(realm="plain")
        other = await c.connect(realm="plain")
        for procedure, args in META_PROCEDURES:
            with pytest.raises(ApplicationError) as e:
                await user.call(procedure, *args)
            assert e.value.error == "wamp.error.not_authorized", procedure
        for topic in ("wamp.session.on_join", "wamp.subscription.on_subscribe"):
            with pytest.raises(ApplicationError) as e:
                await user.subscribe(lambda *args: None, topic)
            assert e.value.error == "wamp.error.not_authorized", topic
        assert other.is_attached()
