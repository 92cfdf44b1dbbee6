"""Failover of an Autobahn|Python subscriber between the nodes of a cluster (issue #14): a client that knows
the URLs of all three nodes subscribes on node 2 while events are published through node 1's JSON-RPC;
node 2 is killed with SIGKILL; the client reconnects to node 1 or 3, subscribes again, recovers what it
missed with `wamp.subscription.get_events(subscription_id, after_publication=<last seen>)`, and ends with
every published event exactly once, in publication order. The rejoined client waits until 10 more events
were published before it subscribes again, so that those can only come from get_events (asserted).

The several URLs are Autobahn's own: one `autobahn.asyncio.component.Component` with one transport per
node, node 2 first. Autobahn connects to the first, and when that connection is lost it rotates to the
next transport of its list (node 1 and node 3 after it, node 2's own retries failing), with its own retry
delays; the test does not loop over the URLs itself.

Every wait is bounded; nothing is asserted about timing. Its own stream and node names, deleted at the end."""

import asyncio
import json
import threading
import uuid

import pika
import pytest
import requests
import txaio
from autobahn.asyncio.component import Component
from autobahn.wamp.types import SubscribeOptions

from ingest_support import sign
from support import STEP_TIMEOUT, uid, wamp_test
from test_cluster import AMQP_URL, GET_EVENTS, QUIET, Node

EVENTS = 60  # under the history limit of 100 for app.* (test_cluster.HISTORY)
KILL_AFTER_SEEN = 10  # node 2 dies once the client has seen this many events
HOLD_AT = 20  # the publisher waits (bounded) at this event until node 2 is dead
REJOIN_AT = 30  # the client subscribes again once this many events were published: 20..29 only in history
PAUSE = 0.02  # between two publishes, so that events flow while node 2 dies and the client reconnects


def publish(node: Node, topic: str, n: int) -> int:
    """Publishes [n] through the node's JSON-RPC; returns the publication id."""
    body = json.dumps({"jsonrpc": "2.0", "id": n, "method": "publish", "params": {"topic": topic, "args": [n]}})
    headers = {"Content-Type": "application/json", "X-Switchboard-Signature": sign(body.encode())}
    answer = requests.post(node.rpc_url, data=body, headers=headers, timeout=10).json()
    assert "result" in answer, answer
    return answer["result"]["publication"]


