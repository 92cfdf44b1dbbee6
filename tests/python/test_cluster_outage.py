"""RabbitMQ itself stopped for 10 s under a cluster of two nodes (issue #14): `rabbitmqctl stop_app`, then
`start_app`, while a client keeps publishing over JSON-RPC to node A. Meanwhile publishes are refused
explicitly (JSON-RPC -32002 with retry: true) and both nodes keep serving their WAMP sessions; once the
broker is back, every node consumes again, every accepted event reaches the subscribers on both nodes
exactly once and in order, and no refused event ever appears.

A module of its own: stopping the shared broker drops every AMQP connection on the machine, so no other
test's gateway may be running when it happens (modules run one after another; this one's nodes are its
own)."""

import asyncio
import itertools
import subprocess
import time
import uuid

import pika
import pytest

from support import Clients, uid, wamp_test
from test_cluster import AMQP_URL, QUIET, Node, rpc_publish, subscribe

OUTAGE_S = 10


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120, check=True)


def broker_up() -> bool:
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
        return True
    except pika.exceptions.AMQPError:
        return False


@pytest.fixture
def broker():
    """Yields a function that stops the broker's app; it is started again at the end in any case."""
    stopped = []

    def stop():
        rabbitmqctl("stop_app")
        stopped.append(True)

    try:
        yield stop
    finally:
        if stopped:
            rabbitmqctl("start_app")
            deadline = time.monotonic() + 60
            while not broker_up():
                assert time.monotonic() < deadline, "RabbitMQ did not come back"
                time.sleep(0.5)


@pytest.mark.timeout(180)  # two nodes to start, 10 s of outage, a broker restart
@wamp_test(timeout=150)
async def test_rabbitmq_stopped_for_10_s_refusals_are_explicit_and_nothing_accepted_is_lost(broker):
    unique = uuid.uuid4().hex[:12]
    stream = f"sbtest.outage.{unique}"
    a, b = Node(stream, f"a-{unique}"), Node(stream, f"b-{unique}")
    topic = f"com.outage.{uid()}"
    accepted, refusals = [], []
    numbers = itertools.count()  # every publish carries its own number

    async def publish_until_accepted(node, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            n = next(numbers)
            answer = await asyncio.to_thread(rpc_publish, node, topic, n)
            if "result" in answer:
                accepted.append((n, answer["result"]["publication"]))
                return
            assert answer["error"]["code"] == -32002 and answer["error"]["data"]["retry"] is True, answer
            refusals.append(n)
            assert time.monotonic() < deadline, f"{node.node} never accepted a publish again"
            await asyncio.sleep(0.1)

    try:
        await asyncio.to_thread(a.start)
        await asyncio.to_thread(b.start)
        async with Clients(a.url, "json") as on_a, Clients(b.url, "json") as on_b:
            inbox_a = await subscribe(await on_a.connect(), topic)
            inbox_b = await subscribe(await on_b.connect(), topic)
            callee = await on_a.connect()
            await callee.register(lambda: "served", f"{topic}.local")
            await publish_until_accepted(a, 5)

            await asyncio.to_thread(broker)
            stopped = time.monotonic()
            # Publish every 100 ms through the whole outage: each one is refused, explicitly.
            while time.monotonic() - stopped < OUTAGE_S:
                n = next(numbers)
                answer = await asyncio.to_thread(rpc_publish, a, topic, n)
                if "result" in answer:
                    accepted.append((n, answer["result"]["publication"]))
                else:
                    assert answer["error"]["code"] == -32002 and answer["error"]["data"]["retry"] is True, answer
                    refusals.append(n)
                await asyncio.sleep(0.1)
            # Local sessions are still served while the broker is away.
            assert await (await on_a.connect()).call(f"{topic}.local") == "served"
            assert len(refusals) >= 50, f"only {len(refusals)} refusals in {OUTAGE_S} s"

            rabbitmqctl("start_app")
            # Every node consumes again: one event published on each is delivered on both.
            await publish_until_accepted(a, 60)
            await publish_until_accepted(b, 60)
            for inbox, where in ((inbox_a, "node a"), (inbox_b, "node b")):
                await inbox.count(len(accepted), f"every accepted event on {where}", timeout=30)
            await asyncio.sleep(QUIET)
            publications = [p for _, p in accepted]
            for inbox in (inbox_a, inbox_b):
                assert [p for _, p, _ in inbox.items] == publications, "each accepted event once, in order"
                assert [args[0] for args, _, _ in inbox.items] == [n for n, _ in accepted]
            assert not set(refusals) & {n for n, _ in accepted}, "a refused event was delivered"
    finally:
        for node in (a, b):
            await asyncio.to_thread(node.close)
        if await asyncio.to_thread(broker_up):
            connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
            channel = connection.channel()
            channel.queue_delete(stream)
            channel.exchange_delete(f"{stream}.nodes")
            connection.close()
