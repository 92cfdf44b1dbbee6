"""Permissions hold for every match policy: an event reaches a session only if that session's role may
subscribe to the event's concrete topic, whatever pattern it subscribed with. Each realm below has one
anonymous role with the rules under test; a web app publishes into it over signed JSON-RPC (its own realm
named in the event), and subscribers are unmodified Autobahn|Python sessions and a raw WebSocket client
that sees exactly what the gateway sends."""

import asyncio
import json

import pytest
import requests
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SubscribeOptions

from ingest_support import SECURITY_CONFIG, sign
from rawws import RawWs
from support import Clients, Gateway, Inbox, running, wamp_test

SUB = "allow = { subscribe = true }"
REALMS = {
    # deny under allow: everything under app.public but app.public.secret
    "allowdeny": [
        f'{{ uri = "app.public", match = "prefix", {SUB} }}',
        '{ uri = "app.public.secret", match = "exact" }',
    ],
    # one exact topic only
    "exactonly": [f'{{ uri = "app.public.news", match = "exact", {SUB} }}'],
    # allow under deny: nothing under app but app.open.
    "denyallow": [
        '{ uri = "app", match = "prefix" }',
        f'{{ uri = "app.open.", match = "prefix", {SUB} }}',
    ],
}


def realms_config() -> str:
    out = []
    for name, rules in REALMS.items():
        out.append(
            f'\n[[realms]]\nname = "{name}"\nanonymous_role = "reader"\n'
            f'[[realms.roles]]\nname = "reader"\npermissions = [{", ".join(rules)}]\n'
        )
    return "".join(out)


class AuthzGateway(Gateway):
    def __init__(self):
        # JSON-RPC on port 0: start() sets rpc_port and rpc_url from the ready file.
        super().__init__(
            extra_config=SECURITY_CONFIG
            + '\n[ingest.jsonrpc]\nlisten = "127.0.0.1:0"\n'
            + realms_config()
        )

    async def publish(self, realm: str, topic: str, n: int) -> None:
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "publish",
                "params": {"realm": realm, "topic": topic, "args": [topic, n]},
            }
        ).encode()
        headers = {"Content-Type": "application/json", "X-Switchboard-Signature": sign(body)}
        response = await asyncio.to_thread(requests.post, self.rpc_url, data=body, headers=headers, timeout=10)
        assert "result" in response.json(), response.text


@pytest.fixture(scope="module")
def gw():
    yield from running(AuthzGateway())


# (realm, match, pattern, topics published in this order, the topics that must arrive)
DELIVERIES = [
    ("allowdeny", "prefix", "app.public.", ["app.public.secret", "app.public.news"], ["app.public.news"]),
    ("allowdeny", "wildcard", "app.public.", ["app.public.secret", "app.public.news"], ["app.public.news"]),
    (
        "allowdeny",
        "prefix",
        "app.public.secret",
        ["app.public.secret", "app.public.secrets"],
        ["app.public.secrets"],
    ),
    (
        "exactonly",
        "prefix",
        "app.public.news",
        ["app.public.newsroom.salaries", "app.public.news"],
        ["app.public.news"],
    ),
    ("exactonly", "wildcard", "app.public.", ["app.public.weather", "app.public.news"], ["app.public.news"]),
    ("denyallow", "prefix", "app.", ["app.closed.x", "app.open.x"], ["app.open.x"]),
    ("denyallow", "wildcard", "app..x", ["app.closed.x", "app.open.x"], ["app.open.x"]),
]

# (realm, match, pattern): can match nothing the role may subscribe to, so refused at SUBSCRIBE
REFUSED = [
    ("allowdeny", "exact", "app.public.secret"),
    ("allowdeny", "prefix", "app.other."),
    ("exactonly", "prefix", "app.public.newsroom"),
    ("exactonly", "wildcard", "app..weather"),
    ("denyallow", "prefix", "app.closed."),
    ("denyallow", "exact", "app.closed.x"),
]


async def publish_all(gw, realm, topics):
    for n, topic in enumerate(topics):
        await gw.publish(realm, topic, n)


@pytest.mark.parametrize("realm,match,pattern,published,expected", DELIVERIES)
@wamp_test()
async def test_autobahn_pattern_subscriber_receives_only_allowed_topics(
    gw, serializer, realm, match, pattern, published, expected
):
    async with Clients(gw.url, serializer) as clients:
        session = await clients.connect(realm=realm)
        inbox = Inbox()
        options = SubscribeOptions(match=match, details_arg="details")
        await session.subscribe(lambda *args, details=None: inbox.put(args[0]), pattern, options=options)
        await publish_all(gw, realm, published)
        await inbox.count(len(expected), f"{expected} on {pattern}")
        # Every event is published before the allowed one(s) it is checked against: a leak would have
        # arrived first.
        assert inbox.items == expected


@pytest.mark.parametrize("realm,match,pattern,published,expected", DELIVERIES)
@wamp_test()
async def test_raw_websocket_sees_no_event_it_may_not_subscribe_to(gw, realm, match, pattern, published, expected):
    ws = await RawWs.connect(gw.port)
    try:
        await ws.join(realm)
        await ws.send([32, 1, {"match": match}, pattern])
        subscribed = await ws.recv()
        assert subscribed[:2] == [33, 1], subscribed
        await publish_all(gw, realm, published)
        got = []
        for _ in expected:
            event = await ws.recv()
            assert event and event[0] == 36, event
            got.append(event[3]["topic"] if match != "exact" else pattern)
        assert got == expected
        # Nothing else is on the wire: a PUBLISH to ourselves' realm is not allowed, so ask for a round
        # trip instead and check that its answer is the very next message.
        await ws.send([34, 2, subscribed[2]])
        assert (await ws.recv())[:2] == [35, 2]
    finally:
        ws.close()


@pytest.mark.parametrize("realm,match,pattern", REFUSED)
@wamp_test()
async def test_a_pattern_that_can_match_nothing_allowed_is_refused(gw, serializer, realm, match, pattern):
    async with Clients(gw.url, serializer) as clients:
        session = await clients.connect(realm=realm)
        with pytest.raises(ApplicationError) as refused:
            await session.subscribe(lambda *a: None, pattern, options=SubscribeOptions(match=match))
        assert refused.value.error == "wamp.error.not_authorized"
        assert pattern in str(refused.value)


@wamp_test()
async def test_subscribers_management_call_counts_only_sessions_allowed_the_topic(gw):
    ws = await RawWs.connect(gw.port)
    try:
        session = await ws.join("allowdeny")
        await ws.send([32, 1, {"match": "prefix"}, "app.public."])
        assert (await ws.recv())[0] == 33

        async def subscribers(topic):
            body = json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "subscribers", "params": {"topic": topic, "realm": "allowdeny"}}
            ).encode()
            headers = {"Content-Type": "application/json", "X-Switchboard-Signature": sign(body)}
            r = await asyncio.to_thread(requests.post, gw.rpc_url, data=body, headers=headers, timeout=10)
            return r.json()["result"]["sessions"]

        assert await subscribers("app.public.news") == [session]
        assert await subscribers("app.public.secret") == []
    finally:
        ws.close()