class Recovering:
    """The application: a log of (publication id, args) in the order it took them, each once. After every
    (re)join it subscribes, holds the live events back, asks get_events for everything after the last
    publication it has, appends that, then the held events it does not have yet."""

    def __init__(self, topic: str):
        self.topic = topic
        self.log: list[tuple[int, list]] = []
        self.have: set[int] = set()
        self.joins = 0
        self.ready = 0  # joins whose subscription and recovery are done
        self.recovered = 0  # events that came from get_events rather than live
        self.live_duplicates: list[int] = []  # a publication delivered live twice to one session
        self.errors: list[BaseException] = []
        self.changed = asyncio.Event()
        # Set when a rejoined client may subscribe again: a client slow to come back, so that some events
        # are published while it has no subscription and can only come from get_events.
        self.may_resubscribe = asyncio.Event()

    def take(self, publication: int, args: list) -> None:
        if publication not in self.have:
            self.have.add(publication)
            self.log.append((publication, args))
            self.changed.set()

    async def on_join(self, session, details) -> None:
        self.joins += 1
        held: list[tuple[int, list]] | None = []
        seen_live: set[int] = set()

        def on_event(*args, details=None):
            if details.publication in seen_live:
                self.live_duplicates.append(details.publication)
            seen_live.add(details.publication)
            if held is not None:
                held.append((details.publication, list(args)))
            else:
                self.take(details.publication, list(args))

        try:
            if self.joins > 1:
                await asyncio.wait_for(self.may_resubscribe.wait(), 30)
            subscription = await session.subscribe(
                on_event, self.topic, options=SubscribeOptions(details_arg="details")
            )
            if self.log:
                last = self.log[-1][0]
                events = await session.call(GET_EVENTS, subscription.id, after_publication=last)
                assert len({e["publication"] for e in events}) == len(events), f"duplicates in {events}"
                for event in events:
                    if event["publication"] not in self.have:
                        self.recovered += 1
                    self.take(event["publication"], event["args"])
            for publication, args in held:
                self.take(publication, args)
            held = None
            self.ready += 1
        except BaseException as error:  # noqa: BLE001 - reported by the test, not lost in Autobahn's log
            self.errors.append(error)
            self.changed.set()
            raise

    async def until(self, count: int, what: str, timeout: float) -> None:
        async def loop():
            while len(self.log) < count and not self.errors:
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(loop(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{what}: {len(self.log)} of {count} after {timeout} s: {self.log}") from None
        assert not self.errors, self.errors


@pytest.mark.timeout(150)  # three nodes to start; the pytest.ini guard of 60 s is for one-node tests
@wamp_test(timeout=120)
async def test_a_client_with_several_urls_survives_the_death_of_its_node(serializer):
    unique = uuid.uuid4().hex[:12]
    stream = f"sbtest.cluster.failover.{unique}"
    nodes = [Node(stream, f"f{n}-{unique}") for n in (1, 2, 3)]
    n1, n2, n3 = nodes
    topic = f"app.failover.{uid()}"
    app = Recovering(topic)
    component = None
    running = None
    try:
        for node in nodes:
            await asyncio.to_thread(node.start)
        transports = [
            {
                "type": "websocket",
                "url": node.url,
                "serializers": [serializer],
                "max_retries": 5,
                "initial_retry_delay": 0.1,
                "max_retry_delay": 1.0,
            }
            for node in (n2, n1, n3)
        ]
        component = Component(transports=transports, realm="realm1")
        component.on("join", app.on_join)
        running = asyncio.ensure_future(component.start(asyncio.get_running_loop()))
        await asyncio.wait_for(_until_joined(app), STEP_TIMEOUT)
        assert not app.errors, app.errors

        killed = threading.Event()
        published: list[int] = []
        loop = asyncio.get_running_loop()

        def publisher():
            for n in range(EVENTS):
                if n == HOLD_AT:
                    killed.wait(timeout=30)
                if n == REJOIN_AT:
                    loop.call_soon_threadsafe(app.may_resubscribe.set)
                published.append(publish(n1, topic, n))
                threading.Event().wait(PAUSE)

        publishing = asyncio.ensure_future(asyncio.to_thread(publisher))
        try:
            await app.until(KILL_AFTER_SEEN, "events seen on node 2 before it dies", timeout=30)
            assert app.joins == 1
            await asyncio.to_thread(n2.kill)  # SIGKILL
            killed.set()
            await asyncio.wait_for(asyncio.shield(publishing), 60)
        finally:
            killed.set()
            app.may_resubscribe.set()
        await app.until(EVENTS, "every event after the failover", timeout=30)
        await asyncio.sleep(QUIET)

        assert app.joins == 2, f"joined {app.joins} times"
        assert not app.live_duplicates, app.live_duplicates
        assert [p for p, _ in app.log] == published, "every event once, in publication order"
        assert [a for _, a in app.log] == [[n] for n in range(EVENTS)]
        assert len(set(published)) == EVENTS
        assert app.recovered >= REJOIN_AT - HOLD_AT, f"only {app.recovered} events came from get_events"
    finally:
        if component is not None:
            try:
                await asyncio.wait_for(asyncio.ensure_future(txaio.as_future(component.stop)), STEP_TIMEOUT)
            except Exception:  # noqa: BLE001 - the nodes are stopped below anyway
                pass
        if running is not None:
            running.cancel()
        for node in nodes:
            await asyncio.to_thread(node.close)
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            connection.channel().queue_delete(stream)
        finally:
            connection.close()


async def _until_joined(app: Recovering) -> None:
    while app.ready == 0 and not app.errors:
        await asyncio.sleep(0.02)
