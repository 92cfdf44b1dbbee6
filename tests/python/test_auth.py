"""Authentication and authorization with an unmodified Autobahn|Python client (json and msgpack).

A second realm, `secure`, admits no anonymous sessions: clients join with a WAMP ticket minted by
`switchboard ticket` (the web app's side) or with WAMP-CRA as a static `[[realms.users]]` user, salted
or not. The `member` role may subscribe under `app.public` and call under `app.rpc.`, nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import time
from urllib.parse import urlparse

import pytest
from autobahn.wamp import auth
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig, PublishOptions

from support import Gateway, Inbox, TestSession, _opened, gateway_binary, uid, wait, wamp_test

SECRET = "py-ticket-secret-0123456789"
REALM = "secure"
BACKEND_SECRET = "backend-secret"
SALTED_SECRET = "s33kr1t"

EXTRA_CONFIG = f"""
[security]
secret = "{SECRET}"

[[realms]]
name = "{REALM}"

[[realms.roles]]
name = "member"
permissions = [
  {{ uri = "app.public", match = "prefix", allow = {{ subscribe = true }} }},
  {{ uri = "app.rpc.", match = "prefix", allow = {{ call = true }} }},
]

[[realms.roles]]
name = "backend"
permissions = [{{ uri = "app.", match = "prefix", allow = {{ subscribe = true, publish = true, call = true, register = true }} }}]

[[realms.users]]
authid = "backend"
secret = "{BACKEND_SECRET}"
role = "backend"

[[realms.users]]
authid = "salty"
secret = "{SALTED_SECRET}"
role = "backend"
salt = "salt123"
iterations = 100
keylen = 32
"""


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway(extra_config=EXTRA_CONFIG).start()
    try:
        yield gw
    finally:
        gw.close()


def mint(gw: Gateway, authid: str, role: str = "member", ttl: int = 60) -> str:
    """A ticket from `switchboard ticket` (its last line of stdout)."""
    out = subprocess.run(
        [gateway_binary(), "ticket", "--config", str(gw.config), "--authid", authid, "--role", role,
         "--ttl", str(ttl)],
        check=True, capture_output=True, text=True, timeout=30,
    )
    return out.stdout.strip().splitlines()[-1]


def handmade_ticket(secret: str, authid: str, exp: int) -> str:
    """A ticket built here the way the emitter builds them (for expired and foreign-secret tickets)."""
    claims = json.dumps({"authid": authid, "roles": ["member"], "exp": exp}).encode()
    payload = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    tag = hmac.new(secret.encode(), b"switchboard.ticket.v1." + payload.encode(), hashlib.sha256)
    return f"{payload}.{tag.hexdigest()}"


def wampcra_answer(secret: str):
    """Autobahn's own WAMP-CRA computation: derive_key when salted, then compute_wcs."""

    def answer(challenge):
        assert challenge.method == "wampcra", challenge.method
        extra = challenge.extra
        key = secret
        if "salt" in extra:
            key = auth.derive_key(secret, extra["salt"], extra["iterations"], extra["keylen"])
        return auth.compute_wcs(key, extra["challenge"]).decode("ascii")

    return answer


class AuthSession(TestSession):
    """A TestSession that joins with the given authmethods and answers CHALLENGE with `answer`."""

    __test__ = False

    def __init__(self, config, authmethods, authid, answer):
        super().__init__(config)
        self.want_authmethods = authmethods
        self.want_authid = authid
        self.answer = answer
        self.challenges = []

    def onConnect(self):
        self.join(self.config.realm, authmethods=self.want_authmethods, authid=self.want_authid)

    def onChallenge(self, challenge):
        self.challenges.append(challenge)
        return self.answer(challenge)


async def open_session(url, serializer, authmethods, authid, answer, realm=REALM) -> AuthSession:
    """Opens the WebSocket and starts the HELLO; the session's `joined`/`left` futures tell the outcome."""
    ser = JsonSerializer() if serializer == "json" else MsgPackSerializer()
    created = []

    def make():
        s = AuthSession(ComponentConfig(realm=realm), authmethods, authid, answer)
        created.append(s)
        return s

    loop = asyncio.get_running_loop()
    factory = WampWebSocketClientFactory(make, url=url, serializers=[ser])
    factory.loop = loop
    u = urlparse(url)
    _, protocol = await wait(loop.create_connection(factory, u.hostname, u.port), "TCP connect")
    await wait(_opened(protocol), "the WebSocket handshake")
    session = created[-1]
    session.protocol = protocol
    return session


