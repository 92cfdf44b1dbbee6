"""The Python emitter (emitter/python, package switchboard_emitter) against the real gateway: events and
model changes over JSON-RPC, ZeroMQ and AMQP reach an unmodified Autobahn subscriber with exact kwargs;
last_publication and the management calls; tickets and signatures cross between Python and Rust both
ways (a Python ticket joins the gateway, a `switchboard ticket` verifies in Python; Python-signed events
are accepted, a `switchboard emit` signature verifies in Python)."""

import asyncio
import json
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

import support
from ingest_support import SECRET, subscribed
from support import Clients, Gateway, TestSession, _opened, uid, wait, wamp_test

sys.path.insert(0, str(support.REPO_ROOT / "emitter" / "python"))  # the source tree, installed or not

from switchboard_emitter import (Emitter, Event, Invalid, Rejected, TicketError,  # noqa: E402
                                 Verifier, mint_ticket, verify_ticket)
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp.serializer import JsonSerializer  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"

EXTRA_CONFIG = f"""
[security]
secret = "{SECRET}"

[ingest.jsonrpc]
listen = "127.0.0.1:0"

[ingest.zmq]
endpoint = "tcp://127.0.0.1:0"

[[realms.history]]
uri = "models."
match = "prefix"

[[realms]]
name = "secure"

[[realms.roles]]
name = "member"
permissions = [{{ uri = "app.", match = "prefix", allow = {{ subscribe = true }} }}]
"""


@pytest.fixture(scope="module")
def gw():
    yield from support.running(Gateway(extra_config=EXTRA_CONFIG))


def emitter_for(gw, transport="jsonrpc", **env):
    """An emitter built from the gateway's own switchboard.toml, with the addresses the OS chose (the
    file says port 0) and the transport set through SWITCHBOARD__ overrides, as a deployment would."""
    variables = {
        "SWITCHBOARD__INGEST__JSONRPC__LISTEN": gw.ready["jsonrpc"],
        "SWITCHBOARD__INGEST__ZMQ__ENDPOINT": gw.ready["zmq"],
        "SWITCHBOARD__EMITTER__TRANSPORT": transport,
        **env,
    }
    return Emitter.from_config(gw.config, env=variables, timeout=5)


def call(fn, *args, **kwargs):
    """A blocking emitter call in a worker thread, so that the Autobahn sessions keep being served."""
    return asyncio.to_thread(fn, *args, **kwargs)


async def model_round(emitter, session):
    """Publishes an event and each kind of model change; checks what the subscriber receives."""
    app = f"shop{uid()}"
    orders = emitter.model(f"{app}.order")
    models = await subscribed(session, f"models.{app}.order")
    chat = await subscribed(session, f"chat.{app}")
    await call(emitter.publish, f"chat.{app}", ["hi", 1], {"from": "python", "ü": [1.5, None, True]})
    await call(orders.created, 1, {"status": "new", "total": 10})
    await call(orders.updated, 1, {"status": "paid", "total": 10}, ["status"])
    await call(orders.deleted, {"id": 1})
    await call(orders.sync, [(2, {"status": "new", "pk": "stale"}), ("a-3", {})])
    assert await chat.count(1, "the chat event") == [(["hi", 1], {"from": "python", "ü": [1.5, None, True]})]
    model = f"{app}.order"
    assert await models.count(4, "the model changes") == [
        ([], {"action": "created", "model": model, "pk": 1, "data": {"status": "new", "total": 10},
              "changed": ["status", "total"]}),
        ([], {"action": "updated", "model": model, "pk": 1, "data": {"status": "paid", "total": 10},
              "changed": ["status"]}),
        ([], {"action": "deleted", "model": model, "pk": {"id": 1}, "data": {}, "changed": []}),
        ([], {"action": "synced", "model": model, "rows": [{"pk": 2, "status": "new"}, {"pk": "a-3"}]}),
    ]


