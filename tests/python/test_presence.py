"""Presence (switchboard.presence.list, switchboard.session.set_state, join/leave/state events on
switchboard.presence.<topic>) with an unmodified Autobahn|Python client: an authid is present on a topic
while at least one of its sessions (tabs) holds an exact subscription to it, and its join and leave
events come once, with its first tab and its last."""

import asyncio

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SubscribeOptions

from support import Clients, Gateway, Inbox, running, uid, wait, wamp_test
from test_auth import open_session, wampcra_answer

REALM = "presence"
LIST = "switchboard.presence.list"
SET_STATE = "switchboard.session.set_state"

EXTRA_CONFIG = f"""
[[realms]]
name = "{REALM}"
anonymous_role = "watcher"

[[realms.roles]]
name = "watcher"
permissions = [{{ uri = "", match = "prefix", allow = {{ subscribe = true, call = true }} }}]

[[realms.roles]]
name = "member"
permissions = [{{ uri = "room.", match = "prefix", allow = {{ subscribe = true }} }}]

[[realms.users]]
authid = "alice"
secret = "alice-secret"
role = "member"

[[realms.users]]
authid = "bob"
secret = "bob-secret"
role = "member"
"""


@pytest.fixture(scope="module")
def gateway():
    yield from running(Gateway(extra_config=EXTRA_CONFIG))


async def user(c: Clients, url, serializer, authid):
    s = await open_session(url, serializer, ["wampcra"], authid, wampcra_answer(f"{authid}-secret"), realm=REALM)
    c.sessions.append(s)
    await wait(s.joined, f"WELCOME for {authid}")
    return s


def collector(inbox: Inbox):
    def on_event(*args, **kwargs):
        inbox.put((kwargs["event"], kwargs["authid"], kwargs["state"]))

    return on_event


async def refused(call) -> str:
    with pytest.raises(ApplicationError) as caught:
        await wait(call, "an ERROR")
    return caught.value.error


async def members(session, topic):
    listed = await wait(session.call(LIST, topic), "presence.list")
    return {m["authid"]: (m["sessions"], m["state"]) for m in listed}


@wamp_test()
async def test_join_and_leave_once_per_authid_across_tabs(url, serializer):
    topic = f"room.{uid()}"
    async with Clients(url, serializer) as c:
        watcher = await c.connect(realm=REALM)
        inbox = Inbox()
        await watcher.subscribe(collector(inbox), f"switchboard.presence.{topic}")
        alice1 = await user(c, url, serializer, "alice")
        alice2 = await user(c, url, serializer, "alice")
        bob = await user(c, url, serializer, "bob")

        sub_a1 = await alice1.subscribe(lambda *a, **k: None, topic)
        await inbox.count(1, "alice joins with her first tab")
        sub_a2 = await alice2.subscribe(lambda *a, **k: None, topic)
        await bob.subscribe(lambda *a, **k: None, topic)
        await inbox.count(2, "bob joins")
        await asyncio.sleep(0.2)
        assert inbox.items == [("join", "alice", None), ("join", "bob", None)], "no event for alice's second tab"
        assert await members(watcher, topic) == {"alice": (2, None), "bob": (1, None)}

        await alice2.call(SET_STATE, {"status": "typing"})
        await inbox.count(3, "alice's state event")
        assert inbox.items[2] == ("state", "alice", {"status": "typing"})
        await bob.call(SET_STATE, mood="calm")
        await inbox.count(4, "bob's state event (keyword form)")
        assert inbox.items[3] == ("state", "bob", {"mood": "calm"})
        assert await members(bob, topic) == {"alice": (2, {"status": "typing"}), "bob": (1, {"mood": "calm"})}

        await sub_a1.unsubscribe()
        await asyncio.sleep(0.2)
        assert len(inbox.items) == 4, "alice still has a tab on the topic"
        assert (await members(watcher, topic))["alice"] == (1, {"status": "typing"})
        alice2.drop()
        await inbox.count(5, "alice leaves with her last tab")
        assert inbox.items[4] == ("leave", "alice", {"status": "typing"})
        assert await members(watcher, topic) == {"bob": (1, {"mood": "calm"})}
        del sub_a2


@wamp_test()
async def test_pattern_subscriptions_do_not_make_anyone_present(url, serializer):
    topic = f"room.{uid()}"
    async with Clients(url, serializer) as c:
        watcher = await c.connect(realm=REALM)
        await watcher.subscribe(lambda *a, **k: None, "room.", options=SubscribeOptions(match="prefix"))
        assert await members(watcher, topic) == {}
        await watcher.subscribe(lambda *a, **k: None, topic)
        listed = await members(watcher, topic)
        assert list(listed.values()) == [(1, None)], "an anonymous session is its own user"


@wamp_test()
async def test_state_bounds_and_list_permission(url, serializer):
    async with Clients(url, serializer) as c:
        alice = await user(c, url, serializer, "alice")
        assert await refused(alice.call(SET_STATE, {"big": "x" * 5000})) == "switchboard.error.limit_exceeded"
        assert await refused(alice.call(SET_STATE, "not a dict")) == "wamp.error.invalid_argument"
        await wait(alice.call(SET_STATE, {"ok": True}), "a small state")
        assert await refused(alice.call(LIST, "secret.topic")) == "wamp.error.not_authorized"
        assert await refused(alice.call(LIST)) == "wamp.error.invalid_argument"
        assert await wait(alice.call(LIST, f"room.{uid()}"), "an empty list") == []