async def join(url, serializer, authmethods, authid, answer) -> AuthSession:
    session = await open_session(url, serializer, authmethods, authid, answer)
    await wait(session.joined, f"WELCOME for {authid}")
    return session


async def refused(url, serializer, authmethods, authid, answer, reason: str) -> str:
    """Joins, expects ABORT `reason`; returns the ABORT message."""
    session = await open_session(url, serializer, authmethods, authid, answer)
    try:
        details = await wait(session.left, f"ABORT {reason}")
        assert details.reason == reason, f"expected ABORT {reason}, got {details.reason}: {details.message}"
        assert not session.joined.done() or session.joined.exception() is not None
        return details.message or ""
    finally:
        await session.close()


def ticket_answer(ticket: str):
    def answer(challenge):
        assert challenge.method == "ticket", challenge.method
        return ticket

    return answer


async def expect_not_authorized(awaitable, what: str) -> None:
    try:
        result = await wait(awaitable, what)
    except ApplicationError as e:
        assert e.error == "wamp.error.not_authorized", f"{what}: got {e.error} {e.args}"
        return
    raise AssertionError(f"{what}: expected ERROR wamp.error.not_authorized, got {result!r}")


@wamp_test()
async def test_ticket_join_carries_identity(gateway, serializer):
    ticket = mint(gateway, "alice")
    session = await join(gateway.url, serializer, ["ticket"], "alice", ticket_answer(ticket))
    try:
        details = session.joined.result()
        assert (details.authid, details.authrole, details.authmethod) == ("alice", "member", "ticket")
        assert session.challenges[0].extra == {}
    finally:
        await session.close()


@wamp_test()
async def test_bad_tickets_are_refused(gateway, serializer):
    url = gateway.url
    good = mint(gateway, "alice")
    payload, tag = good.split(".")
    forged_cases = {
        "foreign secret": handmade_ticket("not-the-secret", "alice", int(time.time()) + 600),
        "altered mac": payload + "." + ("0" if tag[0] != "0" else "1") + tag[1:],
        "garbage": "not-a-ticket",
    }
    for what, ticket in forged_cases.items():
        message = await refused(url, serializer, ["ticket"], "alice", ticket_answer(ticket),
                                "wamp.error.authentication_failed")
        assert SECRET not in message and ticket not in message, f"{what}: ABORT leaks: {message}"
    expired = handmade_ticket(SECRET, "alice", int(time.time()) - 5)
    message = await refused(url, serializer, ["ticket"], "alice", ticket_answer(expired),
                            "wamp.error.authentication_failed")
    assert "expired" in message, message
    message = await refused(url, serializer, ["ticket"], "mallory", ticket_answer(good),
                            "wamp.error.authentication_failed")
    assert "authid" in message, message


@wamp_test()
async def test_anonymous_is_refused_where_the_realm_names_no_anonymous_role(gateway, serializer):
    await refused(gateway.url, serializer, None, None, ticket_answer(""), "wamp.error.not_authorized")


@pytest.mark.parametrize("authid, secret", [("backend", BACKEND_SECRET), ("salty", SALTED_SECRET)])
@wamp_test()
async def test_wampcra_join_with_and_without_salt(gateway, serializer, authid, secret):
    session = await join(gateway.url, serializer, ["wampcra"], authid, wampcra_answer(secret))
    try:
        details = session.joined.result()
        assert (details.authid, details.authrole, details.authmethod) == (authid, "backend", "wampcra")
        extra = session.challenges[0].extra
        assert ("salt" in extra) == (authid == "salty"), extra
        fields = json.loads(extra["challenge"])
        assert fields["authid"] == authid and fields["authmethod"] == "wampcra"
        assert fields["session"] == details.session
    finally:
        await session.close()


