"""A cluster of three `switchboard gateway` processes through the RabbitMQ stream at 127.0.0.1:5672
(issue #14): events ingested on node 1 over JSON-RPC, AMQP and ZeroMQ reach Autobahn|Python subscribers
on nodes 2 and 3 exactly once with the same publication id; a WAMP PUBLISH on node 3 reaches node 1 with
exclude_me, disclose_me and eligible lists behaving as on one node; get_events answers the same on every
node, also after the whole cluster restarted; a taken node name and other retention settings are
refused; an unreachable broker is retried (the node is not ready); a bad key is named by check-config
(RPC across nodes: test_cluster_rpc.py); a node whose connection RabbitMQ closes resumes after its last offset; a node cut off
from RabbitMQ (through a TCP proxy the test cuts) refuses publishes explicitly (JSON-RPC -32002, WAMP
ERROR switchboard.error.cluster_unavailable), keeps serving its sessions, and after reconnecting delivers
every accepted event once while refused ones never appear. Management calls over JSON-RPC on node 1
count, list and kick sessions on nodes 2 and 3; a node killed with SIGKILL is named missing (-32003)
after the 2 s deadline, then no longer waited for.

Every run uses its own stream, node names, exchange and queues, and deletes them at the end."""

import asyncio
import json
import subprocess
import time
import uuid

import pika
import pytest
import requests
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from ingest_support import SECRET, SECURITY_CONFIG, sign
from support import Clients, Gateway, Inbox, gateway_binary, uid, wamp_test

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"
GET_EVENTS = "wamp.subscription.get_events"
QUIET = 0.5  # how long to watch for a duplicate after the expected events arrived

HISTORY = """
[[realms.history]]
uri = "app."
match = "prefix"
limit = 100
ttl_s = 3600
"""


def cluster_section(stream: str, node: str, url: str = AMQP_URL) -> str:
    return f'\n[cluster]\namqp_url = "{url}"\nstream = "{stream}"\nnode = "{node}"\n'


class Node(Gateway):
    """One gateway of the cluster: history under app., JSON-RPC ingestion, and `extra` sections."""

    def __init__(self, stream: str, node: str, extra: str = "", url: str = AMQP_URL, cluster_keys: str = "", **kwargs):
        self.node = node
        super().__init__(
            extra_config=HISTORY
            + SECURITY_CONFIG
            + '\n[ingest.jsonrpc]\nlisten = "127.0.0.1:0"\n'
            + extra
            + cluster_section(stream, node, url)
            + cluster_keys,
            **kwargs,
        )