@wamp_test(timeout=30)
async def test_jsonrpc_events_and_model_changes_reach_autobahn(gw):
    emitter = emitter_for(gw, "jsonrpc")
    async with Clients(gw.url, "json") as clients:
        session = await clients.connect()
        await model_round(emitter, session)
        topic = f"chat.batch{uid()}"
        inbox = await subscribed(session, topic)
        outcomes = await call(emitter.publish_batch, [Event(topic, [1]), {"topic": topic, "args": [2]},
                                                      Event(topic, [3], realm="no.such.realm")])
        assert isinstance(outcomes[0].publication, int) and isinstance(outcomes[1].publication, int)
        assert isinstance(outcomes[2], Rejected) and outcomes[2].code == -32602
        assert await inbox.count(2) == [([1], {}), ([2], {})]


@wamp_test(timeout=30)
async def test_zmq_events_and_model_changes_reach_autobahn(gw):
    pytest.importorskip("zmq")
    with emitter_for(gw, "zmq") as emitter:
        assert emitter.transport.name == "zmq"
        async with Clients(gw.url, "json") as clients:
            session = await clients.connect()
            await model_round(emitter, session)


@pytest.fixture(scope="module")
def amqp_gw():
    pika = pytest.importorskip("pika")
    unique = uuid.uuid4().hex[:12]
    gateway = Gateway(extra_config=f'[security]\nsecret = "{SECRET}"\n[ingest.amqp]\nurl = "{AMQP_URL}"\n'
                      f'exchange = "sbtest.pyemit.{unique}.events"\nqueue = "sbtest.pyemit.{unique}.ingest"\n')
    gateway.exchange, gateway.queue = f"sbtest.pyemit.{unique}.events", f"sbtest.pyemit.{unique}.ingest"
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.close()
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        for queue in (gateway.queue, gateway.queue + ".dead-letter"):
            channel.queue_delete(queue)
        for exchange in (gateway.exchange, gateway.exchange + ".dead-letter"):
            channel.exchange_delete(exchange)
        connection.close()


@wamp_test(timeout=40)
async def test_amqp_events_and_model_changes_reach_autobahn(amqp_gw):
    with Emitter.from_config(amqp_gw.config, env={"SWITCHBOARD__EMITTER__TRANSPORT": "amqp"}, timeout=5) as emitter:
        assert emitter.transport.name == "amqp"
        assert (emitter.transport.exchange, emitter.transport.queue) == (amqp_gw.exchange, amqp_gw.queue)
        async with Clients(amqp_gw.url, "json") as clients:
            session = await clients.connect()
            await model_round(emitter, session)


@wamp_test(timeout=30)
async def test_last_publication_follows_the_history(gw):
    emitter = emitter_for(gw)
    app = f"shop{uid()}"
    # Nothing on this topic yet: the answer is the realm's newest stored event (or None), a valid position.
    before = await call(emitter.last_publication, f"models.{app}.order")
    first = await call(emitter.model(f"{app}.order").created, 1, {"a": 1})
    assert await call(emitter.last_publication, f"models.{app}.order") == first.publication != before
    second = await call(emitter.model(f"{app}.order").updated, 1, {"a": 2}, ["a"])
    assert second.publication != first.publication
    assert await call(emitter.last_publication, f"models.{app}.order") == second.publication
    # A topic outside [[realms.history]] is not stored.
    await call(emitter.publish, f"chat.{app}")
    assert await call(emitter.last_publication, f"chat.{app}") is None
    with pytest.raises(Rejected) as error:
        await call(emitter.last_publication, f"models.{app}.order", realm="no.such.realm")
    assert error.value.code == -32602


@wamp_test(timeout=30)
async def test_management_calls(gw):
    emitter = emitter_for(gw)
    async with Clients(gw.url, "json") as clients:
        session = await clients.connect()
        topic = f"chat.mgmt{uid()}"
        await subscribed(session, topic)
        assert await call(emitter.session_count, "realm1") >= 1
        watchers = await call(emitter.subscribers, topic)
        assert watchers == {"count": 1, "sessions": [session.session_id]}
        assert await call(emitter.sessions, f"nobody{uid()}") == []
        assert await call(emitter.kick, f"nobody{uid()}") == 0


# ------------------------------------------------------------------ tickets


class TicketSession(TestSession):
    __test__ = False

    def __init__(self, config, authid, ticket):
        super().__init__(config)
        self.want_authid, self.want_ticket = authid, ticket

    def onConnect(self):
        self.join(self.config.realm, authmethods=["ticket"], authid=self.want_authid)

    def onChallenge(self, challenge):
        assert challenge.method == "ticket"
        return self.want_ticket


