"""ZeroMQ ingestion from a foreign publisher: pyzmq (libzmq) PUSH with a few lines of HMAC, and the Rust
emitter (`switchboard emit` with [emitter] transport = "zmq"), to an unmodified Autobahn subscriber."""

import asyncio
import json
import time

import pytest
import zmq

import support
from ingest_support import SECURITY_CONFIG, sign, subscribed
from support import Clients, Gateway, uid, wamp_test


class ZmqGateway(Gateway):
    """The suite's gateway with a secret and `[ingest.zmq]` on a port the OS chooses (start() sets
    endpoint and zmq_port from the ready file)."""

    def __init__(self):
        super().__init__(extra_config=SECURITY_CONFIG + '\n[ingest.zmq]\nendpoint = "tcp://127.0.0.1:0"\n')


@pytest.fixture(scope="module")
def gw():
    gateway = ZmqGateway().start()
    try:
        yield gateway
    finally:
        gateway.close()


@pytest.fixture
def push(gw):
    context = zmq.Context.instance()
    socket = context.socket(zmq.PUSH)
    socket.setsockopt(zmq.LINGER, 1000)
    socket.setsockopt(zmq.SNDTIMEO, 5000)
    socket.connect(gw.endpoint)
    try:
        yield socket
    finally:
        socket.close()


def event_bytes(event: dict) -> bytes:
    return json.dumps(event).encode()


@wamp_test()
async def test_pyzmq_push_reaches_autobahn_with_exact_kwargs(gw, push, serializer):
    async with Clients(gw.url, serializer) as clients:
        session = await clients.connect()
        app = f"shop{uid()}"
        topic = f"models.{app}.order"
        inbox = await subscribed(session, topic)
        kwargs = {"action": "created", "model": f"{app}.order", "pk": "a-1",
                  "data": {"n": 1, "s": "ü"}, "changed": ["n", "s"]}
        body = event_bytes({"topic": topic, "kwargs": kwargs})
        push.send_multipart([sign(body).encode(), body])
        assert await inbox.count(1, "the pyzmq event") == [([], kwargs)]


@wamp_test()
async def test_refused_messages_are_not_delivered(gw, push):
    async with Clients(gw.url, "json") as clients:
        session = await clients.connect()
        topic = f"com.example.zmq.{uid()}"
        inbox = await subscribed(session, topic)
        body = event_bytes({"topic": topic, "args": ["refused"]})
        push.send_multipart([body])  # one frame
        push.send_multipart([b"", body])  # no signature
        push.send_multipart([sign(body, secret="wrong").encode(), body])
        push.send_multipart([sign(body, t=int(time.time()) - 3600).encode(), body])
        bad = event_bytes({"topic": topic, "args": 5})
        push.send_multipart([sign(bad).encode(), bad])
        marker = event_bytes({"topic": topic, "args": ["marker"]})
        push.send_multipart([sign(marker).encode(), marker])
        assert await inbox.count(1, "the marker") == [(["marker"], {})]


@wamp_test(timeout=30)
async def test_rust_emitter_cli_over_zmq_reaches_autobahn(gw, serializer):
    config = gw.dir / "emitter-zmq.toml"
    config.write_text(
        SECURITY_CONFIG + f'[ingest.zmq]\nendpoint = "{gw.endpoint}"\n'
        '[emitter]\ntransport = "zmq"\n'
    )
    async with Clients(gw.url, serializer) as clients:
        session = await clients.connect()
        app = f"shop{uid()}"
        inbox = await subscribed(session, f"models.{app}.order")
        proc = await asyncio.create_subprocess_exec(
            support.gateway_binary(), "emit", "--config", str(config), "--model", f"{app}.order",
            "--action", "deleted", "--pk", "42",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert json.loads(out) == {"publication": None}
        items = await inbox.count(1, "the model change")
        assert items == [([], {"action": "deleted", "model": f"{app}.order", "pk": 42, "data": {}, "changed": []})]