class Cluster:
    """Three nodes of one fresh stream; node 1 also ingests over ZeroMQ and AMQP."""

    def __init__(self):
        unique = uuid.uuid4().hex[:12]
        self.stream = f"sbtest.cluster.{unique}"
        self.exchange = f"sbtest.cluster.{unique}.in"
        self.queue = f"sbtest.cluster.{unique}.ingest"
        ingest = (
            '\n[ingest.zmq]\nendpoint = "tcp://127.0.0.1:0"\n'
            f'\n[ingest.amqp]\nurl = "{AMQP_URL}"\nexchange = "{self.exchange}"\nqueue = "{self.queue}"\n'
        )
        self.nodes = [
            Node(self.stream, f"n1-{unique}", ingest),
            Node(self.stream, f"n2-{unique}"),
            Node(self.stream, f"n3-{unique}"),
        ]

    def start(self) -> "Cluster":
        for node in self.nodes:
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.terminate()

    def delete(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            ch = connection.channel()
            for queue in (self.stream, self.queue, f"{self.queue}.dead-letter"):
                ch.queue_delete(queue)
            for exchange in (self.exchange, f"{self.exchange}.dead-letter", f"{self.stream}.nodes"):
                ch.exchange_delete(exchange)
        finally:
            connection.close()


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        for node in cluster.nodes:
            node.close()
        cluster.delete()


def emitter(node: Gateway, transport: str, cluster: Cluster):
    from switchboard_emitter import Emitter

    return Emitter(
        SECRET,
        transport,
        jsonrpc_url=node.rpc_url,
        zmq_endpoint=node.ready.get("zmq"),
        amqp_url=AMQP_URL,
        amqp_exchange=cluster.exchange,
        amqp_queue=cluster.queue,
        timeout=10,
    )


class PublishDisclosed(message.Publish):
    """PUBLISH with Options.disclose_me = true (Autobahn|Python 26 has no PublishOptions(disclose_me=...),
    see test_pubsub.py)."""

    def marshal_options(self):
        options = super().marshal_options()
        options["disclose_me"] = True
        return options


async def subscribe(session, topic: str, **options) -> Inbox:
    """Each event lands in the inbox as (args, publication id, details)."""
    inbox = Inbox()

    def on_event(*args, details=None, **kwargs):
        inbox.put((list(args), details.publication, details))

    await session.subscribe(on_event, topic, options=SubscribeOptions(details_arg="details", **options))
    return inbox


async def error_of(awaitable) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await awaitable
    return caught.value


@wamp_test(timeout=40)
async def test_events_ingested_on_node_1_reach_nodes_2_and_3_once_with_one_id(cluster, serializer):
    n1, n2, n3 = cluster.nodes
    topic = f"com.cluster.{uid()}"
    async with Clients(n2.url, serializer) as on2, Clients(n3.url, serializer) as on3:
        inbox2 = await subscribe(await on2.connect(), topic)
        inbox3 = await subscribe(await on3.connect(), topic)
        receipts = {}
        for n, transport in enumerate(["jsonrpc", "amqp", "zmq"]):
            with emitter(n1, transport, cluster) as sender:
                receipts[transport] = await asyncio.to_thread(sender.publish, topic, args=[n])
        await inbox2.count(3, "3 events on node 2", timeout=15)
        await inbox3.count(3, "3 events on node 3", timeout=15)
        await asyncio.sleep(QUIET)
        assert sorted(args for args, _, _ in inbox2.items) == [[0], [1], [2]], inbox2.items
        assert [(a, p) for a, p, _ in inbox2.items] == [(a, p) for a, p, _ in inbox3.items]
        by_args = {a[0]: p for a, p, _ in inbox2.items}
        assert by_args[0] == receipts["jsonrpc"].publication
        assert len(set(by_args.values())) == 3


@wamp_test(timeout=30)
async def test_a_publish_on_node_3_reaches_node_1_as_on_one_node(cluster, serializer):
    n1, n2, n3 = cluster.nodes
    topic = f"com.cluster.{uid()}"
    async with Clients(n1.url, serializer) as on1, Clients(n2.url, serializer) as on2, Clients(
        n3.url, serializer
    ) as on3:
        reader = await on1.connect()
        chosen = await on2.connect()
        publisher = await on3.connect()
        inbox1 = await subscribe(reader, topic)
        chosen_inbox = await subscribe(chosen, topic)
        own = await subscribe(publisher, topic)

        # Acknowledged: PUBLISHED carries the publication id every node delivers.
        published = await publisher.publish(topic, 0, options=PublishOptions(acknowledge=True))
        items = await inbox1.count(1, "the event on node 1")
        assert items[0][:2] == ([0], published.id)
        assert items[0][2].publisher is None, "not disclosed without disclose_me"
        publisher.send(PublishDisclosed(publisher._request_id_gen.next(), topic, args=[1]))
        items = await inbox1.count(2, "the disclosed event on node 1")
        assert items[1][0] == [1] and items[1][2].publisher == publisher.session_id
        await chosen_inbox.count(2, "both events on node 2")

        # exclude_me=False: the publisher on node 3 gets its own event too (through the log).
        await publisher.publish(topic, 2, options=PublishOptions(acknowledge=True, exclude_me=False))
        await own.count(1, "the publisher's own event")
        # An eligible list naming a session on node 2: only that session receives it.
        await publisher.publish(
            topic, 3, options=PublishOptions(acknowledge=True, eligible=[chosen._session_id])
        )
        await chosen_inbox.count(4, "the eligible event on node 2")
        await asyncio.sleep(QUIET)
        assert [a for a, _, _ in inbox1.items] == [[0], [1], [2]], "not eligible on node 1"
        assert [a for a, _, _ in chosen_inbox.items] == [[0], [1], [2], [3]]
        assert [a for a, _, _ in own.items] == [[2]], "exclude_me by default"


@wamp_test(timeout=30)
async def test_get_events_answers_the_same_on_every_node(cluster):
    base = f"app.c{uid()}"
    ids = []
    with emitter(cluster.nodes[0], "jsonrpc", cluster) as sender:
        for n in range(3):
            ids.append((await asyncio.to_thread(sender.publish, f"{base}.x", args=[n])).publication)
    answers = []
    for node in cluster.nodes:
        async with Clients(node.url, "json") as clients:
            reader = await clients.connect()
            sub = await reader.subscribe(lambda *a: None, f"{base}.x")
            deadline = time.monotonic() + 10
            while True:
                events = await reader.call(GET_EVENTS, sub.id)
                if len(events) == 3 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            answers.append([(e["publication"], e["args"], e["timestamp"]) for e in events])
    assert [p for p, _, _ in answers[0]] == ids
    assert answers[0] == answers[1] == answers[2]


def test_a_second_node_with_a_taken_name_is_refused(cluster):
    twin = Node(cluster.stream, cluster.nodes[1].node, ready_timeout=20)
    try:
        with pytest.raises(RuntimeError) as failed:
            twin.start()
        assert "exited with code 1" in str(failed.value), failed.value
        assert "is taken: another live node" in twin.log_tail(), twin.log_tail()
    finally:
        twin.close()


def test_a_node_with_other_retention_settings_is_refused(cluster):
    other = Node(cluster.stream, f"other-{uid()}", cluster_keys="max_age_s = 600\n", ready_timeout=20)
    try:
        with pytest.raises(RuntimeError) as failed:
            other.start()
        assert "exited with code 1" in str(failed.value), failed.value
        log = other.log_tail()
        assert "exists with other arguments than this node's [cluster] max_age_s = 600" in log, log
    finally:
        other.close()


def test_an_unreachable_broker_is_retried_and_the_node_is_not_ready():
    lonely = Node(f"sbtest.cluster.{uid()}", "lonely", url="amqp://guest:guest@127.0.0.1:1/%2f", ready_timeout=3)
    try:
        with pytest.raises(RuntimeError) as failed:
            lonely.start()
        assert "wrote no ready.json" in str(failed.value), failed.value
        log = lonely.log_tail()
        assert "cluster link to RabbitMQ down" in log and "retrying" in log, log
        assert log.count("cluster link to RabbitMQ down") >= 2, "it retries: " + log
        assert "guest:guest" not in log, "no password in the log"
    finally:
        lonely.close()


def test_check_config_names_a_bad_cluster_key(tmp_path):
    config = tmp_path / "switchboard.toml"
    config.write_text(cluster_section("s", "n1") + "max_bytes = 0\n")
    done = subprocess.run([gateway_binary(), "check-config", str(config)], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "switchboard.toml:6: cluster.max_bytes: must be between 1048576" in done.stderr, done.stderr


@wamp_test(timeout=60)
async def test_history_and_retained_events_survive_a_restart_of_the_whole_cluster(cluster):
    topic = f"app.r{uid()}"
    retained_topic = f"com.retained.{uid()}"
    with emitter(cluster.nodes[0], "jsonrpc", cluster) as sender:
        ids = [(await asyncio.to_thread(sender.publish, topic, args=[n])).publication for n in range(2)]
        retained = await asyncio.to_thread(sender.publish, retained_topic, args=["kept"], retain=True)
    # The events are in the log once the emitter got their ids; let every node deliver them too.
    await asyncio.sleep(QUIET)
    await asyncio.to_thread(cluster.stop)
    await asyncio.to_thread(cluster.start)
    for node in cluster.nodes:
        async with Clients(node.url, "json") as clients:
            reader = await clients.connect()
            sub = await reader.subscribe(lambda *a: None, topic)
            assert [e["publication"] for e in await reader.call(GET_EVENTS, sub.id)] == ids
            inbox = await subscribe(reader, retained_topic, get_retained=True)
            items = await inbox.count(1, f"the retained event on {node.node}")
            assert items[0][0] == ["kept"] and items[0][1] == retained.publication


def close_connection_of(node: Node, stream: str) -> None:
    """Closes the node's connection to RabbitMQ from the broker's side (what a broker restart or a
    network cut does to it), with rabbitmqctl, by the connection name the node gives it."""
    wanted = f"switchboard-cluster {stream} {node.node}"
    def rabbitmqctl(*args: str) -> str:
        return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=True).stdout

    listed = rabbitmqctl("list_connections", "name", "client_properties", "--formatter", "json")
    # client_properties holds connection_name; matched as text, whatever shape rabbitmqctl gives it.
    names = [c["name"] for c in json.loads(listed) if wanted in json.dumps(c)]
    assert len(names) == 1, f"one connection named {wanted!r} expected in:\n{listed}"
    pids = [line.split("\t")[0] for line in rabbitmqctl("list_connections", "pid", "name").splitlines()
            if line.endswith("\t" + names[0])]
    assert len(pids) == 1, pids
    rabbitmqctl("close_connection", pids[0], "test: connection cut")


@wamp_test(timeout=90)
async def test_a_node_that_lost_rabbitmq_resumes_after_its_last_offset(cluster):
    n1, n2, _ = cluster.nodes
    topic = f"com.resume.{uid()}"
    async with Clients(n2.url, "json") as on2:
        inbox = await subscribe(await on2.connect(), topic)
        with emitter(n1, "jsonrpc", cluster) as sender:
            sent = [(await asyncio.to_thread(sender.publish, topic, args=[n])).publication for n in range(3)]
            await inbox.count(3, "the events before the cut")
            await asyncio.to_thread(close_connection_of, n2, cluster.stream)
            # Node 1 keeps accepting while node 2 reconnects; node 2 must deliver these once it is back.
            for n in range(3, 6):
                sent.append((await asyncio.to_thread(sender.publish, topic, args=[n])).publication)
        await inbox.count(6, "every event after node 2 reconnected", timeout=30)
        await asyncio.sleep(QUIET)
        assert [p for _, p, _ in inbox.items] == sent, "each event once, in order"
        n2.wait_for_log("consuming again", timeout=10)


class Proxy:
    """A TCP proxy to RabbitMQ that the test can cut and restore: what a broker outage looks like to the
    one node that connects through it (the shared broker itself keeps running for everybody else)."""

    def __init__(self):
        self.port = 0
        self.server = None
        self.writers: set = set()

    async def start(self) -> "Proxy":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", 5672)
        except OSError:
            writer.close()
            return
        self.writers.update({writer, upstream_writer})

        async def pipe(source, sink):
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def cut(self) -> None:
        """Refuses new connections and resets the open ones."""
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()


def rpc(node: Gateway, method: str, params: dict) -> dict:
    """The whole JSON-RPC response (`result` or `error`)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    headers = {"Content-Type": "application/json", "X-Switchboard-Signature": sign(body.encode())}
    return requests.post(node.rpc_url, data=body, headers=headers, timeout=10).json()


def rpc_publish(node: Gateway, topic: str, n: int) -> dict:
    return rpc(node, "publish", {"topic": topic, "args": [n]})


def result(node: Gateway, method: str, params: dict):
    answer = rpc(node, method, params)
    assert "result" in answer, answer
    return answer["result"]


async def eventually(check, what: str, timeout: float = 10.0):
    """Polls `check()` (blocking, run in a thread) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        got = await asyncio.to_thread(check)
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@wamp_test(timeout=60)
async def test_management_calls_on_node_1_answer_for_sessions_on_nodes_2_and_3(cluster):
    n1, n2, n3 = cluster.nodes
    topic = f"com.mgmt.{uid()}"
    # A stranger's messages on the node queues are skipped (and logged), never fatal.
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        long_name = json.dumps({"v": 1, "node": "n" * 300, "incarnation": 1, "kind": "heartbeat"}).encode()
        forged_reply_to = json.dumps(
            {"v": 1, "node": "x", "kind": "request", "id": 1, "reply_to": "q" * 300,
             "query": {"call": "session_count", "realm": None}}
        ).encode()
        # ("x" then says it leaves, so that no node waits for it in the calls below.)
        for body in (b"garbage", b'{"v": 99, "node": "x", "kind": "heartbeat"}', b'{"v": 1, "kind": "request"}',
                     long_name, forged_reply_to, b'{"v": 1, "node": "x", "kind": "leaving"}'):
            channel.basic_publish(exchange=f"{cluster.stream}.nodes", routing_key="", body=body)
    finally:
        connection.close()
    await asyncio.to_thread(n1.wait_for_log, "not a node message", 5)
    # Every node heard the others' heartbeats (sent every second) before the first call.
    await asyncio.sleep(1.5)
    async with Clients(n2.url, "json") as on2, Clients(n3.url, "json") as on3:
        before = result(n1, "session_count", {})
        s2 = await on2.connect()
        s3 = await on3.connect()
        a2 = (await s2.joined).authid
        a3 = (await s3.joined).authid
        await s2.subscribe(lambda *a: None, topic)
        await s3.subscribe(lambda *a: None, topic)

        # Sessions on other nodes: counted (summed) through node 1, quickly (every node answered).
        started = time.monotonic()
        assert result(n1, "session_count", {}) == before + 2
        assert time.monotonic() - started < 1.0, "no deadline waited for when every node answers"
        assert result(n1, "session_count", {"realm": "realm1"}) == before + 2
        # Listed with their node.
        listed = result(n1, "sessions", {"authid": a2})
        assert [(e["session"], e["authid"], e["realm"], e["node"]) for e in listed] == [
            (s2.session_id, a2, "realm1", n2.node)
        ], listed
        listed = result(n1, "sessions", {"authid": a3})
        assert [(e["session"], e["node"]) for e in listed] == [(s3.session_id, n3.node)], listed
        watchers = result(n1, "subscribers", {"topic": topic})
        assert watchers["count"] == 2 and sorted(watchers["sessions"]) == sorted([s2.session_id, s3.session_id])
        # An unknown realm is still refused as on one node.
        refused = rpc(n1, "session_count", {"realm": "nowhere"})
        assert refused["error"]["code"] == -32602, refused

        # Kicked through node 1: each session on its own node gets GOODBYE.
        assert result(n1, "kick", {"authid": a2}) == {"kicked": 1}
        assert result(n1, "kick", {"authid": a3, "reason": "com.example.banned"}) == {"kicked": 1}
        await eventually(lambda: result(n1, "sessions", {"authid": a2}) == [], "the kicked session on node 2 gone")
        await eventually(lambda: result(n1, "sessions", {"authid": a3}) == [], "the kicked session on node 3 gone")
        assert result(n1, "kick", {"authid": a2}) == {"kicked": 0}
        await eventually(lambda: result(n1, "session_count", {}) == before, "the count back to before")


@wamp_test(timeout=60)
async def test_a_killed_node_is_named_missing_after_the_deadline_then_forgotten():
    unique = uuid.uuid4().hex[:12]
    stream = f"sbtest.cluster.{unique}"
    asker = Node(stream, f"a-{unique}")
    victim = Node(stream, f"b-{unique}")
    try:
        await asyncio.to_thread(asker.start)
        await asyncio.to_thread(victim.start)
        async with Clients(victim.url, "json") as on_b:
            await on_b.connect()
            await eventually(lambda: result(asker, "session_count", {}) == 1, "the victim's session counted")
        await asyncio.to_thread(victim.kill)  # SIGKILL: no goodbye to the other node
        started = time.monotonic()
        answer = await asyncio.to_thread(rpc, asker, "session_count", {})
        waited = time.monotonic() - started
        assert answer["error"]["code"] == -32003, answer
        data = answer["error"]["data"]
        assert data["missing"] == [victim.node] and data["answered"] == [asker.node], data
        assert data["partial"] == 0, data
        assert victim.node in answer["error"]["message"], answer
        assert 1.5 < waited < 3.5, f"waited {waited:.2f} s: the deadline is 2 s"

        # Three missed heartbeats later the dead node is no longer asked at all.
        await asyncio.sleep(4)
        started = time.monotonic()
        assert result(asker, "session_count", {}) == 0
        assert result(asker, "sessions", {"authid": "nobody"}) == []
        assert time.monotonic() - started < 1.0
    finally:
        for node in (asker, victim):
            await asyncio.to_thread(node.close)
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        channel.queue_delete(stream)
        channel.exchange_delete(f"{stream}.nodes")
        connection.close()


@wamp_test(timeout=90)
async def test_without_rabbitmq_publishes_are_refused_explicitly_and_nothing_accepted_is_lost():
    proxy = await Proxy().start()
    unique = uuid.uuid4().hex[:12]
    stream = f"sbtest.cluster.{unique}"
    cut_off = Node(stream, f"a-{unique}", url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2f")
    steady = Node(stream, f"b-{unique}")
    topic = f"com.outage.{uid()}"
    try:
        await asyncio.to_thread(cut_off.start)
        await asyncio.to_thread(steady.start)
        async with Clients(cut_off.url, "json") as on_a, Clients(steady.url, "json") as on_b:
            inbox_a = await subscribe(await on_a.connect(), topic)
            inbox_b = await subscribe(await on_b.connect(), topic)
            publisher = await on_a.connect()
            local = await on_a.connect()
            await local.register(lambda: "served", f"{topic}.local")
            accepted = [(await asyncio.to_thread(rpc_publish, cut_off, topic, 0))["result"]["publication"]]

            await proxy.cut()
            await asyncio.to_thread(cut_off.wait_for_log, "cluster link to RabbitMQ down", 10)
            refused = await asyncio.to_thread(rpc_publish, cut_off, topic, 1)
            assert refused["error"]["code"] == -32002, refused
            assert refused["error"]["data"]["retry"] is True, refused
            error = await error_of(publisher.publish(topic, 2, options=PublishOptions(acknowledge=True)))
            assert error.error == "switchboard.error.cluster_unavailable", error
            assert await publisher.call(f"{topic}.local") == "served", "local sessions are still served"
            # The other node keeps accepting; the cut-off node delivers it once it is back.
            accepted.append((await asyncio.to_thread(rpc_publish, steady, topic, 3))["result"]["publication"])
            await asyncio.sleep(1)

            await proxy.start()
            deadline = time.monotonic() + 20
            while True:
                answer = await asyncio.to_thread(rpc_publish, cut_off, topic, 4)
                if "result" in answer:
                    accepted.append(answer["result"]["publication"])
                    break
                assert answer["error"]["code"] == -32002, answer
                assert time.monotonic() < deadline, "the node never reconnected"
                await asyncio.sleep(0.2)
            for inbox, where in ((inbox_a, "the cut-off node"), (inbox_b, "the steady node")):
                await inbox.count(len(accepted), f"every accepted event on {where}", timeout=20)
            await asyncio.sleep(QUIET)
            assert [p for _, p, _ in inbox_a.items] == accepted, "each accepted event once, in order"
            assert [p for _, p, _ in inbox_b.items] == accepted
            assert [a for a, _, _ in inbox_b.items] == [[0], [3], [4]], "refused events were never delivered"
    finally:
        for node in (cut_off, steady):
            await asyncio.to_thread(node.close)
        await proxy.cut()
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        channel.queue_delete(stream)
        channel.exchange_delete(f"{stream}.nodes")
        connection.close()