async def ticket_session(gw, authid, ticket) -> TicketSession:
    created = []

    def make():
        created.append(TicketSession(ComponentConfig(realm="secure"), authid, ticket))
        return created[-1]

    loop = asyncio.get_running_loop()
    factory = WampWebSocketClientFactory(make, url=gw.url, serializers=[JsonSerializer()])
    factory.loop = loop
    u = urlparse(gw.url)
    _, protocol = await wait(loop.create_connection(factory, u.hostname, u.port), "TCP connect")
    await wait(_opened(protocol), "the WebSocket handshake")
    created[-1].protocol = protocol
    return created[-1]


@wamp_test(timeout=30)
async def test_a_python_ticket_joins_the_gateway(gw):
    emitter = emitter_for(gw)
    session = await ticket_session(gw, "alice", emitter.ticket("alice", ["member"], 60))
    try:
        details = await wait(session.joined, "WELCOME for alice")
        assert (details.authid, details.authrole, details.authmethod) == ("alice", "member", "ticket")
    finally:
        await session.close()
    forged = await ticket_session(gw, "alice", mint_ticket("not-the-secret", "alice", ["member"], 60))
    try:
        details = await wait(forged.left, "ABORT for a foreign ticket")
        assert details.reason == "wamp.error.authentication_failed" and "invalid" in details.message
        assert isinstance(forged.joined.exception(), AssertionError)  # never joined
    finally:
        await forged.close()


def test_a_rust_ticket_verifies_in_python(gw):
    out = subprocess.run(
        [support.gateway_binary(), "ticket", "--config", str(gw.config), "--authid", "alice",
         "--role", "member", "--role", "viewer", "--ttl", "60"],
        check=True, capture_output=True, text=True, timeout=30)
    ticket = out.stdout.strip().splitlines()[-1]
    claims = verify_ticket(SECRET, ticket, "alice")
    assert (claims.authid, claims.roles) == ("alice", ["member", "viewer"])
    with pytest.raises(TicketError) as error:
        verify_ticket(SECRET + "x", ticket)
    assert error.value.which == "invalid"


# ------------------------------------------------------------------ signatures


def test_a_python_signature_is_checked_by_the_gateway(gw):
    emitter = emitter_for(gw)
    assert isinstance(emitter.publish("chat.signed").publication, int)
    foreign = Emitter("not-the-secret", jsonrpc_url=f"http://{gw.ready['jsonrpc']}", timeout=5)
    with pytest.raises(Rejected) as error:
        foreign.publish("chat.signed")
    assert error.value.code == -32001 and error.value.data == {"reason": "invalid"}


def test_a_rust_signature_verifies_in_python(tmp_path):
    """`switchboard emit` posts to a stand-in gateway here; the Python Verifier checks what it signed."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.headers.get("X-Switchboard-Signature"), body))
            request = json.loads(body)
            data = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"publication": 1}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = tmp_path / "emitter.toml"
        config.write_text(f'[security]\nsecret = "{SECRET}"\n[ingest.jsonrpc]\n'
                          f'listen = "127.0.0.1:{server.server_address[1]}"\n')
        subprocess.run([support.gateway_binary(), "emit", "--config", str(config), "--model", "shop.order",
                        "--action", "updated", "--pk", "42", "--data", '{"status": "paid"}',
                        "--changed", "status"], check=True, capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert seen, "switchboard emit sent nothing"
    header, body = seen[0]
    Verifier(SECRET).verify(header, body)
    params = json.loads(body)["params"]
    assert params["kwargs"] == {"action": "updated", "model": "shop.order", "pk": 42,
                                "data": {"status": "paid"}, "changed": ["status"]}
    with pytest.raises(Exception) as tampered:
        Verifier(SECRET).verify(header, body.replace(b"paid", b"free"))
    assert getattr(tampered.value, "which", None) == "invalid"


def test_invalid_events_never_reach_the_gateway(gw):
    emitter = emitter_for(gw)
    with pytest.raises(Invalid) as error:
        emitter.publish("chat.x", options={"eligible_authids": ["alice"]})
    assert error.value.field == "options.eligible_authids"
    assert isinstance(emitter.publish(Event("chat.x", eligible_authid=[])).publication, int)