@pytest.mark.parametrize("authid", ["backend", "salty", "nobody"])
@wamp_test()
async def test_wampcra_wrong_secret_is_refused(gateway, serializer, authid):
    message = await refused(gateway.url, serializer, ["wampcra"], authid, wampcra_answer("wrong"),
                            "wamp.error.authentication_failed")
    assert BACKEND_SECRET not in message and SALTED_SECRET not in message, message


@wamp_test(timeout=20.0)
async def test_member_may_subscribe_under_app_public_and_call_under_app_rpc_only(gateway, serializer):
    url = gateway.url
    rpc = f"app.rpc.add.{uid()}"
    backend = await join(url, serializer, ["wampcra"], "backend", wampcra_answer(BACKEND_SECRET))
    member = await join(url, serializer, ["ticket"], "alice", ticket_answer(mint(gateway, "alice")))
    try:
        await wait(backend.register(lambda a, b: a + b, rpc), "REGISTERED")
        await wait(backend.register(lambda: "no", f"app.other.{uid()}"), "REGISTERED")
        events = asyncio.Queue()
        topic = f"app.public.news.{uid()}"
        await wait(member.subscribe(lambda *a: events.put_nowait(a), topic), "SUBSCRIBED")
        assert await wait(member.call(rpc, 2, 3), "RESULT") == 5

        await expect_not_authorized(member.subscribe(lambda *a: None, f"app.private.{uid()}"), "subscribe")
        await expect_not_authorized(member.subscribe(lambda *a: None, "app.rpc.add"), "subscribe app.rpc")
        await expect_not_authorized(
            member.publish(topic, 1, options=PublishOptions(acknowledge=True)), "publish app.public")
        await expect_not_authorized(member.register(lambda: None, f"app.rpc.mine.{uid()}"), "register")
        await expect_not_authorized(member.call(f"app.other.{uid()}"), "call outside app.rpc.")
        await expect_not_authorized(member.call(f"app.public.{uid()}"), "call under app.public")

        # Every denial left the session joined and working.
        assert member.is_attached()
        assert await wait(member.call(rpc, 40, 2), "RESULT after the denials") == 42
        await wait(backend.publish(topic, "hello", options=PublishOptions(acknowledge=True)), "PUBLISHED")
        assert await wait(events.get(), "EVENT") == ("hello",)
    finally:
        await member.close()
        await backend.close()


@wamp_test()
async def test_private_delivery_reaches_every_tab_of_its_user_and_nobody_else(gateway, serializer):
    """alice has two sessions (two tabs), bob one; the backend publishes with eligible_authid and
    exclude_authid, resolved against the authids the tickets proved."""
    url = gateway.url
    topic = f"app.public.inbox.{uid()}"
    backend = await join(url, serializer, ["wampcra"], "backend", wampcra_answer(BACKEND_SECRET))
    tabs = {
        "alice-1": await join(url, serializer, ["ticket"], "alice", ticket_answer(mint(gateway, "alice"))),
        "alice-2": await join(url, serializer, ["ticket"], "alice", ticket_answer(mint(gateway, "alice"))),
        "bob": await join(url, serializer, ["ticket"], "bob", ticket_answer(mint(gateway, "bob"))),
    }
    try:
        inboxes = {name: Inbox() for name in tabs}
        for name, session in tabs.items():
            await wait(session.subscribe(lambda *a, inbox=inboxes[name]: inbox.put(a), topic), "SUBSCRIBED")

        def publish(text, **options):
            return wait(
                backend.publish(topic, text, options=PublishOptions(acknowledge=True, **options)), "PUBLISHED"
            )

        await publish("for alice", eligible_authid=["alice"])
        await publish("not for bob", exclude_authid=["bob"])
        await publish("for everyone")
        for name in ("alice-1", "alice-2"):
            got = await inboxes[name].count(3, f"{name}'s three events")
            assert got == [("for alice",), ("not for bob",), ("for everyone",)], name
        # Events from one publisher arrive in order: once bob has the last one, he had all his.
        assert await inboxes["bob"].count(1, "bob's event") == [("for everyone",)]
    finally:
        for session in tabs.values():
            await session.close()
        await backend.close()
